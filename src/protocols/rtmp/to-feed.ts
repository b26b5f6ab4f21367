// RTMP publishing: the audio, video and data messages of a publishing NetStream are FLV tag bodies
// (Adobe RTMP specification 1.0, 7.1.2, 7.1.4-7.1.5; aggregate messages 7.1.6): they go through the
// FLV tag logic (FlvTagDemuxer) into the feed's PublisherSession.

import { MalformedInputError } from '../../errors.js';
import type { PublisherSession } from '../../feed/feed.js';
import { ByteReader } from '../../formats/bytes/byte-reader.js';
import { FlvTagDemuxer } from '../../formats/flv/flv-tag-demuxer.js';
import { FLV_PREVIOUS_TAG_SIZE_BYTES, FlvTagType, parseFlvTagHeader } from '../../formats/flv/flv-tag.js';
import { RtmpType, type RtmpMessage } from '../../formats/rtmp/messages.js';
import type { Logger } from '../../observability/logger.js';
import { throttledWarner } from '../../observability/throttled-warn.js';

export class RtmpToFeed {
  readonly session: PublisherSession;
  private readonly demuxer: FlvTagDemuxer;
  messagesIn = 0;

  constructor(session: PublisherSession, log: Logger) {
    this.session = session;
    const warn = throttledWarner(log);
    this.demuxer = new FlvTagDemuxer(
      {
        onTracks: (tracks) => session.setTracks(tracks),
        onFrame: (frame) => session.write(frame),
        onWarning: warn,
      },
      { maxTagBytes: 16 * 1024 * 1024 },
    );
  }

  /** One message on the publishing stream. Throws MalformedInputError when it cannot be followed. */
  push(message: RtmpMessage, payloadBytes: number): void {
    this.session.touch(payloadBytes);
    this.messagesIn++;
    switch (message.typeId) {
      case RtmpType.audio:
        this.demuxer.pushTag(FlvTagType.audio, message.timestampMs, message.payload);
        return;
      case RtmpType.video:
        this.demuxer.pushTag(FlvTagType.video, message.timestampMs, message.payload);
        return;
      case RtmpType.dataAmf0:
        // '@setDataFrame' 'onMetaData' {...}: the script tag parser skips '@setDataFrame'.
        this.demuxer.pushTag(FlvTagType.script, message.timestampMs, message.payload);
        return;
      case RtmpType.dataAmf3:
        this.demuxer.pushTag(FlvTagType.script, message.timestampMs, message.payload.subarray(1));
        return;
      case RtmpType.aggregate:
        this.pushAggregate(message);
        return;
      default:
        return;
    }
  }

  /**
   * 7.1.6 Aggregate message: FLV tags back to back, each { u8 type, u24 size, u24 timestamp,
   * u8 timestamp extended, u24 stream id, body, u32 back pointer }; the first tag's time is the
   * message's, the others keep their offset from it.
   */
  private pushAggregate(message: RtmpMessage): void {
    const r = new ByteReader(message.payload, 'rtmp aggregate');
    let base: number | undefined;
    while (r.remaining > 0) {
      const at = r.pos;
      const tag = parseFlvTagHeader(r);
      const body = r.bytes(tag.dataSize);
      r.skip(FLV_PREVIOUS_TAG_SIZE_BYTES);
      base ??= tag.timestampMs;
      const timestampMs = message.timestampMs + (tag.timestampMs - base);
      if (tag.tagType === FlvTagType.audio || tag.tagType === FlvTagType.video || tag.tagType === FlvTagType.script) {
        this.demuxer.pushTag(tag.tagType, timestampMs, body);
      } else {
        throw new MalformedInputError('rtmp aggregate', at, `sub-message of type ${tag.tagType}`);
      }
    }
  }

  /** The publisher stopped (deleteStream, FCUnpublish, connection closed). Idempotent. */
  end(reason: string): void {
    if (this.session.isEnded) return;
    try {
      this.demuxer.end();
    } finally {
      this.session.end(reason);
    }
  }
}
