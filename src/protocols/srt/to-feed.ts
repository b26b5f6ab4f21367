// SRT publishing: MPEG-TS over SRT (what ffmpeg, OBS and hardware encoders send in SRT's live mode:
// 7 TS packets a message) demuxed in-process into the feed, through the same TsDemuxer and
// PublisherSession as an HTTP push of MPEG-TS (protocols/http/to-feed.ts). Packets that SRT could
// not recover in time are gaps in the TS: the demuxer counts them and resyncs at the next PES.

import { FeedcastError } from '../../errors.js';
import type { PublisherSession } from '../../feed/feed.js';
import { TsDemuxer } from '../../formats/mpegts/ts-demuxer.js';
import type { ByteBudget } from '../../media/byte-budget.js';
import type { Logger } from '../../observability/logger.js';
import { throttledWarner } from '../../observability/throttled-warn.js';

export class SrtToFeed {
  readonly feedKey: string;
  readonly session: PublisherSession;
  private readonly demuxer: TsDemuxer;

  constructor(feedKey: string, session: PublisherSession, log: Logger, pesBudget: ByteBudget | undefined) {
    this.feedKey = feedKey;
    this.session = session;
    const warn = throttledWarner(log);
    this.demuxer = new TsDemuxer(
      {
        onTracks: (tracks) => session.setTracks(tracks),
        onFrame: (frame) => session.write(frame),
        onWarning: warn,
      },
      pesBudget !== undefined ? { pesBudget } : {},
    );
  }

  /** What arrived. Throws MalformedInputError when the stream cannot be followed. */
  push(data: Buffer): void {
    if (this.session.isEnded) return;
    this.session.touch(data.length);
    this.demuxer.push(data);
  }

  /** The connection ended. Idempotent. */
  end(reason: string): void {
    if (this.session.isEnded) return;
    try {
      this.demuxer.end();
    } catch (err) {
      // An incomplete last frame: what was complete is in the feed already.
      if (!(err instanceof FeedcastError)) throw err;
    } finally {
      this.demuxer.close();
      this.session.end(reason);
    }
  }
}
