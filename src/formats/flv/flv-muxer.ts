// FLV muxer for HTTP-FLV, RTMP play and FLV files (Adobe FLV spec v10.1 Annex E): header +
// onMetaData + sequence headers, then one tag per frame. H.264/AAC/MP3 use the legacy tag headers
// (E.4.2, E.4.3); H.265, AV1 and VP9 the Enhanced RTMP ExVideoTagHeader ('hvc1', 'av01', 'vp09'),
// Opus the Enhanced RTMP v2 ExAudioTagHeader ('Opus'), with FourCC codec ids in onMetaData.

import { ByteWriter } from '../bytes/byte-writer.js';
import { FrameTooLargeError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import type { StreamMuxer } from '../../media/demuxer.js';
import { ms90kToMs } from '../../media/timebase.js';
import type { Track } from '../../media/track.js';
import { amf0EcmaArray, type Amf0Object } from '../amf/amf0.js';
import { vpccOf } from '../vp9/vpcc.js';
import {
  FLV_HEADER_BYTES,
  FLV_PREVIOUS_TAG_SIZE_BYTES,
  FLV_TAG_HEADER_BYTES,
  FlvAacPacketType,
  FlvAvcPacketType,
  FlvExAudioPacketType,
  FlvExVideoPacketType,
  FlvFrameType,
  FlvSoundFormat,
  FlvTagType,
  FlvVideoCodecId,
  flvAudioTagSize,
  flvScriptTagSize,
  flvVideoTagSize,
  writeFlvAudioTag,
  writeFlvHeader,
  writeFlvScriptTag,
  writeFlvTagHeader,
  writeFlvVideoTag,
  type FlvAudioTag,
  type FlvScriptTag,
  type FlvVideoTag,
} from './flv-tag.js';

export interface FlvMuxerOptions {
  /** Extra onMetaData entries (title, comment...); they override the computed ones. */
  metadata?: Record<string, string>;
}

const EMPTY = Buffer.alloc(0);
/** DataSize is a u24. */
const FLV_MAX_DATA_SIZE = 0xff_ffff;
/** The Enhanced RTMP FourCC of each codec FLV carries in the enhanced form. */
const VIDEO_FOURCC = { h265: 'hvc1', av1: 'av01', vp9: 'vp09' } as const;
type EnhancedVideoCodec = keyof typeof VIDEO_FOURCC;
const OPUS_FOURCC = 'Opus';

function enhancedVideoFourCc(track: Track): string | undefined {
  return track.codec in VIDEO_FOURCC ? VIDEO_FOURCC[track.codec as EnhancedVideoCodec] : undefined;
}

/** onMetaData's videocodecid/audiocodecid of an Enhanced RTMP codec: its FourCC as a number. */
function fourCcNumber(fourCc: string): number {
  return Buffer.from(fourCc, 'latin1').readUInt32BE(0);
}

/** A tag body: video, audio or script data, with its FLV tag type. */
type TagBody =
  | { tagType: typeof FlvTagType.video; tag: FlvVideoTag }
  | { tagType: typeof FlvTagType.audio; tag: FlvAudioTag }
  | { tagType: typeof FlvTagType.script; tag: FlvScriptTag };

export class FlvMuxer implements StreamMuxer {
  readonly contentType = 'video/x-flv';
  private readonly metadata: Record<string, string>;
  private video: Track | undefined;
  private audio: Track | undefined;
  private lastTimestampMs = 0;

  constructor(tracks: readonly Track[], options: FlvMuxerOptions = {}) {
    this.metadata = options.metadata ?? {};
    [this.video, this.audio] = pickTracks(tracks);
  }

  /** Whether FLV can carry this track (H.264, H.265, AV1, VP9, AAC, MP3, Opus). Others are left out by mux(). */
  carries(track: Track): boolean {
    return FlvMuxer.canCarry(track);
  }

  static canCarry(track: Track): boolean {
    return (
      track.codec === 'h264' ||
      enhancedVideoFourCc(track) !== undefined ||
      track.codec === 'aac' ||
      track.codec === 'mp3' ||
      track.codec === 'opus'
    );
  }

  header(): Buffer {
    const bodies: TagBody[] = [{ tagType: FlvTagType.script, tag: this.onMetaData() }];
    const videoSeq = this.video !== undefined ? videoSequenceHeader(this.video) : undefined;
    if (videoSeq !== undefined) bodies.push({ tagType: FlvTagType.video, tag: videoSeq });
    const audioSeq = this.audio !== undefined ? audioSequenceHeader(this.audio) : undefined;
    if (audioSeq !== undefined) bodies.push({ tagType: FlvTagType.audio, tag: audioSeq });

    let size = FLV_HEADER_BYTES + FLV_PREVIOUS_TAG_SIZE_BYTES;
    for (const body of bodies) size += tagSize(body);
    const w = new ByteWriter(size);
    writeFlvHeader(w, {
      version: 1,
      hasAudio: this.audio !== undefined,
      hasVideo: this.video !== undefined,
      dataOffset: FLV_HEADER_BYTES,
    });
    w.u32(0); // PreviousTagSize0
    for (const body of bodies) writeTag(w, body, 0);
    return w.done();
  }

  updateTracks(tracks: readonly Track[]): Buffer | undefined {
    const [video, audio] = pickTracks(tracks);
    const bodies: TagBody[] = [];
    if (video !== undefined && configChanged(this.video, video)) {
      const seq = videoSequenceHeader(video);
      if (seq !== undefined) bodies.push({ tagType: FlvTagType.video, tag: seq });
    }
    if (audio !== undefined && configChanged(this.audio, audio)) {
      const seq = audioSequenceHeader(audio);
      if (seq !== undefined) bodies.push({ tagType: FlvTagType.audio, tag: seq });
    }
    this.video = video;
    this.audio = audio;
    if (bodies.length === 0) return undefined;
    let size = 0;
    for (const body of bodies) size += tagSize(body);
    const w = new ByteWriter(size);
    for (const body of bodies) writeTag(w, body, this.lastTimestampMs);
    return w.done();
  }

  mux(frame: Frame): Buffer {
    let body: TagBody;
    const compositionTimeMs = ms90kToMs(frame.pts90k - frame.dts90k);
    if (this.video !== undefined && frame.trackId === this.video.id) {
      const frameType = frame.keyframe ? FlvFrameType.key : FlvFrameType.inter;
      const fourCc = enhancedVideoFourCc(this.video);
      const tag: FlvVideoTag =
        fourCc !== undefined
          ? {
              enhanced: true,
              frameType,
              packetType: FlvExVideoPacketType.codedFrames,
              fourCc,
              compositionTimeMs,
              data: frame.data,
            }
          : {
              enhanced: false,
              frameType,
              codecId: FlvVideoCodecId.avc,
              avcPacketType: FlvAvcPacketType.nalu,
              compositionTimeMs,
              data: frame.data,
            };
      body = { tagType: FlvTagType.video, tag };
    } else if (this.audio !== undefined && frame.trackId === this.audio.id) {
      body = { tagType: FlvTagType.audio, tag: audioTag(this.audio, FlvAacPacketType.raw, frame.data) };
    } else {
      return EMPTY;
    }
    const timestampMs = ms90kToMs(frame.dts90k);
    this.lastTimestampMs = timestampMs;
    const w = new ByteWriter(tagSize(body));
    writeTag(w, body, timestampMs);
    return w.done();
  }

  /** onMetaData (E.5), as ffmpeg writes it: an ECMA array of the stream's parameters. */
  private onMetaData(): FlvScriptTag {
    const meta: Amf0Object = amf0EcmaArray({ duration: 0 });
    const video = this.video;
    if (video !== undefined) {
      if (video.width !== undefined) meta['width'] = video.width;
      if (video.height !== undefined) meta['height'] = video.height;
      const fourCc = enhancedVideoFourCc(video);
      meta['videocodecid'] = fourCc !== undefined ? fourCcNumber(fourCc) : FlvVideoCodecId.avc;
    }
    const audio = this.audio;
    if (audio !== undefined) {
      if (audio.sampleRate !== undefined) meta['audiosamplerate'] = audio.sampleRate;
      meta['audiosamplesize'] = 16;
      meta['stereo'] = audio.channels !== 1;
      meta['audiocodecid'] =
        audio.codec === 'opus' ? fourCcNumber(OPUS_FOURCC) : audio.codec === 'aac' ? FlvSoundFormat.aac : FlvSoundFormat.mp3;
    }
    meta['encoder'] = 'Feedcast';
    for (const [key, value] of Object.entries(this.metadata)) meta[key] = value;
    return { name: 'onMetaData', args: [meta] };
  }
}

/**
 * The first carriable video and audio track. Opus only travels as Enhanced RTMP audio, which a legacy
 * FLV reader (ffmpeg before 6.1, flv.js, mpegts.js) cannot read and stalls on: beside H.264, which
 * such a reader plays, it is left out (a WebRTC publisher's H.264 + Opus is video-only FLV, as before
 * Enhanced RTMP); beside an enhanced video codec, or alone, only an E-RTMP reader plays the stream
 * anyway, and it is carried.
 */
function pickTracks(tracks: readonly Track[]): [Track | undefined, Track | undefined] {
  const carried = tracks.filter((t) => FlvMuxer.canCarry(t));
  const video = carried.find((t) => t.kind === 'video');
  const legacyVideo = video?.codec === 'h264';
  return [video, carried.find((t) => t.kind === 'audio' && !(t.codec === 'opus' && legacyVideo))];
}

function configChanged(before: Track | undefined, after: Track): boolean {
  if (before === undefined || before.codec !== after.codec) return true;
  if (before.config === undefined || after.config === undefined) return before.config !== after.config;
  return !before.config.equals(after.config);
}

function videoSequenceHeader(track: Track): FlvVideoTag | undefined {
  const fourCc = enhancedVideoFourCc(track);
  // VP9 from WebRTC has no vpcC: one is made for its size (the fMP4 muxer does the same).
  const config = track.codec === 'vp9' ? vpccOf(track) : track.config;
  if (config === undefined) return undefined;
  if (fourCc !== undefined) {
    return {
      enhanced: true,
      frameType: FlvFrameType.key,
      packetType: FlvExVideoPacketType.sequenceStart,
      fourCc,
      compositionTimeMs: 0,
      data: config,
    };
  }
  return {
    enhanced: false,
    frameType: FlvFrameType.key,
    codecId: FlvVideoCodecId.avc,
    avcPacketType: FlvAvcPacketType.sequenceHeader,
    compositionTimeMs: 0,
    data: config,
  };
}

function audioSequenceHeader(track: Track): FlvAudioTag | undefined {
  if (track.codec === 'opus') return audioTag(track, FlvExAudioPacketType.sequenceStart, opusHeadOf(track));
  if (track.codec !== 'aac' || track.config === undefined) return undefined;
  return audioTag(track, FlvAacPacketType.sequenceHeader, track.config);
}

/**
 * The track's OpusHead, or one for its channels (RFC 7845 5.1): 'OpusHead', version 1, channel
 * count, pre-skip 0, input sample rate 48000 (LE), output gain 0, mapping family 0.
 */
function opusHeadOf(track: Track): Buffer {
  if (track.config !== undefined && track.config.toString('latin1', 0, 8) === 'OpusHead') return track.config;
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'latin1');
  head[8] = 1;
  head[9] = track.channels ?? 2;
  head.writeUInt32LE(48_000, 12);
  return head;
}

