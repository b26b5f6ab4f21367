// A time-shifted reader's source of frames: plays the feed file from the join point at or before
// a wall-clock time, at the pace the reader takes it, then joins the live feed with no gap and no
// duplicate (the hand-over is one synchronous step; docs/feed-file.md, "Time-shift").

import { ClientTooSlowError } from '../errors.js';
import type { Feed } from '../feed/feed.js';
import type { Frame } from '../media/frame.js';
import { sameTrackConfig, type Track } from '../media/track.js';
import type { FeedFileCursor, TimeRange } from './cursor.js';
import { RecordType } from './format.js';
import type { FeedFileWriter } from './writer.js';

export type ShiftItem = { kind: 'tracks'; tracks: readonly Track[] } | { kind: 'frame'; frame: Frame };

export interface TimeShiftOptions {
  /** Live frames held for this reader before it skips to the newest keyframe. */
  maxQueueBytes: number;
  /** A reader still behind after this long is ended with ClientTooSlowError. */
  maxLagMs: number;
  /** 'fast' (default): as fast as the reader takes it; 'realtime': at the pace it was recorded. */
  pace?: 'fast' | 'realtime';
  /**
   * Ends the source at this wall-clock time (ms since the epoch): a frame's time is the join
   * point's wall time plus its DTS since the join point; every track stops at its first frame at or
   * after `endWallMs`, and the source ends once all have. Undefined: the file, then live, without end.
   */
  endWallMs?: number;
}

/** Why a source with `endWallMs` ends when every track has reached it. */
export const RANGE_END_REASON = 'the end of the time range';

export type TimeShiftOpen =
  | { kind: 'ok'; source: TimeShiftSource; startWallMs: number; startDts90k: number }
  | { kind: 'out-of-range'; range: TimeRange; side: 'before' | 'after' }
  | { kind: 'empty' };

export interface TimeShiftStats {
  fileFrames: number;
  liveFrames: number;
  /** When the reader reached the live edge (ms since the epoch). */
  joinedLiveAt: number | undefined;
  /** Live frames skipped because the reader fell behind. */
  framesDropped: number;
}

/**
 * What a TimeShiftOutput reads: a track list first, then frames on the reader's clock, until
 * undefined. TimeShiftSource (this file: the ring, then live) and RecordedRangeSource
 * (record/recorded-source.ts: recordings over a time range) are the two.
 */
export interface ShiftSource {
  readonly isLive: boolean;
  readonly ended: { reason: string; error: Error | undefined } | undefined;
  readonly stats: TimeShiftStats;
  next(): Promise<ShiftItem | undefined>;
  close(): void;
}

type Phase = 'file' | 'live' | 'ended';

/**
 * Output times: the file stores DTS on its own clock (feed clock + the run's offset). A frame goes
 * out at file DTS − K: K is the current run's offset, so frames recorded in this run carry the time
 * they had on the feed clock; for a reader starting in a previous run's recording (whose times
 * would be negative on today's clock) K is moved so that its first frame is at 0.
 */
export class TimeShiftSource implements ShiftSource {
  private readonly writer: FeedFileWriter;
  private readonly feed: Feed;
  private readonly cursor: FeedFileCursor;
  private readonly options: TimeShiftOptions;
  private phase: Phase = 'file';
  private k: number | undefined;
  private tracks: readonly Track[] = [];
  private live: ShiftItem[] = [];
  private liveBytes = 0;
  private waitingKey = false;
  private behindSince: number | undefined;
  private wake: (() => void) | undefined;
  private endReason: string | undefined;
  private error: Error | undefined;
  private readonly offs: (() => void)[] = [];
  private paceStart: { wallMs: number; dts90k: number } | undefined;
  /** `endWallMs` on the file clock; tracks that have reached it. */
  private readonly endFileDts90k: number | undefined;
  private readonly pastEnd = new Set<number>();
  readonly stats: TimeShiftStats = { fileFrames: 0, liveFrames: 0, joinedLiveAt: undefined, framesDropped: 0 };

  private constructor(
    writer: FeedFileWriter,
    feed: Feed,
    cursor: FeedFileCursor,
    options: TimeShiftOptions,
    join: { wallMs: number; dts90k: number },
  ) {
    this.writer = writer;
    this.feed = feed;
    this.cursor = cursor;
    this.options = options;
    const end = options.endWallMs;
    this.endFileDts90k = end !== undefined ? join.dts90k + Math.round((end - join.wallMs) * 90) : undefined;
  }

