// Issue 24, item 9: an RTSP publisher whose video has B-frames gave readers repeated DTS on every
// output (RTP carries only PTS, and DTS was set to it), and RTSP readers over TCP got audio whose
// timestamps went back once ("non monotonically increasing dts"): sender reports came after the
// GOP cache.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HlsRoute } from '../../src/protocols/hls/route.js';
import { FFMPEG, probePackets, publish, run, skipWithoutFfmpeg, type ProbeResult } from '../helpers/media-tools.js';
import { probeRtsp, startRtsp } from '../helpers/rtsp-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

function assertVideoTimestamps(probe: ProbeResult, what: string): void {
  const video = probe.packets.filter((p) => p.codec_type === 'video' && p.dts_time !== undefined);
  assert.ok(video.length >= 20, `${what}: ${video.length} video packets`);
  const reordered = video.filter((p) => p.pts_time !== p.dts_time).length;
  assert.ok(reordered > 0, `${what}: B-frames (PTS != DTS) reach the reader`);
  for (let i = 0; i < video.length; i++) {
    const dts = Number(video[i]?.dts_time);
    const pts = Number(video[i]?.pts_time);
    assert.ok(dts <= pts + 1e-6, `${what}: packet ${i} has DTS ${dts} after PTS ${pts}`);
    if (i > 0) assert.ok(dts > Number(video[i - 1]?.dts_time), `${what}: DTS ${dts} at packet ${i} does not move forward`);
  }
}

describe('RTSP timestamps (issue 24, item 9)', { skip }, () => {
  test('B-frames published over RTSP get increasing DTS on .ts, .flv and HLS; RTSP/TCP readers get monotonic audio', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const hls = new HlsRoute(server.ctx, { partTargetMs: 500, segmentTargetMs: 1000 });
    server.http.addRoute(hls);
    t.after(() => hls.close());
    const { url } = await startRtsp(t, server);
    const pub = publish(url('/feed1'), {
      codecs: 'h264-aac',
      seconds: 60,
      format: 'rtsp' as 'flv',
      // Two B-frames between references (the lavfi source's zerolatency tune has none).
      extra: ['-bf', '2', '-rtsp_transport', 'tcp'],
    });
    t.after(() => pub.stop());
    const feed = server.ctx.feeds.get('feed1');
    await waitFor('the feed to get tracks from RTSP', () => (feed?.tracks.length ?? 0) === 2, 30_000);

    for (const path of ['/feed1.ts', '/feed1.flv', '/feed1/index.m3u8']) {
      assertVideoTimestamps(await probePackets(server.url(path), 3, 60_000), path);
    }
    assert.equal(feed?.clockRepairs.nonMonotonic, 0, 'the feed clock repaired no DTS');

    // RTSP over TCP: every audio packet after the one before, and ffmpeg has nothing to say.
    const probe = await probeRtsp(url('/feed1'), 'tcp', 3);
    const audio = probe.packets.filter((p) => p.codec_type === 'audio').map((p) => Number(p.pts_time));
    assert.ok(audio.length > 50, `${audio.length} audio packets`);
    for (let i = 1; i < audio.length; i++)
      assert.ok(audio[i]! > audio[i - 1]!, `audio PTS at packet ${i}: ${audio[i]} after ${audio[i - 1]}`);
    const { stderr } = await run(
      FFMPEG,
      ['-hide_banner', '-nostdin', '-v', 'warning', '-rtsp_transport', 'tcp', '-i', url('/feed1'), '-t', '3', '-f', 'null', '-'],
      30_000,
    );
    assert.doesNotMatch(stderr, /non monotonically increasing dts/);
  });
});
