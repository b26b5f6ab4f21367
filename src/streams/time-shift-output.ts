// A time-shifted reader's output (docs/feed-file.md, "Time-shift"): the frames of a
// ShiftSource (the feed file from a join point, then live; or recordings over a range) muxed into a ChunkLog of its own,
// which an OutputReader walks like any shared output, so a time-shifted reader gets the same
// cursor, backpressure and slow-reader policy as a live one (skip to the newest keyframe, closed
// with ClientTooSlowError when it stays behind).
//
// From the file, frames are read at the pace the reader takes them: the log runs at most
// `aheadBytes` ahead of what the reader has written, so nothing it needs is trimmed. Once the
// source has joined live, every frame is muxed as it comes, and a reader that cannot keep up
// falls behind in the log as a live reader does.

import type { ShiftSource, TimeShiftStats } from '../feedfile/time-shift.js';
import type { StreamMuxer } from '../media/demuxer.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import { detach } from '../observability/detach.js';
import { ChunkLog, type ChunkLogOptions } from './chunk-log.js';
import type { MuxerFactory } from './muxed-output.js';

/** How far a time-shifted reader's output runs ahead of it while reading the file: well within ReaderMaxQueue. */
export function timeShiftAheadBytes(maxQueueBytes: number): number {
  return Math.max(16 * 1024, Math.min(256 * 1024, Math.floor(maxQueueBytes / 4)));
}

export interface TimeShiftOutputOptions extends ChunkLogOptions {
  /** Which of the recorded tracks this output carries (NoAudio / NoVideo). */
  trackFilter: (track: Track) => boolean;
  /** While reading the file, the log runs at most this many bytes ahead of the reader. */
  aheadBytes: number;
}

export class TimeShiftOutput extends ChunkLog {
  private readonly source: ShiftSource;
  private readonly muxer: StreamMuxer;
  private readonly trackFilter: (track: Track) => boolean;
  private readonly aheadBytes: number;
  private tracks: readonly Track[];
  private headerSent = 0;
  private lastDts90k = 0;
  private wake: (() => void) | undefined;
  /** The fill loop waits until at most this many bytes are unsent. */
  private wakeAtBytes = 0;
  private filling = false;
  private joinedLive = false;
  /** Whether a chunk the reader can start at (a video keyframe) has been muxed yet. */
  private hasJoinPoint = false;
  /** Set when reading or muxing failed (not when the reader was too slow: that is the reader's). */
  failure: Error | undefined;

  /** `tracks`: the track list at the join point (the source's first item). */
  constructor(
    id: string,
    source: ShiftSource,
    tracks: readonly Track[],
    makeMuxer: MuxerFactory,
    options: TimeShiftOutputOptions,
    log: Logger,
  ) {
    super(id, options, log);
    this.source = source;
    this.trackFilter = options.trackFilter;
    this.aheadBytes = options.aheadBytes;
    this.tracks = tracks.filter(this.trackFilter);
    this.muxer = makeMuxer(this.tracks);
  }

  get contentType(): string {
    return this.muxer.contentType;
  }

  get stats(): TimeShiftStats {
    return this.source.stats;
  }

  header(): Buffer {
    const header = this.muxer.header();
    this.headerSent += header.length;
    return header;
  }

  /** Starts reading the source (after the reader started, so it sees the first chunk). */
  start(): void {
    if (this.filling) return;
    this.filling = true;
    detach(this.fill(), this.log, 'time-shift output');
  }

  /** Bytes muxed that the reader has not written yet. */
  private get unsentBytes(): number {
    return this.producedByteCount + this.headerSent - this.bytesServed;
  }

  override countServed(bytes: number): void {
    super.countServed(bytes);
    if (this.wake !== undefined && this.unsentBytes <= this.wakeAtBytes) this.wakeUp();
  }

  /** Resolves when the reader has written all but `bytes` of what was muxed (or the output closed). */
  private untilUnsent(bytes: number): Promise<void> {
    if (this.unsentBytes <= bytes || this.isEnded) return Promise.resolve();
    this.wakeAtBytes = bytes;
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async fill(): Promise<void> {
    try {
      for (;;) {
        if (this.isEnded) return;
        if (!this.source.isLive && this.unsentBytes > this.aheadBytes) {
          await this.untilUnsent(this.aheadBytes);
          continue;
        }
        const item = await this.source.next();
        if (!this.joinedLive && this.source.isLive) {
          this.joinedLive = true;
          this.log.info('time-shift play joined live', { fileFrames: this.source.stats.fileFrames });
        }
        if (this.isEnded) return;
        if (item === undefined) {
          const ended = this.source.ended;
          if (ended?.error !== undefined) this.failure = ended.error;
          // The end of a recording: the reader gets everything muxed before it ends.
          else await this.untilUnsent(0);
          this.finish(ended?.reason ?? 'the time-shift source ended');
          return;
        }
        if (item.kind === 'tracks') {
          this.tracks = item.tracks.filter(this.trackFilter);
          const inline = this.muxer.updateTracks(this.tracks);
          if (inline !== undefined && inline.length > 0) this.append(inline, false, this.lastDts90k, true);
          continue;
        }
        this.onFrame(item.frame);
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.finish('time-shift reader failed');
    }
  }

  private onFrame(frame: Frame): void {
    const track = this.tracks.find((t) => t.id === frame.trackId);
    if (track === undefined) return;
    const data = this.muxer.mux(frame);
    if (data.length === 0) return;
    const muxer = this.muxer;
    const hasVideo = this.tracks.some((t) => t.kind === 'video' && (muxer.carries?.(t) ?? true));
    const joinable = hasVideo ? track.kind === 'video' && frame.keyframe : true;
    // The reader starts at the first join point: what comes before it would never be written, and
    // counted as unsent it would hold the end of a range forever (untilUnsent(0)).
    if (!joinable && !this.hasJoinPoint) return;
    this.hasJoinPoint = true;
    this.lastDts90k = frame.dts90k;
    this.append(data, joinable, frame.dts90k, track.kind === 'video');
  }

  /** The reader left (or was closed): the source stops. */
  protected override lastReaderLeft(): void {
    this.close('the reader left');
  }

  /** Stops reading the source and ends the reader. Idempotent. */
  close(reason: string): void {
    this.source.close();
    this.release(reason);
    this.wakeUp();
  }
}
