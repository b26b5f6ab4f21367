// A time-shifted RTSP play (docs/feed-file.md, "RTSP"): the frames of a TimeShiftSource (the feed
// file from the join point at or before the time asked, at the pace they were recorded, then live)
// made into RTP for one session. Each track keeps the SSRC and timestamp base of the feed's shared
// RTP sender, so RTP timestamps are the feed clock's, as a live reader's are; the sequence numbers
// are the session's own, since its packets are not the live readers'.

import { randomInt } from 'node:crypto';
import type { TimeShiftSource } from '../../feedfile/time-shift.js';
import { rtpTimestampOf } from '../../formats/rtp/audio-rtp.js';
import { createPacketizer } from '../../formats/rtp/formats.js';
import { sameTrackConfig, type Track } from '../../media/track.js';
import type { Logger } from '../../observability/logger.js';
import type { ByteSink } from '../../streams/output-reader.js';
import { interleavedRtp, type RtpFeedPacketizer, type TrackSender } from './rtp-output.js';

export interface ShiftedPlaybackEnd {
  reason: string;
  error: Error | undefined;
}

/** The feed's sender of a track, as the session's SDP and SETUP announced it. */
type Announced = Pick<TrackSender, 'track' | 'format' | 'ssrc' | 'tsBase'>;

export class ShiftedRtpPlayback {
  private readonly source: TimeShiftSource;
  private readonly sink: ByteSink;
  private readonly log: Logger;
  private readonly announced = new Map<number, Announced>();
  private readonly senders = new Map<number, TrackSender>();
  /** Wall clock <-> media time of what is being sent, from the first frame sent (sender reports). */
  private anchor: { wallMs: number; pts90k: number } | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly warned = new Set<number>();
  private joinedLive = false;
  framesSent = 0;

  /**
   * `tracks` is the track list at the join point (the source's first item); `trackIds` are the
   * tracks the session set up. Throws nothing; a track the recording cannot fill is left silent.
   */
  constructor(
    source: TimeShiftSource,
    tracks: readonly Track[],
    feedPacketizer: RtpFeedPacketizer,
    trackIds: readonly number[],
    sink: ByteSink,
    log: Logger,
  ) {
    this.source = source;
    this.sink = sink;
    this.log = log;
    for (const id of trackIds) {
      const shared = feedPacketizer.sender(id);
      if (shared !== undefined)
        this.announced.set(id, { track: shared.track, format: shared.format, ssrc: shared.ssrc, tsBase: shared.tsBase });
    }
    this.useTracks(tracks);
  }

  /** How many of the set-up tracks the recording at the start can fill (0: nothing to play). */
  get playableTracks(): number {
    return this.senders.size;
  }

  get stats(): TimeShiftSource['stats'] {
    return this.source.stats;
  }

  /** Sends until the source ends or stop() is called; resolves with why it ended. */
  async run(): Promise<ShiftedPlaybackEnd> {
    try {
      for (;;) {
        if (this.stopped) return { reason: 'stopped', error: undefined };
        const item = await this.source.next();
        if (this.stopped) return { reason: 'stopped', error: undefined };
        if (!this.joinedLive && this.source.isLive) {
          this.joinedLive = true;
          this.log.info('time-shift play joined live', { fileFrames: this.source.stats.fileFrames });
        }
        if (item === undefined) {
          const ended = this.source.ended;
          return { reason: ended?.reason ?? 'the time-shift source ended', error: ended?.error };
        }
        if (item.kind === 'tracks') {
          this.useTracks(item.tracks);
          continue;
        }
        const sender = this.senders.get(item.frame.trackId);
        if (sender === undefined) continue;
        const chunk = interleavedRtp(item.frame, sender);
        if (chunk.length === 0) continue;
        this.anchor ??= { wallMs: Date.now(), pts90k: item.frame.pts90k };
        this.framesSent++;
        if (!this.sink.write(chunk)) await this.drain();
      }
    } catch (err) {
      return { reason: 'time-shift play failed', error: err instanceof Error ? err : new Error(String(err)) };
    } finally {
      this.source.close();
    }
  }

  /** SSRC and the RTP timestamp of the media being sent at `wallMs` (for sender reports). */
  clockOf(trackId: number, wallMs: number): { ssrc: number; rtpTimestamp: number } | undefined {
    const sender = this.senders.get(trackId) ?? this.announcedSender(trackId);
    if (sender === undefined || this.anchor === undefined) return undefined;
    const pts90k = this.anchor.pts90k + (wallMs - this.anchor.wallMs) * 90;
    return { ssrc: sender.ssrc, rtpTimestamp: rtpTimestampOf(pts90k, sender.format.clockRate, sender.tsBase) };
  }

  /** Stops sending and closes the source. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.source.close();
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private announcedSender(trackId: number): Announced | undefined {
    return this.announced.get(trackId);
  }

  /** A packetiser per set-up track the recording carries with the codec (and audio config) announced. */
  private useTracks(tracks: readonly Track[]): void {
    for (const [id, announced] of this.announced) {
      const track = tracks.find((t) => t.id === id);
      const fits =
        track !== undefined &&
        track.codec === announced.track.codec &&
        (track.kind === 'video' || sameTrackConfig(track, announced.track));
      if (!fits) {
        this.senders.delete(id);
        if (!this.warned.has(id)) {
          this.warned.add(id);
          this.log.warn('the recording has no track that fits this session: left silent', {
            track: id,
            announced: announced.track.codec,
            recorded: track?.codec,
          });
        }
        continue;
      }
      const existing = this.senders.get(id);
      if (existing !== undefined && sameTrackConfig(existing.track, track)) continue;
      // Video parameter sets go in-band before each keyframe (NalPacketizer), so a recorded
      // resolution change still decodes under the SDP of today's tracks.
      this.senders.set(id, {
        track,
        format: announced.format,
        packetizer: createPacketizer(track, announced.format),
        ssrc: announced.ssrc,
        seq: existing?.seq ?? randomInt(0, 0x8000),
        tsBase: announced.tsBase,
      });
    }
  }

  private drain(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.sink.removeListener('drain', done);
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
      this.sink.once('drain', done);
    });
  }
}
