// Reading a FeedFile: a cursor that finds the join point (track list + keyframe) at or before a
// wall-clock time by binary search over block headers, then reads records block after block,
// checking every block's CRC and sequence number and skipping to the next join point past damage.

import type { FileHandle } from 'node:fs/promises';
import { FeedcastError } from '../errors.js';
import type { Track } from '../media/track.js';
import {
  BLOCK_HEADER_BYTES,
  BlockFlag,
  MAX_RECORD_BYTES,
  NO_KEY_BACK,
  payloadCapacity,
  RecordAssembler,
  RecordType,
  type BlockHeader,
  type FeedRecord,
  type Geometry,
} from './format.js';
import { checkBlockAt, readBlocks, runLength } from './recovery.js';

/** Where blocks come from: the file itself, or a writer that also knows what is not on disk yet. */
export interface BlockSource {
  readonly geometry: Geometry;
  readonly fileId: number;
  /** Sequence numbers that may be read now (inclusive); undefined while the file holds nothing. */
  extent(): { oldestSeq: number; newestSeq: number } | undefined;
  /** The raw bytes of blocks [seq, seq+count), consecutive slots (the caller never crosses the ring's end). */
  read(seq: number, count: number): Promise<Buffer>;
}

/** A closed, finished file (tools, ReadOnlyFile): its extent is fixed at open. */
export class FileBlockSource implements BlockSource {
  readonly geometry: Geometry;
  readonly fileId: number;
  private readonly fh: FileHandle;
  private readonly range: { oldestSeq: number; newestSeq: number } | undefined;

  constructor(fh: FileHandle, geometry: Geometry, fileId: number, range: { oldestSeq: number; newestSeq: number } | undefined) {
    this.fh = fh;
    this.geometry = geometry;
    this.fileId = fileId;
    this.range = range;
  }
  extent(): { oldestSeq: number; newestSeq: number } | undefined {
    return this.range;
  }
  read(seq: number, count: number): Promise<Buffer> {
    return readBlocks(this.fh, this.geometry, seq, count);
  }
}

export interface CursorStats {
  blocksRead: number;
  /** Blocks that failed their CRC, had another sequence number or file id. */
  badBlocks: number;
  /** Valid blocks passed over while looking for a join point after damage. */
  blocksSkipped: number;
  /** Records whose header made no sense in a valid block. */
  badRecords: number;
  /** Times the writer overwrote blocks before the cursor read them. */
  overtaken: number;
}

export interface TimeRange {
  /** The oldest join point a reader can start at. */
  oldestWallMs: number;
  oldestDts90k: number;
  /** The newest block's time. */
  newestWallMs: number;
  newestDts90k: number;
}

export type SeekResult =
  | { kind: 'ok'; seq: number; wallMs: number; dts90k: number }
  | { kind: 'before' | 'after'; range: TimeRange }
  | { kind: 'empty' };

export interface CursorOptions {
  readAheadBlocks?: number;
  /** How far back (in blocks) the keyframe search goes from the block found for a time. */
  maxBackScanBlocks?: number;
  maxRecordBytes?: number;
}

/** Valid blocks probed forward from a damaged one during binary search. */
const MAX_PROBES = 64;

export class FeedFileCursor {
  private readonly source: BlockSource;
  private readonly g: Geometry;
  private readonly capacity: number;
  private readonly readAhead: number;
  private readonly maxBackScan: number;
  private readonly assembler: RecordAssembler;
  /** Next block to read, and bytes of it already taken (a partial newest block is read again later). */
  private seq = 0;
  private consumed = 0;
  private needJoin = true;
  /** Offset in block `seq` where reading starts after a seek (the join point). */
  private startOffset = 0;
  private cache: { first: number; count: number; bytes: Buffer } | undefined;
  private currentTracks: readonly Track[] = [];
  private positioned = false;
  readonly stats: CursorStats = { blocksRead: 0, badBlocks: 0, blocksSkipped: 0, badRecords: 0, overtaken: 0 };

  constructor(source: BlockSource, options: CursorOptions = {}) {
    this.source = source;
    this.g = source.geometry;
    this.capacity = payloadCapacity(this.g);
    this.readAhead = options.readAheadBlocks ?? 64;
    this.maxBackScan = options.maxBackScanBlocks ?? 16_384;
    this.assembler = new RecordAssembler(options.maxRecordBytes ?? MAX_RECORD_BYTES);
  }

  /** The track list in force at the cursor (from the last track record read). */
  get tracks(): readonly Track[] {
    return this.currentTracks;
  }

  /**
   * Stream position up to which blocks have been taken (seq × payload capacity + bytes): equal to
   * the writer's durable position when the cursor has read everything on disk.
   */
  get position(): number {
    return this.seq * this.capacity + this.consumed;
  }

  /** The cursor is looking for a join point (at the start, or after damage): what follows a gap. */
  get awaitingJoin(): boolean {
    return this.needJoin;
  }

