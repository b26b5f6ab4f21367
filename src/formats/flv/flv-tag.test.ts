// FLV record parsers and writers: one case table per record drives parse, write and truncation.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { MalformedInputError } from '../../errors.js';
import { amf0EcmaArray } from '../amf/amf0.js';
import {
  flvAudioCodec,
  flvAudioPacket,
  flvAudioTagSize,
  flvScriptTagSize,
  flvTimestamp32,
  flvVideoCodec,
  flvVideoPacket,
  flvVideoTagSize,
  parseFlvAudioTag,
  parseFlvHeader,
  parseFlvScriptTag,
  parseFlvTagHeader,
  parseFlvVideoTag,
  writeFlvAudioTag,
  writeFlvHeader,
  writeFlvScriptTag,
  writeFlvTagHeader,
  writeFlvVideoTag,
  type FlvAudioTag,
  type FlvHeader,
  type FlvScriptTag,
  type FlvTagHeader,
  type FlvVideoTag,
} from './flv-tag.js';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

interface RecordCase<T> {
  name: string;
  bytes: Buffer;
  value: T;
}

interface Codec<T> {
  parse(r: ByteReader): T;
  size(v: T): number;
  write(w: ByteWriter, v: T): void;
}

const HEADER_CASES: RecordCase<FlvHeader>[] = [
  {
    name: 'audio + video',
    bytes: hex('464C56 01 05 00000009'), // 'FLV', version 1, flags audio|video, DataOffset 9
    value: { version: 1, hasAudio: true, hasVideo: true, dataOffset: 9 },
  },
  {
    name: 'video only',
    bytes: hex('464C56 01 01 00000009'), // 'FLV', version 1, flags video, DataOffset 9
    value: { version: 1, hasAudio: false, hasVideo: true, dataOffset: 9 },
  },
];

const TAG_HEADER_CASES: RecordCase<FlvTagHeader>[] = [
  {
    name: 'video tag at 40 ms',
    bytes: hex('09 000405 000028 00 000000'), // type 9, DataSize 1029, Timestamp 40, ext 0, StreamID 0
    value: { tagType: 9, filtered: false, dataSize: 1029, timestampMs: 40, streamId: 0 },
  },
  {
    name: 'audio tag with TimestampExtended',
    bytes: hex('08 000010 FFFFFF 7F 000000'), // type 8, DataSize 16, Timestamp 0xFFFFFF, ext 0x7F
    value: { tagType: 8, filtered: false, dataSize: 16, timestampMs: 0x7fffffff, streamId: 0 },
  },
  {
    name: 'filtered script tag',
    bytes: hex('32 000001 000000 00 000000'), // Filter bit | type 18, DataSize 1
    value: { tagType: 18, filtered: true, dataSize: 1, timestampMs: 0, streamId: 0 },
  },
];

