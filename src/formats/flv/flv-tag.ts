// FLV records: the file header, the tag header and one tag body (audio, video, script data), per
// the Adobe FLV spec v10.1 Annex E (E.2-E.4) and Veovera's Enhanced RTMP v1/v2 (ExVideoTagHeader,
// ExAudioTagHeader). Record parsers: pure, throw MalformedInputError; writers fill a ByteWriter.

import type { ByteReader } from '../bytes/byte-reader.js';
import type { ByteWriter } from '../bytes/byte-writer.js';
import { amf0Size, decodeAmf0, newAmf0DecodeContext, writeAmf0, type Amf0Value } from '../amf/amf0.js';
import type { AudioCodec, VideoCodec } from '../../media/codec.js';
import {
  clampI24,
  flvExAudioTagSize,
  flvExVideoTagSize,
  parseFlvExAudioTags,
  parseFlvExVideoTags,
  writeFlvExAudioTag,
  writeFlvExVideoTag,
  type FlvExAudioTag,
  type FlvExVideoTag,
} from './flv-ex-tag.js';

export type { FlvExAudioTag, FlvExVideoTag } from './flv-ex-tag.js';

export const FLV_HEADER_BYTES = 9;
export const FLV_TAG_HEADER_BYTES = 11;
export const FLV_PREVIOUS_TAG_SIZE_BYTES = 4;

export const FlvTagType = { audio: 8, video: 9, script: 18 } as const;
export type FlvTagType = (typeof FlvTagType)[keyof typeof FlvTagType];

/** SoundFormat (E.4.2.1). 9 is reserved in FLV 10.1 and means ExAudioTagHeader in Enhanced RTMP v2. */
export const FlvSoundFormat = {
  pcmPlatformEndian: 0,
  adpcm: 1,
  mp3: 2,
  pcmLittleEndian: 3,
  nellymoser16k: 4,
  nellymoser8k: 5,
  nellymoser: 6,
  alaw: 7,
  mulaw: 8,
  exHeader: 9,
  aac: 10,
  speex: 11,
  mp3At8k: 14,
  deviceSpecific: 15,
} as const;

/** SoundRate (E.4.2.1): the 2-bit index's rate in Hz. AAC always signals 3 (44 kHz). */
export const FLV_SOUND_RATES = [5512, 11025, 22050, 44100] as const;

/** CodecID (E.4.3.1), with 12 = HEVC in the widespread (Chinese CDN) legacy extension. */
export const FlvVideoCodecId = { h263: 2, screenVideo: 3, vp6: 4, vp6Alpha: 5, screenVideo2: 6, avc: 7, hevc: 12 } as const;

/** FrameType (E.4.3.1 and Enhanced RTMP). */
export const FlvFrameType = { key: 1, inter: 2, disposableInter: 3, generatedKey: 4, command: 5 } as const;

/** AVCPacketType (E.4.3.1), also used by legacy HEVC, and AACPacketType (E.4.2.1). */
export const FlvAvcPacketType = { sequenceHeader: 0, nalu: 1, endOfSequence: 2 } as const;
export const FlvAacPacketType = { sequenceHeader: 0, raw: 1 } as const;

/** Enhanced RTMP VideoPacketType. */
export const FlvExVideoPacketType = {
  sequenceStart: 0,
  codedFrames: 1,
  sequenceEnd: 2,
  /** CodedFrames without CompositionTime (it is 0). */
  codedFramesX: 3,
  metadata: 4,
  mpeg2TsSequenceStart: 5,
  multitrack: 6,
  modEx: 7,
} as const;

/** Enhanced RTMP v2 AudioPacketType. */
export const FlvExAudioPacketType = {
  sequenceStart: 0,
  codedFrames: 1,
  sequenceEnd: 2,
  multichannelConfig: 4,
  multitrack: 5,
  modEx: 7,
} as const;

/** What a tag carries, whatever its header flavour. */
export type FlvPacketKind = 'sequenceStart' | 'codedFrames' | 'sequenceEnd' | 'command' | 'other';

// ---------------------------------------------------------------------------------------------
// File header, E.2

export interface FlvHeader {
  version: number;
  hasAudio: boolean;
  hasVideo: boolean;
  /** Bytes from the start of the file to the body (9 for version 1). */
  dataOffset: number;
}

/**
 * E.2 FLV header:
 *   'F' 'L' 'V'  u8 Version (1)
 *   u8 UB[5] reserved 0 | UB[1] TypeFlagsAudio | UB[1] reserved 0 | UB[1] TypeFlagsVideo
 *   u32 DataOffset (size of this header: 9)
 */
