// RTMP play output as a StreamMuxer: the FLV tag bodies the FlvMuxer makes (onMetaData, sequence
// headers, one tag per frame; Enhanced RTMP for H.265) sent as RTMP data/audio/video messages
// (Adobe RTMP specification 1.0, 7.1.2, 7.1.4-7.1.5) in chunks. Every player of one output gets
// the same bytes: one chunk size and one message stream id for all of them.

import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import type { StreamMuxer } from '../../media/demuxer.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { FlvMuxer } from '../flv/flv-muxer.js';
import {
  FLV_HEADER_BYTES,
  FLV_PREVIOUS_TAG_SIZE_BYTES,
  FLV_TAG_HEADER_BYTES,
  FlvTagType,
  parseFlvTagHeader,
} from '../flv/flv-tag.js';
import { rtmpMessageSize, writeRtmpMessage } from './chunk-writer.js';
import { RtmpCsid, RtmpType, type RtmpMessage } from './messages.js';

export interface RtmpMuxerOptions {
  /** Outgoing chunk size; players are told it (Set Chunk Size) before the first message. */
  chunkSize: number;
  /** The message stream id players get from createStream. */
  streamId: number;
  /** Extra onMetaData entries (a stream's Metadata directives). */
  metadata?: Record<string, string>;
}

const EMPTY = Buffer.alloc(0);
/** The message stream id Feedcast's createStream answers, for every player. */
export const RTMP_PLAY_STREAM_ID = 1;

export class RtmpMuxer implements StreamMuxer {
  readonly contentType = 'application/x-rtmp';
  private readonly flv: FlvMuxer;
  private readonly chunkSize: number;
  private readonly streamId: number;
  private hasVideo: boolean;
  private videoId: number | undefined;
  /** Timestamp of the newest point a reader may start at: header messages carry it. */
  private joinTimestampMs = 0;

  constructor(tracks: readonly Track[], options: RtmpMuxerOptions) {
    this.flv = new FlvMuxer(tracks, options.metadata !== undefined ? { metadata: options.metadata } : {});
    this.chunkSize = options.chunkSize;
    this.streamId = options.streamId;
    this.videoId = tracks.find((t) => t.kind === 'video' && FlvMuxer.canCarry(t))?.id;
    this.hasVideo = this.videoId !== undefined;
  }

  /**
   * onMetaData at time 0 (ffmpeg's FLV reader takes a data message at any other time for a
   * subtitle packet), then the sequence headers at the time of the newest join point.
   */
  carries(track: Track): boolean {
    return this.flv.carries(track);
  }

  header(): Buffer {
    const flv = this.flv.header();
    return this.chunked(flv, FLV_HEADER_BYTES + FLV_PREVIOUS_TAG_SIZE_BYTES, this.joinTimestampMs);
  }

  updateTracks(tracks: readonly Track[]): Buffer | undefined {
    this.videoId = tracks.find((t) => t.kind === 'video' && FlvMuxer.canCarry(t))?.id;
    this.hasVideo = this.videoId !== undefined;
    const flv = this.flv.updateTracks(tracks);
    return flv === undefined ? undefined : this.chunked(flv, 0, undefined);
  }

  mux(frame: Frame): Buffer {
    const flv = this.flv.mux(frame);
    if (flv.length === 0) return EMPTY;
    const out = this.chunked(flv, 0, undefined);
    if (!this.hasVideo || (frame.trackId === this.videoId && frame.keyframe)) {
      this.joinTimestampMs = flvTimestampOf(flv);
    }
    return out;
  }

  /** FLV tags (from `start`) -> RTMP messages in chunks; `timestampMs` overrides the tags' times. */
  private chunked(flv: Buffer, start: number, timestampMs: number | undefined): Buffer {
    const messages: RtmpMessage[] = [];
    const r = new ByteReader(flv, 'flv', start);
    while (r.remaining > 0) {
      const tag = parseFlvTagHeader(r);
      const payload = r.bytes(tag.dataSize);
      r.skip(FLV_PREVIOUS_TAG_SIZE_BYTES);
      const time = tag.tagType === FlvTagType.script ? 0 : (timestampMs ?? tag.timestampMs);
      messages.push(tagMessage(tag.tagType, time, this.streamId, payload));
    }
    let size = 0;
    for (const m of messages) size += rtmpMessageSize(m.csid, m.timestampMs, m.payload.length, this.chunkSize);
    const w = new ByteWriter(size);
    for (const m of messages) writeRtmpMessage(w, m, this.chunkSize);
    return w.done();
  }
}

function flvTimestampOf(tag: Buffer): number {
  const h = parseFlvTagHeader(new ByteReader(tag, 'flv', 0, FLV_TAG_HEADER_BYTES));
  return h.timestampMs;
}

function tagMessage(tagType: number, timestampMs: number, streamId: number, payload: Buffer): RtmpMessage {
  switch (tagType) {
    case FlvTagType.audio:
      return { csid: RtmpCsid.audio, typeId: RtmpType.audio, timestampMs, streamId, payload };
    case FlvTagType.video:
      return { csid: RtmpCsid.video, typeId: RtmpType.video, timestampMs, streamId, payload };
    default:
      return { csid: RtmpCsid.data, typeId: RtmpType.dataAmf0, timestampMs, streamId, payload };
  }
}
