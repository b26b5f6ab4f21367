// Issue #7: some on-demand restarts of a two-rendition ladder gave new readers no picture at all.
// Cause: ffmpeg's `-fflags nobuffer` threw away the GOP cache's keyframe, the ladder's video began
// one source GOP after its audio, and the server's TS demuxer, which waits 2 s of stream time for
// every track's codec config, dropped the ladder's video tracks for good (sound only).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodedStream } from '../helpers/config-blocks.js';
import { decodeFrames, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

const CONFIG = `
TranscodeIdleTimeout 1
<Feed feed1.ffm>
</Feed>
${encodedStream('hi.flv', { size: '320x180', kbps: 300 })}
${encodedStream('lo.flv', { size: '160x90', kbps: 120 })}
`;

const RESTARTS = 4;

test(
  'every on-demand restart of a two-rendition ladder gives readers of both renditions decodable video',
  { skip, timeout: 240_000 },
  async (t) => {
    const server = await startTestServer(t, CONFIG);
    // A 3 s source GOP: when the GOP cache's keyframe was lost, the video came 2.5 s after the audio.
    const pub = publish(server.url('/feed1.ffm'), { seconds: 200, size: '320x240', extra: ['-g', '75'] });
    t.after(() => pub.stop());
    await waitFor('the feed to have tracks', () => server.ctx.feeds.get('feed1')?.tracks.length === 2, 20_000);
    const ladderPid = (): number | undefined => server.ctx.children?.transcoders().find((s) => s.running)?.pid;

    const pids = new Set<number>();
    for (let i = 0; i < RESTARTS; i++) {
      await waitFor(`the ladder to stop before restart ${i}`, () => ladderPid() === undefined, 30_000);
      // Both renditions at once, and each one alone first in turn: the order varied in the bench.
      const order = i % 2 === 0 ? ['/hi.flv', '/lo.flv'] : ['/lo.flv', '/hi.flv'];
      const results = await Promise.all(order.map((path) => decodeFrames(server.url(path), 1.5, 40_000)));
      const pid = ladderPid();
      if (pid !== undefined) pids.add(pid);
      for (const [k, r] of results.entries()) {
        assert.ok(
          r.videoFrames > 0,
          `restart ${i}: ${order[k] ?? '?'} decoded no video frame (audio frames: ${r.audioFrames}; ${r.errors})`,
        );
      }
    }
    assert.ok(pids.size >= RESTARTS - 1, `the ladder was restarted on demand (pids seen: ${[...pids].join(', ')})`);
  },
);