export function parseFlvHeader(r: ByteReader): FlvHeader {
  const start = r.pos;
  const signature = r.bytes(3);
  if (signature[0] !== 0x46 || signature[1] !== 0x4c || signature[2] !== 0x56) {
    r.pos = start;
    r.fail(`signature ${signature.toString('hex')}, expected 464c56 ('FLV')`);
  }
  const version = r.u8();
  const flags = r.u8();
  const dataOffset = r.u32();
  if (dataOffset < FLV_HEADER_BYTES) {
    r.pos = start + 5;
    r.fail(`DataOffset ${dataOffset} is smaller than the ${FLV_HEADER_BYTES}-byte header`);
  }
  return { version, hasAudio: (flags & 0x04) !== 0, hasVideo: (flags & 0x01) !== 0, dataOffset };
}

export function writeFlvHeader(w: ByteWriter, h: FlvHeader): void {
  w.u8(0x46).u8(0x4c).u8(0x56).u8(h.version);
  w.u8((h.hasAudio ? 0x04 : 0) | (h.hasVideo ? 0x01 : 0));
  w.u32(h.dataOffset);
}

// ---------------------------------------------------------------------------------------------
// Tag header, E.4.1

export interface FlvTagHeader {
  tagType: number;
  /** Filter bit: the body is encrypted (FMS DRM); Feedcast cannot read it. */
  filtered: boolean;
  dataSize: number;
  /** Timestamp | TimestampExtended << 24: milliseconds, 32 bits, wrapping. */
  timestampMs: number;
  streamId: number;
}

/**
 * E.4.1 FLVTAG header (11 bytes):
 *   u8  UB[2] reserved | UB[1] Filter | UB[5] TagType (8 audio, 9 video, 18 script data)
 *   u24 DataSize (body bytes after this header)
 *   u24 Timestamp (ms, low 24 bits)  u8 TimestampExtended (high 8 bits)
 *   u24 StreamID (always 0)
 */
export function parseFlvTagHeader(r: ByteReader): FlvTagHeader {
  const b0 = r.u8();
  const dataSize = r.u24();
  const low = r.u24();
  const high = r.u8();
  const streamId = r.u24();
  return { tagType: b0 & 0x1f, filtered: (b0 & 0x20) !== 0, dataSize, timestampMs: high * 0x100_0000 + low, streamId };
}

export function writeFlvTagHeader(w: ByteWriter, h: FlvTagHeader): void {
  const ts = flvTimestamp32(h.timestampMs);
  w.u8((h.filtered ? 0x20 : 0) | (h.tagType & 0x1f));
  w.u24(h.dataSize);
  w.u24(ts % 0x100_0000);
  w.u8(Math.floor(ts / 0x100_0000));
  w.u24(h.streamId);
}

/** A millisecond time as FLV's wrapping 32-bit field (negative times wrap too). */
export function flvTimestamp32(ms: number): number {
  const m = Math.round(ms) % 0x1_0000_0000;
  return m < 0 ? m + 0x1_0000_0000 : m;
}

// ---------------------------------------------------------------------------------------------
// Audio tag body, E.4.2 and Enhanced RTMP v2 ExAudioTagHeader

export interface FlvLegacyAudioTag {
  enhanced: false;
  soundFormat: number;
  /** 0..3: 5.5, 11, 22, 44 kHz (FLV_SOUND_RATES). */
  soundRateIndex: number;
  soundSize16: boolean;
  stereo: boolean;
  /** AACPacketType, for AAC only. */
  aacPacketType: number | undefined;
  data: Buffer;
}

export type FlvAudioTag = FlvLegacyAudioTag | FlvExAudioTag;

/**
 * E.4.2.1 AUDIODATA:
 *   u8 UB[4] SoundFormat | UB[2] SoundRate | UB[1] SoundSize | UB[1] SoundType
 *   if SoundFormat == 10 (AAC): u8 AACPacketType (0 AudioSpecificConfig, 1 raw frame)
 *   data
 * Enhanced RTMP v2, SoundFormat == 9 (ExHeader): UB[4] 9 | UB[4] AudioPacketType, then the
 *   ExAudioTagHeader (ModEx, Multitrack, FourCC) and body: flv-ex-tag.ts. A Multitrack tag
 *   carries several tracks: parseFlvAudioTags returns one tag per track.
 */
export function parseFlvAudioTags(r: ByteReader): FlvAudioTag[] {
  const b0 = r.u8();
  const soundFormat = b0 >> 4;
  if (soundFormat === FlvSoundFormat.exHeader) return parseFlvExAudioTags(r, b0);
  const aacPacketType = soundFormat === FlvSoundFormat.aac ? r.u8() : undefined;
  return [
    {
      enhanced: false,
      soundFormat,
      soundRateIndex: (b0 >> 2) & 3,
      soundSize16: (b0 & 2) !== 0,
      stereo: (b0 & 1) !== 0,
      aacPacketType,
      data: r.rest(),
    },
  ];
}

