// Records one feed to a series of files (RecordPath, one every RecordSegment, each starting on a
// video keyframe): fragmented MP4 with one fragment per GOP, or MPEG-TS. On the hot path it only
// keeps references to frames; layout and writes happen in the file's async loop. A file that
// cannot be written stops the recording (a log line, a counter) and it is retried later; the feed
// and its live readers never wait for it.

import type { RecordConfig } from '../config/config.js';
import type { Feed } from '../feed/feed.js';
import { encodeInitSegment, fmp4TrackOf, type Fmp4Track } from '../formats/fmp4/init-segment.js';
import { TsMuxer } from '../formats/mpegts/ts-muxer.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import { encodeRecordedFragment, Fragmenter } from './fragmenter.js';
import { expandRecordPath } from './record-path.js';
import { SegmentFile } from './segment-file.js';

/** Bytes waiting for the disk before fragments are dropped (the disk is too slow). */
const MAX_PENDING_BYTES = 64 * 1024 * 1024;
/** After a write error, recording is tried again (a new file) this long after. */
const RETRY_AFTER_MS = 10_000;
/** Audio-only feeds: a fragment about every second. */
const AUDIO_FRAGMENT_90K = 90_000;
/**
 * After a new file starts at a keyframe, the old one takes the frames that still belong to it
 * (audio interleaved late, with a DTS before the keyframe) for this much more feed time.
 */
const DRAIN_90K = 90_000;
/** The feed's clock and the wall clock may drift this far apart before a new file re-anchors. */
const REANCHOR_MS = 5000;
/** A TS packet's worth of overhead per frame, for the queue bound. */
const TS_OVERHEAD_BYTES = 376;

export type RecorderState = 'waiting' | 'recording' | 'failed' | 'closed';

export interface RecorderStatus {
  state: RecorderState;
  format: 'fmp4' | 'ts';
  /** The file being written. */
  currentPath: string | undefined;
  bytesWritten: number;
  filesStarted: number;
  framesDropped: number;
  writeErrors: number;
  lastError: string | undefined;
}

/** A file the recorder finished or is writing (the index takes it). */
export interface RecorderFile {
  file: SegmentFile;
  format: 'fmp4' | 'ts';
}

export interface RecorderEvents {
  /** A new file was started (it is written from now on). */
  onFileStarted(f: RecorderFile): void;
  /** A file was finished (closed, everything written that could be). */
  onFileFinished(f: RecorderFile): void;
}

interface Segment {
  file: SegmentFile;
  format: 'fmp4' | 'ts';
  baseDts90k: number;
  tracks: readonly Track[];
  fragmenter: Fragmenter | undefined;
  muxer: TsMuxer | undefined;
  fragmentStartDts90k: number;
}

export class Recorder {
  readonly feed: Feed;
  /** Read at every decision, so a reload reaches a running recorder. */
  settings: RecordConfig;
  private readonly log: Logger;
  private readonly events: RecorderEvents;
  private segment: Segment | undefined;
  /** The fMP4 file just ended: frames older than `untilDts90k` still go into it. */
  private draining: { seg: Segment; untilDts90k: number; next: Frame } | undefined;
  private tracksChanged = false;
  private state: RecorderState = 'waiting';
  private retryAt = 0;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly counters = { bytesWritten: 0, filesStarted: 0, framesDropped: 0, writeErrors: 0 };
  private lastError: string | undefined;
  /**
   * Wall-clock time of a feed DTS: frames are timed by the feed's clock (continuous, real gaps
   * included), not by when they happen to arrive, so a busy moment does not open a gap in the
   * listing. Set at the first file and again when the two clocks drift apart by REANCHOR_MS.
   */
  private anchor: { wallMs: number; dts90k: number } | undefined;
  /** The failure in force: a lasting one is logged once, and its end once. */
  private failing: string | undefined;
  private readonly finishing = new Set<Promise<void>>();