/**
 * The legacy audio tag. AAC always signals 44 kHz, 16-bit, stereo (E.4.2.1: the decoder reads the
 * real values from the AudioSpecificConfig); MP3 signals the nearest FLV rate (its frame header
 * has the real one).
 */
function audioTag(track: Track, aacPacketType: number, data: Buffer): FlvAudioTag {
  // Opus: Enhanced RTMP v2 ExAudioTagHeader; its packet types use the same numbers as AAC's.
  if (track.codec === 'opus') return { enhanced: true, packetType: aacPacketType, fourCc: OPUS_FOURCC, data };
  if (track.codec === 'aac') {
    return {
      enhanced: false,
      soundFormat: FlvSoundFormat.aac,
      soundRateIndex: 3,
      soundSize16: true,
      stereo: true,
      aacPacketType,
      data,
    };
  }
  return {
    enhanced: false,
    soundFormat: FlvSoundFormat.mp3,
    soundRateIndex: flvSoundRateIndex(track.sampleRate ?? 44100),
    soundSize16: true,
    stereo: track.channels !== 1,
    aacPacketType: undefined,
    data,
  };
}

function flvSoundRateIndex(sampleRate: number): number {
  if (sampleRate >= 32000) return 3;
  if (sampleRate >= 16000) return 2;
  if (sampleRate >= 11025) return 1;
  return 0;
}

