// FlvDemuxer on Enhanced RTMP input made from real encoded streams (libx265, libaom-av1,
// libvpx-vp9 through ffmpeg, configs from ffmpeg's own hvcC/av1C/vpcC): every frame comes back
// as encoded, with its track's config and picture size; Multitrack tracks become feed tracks;
// ModEx TimestampOffsetNano moves the frame time. FlvMuxer writes H.265/AV1/VP9/Opus in the
// Enhanced RTMP forms; what it writes demuxes back and decodes with ffmpeg.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MalformedInputError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { encodeVideo, type EncodedStream } from '../../../test/helpers/encoded-streams.js';
import { enhancedAudioTags, enhancedVideoTags, flv, type TagSpec } from '../../../test/helpers/flv-bytes.js';
import { fixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { haveFfmpeg } from '../../../test/helpers/media-tools.js';
import { decodeElementaryStream } from '../../../test/helpers/elementary-streams.js';
import { FlvDemuxer } from './flv-demuxer.js';
import { FlvMuxer } from './flv-muxer.js';

interface Output {
  tracks: readonly Track[];
  frames: Frame[];
  warnings: string[];
}

function demux(bytes: Buffer): Output {
  const out: Output = { tracks: [], frames: [], warnings: [] };
  const d = new FlvDemuxer({
    onTracks: (t) => (out.tracks = t),
    onFrame: (f) => out.frames.push(f),
    onWarning: (m) => out.warnings.push(m),
  });
  d.push(bytes);
  d.end();
  return out;
}

const byTime = (a: TagSpec, b: TagSpec): number => a.ms - b.ms;
const SKIP = haveFfmpeg() ? false : 'ffmpeg not installed';

describe('FlvDemuxer: Enhanced RTMP', { skip: SKIP }, () => {
  const streams: Record<string, EncodedStream> = SKIP
    ? {}
    : { h265: encodeVideo('h265', 30), av1: encodeVideo('av1', 30), vp9: encodeVideo('vp9', 30) };

  for (const codec of ['h265', 'av1', 'vp9']) {
    it(`${codec}: the track (config, size) and every frame come back as ffmpeg encoded them`, () => {
      const stream = streams[codec];
      assert.ok(stream);
      const out = demux(flv({ audio: false, video: true }, enhancedVideoTags(stream)));
      assert.deepStrictEqual(out.warnings, []);
      assert.deepStrictEqual(
        out.tracks.map((t) => [t.id, t.codec, t.width, t.height, t.config]),
        [[0, codec, 320, 240, stream.track.config]],
      );
      assert.equal(out.frames.length, stream.frames.length);
      assert.deepStrictEqual(out.frames, stream.frames);
    });
  }

  it('Multitrack: video tracks 0 and 1 and two AAC tracks in ManyTracks packets become four feed tracks', () => {
    const h265 = streams['h265'];
    const av1 = streams['av1'];
    assert.ok(h265 && av1);
    const aac = fixtureFrames('h264-aac.ts');
    const audioTrack = aac.tracks.find((t) => t.kind === 'audio');
    assert.ok(audioTrack);
    const audioFrames = aac.frames.filter((f) => f.trackId === audioTrack.id).slice(0, 40);
    const tags = [
      ...enhancedVideoTags(h265, { trackId: 0 }),
      ...enhancedVideoTags(av1, { trackId: 1 }),
      ...enhancedAudioTags({ track: audioTrack, frames: audioFrames }, [0, 1]),
    ].sort(byTime);
    const out = demux(flv({ audio: true, video: true }, tags));
    assert.deepStrictEqual(out.warnings, []);
    assert.deepStrictEqual(
      out.tracks.map((t) => [t.id, t.kind, t.codec]),
      [
        [0, 'video', 'h265'],
        [1, 'audio', 'aac'],
        [2, 'video', 'av1'],
        [3, 'audio', 'aac'],
      ],
    );
    const count = (id: number): number => out.frames.filter((f) => f.trackId === id).length;
    assert.deepStrictEqual([count(0), count(1), count(2), count(3)], [30, 40, 30, 40]);
    assert.deepStrictEqual(
      out.frames.filter((f) => f.trackId === 2).map((f) => f.data),
      av1.frames.map((f) => f.data),
    );
  });

  it('ModEx TimestampOffsetNano moves the frame time by its nanoseconds (500 µs = 45 ticks of 90 kHz)', () => {
    const stream = streams['vp9'];
    assert.ok(stream);
    const out = demux(flv({ audio: false, video: true }, enhancedVideoTags(stream, { timestampOffsetNs: 500_000 })));
    assert.deepStrictEqual(
      out.frames.map((f) => f.dts90k),
      stream.frames.map((f) => f.dts90k + 45),
    );
  });

  it('random mutations of E-RTMP streams (all three codecs, multitrack audio) throw nothing but MalformedInputError', () => {
    const h265 = streams['h265'];
    const av1 = streams['av1'];
    const vp9 = streams['vp9'];
    assert.ok(h265 && av1 && vp9);
    const aac = fixtureFrames('h264-aac.ts');
    const audioTrack = aac.tracks.find((t) => t.kind === 'audio');
    assert.ok(audioTrack);
    const audio = { track: audioTrack, frames: aac.frames.filter((f) => f.trackId === audioTrack.id).slice(0, 10) };
    const inputs = [h265, av1, vp9].map((s, i) =>
      flv(
        { audio: true, video: true },
        [
          ...enhancedVideoTags({ ...s, frames: s.frames.slice(0, 5) }, i === 1 ? { trackId: 1 } : { timestampOffsetNs: 1000 }),
          ...enhancedAudioTags(audio, i === 2 ? [0, 1] : undefined),
        ].sort(byTime),
      ),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...inputs),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        (input, edits) => {
          const data = Buffer.from(input);
          for (const [pos, value] of edits) data[13 + (pos % (data.length - 13))] = value;
          try {
            demux(data);
          } catch (err) {
            if (!(err instanceof MalformedInputError)) throw err;
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a VP9 sequence start waits for the key frame that gives the picture size', () => {
    const stream = streams['vp9'];
    assert.ok(stream);
    const tags = enhancedVideoTags(stream);
    // Drop the first key frame: nothing can be announced until the next one (frame 25).
    const out = demux(
      flv(
        { audio: false, video: true },
        tags.filter((_, i) => i !== 2),
      ),
    );
    assert.equal(out.frames[0]?.dts90k, stream.frames[25]?.dts90k);
    assert.equal(out.tracks[0]?.width, 320);
  });
});

describe('FlvMuxer: Enhanced RTMP', { skip: SKIP }, () => {
  const opus = fixtureFrames('opus.ts');
  const opusTrack = opus.tracks.find((t) => t.codec === 'opus');
  const FFPROBE_NAME = { h265: 'hevc', av1: 'av1', vp9: 'vp9' } as const;

  for (const codec of ['h265', 'av1', 'vp9'] as const) {
    it(`${codec} + Opus: FourCC tags and onMetaData ids; demuxed back, the video decodes with ffmpeg frame for frame`, async () => {
      const stream = encodeVideo(codec, 30);
      assert.ok(opusTrack);
      const audio = { ...opusTrack, id: 1 };
      const muxer = new FlvMuxer([stream.track, audio]);
      const audioFrames = opus.frames
        .filter((f) => f.trackId === opusTrack.id)
        .slice(0, 50)
        .map((f, i) => ({ ...f, trackId: 1, dts90k: i * 1800, pts90k: i * 1800 }));
      const frames = [...stream.frames, ...audioFrames].sort((a, b) => a.dts90k - b.dts90k);
      const header = muxer.header();
      const fourCc = { h265: 'hvc1', av1: 'av01', vp9: 'vp09' }[codec];
      // The video sequence start: 1|001|0000 (key, SequenceStart), the FourCC, the config record.
      const seq = Buffer.concat([Buffer.from([0x90]), Buffer.from(fourCc, 'latin1'), stream.track.config ?? Buffer.alloc(0)]);
      assert.ok(header.includes(seq), 'video SequenceStart with the FourCC and config');
      // Opus: 1001|0000 (ExHeader, SequenceStart), 'Opus', an OpusHead.
      assert.ok(header.includes(Buffer.from('90 4f707573 4f70757348656164'.replace(/ /g, ''), 'hex')), 'Opus SequenceStart');
      const back = demux(Buffer.concat([header, ...frames.map((f) => muxer.mux(f))]));
      assert.deepStrictEqual(back.warnings, []);
      assert.deepStrictEqual(
        back.tracks.map((t) => [t.codec, t.config]),
        [
          [codec, stream.track.config],
          ['opus', back.tracks[1]?.config],
        ],
      );
      const video = back.frames.filter((f) => f.trackId === 0);
      assert.deepStrictEqual(video, stream.frames);
      assert.equal(back.frames.filter((f) => f.trackId === 1).length, 50);
      const decoded = await decodeElementaryStream(stream.track, video);
      assert.deepStrictEqual(
        [decoded.codec, decoded.width, decoded.height, decoded.decodedFrames],
        [FFPROBE_NAME[codec], 320, 240, 30],
        decoded.errors,
      );
    });
  }

  it('onMetaData names the codecs by FourCC', () => {
    const stream = {
      id: 0,
      kind: 'video',
      codec: 'av1',
      config: Buffer.from('81000c00', 'hex'),
      width: 320,
      height: 240,
    } as const;
    const demuxer = new FlvDemuxer({ onTracks: () => undefined, onFrame: () => undefined });
    demuxer.push(new FlvMuxer([stream, { id: 1, kind: 'audio', codec: 'opus', sampleRate: 48000, channels: 2 }]).header());
    const meta = demuxer.metadata;
    assert.equal(meta?.['videocodecid'], 0x61763031);
    assert.equal(meta?.['audiocodecid'], 0x4f707573);
  });
});