const VIDEO_CASES: RecordCase<FlvVideoTag>[] = [
  {
    name: 'AVC sequence header',
    bytes: hex('17 00 000000 0164000DFFE1'), // key|AVC, AVCPacketType 0, CT 0, avcC (cut short)
    value: { enhanced: false, frameType: 1, codecId: 7, avcPacketType: 0, compositionTimeMs: 0, data: hex('0164000DFFE1') },
  },
  {
    name: 'AVC inter NALUs with CompositionTime 80',
    bytes: hex('27 01 000050 00000002 0988'), // inter|AVC, NALU, CT 80, one 2-byte NAL unit
    value: { enhanced: false, frameType: 2, codecId: 7, avcPacketType: 1, compositionTimeMs: 80, data: hex('00000002 0988') },
  },
  {
    name: 'AVC NALUs with negative CompositionTime',
    bytes: hex('27 01 FFFFD8 AA'), // inter|AVC, NALU, CT -40
    value: { enhanced: false, frameType: 2, codecId: 7, avcPacketType: 1, compositionTimeMs: -40, data: hex('AA') },
  },
  {
    name: 'legacy HEVC (CodecID 12) keyframe',
    bytes: hex('1C 01 000000 BB'), // key|HEVC, NALU, CT 0
    value: { enhanced: false, frameType: 1, codecId: 12, avcPacketType: 1, compositionTimeMs: 0, data: hex('BB') },
  },
  {
    name: 'AVC command frame (no AVCPacketType)',
    bytes: hex('57 00'), // command|AVC, command 0 (start of seek)
    value: { enhanced: false, frameType: 5, codecId: 7, avcPacketType: undefined, compositionTimeMs: 0, data: hex('00') },
  },
  {
    name: 'VP6 (no AVC fields)',
    bytes: hex('24 0102'), // inter|VP6, data
    value: { enhanced: false, frameType: 2, codecId: 4, avcPacketType: undefined, compositionTimeMs: 0, data: hex('0102') },
  },
  {
    name: 'enhanced hvc1 SequenceStart',
    bytes: hex('90 68766331 01'), // IsExHeader|key|SequenceStart, 'hvc1', hvcC (cut short)
    value: { enhanced: true, frameType: 1, packetType: 0, fourCc: 'hvc1', compositionTimeMs: 0, data: hex('01') },
  },
  {
    name: 'enhanced hvc1 CodedFrames with CompositionTimeOffset',
    bytes: hex('A1 68766331 000028 0000000126'), // IsExHeader|inter|CodedFrames, 'hvc1', CT 40, NALUs
    value: { enhanced: true, frameType: 2, packetType: 1, fourCc: 'hvc1', compositionTimeMs: 40, data: hex('0000000126') },
  },
  {
    name: 'enhanced hvc1 CodedFramesX (no CompositionTime)',
    bytes: hex('93 68766331 00000001'), // IsExHeader|key|CodedFramesX, 'hvc1', NALUs
    value: { enhanced: true, frameType: 1, packetType: 3, fourCc: 'hvc1', compositionTimeMs: 0, data: hex('00000001') },
  },
  {
    name: 'enhanced av01 CodedFrames (no CompositionTime)',
    bytes: hex('91 61763031 0A0B'), // IsExHeader|key|CodedFrames, 'av01', OBUs
    value: { enhanced: true, frameType: 1, packetType: 1, fourCc: 'av01', compositionTimeMs: 0, data: hex('0A0B') },
  },
  {
    name: 'enhanced command frame (no FourCC)',
    bytes: hex('D1 01'), // IsExHeader|command|CodedFrames, command 1
    value: { enhanced: true, frameType: 5, packetType: 1, fourCc: '', compositionTimeMs: 0, data: hex('01') },
  },
];

const AUDIO_CASES: RecordCase<FlvAudioTag>[] = [
  {
    name: 'AAC sequence header',
    bytes: hex('AF 00 1208'), // AAC|44k|16-bit|stereo, AACPacketType 0, AudioSpecificConfig
    value: {
      enhanced: false,
      soundFormat: 10,
      soundRateIndex: 3,
      soundSize16: true,
      stereo: true,
      aacPacketType: 0,
      data: hex('1208'),
    },
  },
  {
    name: 'AAC raw frame',
    bytes: hex('AF 01 211B'), // AAC flags, AACPacketType 1, raw frame
    value: {
      enhanced: false,
      soundFormat: 10,
      soundRateIndex: 3,
      soundSize16: true,
      stereo: true,
      aacPacketType: 1,
      data: hex('211B'),
    },
  },
  {
    name: 'MP3 22 kHz mono',
    bytes: hex('2A FFF3'), // MP3|22k|16-bit|mono, MPEG audio frame
    value: {
      enhanced: false,
      soundFormat: 2,
      soundRateIndex: 2,
      soundSize16: true,
      stereo: false,
      aacPacketType: undefined,
      data: hex('FFF3'),
    },
  },
  {
    name: 'enhanced Opus SequenceStart',
    bytes: hex('90 4F707573 4F707573'), // ExHeader|SequenceStart, 'Opus', OpusHead (cut short)
    value: { enhanced: true, packetType: 0, fourCc: 'Opus', data: hex('4F707573') },
  },
  {
    name: 'enhanced mp4a CodedFrames',
    bytes: hex('91 6D703461 21'), // ExHeader|CodedFrames, 'mp4a', raw AAC
    value: { enhanced: true, packetType: 1, fourCc: 'mp4a', data: hex('21') },
  },
];

const SCRIPT_CASES: RecordCase<FlvScriptTag>[] = [
  {
    name: 'onMetaData',
    bytes: hex(
      '02 000A 6F6E4D65746144617461' + // string 'onMetaData'
        '08 00000001' + // ECMA array, 1 entry
        '0008 6475726174696F6E 00 0000000000000000' + // duration: 0
        '000009', // end
    ),
    value: { name: 'onMetaData', args: [amf0EcmaArray({ duration: 0 })] },
  },
];

const HEADER: Codec<FlvHeader> = { parse: parseFlvHeader, size: () => 9, write: writeFlvHeader };
const TAG_HEADER: Codec<FlvTagHeader> = { parse: parseFlvTagHeader, size: () => 11, write: writeFlvTagHeader };
const VIDEO: Codec<FlvVideoTag> = { parse: parseFlvVideoTag, size: flvVideoTagSize, write: writeFlvVideoTag };
const AUDIO: Codec<FlvAudioTag> = { parse: parseFlvAudioTag, size: flvAudioTagSize, write: writeFlvAudioTag };
const SCRIPT: Codec<FlvScriptTag> = { parse: parseFlvScriptTag, size: flvScriptTagSize, write: writeFlvScriptTag };