  /** Whether the bytes taken so far still hold a complete record. */
  get hasBufferedBytes(): boolean {
    return this.assembler.pendingBytes > 0;
  }

  /** Starts at the oldest join point in the file. */
  startAtOldest(): void {
    const ext = this.source.extent();
    this.jumpTo(ext?.oldestSeq ?? 0, 0);
  }

  private jumpTo(seq: number, offset: number): void {
    this.seq = seq;
    this.consumed = 0;
    this.startOffset = offset;
    this.needJoin = true;
    this.assembler.clear();
    this.positioned = true;
  }

  // ---- block access ----

  /** Reads blocks [first, first+count) into the cache (the newest block is never kept: it may grow). */
  private async load(first: number, count: number, newest: number): Promise<{ first: number; count: number; bytes: Buffer }> {
    const n = runLength(this.g, first, Math.max(1, Math.min(count, newest - first + 1)));
    const bytes = await this.source.read(first, n);
    const c = { first, count: n, bytes };
    const keep = first + n - 1 >= newest ? n - 1 : n;
    this.cache = keep > 0 ? { first, count: keep, bytes } : undefined;
    return c;
  }

  /** Block `seq` checked (CRC, sequence number, file id), or undefined when damaged or not ours. */
  private async block(
    seq: number,
    newest: number,
    ahead = this.readAhead,
  ): Promise<{ header: BlockHeader; bytes: Buffer } | undefined> {
    let c = this.cache;
    if (c === undefined || seq < c.first || seq >= c.first + c.count) c = await this.load(seq, ahead, newest);
    const at = (seq - c.first) * this.g.blockSize;
    this.stats.blocksRead++;
    const header = checkBlockAt(c.bytes, at, this.g, this.source.fileId, seq);
    if (header === undefined) {
      this.cache = undefined;
      return undefined;
    }
    return { header, bytes: c.bytes.subarray(at, at + this.g.blockSize) };
  }

  /** The header of the block `seq` (read alone unless cached), or undefined when damaged or not ours. */
  private async headerAt(seq: number, newest: number): Promise<BlockHeader | undefined> {
    return (await this.block(seq, newest, 1))?.header;
  }

  /** Like headerAt, reading backwards in chunks (the keyframe search walks down). */
  private async headerBackward(seq: number, stop: number, newest: number): Promise<BlockHeader | undefined> {
    const c = this.cache;
    if (c === undefined || seq < c.first || seq >= c.first + c.count) {
      const slotStart = seq - (seq % this.g.dataBlocks);
      const first = Math.max(stop, seq - this.readAhead + 1, slotStart);
      await this.load(first, seq - first + 1, newest);
    }
    return this.headerAt(seq, newest);
  }

  private async validAtOrAfter(seq: number, limit: number, newest: number): Promise<BlockHeader | undefined> {
    for (let s = seq, probes = 0; s <= limit && probes < MAX_PROBES; s++, probes++) {
      const h = await this.headerAt(s, newest);
      if (h !== undefined) return h;
    }
    return undefined;
  }

  // ---- time ----

  /** What the file holds: the oldest join point and the newest block. Undefined when empty. */
  async timeRange(): Promise<TimeRange | undefined> {
    const ext = this.source.extent();
    if (ext === undefined) return undefined;
    const oldestKey = await this.firstKeyFrom(ext.oldestSeq, ext.newestSeq);
    if (oldestKey === undefined) return undefined;
    let newest: BlockHeader | undefined;
    for (let s = ext.newestSeq; s >= oldestKey.seq && newest === undefined && ext.newestSeq - s < MAX_PROBES; s--) {
      newest = await this.headerAt(s, ext.newestSeq);
    }
    newest ??= oldestKey;
    return {
      oldestWallMs: oldestKey.keyWallMs,
      oldestDts90k: oldestKey.keyDts90k,
      newestWallMs: Math.max(newest.wallMs, newest.keyWallMs),
      newestDts90k: Math.max(newest.dts90k, newest.keyDts90k),
    };
  }

  /** The first block with a join point at or after `seq` (bounded by the newest block). */
  private async firstKeyFrom(seq: number, newest: number): Promise<BlockHeader | undefined> {
    for (let s = seq; s <= newest; s++) {
      const h = (await this.block(s, newest))?.header;
      if (h !== undefined && (h.flags & BlockFlag.key) !== 0) return h;
    }
    return undefined;
  }

