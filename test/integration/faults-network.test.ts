// Faults (issue 11): a publisher's network cut mid-frame (HTTP push and RTMP, mid-packet and
// mid-chunk) and readers vanishing mid-write (some never reading, so writes are pending). The
// server keeps serving a healthy reader of another feed throughout, frees every connection, and
// the cut feed takes a new publisher at once.
//
// The other faults of the issue have their tests elsewhere:
// - an ffmpeg child SIGKILLed: test/integration/transcode.test.ts ("SIGKILL" of the transcoder child,
//   the supervisor restarts it and readers resume) and test/integration/children.test.ts;
// - the server SIGKILLed mid-write and restarted: test/integration/feedfile.test.ts ("crash: SIGKILL
//   mid-write, restart recovers, every block served passes its checksum");
// - the FeedFile's disk full or read-only: test/integration/faults-disk.test.ts.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { encodeRtmpMessages } from '../../src/formats/rtmp/chunk-writer.js';
import { RtmpType } from '../../src/formats/rtmp/messages.js';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { RtmpTestClient, statusCode } from '../helpers/rtmp-client.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const TS = readFileSync(new URL('../fixtures/h264-aac.ts', import.meta.url));
const FLV = readFileSync(new URL('../fixtures/h264-aac.flv', import.meta.url));

/** A reader that counts bytes until closed. */
function healthyReader(t: TestContext, url: string): { bytes: () => number; res: Promise<IncomingMessage> } {
  let bytes = 0;
  const res = new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, (r) => {
      r.on('data', (d: Buffer) => (bytes += d.length));
      r.on('error', () => undefined);
      resolve(r);
    });
    req.on('error', reject);
    req.end();
    t.after(() => req.destroy());
  });
  return { bytes: () => bytes, res };
}

/** Waits until the healthy reader has received `more` further bytes (it is still being served). */
async function stillServed(reader: { bytes: () => number }, more = 50_000): Promise<void> {
  const from = reader.bytes();
  await waitFor('the healthy reader to keep receiving', () => reader.bytes() > from + more, 20_000);
}

/** POSTs the first `cut` bytes of `body` as a chunked upload, then drops the TCP connection without a FIN. */
function cutPublisher(port: number, path: string, body: Buffer, cut: number): Promise<void> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1', () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const part = body.subarray(0, cut);
      s.write(`${part.length.toString(16)}\r\n`);
      s.write(part, () => setTimeout(() => s.resetAndDestroy(), 200));
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve());
  });
}

async function setup(t: TestContext): Promise<{ server: TestServer; reader: { bytes: () => number } }> {
  const server = await startTestServer(t, '<Feed cut.ffm>\n</Feed>\n<Feed healthy.ffm>\n</Feed>\nPublisherTimeout 0.5\n');
  const p = publish(server.url('/healthy.ffm'), { seconds: 60 });
  t.after(() => p.stop());
  await waitFor('the healthy feed', () => (server.ctx.feeds.get('healthy')?.tracks.length ?? 0) > 0, 20_000);
  const reader = healthyReader(t, server.url('/healthy.flv'));
  await reader.res;
  await stillServed(reader, 10_000);
  return { server, reader };
}

describe('faults: network', { skip }, () => {
  test('HTTP publishers cut mid-packet and mid-frame: the feed takes a new publisher at once; others are served', async (t) => {
    const { server, reader } = await setup(t);
    const feed = server.ctx.feeds.get('cut');
    assert.ok(feed !== undefined);
    // Cut at odd offsets: inside a TS packet, inside a PES (frame), inside an FLV tag.
    for (const [body, cut] of [
      [TS, 188 * 300 + 77],
      [TS, 188 * 611 + 5],
      [FLV, 40_000 + 3],
    ] as const) {
      await cutPublisher(server.httpPort, '/cut.ffm', body, cut);
      await waitFor('the cut publisher to be detached', () => feed.publisher === undefined, 10_000);
    }
    assert.ok(feed.stats.framesIn > 0, 'the frames before each cut were taken');
    // A complete publish right after is accepted (no 409 busy).
    const ok = await new Promise<number>((resolve, reject) => {
      const req = request(server.url('/cut.ffm'), { method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(TS);
    });
    assert.equal(ok, 204);
    await stillServed(reader);
    assert.equal((await fetch(server.url('/api/v1/health'))).status, 200);
  });

  test('an RTMP publisher cut mid-chunk: the feed takes a new RTMP publisher at once; others are served', async (t) => {
    const { server, reader } = await setup(t);
    const rtmp = new RtmpServer(server.ctx);
    const port = await rtmp.listen(0, '127.0.0.1');
    t.after(() => rtmp.close());
    const feed = server.ctx.feeds.get('cut');
    assert.ok(feed !== undefined);
    for (let round = 0; round < 3; round++) {
      const c = await RtmpTestClient.open('127.0.0.1', port);
      await c.connect('live', `rtmp://127.0.0.1:${port}/live`);
      const { status, streamId } = await c.publish('cut');
      assert.equal(statusCode(status), 'NetStream.Publish.Start');
      // A video message of 10 000 bytes in 128-byte chunks, cut in the middle of a chunk.
      const payload = Buffer.alloc(10_000, 0x11);
      payload[0] = 0x17;
      const bytes = encodeRtmpMessages([{ csid: 6, typeId: RtmpType.video, timestampMs: 0, streamId, payload }], 128);
      c.raw(bytes.subarray(0, 5000 + round * 37));
      await new Promise((r) => setTimeout(r, 100));
      c.socket.resetAndDestroy();
      await waitFor('the cut RTMP publisher to be detached', () => feed.publisher === undefined, 10_000);
    }
    const again = await RtmpTestClient.open('127.0.0.1', port);
    t.after(() => again.close());
    await again.connect('live', `rtmp://127.0.0.1:${port}/live`);
    assert.equal(statusCode((await again.publish('cut')).status), 'NetStream.Publish.Start');
    await stillServed(reader);
  });

  test('readers vanishing mid-write (reading, or stalled with writes pending) are all freed; others are served', async (t) => {
    const { server, reader } = await setup(t);
    const base = server.ctx.connections.size;
    const sockets: Socket[] = [];
    t.after(() => sockets.forEach((s) => s.destroy()));
    for (let i = 0; i < 20; i++) {
      const s = connect(server.httpPort, '127.0.0.1');
      s.on('error', () => undefined);
      s.write(`GET /healthy.${i % 2 === 0 ? 'flv' : 'ts'} HTTP/1.1\r\nHost: x\r\n\r\n`);
      // Half never read (the server's writes back up and wait for drain), half read a little.
      if (i % 3 === 0) s.pause();
      sockets.push(s);
    }
    await waitFor('the readers to be attached', () => server.ctx.connections.size >= base + 20, 10_000);
    await stillServed(reader, 20_000);
    // Vanish mid-write: RST without FIN, while the server is writing to them.
    for (const s of sockets) s.resetAndDestroy();
    await waitFor('every vanished reader to be freed', () => server.ctx.connections.size === base, 10_000);
    await stillServed(reader);
    const { outputs } = (await (await fetch(server.url('/api/v1/outputs'))).json()) as { outputs: { readers: number }[] };
    assert.equal(
      outputs.reduce((a, o) => a + o.readers, 0),
      1,
      'only the healthy reader is left on the outputs',
    );
  });
});
