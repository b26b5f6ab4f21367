// The FeedFile writer: appends every frame of a feed to its disk ring, off the hot path. Frames
// are laid out into blocks synchronously (a memory copy) and written in batches by one async
// loop; the queue is bounded, and a slow or failing disk is counted and logged, never fatal.

import type { Feed } from '../feed/feed.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import { RateMeter } from '../observability/rate-meter.js';
import { FeedFileCursor, type BlockSource, type TimeRange } from './cursor.js';
import {
  BlockEncoder,
  blockOffset,
  encodeFrameRecord,
  encodeHeader,
  encodeTracksRecord,
  fileSizeOf,
  payloadCapacity,
  type FileHeader,
  type Geometry,
} from './format.js';
import { openFeedFile, readBlocks, type OpenedFeedFile, type RecoveryReport } from './recovery.js';

export interface FeedFileWriterOptions {
  path: string;
  /** FileMaxSize: the file never grows past it. */
  maxSizeBytes: number;
  blockSize?: number;
  /** Truncate: drop the recorded content at start-up and whenever a new publisher starts. */
  truncate?: boolean;
  /** ReadOnlyFile: serve the file for time-shift, never write it. */
  readOnly?: boolean;
  /** Bytes of finished blocks waiting for the disk before frames are dropped (default 16 MiB). */
  maxQueueBytes?: number;
  /** A partial block is written at least this often, so a quiet feed's tail reaches the disk (default 500 ms). */
  flushIntervalMs?: number;
  /** Blocks per write call (default 256 = 1 MiB). */
  maxBatchBlocks?: number;
  /** A write that takes longer than this is counted as slow (default 1000 ms). */
  slowWriteMs?: number;
  /**
   * FileSync: after writing, fdatasync at most this often, so a power cut loses at most about this
   * much (plus the flush interval). Undefined: never (a crashed process loses nothing either way).
   */
  syncIntervalMs?: number | undefined;
  log: Logger;
}

/** What the status page and the API show for a feed file. */
export interface FeedFileStatus {
  path: string;
  readOnly: boolean;
  /** Bytes the file takes now, and the most it will take. */
  sizeBytes: number;
  maxSizeBytes: number;
  blockSize: number;
  /** Time range held (wall-clock ms since the epoch), undefined while empty. */
  oldestWallMs: number | undefined;
  newestWallMs: number | undefined;
  /** Seconds of media held. */
  durationSeconds: number;
  /** Disk write rate over the last seconds, bits/s. */
  writeBitsPerSecond: number;
  bytesWritten: number;
  blocksWritten: number;
  framesWritten: number;
  /** Frames not recorded because the disk queue was full (the file has a gap there). */
  framesDropped: number;
  queueBytes: number;
  writeErrors: number;
  slowWrites: number;
  lastError: string | undefined;
  /** Times writing went round the ring. */
  wraps: number;
  /** fdatasync calls (FileSync) and when the last one finished (ms since the epoch). */
  syncs: number;
  lastSyncWallMs: number | undefined;
  recovery: RecoveryReport;
}

/** One frame or track change accepted but not yet on disk: what a time-shift reader takes from memory. */
export type PendingItem =
  { kind: 'frame'; frame: Frame; end: number } | { kind: 'tracks'; tracks: readonly Track[]; end: number };

/** Audio-only feeds get a join point (track record) at least this often. */
const AUDIO_JOIN_INTERVAL_MS = 1000;
/** Gap the file clock leaves between the last recorded frame and the first after a restart. */
const RESTART_GAP_90K = 90_000;
const LOG_INTERVAL_MS = 1000;

export class FeedFileWriter implements BlockSource {
  readonly path: string;
  readonly geometry: Geometry;
  readonly fileId: number;
  readonly readOnly: boolean;
  private readonly opened: OpenedFeedFile;
  private readonly options: FeedFileWriterOptions;
  private readonly log: Logger;
  private readonly capacity: number;
  private header: FileHeader;
  private encoder: BlockEncoder;
  private feed: Feed | undefined;
  private readonly unsubscribe: (() => void)[] = [];

  /** Finished blocks waiting for the disk, in sequence order. */
  private queue: Buffer[] = [];
  private queueFirstSeq: number;
  /** Everything before this stream position is on disk (seq × capacity + bytes). */
  private durablePos: number;
  /** The newest partial block as last written (served from memory: the disk copy will be rewritten). */
  private partial: { seq: number; bytes: Buffer; length: number } | undefined;
  private partialDirtySince: number | undefined;
  private pending: PendingItem[] = [];
  private oldestSeq: number;
  private readonly baseWallMs: number | undefined;

