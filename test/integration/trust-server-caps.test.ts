// Issue 25 (trust, round two), what the first round left: the HTTP keep-alive idle time was a fixed
// 5 s; the RTMP memory cap was per connection only (many connections together were unbounded); the
// server-wide cap on unfinished PES covered HTTP push only, not a pulled Source. Hostile bytes each.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createIngestBudgets } from '../../src/media/ingest-budgets.js';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { RtmpTestClient } from '../helpers/rtmp-client.js';
import { chunk0 } from '../helpers/rtmp-chunks.js';
import { recordingLogger, type LogLine } from '../helpers/recording-logger.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';
import { programTables, tsPacket } from '../helpers/ts-packets.js';

const MiB = 1024 * 1024;

interface Raw {
  socket: Socket;
  received: string;
  closed: boolean;
}

function rawSocket(port: number, bytes?: string | Buffer): Raw {
  const socket = connect({ port, host: '127.0.0.1' });
  const raw: Raw = { socket, received: '', closed: false };
  if (bytes !== undefined) socket.write(bytes);
  socket.on('data', (d: Buffer) => (raw.received += d.toString('latin1')));
  socket.on('close', () => (raw.closed = true));
  socket.on('error', () => undefined);
  return raw;
}

describe('issue 25: KeepAliveTimeout', () => {
  test('an HTTP connection idle after its request is closed after KeepAliveTimeout (announced in Keep-Alive), giving its slot back', async (t) => {
    const server = await startTestServer(t, 'KeepAliveTimeout 1\nMaxClients 4\nMaxConnectionsPerAddress 0\n');
    assert.equal(server.ctx.config.keepAliveTimeoutMs, 1000);
    // Four clients ask once, keep the connection and say nothing more: every slot is taken.
    const idle = Array.from({ length: 4 }, () => rawSocket(server.httpPort, 'GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n'));
    t.after(() => idle.forEach((s) => s.socket.destroy()));
    await waitFor('the four answers', () => idle.every((s) => s.received.includes('\r\n\r\n')));
    for (const s of idle) assert.match(s.received, /\r\nKeep-Alive: timeout=1\r\n/i);
    // Before: a fixed 5 s (Keep-Alive: timeout=5), and `KeepAliveTimeout` was an unknown directive.
    await waitFor('the idle connections to be closed', () => idle.every((s) => s.closed), 10_000);
    await waitFor('their slots to be given back', () => server.ctx.connections.size === 0);
  });
});