/** An audio tag body that carries one track (anything but a ManyTracks Multitrack tag). */
export function parseFlvAudioTag(r: ByteReader): FlvAudioTag {
  return single(r, parseFlvAudioTags(r));
}

function single<T>(r: ByteReader, tags: T[]): T {
  const tag = tags[0];
  if (tags.length !== 1 || tag === undefined) r.fail(`tag carries ${tags.length} tracks, expected one`);
  return tag;
}

export function flvAudioTagSize(tag: FlvAudioTag): number {
  if (tag.enhanced) return flvExAudioTagSize(tag);
  return 1 + (tag.aacPacketType === undefined ? 0 : 1) + tag.data.length;
}

export function writeFlvAudioTag(w: ByteWriter, tag: FlvAudioTag): void {
  if (tag.enhanced) {
    writeFlvExAudioTag(w, tag);
    return;
  }
  w.u8(((tag.soundFormat & 0x0f) << 4) | ((tag.soundRateIndex & 3) << 2) | (tag.soundSize16 ? 2 : 0) | (tag.stereo ? 1 : 0));
  if (tag.aacPacketType !== undefined) w.u8(tag.aacPacketType);
  w.bytes(tag.data);
}

export function flvAudioCodec(tag: FlvAudioTag): AudioCodec | undefined {
  if (tag.enhanced) {
    switch (tag.fourCc) {
      case 'mp4a':
        return 'aac';
      case 'Opus':
        return 'opus';
      case '.mp3':
        return 'mp3';
      default:
        return undefined;
    }
  }
  switch (tag.soundFormat) {
    case FlvSoundFormat.aac:
      return 'aac';
    case FlvSoundFormat.mp3:
    case FlvSoundFormat.mp3At8k:
      return 'mp3';
    case FlvSoundFormat.alaw:
      return 'pcm_alaw';
    case FlvSoundFormat.mulaw:
      return 'pcm_mulaw';
    default:
      return undefined;
  }
}

/** A readable name for an audio tag's codec, for warnings. */
export function flvAudioCodecName(tag: FlvAudioTag): string {
  return tag.enhanced ? `FourCC '${tag.fourCc}'` : `SoundFormat ${tag.soundFormat}`;
}

export function flvAudioPacket(tag: FlvAudioTag): FlvPacketKind {
  const type = tag.enhanced ? tag.packetType : tag.aacPacketType;
  if (type === undefined) return 'codedFrames';
  switch (type) {
    case 0:
      return 'sequenceStart';
    case 1:
      return 'codedFrames';
    case 2:
      return tag.enhanced ? 'sequenceEnd' : 'other';
    default:
      return 'other';
  }
}

// ---------------------------------------------------------------------------------------------
// Video tag body, E.4.3 and Enhanced RTMP v1/v2 ExVideoTagHeader

export interface FlvLegacyVideoTag {
  enhanced: false;
  frameType: number;
  codecId: number;
  /** AVCPacketType, for AVC (7) and HEVC (12) when FrameType is not 5 (command). */
  avcPacketType: number | undefined;
  /** CompositionTime (SI24, ms) for AVC/HEVC NALU packets; 0 otherwise. */
  compositionTimeMs: number;
  data: Buffer;
}

export type FlvVideoTag = FlvLegacyVideoTag | FlvExVideoTag;

/**
 * E.4.3.1 VIDEODATA:
 *   u8 UB[4] FrameType (1 key, 2 inter, 3 disposable, 4 generated key, 5 info/command)
 *      | UB[4] CodecID (7 AVC, 12 HEVC legacy extension)
 *   if CodecID is 7 or 12 (and FrameType != 5):
 *     u8 AVCPacketType (0 sequence header = avcC/hvcC, 1 NALUs, 2 end of sequence)
 *     i24 CompositionTime (ms; 0 unless AVCPacketType == 1)
 *   data
 * Enhanced RTMP ExVideoTagHeader, IsExHeader set:
 *   u8 UB[1] IsExHeader=1 | UB[3] FrameType | UB[4] PacketType (0 SequenceStart, 1 CodedFrames,
 *      2 SequenceEnd, 3 CodedFramesX, 4 Metadata, 5 MPEG2TSSequenceStart, 6 Multitrack, 7 ModEx)
 *   then ModEx, Multitrack, VideoFourCc ('avc1', 'hvc1', 'av01', 'vp09'), CompositionTimeOffset
 *   and data (SequenceStart: avcC/hvcC/av1C/vpcC; CodedFrames(X): NAL units / OBUs / a VP9 frame):
 *   flv-ex-tag.ts. A Multitrack tag carries several tracks: one tag per track is returned.
 */
