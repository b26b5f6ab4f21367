// A shared output of container bytes that ffmpeg muxed (webm, mpjpeg, mp3 ...): the bytes are cut
// into pieces at clean boundaries by a framer and kept in a ChunkLog (chunk-log.ts), walked by
// OutputReaders like every other output (same cursor, backpressure and slow-reader rules).

import type { Logger } from '../observability/logger.js';
import type { RawFramer, RawPiece } from '../formats/raw/framers.js';
import { ChunkLog, type OutputSettings } from './chunk-log.js';

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

export class RawOutput extends ChunkLog {
  readonly contentType: string;
  private framer: RawFramer;
  private readonly wrap: ((piece: Buffer) => Buffer) | undefined;
  private readonly now: () => number;
  private readonly createdAtMs: number;
  private latest: Buffer | undefined;
  piecesIn = 0;

  constructor(id: string, contentType: string, framer: RawFramer, options: RawOutputOptions, log: Logger) {
    super(id, { settings: options.settings }, log);
    this.contentType = contentType;
    this.framer = framer;
    this.wrap = options.wrap;
    this.now = options.now ?? Date.now;
    this.createdAtMs = this.now();
  }

  /** Whether the container header has been seen (a reader can start). */
  get ready(): boolean {
    return this.framer.header() !== undefined && this.joinSeq() !== undefined;
  }

  header(): Buffer | undefined {
    return this.framer.header();
  }

  /**
   * Where a reader with `Preroll` starts (ffserver ref §3.4): the newest join point produced at
   * least `seconds` ago, else the oldest one still kept (retention is ReaderMaxQueue bytes).
   */
  prerollJoinSeq(seconds: number): number | undefined {
    if (seconds <= 0) return this.joinSeq();
    return this.joinAtOrBefore((this.now() - this.createdAtMs - seconds * 1000) * 90);
  }

  /** The newest complete joinable piece as produced (unwrapped): `Format jpeg` serves it once. */
  latestPiece(): Buffer | undefined {
    return this.latest;
  }

  /** Bytes from ffmpeg's stdout. Throws MalformedInputError when they cannot be framed. */
  write(bytes: Buffer): void {
    if (this.isEnded) return;
    for (const piece of this.framer.push(bytes)) this.appendPiece(piece);
  }

  /** A new ffmpeg child: continue with a fresh framer (only for formats without a file header). */
  restart(framer: RawFramer): void {
    this.framer = framer;
  }

  private appendPiece(piece: RawPiece): void {
    this.piecesIn++;
    if (piece.joinable) this.latest = piece.data;
    const data = this.wrap !== undefined ? this.wrap(piece.data) : piece.data;
    // Raw pieces carry no media time: dts90k is the wall time since the output started (for Preroll).
    this.append(data, piece.joinable, (this.now() - this.createdAtMs) * 90, undefined);
  }

  /** No more bytes: every reader ends. The transcoder owns the output's lifetime (idle timeout), not the last reader. Idempotent. */
  end(reason: string): void {
    if (this.isEnded) return;
    this.release(reason);
  }
}
