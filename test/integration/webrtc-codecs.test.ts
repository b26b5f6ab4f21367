// VP8, VP9 and AV1 over WebRTC (issue 22): a browser publishing only VP8, VP9 or AV1 over WHIP was
// refused with 406. Its video (RFC 7741, RFC 9628, the AOM AV1 RTP format) is now taken into the feed and passed
// through to WHEP viewers: Chromium publishes its fake camera in that codec only and a second page
// plays the feed, decoding every frame it receives.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { skipWithoutChromium } from '../helpers/browser.js';
import { HlsRoute } from '../../src/protocols/hls/route.js';
import { decodeFrames, FFPROBE, probePackets, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { waitFor } from '../helpers/test-server.js';
import { WHEP_CLIENT, WHIP_CLIENT } from '../helpers/webrtc-browser.js';
import { sharedWebRtcBrowser, webrtcServer } from '../helpers/webrtc-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutChromium();

interface WhepStats {
  framesDecoded: number;
  framesReceived: number;
  codec: string;
}

describe('VP8, VP9 and AV1 over WebRTC', { skip }, () => {
  const browser = sharedWebRtcBrowser();

  for (const codec of ['VP8', 'VP9', 'AV1'] as const) {
    test(`a ${codec}-only WHIP publisher is taken and WHEP viewers get its ${codec} as it is`, { timeout: 90_000 }, async (t) => {
      const { server } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n');
      const publisher = await browser().newPage();
      t.after(() => publisher.close());
      await publisher.goto(server.url('/'));
      await publisher.evaluate(WHIP_CLIENT);
      const whip = await publisher.evaluate<{ status: number; text: string }>(
        `window.whipPublish(${JSON.stringify(server.url('/feed1/whip'))}, {}, 'video/${codec}')`,
      );
      assert.equal(whip.status, 201, whip.text);
      assert.match(whip.text, new RegExp(`a=rtpmap:\\d+ ${codec}/90000`));
      assert.doesNotMatch(whip.text, /H264/);
      await waitFor(
        `the ${codec} track with its size from a key frame`,
        () =>
          (server.ctx.feeds.get('feed1')?.tracks ?? []).some(
            (tr) => tr.codec === codec.toLowerCase() && tr.width === 640 && tr.height === 360,
          ),
        30_000,
      );

      const viewer = await browser().newPage();
      t.after(() => viewer.close());
      await viewer.goto(server.url('/'));
      await viewer.evaluate(WHEP_CLIENT);
      const whep = await viewer.evaluate<{ status: number; text: string }>(
        `window.whepPlay(${JSON.stringify(server.url('/feed1/whep'))})`,
      );
      assert.equal(whep.status, 201, whep.text);
      assert.match(whep.text, new RegExp(`a=rtpmap:\\d+ ${codec}/90000`));
      const stats = (): Promise<WhepStats> => viewer.evaluate<WhepStats>('window.whepStats()');
      await waitFor(`decoded ${codec} frames`, async () => (await stats()).framesDecoded > 10, 40_000);
      const first = await stats();
      await waitFor('50 more decoded frames', async () => (await stats()).framesDecoded >= first.framesDecoded + 50, 40_000);
      const last = await stats();
      assert.equal(last.codec, `video/${codec}`);
      const received = last.framesReceived - first.framesReceived;
      const decoded = last.framesDecoded - first.framesDecoded;
      assert.ok(decoded >= received - 2, `decoded ${decoded} of the ${received} frames received`);

      if (codec !== 'AV1') {
        // fMP4 HLS carries VP8 and VP9 (vp08/vp09 sample entries with vpcC): ffmpeg decodes the playlist.
        const hls = new HlsRoute(server.ctx);
        t.after(() => hls.close());
        server.http.addRoute(hls);
        const probe = await run(
          FFPROBE,
          [
            '-v',
            'error',
            '-select_streams',
            'v:0',
            '-show_entries',
            'stream=codec_name,width,height',
            '-of',
            'csv=p=0',
            server.url('/feed1/index.m3u8'),
          ],
          60_000,
        );
        assert.equal(probe.stdout.trim().split('\n')[0], `${codec.toLowerCase()},640,360`, probe.stderr);
        const decoded = await decodeFrames(server.url('/feed1/index.m3u8'), 2, 60_000);
        assert.ok(decoded.videoFrames >= 25, `${decoded.videoFrames} frames decoded from HLS; ${decoded.errors}`);
      }

      // A container without VP8, VP9 or AV1 here (MPEG-TS) still serves what it carries, the Opus audio, without
      // waiting for a video keyframe it will never mux.
      const probe = await probePackets(server.url('/feed1.ts'), 2);
      assert.deepEqual(
        probe.streams.map((st) => st.codec_name),
        ['opus'],
      );
    });
  }
});
