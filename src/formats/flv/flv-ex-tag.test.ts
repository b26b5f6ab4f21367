// Enhanced RTMP v2 tag bodies: ModEx, Multitrack (OneTrack, ManyTracks, ManyTracksManyCodecs),
// byte layouts from the v2 spec's pseudocode and from a real E-RTMP file (Veovera's e-rtmp-lab
// testsrc.flv, AV1 + Opus), round trips, and fuzzing.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { MalformedInputError } from '../../errors.js';
import { encodeFlvExAudioTracks, encodeFlvExVideoTracks, type FlvExAudioTag, type FlvExVideoTag } from './flv-ex-tag.js';
import {
  flvAudioTagSize,
  flvVideoTagSize,
  parseFlvAudioTag,
  parseFlvAudioTags,
  parseFlvVideoTags,
  writeFlvAudioTag,
  writeFlvVideoTag,
} from './flv-tag.js';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

interface Case<T> {
  name: string;
  bytes: Buffer;
  tags: T[];
}

const VIDEO: Case<FlvExVideoTag>[] = [
  {
    // testsrc.flv, tag 1: the empty sequence start ffmpeg 7 writes in its header
    name: 'av01 SequenceStart, empty (testsrc.flv)',
    bytes: hex('90 61763031'),
    tags: [{ enhanced: true, frameType: 1, packetType: 0, fourCc: 'av01', compositionTimeMs: 0, data: hex('') }],
  },
  {
    // testsrc.flv, tag 7 (cut): CodedFrames, key, av01, a temporal delimiter then a sequence header OBU
    name: 'av01 CodedFrames (testsrc.flv)',
    bytes: hex('91 61763031 1200 0a0e'),
    tags: [{ enhanced: true, frameType: 1, packetType: 1, fourCc: 'av01', compositionTimeMs: 0, data: hex('1200 0a0e') }],
  },
  {
    name: 'ModEx TimestampOffsetNano 500000 ns, then hvc1 CodedFrames with CompositionTimeOffset 40',
    // 1|001|0111 (ModEx), size-1 = 2, 07A120, 0000|0001 (TimestampOffsetNano, CodedFrames), 'hvc1', SI24 40
    bytes: hex('97 02 07A120 01 68766331 000028 AB'),
    tags: [
      {
        enhanced: true,
        frameType: 1,
        packetType: 1,
        fourCc: 'hvc1',
        compositionTimeMs: 40,
        timestampOffsetNs: 500_000,
        data: hex('AB'),
      },
    ],
  },
  {
    name: 'Multitrack OneTrack: inter hvc1 CodedFramesX of track 2',
    // 1|010|0110 (Multitrack), 0000|0011 (OneTrack, CodedFramesX), 'hvc1', trackId 2
    bytes: hex('A6 03 68766331 02 DEAD'),
    tags: [{ enhanced: true, frameType: 2, packetType: 3, fourCc: 'hvc1', compositionTimeMs: 0, trackId: 2, data: hex('DEAD') }],
  },
  {
    name: 'vp09 SequenceStart with a vpcC',
    bytes: hex('90 76703039 01000000 00148202 02020000'),
    tags: [
      {
        enhanced: true,
        frameType: 1,
        packetType: 0,
        fourCc: 'vp09',
        compositionTimeMs: 0,
        data: hex('01000000 00148202 02020000'),
      },
    ],
  },
];

const VIDEO_MANY: Case<FlvExVideoTag>[] = [
  {
    name: 'Multitrack ManyTracks: hvc1 CodedFrames of tracks 0 and 1, each with its CompositionTimeOffset',
    // 1|001|0110, 0001|0001 (ManyTracks, CodedFrames), 'hvc1', then trackId, u24 size, SI24 CT, data
    bytes: hex('96 11 68766331  00 000005 000028 AAAA  01 000004 FFFFD8 BB'),
    tags: [
      { enhanced: true, frameType: 1, packetType: 1, fourCc: 'hvc1', compositionTimeMs: 40, trackId: 0, data: hex('AAAA') },
      { enhanced: true, frameType: 1, packetType: 1, fourCc: 'hvc1', compositionTimeMs: -40, trackId: 1, data: hex('BB') },
    ],
  },
  {
    name: 'Multitrack ManyTracksManyCodecs: av01 track 0 and vp09 track 1',
    bytes: hex('96 21  61763031 00 000002 0A0B  76703039 01 000001 0C'),
    tags: [
      { enhanced: true, frameType: 1, packetType: 1, fourCc: 'av01', compositionTimeMs: 0, trackId: 0, data: hex('0A0B') },
      { enhanced: true, frameType: 1, packetType: 1, fourCc: 'vp09', compositionTimeMs: 0, trackId: 1, data: hex('0C') },
    ],
  },
];

