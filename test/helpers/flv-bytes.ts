// Builds FLV streams from tag bodies for demuxer tests (the tag writers have their own byte-level
// tests), and the Enhanced RTMP tags of a real encoded stream, in the forms ffmpeg 7 and OBS send.

import { ByteWriter } from '../../src/formats/bytes/byte-writer.js';
import type { Amf0Object } from '../../src/formats/amf/amf0.js';
import { encodeFlvExAudioTracks } from '../../src/formats/flv/flv-ex-tag.js';
import {
  FlvExAudioPacketType,
  FlvExVideoPacketType,
  FlvFrameType,
  FlvTagType,
  flvAudioTagSize,
  flvScriptTagSize,
  flvVideoTagSize,
  writeFlvAudioTag,
  writeFlvHeader,
  writeFlvScriptTag,
  writeFlvTagHeader,
  writeFlvVideoTag,
  type FlvAudioTag,
  type FlvVideoTag,
} from '../../src/formats/flv/flv-tag.js';
import { ms90kToMs } from '../../src/media/timebase.js';
import type { EncodedStream } from './encoded-streams.js';

export type TagSpec =
  | { type: 'video'; ms: number; tag: FlvVideoTag }
  | { type: 'audio'; ms: number; tag: FlvAudioTag }
  | { type: 'meta'; ms: number; meta: Amf0Object }
  | { type: 'raw'; ms: number; tagType: number; body: Buffer };

export function flv(flags: { audio: boolean; video: boolean }, tags: TagSpec[]): Buffer {
  const bodySize = (t: TagSpec): number =>
    t.type === 'video'
      ? flvVideoTagSize(t.tag)
      : t.type === 'audio'
        ? flvAudioTagSize(t.tag)
        : t.type === 'meta'
          ? flvScriptTagSize({ name: 'onMetaData', args: [t.meta] })
          : t.body.length;
  let size = 13;
  for (const t of tags) size += 15 + bodySize(t);
  const w = new ByteWriter(size);
  writeFlvHeader(w, { version: 1, hasAudio: flags.audio, hasVideo: flags.video, dataOffset: 9 });
  w.u32(0);
  for (const t of tags) {
    const dataSize = bodySize(t);
    const tagType =
      t.type === 'video'
        ? FlvTagType.video
        : t.type === 'audio'
          ? FlvTagType.audio
          : t.type === 'meta'
            ? FlvTagType.script
            : t.tagType;
    writeFlvTagHeader(w, { tagType, filtered: false, dataSize, timestampMs: t.ms, streamId: 0 });
    if (t.type === 'video') writeFlvVideoTag(w, t.tag);
    else if (t.type === 'audio') writeFlvAudioTag(w, t.tag);
    else if (t.type === 'meta') writeFlvScriptTag(w, { name: 'onMetaData', args: [t.meta] });
    else w.bytes(t.body);
    w.u32(11 + dataSize);
  }
  return w.done();
}

const FOURCC = { h265: 'hvc1', av1: 'av01', vp9: 'vp09', h264: 'avc1' } as const;
/** An AV1 temporal delimiter OBU (type 2, has_size_field, size 0), which ffmpeg 7 leaves in FLV. */
const AV1_TEMPORAL_DELIMITER = Buffer.from([0x12, 0x00]);

export interface EnhancedTagOptions {
  /** Send the tags as Multitrack OneTrack packets of this track id. */
  trackId?: number;
  /** Add a ModEx TimestampOffsetNano of this many ns to every coded frame. */
  timestampOffsetNs?: number;
}

/**
 * The Enhanced RTMP video tags of a stream as ffmpeg 7 writes them: an empty SequenceStart (its
 * header), the real one with the first frame, then CodedFrames with a CompositionTimeOffset for
 * hvc1 frames whose pts != dts and CodedFramesX for the others (av01 frames keep their temporal
 * delimiter, vp09 frames are sent as they are).
 */
export function enhancedVideoTags(stream: EncodedStream, options: EnhancedTagOptions = {}): TagSpec[] {
  const codec = stream.track.codec;
  if (codec !== 'h265' && codec !== 'av1' && codec !== 'vp9' && codec !== 'h264') throw new Error(`no FourCC for ${codec}`);
  const fourCc = FOURCC[codec];
  const id = options.trackId === undefined ? {} : { trackId: options.trackId };
  const config = stream.track.config ?? Buffer.alloc(0);
  const seq = (data: Buffer): TagSpec => ({
    type: 'video',
    ms: 0,
    tag: {
      enhanced: true,
      frameType: FlvFrameType.key,
      packetType: FlvExVideoPacketType.sequenceStart,
      fourCc,
      compositionTimeMs: 0,
      ...id,
      data,
    },
  });
  const tags: TagSpec[] = [seq(Buffer.alloc(0)), seq(config)];
  for (const f of stream.frames) {
    const compositionTimeMs = ms90kToMs(f.pts90k - f.dts90k);
    const nal = codec === 'h265' || codec === 'h264';
    const packetType = nal && compositionTimeMs !== 0 ? FlvExVideoPacketType.codedFrames : FlvExVideoPacketType.codedFramesX;
    const nano = options.timestampOffsetNs === undefined ? {} : { timestampOffsetNs: options.timestampOffsetNs };
    tags.push({
      type: 'video',
      ms: ms90kToMs(f.dts90k),
      tag: {
        enhanced: true,
        frameType: f.keyframe ? FlvFrameType.key : FlvFrameType.inter,
        packetType: nal ? packetType : FlvExVideoPacketType.codedFrames,
        fourCc,
        compositionTimeMs: nal ? compositionTimeMs : 0,
        ...id,
        ...nano,
        data: codec === 'av1' ? Buffer.concat([AV1_TEMPORAL_DELIMITER, f.data]) : f.data,
      },
    });
  }
  return tags;
}

/** Audio frames (AAC or Opus) as Enhanced RTMP tags; with several track ids, each frame goes to every track in one ManyTracks tag. */
export function enhancedAudioTags(stream: EncodedStream, trackIds?: number[]): TagSpec[] {
  const codec = stream.track.codec;
  if (codec !== 'aac' && codec !== 'opus') throw new Error(`no audio FourCC for ${codec}`);
  const fourCc = codec === 'aac' ? 'mp4a' : 'Opus';
  const tags: TagSpec[] = [];
  const one = (packetType: number, ms: number, data: Buffer): void => {
    if (trackIds === undefined) {
      tags.push({ type: 'audio', ms, tag: { enhanced: true, packetType, fourCc, data } });
      return;
    }
    const body = encodeFlvExAudioTracks(trackIds.map((trackId) => ({ enhanced: true, packetType, fourCc, trackId, data })));
    tags.push({ type: 'raw', ms, tagType: FlvTagType.audio, body });
  };
  if (stream.track.config !== undefined) one(FlvExAudioPacketType.sequenceStart, 0, stream.track.config);
  for (const f of stream.frames) one(FlvExAudioPacketType.codedFrames, ms90kToMs(f.dts90k), f.data);
  return tags;
}
