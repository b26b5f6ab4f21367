// FLV tag bodies without the FLV file around them (RTMP audio, video and data messages carry
// exactly these bodies, Adobe FLV spec v10.1 E.4.2-E.4.4): each body is given a tag header and fed
// to the FlvDemuxer, so RTMP ingest and FLV ingest share one tag-body logic (tracks, Enhanced RTMP,
// composition times, 32-bit timestamp unwrapping).

import { ByteWriter } from '../bytes/byte-writer.js';
import type { DemuxerSink } from '../../media/demuxer.js';
import { FlvDemuxer, type FlvDemuxerOptions } from './flv-demuxer.js';
import {
  FLV_HEADER_BYTES,
  FLV_PREVIOUS_TAG_SIZE_BYTES,
  FLV_TAG_HEADER_BYTES,
  flvTimestamp32,
  writeFlvHeader,
  writeFlvTagHeader,
  type FlvTagType,
} from './flv-tag.js';

export class FlvTagDemuxer {
  private readonly demuxer: FlvDemuxer;
  private previousTagSize = 0;

  constructor(sink: DemuxerSink, options: FlvDemuxerOptions = {}) {
    this.demuxer = new FlvDemuxer(sink, options);
    // No track flags in the header: the demuxer learns the tracks from onMetaData or the tags.
    const w = new ByteWriter(FLV_HEADER_BYTES);
    writeFlvHeader(w, { version: 1, hasAudio: false, hasVideo: false, dataOffset: FLV_HEADER_BYTES });
    this.demuxer.push(w.done());
  }

  /**
   * One tag body (an RTMP message payload) with its 32-bit millisecond timestamp. The body is
   * pushed as its own input chunk, so frames are copied from it once, as from any FLV input.
   * Throws MalformedInputError like FlvDemuxer.push (bodies over its maxTagBytes).
   */
  pushTag(tagType: FlvTagType, timestampMs: number, body: Buffer): void {
    const w = new ByteWriter(FLV_PREVIOUS_TAG_SIZE_BYTES + FLV_TAG_HEADER_BYTES);
    w.u32(this.previousTagSize);
    writeFlvTagHeader(w, {
      tagType,
      filtered: false,
      dataSize: body.length,
      timestampMs: flvTimestamp32(timestampMs),
      streamId: 0,
    });
    this.demuxer.push(w.done());
    this.demuxer.push(body);
    this.previousTagSize = FLV_TAG_HEADER_BYTES + body.length;
  }

  /** The publisher is done: flush what the demuxer holds. */
  end(): void {
    this.demuxer.end();
  }
}
