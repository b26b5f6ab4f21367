// FlvDemuxer: fixtures checked against ffprobe, chunking independence, 32-bit timestamp wrap,
// track readiness (hints, timeouts, config changes), H.265, limits and fuzzing.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { MalformedInputError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { amf0EcmaArray } from '../amf/amf0.js';
import { splitAnnexB, joinLengthPrefixed, h265NalType } from '../h264/nal.js';
import { buildHvcc } from '../h265/hvcc.js';
import { FlvDemuxer, type FlvDemuxerOptions } from './flv-demuxer.js';
import { FlvMuxer } from './flv-muxer.js';
import type { FlvAudioTag, FlvVideoTag } from './flv-tag.js';
import { flv, type TagSpec } from '../../../test/helpers/flv-bytes.js';

const FIXTURES = new URL('../../../test/fixtures/', import.meta.url);
const H264_AAC = readFileSync(new URL('h264-aac.flv', FIXTURES));
const H264_MP3 = readFileSync(new URL('h264-mp3.flv', FIXTURES));
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const HAVE_FFMPEG = spawnSync('ffprobe', ['-version']).status === 0;

// --- helpers -----------------------------------------------------------------------------------

interface Output {
  trackLists: (readonly Track[])[];
  frames: Frame[];
  warnings: string[];
  /** onTracks/onFrame calls in order: 't' + count, or the frame's track id. */
  events: string[];
}

function demux(chunks: Iterable<Buffer>, options?: FlvDemuxerOptions): Output {
  const out: Output = { trackLists: [], frames: [], warnings: [], events: [] };
  const d = new FlvDemuxer(
    {
      onTracks: (t) => {
        out.trackLists.push(t);
        out.events.push(`t${t.length}`);
      },
      onFrame: (f) => {
        out.frames.push(f);
        out.events.push(String(f.trackId));
      },
      onWarning: (m) => out.warnings.push(m),
    },
    options,
  );
  for (const c of chunks) d.push(c);
  d.end();
  return out;
}

function* byteAtATime(buf: Buffer): Generator<Buffer> {
  for (let i = 0; i < buf.length; i++) yield buf.subarray(i, i + 1);
}

function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, buf.length]) {
    parts.push(buf.subarray(prev, p));
    prev = p;
  }
  return parts;
}

interface ProbePacket {
  stream_index: number;
  pts: number;
  dts: number;
  size: string;
  flags: string;
}
interface ProbeStream {
  index: number;
  codec_name: string;
  codec_type: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
}
function ffprobe(file: string): { streams: ProbeStream[]; packets: ProbePacket[] } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_streams', '-show_packets', '-of', 'json', file], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { streams: ProbeStream[]; packets: ProbePacket[] };
}

/** The fixture's avcC (from its AVC sequence header tag), and a 2-byte AudioSpecificConfig. */
const AVCC = (() => {
  const d = demux([H264_AAC]);
  const config = d.trackLists[0]?.find((t) => t.codec === 'h264')?.config;
  assert.ok(config);
  return config;
})();
const ASC = hex('1208'); // AAC-LC, 44.1 kHz, 1 channel

const avcSeq = (avcc: Buffer = AVCC): FlvVideoTag => ({
  enhanced: false,
  frameType: 1,
  codecId: 7,
  avcPacketType: 0,
  compositionTimeMs: 0,
  data: avcc,
});
const avcFrame = (key: boolean, data = hex('00000002 6588'), ctMs = 0): FlvVideoTag => ({
  enhanced: false,
  frameType: key ? 1 : 2,
  codecId: 7,
  avcPacketType: 1,
  compositionTimeMs: ctMs,
  data,
});
const aac = (packetType: number, data: Buffer): FlvAudioTag => ({
  enhanced: false,
  soundFormat: 10,
  soundRateIndex: 3,
  soundSize16: true,
  stereo: true,
  aacPacketType: packetType,
  data,
});
const META_AV = amf0EcmaArray({ videocodecid: 7, audiocodecid: 10 });

