// The one chunk log behind every shared output ("mux once, send many"): immutable chunks with
// consecutive sequence numbers, kept from the newest join point and within ReaderMaxQueue bytes
// of the head, walked by OutputReaders with a cursor (output-reader.ts). What fills it differs:
// a feed's frames muxed once (MuxedOutput: FLV, MPEG-TS, RTMP, interleaved RTP), container bytes
// cut by a framer (RawOutput: ffmpeg's webm, mpjpeg ...), or a time-shifted reader's own frames
// from the feed file (TimeShiftOutput).

import type { Logger } from '../observability/logger.js';
import { TypedEmitter } from '../typed-emitter.js';

export interface Chunk {
  readonly seq: number;
  readonly data: Buffer;
  /** A reader may start here (the chunk begins a video keyframe, or the output has no video). */
  readonly joinable: boolean;
  /** Bytes produced before this chunk: lag in bytes is measured against it. */
  readonly startByte: number;
  readonly dts90k: number;
  /**
   * The chunk carries a video frame. Coalesced writes (OutputReader) go out at once for it and
   * take along whatever waits; other chunks wait for it up to the coalescing interval.
   */
  readonly video?: boolean;
}

/** The newest join point at or before `before90k`, else the oldest one in `chunks` (Preroll). */
export function prerollJoin(chunks: readonly Chunk[], before90k: number): number | undefined {
  let oldest: number | undefined;
  for (let i = chunks.length - 1; i >= 0; i--) {
    const c = chunks[i];
    if (c === undefined || !c.joinable) continue;
    if (c.dts90k <= before90k) return c.seq;
    oldest = c.seq;
  }
  return oldest;
}

export type ChunkLogEvents = {
  chunk: [Chunk];
  /** No more chunks will come (feed gone, publisher did not come back, source ended). */
  end: [string];
  /** The log let go of what feeds it (the last reader left, or its owner ended it). */
  dispose: [];
};

/** Settings shared by every output of a registry and read when used, so that a reload applies at once. */
export interface OutputSettings {
  /** `ReaderMaxQueue`: bytes behind the newest chunk kept for lagging readers. */
  readonly retainBytes: number;
}

export interface ChunkLogOptions {
  /** Read at every trim, so a reload of ReaderMaxQueue applies to the logs that exist. */
  settings: OutputSettings;
  /**
   * Write coalescing for readers on TCP sockets (OutputReader): gather this many ms of chunks and
   * write them in one batch; 0 = once per event-loop turn; undefined = one write per chunk.
   */
  writeCoalesceMs?: number | undefined;
}

export abstract class ChunkLog extends TypedEmitter<ChunkLogEvents> {
  readonly id: string;
  protected readonly log: Logger;
  private readonly settings: OutputSettings;
  private chunks: Chunk[] = [];
  private nextSeq = 0;
  private producedBytes = 0;
  private lastJoinSeq: number | undefined;
  private readerCount = 0;
  private ended = false;
  /** See ChunkLogOptions.writeCoalesceMs. */
  readonly writeCoalesceMs: number | undefined;
  bytesServed = 0;
  /** Chunks skipped by readers that fell behind, and how many times readers skipped. */
  chunksDropped = 0;
  readerSkips = 0;

  protected constructor(id: string, options: ChunkLogOptions, log: Logger) {
    super(log);
    this.id = id;
    this.settings = options.settings;
    this.writeCoalesceMs = options.writeCoalesceMs;
    this.log = log.child({ output: id });
  }

  /** What a new reader receives before any chunk; undefined until it is known. */
  abstract header(): Buffer | undefined;

  get isEnded(): boolean {
    return this.ended;
  }
  get readers(): number {
    return this.readerCount;
  }
  /** Sequence number the next chunk will get. */
  get headSeq(): number {
    return this.nextSeq;
  }
  get firstSeq(): number {
    return this.chunks[0]?.seq ?? this.nextSeq;
  }
  get producedByteCount(): number {
    return this.producedBytes;
  }
  /** Chunks held now (retention: from the newest join point, within ReaderMaxQueue bytes). */
  get retainedChunks(): number {
    return this.chunks.length;
  }

  /** The newest chunk a reader may start at, if any is retained. */
  joinSeq(): number | undefined {
    return this.lastJoinSeq;
  }

  at(seq: number): Chunk | undefined {
    const first = this.chunks[0];
    return first === undefined ? undefined : this.chunks[seq - first.seq];
  }

  /** The newest join point whose time is at or before `before90k`, else the oldest kept (Preroll). */
  protected joinAtOrBefore(before90k: number): number | undefined {
    return prerollJoin(this.chunks, before90k) ?? this.lastJoinSeq;
  }

  /** The newest chunk's time, if any chunk is kept. */
  protected get newestDts90k(): number | undefined {
    return this.chunks.at(-1)?.dts90k;
  }

  /** A reader handed `bytes` to its socket. */
  countServed(bytes: number): void {
    this.bytesServed += bytes;
  }

  addReader(): void {
    this.readerCount++;
  }

  removeReader(): void {
    this.readerCount = Math.max(0, this.readerCount - 1);
    if (this.readerCount === 0) this.lastReaderLeft();
  }

  /** What happens when the last reader leaves: nothing by default (the owner decides). */
  protected lastReaderLeft(): void {}

  /** Appends a chunk and announces it to the readers. */
  protected append(data: Buffer, joinable: boolean, dts90k: number, video: boolean | undefined): Chunk {
    const chunk: Chunk =
      video === undefined
        ? { seq: this.nextSeq++, data, joinable, startByte: this.producedBytes, dts90k }
        : { seq: this.nextSeq++, data, joinable, startByte: this.producedBytes, dts90k, video };
    this.producedBytes += data.length;
    this.chunks.push(chunk);
    if (joinable) this.lastJoinSeq = chunk.seq;
    this.trim();
    this.safeEmit('chunk', chunk);
    return chunk;
  }

  /** Keeps everything from the newest join point, and whatever lies within retainBytes of the head. */
  private trim(): void {
    const join = this.lastJoinSeq ?? this.nextSeq;
    let drop = 0;
    for (const c of this.chunks) {
      if (c.seq >= join || this.producedBytes - c.startByte <= this.settings.retainBytes) break;
      drop++;
    }
    // Splice in batches: shifting one element per frame is O(n) each time.
    if (drop > 64 || (drop > 0 && (drop === this.chunks.length || this.chunks.length > 4096))) this.chunks.splice(0, drop);
  }

  /** No more chunks: every reader ends (after what it has not read yet is gone). Idempotent. */
  protected finish(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.log.debug('output ended', { reason });
    this.safeEmit('end', reason);
  }

  /** Drops the chunks, ends the readers and announces 'dispose'. */
  protected release(reason: string): void {
    this.chunks = [];
    this.finish(reason);
    this.safeEmit('dispose');
  }
}