  /** Seeks the file to the join point at or before `wallMs`. */
  static async open(writer: FeedFileWriter, feed: Feed, wallMs: number, options: TimeShiftOptions): Promise<TimeShiftOpen> {
    const cursor = writer.cursor();
    const found = await cursor.seek(wallMs);
    if (found.kind === 'empty') return { kind: 'empty' };
    if (found.kind !== 'ok') return { kind: 'out-of-range', range: found.range, side: found.kind };
    return {
      kind: 'ok',
      source: new TimeShiftSource(writer, feed, cursor, options, found),
      startWallMs: found.wallMs,
      startDts90k: found.dts90k,
    };
  }

  get isLive(): boolean {
    return this.phase === 'live';
  }

  /** Why the source ended, and the error when it was closed for a fault. */
  get ended(): { reason: string; error: Error | undefined } | undefined {
    return this.endReason !== undefined ? { reason: this.endReason, error: this.error } : undefined;
  }

  /** The next item, or undefined when the source has ended (feed gone, file finished, closed). */
  async next(): Promise<ShiftItem | undefined> {
    while (this.phase === 'file') {
      const record = await this.cursor.next();
      if (this.phase !== 'file') break;
      if (record === undefined) {
        if (!this.tryJoinLive()) {
          if (!this.writer.isWriting) {
            this.end('the end of the feed file');
            return undefined;
          }
          await new Promise((r) => setTimeout(r, 50)); // the disk tail is being written: read it next
        }
        continue;
      }
      if (record.type === RecordType.tracks) {
        if (!sameTracks(this.tracks, record.tracks)) {
          this.tracks = record.tracks;
          return { kind: 'tracks', tracks: record.tracks };
        }
        continue;
      }
      const fileDts = record.frame.dts90k;
      const past = this.pastEndOf(record.frame.trackId, fileDts);
      if (past === 'all') return undefined;
      if (past === 'track') continue;
      if (this.k === undefined) {
        const offset = this.writer.fileClockOffset90k;
        this.k = offset !== undefined && fileDts - offset >= 0 ? offset : fileDts;
      }
      this.stats.fileFrames++;
      const frame: Frame = { ...record.frame, dts90k: fileDts - this.k, pts90k: record.frame.pts90k - this.k };
      await this.pace(frame);
      return { kind: 'frame', frame };
    }
    for (;;) {
      if (this.error !== undefined) return undefined;
      const item = this.live.shift();
      if (item !== undefined) {
        if (item.kind === 'frame') this.liveBytes -= item.frame.data.length;
        if (this.live.length === 0) this.behindSince = undefined;
        const past = item.kind === 'frame' ? this.pastEndOf(item.frame.trackId, item.frame.dts90k + (this.k ?? 0)) : 'no';
        if (past === 'all') return undefined;
        if (past === 'track') continue;
        return item;
      }
      if (this.phase === 'ended') return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /**
   * Whether a frame (file-clock DTS) is at or after the end asked for ('track': it is dropped),
   * and whether every track now is ('all': the source has ended).
   */
  private pastEndOf(trackId: number, fileDts90k: number): 'no' | 'track' | 'all' {
    if (this.endFileDts90k === undefined || fileDts90k < this.endFileDts90k) return 'no';
    this.pastEnd.add(trackId);
    if (!this.tracks.every((t) => this.pastEnd.has(t.id))) return 'track';
    this.end(RANGE_END_REASON);
    return 'all';
  }

  private async pace(frame: Frame): Promise<void> {
    if (this.options.pace !== 'realtime') return;
    this.paceStart ??= { wallMs: Date.now(), dts90k: frame.dts90k };
    const dueMs = this.paceStart.wallMs + (frame.dts90k - this.paceStart.dts90k) / 90 - Date.now();
    if (dueMs > 1) await new Promise((r) => setTimeout(r, Math.min(dueMs, 10_000)));
  }

  /**
   * The hand-over, in one synchronous step: when the cursor has read everything on disk (its
   * position is the writer's durable position), the frames the writer holds in memory and every
   * frame the feed emits from now on complete the stream exactly. Returns false when the disk had
   * more (the cursor reads on).
   */
  private tryJoinLive(): boolean {
    if (!this.writer.isWriting) return false;
    const pos = this.writer.durablePosition;
    if (this.cursor.position !== pos) return false;
    const offset = this.writer.fileClockOffset90k;
    this.waitingKey = this.cursor.awaitingJoin;
    for (const p of this.writer.pendingAfter(pos)) {
      if (p.kind === 'tracks') this.pushLive({ kind: 'tracks', tracks: p.tracks });
      else this.pushLive({ kind: 'frame', frame: p.frame }, offset);
    }
    this.offs.push(
      this.feed.on('frame', (frame) => this.pushLive({ kind: 'frame', frame }, this.writer.fileClockOffset90k)),
      this.feed.on('tracks', (tracks) => this.pushLive({ kind: 'tracks', tracks })),
      this.feed.on('idle', () => this.end('the publisher left and did not come back')),
      this.feed.on('close', () => this.end('the feed was removed')),
    );
    this.phase = 'live';
    this.stats.joinedLiveAt = Date.now();
    return true;
  }

  /** Queues a live item (a feed-clock frame), converted to this reader's output clock. */
  private pushLive(item: ShiftItem, offset?: number): void {
    if (this.phase === 'ended') return;
    if (item.kind === 'tracks') {
      if (sameTracks(item.tracks, this.tracks)) return;
      this.tracks = item.tracks;
      this.live.push(item);
      this.wakeUp();
      return;
    }
    const frame = item.frame;
    const track = this.tracks.find((t) => t.id === frame.trackId);
    const joinable =
      track !== undefined && (track.kind === 'video' ? frame.keyframe : !this.tracks.some((t) => t.kind === 'video'));
    if (this.waitingKey) {
      if (!joinable) return;
      this.waitingKey = false;
    }
    const fileDts = frame.dts90k + (offset ?? 0);
    this.k ??= fileDts;
    const out: Frame = { ...frame, dts90k: fileDts - this.k, pts90k: frame.pts90k + (offset ?? 0) - this.k };
    this.live.push({ kind: 'frame', frame: out });
    this.liveBytes += frame.data.length;
    this.stats.liveFrames++;
    if (this.liveBytes > this.options.maxQueueBytes) this.fallBehind();
    this.wakeUp();
  }

  /** The reader cannot keep up with live: skip to the newest keyframe, or end it if that goes on. */
  private fallBehind(): void {
    const now = Date.now();
    this.behindSince ??= now;
    if (now - this.behindSince > this.options.maxLagMs) {
      this.error = new ClientTooSlowError(
        `time-shift reader of ${this.feed.key} stayed more than ${this.options.maxQueueBytes} bytes behind live for ${now - this.behindSince} ms`,
      );
      this.end('reader too slow');
      return;
    }
    const hasVideo = this.tracks.some((t) => t.kind === 'video');
    let join = -1;
    for (let i = this.live.length - 1; i > 0; i--) {
      const it = this.live[i];
      if (it === undefined || it.kind !== 'frame') continue;
      const track = this.tracks.find((t) => t.id === it.frame.trackId);
      if (!hasVideo || (track?.kind === 'video' && it.frame.keyframe)) {
        join = i;
        break;
      }
    }
    if (join <= 0) return;
    const kept: ShiftItem[] = [];
    for (const it of this.live.splice(0, join)) {
      if (it.kind === 'frame') {
        this.liveBytes -= it.frame.data.length;
        this.stats.framesDropped++;
      } else {
        kept.push(it); // track changes still apply
      }
    }
    this.live.unshift(...kept);
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private end(reason: string): void {
    if (this.phase === 'ended') return;
    this.phase = 'ended';
    this.endReason = reason;
    for (const off of this.offs.splice(0)) off();
    this.wakeUp();
  }

  /** Stops the source (the reader left). Idempotent. */
  close(): void {
    this.end('closed');
    this.live = [];
    this.liveBytes = 0;
  }
}

/** Same tracks, same ids, same configs, in the same order. */
export function sameTracks(a: readonly Track[], b: readonly Track[]): boolean {
  return (
    a.length === b.length &&
    a.every((t, i) => {
      const u = b[i];
      return u !== undefined && t.id === u.id && sameTrackConfig(t, u);
    })
  );
}