  /** file DTS = feed DTS + clockOffset90k; fixed by the first frame after opening. */
  private clockOffset90k: number | undefined;
  private readonly resumeDts90k: number | undefined;
  private lastWallMs = 0;
  private lastFileDts90k = 0;
  private lastJoinWallMs: number | undefined;
  private needJoin = true;
  private dropping = false;
  private tracksDirty = false;
  private needJoinForTracks = false;

  private loop: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private truncating = false;
  private backoffUntil = 0;
  private lastLogAt = 0;
  private suppressed = 0;
  private sizeBytes: number;
  private cachedRange: TimeRange | undefined;
  private rangeRefreshedAt = 0;
  private readonly rate = new RateMeter();
  private readonly counters = {
    bytesWritten: 0,
    blocksWritten: 0,
    framesWritten: 0,
    framesDropped: 0,
    writeErrors: 0,
    slowWrites: 0,
    wraps: 0,
    syncs: 0,
    lastError: undefined as string | undefined,
  };
  private lastSyncAt = 0;
  /** The message of the write error in force: a lasting failure is logged once, and its end once. */
  private failing: string | undefined;
  private lastSyncWallMs: number | undefined;
  /** counters.bytesWritten at the last fdatasync: nothing new, no sync. */
  private bytesAtSync = 0;

  private constructor(opened: OpenedFeedFile, options: FeedFileWriterOptions) {
    this.opened = opened;
    this.options = options;
    this.path = options.path;
    this.readOnly = options.readOnly === true;
    this.log = options.log.child({ feedFile: options.path });
    this.header = opened.header;
    this.geometry = opened.geometry;
    this.fileId = opened.header.fileId;
    this.capacity = payloadCapacity(this.geometry);
    const last =
      opened.lastDts90k !== undefined && opened.lastWallMs !== undefined
        ? { dts90k: opened.lastDts90k, wallMs: opened.lastWallMs }
        : undefined;
    this.encoder = new BlockEncoder(this.geometry, this.fileId, opened.nextSeq, last);
    this.queueFirstSeq = opened.nextSeq;
    // A partial newest block after a restart is left as it is: appending starts in the next block.
    this.durablePos = opened.nextSeq * this.capacity;
    this.oldestSeq = opened.oldestSeq;
    this.resumeDts90k = opened.lastDts90k !== undefined ? opened.lastDts90k + RESTART_GAP_90K : undefined;
    this.lastWallMs = opened.lastWallMs ?? 0;
    this.baseWallMs = opened.lastWallMs;
    this.sizeBytes = 0;
  }

  /**
   * Opens (or creates, or recovers) the file and, unless read-only, starts recording `feed`.
   * Throws a FeedcastError for a file that is not ours or of another version.
   */
  static async open(feed: Feed | undefined, options: FeedFileWriterOptions): Promise<FeedFileWriter> {
    const opened = await openFeedFile(options.path, {
      mode: options.readOnly === true ? 'read' : 'write',
      maxSizeBytes: options.maxSizeBytes,
      ...(options.blockSize !== undefined ? { blockSize: options.blockSize } : {}),
      truncate: options.truncate === true && options.readOnly !== true,
      log: options.log,
    });
    const writer = new FeedFileWriter(opened, options);
    writer.sizeBytes = (await opened.fh.stat()).size;
    await writer.refreshRange(true);
    if (feed !== undefined) writer.attach(feed);
    return writer;
  }