function assertMalformedOnly(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof MalformedInputError)) throw err;
  }
}

// --- tests -------------------------------------------------------------------------------------

describe('FlvDemuxer', () => {
  describe('fixtures against ffprobe', { skip: HAVE_FFMPEG ? false : 'ffprobe not installed' }, () => {
    for (const [name, buf] of [
      ['h264-aac.flv', H264_AAC],
      ['h264-mp3.flv', H264_MP3],
    ] as const) {
      it(`${name}: tracks, frame counts, times, sizes and keyframes match`, () => {
        const probe = ffprobe(new URL(name, FIXTURES).pathname);
        const out = demux([buf]);
        assert.equal(out.trackLists.length, 1, 'one onTracks call');
        assert.deepStrictEqual(out.warnings, []);
        assert.equal(out.events[0], 't2', 'tracks before the first frame');
        const tracks = out.trackLists[0] ?? [];
        for (const s of probe.streams) {
          const track = tracks.find((t) => t.kind === s.codec_type);
          assert.ok(track, `a ${s.codec_type} track`);
          assert.equal(track.codec, s.codec_name === 'hevc' ? 'h265' : s.codec_name);
          if (s.codec_type === 'video') {
            assert.equal(track.width, s.width);
            assert.equal(track.height, s.height);
          } else {
            assert.equal(track.sampleRate, Number(s.sample_rate));
            assert.equal(track.channels, s.channels);
          }
          const packets = probe.packets.filter((p) => p.stream_index === s.index);
          const frames = out.frames.filter((f) => f.trackId === track.id);
          assert.equal(frames.length, packets.length, `${s.codec_type} frame count`);
          frames.forEach((f, i) => {
            const p = packets[i]!;
            assert.equal(f.dts90k, p.dts * 90, `dts of ${s.codec_type} frame ${i}`);
            assert.equal(f.pts90k - f.dts90k, (p.pts - p.dts) * 90, `pts-dts of ${s.codec_type} frame ${i}`);
            assert.equal(f.data.length, Number(p.size));
            assert.equal(f.keyframe, p.flags.startsWith('K'));
            if (i > 0) assert.ok(f.dts90k > frames[i - 1]!.dts90k, 'monotonic dts');
          });
        }
      });
    }
  });

  it('gives the same tracks and frames byte-at-a-time and in random chunks', () => {
    const whole = demux([H264_AAC]);
    assert.deepStrictEqual(demux(byteAtATime(H264_AAC)), whole);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
        assert.deepStrictEqual(demux(splitAt(H264_AAC, cuts)), whole);
      }),
      { numRuns: 50 },
    );
  });

  it('copies payloads: frames do not alias the pushed chunks', () => {
    const input = Buffer.from(H264_AAC);
    const out = demux([input]);
    const before = out.frames.map((f) => Buffer.from(f.data));
    input.fill(0);
    out.frames.forEach((f, i) => assert.deepStrictEqual(f.data, before[i]));
  });

  it('keeps DTS monotonic across the 32-bit millisecond wrap', () => {
    const start = 2 ** 32 - 200;
    const tags: TagSpec[] = [{ type: 'video', ms: start, tag: avcSeq() }];
    for (let i = 0; i < 10; i++) tags.push({ type: 'video', ms: (start + i * 40) % 2 ** 32, tag: avcFrame(i === 0) });
    const input = flv({ audio: false, video: true }, tags);
    // The 6th frame's tag carries 0x000018 with TimestampExtended 0: the counter wrapped.
    const out = demux([input]);
    const dts = out.frames.map((f) => f.dts90k);
    assert.deepStrictEqual(
      dts,
      Array.from({ length: 10 }, (_, i) => (start + i * 40) * 90),
    );
  });

  describe('track readiness', () => {
    it('waits for a hinted track that comes late, then announces both before any frame', () => {
      const tags: TagSpec[] = [
        { type: 'meta', ms: 0, meta: META_AV },
        { type: 'video', ms: 0, tag: avcSeq() },
      ];
      for (let i = 0; i < 10; i++) tags.push({ type: 'video', ms: i * 40, tag: avcFrame(i === 0) });
      tags.push({ type: 'audio', ms: 400, tag: aac(0, ASC) });
      tags.push({ type: 'audio', ms: 400, tag: aac(1, hex('2110')) });
      const out = demux([flv({ audio: true, video: true }, tags)]);
      assert.equal(out.trackLists.length, 1);
      assert.deepStrictEqual(
        out.trackLists[0]?.map((t) => [t.id, t.codec, t.sampleRate, t.channels]),
        [
          [0, 'h264', undefined, undefined],
          [1, 'aac', 44100, 1],
        ],
      );
      assert.deepStrictEqual(out.events, ['t2', ...Array<string>(10).fill('0'), '1']);
    });

    it('announces what it has after ~1 s of tag time without the hinted track, losing no frame', () => {
      const tags: TagSpec[] = [
        { type: 'meta', ms: 0, meta: META_AV },
        { type: 'video', ms: 0, tag: avcSeq() },
      ];
      for (let i = 0; i < 50; i++) tags.push({ type: 'video', ms: i * 40, tag: avcFrame(i % 25 === 0) });
      tags.push({ type: 'audio', ms: 2000, tag: aac(0, ASC) });
      tags.push({ type: 'audio', ms: 2000, tag: aac(1, hex('2110')) });
      const input = flv({ audio: true, video: true }, tags);
      const out = demux([input]);
      assert.equal(out.trackLists.length, 2);
      assert.deepStrictEqual(
        out.trackLists[0]?.map((t) => t.codec),
        ['h264'],
      );
      assert.deepStrictEqual(
        out.trackLists[1]?.map((t) => t.codec),
        ['h264', 'aac'],
      );
      // Announced when the 26th frame (1000 ms after the first) arrived: 26 held, then live.
      assert.equal(out.events.indexOf('t1'), 0);
      assert.equal(out.events.filter((e) => e === '0').length, 50);
      assert.equal(out.events.indexOf('t2'), 51);
      assert.equal(out.events.at(-1), '1');
    });

    it('announces on the held-bytes bound', () => {
      const big = joinLengthPrefixed([Buffer.alloc(3000, 0x65)]);
      const tags: TagSpec[] = [
        { type: 'meta', ms: 0, meta: META_AV },
        { type: 'video', ms: 0, tag: avcSeq() },
      ];
      for (let i = 0; i < 5; i++) tags.push({ type: 'video', ms: i, tag: avcFrame(true, big) });
      const events: string[] = [];
      const d = new FlvDemuxer({ onTracks: () => events.push('t'), onFrame: () => events.push('f') }, { maxHeldBytes: 9000 });
      d.push(flv({ audio: true, video: true }, tags));
      assert.deepStrictEqual(events, ['t', 'f', 'f', 'f', 'f', 'f'], 'announced at the third frame, before end()');
    });

    it('without hints, announces when both kinds are there or at end()', () => {
      const tags: TagSpec[] = [
        { type: 'video', ms: 0, tag: avcSeq() },
        { type: 'video', ms: 0, tag: avcFrame(true) },
      ];
      const out = demux([flv({ audio: false, video: false }, tags)]);
      assert.deepStrictEqual(out.events, ['t1', '0']);
    });

    it('reports a changed sequence header with a new track list, and ignores a repeated one', () => {
      const avcc2 = Buffer.from(AVCC);
      avcc2[avcc2.length - 1] = (avcc2[avcc2.length - 1] ?? 0) ^ 1; // a different PPS byte
      const tags: TagSpec[] = [
        { type: 'meta', ms: 0, meta: amf0EcmaArray({ videocodecid: 7 }) },
        { type: 'video', ms: 0, tag: avcSeq() },
        { type: 'video', ms: 0, tag: avcFrame(true) },
        { type: 'video', ms: 40, tag: avcSeq() },
        { type: 'video', ms: 40, tag: avcFrame(true) },
        { type: 'video', ms: 80, tag: avcSeq(avcc2) },
        { type: 'video', ms: 80, tag: avcFrame(true) },
      ];
      const out = demux([flv({ audio: false, video: true }, tags)]);
      assert.deepStrictEqual(out.events, ['t1', '0', '0', 't1', '0']);
      assert.deepStrictEqual(out.trackLists[1]?.[0]?.config, avcc2);
    });
    it('a config change while frames are held announces the old config first', () => {
      const avcc2 = Buffer.from(AVCC);
      avcc2[avcc2.length - 1] = (avcc2[avcc2.length - 1] ?? 0) ^ 1;
      const tags: TagSpec[] = [
        { type: 'meta', ms: 0, meta: META_AV },
        { type: 'video', ms: 0, tag: avcSeq() },
        { type: 'video', ms: 0, tag: avcFrame(true) },
        { type: 'video', ms: 40, tag: avcSeq(avcc2) },
        { type: 'video', ms: 40, tag: avcFrame(true) },
      ];
      const out = demux([flv({ audio: true, video: true }, tags)]);
      assert.deepStrictEqual(out.events, ['t1', '0', 't1', '0']);
      assert.deepStrictEqual(
        out.trackLists.map((l) => l[0]?.config),
        [AVCC, avcc2],
      );
    });
  });

  describe('codecs', () => {
    it('warns once per unknown codec and skips its tags', () => {
      const vp6: FlvVideoTag = {
        enhanced: false,
        frameType: 2,
        codecId: 4,
        avcPacketType: undefined,
        compositionTimeMs: 0,
        data: hex('00'),
      };
      const speex: FlvAudioTag = {
        enhanced: false,
        soundFormat: 11,
        soundRateIndex: 0,
        soundSize16: true,
        stereo: false,
        aacPacketType: undefined,
        data: hex('00'),
      };
      const tags: TagSpec[] = [];
      for (let i = 0; i < 3; i++) tags.push({ type: 'video', ms: i, tag: vp6 }, { type: 'audio', ms: i, tag: speex });
      tags.push({ type: 'raw', ms: 0, tagType: 15, body: hex('00') }, { type: 'raw', ms: 0, tagType: 15, body: hex('00') });
      const out = demux([flv({ audio: true, video: true }, tags)]);
      assert.equal(out.frames.length, 0);
      assert.equal(out.warnings.length, 3, out.warnings.join('\n'));
      assert.match(out.warnings[0] ?? '', /unsupported video codec CodecID 4/);
      assert.match(out.warnings[1] ?? '', /unsupported audio SoundFormat 11/);
      assert.match(out.warnings[2] ?? '', /unknown tag type 15/);
    });

    it('drops AVC frames before the sequence header, with one warning', () => {
      const tags: TagSpec[] = [
        { type: 'video', ms: 0, tag: avcFrame(true) },
        { type: 'video', ms: 40, tag: avcFrame(false) },
        { type: 'video', ms: 80, tag: avcSeq() },
        { type: 'video', ms: 80, tag: avcFrame(true) },
      ];
      const out = demux([flv({ audio: false, video: true }, tags)]);
      assert.equal(out.frames.length, 1);
      assert.equal(out.warnings.length, 1);
    });

    it('rewrites 2-byte NAL lengths to 4 and drops a frame whose lengths do not add up', () => {
      const avcc = Buffer.from(AVCC);
      avcc[4] = 0xfd; // lengthSizeMinusOne = 1
      const tags: TagSpec[] = [
        { type: 'video', ms: 0, tag: avcSeq(avcc) },
        { type: 'video', ms: 0, tag: avcFrame(true, hex('0002 6588 0001 06')) },
        { type: 'video', ms: 40, tag: avcFrame(false, hex('0009 4188')) },
      ];
      const out = demux([flv({ audio: false, video: true }, tags)]);
      assert.deepStrictEqual(
        out.frames.map((f) => f.data),
        [hex('00000002 6588 00000001 06')],
      );
      assert.match(out.warnings.join(), /do not add up/);
    });

    it('clamps a negative CompositionTime to pts = dts, with a warning', () => {
      const tags: TagSpec[] = [
        { type: 'video', ms: 0, tag: avcSeq() },
        { type: 'video', ms: 100, tag: avcFrame(true, undefined, -40) },
      ];
      const out = demux([flv({ audio: false, video: true }, tags)]);
      assert.equal(out.frames[0]?.pts90k, out.frames[0]?.dts90k);
      assert.equal(out.warnings.length, 1);
    });

    it('skips a corrupt sequence header with a warning and goes on', () => {
      const tags: TagSpec[] = [
        { type: 'video', ms: 0, tag: avcSeq(hex('01 6400')) },
        { type: 'video', ms: 0, tag: avcSeq() },
        { type: 'video', ms: 0, tag: avcFrame(true) },
      ];
      const out = demux([flv({ audio: false, video: true }, tags)]);
      assert.equal(out.frames.length, 1);
      assert.match(out.warnings[0] ?? '', /tag at offset 13 .*skipped: avcC/);
    });

    it('reads enhanced mp4a and Opus audio', () => {
      const opusHead = hex('4F707573486561640102 3801 80BB0000 0000 00'); // 'OpusHead' v1, 2 ch, pre-skip 312, 48000
      const tags: TagSpec[] = [
        { type: 'audio', ms: 0, tag: { enhanced: true, packetType: 0, fourCc: 'Opus', data: opusHead } },
        { type: 'audio', ms: 0, tag: { enhanced: true, packetType: 1, fourCc: 'Opus', data: hex('FC01') } },
      ];
      const out = demux([flv({ audio: true, video: false }, tags)]);
      assert.deepStrictEqual(
        out.trackLists[0]?.map((t) => [t.codec, t.sampleRate, t.channels]),
        [['opus', 48000, 2]],
      );
      assert.deepStrictEqual(
        out.frames.map((f) => f.data),
        [hex('FC01')],
      );
      const mp4a: TagSpec[] = [
        { type: 'audio', ms: 0, tag: { enhanced: true, packetType: 0, fourCc: 'mp4a', data: ASC } },
        { type: 'audio', ms: 23, tag: { enhanced: true, packetType: 1, fourCc: 'mp4a', data: hex('2110') } },
      ];
      const out2 = demux([flv({ audio: true, video: false }, mp4a)]);
      assert.deepStrictEqual(
        out2.trackLists[0]?.map((t) => [t.codec, t.sampleRate, t.config]),
        [['aac', 44100, ASC]],
      );
      assert.equal(out2.frames[0]?.dts90k, 23 * 90);
    });

    describe('H.265', { skip: HAVE_FFMPEG ? false : 'ffmpeg not installed' }, () => {
      const annexB = spawnSync(
        'ffmpeg',
        [
          '-v',
          'error',
          '-f',
          'lavfi',
          '-i',
          'testsrc2=size=320x240:rate=25',
          '-frames:v',
          '3',
          '-c:v',
          'libx265',
          '-x265-params',
          'log-level=error',
          '-f',
          'hevc',
          '-',
        ],
        { maxBuffer: 16 * 1024 * 1024 },
      ).stdout as Buffer;
      const nals = HAVE_FFMPEG ? splitAnnexB(annexB) : [];
      const ofType = (t: number): Buffer[] => nals.filter((n) => h265NalType(n) === t);
      const hvcc = HAVE_FFMPEG ? buildHvcc(ofType(32), ofType(33), ofType(34)) : Buffer.alloc(0);
      const pictures = nals.filter((n) => h265NalType(n) < 32).map((n) => joinLengthPrefixed([n]));

      it('reads the legacy CodecID 12 extension', () => {
        assert.equal(pictures.length, 3, 'three pictures from ffmpeg');
        const hevc = (avcPacketType: number, frameType: number, data: Buffer): FlvVideoTag => ({
          enhanced: false,
          frameType,
          codecId: 12,
          avcPacketType,
          compositionTimeMs: 0,
          data,
        });
        const tags: TagSpec[] = [{ type: 'video', ms: 0, tag: hevc(0, 1, hvcc) }];
        pictures.forEach((p, i) => tags.push({ type: 'video', ms: i * 40, tag: hevc(1, i === 0 ? 1 : 2, p) }));
        const out = demux([flv({ audio: false, video: true }, tags)]);
        assert.deepStrictEqual(
          out.trackLists[0]?.map((t) => [t.codec, t.width, t.height, t.config]),
          [['h265', 320, 240, hvcc]],
        );
        assert.deepStrictEqual(
          out.frames.map((f) => f.data),
          pictures,
        );
        assert.deepStrictEqual(out.warnings, []);
      });

      it('reads Enhanced RTMP hvc1 written by FlvMuxer', () => {
        const track: Track = { id: 0, kind: 'video', codec: 'h265', config: hvcc, width: 320, height: 240 };
        const muxer = new FlvMuxer([track]);
        const frames: Frame[] = pictures.map((data, i) => ({
          trackId: 0,
          dts90k: i * 3600,
          pts90k: i * 3600 + 7200,
          keyframe: i === 0,
          data,
        }));
        const out = demux([muxer.header(), ...frames.map((f) => muxer.mux(f))]);
        assert.deepStrictEqual(
          out.trackLists[0]?.map((t) => [t.codec, t.width, t.height, t.config]),
          [['h265', 320, 240, hvcc]],
        );
        assert.deepStrictEqual(out.frames, frames);
      });
    });
  });

  describe('malformed streams', () => {
    it('refuses a tag larger than maxTagBytes, and keeps refusing', () => {
      const input = flv({ audio: false, video: true }, [{ type: 'video', ms: 0, tag: avcFrame(true, Buffer.alloc(200)) }]);
      const d = new FlvDemuxer({ onTracks: () => {}, onFrame: () => {} }, { maxTagBytes: 100 });
      assert.throws(
        () => d.push(input),
        (err: unknown) => {
          assert.ok(err instanceof MalformedInputError);
          assert.equal(err.offset, 13);
          assert.match(err.message, /declares 205 bytes \(limit 100\)/);
          return true;
        },
      );
      assert.throws(() => d.push(hex('00')), MalformedInputError);
    });

    it('refuses input that is not FLV', () => {
      const d = new FlvDemuxer({ onTracks: () => {}, onFrame: () => {} });
      assert.throws(() => d.push(Buffer.from('GET / HTTP/1.1\r\n')), /signature/);
    });

    it('every truncation of the first 4 KB is "need more", never an exception', () => {
      for (let cut = 0; cut <= 4096; cut++) demux([H264_AAC.subarray(0, cut)]);
    });

    it('random bytes throw nothing but MalformedInputError', () => {
      const header = H264_AAC.subarray(0, 13);
      fc.assert(
        fc.property(
          fc.boolean(),
          fc.uint8Array({ maxLength: 2000 }),
          fc.array(fc.nat(), { maxLength: 5 }),
          (withHeader, data, cuts) => {
            const input = withHeader ? Buffer.concat([header, data]) : Buffer.from(data);
            assertMalformedOnly(() => demux(splitAt(input, cuts), { maxTagBytes: 1 << 20 }));
          },
        ),
        { numRuns: 500 },
      );
    });

    it('random mutations of the fixture throw nothing but MalformedInputError', () => {
      const prefix = H264_AAC.subarray(0, 8192);
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.nat(8191), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
          (edits) => {
            const input = Buffer.from(prefix);
            for (const [pos, value] of edits) input[pos] = value;
            assertMalformedOnly(() => {
              const out = demux([input]);
              for (const f of out.frames) assert.ok(f.pts90k >= f.dts90k);
            });
          },
        ),
        { numRuns: 300 },
      );
    });
  });
});