describe('issue 25: server-wide caps', () => {
  test('RTMP: incomplete messages over every connection are capped; the connection that passes the cap is closed with a log line', async (t) => {
    const lines: LogLine[] = [];
    const budgets = createIngestBudgets({ rtmpBytes: 4 * MiB });
    const server = await startTestServer(t, '', { log: recordingLogger(lines), ingestBudgets: budgets });
    const rtmp = new RtmpServer(server.ctx);
    const port = await rtmp.listen(0, '127.0.0.1');
    t.after(() => rtmp.close());
    // Five connections, each 15 chunks of 64 KiB (0.94 MiB) into a 4 MiB video message that never
    // ends: each is far under its own 16 MiB, together they pass the server's 4 MiB. (A part kept as
    // a view is charged for its whole socket read, so one connection is charged 0.94 to 1.9 MiB.)
    const setChunkSize = chunk0(2, 1, 4, Buffer.from([0, 1, 0, 0])); // 65536
    const clients: { client: RtmpTestClient; conn: number; closed: () => boolean }[] = [];
    for (let i = 0; i < 5; i++) {
      const client = await RtmpTestClient.open('127.0.0.1', port);
      t.after(() => client.socket.destroy());
      await client.connect('live', `rtmp://127.0.0.1:${port}/live`);
      const parts = [setChunkSize, chunk0(10, 9, 4 * MiB, Buffer.alloc(65536, 0x17), 1)];
      for (let k = 1; k < 15; k++) parts.push(Buffer.from([0xc0 | 10]), Buffer.alloc(65536, 0x17));
      const bytes = Buffer.concat(parts);
      let closed = false;
      void client.closed.then(() => (closed = true));
      const conn = server.ctx.connections.list().find((c) => c.protocol === 'RTMP' && !clients.some((k) => k.conn === c.id));
      assert.ok(conn);
      const before = conn.bytesIn;
      client.socket.write(bytes);
      clients.push({ client, conn: conn.id, closed: () => closed });
      // One after the other: the first two fit whatever they are charged.
      await waitFor(`connection ${i + 1} to be read`, () => closed || conn.bytesIn - before >= bytes.length, 30_000);
    }
    // Before the fix nothing was closed: 4.7 MiB or more held, and 1000 connections could hold 16 GiB.
    await waitFor('a connection past the cap to be closed', () => clients.some((c) => c.closed()));
    assert.deepEqual(
      clients.slice(0, 2).map((c) => c.closed()),
      [false, false],
    );
    const line = lines.find(
      (l) => l.msg === 'rtmp connection closed' && /every RTMP connection/.test(String(l.fields['reason'])),
    );
    assert.ok(line, 'a warning names the server-wide cap');
    assert.equal(line.level, 'warn');
    assert.equal(line.fields['code'], 'FC_ERR_LIMIT_EXCEEDED');
    assert.ok(budgets.rtmp.held <= 4 * MiB, `${budgets.rtmp.held} bytes held`);
    // The two others are still open; when they go, what they held is given back.
    for (const c of clients) c.client.socket.destroy();
    await waitFor('every RTMP connection to be gone', () => server.ctx.connections.size === 0);
    assert.equal(budgets.rtmp.held, 0);
  });

  test('MPEG-TS from a pulled Source: unfinished PES count against the server-wide cap, and are given back when the source stops', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-caps-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // What the pulled stream gives the server: a PMT of 8 video PIDs, each 1 MiB into a PES that never
    // ends. A stand-in for ffmpeg writes those bytes to its stdout and waits, as a pull of a hostile
    // udp:// or srt:// source might (ffmpeg itself would pass complete PES only).
    const pids = Array.from({ length: 8 }, (_, i) => 0x100 + i);
    const pesStart = Buffer.concat([
      Buffer.from([0x00, 0x00, 0x01, 0xe0, 0x00, 0x00]), // video stream, PES_packet_length 0 (unbounded)
      Buffer.from([0x80, 0x80, 0x05, 0x21, 0x00, 0x01, 0x00, 0x01]), // PTS only
      Buffer.alloc(170, 0x11),
    ]);
    const packets: Buffer[] = [programTables(pids), ...pids.map((pid) => tsPacket(pid, true, 0, pesStart))];
    for (let k = 1; k <= Math.ceil(MiB / 184); k++)
      for (const pid of pids) packets.push(tsPacket(pid, false, k, Buffer.alloc(184, 0x22)));
    writeFileSync(join(dir, 'hostile.ts'), Buffer.concat(packets));
    const fake = join(dir, 'fake-ffmpeg');
    writeFileSync(fake, `#!/bin/sh\nexec tail -c +1 -f ${join(dir, 'hostile.ts')}\n`);
    chmodSync(fake, 0o755);

    const lines: LogLine[] = [];
    const budgets = createIngestBudgets({ pesBytes: 4 * MiB });
    const server = await startTestServer(
      t,
      `FFmpegPath ${fake}\n<Feed pulled.ffm>\n  Source udp://127.0.0.1:9\n  OnDemand off\n</Feed>\n`,
      {
        log: recordingLogger(lines),
        ingestBudgets: budgets,
      },
    );
    // Before the fix the source's demuxer had no part in the server's budget: 8 MiB held, none of it counted.
    await waitFor(
      'a PES of the source to be refused for the server-wide cap',
      () =>
        lines.some((l) =>
          /the server's publishers hold \d+ bytes of unfinished PES \(limit 4194304\)/.test(String(l.fields['warning'])),
        ),
      30_000,
    );
    assert.ok(budgets.pes.held > 0 && budgets.pes.held <= 4 * MiB, `${budgets.pes.held} bytes held`);
    await server.owners.sources.closeAll();
    await waitFor('the source to give its bytes back', () => budgets.pes.held === 0);
  });
});
