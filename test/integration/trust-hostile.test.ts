// Issue 25 (trust, round two): idle or slow clients must never lock others out, and memory stays
// bounded whatever a client sends. Each test sends the hostile input as bytes on a raw socket.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { RtmpTestClient } from '../helpers/rtmp-client.js';
import { chunk0 } from '../helpers/rtmp-chunks.js';
import { recordingLogger, type LogLine } from '../helpers/recording-logger.js';
import { startRtsp } from '../helpers/rtsp-tools.js';
import { FFMPEG, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';
import { programTables, tsPacket } from '../helpers/ts-packets.js';

interface Raw {
  socket: Socket;
  received: string;
  closed: boolean;
  ended: boolean;
}

/** A socket that sends `bytes` (or nothing) and records what comes back; destroyed after the test. */
function rawSocket(port: number, bytes?: string | Buffer, localAddress?: string): Raw {
  const socket = connect({ port, host: '127.0.0.1', ...(localAddress !== undefined ? { localAddress } : {}) });
  const raw: Raw = { socket, received: '', closed: false, ended: false };
  if (bytes !== undefined) socket.write(bytes);
  socket.on('data', (d: Buffer) => (raw.received += d.toString('latin1')));
  socket.on('end', () => (raw.ended = true));
  socket.on('close', () => (raw.closed = true));
  socket.on('error', () => undefined);
  return raw;
}

describe('issue 25: idle connections', () => {
  test('RTSP: silent sockets are closed after RequestHeaderTimeout, idle ones after IdleTimeout; they stop holding MaxClients slots', async (t) => {
    const server = await startTestServer(t, 'RequestHeaderTimeout 1\nIdleTimeout 2\nMaxClients 20\nMaxConnectionsPerAddress 0\n');
    const { port } = await startRtsp(t, server);
    // 20 silent sockets take every slot: HTTP answers 503 while they stay.
    const silent = Array.from({ length: 20 }, () => rawSocket(port));
    t.after(() => silent.forEach((s) => s.socket.destroy()));
    await waitFor('the silent sockets to be counted', () => server.ctx.connections.size >= 20, 10_000);
    assert.equal((await fetch(server.url('/api/v1/health'))).status, 503);
    // Before the fix, nothing ever closed them (the request timer started only when bytes came).
    await waitFor('every silent socket to be closed', () => silent.every((s) => s.closed), 10_000);
    assert.equal((await fetch(server.url('/api/v1/health'))).status, 200);

    // One request, then silence: closed after IdleTimeout.
    const idle = rawSocket(port, 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n');
    t.after(() => idle.socket.destroy());
    await waitFor('the OPTIONS answer', () => idle.received.includes('\r\n\r\n'));
    assert.match(idle.received, /^RTSP\/1\.0 200/);
    assert.equal(idle.closed, false);
    await waitFor('the idle socket to be closed', () => idle.closed, 10_000);
  });

  test('HTTP (and WHEP, push): silent sockets are closed after RequestHeaderTimeout; a refused one is closed too', async (t) => {
    const server = await startTestServer(t, 'RequestHeaderTimeout 1\nMaxClients 10\nMaxConnectionsPerAddress 0\n');
    const silent = Array.from({ length: 10 }, () => rawSocket(server.httpPort));
    t.after(() => silent.forEach((s) => s.socket.destroy()));
    await waitFor('the silent sockets to be counted', () => server.ctx.connections.size >= 10, 10_000);
    const extra = rawSocket(server.httpPort);
    t.after(() => extra.socket.destroy());
    await waitFor('the refused socket to be answered', () => extra.ended, 10_000);
    assert.match(extra.received, /^HTTP\/1\.1 503 /);
    assert.equal(server.ctx.connections.size, 10);
    await waitFor('every silent socket to be closed', () => silent.every((s) => s.ended || s.closed), 10_000);
    await waitFor('their slots to be given back', () => server.ctx.connections.size === 0, 10_000);
  });

  test('RTSP: a connection past MaxClients gets 503 at once, is closed and is not counted', async (t) => {
    const server = await startTestServer(t, 'RequestHeaderTimeout 60\nMaxClients 3\nMaxConnectionsPerAddress 0\n');
    const { port } = await startRtsp(t, server);
    const held = Array.from({ length: 3 }, () => rawSocket(port));
    t.after(() => held.forEach((s) => s.socket.destroy()));
    await waitFor('three counted connections', () => server.ctx.connections.size === 3);
    // Sends nothing: it must still be answered and closed, not left waiting for a request.
    const extra = rawSocket(port);
    t.after(() => extra.socket.destroy());
    await waitFor('the refused socket to be answered and closed', () => extra.ended, 10_000);
    assert.match(extra.received, /^RTSP\/1\.0 503 /);
    assert.match(extra.received, /MaxClients 3/);
    assert.equal(server.ctx.connections.size, 3);
  });

  test('RTMP: a client that connects and then does nothing is closed after IdleTimeout', async (t) => {
    const server = await startTestServer(t, 'IdleTimeout 1\n');
    const rtmp = new RtmpServer(server.ctx);
    const port = await rtmp.listen(0, '127.0.0.1');
    t.after(() => rtmp.close());
    const client = await RtmpTestClient.open('127.0.0.1', port);
    t.after(() => client.socket.destroy());
    const result = await client.connect('live', `rtmp://127.0.0.1:${port}/live`);
    assert.equal(result.name, '_result');
    let closed = false;
    void client.closed.then(() => (closed = true));
    // Before the fix, a connected client held its slot until it went away by itself.
    await waitFor('the idle RTMP client to be closed', () => closed, 10_000);
    await waitFor('its slot to be given back', () => server.ctx.connections.size === 0);
  });

  test('MaxConnectionsPerAddress is 64 by default; refusals are closed at once and logged once per address with a count', async (t) => {
    const server = await startTestServer(t, 'RequestHeaderTimeout 60\n');
    assert.equal(server.ctx.config.maxConnectionsPerAddress, 64);
    const lines: LogLine[] = [];
    const { port } = await startRtsp(t, server, { log: recordingLogger(lines) });
    // One address reconnecting idle sockets: it gets 64 and no more; another address is still served.
    const hog = Array.from({ length: 64 }, () => rawSocket(port, undefined, '127.0.0.9'));
    t.after(() => hog.forEach((s) => s.socket.destroy()));
    await waitFor('64 counted connections', () => server.ctx.connections.size === 64);
    const refused = Array.from({ length: 100 }, () => rawSocket(port, undefined, '127.0.0.9'));
    t.after(() => refused.forEach((s) => s.socket.destroy()));
    await waitFor('every refused socket to be answered and closed', () => refused.every((s) => s.ended), 15_000);
    assert.ok(refused.every((s) => /^RTSP\/1\.0 503 /.test(s.received)));
    assert.equal(server.ctx.connections.size, 64);
    const other = rawSocket(port, 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n', '127.0.0.10');
    t.after(() => other.socket.destroy());
    await waitFor('another address to be answered', () => other.received.includes('\r\n\r\n'));
    assert.match(other.received, /^RTSP\/1\.0 200/);
    const refusalLines = lines.filter((l) => l.level === 'warn' && /refused/.test(l.msg));
    assert.equal(refusalLines.length, 1, JSON.stringify(refusalLines.slice(0, 3)));
    assert.equal(refusalLines[0]?.fields['from'], '127.0.0.9');
  });
});

/** Collects garbage (the flag is set at run time: the test runner's flags are not ours to choose). */
async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // External memory is given back by callbacks after a collection: a few rounds let them run.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Set Chunk Size (5.4.1) sent while the peer's chunk size is `current`: split into chunks of `current` bytes. */
function setChunkSize(size: number, current: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(size);
  const parts: Buffer[] = [chunk0(2, 1, 4, payload.subarray(0, current))];
  for (let at = current; at < 4; at += current) parts.push(Buffer.from([0xc0 | 2]), payload.subarray(at, at + current));
  return Buffer.concat(parts);
}

describe('issue 25: memory a client can make the server hold', () => {
  test('RTMP: one-byte chunks of a message, each in its own socket read, do not pin the reads', async (t) => {
    const server = await startTestServer(t);
    const rtmp = new RtmpServer(server.ctx);
    const port = await rtmp.listen(0, '127.0.0.1');
    t.after(() => rtmp.close());
    const client = await RtmpTestClient.open('127.0.0.1', port);
    t.after(() => client.socket.destroy());
    await client.connect('live', `rtmp://127.0.0.1:${port}/live`);
    const write = (b: Buffer): Promise<void> =>
      new Promise((resolve) => (client.socket.write(b) ? resolve() : client.socket.once('drain', resolve)));

    await collectGarbage();
    const before = process.memoryUsage().arrayBuffers;
    // Each round: a 60 kB message the server drops (Acknowledgement), then chunk size 1, one byte
    // more of a 4 MiB video message that never ends, and chunk size 65536 again. Before the fix each
    // byte kept its whole socket read alive while only the byte was counted.
    let sent = 0;
    let current = 128;
    const filler = chunk0(4, 3, 60_000, Buffer.alloc(60_000));
    const rounds = 800;
    for (let i = 0; i < rounds; i++) {
      const parts = [setChunkSize(65536, current), filler, setChunkSize(1, 65536)];
      parts.push(i === 0 ? chunk0(10, 9, 4 * 1024 * 1024, Buffer.from([0x17]), 1) : Buffer.from([0xc0 | 10, 0]));
      current = 1;
      const round = Buffer.concat(parts);
      sent += round.length;
      await write(round);
    }
    const conn = server.ctx.connections.list().find((c) => c.protocol === 'RTMP');
    await waitFor('the server to read everything', () => (conn?.bytesIn ?? 0) >= sent, 60_000);
    await collectGarbage();
    const heldMiB = (process.memoryUsage().arrayBuffers - before) / 1024 / 1024;
    assert.ok(!client.socket.destroyed, 'the connection is still open (nothing over a limit)');
    t.diagnostic(`held ${heldMiB.toFixed(1)} MiB after ${(sent / 1024 / 1024).toFixed(0)} MiB sent`);
    assert.ok(heldMiB < 16, `${heldMiB.toFixed(1)} MiB held after ${(sent / 1024 / 1024).toFixed(0)} MiB sent`);
  });
});

describe('issue 25: MPEG-TS push', () => {
  test('a PMT of 40 video PIDs, each with an unfinished PES, holds at most the per-publisher cap', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const pids = Array.from({ length: 40 }, (_, i) => 0x100 + i);
    const pesStart = Buffer.concat([
      Buffer.from([0x00, 0x00, 0x01, 0xe0, 0x00, 0x00]), // video stream, PES_packet_length 0 (unbounded)
      Buffer.from([0x80, 0x80, 0x05, 0x21, 0x00, 0x01, 0x00, 0x01]), // PTS only
      Buffer.alloc(170, 0x11),
    ]);
    const filler = Buffer.alloc(184, 0x22);

    await collectGarbage();
    const before = process.memoryUsage().arrayBuffers;
    const socket = connect(server.httpPort, '127.0.0.1');
    t.after(() => socket.destroy());
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    const write = (b: Buffer): Promise<void> =>
      new Promise((resolve) => (socket.write(b) ? resolve() : socket.once('drain', resolve)));
    await write(Buffer.from('POST /feed1.ffm HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n'));
    let sent = 0;
    const send = async (b: Buffer): Promise<void> => {
      sent += b.length;
      await write(b);
    };
    await send(programTables(pids)); // the PMT of 40 streams takes two packets
    await send(Buffer.concat(pids.map((pid) => tsPacket(pid, true, 0, pesStart))));
    // 1.5 MiB more on every PID, round robin, never a second PES start: nothing completes.
    const rounds = Math.ceil((1.5 * 1024 * 1024) / 184);
    for (let r = 1; r <= rounds; r += 64) {
      const batch: Buffer[] = [];
      for (let k = r; k < Math.min(r + 64, rounds + 1); k++) for (const pid of pids) batch.push(tsPacket(pid, false, k, filler));
      await send(Buffer.concat(batch));
    }
    const conn = server.ctx.connections.list().find((c) => c.role === 'publisher');
    await waitFor('the server to read everything', () => (conn?.bytesIn ?? 0) >= sent, 60_000);
    await collectGarbage();
    const heldMiB = (process.memoryUsage().arrayBuffers - before) / 1024 / 1024;
    t.diagnostic(`held ${heldMiB.toFixed(1)} MiB after ${(sent / 1024 / 1024).toFixed(0)} MiB sent`);
    // 40 buffers of 2 MiB before the fix; at most the 32 MiB cap now (the publisher keeps going).
    assert.ok(heldMiB < 40, `${heldMiB.toFixed(1)} MiB held`);
    assert.equal(answer, '');
  });
});

describe('issue 25: feeds a client can take', () => {
  test('a publisher that sends a byte now and then but no frames is silent: PublisherTimeout lets a newcomer in', async (t) => {
    const server = await startTestServer(t, 'PublisherTimeout 1\n<Feed feed1.ffm>\n</Feed>\n');
    const head = 'POST /feed1.ffm HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n';
    // The squatter: a sync byte, then one byte every 200 ms, never a packet's worth.
    const squatter = rawSocket(server.httpPort, head + 'G', '127.0.0.2');
    t.after(() => squatter.socket.destroy());
    const drip = setInterval(() => squatter.socket.write(Buffer.from([0x47])), 200);
    t.after(() => clearInterval(drip));
    const feed = server.ctx.feeds.get('feed1');
    assert.ok(feed !== undefined);
    await waitFor('the squatter to be the publisher', () => feed.publisher?.remoteAddress === '127.0.0.2');
    // A real publisher comes later; before the fix it got 409 for as long as the bytes came.
    const retry = async (): Promise<void> => {
      while (feed.publisher?.remoteAddress !== '127.0.0.3') {
        const attempt = rawSocket(server.httpPort, head + 'G', '127.0.0.3');
        t.after(() => attempt.socket.destroy());
        await waitFor(
          'an answer or the takeover',
          () => attempt.received !== '' || feed.publisher?.remoteAddress === '127.0.0.3',
        );
        if (attempt.received !== '') assert.match(attempt.received, /^HTTP\/1\.1 409/);
      }
    };
    await Promise.race([
      retry(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('the squatter kept the feed for 15 s')), 15_000).unref()),
    ]);
    await waitFor('the squatter to be closed', () => squatter.closed);
  });
});

