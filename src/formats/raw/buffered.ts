// The raw-output framer interface and the input buffer every framer cuts its pieces from.

import { MalformedInputError } from '../../errors.js';

export interface RawPiece {
  readonly data: Buffer;
  /** A new reader may start with this piece (after the header). */
  readonly joinable: boolean;
}

/** Cuts a container byte stream into pieces. */
export interface RawFramer {
  /** Feeds bytes; returns the pieces completed by them. Throws MalformedInputError on bad input. */
  push(chunk: Buffer): RawPiece[];
  /** What a new reader must receive first (file header), undefined until it has been seen. */
  header(): Buffer | undefined;
}

/** Largest piece a framer holds before giving up on the stream. */
export const MAX_PIECE_BYTES = 16 * 1024 * 1024;

/** Accumulates input; pieces are cut from `buf` by the framers. */
export class Buffered {
  protected buf: Buffer = Buffer.alloc(0);
  /** Absolute offset of buf[0] in the stream, for error messages. */
  protected base = 0;
  protected readonly format: string;

  constructor(format: string) {
    this.format = format;
  }

  protected append(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  protected take(n: number): Buffer {
    const out = Buffer.from(this.buf.subarray(0, n));
    this.buf = this.buf.subarray(n);
    this.base += n;
    return out;
  }

  protected checkSize(n: number, what: string): void {
    if (n > MAX_PIECE_BYTES) {
      throw new MalformedInputError(this.format, this.base, `${what} of ${n} bytes exceeds the limit of ${MAX_PIECE_BYTES}`);
    }
  }
}