  /**
   * Positions the cursor at the join point at or before `wallMs`: a binary search over block
   * headers (wall time never decreases with the sequence number), then a backward scan of at most
   * maxBackScanBlocks for the keyframe.
   */
  async seek(wallMs: number): Promise<SeekResult> {
    const ext = this.source.extent();
    if (ext === undefined) return { kind: 'empty' };
    const newest = ext.newestSeq;
    // Largest valid block whose wall time is <= wallMs.
    const first = await this.validAtOrAfter(ext.oldestSeq, newest, newest);
    if (first === undefined) return { kind: 'empty' };
    let lo = first.seq;
    let hi = newest;
    while (lo < hi) {
      const mid = lo + Math.ceil((hi - lo) / 2);
      const h = await this.validAtOrAfter(mid, hi, newest);
      if (h === undefined || h.wallMs > wallMs) hi = mid - 1;
      else lo = h.seq;
    }
    // The join point at or before wallMs: in block lo (if its key is not later), else follow the
    // blocks' back pointers to earlier join points; a damaged pointer falls back to a bounded scan.
    const stop = Math.max(ext.oldestSeq, lo - this.maxBackScan);
    let s = lo;
    for (let hops = 0; s >= stop && hops < 64; hops++) {
      const h = await this.headerAt(s, newest);
      if (h === undefined) break;
      if ((h.flags & BlockFlag.key) !== 0 && h.keyWallMs <= wallMs && h.wallMs <= wallMs) return this.positionAt(h);
      if (h.keyBack === NO_KEY_BACK) {
        s = stop - 1;
        break;
      }
      s -= h.keyBack;
    }
    for (s = Math.min(s, lo); s >= stop; s--) {
      const h = await this.headerBackward(s, stop, newest);
      if (h !== undefined && (h.flags & BlockFlag.key) !== 0 && h.keyWallMs <= wallMs) return this.positionAt(h);
    }
    const range = await this.timeRange();
    if (range === undefined) return { kind: 'empty' };
    if (wallMs < range.oldestWallMs) return { kind: 'before', range };
    // No keyframe within reach before it: the first one after.
    const next = await this.firstKeyFrom(lo, newest);
    if (next === undefined) return { kind: 'after', range };
    return this.positionAt(next);
  }

  private positionAt(h: BlockHeader): SeekResult {
    this.jumpTo(h.seq, h.keyOffset);
    return { kind: 'ok', seq: h.seq, wallMs: h.keyWallMs, dts90k: h.keyDts90k };
  }

  // ---- records ----

  /**
   * The next record, or undefined when everything readable now has been read (a live file may
   * have more later). Damaged blocks are skipped up to the next join point and counted; nothing
   * here throws for bad file content.
   */
  async next(): Promise<FeedRecord | undefined> {
    if (!this.positioned) this.startAtOldest();
    for (;;) {
      let record: FeedRecord | undefined;
      try {
        record = this.assembler.next(this.seq * this.g.blockSize);
      } catch (err) {
        if (!(err instanceof FeedcastError)) throw err;
        this.stats.badRecords++;
        this.needJoin = true;
        this.startOffset = 0;
        if (this.consumed > 0) {
          this.seq++;
          this.consumed = 0;
        }
        continue;
      }
      if (record !== undefined) {
        if (record.type === RecordType.tracks) this.currentTracks = record.tracks;
        return record;
      }
      const ext = this.source.extent();
      if (ext === undefined) return undefined;
      if (this.seq < ext.oldestSeq) {
        // The writer wrapped over what this cursor had not read yet.
        this.stats.overtaken++;
        this.jumpTo(ext.oldestSeq, 0);
      }
      if (this.seq > ext.newestSeq) return undefined;
      const got = await this.block(this.seq, ext.newestSeq);
      if (got === undefined) {
        const now = this.source.extent();
        if (now !== undefined && this.seq < now.oldestSeq) continue; // overtaken while reading
        this.stats.badBlocks++;
        this.needJoin = true;
        this.startOffset = 0;
        this.assembler.clear();
        this.seq++;
        this.consumed = 0;
        continue;
      }
      const { header, bytes } = got;
      const end = BLOCK_HEADER_BYTES + header.payloadLength;
      const isNewestPartial = this.seq === ext.newestSeq && header.payloadLength < this.capacity;
      if (this.needJoin) {
        const at = this.startOffset !== 0 ? this.startOffset : header.keyOffset;
        if (at === 0 || at >= end) {
          if (isNewestPartial) return undefined; // the next join point is not written yet
          this.stats.blocksSkipped++;
          this.seq++;
          this.consumed = 0;
          continue;
        }
        this.assembler.start(bytes.subarray(at, end));
        this.needJoin = false;
        this.startOffset = 0;
      } else if (this.consumed === 0 && (header.flags & BlockFlag.discontinuity) !== 0) {
        // A new byte stream starts here (after a restart): nothing continues across.
        this.assembler.clear();
        this.needJoin = true;
        continue;
      } else {
        const from = BLOCK_HEADER_BYTES + this.consumed;
        if (from >= end && isNewestPartial) return undefined; // nothing new in the partial block
        this.assembler.append(bytes.subarray(from, end));
      }
      if (isNewestPartial) {
        this.consumed = header.payloadLength;
      } else {
        this.seq++;
        this.consumed = 0;
      }
    }
  }
}