  constructor(feed: Feed, settings: RecordConfig, log: Logger, events: RecorderEvents) {
    this.feed = feed;
    this.settings = settings;
    this.log = log.child({ feed: feed.key, record: true });
    this.events = events;
    this.unsubscribe.push(
      feed.on('frame', (frame) => this.onFrame(frame)),
      feed.on('tracks', () => {
        this.tracksChanged = true;
      }),
      feed.on('publisher', (info) => {
        // A publisher that leaves ends the file: the next one may send other tracks and starts its own.
        if (info === undefined) this.endSegment(undefined);
      }),
    );
  }

  get status(): RecorderStatus {
    return {
      state: this.state,
      format: this.settings.format,
      currentPath: this.segment?.file.path,
      bytesWritten: this.counters.bytesWritten,
      filesStarted: this.counters.filesStarted,
      framesDropped: this.counters.framesDropped,
      writeErrors: this.counters.writeErrors,
      lastError: this.lastError,
    };
  }

  private wallOf(dts90k: number): number {
    const a = this.anchor;
    return a === undefined ? Date.now() : a.wallMs + (dts90k - a.dts90k) / 90;
  }

  // ---- hot path (synchronous, no copies) ----

  private onFrame(frame: Frame): void {
    if (this.state === 'closed') return;
    const feed = this.feed;
    const track = feed.tracks.find((t) => t.id === frame.trackId);
    if (track === undefined) return;
    const join = feed.hasVideo ? track.kind === 'video' && frame.keyframe : true;
    const draining = this.draining;
    if (draining !== undefined) {
      const old = draining.seg.fragmenter;
      if (frame.dts90k < draining.untilDts90k && old?.carries(frame.trackId) === true) {
        old.add(frame, this.wallOf(frame.dts90k));
        return;
      }
      if (frame.dts90k >= draining.untilDts90k + DRAIN_90K) this.finishDraining();
    }
    let seg = this.segment;
    if (seg !== undefined && seg.file.isFailed) seg = this.segment = undefined;
    if (seg === undefined) {
      if (!join || Date.now() < this.retryAt) {
        if (this.state === 'failed') this.counters.framesDropped++;
        return;
      }
      seg = this.startSegment(frame);
      if (seg === undefined) return;
    } else if (
      join &&
      (this.tracksChanged ||
        frame.dts90k - seg.baseDts90k >= this.settings.segmentSeconds * 90_000 ||
        this.settings.format !== seg.format)
    ) {
      this.endSegment(frame);
      seg = this.startSegment(frame);
      if (seg === undefined) return;
    }
    const wallMs = this.wallOf(frame.dts90k);
    if (seg.fragmenter !== undefined) {
      const fragmenter = seg.fragmenter;
      if (!fragmenter.carries(frame.trackId)) return;
      fragmenter.add(frame, wallMs);
      const cut = feed.hasVideo ? join : frame.dts90k - seg.fragmentStartDts90k >= AUDIO_FRAGMENT_90K;
      if (cut) {
        seg.fragmentStartDts90k = frame.dts90k;
        this.queueFragment(seg, fragmenter.cut());
      }
    } else if (seg.muxer !== undefined) {
      const muxer = seg.muxer;
      if (!muxer.carries(track)) return;
      if (this.tooMuchPending(seg, frame.data.length)) return;
      seg.file.append({ bytes: frame.data.length + TS_OVERHEAD_BYTES, endWallMs: wallMs, encode: () => [muxer.mux(frame)] });
    }
  }

  private tooMuchPending(seg: Segment, bytes: number): boolean {
    if (seg.file.pendingBytes + bytes <= MAX_PENDING_BYTES) return false;
    this.counters.framesDropped++;
    return true;
  }

  private queueFragment(seg: Segment, fragment: ReturnType<Fragmenter['cut']>): void {
    if (fragment === undefined) return;
    if (this.tooMuchPending(seg, fragment.bytes)) return;
    seg.file.append({
      bytes: fragment.bytes + 512,
      endWallMs: fragment.prft.wallMs + fragment.duration90k / 90,
      encode: () => encodeRecordedFragment(fragment),
    });
  }

