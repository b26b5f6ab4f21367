// Issue #7: an RTMP player of a Launch/Source feed did not start the feed's on-demand source (only
// HTTP readers did), so it waited for a publisher that never came. Now RTMP play holds the source
// while it plays, and lets it go (stopped after TranscodeIdleTimeout) when the player leaves.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { decodeFrames, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { feedSource, sourceGone, startOnDemandClip } from '../helpers/on-demand-source.js';

const skip = skipWithoutFfmpeg();

test(
  'an RTMP player of an on-demand Source feed starts the source, which stops once it left',
  { skip, timeout: 90_000 },
  async (t) => {
    const server = await startOnDemandClip(t, 'feedcast-rtmp-source-', 'a player comes');
    const rtmp = new RtmpServer(server.ctx);
    const port = await rtmp.listen(0, '127.0.0.1');
    t.after(() => rtmp.close());
    const source = () => feedSource(server, 'cam');

    // 3 s of a 2 s clip played over RTMP: the source ran (and looped) for this player alone.
    const decoded = await decodeFrames(`rtmp://127.0.0.1:${port}/live/cam`, 3, 40_000);
    assert.ok(decoded.videoFrames >= 20, `decoded ${decoded.videoFrames} video frames over RTMP (${decoded.errors})`);
    assert.ok(decoded.audioFrames > 0, 'and audio');
    const pid = source()?.pid;
    assert.ok(pid !== undefined, 'the source ran for the RTMP player');

    await sourceGone(server, 'cam', pid, 'the player to be let go and the source to stop after the idle timeout');
    assert.equal(source()?.readers, 0);
  },
);