const AUDIO: Case<FlvExAudioTag>[] = [
  {
    // testsrc.flv, tag 3: Opus MultichannelConfig (order Native, 1 channel, FrontCenter)
    name: 'Opus MultichannelConfig (testsrc.flv)',
    bytes: hex('94 4f707573 01 01 00000004'),
    tags: [{ enhanced: true, packetType: 4, fourCc: 'Opus', data: hex('0101 00000004') }],
  },
  {
    name: 'ModEx TimestampOffsetNano, then Multitrack OneTrack mp4a CodedFrames of track 3',
    // 1001|0111 (ExHeader, ModEx), size-1 = 2, 0003E8, 0000|0101 (TimestampOffsetNano, Multitrack),
    // 0000|0001 (OneTrack, CodedFrames), 'mp4a', trackId 3
    bytes: hex('97 02 0003E8 05 01 6d703461 03 2110'),
    tags: [{ enhanced: true, packetType: 1, fourCc: 'mp4a', trackId: 3, timestampOffsetNs: 1000, data: hex('2110') }],
  },
];

const AUDIO_MANY: Case<FlvExAudioTag>[] = [
  {
    name: 'Multitrack ManyTracks: mp4a CodedFrames of tracks 0 and 1',
    bytes: hex('95 11 6d703461  00 000002 2110  01 000001 21'),
    tags: [
      { enhanced: true, packetType: 1, fourCc: 'mp4a', trackId: 0, data: hex('2110') },
      { enhanced: true, packetType: 1, fourCc: 'mp4a', trackId: 1, data: hex('21') },
    ],
  },
  {
    name: 'Multitrack ManyTracksManyCodecs: mp4a track 0 and Opus track 1',
    bytes: hex('95 21  6d703461 00 000001 21  4f707573 01 000002 FC01'),
    tags: [
      { enhanced: true, packetType: 1, fourCc: 'mp4a', trackId: 0, data: hex('21') },
      { enhanced: true, packetType: 1, fourCc: 'Opus', trackId: 1, data: hex('FC01') },
    ],
  },
];

function encodeOne<T>(tag: T, size: (t: T) => number, write: (w: ByteWriter, t: T) => void): Buffer {
  const w = new ByteWriter(size(tag));
  write(w, tag);
  return w.done();
}

const parseVideo = (b: Buffer): unknown[] => parseFlvVideoTags(new ByteReader(b, 'flv'));
const parseAudio = (b: Buffer): unknown[] => parseFlvAudioTags(new ByteReader(b, 'flv'));
const writeVideo = (t: FlvExVideoTag): Buffer => encodeOne(t, flvVideoTagSize, writeFlvVideoTag);
const writeAudio = (t: FlvExAudioTag): Buffer => encodeOne(t, flvAudioTagSize, writeFlvAudioTag);

function onlyMalformed(parse: (b: Buffer) => unknown, bytes: Buffer): void {
  try {
    parse(bytes);
  } catch (err) {
    if (!(err instanceof MalformedInputError)) throw err;
  }
}