  private startSegment(first: Frame): Segment | undefined {
    const tracks = this.feed.tracks;
    const format = this.settings.format;
    this.tracksChanged = false;
    let fragmenter: Fragmenter | undefined;
    let muxer: TsMuxer | undefined;
    let init: Buffer | undefined;
    if (format === 'fmp4') {
      const fmp4 = tracks.map(fmp4TrackOf).filter((t): t is Fmp4Track => t !== undefined);
      if (fmp4.length === 0) {
        this.fail(
          new Error(
            `record: fmp4 cannot carry the tracks of ${this.feed.key} (${tracks.map((t) => t.codec).join(', ')}); use RecordFormat ts`,
          ),
        );
        return undefined;
      }
      fragmenter = new Fragmenter(fmp4, first.dts90k);
      init = encodeInitSegment(fmp4);
    } else {
      muxer = new TsMuxer(tracks);
    }
    const now = Date.now();
    if (this.anchor === undefined || Math.abs(now - this.wallOf(first.dts90k)) > REANCHOR_MS) {
      this.anchor = { wallMs: now, dts90k: first.dts90k };
    }
    const wallMs = this.wallOf(first.dts90k);
    const path = expandRecordPath(this.settings.pathPattern, this.feed.key, wallMs);
    const seg: Segment = {
      format,
      baseDts90k: first.dts90k,
      tracks,
      fragmenter,
      muxer,
      fragmentStartDts90k: first.dts90k,
      file: new SegmentFile(path, wallMs, {
        onError: (err) => this.onWriteError(err),
        onWritten: (bytes) => {
          this.counters.bytesWritten += bytes;
          if (this.failing !== undefined) {
            this.log.info('recording resumed', { path: seg.file.path });
            this.failing = undefined;
          }
        },
      }),
    };
    if (init !== undefined) {
      const bytes = init;
      seg.file.append({ bytes: bytes.length, endWallMs: wallMs, encode: () => [bytes] });
    } else if (muxer !== undefined) {
      seg.file.append({ bytes: 376, endWallMs: wallMs, encode: () => [muxer.header()] });
    }
    this.segment = seg;
    this.state = 'recording';
    this.counters.filesStarted++;
    this.events.onFileStarted({ file: seg.file, format });
    return seg;
  }

  /**
   * Ends the current file. An fMP4 file followed by another (`next`, the first frame of the next
   * one) takes late frames a while longer (DRAIN_90K) before its last fragment is written.
   */
  private endSegment(next: Frame | undefined): void {
    this.finishDraining();
    const seg = this.segment;
    if (seg === undefined) return;
    this.segment = undefined;
    if (this.state === 'recording') this.state = 'waiting';
    if (seg.fragmenter !== undefined && next !== undefined) {
      this.draining = { seg, untilDts90k: next.dts90k, next };
      return;
    }
    this.closeSegment(seg, undefined);
  }

  private finishDraining(): void {
    const d = this.draining;
    if (d === undefined) return;
    this.draining = undefined;
    this.closeSegment(d.seg, d.next);
  }

  private closeSegment(seg: Segment, next: Frame | undefined): void {
    if (seg.fragmenter !== undefined) this.queueFragment(seg, seg.fragmenter.finish(next));
    const done = seg.file.close().then(() => this.events.onFileFinished({ file: seg.file, format: seg.format }));
    this.finishing.add(done);
    done.then(
      () => this.finishing.delete(done),
      () => this.finishing.delete(done),
    );
  }

  private onWriteError(err: Error): void {
    this.counters.writeErrors++;
    this.fail(err);
  }

  private fail(err: Error): void {
    const message = err.message;
    if (message !== this.failing) {
      this.log.error('recording stopped: the file cannot be written (the feed goes on live; retried every 10 s)', {
        reason: message,
        code: (err as NodeJS.ErrnoException).code,
      });
    }
    this.lastError = message;
    this.failing = message;
    this.state = 'failed';
    this.retryAt = Date.now() + RETRY_AFTER_MS;
    const seg = this.segment;
    if (seg !== undefined && seg.file.isFailed) {
      this.segment = undefined;
      this.events.onFileFinished({ file: seg.file, format: seg.format });
    }
  }

  /** Ends the current file and stops recording. Idempotent. */
  async close(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    this.endSegment(undefined);
    this.state = 'closed';
    await Promise.all([...this.finishing]);
  }
}
