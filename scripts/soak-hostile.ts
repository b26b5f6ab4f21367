// The hostile clients of `npm run soak -- --hostile` (issue 25): each runs in a loop until `until()`
// is false, from its own loopback address, sending its attack as bytes on a raw socket, and counts
// what happened in `HostileCounts`. scripts/soak.ts runs them all at once beside a live feed and
// 200 churning readers.

import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { programTables, tsPacket } from '../test/helpers/ts-packets.js';

export interface HostileCounts {
  idleSockets: number;
  idleClosedByServer: number;
  refusedFlood: number;
  rtmpChunkRounds: number;
  tsPidRounds: number;
  nalBombs: number;
  squatTakeovers: number;
  squatRefused: number;
  oneOffFeeds: number;
}

export function newHostileCounts(): HostileCounts {
  return {
    idleSockets: 0,
    idleClosedByServer: 0,
    refusedFlood: 0,
    rtmpChunkRounds: 0,
    tsPidRounds: 0,
    nalBombs: 0,
    squatTakeovers: 0,
    squatRefused: 0,
    oneOffFeeds: 0,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function open(port: number, from: string): Socket {
  const s = connect({ port, host: '127.0.0.1', localAddress: from });
  s.on('error', () => undefined);
  return s;
}

function write(s: Socket, b: Buffer | string): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve();
    if (s.write(b)) resolve();
    else {
      s.once('drain', resolve);
      s.once('close', resolve);
    }
  });
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

function post(port: number, from: string, path: string, length: number): Socket {
  const s = open(port, from);
  s.write(`POST ${path} HTTP/1.1\r\nHost: soak\r\nContent-Length: ${length}\r\n\r\n`);
  s.resume();
  return s;
}

// --- the attacks --------------------------------------------------------------------------------

/** Item 2: silent sockets on every listener, reopened as the server closes them (64 per address). */
export async function idleSockets(ports: number[], from: string, until: () => boolean, c: HostileCounts): Promise<void> {
  const loops = ports.flatMap((port) =>
    Array.from({ length: 20 }, async () => {
      while (until()) {
        const s = open(port, from);
        s.resume();
        c.idleSockets++;
        const t0 = Date.now();
        await Promise.race([closed(s), sleep(120_000)]);
        if (!s.destroyed) s.destroy();
        else if (Date.now() - t0 > 100) c.idleClosedByServer++;
        await sleep(200);
      }
    }),
  );
  await Promise.all(loops);
}

/** Item 5: one address past MaxConnectionsPerAddress reconnecting as fast as it can (50 a second). */
export async function refusedFlood(port: number, from: string, until: () => boolean, c: HostileCounts): Promise<void> {
  const held = Array.from({ length: 64 }, () => {
    const s = open(port, from);
    s.resume();
    return s;
  });
  while (until()) {
    for (let i = 0; i < 10; i++) {
      const s = open(port, from);
      s.resume();
      s.on('close', () => c.refusedFlood++);
      setTimeout(() => s.destroy(), 2000).unref();
    }
    await sleep(200);
  }
  for (const s of held) s.destroy();
}

/** Item 3: RTMP, one byte of a 4 MiB message per 60 kB the server drops, for 10 s per connection. */
export async function rtmpChunkPinning(port: number, from: string, until: () => boolean, c: HostileCounts): Promise<void> {
  const setChunkSize = (size: number, current: number): Buffer => {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(size);
    const head = (len: number): Buffer => Buffer.from([2, 0, 0, 0, 0, 0, len, 1, 0, 0, 0, 0]);
    const parts = [head(4), payload.subarray(0, current)];
    for (let at = current; at < 4; at += current) parts.push(Buffer.from([0xc2]), payload.subarray(at, at + current));
    return Buffer.concat(parts);
  };
  const fillerHead = Buffer.from([4, 0, 0, 0, 0, 0xea, 0x60, 3, 0, 0, 0, 0]); // 60000-byte Acknowledgement
  const filler = Buffer.concat([fillerHead, Buffer.alloc(60_000)]);
  while (until()) {
    const s = open(port, from);
    const c1 = Buffer.alloc(1537);
    c1[0] = 3;
    s.write(c1);
    let got = 0;
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer): void => {
        got += d.length;
        if (got >= 3073) {
          s.off('data', onData);
          resolve();
        }
      };
      s.on('data', onData);
      s.once('close', () => resolve());
    });
    s.resume();
    await write(s, Buffer.alloc(1536)); // C2
    let current = 128;
    for (let i = 0; i < 150 && !s.destroyed && until(); i++) {
      const pending =
        i === 0
          ? Buffer.from([10, 0, 0, 0, 0x40, 0, 0, 9, 1, 0, 0, 0, 0x17]) // 4 MiB video message, its first byte
          : Buffer.from([0xca, 0]);
      await write(s, Buffer.concat([setChunkSize(65536, current), filler, setChunkSize(1, 65536), pending]));
      current = 1;
      c.rtmpChunkRounds++;
      await sleep(50);
    }
    s.destroy();
    await sleep(500);
  }
}