describe('Enhanced RTMP tag bodies', () => {
  for (const c of VIDEO) {
    it(`video: ${c.name}: parses, and writes back the same bytes`, () => {
      assert.deepStrictEqual(parseVideo(c.bytes), c.tags);
      assert.deepStrictEqual(writeVideo(c.tags[0] as FlvExVideoTag), c.bytes);
    });
  }
  for (const c of VIDEO_MANY) {
    it(`video: ${c.name}: parses, and encodes back the same bytes`, () => {
      assert.deepStrictEqual(parseVideo(c.bytes), c.tags);
      assert.deepStrictEqual(encodeFlvExVideoTracks(c.tags), c.bytes);
    });
  }
  for (const c of AUDIO) {
    it(`audio: ${c.name}: parses, and writes back the same bytes`, () => {
      assert.deepStrictEqual(parseAudio(c.bytes), c.tags);
      assert.deepStrictEqual(writeAudio(c.tags[0] as FlvExAudioTag), c.bytes);
    });
  }
  for (const c of AUDIO_MANY) {
    it(`audio: ${c.name}: parses, and encodes back the same bytes`, () => {
      assert.deepStrictEqual(parseAudio(c.bytes), c.tags);
      assert.deepStrictEqual(encodeFlvExAudioTracks(c.tags), c.bytes);
    });
  }

  it('refuses what the spec forbids or cannot be followed, with the reason', () => {
    assert.throws(() => parseVideo(hex('96 06 68766331')), /wraps packet type 6/);
    assert.throws(() => parseVideo(hex('96 31 68766331 00 AA')), /unknown video AvMultitrackType 3/);
    assert.throws(() => parseAudio(hex('95 11 6d703461 00 000009 21')), MalformedInputError);
    assert.throws(() => parseAudio(hex('97 00 05 01 6d703461 21')), /TimestampOffsetNano has 1 bytes/);
    assert.throws(() => parseFlvAudioTag(new ByteReader(AUDIO_MANY[0]?.bytes ?? hex(''), 'flv')), /carries 2 tracks/);
  });

  it('skips the data of an unknown ModEx type (its size bounds it)', () => {
    // ModEx type 5 with 4 bytes of data, then CodedFrames mp4a
    assert.deepStrictEqual(parseAudio(hex('97 03 01020304 51 6d703461 21')), [
      { enhanced: true, packetType: 1, fourCc: 'mp4a', data: hex('21') },
    ]);
  });

  it('every truncation throws MalformedInputError or parses a shorter payload', () => {
    const all: [Buffer, (b: Buffer) => unknown][] = [
      ...[...VIDEO, ...VIDEO_MANY].map((c) => [c.bytes, parseVideo] as [Buffer, (b: Buffer) => unknown]),
      ...[...AUDIO, ...AUDIO_MANY].map((c) => [c.bytes, parseAudio] as [Buffer, (b: Buffer) => unknown]),
    ];
    for (const [bytes, parse] of all) for (let cut = 0; cut < bytes.length; cut++) onlyMalformed(parse, bytes.subarray(0, cut));
  });

  const fourCcs = fc.constantFrom('hvc1', 'av01', 'vp09', 'avc1');
  const exVideo = fc.record(
    {
      frameType: fc.integer({ min: 1, max: 4 }),
      packetType: fc.constantFrom(0, 1, 2, 3),
      fourCc: fourCcs,
      compositionTimeMs: fc.integer({ min: -0x80_0000, max: 0x7f_ffff }),
      trackId: fc.integer({ min: 0, max: 255 }),
      timestampOffsetNs: fc.integer({ min: 0, max: 999_999 }),
      data: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    },
    { requiredKeys: ['frameType', 'packetType', 'fourCc', 'compositionTimeMs', 'data'] },
  );
  const normalise = (t: Omit<FlvExVideoTag, 'enhanced'>): FlvExVideoTag => ({
    enhanced: true,
    ...t,
    compositionTimeMs: t.packetType === 1 && (t.fourCc === 'hvc1' || t.fourCc === 'avc1') ? t.compositionTimeMs : 0,
  });

  it('property: any single video tag (ModEx, OneTrack or plain) round-trips', () => {
    fc.assert(
      fc.property(exVideo, (t) => {
        const tag = normalise(t);
        assert.deepStrictEqual(parseVideo(writeVideo(tag)), [tag]);
      }),
      { numRuns: 300 },
    );
  });

  it('property: ManyTracks and ManyTracksManyCodecs video and audio round-trip', () => {
    fc.assert(
      fc.property(
        fc.array(exVideo, { minLength: 1, maxLength: 4 }),
        fc.constantFrom(0, 1, 3),
        fc.constantFrom('mp4a', 'Opus', '.mp3'),
        (ts, packetType, audioFourCc) => {
          const first = ts[0];
          if (first === undefined) return;
          const video = ts.map((t, i) => {
            const { timestampOffsetNs: _drop, ...rest } = t;
            return normalise({ ...rest, frameType: first.frameType, packetType, trackId: i });
          });
          assert.deepStrictEqual(parseVideo(encodeFlvExVideoTracks(video)), video);
          const audio: FlvExAudioTag[] = ts.map((t, i) => ({
            enhanced: true,
            packetType: packetType === 3 ? 1 : packetType,
            fourCc: i % 2 === 0 ? 'mp4a' : audioFourCc,
            trackId: i,
            data: t.data,
          }));
          assert.deepStrictEqual(parseAudio(encodeFlvExAudioTracks(audio)), audio);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('property: random bodies after an enhanced first byte throw nothing but MalformedInputError', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0x80, max: 0xff }),
        fc.integer({ min: 0, max: 15 }),
        fc.uint8Array({ maxLength: 64 }),
        (v, a, rest) => {
          onlyMalformed(parseVideo, Buffer.concat([Buffer.from([v]), Buffer.from(rest)]));
          onlyMalformed(parseAudio, Buffer.concat([Buffer.from([0x90 | a]), Buffer.from(rest)]));
        },
      ),
      { numRuns: 500 },
    );
  });
});