export function parseFlvVideoTags(r: ByteReader): FlvVideoTag[] {
  const b0 = r.u8();
  if ((b0 & 0x80) !== 0) return parseFlvExVideoTags(r, b0);
  const frameType = b0 >> 4;
  const codecId = b0 & 0x0f;
  const nalCodec = codecId === FlvVideoCodecId.avc || codecId === FlvVideoCodecId.hevc;
  if (nalCodec && frameType !== FlvFrameType.command) {
    const avcPacketType = r.u8();
    const compositionTimeMs = r.i24();
    return [{ enhanced: false, frameType, codecId, avcPacketType, compositionTimeMs, data: r.rest() }];
  }
  return [{ enhanced: false, frameType, codecId, avcPacketType: undefined, compositionTimeMs: 0, data: r.rest() }];
}

/** A video tag body that carries one track (anything but a ManyTracks Multitrack tag). */
export function parseFlvVideoTag(r: ByteReader): FlvVideoTag {
  return single(r, parseFlvVideoTags(r));
}

export function flvVideoTagSize(tag: FlvVideoTag): number {
  if (tag.enhanced) return flvExVideoTagSize(tag);
  return 1 + (tag.avcPacketType === undefined ? 0 : 4) + tag.data.length;
}

export function writeFlvVideoTag(w: ByteWriter, tag: FlvVideoTag): void {
  if (tag.enhanced) {
    writeFlvExVideoTag(w, tag);
    return;
  }
  w.u8(((tag.frameType & 0x0f) << 4) | (tag.codecId & 0x0f));
  if (tag.avcPacketType !== undefined) w.u8(tag.avcPacketType).i24(clampI24(tag.compositionTimeMs));
  w.bytes(tag.data);
}

export function flvVideoCodec(tag: FlvVideoTag): VideoCodec | undefined {
  if (tag.enhanced) {
    switch (tag.fourCc) {
      case 'avc1':
        return 'h264';
      case 'hvc1':
        return 'h265';
      case 'av01':
        return 'av1';
      case 'vp09':
        return 'vp9';
      default:
        return undefined;
    }
  }
  if (tag.codecId === FlvVideoCodecId.avc) return 'h264';
  if (tag.codecId === FlvVideoCodecId.hevc) return 'h265';
  return undefined;
}

/** A readable name for a video tag's codec, for warnings. */
export function flvVideoCodecName(tag: FlvVideoTag): string {
  return tag.enhanced ? `FourCC '${tag.fourCc}'` : `CodecID ${tag.codecId}`;
}

export function flvVideoPacket(tag: FlvVideoTag): FlvPacketKind {
  if (tag.frameType === FlvFrameType.command) return 'command';
  if (tag.enhanced) {
    switch (tag.packetType) {
      case FlvExVideoPacketType.sequenceStart:
        return 'sequenceStart';
      case FlvExVideoPacketType.codedFrames:
      case FlvExVideoPacketType.codedFramesX:
        return 'codedFrames';
      case FlvExVideoPacketType.sequenceEnd:
        return 'sequenceEnd';
      default:
        return 'other';
    }
  }
  switch (tag.avcPacketType) {
    case undefined:
    case FlvAvcPacketType.nalu:
      return 'codedFrames';
    case FlvAvcPacketType.sequenceHeader:
      return 'sequenceStart';
    case FlvAvcPacketType.endOfSequence:
      return 'sequenceEnd';
    default:
      return 'other';
  }
}

// ---------------------------------------------------------------------------------------------
// Script data tag body, E.4.4

export interface FlvScriptTag {
  /** The handler name: 'onMetaData', 'onTextData', 'onCuePoint'... */
  name: string;
  args: Amf0Value[];
}

/**
 * E.4.4.1 SCRIPTDATA: AMF0 values; the first is the handler name (a string), e.g.
 *   02 000A 'onMetaData'  08 <u32 count> { key, value }* 00 00 09
 * A leading '@setDataFrame' (what RTMP publishers send, copied into files by some recorders) is
 * skipped, so its name is the one after it.
 */
export function parseFlvScriptTag(r: ByteReader): FlvScriptTag {
  const ctx = newAmf0DecodeContext();
  const start = r.pos;
  let name = decodeAmf0(r, ctx);
  if (name === '@setDataFrame' && r.remaining > 0) name = decodeAmf0(r, ctx);
  if (typeof name !== 'string') {
    r.pos = start;
    r.fail(`script data starts with ${describeAmf0Type(name)}, expected the handler name string`);
  }
  const args: Amf0Value[] = [];
  while (r.remaining > 0) args.push(decodeAmf0(r, ctx));
  return { name, args };
}

export function flvScriptTagSize(tag: FlvScriptTag): number {
  return amf0Size([tag.name]) + amf0Size(tag.args);
}

export function writeFlvScriptTag(w: ByteWriter, tag: FlvScriptTag): void {
  writeAmf0(w, [tag.name]);
  writeAmf0(w, tag.args);
}

function describeAmf0Type(v: Amf0Value): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  return `a value of type ${typeof v}`;
}
