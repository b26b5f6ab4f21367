// Issue 25 item 1: a start time no date can hold (`?start=-9000000000000`, `?buffer=9e12`, a
// 20-digit start, `Range: npt=999999999-`) sent as raw bytes to a feed with a File. Each gets a
// precise 4xx naming what the file holds, and the server goes on serving. Before the fix the HTTP
// request threw a RangeError in an unawaited handler, an unhandled rejection that ended the process
// (and this test file with it); RTSP answered 500.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { tempDir } from '../helpers/feedfile-fixtures.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { RawRtspClient, startRtsp } from '../helpers/rtsp-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

/** One HTTP/1.1 GET written as bytes; resolves with the status line's code and the body. */
function rawGet(port: number, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  });
}

const HOSTILE_QUERIES = [
  'start=-9000000000000',
  'buffer=9000000000000',
  'start=-12345678901234567890',
  `start=-${'9'.repeat(400)}`,
  'start=-99999999999h',
  'start=-999999999:00:00',
  'buffer=99999999999999999999999',
];

describe('time values no date can hold', { skip }, () => {
  test('HTTP and RTSP answer 416/457 with what the file holds, and the server keeps serving', async (t) => {
    const file = join(tempDir(t), 'feed1.ffm');
    const server = await startTestServer(t, `<Feed feed1.ffm>\nFile ${file}\nFileMaxSize 20M\n</Feed>\n`);
    const { port: rtspPort, url } = await startRtsp(t, server);
    const writer = server.ctx.feedFiles.of(server.ctx.feeds.get('feed1')!)!;
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-only', seconds: 60, size: '160x120', bitrateK: 100 });
    t.after(() => pub.stop());
    await waitFor('2 s in the feed file', () => writer.status.durationSeconds >= 2, 30_000);

    for (const format of ['ts', 'flv']) {
      for (const query of HOSTILE_QUERIES) {
        const r = await rawGet(server.httpPort, `/feed1.${format}?${query}`);
        assert.equal(r.status, 416, `/feed1.${format}?${query}: ${r.body}`);
        assert.match(r.body, /outside what the feed file of feed1 holds: from 20\d\d-.*Z to 20\d\d-.*Z/, query);
      }
    }

    const rtsp = new RawRtspClient(rtspPort);
    t.after(() => rtsp.close());
    for (const [path, range] of [
      ['/feed1', 'npt=999999999-'],
      ['/feed1', 'npt=999999:00:00-'],
      ...HOSTILE_QUERIES.map((q) => [`/feed1?${q}`, 'npt=0.000-'] as const),
    ] as const) {
      const setup = await rtsp.request('SETUP', url(`${path}/streamid=0`), { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
      assert.equal(setup.status, 200, `${path}: ${setup.body}`);
      const session = setup.headers.get('session')?.split(';')[0] ?? '';
      const play = await rtsp.request('PLAY', url(path), { Session: session, Range: range });
      assert.equal(play.status, 457, `${path} Range: ${range}: ${play.body}`);
      assert.match(play.body, /outside what the feed file of feed1 holds/);
      await rtsp.request('TEARDOWN', url(path), { Session: session });
    }

    // Still serving: a live reader gets bytes after all of the above.
    const live = await new Promise<number>((resolve, reject) => {
      const socket = connect(server.httpPort, '127.0.0.1');
      let got = 0;
      socket.on('data', (d: Buffer) => {
        got += d.length;
        if (got > 4096) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.on('error', reject);
      socket.write('GET /feed1.ts HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    });
    assert.ok(live > 4096);
  });
});
