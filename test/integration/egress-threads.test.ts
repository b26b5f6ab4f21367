// `EgressThreads 1`: HTTP-FLV viewers of a live feed are served by a worker thread's send() calls,
// and what they get decodes with ffmpeg; when they leave, the thread lets their sockets go. Without
// the native module the server refuses to start and says why.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { nativeFanout, nativeFanoutStatus } from '../../src/streams/native-fanout.js';
import { decodeFrames, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { freePorts, startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || (nativeFanout === undefined ? `native fan-out: ${nativeFanoutStatus}` : false);

test(
  'three ffmpeg viewers of an HTTP-FLV stream sent by an egress thread decode it; their sockets are let go after',
  { skip },
  async (t) => {
    const server = await startTestServer(t, 'EgressThreads 1', { demoFeeds: ['demo'] });
    const threads = server.ctx.outputs.egress;
    assert.ok(threads, 'the server started its egress threads');
    const viewers = [1, 2, 3].map(() => decodeFrames(server.url('/demo.flv'), 4));
    await waitFor('the viewers to be on the thread', () => threads.readers === 3);
    const results = await Promise.all(viewers);
    for (const r of results) {
      assert.equal(r.errors, '', 'ffmpeg decoded without errors');
      assert.ok(r.videoFrames >= 60, `about 4 s of video decoded (${r.videoFrames} frames)`);
      assert.ok(r.audioFrames > 0, 'audio decoded');
    }
    assert.ok(threads.batches > 30, `the thread sent the batches of a second of video at least (${threads.batches})`);
    await waitFor('the thread to close the viewers’ descriptors', () => threads.readers === 0);
  },
);

test('EgressThreads without the native module: the server refuses to start and says how to fix it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-egress-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'egress.conf');
  const [http, rtmp, rtsp] = await freePorts(3);
  const lines = [
    `HTTPPort ${http}`,
    `RTMPPort ${rtmp}`,
    `RTSPPort ${rtsp}`,
    'HTTPBindAddress 127.0.0.1',
    'RTMPBindAddress 127.0.0.1',
  ];
  writeFileSync(file, [...lines, 'RTSPBindAddress 127.0.0.1', 'EgressThreads 2', '<Feed feed1.ffm>', '</Feed>', ''].join('\n'));
  const main = new URL('../../src/main.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', main, '-f', file], {
    env: { ...process.env, FEEDCAST_NATIVE: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /EgressThreads 2: needs the native fan-out module/);
  assert.match(stderr, /scripts\/build-native\.mjs/);
});