  private attach(feed: Feed): void {
    this.feed = feed;
    if (this.readOnly) return;
    this.unsubscribe.push(
      feed.on('tracks', (tracks) => this.onTracks(tracks)),
      feed.on('frame', (frame) => this.onFrame(frame)),
      feed.on('publisher', (info) => {
        if (info !== undefined && this.options.truncate === true) this.truncate();
      }),
    );
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.floor((this.options.flushIntervalMs ?? 500) / 2)));
    this.timer.unref();
  }

  // ---- hot path (synchronous) ----

  private onTracks(_tracks: readonly Track[]): void {
    // The next frame is preceded by a track record: a reader must see the list before frames using it.
    this.tracksDirty = true;
    this.needJoinForTracks = true;
  }

  /** Takes one frame of the feed: lays it out in blocks (a copy) and queues the finished ones. */
  private onFrame(frame: Frame): void {
    if (this.closed) return;
    const feed = this.feed;
    if (feed === undefined) return;
    // Fixed on the first frame of this run, recorded or not: time-shift readers convert with it.
    this.clockOffset90k ??= this.resumeDts90k !== undefined ? this.resumeDts90k - frame.dts90k : 0;
    if (this.truncating) return;
    const wallMs = Math.max(this.lastWallMs, feed.lastFrameAt ?? Date.now());
    const track = feed.tracks.find((t) => t.id === frame.trackId);
    if (track === undefined) return;
    const hasVideo = feed.hasVideo;
    const isJoin = hasVideo
      ? track.kind === 'video' && frame.keyframe
      : this.lastJoinWallMs === undefined || wallMs - this.lastJoinWallMs >= AUDIO_JOIN_INTERVAL_MS || this.needJoinForTracks;
    if (this.needJoin || this.dropping) {
      if (!isJoin) {
        if (this.dropping) this.counters.framesDropped++;
        return;
      }
      if (this.dropping) this.report('feed file resumes after dropping frames', { dropped: this.counters.framesDropped });
      this.dropping = false;
      this.needJoin = false;
    }
    if (this.queueBytes >= (this.options.maxQueueBytes ?? 16 * 1024 * 1024)) {
      this.dropping = true;
      this.counters.framesDropped++;
      this.report('feed file queue full: the disk is too slow, frames are dropped until it catches up', {
        queueBytes: this.queueBytes,
      });
      return;
    }
    const fileDts = frame.dts90k + this.clockOffset90k;
    this.lastWallMs = wallMs;
    this.lastFileDts90k = Math.max(this.lastFileDts90k, fileDts);
    if (isJoin || this.needJoinForTracks) {
      const join = isJoin;
      this.push(encodeTracksRecord(feed.tracks, join, fileDts, wallMs), { dts90k: fileDts, wallMs, join });
      this.pending.push({ kind: 'tracks', tracks: feed.tracks, end: this.encoderPos() });
      if (join) this.lastJoinWallMs = wallMs;
      this.needJoinForTracks = false;
    }
    this.push(encodeFrameRecord(frame, fileDts), { dts90k: fileDts, wallMs, join: false });
    this.pending.push({ kind: 'frame', frame, end: this.encoderPos() });
    this.counters.framesWritten++;
    this.partialDirtySince ??= Date.now();
    if (this.queue.length >= (this.options.maxBatchBlocks ?? 256)) this.kick();
  }

  private push(pieces: Buffer[], meta: { dts90k: number; wallMs: number; join: boolean }): void {
    for (const block of this.encoder.append(pieces, meta)) this.queue.push(block);
  }

  private encoderPos(): number {
    return this.encoder.currentSeq * this.capacity + this.encoder.currentLength;
  }

  private get queueBytes(): number {
    return this.queue.length * this.geometry.blockSize;
  }

  private tick(): void {
    const due =
      this.partialDirtySince !== undefined && Date.now() - this.partialDirtySince >= (this.options.flushIntervalMs ?? 500);
    if (this.queue.length > 0 || due || this.tracksDirty) this.kick();
  }

  /** Starts the write loop if it is not running. */
  private kick(): void {
    if (this.loop !== undefined || this.closed || Date.now() < this.backoffUntil) return;
    this.loop = this.runLoop().finally(() => {
      this.loop = undefined;
    });
  }

  // ---- write loop (asynchronous, one at a time) ----

  private async runLoop(): Promise<void> {
    for (;;) {
      if (Date.now() < this.backoffUntil) return;
      const ok =
        this.queue.length > 0
          ? await this.writeQueued()
          : this.partialDirtySince !== undefined || this.tracksDirty
            ? await this.writePartial()
            : undefined;
      if (ok === undefined) return;
      if (!ok) {
        this.backoffUntil = Date.now() + 1000;
        return;
      }
      if (this.queue.length === 0) {
        await this.writeHeader();
        await this.syncIfDue(false);
        await this.refreshRange(false);
        if (this.partialDirtySince === undefined || Date.now() - this.partialDirtySince < (this.options.flushIntervalMs ?? 500))
          return;
      }
    }
  }

  /** Writes the first run of queued blocks (up to the batch size, never across the ring's end). */
  private async writeQueued(): Promise<boolean> {
    const g = this.geometry;
    const first = this.queueFirstSeq;
    const max = Math.min(this.queue.length, this.options.maxBatchBlocks ?? 256, g.dataBlocks - (first % g.dataBlocks));
    const batch = this.queue.slice(0, max);
    const position = blockOffset(g, first);
    const ok = await this.timedWrite(batch, position);
    if (!ok) return false;
    this.queue.splice(0, max);
    this.queueFirstSeq += max;
    if ((first + max) % g.dataBlocks === 0) this.counters.wraps++;
    if (this.partial !== undefined && this.partial.seq < this.queueFirstSeq) this.partial = undefined;
    this.advanceDurable(this.queueFirstSeq * this.capacity);
    this.sizeBytes = Math.max(this.sizeBytes, position + max * g.blockSize);
    this.oldestSeq = Math.max(this.oldestSeq, this.queueFirstSeq - g.dataBlocks + 1, this.header.baseSeq);
    this.counters.blocksWritten += max;
    return true;
  }

  /** Writes the block being filled as it is now (it will be written again when full). */
  private async writePartial(): Promise<boolean> {
    const seq = this.encoder.currentSeq;
    const length = this.encoder.currentLength;
    const snapshot = this.encoder.snapshot();
    this.partialDirtySince = undefined;
    if (snapshot === undefined) return true;
    const position = blockOffset(this.geometry, seq);
    const ok = await this.timedWrite([snapshot], position);
    if (!ok) {
      this.partialDirtySince ??= Date.now();
      return false;
    }
    // The block may have filled and been queued meanwhile; the newer copy will overwrite this one.
    if (seq >= this.queueFirstSeq) {
      this.partial = { seq, bytes: snapshot, length };
      this.advanceDurable(seq * this.capacity + length);
    }
    this.sizeBytes = Math.max(this.sizeBytes, position + this.geometry.blockSize);
    return true;
  }

  private async timedWrite(buffers: Buffer[], position: number): Promise<boolean> {
    const started = Date.now();
    try {
      let bytes = 0;
      for (const b of buffers) bytes += b.length;
      let done = 0;
      while (done < bytes) {
        const { bytesWritten } = await this.opened.fh.writev(done === 0 ? buffers : sliceBuffers(buffers, done), position + done);
        if (bytesWritten <= 0) throw new Error(`feedfile: write of ${bytes - done} bytes at ${position + done} wrote nothing`);
        done += bytesWritten;
      }
      this.counters.bytesWritten += bytes;
      this.rate.add(bytes);
      if (this.failing !== undefined) {
        this.log.info('feed file writes resumed', { failedWrites: this.counters.writeErrors });
        this.failing = undefined;
      }
      const took = Date.now() - started;
      if (took > (this.options.slowWriteMs ?? 1000)) {
        this.counters.slowWrites++;
        this.report('slow disk: a feed file write took long', { ms: took, bytes });
      }
      return true;
    } catch (err) {
      this.noteFailure('write', err);
      return false;
    }
  }

  /**
   * Counts a failed write, sync or header write. A lasting failure (a disk gone read-only) is logged
   * once, when it starts, whichever operation meets it first; the next successful write logs the resume.
   */
  private noteFailure(what: string, err: unknown): void {
    this.counters.writeErrors++;
    const message = err instanceof Error ? err.message : String(err);
    if (this.failing === undefined) {
      this.log.warn(`feed file ${what} failed; retrying every second (live readers are not affected)`, { err });
    }
    this.failing = message;
    this.counters.lastError = message;
  }

  /** FileSync: the data (and the header checkpoint after it) reach the disk, off the hot path. */
  private async syncIfDue(force: boolean): Promise<void> {
    const interval = this.options.syncIntervalMs;
    if (interval === undefined || this.counters.bytesWritten === this.bytesAtSync) return;
    if (!force && Date.now() - this.lastSyncAt < interval) return;
    const written = this.counters.bytesWritten;
    try {
      await this.opened.fh.datasync();
      this.bytesAtSync = written;
      this.lastSyncAt = Date.now();
      this.lastSyncWallMs = this.lastSyncAt;
      this.counters.syncs++;
    } catch (err) {
      this.noteFailure('sync (fdatasync)', err);
    }
  }

  private advanceDurable(pos: number): void {
    if (pos <= this.durablePos) return;
    this.durablePos = pos;
    let drop = 0;
    while (drop < this.pending.length && (this.pending[drop] as PendingItem).end <= pos) drop++;
    if (drop > 0) this.pending.splice(0, drop);
  }

  /** Rewrites one header copy (alternating) with the checkpoint and the current tracks. */
  private async writeHeader(): Promise<void> {
    const next: FileHeader = {
      ...this.header,
      generation: this.header.generation + 1,
      checkpointSeq: this.queueFirstSeq,
      checkpointWallMs: this.lastWallMs,
      tracks: this.feed?.tracks ?? this.header.tracks,
      tracksOmitted: false,
    };
    const copy = next.generation % 2;
    try {
      await this.opened.fh.write(encodeHeader(next, copy), 0, this.geometry.blockSize, copy * this.geometry.blockSize);
      this.header = next;
      this.tracksDirty = false;
    } catch (err) {
      this.noteFailure('header write', err);
    }
  }

  /** Logs at most once a second, with the count of what was suppressed. */
  private report(msg: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - this.lastLogAt < LOG_INTERVAL_MS) {
      this.suppressed++;
      return;
    }
    this.log.warn(msg, { ...fields, ...(this.suppressed > 0 ? { suppressed: this.suppressed } : {}) });
    this.lastLogAt = now;
    this.suppressed = 0;
  }

  // ---- Truncate ----

  /** Drops the recorded content (a new publisher with Truncate): the sequence continues at the next lap. */
  truncate(): void {
    if (this.closed || this.readOnly || this.truncating) return;
    this.truncating = true;
    const g = this.geometry;
    const nextSeq = Math.ceil((this.encoder.currentSeq + 1) / g.dataBlocks) * g.dataBlocks;
    const task = async (): Promise<void> => {
      await this.loop;
      this.queue = [];
      this.pending = [];
      this.partial = undefined;
      this.partialDirtySince = undefined;
      this.header = { ...this.header, generation: this.header.generation + 1, checkpointSeq: nextSeq, baseSeq: nextSeq };
      try {
        await this.opened.fh.truncate(g.headerBlocks * g.blockSize);
        await this.opened.fh.write(encodeHeader(this.header, 0), 0, g.blockSize, 0);
        await this.opened.fh.write(encodeHeader(this.header, 1), 0, g.blockSize, g.blockSize);
      } catch (err) {
        this.noteFailure('truncate', err);
      }
      this.encoder = new BlockEncoder(g, this.fileId, nextSeq, { dts90k: this.lastFileDts90k, wallMs: this.lastWallMs });
      this.queueFirstSeq = nextSeq;
      this.durablePos = nextSeq * this.capacity;
      this.oldestSeq = nextSeq;
      this.sizeBytes = g.headerBlocks * g.blockSize;
      this.cachedRange = undefined;
      this.needJoin = true;
      this.truncating = false;
      this.log.info('feed file truncated (Truncate, new publisher)');
    };
    this.loop = task().finally(() => {
      this.loop = undefined;
    });
  }

  // ---- reading (BlockSource, time-shift) ----

  /** Sequence numbers readable now: everything on disk, the newest partial block from memory. */
  extent(): { oldestSeq: number; newestSeq: number } | undefined {
    const endSeq = Math.ceil(this.durablePos / this.capacity) - 1;
    // Slots of blocks up to (block being filled − ring size) may be overwritten at any moment.
    const oldest = Math.max(this.oldestSeq, this.encoder.currentSeq - this.geometry.dataBlocks + 1);
    if (endSeq < oldest || endSeq < 0) return undefined;
    return { oldestSeq: oldest, newestSeq: endSeq };
  }

  /** Stream position up to which everything is readable (cursor.position equals it when caught up). */
  get durablePosition(): number {
    return this.durablePos;
  }

  async read(seq: number, count: number): Promise<Buffer> {
    const partial = this.partial;
    if (
      partial !== undefined &&
      seq + count - 1 === partial.seq &&
      partial.seq * this.capacity + partial.length === this.durablePos
    ) {
      const head = count > 1 ? await readBlocks(this.opened.fh, this.geometry, seq, count - 1) : Buffer.alloc(0);
      const out = Buffer.allocUnsafe(count * this.geometry.blockSize);
      head.copy(out, 0);
      partial.bytes.copy(out, head.length);
      return out;
    }
    return readBlocks(this.opened.fh, this.geometry, seq, count);
  }

  /**
   * Frames (and track changes) accepted after stream position `pos` that are not on disk yet, in
   * order. Only meaningful when `pos` is the durable position (the caller checks synchronously).
   */
  pendingAfter(pos: number): PendingItem[] {
    return this.pending.filter((p) => p.end > pos);
  }

  /** feed DTS = file DTS − offset: the current run's offset (undefined before the first frame). */
  get fileClockOffset90k(): number | undefined {
    return this.clockOffset90k;
  }

  /** The time range held, as last read (refreshed by the write loop about every second); undefined: empty or not read yet. */
  get heldRange(): TimeRange | undefined {
    return this.cachedRange;
  }

  /** A cursor over this file (for time-shift readers). */
  cursor(): FeedFileCursor {
    return new FeedFileCursor(this);
  }

  get isWriting(): boolean {
    return !this.readOnly && !this.closed && this.feed !== undefined;
  }

  private async refreshRange(force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && this.cachedRange !== undefined && now - this.rangeRefreshedAt < 1000) return;
    this.rangeRefreshedAt = now;
    try {
      this.cachedRange = await new FeedFileCursor(this, { readAheadBlocks: 1 }).timeRange();
    } catch (err) {
      this.log.debug('feed file range not readable', { err });
    }
  }

  /** Size, time range and write rate, for the status page and the API. */
  get status(): FeedFileStatus {
    const range = this.cachedRange;
    const newestWall = this.isWriting && this.lastWallMs > 0 ? this.lastWallMs : range?.newestWallMs;
    const oldestWall = range?.oldestWallMs ?? this.baseWallMs;
    return {
      path: this.path,
      readOnly: this.readOnly,
      sizeBytes: this.sizeBytes,
      maxSizeBytes: fileSizeOf(this.geometry),
      blockSize: this.geometry.blockSize,
      oldestWallMs: range !== undefined ? oldestWall : undefined,
      newestWallMs: range !== undefined ? newestWall : undefined,
      durationSeconds:
        range !== undefined && newestWall !== undefined && oldestWall !== undefined
          ? Math.max(0, (newestWall - oldestWall) / 1000)
          : 0,
      writeBitsPerSecond: this.rate.bitsPerSecond(),
      bytesWritten: this.counters.bytesWritten,
      blocksWritten: this.counters.blocksWritten,
      framesWritten: this.counters.framesWritten,
      framesDropped: this.counters.framesDropped,
      queueBytes: this.queueBytes,
      writeErrors: this.counters.writeErrors,
      slowWrites: this.counters.slowWrites,
      lastError: this.counters.lastError,
      wraps: this.counters.wraps,
      syncs: this.counters.syncs,
      lastSyncWallMs: this.lastSyncWallMs,
      recovery: this.opened.report,
    };
  }

  /** Waits until everything accepted so far is on disk, or the disk fails (tests, clean shutdown); heldRange is then current. */
  async flush(): Promise<void> {
    await this.flushQueued();
    if (!this.closed) await this.refreshRange(true);
  }

  private async flushQueued(): Promise<void> {
    for (let round = 0; round < 10_000; round++) {
      await this.loop;
      if (this.queue.length === 0 && this.partialDirtySince === undefined && !this.tracksDirty) return;
      if (this.partialDirtySince !== undefined) this.partialDirtySince = 0; // due now
      const errors = this.counters.writeErrors;
      this.backoffUntil = 0;
      this.kick();
      if (this.loop === undefined) return;
      await this.loop;
      if (this.counters.writeErrors > errors) return;
    }
  }

  /** Stops recording, writes what is queued and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const off of this.unsubscribe.splice(0)) off();
    if (this.timer !== undefined) clearInterval(this.timer);
    if (!this.readOnly) await this.flushQueued();
    this.closed = true;
    await this.loop;
    if (!this.readOnly) await this.syncIfDue(true);
    await this.opened.fh.close();
  }
}

/** The buffers after skipping the first `skip` bytes (a short writev continues where it stopped). */
export function sliceBuffers(buffers: readonly Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  let left = skip;
  for (const b of buffers) {
    if (left >= b.length) {
      left -= b.length;
      continue;
    }
    out.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return out;
}
