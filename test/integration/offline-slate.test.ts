// Issue 23, part 4: while a feed waits for its publisher, viewers got nothing and players froze or timed out. With
// OfflineSlate on, the outputs keep playing a picture with silence, and the publisher takes over again at its
// first keyframe with timestamps still moving forward.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeFrames, probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

describe('offline slate', { skip }, () => {
  test('a reader across a publisher gap gets continuous, decodable frames: publisher, slate, publisher again', async (t) => {
    const server = await startTestServer(
      t,
      'PublisherGracePeriod 60\n<Feed cam.ffm>   # the camera\n  OfflineSlate on\n</Feed>\n',
    );
    const feed = server.ctx.feeds.get('cam');
    assert.ok(feed !== undefined);
    let slateFrames = 0;
    let videoFrames = 0;
    feed.on('frame', (f) => {
      if (feed.tracks.find((tr) => tr.id === f.trackId)?.kind !== 'video') return;
      videoFrames++;
      if (feed.standIn !== undefined) slateFrames++;
    });

    const first = publish(server.url('/cam.ffm'), { seconds: 120 });
    t.after(() => first.stop());
    await waitFor('the slate to be encoded', () => server.owners.slates.status(feed).state === 'ready', 60_000);

    // Two readers across the gap: ffprobe for the timestamps, ffmpeg for decoding.
    const seconds = 16;
    const probe = probePackets(server.url('/cam.ts'), seconds, 120_000);
    const decode = decodeFrames(server.url('/cam.ts'), seconds, 120_000);
    await waitFor('both readers', () => server.ctx.connections.list().filter((c) => c.role === 'reader').length >= 2, 30_000);
    const before = videoFrames;
    await waitFor('the readers to get the first publisher', () => videoFrames > before + 25, 30_000);

    await first.stop();
    await waitFor('the slate to show', () => server.owners.slates.status(feed).state === 'showing');
    await waitFor('three seconds of slate', () => slateFrames > 75, 30_000);
    const api = (await (await fetch(server.url('/api/v1/feeds/cam'))).json()) as { showingSlate: boolean; publisher: unknown };
    assert.deepEqual([api.showingSlate, api.publisher], [true, null], 'the API says the slate is showing and nobody publishes');
    const second = publish(server.url('/cam.ffm'), { seconds: 120 });
    t.after(() => second.stop());
    await waitFor('the publisher to take over', () => feed.publisher !== undefined && feed.standIn === undefined, 30_000);

    const [probed, decoded] = await Promise.all([probe, decode]);
    const video = probed.packets.filter((p) => p.codec_type === 'video').map((p) => Number(p.dts_time));
    assert.ok(video.length > seconds * 25 * 0.8, `${video.length} video packets in ${seconds} s`);
    let largestGap = 0;
    for (let i = 1; i < video.length; i++) {
      const step = (video[i] as number) - (video[i - 1] as number);
      assert.ok(step > 0, `video DTS goes back at packet ${i}: ${video[i - 1]} -> ${video[i]}`);
      largestGap = Math.max(largestGap, step);
    }
    t.diagnostic(
      `${video.length} video packets, largest DTS step ${largestGap.toFixed(3)} s, ${slateFrames} slate video frames, ${decoded.videoFrames} decoded`,
    );
    assert.ok(largestGap < 0.5, `largest video DTS step ${largestGap.toFixed(3)} s (no hole where the publisher was gone)`);
    assert.ok(slateFrames > 75, `${slateFrames} slate video frames were written`);
    assert.equal(decoded.errors, '', 'the decoder reports no error across both switches');
    assert.ok(decoded.videoFrames > seconds * 25 * 0.8, `${decoded.videoFrames} decoded video frames`);
  });

  test('without OfflineSlate the feed writes nothing while it waits (the behaviour the slate replaces)', async (t) => {
    const server = await startTestServer(t, 'PublisherGracePeriod 60\n<Feed cam.ffm>\n</Feed>\n');
    const feed = server.ctx.feeds.get('cam');
    assert.ok(feed !== undefined);
    const pub = publish(server.url('/cam.ffm'), { seconds: 120 });
    t.after(() => pub.stop());
    await waitFor('the publisher', () => feed.publisher !== undefined && feed.stats.framesIn > 25, 30_000);
    await pub.stop();
    await waitFor('the publisher to be gone', () => feed.publisher === undefined);
    assert.equal(server.owners.slates.status(feed).state, 'off');
    assert.equal(feed.standIn, undefined);
  });
});