function roundTripSuite<T>(title: string, cases: RecordCase<T>[], codec: Codec<T>): void {
  describe(title, () => {
    for (const c of cases) {
      it(`${c.name}: parse -> compare -> write -> same bytes`, () => {
        const r = new ByteReader(c.bytes, 'flv');
        assert.deepStrictEqual(codec.parse(r), c.value);
        assert.equal(r.remaining, 0);
        const w = new ByteWriter(codec.size(c.value));
        codec.write(w, c.value);
        assert.deepStrictEqual(w.done(), c.bytes);
      });
    }
    it('every truncation throws MalformedInputError or parses a shorter payload', () => {
      for (const c of cases) {
        for (let cut = 0; cut < c.bytes.length; cut++) {
          try {
            codec.parse(new ByteReader(c.bytes.subarray(0, cut), 'flv'));
          } catch (err) {
            assert.ok(err instanceof MalformedInputError, `${c.name} cut at ${cut}: ${String(err)}`);
          }
        }
      }
    });
    it('random mutations throw nothing but MalformedInputError', () => {
      fc.assert(
        fc.property(fc.constantFrom(...cases), fc.nat(), fc.integer({ min: 0, max: 255 }), (c, pos, value) => {
          const data = Buffer.from(c.bytes);
          data[pos % data.length] = value;
          try {
            codec.parse(new ByteReader(data, 'flv'));
          } catch (err) {
            if (!(err instanceof MalformedInputError)) throw err;
          }
        }),
        { numRuns: 200 },
      );
    });
  });
}

describe('FLV records', () => {
  roundTripSuite('file header', HEADER_CASES, HEADER);
  roundTripSuite('tag header', TAG_HEADER_CASES, TAG_HEADER);
  roundTripSuite('video tag', VIDEO_CASES, VIDEO);
  roundTripSuite('audio tag', AUDIO_CASES, AUDIO);
  roundTripSuite('script tag', SCRIPT_CASES, SCRIPT);

  it('refuses a bad signature and a DataOffset below 9', () => {
    assert.throws(() => parseFlvHeader(new ByteReader(hex('474946 01 05 00000009'), 'flv')), /signature 474946/);
    assert.throws(() => parseFlvHeader(new ByteReader(hex('464C56 01 05 00000005'), 'flv')), /DataOffset 5/);
  });

  it('refuses script data that does not start with a name', () => {
    assert.throws(() => parseFlvScriptTag(new ByteReader(hex('00 0000000000000000'), 'flv')), /handler name/);
  });

  it('skips @setDataFrame in script data', () => {
    const body = hex('02 000D 40736574446174614672616D65  02 000A 6F6E4D65746144617461  05');
    assert.deepStrictEqual(parseFlvScriptTag(new ByteReader(body, 'flv')), { name: 'onMetaData', args: [null] });
  });

  it('maps codecs and packet kinds', () => {
    const kinds = VIDEO_CASES.map((c) => [flvVideoCodec(c.value), flvVideoPacket(c.value)]);
    assert.deepStrictEqual(kinds, [
      ['h264', 'sequenceStart'],
      ['h264', 'codedFrames'],
      ['h264', 'codedFrames'],
      ['h265', 'codedFrames'],
      ['h264', 'command'],
      [undefined, 'codedFrames'],
      ['h265', 'sequenceStart'],
      ['h265', 'codedFrames'],
      ['h265', 'codedFrames'],
      ['av1', 'codedFrames'],
      [undefined, 'command'],
    ]);
    const audio = AUDIO_CASES.map((c) => [flvAudioCodec(c.value), flvAudioPacket(c.value)]);
    assert.deepStrictEqual(audio, [
      ['aac', 'sequenceStart'],
      ['aac', 'codedFrames'],
      ['mp3', 'codedFrames'],
      ['opus', 'sequenceStart'],
      ['aac', 'codedFrames'],
    ]);
  });

  it('wraps timestamps to 32 bits', () => {
    assert.equal(flvTimestamp32(2 ** 32 + 5), 5);
    assert.equal(flvTimestamp32(-1), 2 ** 32 - 1);
    const w = new ByteWriter(11);
    writeFlvTagHeader(w, { tagType: 9, filtered: false, dataSize: 0, timestampMs: 2 ** 32 + 0x01020304, streamId: 0 });
    assert.deepStrictEqual(w.done(), hex('09 000000 020304 01 000000'));
  });
});
