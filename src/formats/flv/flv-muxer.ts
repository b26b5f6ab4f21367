// FLV muxer for HTTP-FLV and FLV files (Adobe FLV spec v10.1 Annex E): header + onMetaData +
// sequence headers, then one tag per frame. H.264/AAC/MP3 use the legacy tag headers (E.4.2,
// E.4.3), H.265 the Enhanced RTMP v1 ExVideoTagHeader ('hvc1').

import { ByteWriter } from '../bytes/byte-writer.js';
import { FrameTooLargeError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import type { StreamMuxer } from '../../media/demuxer.js';
import { ms90kToMs } from '../../media/timebase.js';
import type { Track } from '../../media/track.js';
import { amf0EcmaArray, type Amf0Object } from '../amf/amf0.js';
import {
  FLV_HEADER_BYTES,
  FLV_PREVIOUS_TAG_SIZE_BYTES,
  FLV_TAG_HEADER_BYTES,
  FlvAacPacketType,
  FlvAvcPacketType,
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
/** The onMetaData videocodecid of Enhanced RTMP HEVC: the FourCC 'hvc1' as a number. */
const HVC1_CODEC_ID = 0x68766331;

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

  /** Whether FLV can carry this track (H.264, H.265, AAC, MP3). Others are left out by mux(). */
  carries(track: Track): boolean {
    return FlvMuxer.canCarry(track);
  }

  static canCarry(track: Track): boolean {
    return track.codec === 'h264' || track.codec === 'h265' || track.codec === 'aac' || track.codec === 'mp3';
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
      const tag: FlvVideoTag =
        this.video.codec === 'h265'
          ? {
              enhanced: true,
              frameType,
              packetType: FlvExVideoPacketType.codedFrames,
              fourCc: 'hvc1',
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
      meta['videocodecid'] = video.codec === 'h265' ? HVC1_CODEC_ID : FlvVideoCodecId.avc;
    }
    const audio = this.audio;
    if (audio !== undefined) {
      if (audio.sampleRate !== undefined) meta['audiosamplerate'] = audio.sampleRate;
      meta['audiosamplesize'] = 16;
      meta['stereo'] = audio.channels !== 1;
      meta['audiocodecid'] = audio.codec === 'aac' ? FlvSoundFormat.aac : FlvSoundFormat.mp3;
    }
    meta['encoder'] = 'Feedcast';
    for (const [key, value] of Object.entries(this.metadata)) meta[key] = value;
    return { name: 'onMetaData', args: [meta] };
  }
}

/** The first carriable video and audio track. */
function pickTracks(tracks: readonly Track[]): [Track | undefined, Track | undefined] {
  const carried = tracks.filter((t) => FlvMuxer.canCarry(t));
  return [carried.find((t) => t.kind === 'video'), carried.find((t) => t.kind === 'audio')];
}

function configChanged(before: Track | undefined, after: Track): boolean {
  if (before === undefined || before.codec !== after.codec) return true;
  if (before.config === undefined || after.config === undefined) return before.config !== after.config;
  return !before.config.equals(after.config);
}

function videoSequenceHeader(track: Track): FlvVideoTag | undefined {
  if (track.config === undefined) return undefined;
  if (track.codec === 'h265') {
    return {
      enhanced: true,
      frameType: FlvFrameType.key,
      packetType: FlvExVideoPacketType.sequenceStart,
      fourCc: 'hvc1',
      compositionTimeMs: 0,
      data: track.config,
    };
  }
  return {
    enhanced: false,
    frameType: FlvFrameType.key,
    codecId: FlvVideoCodecId.avc,
    avcPacketType: FlvAvcPacketType.sequenceHeader,
    compositionTimeMs: 0,
    data: track.config,
  };
}

function audioSequenceHeader(track: Track): FlvAudioTag | undefined {
  if (track.codec !== 'aac' || track.config === undefined) return undefined;
  return audioTag(track, FlvAacPacketType.sequenceHeader, track.config);
}

/**
 * The legacy audio tag. AAC always signals 44 kHz, 16-bit, stereo (E.4.2.1: the decoder reads the
 * real values from the AudioSpecificConfig); MP3 signals the nearest FLV rate (its frame header
 * has the real one).
 */
function audioTag(track: Track, aacPacketType: number, data: Buffer): FlvAudioTag {
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
