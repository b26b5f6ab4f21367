// VP8 and VP9 over RTSP (issue 22): ffmpeg publishes them with RECORD (RFC 7741; VP9 with ffmpeg's
// experimental packetiser) and ffmpeg/ffprobe play them back from DESCRIBE/PLAY over TCP and UDP,
// every frame decoded. Before, the ANNOUNCE was refused (415) and such a feed had no RTSP video.
// (AV1 over RTSP: webrtc-codecs.test.ts, from a WHIP publisher; ffmpeg 5.1 has no AV1 RTP.)

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { decodeRtsp, probeRtsp, RawRtspClient, startRtsp } from '../helpers/rtsp-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

const ENCODERS = {
  VP8: ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8'],
  VP9: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-strict', 'experimental'],
} as const;

describe('VP8 and VP9 over RTSP', { skip }, () => {
  for (const codec of ['VP8', 'VP9'] as const) {
    test(
      `ffmpeg publishes ${codec} + Opus with RECORD; ffmpeg plays it back over TCP and UDP`,
      { timeout: 120_000 },
      async (t) => {
        const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
        const { port, url } = await startRtsp(t, server);
        // The mpeg1-mp2 source's options (-g 25, -b:v) suit libvpx; its codecs and rate are replaced.
        const pub = publish(url('/feed1'), {
          codecs: 'mpeg1-mp2',
          size: '640x360',
          seconds: 120,
          format: 'rtsp' as 'flv',
          extra: [...ENCODERS[codec], '-c:a', 'libopus', '-b:a', '48k', '-ar', '48000', '-rtsp_transport', 'tcp'],
        });
        t.after(() => pub.stop());
        const name = codec.toLowerCase();
        await waitFor(
          `the ${codec} track with its size from a key frame, and the Opus track`,
          () => {
            const tracks = server.ctx.feeds.get('feed1')?.tracks ?? [];
            return tracks.some((tr) => tr.codec === name && tr.width === 640 && tr.height === 360) && tracks.length === 2;
          },
          60_000,
        );
        assert.equal(server.ctx.feeds.get('feed1')?.publisher?.protocol, 'rtsp', pub.stderr());

        const client = new RawRtspClient(port);
        t.after(() => client.close());
        const describe = await client.request('DESCRIBE', url('/feed1'), { Accept: 'application/sdp' });
        assert.equal(describe.status, 200);
        assert.match(describe.body, new RegExp(`a=rtpmap:\\d+ ${codec}/90000`));

        for (const transport of ['tcp', 'udp'] as const) {
          const probe = await probeRtsp(url('/feed1'), transport, 2);
          const video = probe.streams.find((s) => s.codec_type === 'video');
          assert.deepEqual([video?.codec_name, video?.width, video?.height], [name, 640, 360], `${codec} over ${transport}`);
          const decoded = await decodeRtsp(url('/feed1'), transport, 3);
          assert.equal(decoded.errors, '', `${codec} over ${transport}: no decode errors`);
          assert.ok(
            decoded.videoFrames >= 40 && decoded.audioFrames >= 50,
            `${codec} over ${transport}: ${decoded.videoFrames} video, ${decoded.audioFrames} audio frames`,
          );
        }
      },
    );
  }
});