describe('issue 25: names a client can make the server remember', () => {
  test('DynamicFeeds: one-off names are forgotten DynamicFeedTimeout after their publisher leaves; a published feed stays', async (t) => {
    const server = await startTestServer(t, 'DynamicFeeds on\nDynamicFeedTimeout 1\n');
    const nullPacket = Buffer.alloc(188, 0xff);
    nullPacket.set([0x47, 0x1f, 0xff, 0x10]); // PID 0x1FFF, payload only
    const post = (name: string, length: number, from: string): Raw =>
      rawSocket(
        server.httpPort,
        Buffer.concat([Buffer.from(`POST /${name}.ffm HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\n`), nullPacket]),
        from,
      );
    // Every feed that got a publisher, counted as it happens: on a loaded machine the first one-off feeds may be
    // forgotten (DynamicFeedTimeout 1) before the last batch is even sent.
    const published = new Set<string>();
    server.ctx.feeds.on('publish', (feed) => published.add(feed.key));
    // One publisher stays (its body never ends); 200 others each publish one packet and leave.
    const keep = post('keep', 100_000_000, '127.0.0.20');
    t.after(() => keep.socket.destroy());
    for (let i = 0; i < 200; i += 20) {
      const batch = Array.from({ length: 20 }, (_, k) => post(`oneoff${i + k}`, 188, `127.0.1.${k + 1}`));
      t.after(() => batch.forEach((b) => b.socket.destroy()));
      await waitFor('the one-off publishers to be answered', () => batch.every((b) => b.received !== ''));
      assert.ok(
        batch.every((b) => /^HTTP\/1\.1 204/.test(b.received)),
        batch[0]?.received,
      );
    }
    await waitFor('every publisher to be attached', () => published.size === 201);
    // Before the fix, all 201 stayed for the life of the process.
    await waitFor('the one-off feeds to be removed', () => server.ctx.feeds.all().length === 1, 15_000);
    assert.equal(server.ctx.feeds.all()[0]?.key, 'keep');
    // A name used again is created again.
    const again = post('oneoff7', 188, '127.0.0.21');
    t.after(() => again.socket.destroy());
    await waitFor('the publisher to be answered', () => again.received !== '');
    assert.match(again.received, /^HTTP\/1\.1 204/);
  });
});

