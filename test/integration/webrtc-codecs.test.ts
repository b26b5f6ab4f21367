// VP8, VP9 and AV1 over WebRTC (issue 22): a browser publishing only VP8, VP9 or AV1 over WHIP was
// refused with 406. Its video (RFC 7741, RFC 9628, the AOM AV1 RTP format) is now taken into the feed and passed
// through to WHEP viewers: Chromium publishes its fake camera in that codec only and a second page
// plays the feed, decoding every frame it receives. fMP4 HLS carries all three (ffmpeg decodes it; for
// AV1 hls.js in Chromium plays it too); MPEG-TS and RTSP carry AV1 (what they send, ffmpeg decodes).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { skipWithoutChromium } from '../helpers/browser.js';
import { av1CodecString } from '../../src/formats/av1/av1c.js';
import { Av1Depacketizer } from '../../src/formats/rtp/av1-rtp.js';
import { parseRtpPacket } from '../../src/formats/rtp/rtp-packet.js';
import type { Frame } from '../../src/media/frame.js';
import { HlsRoute } from '../../src/protocols/hls/route.js';
import { decodeFrames, FFPROBE, probePackets, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { publishAv1Ts } from '../helpers/av1-ts-publisher.js';
import { readLiveTs, type LiveTs } from '../helpers/live-ts.js';
import { RawRtspClient, startRtsp } from '../helpers/rtsp-tools.js';
import { waitFor } from '../helpers/test-server.js';
import { WHEP_CLIENT, WHIP_CLIENT } from '../helpers/webrtc-browser.js';
import { sharedWebRtcBrowser, webrtcServer } from '../helpers/webrtc-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutChromium();

interface WhepStats {
  framesDecoded: number;
  framesReceived: number;
  codec: string;
}

/** An RTSP client that depacketises the AV1 of interleaved channel 0, keeping the units from the first key frame. */
class Av1RtspClient extends RawRtspClient {
  readonly units: Buffer[] = [];
  private readonly depacketizer = new Av1Depacketizer();

  protected override onInterleaved(channel: number, data: Buffer): void {
    if (channel !== 0) return;
    for (const unit of this.depacketizer.push(parseRtpPacket(Buffer.from(data)))) {
      if (this.units.length > 0 || unit.keyframe) this.units.push(unit.data);
    }
  }
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

      // fMP4 HLS carries VP8, VP9 (vp08/vp09 sample entries with vpcC) and AV1 (av01 with the av1C of
      // the sequence header): ffmpeg decodes the playlist.
      const hls = new HlsRoute(server.ctx);
      t.after(() => hls.close());
      server.http.addRoute(hls);
      const hlsProbe = await run(
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
      assert.equal(hlsProbe.stdout.trim().split('\n')[0], `${codec.toLowerCase()},640,360`, hlsProbe.stderr);
      const decodedHls = await decodeFrames(server.url('/feed1/index.m3u8'), 2, 60_000);
      assert.ok(decodedHls.videoFrames >= 25, `${decodedHls.videoFrames} frames decoded from HLS; ${decodedHls.errors}`);

      if (codec === 'AV1') {
        // Chromium takes the codec string of the av1C (av01.P.LLT.DD) and hls.js plays the playlist.
        const config = server.ctx.feeds.get('feed1')?.tracks.find((tr) => tr.codec === 'av1')?.config;
        assert.ok(config !== undefined, 'the AV1 track has its av1C');
        const type = `video/mp4; codecs="${av1CodecString(config)}"`;
        const player = await browser().newPage();
        t.after(() => player.close());
        await player.goto(server.url('/web/vendor/hls.min.js'));
        await player.setContent('<video muted autoplay playsinline></video>');
        assert.equal(await player.evaluate<boolean>(`MediaSource.isTypeSupported(${JSON.stringify(type)})`), true, type);
        await player.addScriptTag({ url: server.url('/web/vendor/hls.min.js') });
        await player.evaluate(`(() => {
          const hls = new Hls({ lowLatencyMode: true });
          window.hlsErrors = [];
          hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.hlsErrors.push(d.details); });
          hls.loadSource(${JSON.stringify(server.url('/feed1/index.m3u8'))});
          hls.attachMedia(document.querySelector('video'));
        })()`);
        // hls.js starts near the live edge, so currentTime says little: count decoded frames.
        await player.waitForFunction(
          "document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames > 25",
          undefined,
          { timeout: 60_000 },
        );
        const played = await player.evaluate<{ frames: number; width: number }>(
          "(() => { const v = document.querySelector('video'); return { frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth }; })()",
        );
        assert.ok(played.frames > 25, `${played.frames} AV1 frames decoded by hls.js`);
        assert.equal(played.width, 640);
        assert.deepEqual(await player.evaluate<string[]>('window.hlsErrors'), []);
      }

      if (codec === 'AV1') {
        // MPEG-TS carries AV1 (AOM's carriage spec). Debian's ffmpeg 5.1 demuxes no AV1 from TS (a
        // bin_data PID), so Feedcast's demuxer reads /feed1.ts and ffmpeg decodes the OBUs it got.
        const av1Frames = (got: LiveTs): Frame[] => {
          const id = got.tracks.find((tr) => tr.codec === 'av1')?.id;
          return got.frames.filter((f) => f.trackId === id);
        };
        const ts = await readLiveTs(server.url('/feed1.ts'), (got) => av1Frames(got).length >= 50, 60_000);
        assert.deepEqual(
          ts.tracks.map((tr) => `${tr.codec} ${tr.width ?? ''}`),
          ['av1 640', 'opus '],
        );
        const units = av1Frames(ts);
        assert.equal(units[0]?.keyframe, true, 'the TS starts on a key frame');
        const dir = mkdtempSync(join(tmpdir(), 'feedcast-av1-ts-'));
        t.after(() => rmSync(dir, { recursive: true, force: true }));
        const file = join(dir, 'from-ts.obu');
        const td = Buffer.from([0x12, 0x00]); // a temporal delimiter before each unit: the low-overhead OBU stream
        writeFileSync(file, Buffer.concat(units.flatMap((u) => [td, u.data])));
        const decoded = await decodeFrames(file, 3600);
        assert.equal(decoded.errors, '', 'decodes without errors');
        assert.equal(
          decoded.videoFrames,
          units.length,
          `${decoded.videoFrames} of the ${units.length} AV1 frames from /feed1.ts decoded`,
        );

        // RTSP sends it in the AOM AV1 RTP format (rtpmap AV1/90000, fmtp profile/level-idx/tier).
        // ffmpeg 5.1 has no AV1 RTP depacketiser: Feedcast's depacketises an interleaved PLAY, ffmpeg decodes.
        const { port, url } = await startRtsp(t, server);
        const rtspClient = new Av1RtspClient(port);
        t.after(() => rtspClient.close());
        const described = await rtspClient.request('DESCRIBE', url('/feed1'), { Accept: 'application/sdp' });
        assert.equal(described.status, 200, described.body);
        const videoSection = described.body.slice(described.body.indexOf('m=video'));
        assert.match(videoSection, /a=rtpmap:\d+ AV1\/90000/);
        assert.match(videoSection, /a=fmtp:\d+ profile=0; level-idx=\d+; tier=0/);
        const control = /a=control:(\S+)/.exec(videoSection)?.[1] ?? '';
        const setup = await rtspClient.request('SETUP', `${url('/feed1')}/${control}`, {
          Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1',
        });
        assert.equal(setup.status, 200, setup.body);
        const play = await rtspClient.request('PLAY', url('/feed1'), {
          Session: setup.headers.get('session')?.split(';')[0] ?? '',
        });
        assert.equal(play.status, 200, play.body);
        await waitFor('50 AV1 frames over RTSP from a key frame', () => rtspClient.units.length >= 50, 60_000);
        const fromRtsp = rtspClient.units.slice();
        const rtspFile = join(dir, 'from-rtsp.obu');
        writeFileSync(rtspFile, Buffer.concat(fromRtsp.flatMap((u) => [td, u])));
        const decodedRtsp = await decodeFrames(rtspFile, 3600);
        assert.equal(decodedRtsp.errors, '', 'the AV1 from RTSP decodes without errors');
        assert.equal(
          decodedRtsp.videoFrames,
          fromRtsp.length,
          `${decodedRtsp.videoFrames} of ${fromRtsp.length} AV1 frames over RTSP decoded`,
        );
      } else {
        // MPEG-TS has no VP8 or VP9 mapping (no stream_type, no registered carriage): /feed1.ts serves what
        // it carries, the Opus audio, without waiting for a video keyframe it will never mux.
        const probe = await probePackets(server.url('/feed1.ts'), 2);
        assert.deepEqual(
          probe.streams.map((st) => st.codec_name),
          ['opus'],
        );
      }
    });
  }

  test(
    'an AV1 feed published over HTTP (MPEG-TS) goes to a WHEP viewer offering AV1 as it is',
    { timeout: 90_000 },
    async (t) => {
      const { server } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n');
      const pub = publishAv1Ts(server.url('/feed1.ffm'));
      t.after(() => pub.stop());
      await waitFor(
        'the AV1 track from the MPEG-TS publisher',
        () => server.ctx.feeds.get('feed1')?.tracks.some((tr) => tr.codec === 'av1' && tr.width === 320) === true,
        60_000,
      );
      assert.equal(server.ctx.feeds.get('feed1')?.publisher?.protocol, 'http', pub.stderr());
      const viewer = await browser().newPage();
      t.after(() => viewer.close());
      await viewer.goto(server.url('/'));
      await viewer.evaluate(WHEP_CLIENT);
      const whep = await viewer.evaluate<{ status: number; text: string }>(
        `window.whepPlay(${JSON.stringify(server.url('/feed1/whep'))})`,
      );
      assert.equal(whep.status, 201, whep.text);
      assert.match(whep.text, /a=rtpmap:\d+ AV1\/90000/);
      const stats = (): Promise<WhepStats> => viewer.evaluate<WhepStats>('window.whepStats()');
      await waitFor('decoded AV1 frames', async () => (await stats()).framesDecoded > 10, 40_000);
      const first = await stats();
      await waitFor('50 more decoded frames', async () => (await stats()).framesDecoded >= first.framesDecoded + 50, 40_000);
      const last = await stats();
      assert.equal(last.codec, 'video/AV1');
      const received = last.framesReceived - first.framesReceived;
      const decoded = last.framesDecoded - first.framesDecoded;
      assert.ok(decoded >= received - 2, `decoded ${decoded} of the ${received} frames received`);
    },
  );
});
