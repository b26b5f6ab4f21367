// A shared output of container bytes that ffmpeg muxed (webm, mpjpeg, mp3 ...): the bytes are cut
// into pieces at clean boundaries by a framer, kept as a log of immutable chunks like MuxedOutput's,
// and walked by OutputReaders (same cursor, backpressure and slow-reader rules).

import type { Logger } from '../observability/logger.js';
import { TypedEmitter } from '../typed-emitter.js';
import type { RawFramer, RawPiece } from '../formats/raw/framers.js';
import { prerollJoin, type Chunk, type MuxedOutputEvents, type OutputSettings } from './muxed-output.js';

export interface RawOutputOptions {
  /** Bytes behind the newest chunk that are kept for lagging readers: read at every trim (reload). */
  settings: OutputSettings;
  /** Framing added around every piece once, for all readers (mpjpeg part headers). */
  wrap?: (piece: Buffer) => Buffer;
  /** The clock pieces are stamped with (tests). */
  now?: () => number;
}

/** multipart/x-mixed-replace part for one JPEG, with the boundary ffserver used. */
export const MPJPEG_BOUNDARY = 'ffserver';
export function mpjpegPart(jpeg: Buffer): Buffer {
  const head = Buffer.from(
    `--${MPJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`,
    'latin1',
  );
  return Buffer.concat([head, jpeg, CRLF]);
}
const CRLF = Buffer.from('\r\n', 'latin1');

export class RawOutput extends TypedEmitter<MuxedOutputEvents> {
  readonly id: string;
  readonly contentType: string;
  private framer: RawFramer;
  private readonly options: RawOutputOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly createdAtMs: number;
  private chunks: Chunk[] = [];
  private nextSeq = 0;
  private producedBytes = 0;
  private lastJoinSeq: number | undefined;
  private latest: Buffer | undefined;
  private readerCount = 0;
  private ended = false;
  bytesServed = 0;
  /** Chunks skipped by lagging readers, and how often readers skipped (as MuxedOutput counts them). */
  chunksDropped = 0;
  readerSkips = 0;
  piecesIn = 0;

  constructor(id: string, contentType: string, framer: RawFramer, options: RawOutputOptions, log: Logger) {
    super(log);
    this.id = id;
    this.contentType = contentType;
    this.framer = framer;
    this.options = options;
    this.log = log.child({ output: id });
    this.now = options.now ?? Date.now;
    this.createdAtMs = this.now();
  }

  get isEnded(): boolean {
    return this.ended;
  }
  get readers(): number {
    return this.readerCount;
  }
  get headSeq(): number {
    return this.nextSeq;
  }
  get firstSeq(): number {
    return this.chunks[0]?.seq ?? this.nextSeq;
  }
  get producedByteCount(): number {
    return this.producedBytes;
  }
  /** Whether the container header has been seen (a reader can start). */
  get ready(): boolean {
    return this.framer.header() !== undefined && this.lastJoinSeq !== undefined;
  }

  header(): Buffer | undefined {
    return this.framer.header();
  }

  joinSeq(): number | undefined {
    return this.lastJoinSeq;
  }

  /**
   * Where a reader with `Preroll` starts (ffserver ref §3.4): the newest join point produced at
   * least `seconds` ago, else the oldest one still kept (retention is ReaderMaxQueue bytes).
   */
  prerollJoinSeq(seconds: number): number | undefined {
    if (seconds <= 0) return this.lastJoinSeq;
    const before90k = (this.now() - this.createdAtMs - seconds * 1000) * 90;
    return prerollJoin(this.chunks, before90k) ?? this.lastJoinSeq;
  }

  at(seq: number): Chunk | undefined {
    const first = this.chunks[0];
    return first === undefined ? undefined : this.chunks[seq - first.seq];
  }

  /** The newest complete joinable piece as produced (unwrapped): `Format jpeg` serves it once. */
  latestPiece(): Buffer | undefined {
    return this.latest;
  }

  addReader(): void {
    this.readerCount++;
  }

  /** The transcoder owns the output's lifetime (idle timeout), so the last reader does not end it. */
  removeReader(): void {
    this.readerCount = Math.max(0, this.readerCount - 1);
  }

  /** Bytes from ffmpeg's stdout. Throws MalformedInputError when they cannot be framed. */
  write(bytes: Buffer): void {
    if (this.ended) return;
    for (const piece of this.framer.push(bytes)) this.append(piece);
  }

  /** A new ffmpeg child: continue with a fresh framer (only for formats without a file header). */
  restart(framer: RawFramer): void {
    this.framer = framer;
  }

  private append(piece: RawPiece): void {
    this.piecesIn++;
    if (piece.joinable) this.latest = piece.data;
    const data = this.options.wrap !== undefined ? this.options.wrap(piece.data) : piece.data;
    // Raw pieces carry no media time: dts90k is the wall time since the output started (for Preroll).
    const dts90k = (this.now() - this.createdAtMs) * 90;
    const chunk: Chunk = { seq: this.nextSeq++, data, joinable: piece.joinable, startByte: this.producedBytes, dts90k };
    this.producedBytes += data.length;
    this.chunks.push(chunk);
    if (piece.joinable) this.lastJoinSeq = chunk.seq;
    this.trim();
    this.safeEmit('chunk', chunk);
  }

  private trim(): void {
    const join = this.lastJoinSeq ?? this.nextSeq;
    let drop = 0;
    for (const c of this.chunks) {
      if (c.seq >= join || this.producedBytes - c.startByte <= this.options.settings.retainBytes) break;
      drop++;
    }
    if (drop > 64 || (drop > 0 && (drop === this.chunks.length || this.chunks.length > 4096))) this.chunks.splice(0, drop);
  }

  /** No more bytes: every reader ends. Idempotent. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.chunks = [];
    this.log.debug('raw output ended', { reason });
    this.safeEmit('end', reason);
    this.safeEmit('dispose');
  }
}
