// Feeds whose publisher is an ffmpeg child of the server, as the config declares them: `Launch`
// (ffserver ref §2.3) and `Source URL` (here a file made with ffmpeg at test time), on demand by
// default (up with the first reader, down after TranscodeIdleTimeout), `OnDemand off` from the
// start, `NoLoop` playing a file once and ending the feed. Uses the server's own SourceManager.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAUNCH_TEST_SOURCE } from '../helpers/config-blocks.js';
import { alive, childrenNamed } from '../helpers/processes.js';
import { probePackets, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { feedSource as source, makeClip, sourceGone } from '../helpers/on-demand-source.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

function videoSpan(probe: Awaited<ReturnType<typeof probePackets>>): number {
  const times = probe.packets
    .filter((p) => p.codec_type === 'video')
    .map((p) => Number(p.dts_time))
    .filter(Number.isFinite);
  return times.length === 0 ? 0 : Math.max(...times) - Math.min(...times);
}

test('a Launch feed comes up on the first reader and goes down when idle', { skip, timeout: 60_000 }, async (t) => {
  const server = await startTestServer(
    t,
    `TranscodeIdleTimeout 0.5
<Feed cam.ffm>
  ${LAUNCH_TEST_SOURCE}
</Feed>`,
  );
  assert.equal(source(server, 'cam')?.running, false, 'nothing runs before a reader comes');
  assert.deepEqual(childrenNamed('ffmpeg'), []);
  const probe = await probePackets(server.url('/cam.flv'), 2);
  assert.equal(probe.streams.find((s) => s.codec_type === 'video')?.codec_name, 'h264');
  assert.equal(probe.streams.find((s) => s.codec_type === 'video')?.width, 160);
  const pid = source(server, 'cam')?.pid;
  await waitFor('the source to stop when idle', () => source(server, 'cam')?.running === false);
  assert.ok(pid === undefined || !alive(pid));
  assert.equal(source(server, 'cam')?.starts, 1);
  assert.equal(source(server, 'cam')?.kind, 'launch');
});

test(
  'a pulled file Source loops, comes up on the first reader, goes down when idle; NoLoop ends the feed',
  { skip, timeout: 90_000 },
  async (t) => {
    const clip = await makeClip(t);
    const server = await startTestServer(
      t,
      `TranscodeIdleTimeout 0.5
PublisherGracePeriod 1
<Feed looped.ffm>
  Source ${clip}
</Feed>
<Feed once.ffm>
  Source file://${clip}
  NoLoop
</Feed>`,
    );
    assert.equal(source(server, 'looped')?.kind, 'pull');
    assert.equal(source(server, 'looped')?.running, false, 'on demand: nothing runs before a reader');
    assert.deepEqual(childrenNamed('ffmpeg'), []);

    // 4 s of a 2 s clip: only a looped source gives that much.
    const looped = await probePackets(server.url('/looped.ts'), 4);
    assert.equal(looped.streams.find((s) => s.codec_type === 'video')?.width, 160);
    assert.ok(videoSpan(looped) > 3, `looped: ${videoSpan(looped).toFixed(2)} s of video from a 2 s file`);
    await sourceGone(server, 'looped', source(server, 'looped')?.pid, 'the looped source to stop when idle');
    assert.equal(source(server, 'looped')?.starts, 1, 'looping is ffmpeg -stream_loop, not restarts');

    // NoLoop: the response ends on its own (PublisherGracePeriod after the file's end).
    const started = Date.now();
    const once = await probePackets(server.url('/once.flv'), 30, 40_000);
    const span = videoSpan(once);
    assert.ok(span > 1 && span < 2.5, `NoLoop: ${span.toFixed(2)} s of video, the clip once`);
    assert.ok(Date.now() - started < 30_000, 'the reader ended with the feed, not at the read limit');
    await waitFor('the NoLoop source to be finished', () => source(server, 'once')?.running === false);
    assert.equal(source(server, 'once')?.starts, 1, 'a finished NoLoop source is not restarted');
  },
);

test('OnDemand off runs the source from the start, without readers', { skip, timeout: 60_000 }, async (t) => {
  const clip = await makeClip(t);
  const server = await startTestServer(
    t,
    `TranscodeIdleTimeout 0.5
<Feed always.ffm>
  Source ${clip}
  OnDemand off
</Feed>`,
  );
  await waitFor('the source to run', () => source(server, 'always')?.running === true);
  assert.equal(source(server, 'always')?.onDemand, false);
  await waitFor('the feed to have tracks with no reader', () => (server.ctx.feeds.get('always')?.tracks.length ?? 0) === 2);
  assert.equal(childrenNamed('ffmpeg').length, 1);
  const probe = await probePackets(server.url('/always.flv'), 1);
  assert.ok(probe.packets.length > 0);
  // Still running long after the reader left (TranscodeIdleTimeout is 0.5 s).
  const pid = source(server, 'always')?.pid;
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(source(server, 'always')?.pid, pid);
  assert.equal(source(server, 'always')?.running, true);
  await server.close();
  assert.ok(pid !== undefined && !alive(pid), 'stopped with the server');
});