describe('issue 25: frames a publisher can make every reader pay for', () => {
  test(
    'a frame of 400,000 one-byte NAL units is dropped with FC_ERR_FRAME_TOO_LARGE; the feed and its readers go on',
    { skip: skipWithoutFfmpeg() },
    async (t) => {
      const lines: LogLine[] = [];
      const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n', { log: recordingLogger(lines) });
      const file = join(tmpdir(), `feedcast-nals-${process.pid}.ts`);
      const made = await run(
        FFMPEG,
        [
          '-hide_banner',
          '-loglevel',
          'error',
          '-y',
          '-f',
          'lavfi',
          '-i',
          'testsrc2=size=160x120:rate=10',
          '-t',
          '6',
          '-c:v',
          'libx264',
          '-preset',
          'ultrafast',
          '-g',
          '10',
          '-f',
          'mpegts',
          file,
        ],
        60_000,
      );
      assert.equal(made.code, 0, made.stderr);
      const clean = await readFile(file);
      // The hostile PES: no PTS, then 400,000 times (start code, NAL header of a non-IDR slice).
      const nals = Buffer.alloc(400_000 * 4);
      for (let i = 0; i < nals.length; i += 4) nals.set([0, 0, 1, 0x01], i);
      const pes = Buffer.concat([Buffer.from([0, 0, 1, 0xe0, 0, 0, 0x80, 0x00, 0x00]), nals]);
      // Inserted before the video PES that starts 3 s in, with continuity counters kept in sequence.
      const videoPid = 0x100;
      const out: Buffer[] = [];
      let cc = 0;
      let shift = 0;
      let starts = 0;
      for (let at = 0; at + 188 <= clean.length; at += 188) {
        const pkt = Buffer.from(clean.subarray(at, at + 188));
        const pid = pkt.readUInt16BE(1) & 0x1fff;
        if (pid === videoPid) {
          if ((pkt[1] as number) & 0x40 && ++starts === 30) {
            for (let p = 0; p < pes.length; p += 184) {
              const piece = Buffer.alloc(184, 0xff);
              pes.copy(piece, 0, p, Math.min(p + 184, pes.length));
              // The last piece: an adaptation field pads it instead of 0xFF bytes in the NAL data.
              const last = pes.length - p < 184;
              if (last) {
                const n = pes.length - p;
                const packet = Buffer.alloc(188, 0xff);
                packet[0] = 0x47;
                packet.writeUInt16BE(videoPid, 1);
                packet[3] = 0x30 | ((cc + shift + 1) & 0x0f);
                packet[4] = 183 - n; // adaptation_field_length
                if (183 - n > 0) packet[5] = 0x00;
                pes.copy(packet, 188 - n, p);
                out.push(packet);
              } else {
                out.push(tsPacket(videoPid, p === 0, cc + shift + 1, piece));
              }
              shift++;
            }
          }
          cc = (pkt[3] as number) & 0x0f;
          pkt[3] = ((pkt[3] as number) & 0xf0) | ((cc + shift) & 0x0f);
        }
        out.push(pkt);
      }
      const body = Buffer.concat(out);
      // A reader of the feed's FLV output, from before the hostile frame to after it.
      const reader = rawSocket(server.httpPort, 'GET /feed1.flv HTTP/1.1\r\nHost: x\r\n\r\n');
      t.after(() => reader.socket.destroy());
      const publisher = rawSocket(
        server.httpPort,
        `POST /feed1.ffm HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`,
      );
      t.after(() => publisher.socket.destroy());
      // -re by hand: 60 kB every 100 ms (the clip is 6 s of ~20 kB/s plus the 1.6 MB frame).
      for (let at = 0; at < body.length; at += 60_000) {
        publisher.socket.write(body.subarray(at, at + 60_000));
        await new Promise((resolve) => setTimeout(resolve, at < 1_700_000 && at > 60_000 * 3 ? 5 : 100));
      }
      await waitFor('the publisher to be answered', () => publisher.received !== '', 30_000);
      assert.match(publisher.received, /^HTTP\/1\.1 204/);
      const feed = server.ctx.feeds.get('feed1');
      assert.ok((feed?.stats.framesIn ?? 0) >= 55, `frames in: ${feed?.stats.framesIn}`);
      const warned = lines.filter((l) => l.level === 'warn' && l.msg.includes('FC_ERR_FRAME_TOO_LARGE'));
      assert.equal(warned.length, 1, JSON.stringify(lines.filter((l) => l.level !== 'info' && l.level !== 'debug').slice(0, 5)));
      assert.deepEqual(
        lines.filter((l) => l.level === 'error'),
        [],
      );
      // What the reader got: the clip (a few hundred kB at most), not the 2 MB FLV tag of the hostile frame.
      await waitFor('the reader to get the end of the feed', () => reader.received.length > 20_000, 30_000);
      assert.ok(reader.received.length < 1_000_000, `the reader got ${reader.received.length} bytes`);
    },
  );
});
