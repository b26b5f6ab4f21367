// Enhanced RTMP end to end: real libx265, libaom-av1 and libvpx-vp9 frames (with AAC) published as
// E-RTMP over a real RTMP connection and as an FLV body over HTTP; ffprobe/ffmpeg decode every
// output that carries the codec (HLS fMP4, MPEG-TS for H.265, RTSP for H.265 and VP9), and what ffmpeg 5.1 cannot read
// (the E-RTMP FLV of RTMP play and HTTP-FLV, AV1 in MPEG-TS) is demuxed by Feedcast and its video
// decoded by ffmpeg as an elementary stream. Multitrack: two AAC tracks in ManyTracks packets are two
// audio streams of the TS output.

import assert from 'node:assert/strict';
import { get } from 'node:http';
import { describe, test, type TestContext } from 'node:test';
import type { Amf0Object } from '../../src/formats/amf/amf0.js';
import { FlvDemuxer } from '../../src/formats/flv/flv-demuxer.js';
import { FlvTagDemuxer } from '../../src/formats/flv/flv-tag-demuxer.js';
import { FlvTagType } from '../../src/formats/flv/flv-tag.js';
import { TsDemuxer } from '../../src/formats/mpegts/ts-demuxer.js';
import { RtmpType } from '../../src/formats/rtmp/messages.js';
import type { DemuxerSink } from '../../src/media/demuxer.js';
import type { Frame } from '../../src/media/frame.js';
import type { Track } from '../../src/media/track.js';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { decodeElementaryStream } from '../helpers/elementary-streams.js';
import { encodeVideo, type EncodedStream, type EncodedVideoCodec } from '../helpers/encoded-streams.js';
import { publishEnhancedRtmp, pushEnhancedFlv, type EnhancedMedia } from '../helpers/enhanced-publisher.js';
import { fixtureFrames } from '../helpers/fixture-frames.js';
import { decodeFrames, FFPROBE, probePackets, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { RtmpTestClient, statusCode } from '../helpers/rtmp-client.js';
import { decodeRtsp, startRtsp } from '../helpers/rtsp-tools.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const PROBE_NAME: Record<EncodedVideoCodec, string> = { h265: 'hevc', av1: 'av1', vp9: 'vp9' };
const CONF = '<Feed x.ffm>\n</Feed>\n';

function aac(): EncodedStream {
  const { tracks, frames } = fixtureFrames('h264-aac.ts');
  const track = tracks.find((t) => t.codec === 'aac');
  assert.ok(track);
  return { track: { ...track, id: 1 }, frames: frames.filter((f) => f.trackId === track.id) };
}

async function startRtmp(t: TestContext, server: TestServer): Promise<number> {
  const rtmp = new RtmpServer(server.ctx, { chunkSize: 4096 });
  const port = await rtmp.listen(0, '127.0.0.1');
  t.after(() => rtmp.close());
  return port;
}

/** Frames of the video track (and its Track) demuxed from what a reader receives, once `count` came. */
interface Collected {
  track: () => Track | undefined;
  frames: Frame[];
  sink: DemuxerSink;
}
function collector(): Collected {
  let tracks: readonly Track[] = [];
  const frames: Frame[] = [];
  const video = (): Track | undefined => tracks.find((tr) => tr.kind === 'video');
  return {
    track: video,
    frames,
    sink: {
      onTracks: (t) => (tracks = t),
      onFrame: (f) => {
        if (f.trackId === video()?.id) frames.push(f);
      },
    },
  };
}

/** RTMP play: the E-RTMP messages go through Feedcast's FLV tag demuxer. */
async function rtmpPlayVideo(port: number, count: number): Promise<{ track: Track; frames: Frame[] }> {
  const c = collector();
  const demuxer = new FlvTagDemuxer(c.sink);
  const client = await RtmpTestClient.open('127.0.0.1', port, {
    onMessage: (m) => {
      if (m.typeId === RtmpType.video) demuxer.pushTag(FlvTagType.video, m.timestampMs, m.payload);
      else if (m.typeId === RtmpType.audio) demuxer.pushTag(FlvTagType.audio, m.timestampMs, m.payload);
    },
  });
  try {
    await client.connect('live', `rtmp://127.0.0.1:${port}/live`);
    assert.equal(statusCode(await client.play('x')), 'NetStream.Play.Reset');
    await waitFor(`${count} video frames over RTMP play`, () => c.frames.length >= count, 60_000);
  } finally {
    client.close();
  }
  const track = c.track();
  assert.ok(track);
  return { track, frames: c.frames.slice(0, count) };
}

/** An HTTP output (HTTP-FLV, or MPEG-TS) read by Feedcast's own demuxer of that format. */
async function httpVideo(
  url: string,
  count: number,
  demuxerFor: (sink: DemuxerSink) => { push(chunk: Buffer): void },
): Promise<{ track: Track; frames: Frame[] }> {
  const c = collector();
  const demuxer = demuxerFor(c.sink);
  const req = get(url, (res) => res.on('data', (d: Buffer) => demuxer.push(d)));
  req.on('error', () => undefined);
  try {
    await waitFor(`${count} video frames from ${url}`, () => c.frames.length >= count, 60_000);
  } finally {
    req.destroy();
  }
  const track = c.track();
  assert.ok(track);
  return { track, frames: c.frames.slice(0, count) };
}

async function probeVideo(url: string): Promise<string> {
  const r = await run(
    FFPROBE,
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', url],
    60_000,
  );
  return `${r.stdout.trim().split('\n')[0] ?? ''} ${r.stderr.trim()}`.trim();
}

async function assertHlsDecodes(server: TestServer, codec: EncodedVideoCodec): Promise<void> {
  const url = server.url('/x/index.m3u8');
  assert.equal(await probeVideo(url), `${PROBE_NAME[codec]},320,240`);
  const decoded = await decodeFrames(url, 2, 60_000);
  assert.ok(decoded.videoFrames >= 25, `${codec} HLS: ${decoded.videoFrames} frames decoded; ${decoded.errors}`);
  assert.equal(decoded.errors, '', `${codec} HLS decodes without errors`);
}

async function assertEgressDecodes(
  what: string,
  got: { track: Track; frames: Frame[] },
  codec: EncodedVideoCodec,
): Promise<void> {
  assert.equal(got.track.codec, codec, `${what}: codec`);
  assert.ok(got.frames[0]?.keyframe, `${what}: starts on a key frame`);
  const decoded = await decodeElementaryStream(got.track, got.frames);
  assert.deepStrictEqual(
    [decoded.codec, decoded.width, decoded.height, decoded.decodedFrames],
    [PROBE_NAME[codec], 320, 240, got.frames.length],
    `${what}: ${decoded.errors}`,
  );
}

async function waitForTracks(server: TestServer, codec: EncodedVideoCodec): Promise<void> {
  await waitFor(
    `the ${codec} and aac tracks of the feed`,
    () => {
      const tracks = server.ctx.feeds.get('x')?.tracks ?? [];
      return tracks.some((tr) => tr.codec === codec && tr.width === 320) && tracks.some((tr) => tr.codec === 'aac');
    },
    30_000,
  );
}

describe('Enhanced RTMP publish and play', { skip }, () => {
  for (const codec of ['h265', 'av1', 'vp9'] as const) {
    test(
      `${codec} + AAC published as E-RTMP over RTMP: HLS${codec === 'vp9' ? '' : ', TS'}${codec === 'av1' ? '' : ', RTSP'}, RTMP play and HTTP-FLV decode`,
      { timeout: 240_000 },
      async (t) => {
        const server = await startTestServer(t, CONF);
        const port = await startRtmp(t, server);
        const media: EnhancedMedia = { video: encodeVideo(codec, 50), audio: aac() };
        const pub = await publishEnhancedRtmp(port, 'x', media);
        t.after(() => pub.stop());
        await waitForTracks(server, codec);
        assert.equal(server.ctx.feeds.get('x')?.publisher?.protocol, 'rtmp');

        await assertHlsDecodes(server, codec);
        if (codec === 'h265') {
          const probe = await probePackets(server.url('/x.ts'), 2, 60_000);
          assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'hevc']);
          const decoded = await decodeFrames(server.url('/x.ts'), 2, 60_000);
          assert.ok(decoded.videoFrames >= 25, `TS: ${decoded.videoFrames} frames; ${decoded.errors}`);
          assert.equal(decoded.errors, '');
        }
        if (codec !== 'av1') {
          // RTSP (RFC 7798 H.265, RFC 9628 VP9; ffmpeg 5.1 has no AV1 RTP depacketiser).
          const rtsp = await startRtsp(t, server);
          const decoded = await decodeRtsp(rtsp.url('/x'), 'tcp', 2);
          assert.ok(decoded.videoFrames >= 25, `RTSP: ${decoded.videoFrames} frames; ${decoded.errors}`);
          assert.equal(decoded.errors, '', 'RTSP decodes without errors');
        }
        await assertEgressDecodes('RTMP play', await rtmpPlayVideo(port, 50), codec);
        await assertEgressDecodes('HTTP-FLV', await httpVideo(server.url('/x.flv'), 50, (k) => new FlvDemuxer(k)), codec);
        if (codec === 'av1') {
          // MPEG-TS carries AV1, but ffmpeg 5.1 cannot demux it: Feedcast's TS demuxer reads it back.
          await assertEgressDecodes('MPEG-TS', await httpVideo(server.url('/x.ts'), 50, (k) => new TsDemuxer(k)), codec);
        }
      },
    );
  }

  test('connect: an E-RTMP client is told the FourCCs Feedcast forwards and its capsEx; a legacy client is not', async (t) => {
    const server = await startTestServer(t, CONF);
    const port = await startRtmp(t, server);
    const results: Amf0Object[] = [];
    for (const extra of [{ fourCcList: ['av01', 'vp09', 'hvc1', 'fLaC'] }, {}]) {
      const client = await RtmpTestClient.open('127.0.0.1', port);
      t.after(() => client.close());
      const result = await client.connect('live', `rtmp://127.0.0.1:${port}/live`, 128, extra);
      assert.equal(result.name, '_result');
      results.push(result.commandObject as Amf0Object);
    }
    assert.deepEqual(results[0]?.['fourCcList'], ['hvc1', 'av01', 'vp09']);
    assert.deepEqual(results[0]?.['videoFourCcInfoMap'], { avc1: 4, hvc1: 4, av01: 4, vp09: 4 });
    assert.equal(results[0]?.['capsEx'], 2 | 4 | 8);
    assert.equal(results[1]?.['capsEx'], undefined);
    assert.equal(results[1]?.['fmsVer'], 'FMS/3,0,1,123');
  });

  test('AV1 + AAC pushed over HTTP as an E-RTMP FLV body: HLS decodes', { timeout: 120_000 }, async (t) => {
    const server = await startTestServer(t, CONF);
    const pub = pushEnhancedFlv(server.url('/x.ffm'), { video: encodeVideo('av1', 50), audio: aac() });
    t.after(() => pub.stop());
    await waitForTracks(server, 'av1');
    assert.equal(server.ctx.feeds.get('x')?.publisher?.protocol, 'http');
    await assertHlsDecodes(server, 'av1');
  });

  test(
    'Multitrack: H.265 as track 0 and two AAC tracks in ManyTracks packets; the TS output has both audio streams',
    { timeout: 120_000 },
    async (t) => {
      const server = await startTestServer(t, CONF);
      const port = await startRtmp(t, server);
      const pub = await publishEnhancedRtmp(port, 'x', {
        video: encodeVideo('h265', 50),
        videoTrackId: 0,
        audio: aac(),
        audioTrackIds: [0, 1],
      });
      t.after(() => pub.stop());
      await waitFor('three tracks', () => (server.ctx.feeds.get('x')?.tracks.length ?? 0) === 3, 30_000);
      assert.deepEqual(
        server.ctx.feeds.get('x')?.tracks.map((tr) => tr.codec),
        ['h265', 'aac', 'aac'],
      );
      const probe = await probePackets(server.url('/x.ts'), 2, 60_000);
      assert.deepEqual(
        probe.streams.map((s) => s.codec_name),
        ['hevc', 'aac', 'aac'],
      );
      const perStream = [0, 1, 2].map((i) => probe.packets.filter((p) => p.stream_index === i).length);
      assert.ok(
        perStream.every((n) => n >= 20),
        `packets per stream: ${perStream.join(', ')}`,
      );
    },
  );
});
