// Launch feeds (ffserver ref §2.3): the server runs ffmpeg itself, on demand: the child comes up
// with the first reader and goes down after the idle timeout.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SourceManager } from '../../src/transcode/launch.js';
import { TranscodeRoute } from '../../src/transcode/route.js';
import { TranscoderManager } from '../../src/transcode/transcoder-manager.js';
import { alive } from '../helpers/processes.js';
import { probePackets, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

test('a Launch feed comes up on the first reader and goes down when idle', { skip, timeout: 60_000 }, async (t) => {
  const server = await startTestServer(
    t,
    `<Feed cam.ffm>
  Launch ffmpeg -re -f lavfi -i testsrc2=size=160x120:rate=10 -f lavfi -i sine=sample_rate=44100
</Feed>`,
  );
  const sources = new SourceManager(server.ctx, { idleTimeoutMs: 500 });
  const manager = new TranscoderManager(server.ctx, { acquireSource: (k) => sources.acquire(k) });
  server.http.addRoute(new TranscodeRoute(server.ctx, manager, sources));
  t.after(async () => {
    await manager.closeAll();
    await sources.closeAll();
  });
  assert.equal(sources.get('cam')?.pid, undefined, 'nothing runs before a reader comes');
  const probe = await probePackets(server.url('/cam.flv'), 2);
  assert.equal(probe.streams.find((s) => s.codec_type === 'video')?.codec_name, 'h264');
  assert.equal(probe.streams.find((s) => s.codec_type === 'video')?.width, 160);
  const pid = sources.status()[0]?.pid ?? sources.get('cam')?.status().pid;
  await waitFor('the source to stop when idle', () => sources.get('cam')?.pid === undefined);
  assert.ok(pid === undefined || !alive(pid));
  assert.equal(sources.status()[0]?.starts, 1);
});
