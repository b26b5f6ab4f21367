// H.265 over WebRTC (issue 22): a WHIP offer with only H.265 was refused with 406, and an H.265
// feed (published over HTTP or RTSP) was never sent to a WHEP viewer that offers it. Chromium here decodes no HEVC, so the
// clients are werift peers: a WHEP viewer that depacketises what it receives (RFC 7798) into a
// file ffmpeg decodes, and a WHIP publisher relaying ffmpeg's H.265 RTP, whose feed ffmpeg then
// decodes as MPEG-TS.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { MediaStreamTrack, type RTCPeerConnection } from 'werift';
import { splitLengthPrefixed } from '../../src/formats/h264/nal.js';
import { decodeFrames, FFMPEG, FFPROBE, lavfiArgs, publish, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startRtsp } from '../helpers/rtsp-tools.js';
import { waitFor } from '../helpers/test-server.js';
import { webrtcServer } from '../helpers/webrtc-server.js';
import { H264_BASELINE, H265, loopbackPeer, negotiate, receivedAccessUnits } from '../helpers/werift-peer.js';

const skip = skipWithoutFfmpeg();

/** libx265 without B-frames (browsers decode no reordered video over RTP), parameter sets before each keyframe. */
const X265 = ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'bframes=0:repeat-headers=1:log-level=error'];

/** A werift peer on loopback only, no STUN (TESTING.md), closed after the test. */
function closedAfter(t: TestContext, pc: RTCPeerConnection): RTCPeerConnection {
  t.after(() => pc.close());
  return pc;
}