function bodySize(body: TagBody): number {
  switch (body.tagType) {
    case FlvTagType.video:
      return flvVideoTagSize(body.tag);
    case FlvTagType.audio:
      return flvAudioTagSize(body.tag);
    case FlvTagType.script:
      return flvScriptTagSize(body.tag);
  }
}

/** A whole tag: 11-byte header, body, PreviousTagSize. */
function tagSize(body: TagBody): number {
  return FLV_TAG_HEADER_BYTES + bodySize(body) + FLV_PREVIOUS_TAG_SIZE_BYTES;
}

function writeTag(w: ByteWriter, body: TagBody, timestampMs: number): void {
  const dataSize = bodySize(body);
  if (dataSize > FLV_MAX_DATA_SIZE) throw new FrameTooLargeError('flv: tag body bytes', dataSize, FLV_MAX_DATA_SIZE);
  writeFlvTagHeader(w, { tagType: body.tagType, filtered: false, dataSize, timestampMs, streamId: 0 });
  switch (body.tagType) {
    case FlvTagType.video:
      writeFlvVideoTag(w, body.tag);
      break;
    case FlvTagType.audio:
      writeFlvAudioTag(w, body.tag);
      break;
    case FlvTagType.script:
      writeFlvScriptTag(w, body.tag);
      break;
  }
  w.u32(FLV_TAG_HEADER_BYTES + dataSize);
}
