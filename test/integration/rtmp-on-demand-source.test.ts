// Issue #7: an RTMP player of a Launch/Source feed did not start the feed's on-demand source (only
// HTTP readers did), so it waited for a publisher that never came. Now RTMP play holds the source
// while it plays, and lets it go (stopped after TranscodeIdleTimeout) when the player leaves.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { alive, childrenNamed } from '../helpers/processes.js';
import { decodeFrames, FFMPEG, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

test(
  'an RTMP player of an on-demand Source feed starts the source, which stops once it left',
  { skip, timeout: 90_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-rtmp-source-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const clip = join(dir, 'clip.ts');
    const made = await run(
      FFMPEG,
      [
        ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10', '-f', 'lavfi', '-i', 'sine=sample_rate=44100'],
        ...['-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-c:a', 'aac', '-f', 'mpegts', clip],
      ],
      30_000,
    );
    assert.equal(made.code, 0, made.stderr);

    const server = await startTestServer(
      t,
      `TranscodeIdleTimeout 0.5
<Feed cam.ffm>
  Source ${clip}
</Feed>`,
    );
    const rtmp = new RtmpServer(server.ctx);
    const port = await rtmp.listen(0, '127.0.0.1');
    t.after(() => rtmp.close());
    const source = (): { running: boolean; pid: number | undefined; readers: number } | undefined =>
      server.ctx.children?.sources().find((s) => s.feed === 'cam');

    assert.equal(source()?.running, false, 'on demand: nothing runs before a player comes');
    assert.deepEqual(childrenNamed('ffmpeg'), []);

    // 3 s of a 2 s clip played over RTMP: the source ran (and looped) for this player alone.
    const decoded = await decodeFrames(`rtmp://127.0.0.1:${port}/live/cam`, 3, 40_000);
    assert.ok(decoded.videoFrames >= 20, `decoded ${decoded.videoFrames} video frames over RTMP (${decoded.errors})`);
    assert.ok(decoded.audioFrames > 0, 'and audio');
    const pid = source()?.pid;
    assert.ok(pid !== undefined, 'the source ran for the RTMP player');

    await waitFor(
      'the player to be let go and the source to stop after the idle timeout',
      () => source()?.running === false,
      15_000,
    );
    assert.equal(source()?.readers, 0);
    assert.ok(!alive(pid), `the source ffmpeg (pid ${pid}) is gone`);
  },
);