describe('H.265 over WebRTC', { skip }, () => {
  for (const via of ['HTTP', 'RTSP'] as const) {
    test(
      `a WHEP viewer offering H.265 gets an H.265 feed (published over ${via}) as it is; ffmpeg decodes what it received`,
      { timeout: 90_000 },
      async (t) => {
        const { server } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n');
        let publishUrl = server.url('/feed1.ffm');
        let extra = X265;
        if (via === 'RTSP') {
          const { url } = await startRtsp(t, server);
          publishUrl = url('/feed1');
          extra = [...X265, '-rtsp_transport', 'tcp'];
        }
        const pub = publish(publishUrl, {
          codecs: 'h264-only',
          size: '640x360',
          seconds: 3600,
          extra,
          ...(via === 'RTSP' ? { format: 'rtsp' as 'flv' } : {}),
        });
        t.after(() => pub.stop());
        await waitFor('the H.265 track', () => server.ctx.feeds.get('feed1')?.tracks[0]?.codec === 'h265', 30_000);
        assert.equal(server.ctx.feeds.get('feed1')?.publisher?.protocol, via.toLowerCase());

        const pc = closedAfter(t, loopbackPeer([H265]));
        pc.addTransceiver('video', { direction: 'recvonly' });
        const units = receivedAccessUnits(pc, 'h265');
        const answer = await negotiate(pc, server.url('/feed1/whep'));
        assert.equal(answer.status, 201, answer.text);
        assert.match(answer.text, /a=rtpmap:\d+ H265\/90000/);
        await waitFor('75 H.265 access units from the first keyframe', () => units.length >= 75, 60_000);

        // What the viewer rebuilt, as an Annex B stream: ffmpeg decodes every access unit.
        const dir = mkdtempSync(join(tmpdir(), 'feedcast-h265-'));
        t.after(() => rmSync(dir, { recursive: true, force: true }));
        const file = join(dir, 'received.hevc');
        const start = Buffer.from([0, 0, 0, 1]);
        const received = units.slice();
        writeFileSync(file, Buffer.concat(received.flatMap((u) => splitLengthPrefixed(u.data).flatMap((nal) => [start, nal]))));
        const decoded = await decodeFrames(file, 3600);
        assert.equal(decoded.errors, '', 'decodes without errors');
        assert.equal(
          decoded.videoFrames,
          received.length,
          `${decoded.videoFrames} frames decoded of ${received.length} received`,
        );
        const probe = await run(
          FFPROBE,
          ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', file],
          30_000,
        );
        assert.equal(probe.stdout.trim(), 'hevc,640,360');
      },
    );
  }

  test(
    'H.265 with B-frames goes to WHEP viewers as the shared H.264 re-encode without them; ffmpeg decodes every frame',
    { timeout: 120_000 },
    async (t) => {
      const { server } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n');
      const x265WithB = [
        '-c:v',
        'libx265',
        '-preset',
        'ultrafast',
        '-x265-params',
        'bframes=3:rc-lookahead=5:repeat-headers=1:log-level=error',
      ];
      const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-only', size: '640x360', seconds: 3600, extra: x265WithB });
      t.after(() => pub.stop());
      await waitFor('the H.265 track', () => server.ctx.feeds.get('feed1')?.tracks[0]?.codec === 'h265', 30_000);
      await waitFor(
        'a GOP with B-frames in the cache',
        () => {
          const frames = server.ctx.feeds.get('feed1')?.gopCache() ?? [];
          return frames.some((f, i) => i > 0 && f.pts90k < (frames[i - 1]?.pts90k ?? 0));
        },
        30_000,
      );

      // A viewer offering H.265 and H.264 (as Safari does) is answered H.264: the re-encode.
      const pc = closedAfter(t, loopbackPeer([H265, H264_BASELINE]));
      pc.addTransceiver('video', { direction: 'recvonly' });
      const units = receivedAccessUnits(pc, 'h264');
      const answer = await negotiate(pc, server.url('/feed1/whep'));
      assert.equal(answer.status, 201, answer.text);
      assert.match(answer.text, /a=rtpmap:\d+ H264\/90000/);
      assert.doesNotMatch(answer.text, /H265/);
      assert.match(answer.note, /B-frames.*re-encoded/);
      await waitFor('75 H.264 access units from the first keyframe', () => units.length >= 75, 60_000);

      const dir = mkdtempSync(join(tmpdir(), 'feedcast-h265b-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'received.h264');
      const start = Buffer.from([0, 0, 0, 1]);
      const received = units.slice();
      writeFileSync(file, Buffer.concat(received.flatMap((u) => splitLengthPrefixed(u.data).flatMap((nal) => [start, nal]))));
      const decoded = await decodeFrames(file, 3600);
      assert.equal(decoded.errors, '', 'decodes without errors');
      assert.equal(decoded.videoFrames, received.length, `${decoded.videoFrames} frames decoded of ${received.length} received`);
      const probe = await run(
        FFPROBE,
        ['-v', 'error', '-show_entries', 'stream=codec_name,profile,has_b_frames,width,height', '-of', 'csv=p=0', file],
        30_000,
      );
      assert.equal(probe.stdout.trim(), 'h264,Constrained Baseline,640,360,0');
    },
  );

  test('a WHIP publisher sending only H.265 is taken; ffmpeg decodes the feed as MPEG-TS', { timeout: 90_000 }, async (t) => {
    const { server } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    // ffmpeg's H.265 RTP (RFC 7798) arrives on a loopback socket; the werift publisher relays it.
    // A big receive buffer: a busy test process must not drop ffmpeg's packets (a lost one showed
    // up as "Could not find ref with POC 50" in the decode below).
    const udp = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    t.after(() => udp.close());
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const pc = closedAfter(t, loopbackPeer([H265]));
    const track = new MediaStreamTrack({ kind: 'video' });
    pc.addTransceiver(track, { direction: 'sendonly' });
    const answer = await negotiate(pc, server.url('/feed1/whip'));
    assert.equal(answer.status, 201, answer.text);
    assert.match(answer.text, /a=rtpmap:\d+ H265\/90000/);
    await waitFor('the WHIP peer to connect', () => pc.connectionState === 'connected', 30_000);
    udp.on('message', (packet) => track.writeRtp(packet));
    const ffmpeg = publishRtp(udp.address().port);
    t.after(() => ffmpeg.stop());

    await waitFor(
      'the H.265 track with its size from the in-band SPS',
      () => {
        const v = server.ctx.feeds.get('feed1')?.tracks.find((tr) => tr.kind === 'video');
        return v?.codec === 'h265' && v.width === 640 && v.height === 360;
      },
      30_000,
    );
    const decoded = await decodeFrames(server.url('/feed1.ts'), 2);
    assert.equal(decoded.errors, '', 'decodes without errors');
    assert.ok(decoded.videoFrames >= 40, `${decoded.videoFrames} frames decoded from /feed1.ts in 2 s`);
    const probe = await run(
      FFPROBE,
      [
        '-v',
        'error',
        '-read_intervals',
        '%+1',
        '-select_streams',
        'v:0',
        '-show_entries',
        'stream=codec_name,width,height',
        '-of',
        'csv=p=0',
        server.url('/feed1.ts'),
      ],
      30_000,
    );
    assert.equal(probe.stdout.trim().split('\n')[0], 'hevc,640,360', probe.stderr);
  });
});

/** ffmpeg sending H.265 RTP to 127.0.0.1:`port` until stopped. */
function publishRtp(port: number): { stop(): Promise<void> } {
  const args = [
    '-hide_banner',
    '-loglevel',
    'error',
    '-nostdin',
    '-re',
    ...lavfiArgs('h264-only', { size: '640x360' }),
    ...X265,
    '-f',
    'rtp',
    `rtp://127.0.0.1:${port}?pkt_size=1200`,
  ];
  const child = spawn(FFMPEG, args, { stdio: 'ignore' });
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}