/** Item 4: a PMT of 40 video PIDs, each PES unfinished, 1.5 MiB each, then the connection ends. */
export async function tsManyPids(port: number, from: string, until: () => boolean, c: HostileCounts): Promise<void> {
  const pids = Array.from({ length: 40 }, (_, i) => 0x100 + i);
  const pesStart = Buffer.concat([
    Buffer.from([0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 0x05, 0x21, 0, 1, 0, 1]),
    Buffer.alloc(170, 0x11),
  ]);
  const filler = Buffer.alloc(184, 0x22);
  let n = 0;
  while (until()) {
    const s = post(port, from, `/soak-pids-${n++ % 4}.ffm`, 1_000_000_000);
    await write(s, programTables(pids));
    await write(s, Buffer.concat(pids.map((pid) => tsPacket(pid, true, 0, pesStart))));
    for (let k = 1; k < 8500 && !s.destroyed && until(); k += 32) {
      const batch: Buffer[] = [];
      for (let j = k; j < k + 32; j++) for (const pid of pids) batch.push(tsPacket(pid, false, j, filler));
      await write(s, Buffer.concat(batch));
      await sleep(100);
    }
    c.tsPidRounds++;
    s.destroy();
    await sleep(1000);
  }
}

/** Item 8: an H.264 PES of 50,000 one-byte NAL units every 2 s on one publisher connection. */
export async function nalBomb(port: number, from: string, until: () => boolean, c: HostileCounts): Promise<void> {
  const nals = Buffer.alloc(50_000 * 4);
  for (let i = 0; i < nals.length; i += 4) nals.set([0, 0, 1, 0x01], i);
  while (until()) {
    const s = post(port, from, '/soak-nals.ffm', 1_000_000_000);
    await write(s, programTables([0x100]));
    let cc = 0;
    for (let round = 0; round < 30 && !s.destroyed && until(); round++) {
      const pts = (round + 1) * 180_000;
      const header = Buffer.from([0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 0x05, 0, 0, 0, 0, 0]);
      header[9] = 0x21 | (Math.floor(pts / 2 ** 30) << 1);
      header[10] = (pts >> 22) & 0xff;
      header[11] = (((pts >> 15) & 0x7f) << 1) | 1;
      header[12] = (pts >> 7) & 0xff;
      header[13] = ((pts & 0x7f) << 1) | 1;
      const pes = Buffer.concat([header, nals]);
      const packets: Buffer[] = [];
      for (let at = 0; at < pes.length; at += 184) {
        const piece = Buffer.alloc(184, 0);
        pes.copy(piece, 0, at, Math.min(at + 184, pes.length));
        packets.push(tsPacket(0x100, at === 0, cc++, piece));
      }
      await write(s, Buffer.concat(packets));
      c.nalBombs++;
      await sleep(2000);
    }
    s.destroy();
    await sleep(500);
  }
}

/** Item 6: a squatter dribbling one byte every 500 ms; a newcomer tries to take the feed every 10 s. */
export async function squatter(
  port: number,
  from: string,
  newcomerFrom: string,
  until: () => boolean,
  c: HostileCounts,
): Promise<void> {
  while (until()) {
    const s = post(port, from, '/soak-squat.ffm', 1_000_000_000);
    s.write('G');
    const drip = setInterval(() => s.write(Buffer.from([0x47])), 500);
    await sleep(10_000);
    const status = await new Promise<number>((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          localAddress: newcomerFrom,
          method: 'POST',
          path: '/soak-squat.ffm',
          headers: { 'Content-Length': '188' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', () => resolve(0));
      const nullPacket = Buffer.alloc(188, 0xff);
      nullPacket.set([0x47, 0x1f, 0xff, 0x10]);
      req.end(nullPacket);
    });
    if (status === 409) c.squatRefused++;
    else c.squatTakeovers++;
    clearInterval(drip);
    s.destroy();
    await sleep(500);
  }
}

/** Item 7: one-off dynamic feed names, five a second, each published with one packet. */
export async function oneOffFeeds(port: number, from: string, until: () => boolean, c: HostileCounts): Promise<void> {
  const nullPacket = Buffer.alloc(188, 0xff);
  nullPacket.set([0x47, 0x1f, 0xff, 0x10]);
  let n = 0;
  while (until()) {
    const s = post(port, from, `/soak-oneoff-${n++}.ffm`, 188);
    s.end(nullPacket);
    c.oneOffFeeds++;
    await Promise.race([closed(s), sleep(5000)]);
    s.destroy();
    await sleep(200);
  }
}
