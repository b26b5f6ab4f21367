// Bounded big-endian reads over a Buffer. Every read checks the remaining length and throws
// MalformedInputError with the absolute offset, so an overrun never becomes NaN or a RangeError.

import { MalformedInputError } from '../../errors.js';

export class ByteReader {
  readonly buf: Buffer;
  readonly format: string;
  readonly end: number;
  pos: number;

  constructor(buf: Buffer, format: string, start = 0, end = buf.length) {
    if (start < 0 || end > buf.length || start > end) {
      throw new MalformedInputError(format, start, `invalid bounds ${start}..${end} of ${buf.length} bytes`);
    }
    this.buf = buf;
    this.format = format;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.end - this.pos) {
      throw new MalformedInputError(this.format, this.pos, `${what} needs ${n} bytes, ${this.end - this.pos} left`);
    }
  }

  fail(detail: string): never {
    throw new MalformedInputError(this.format, this.pos, detail);
  }

  u8(): number {
    this.need(1, 'u8');
    return this.buf[this.pos++] as number;
  }
  u16(): number {
    this.need(2, 'u16');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u16le(): number {
    this.need(2, 'u16le');
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3, 'u24');
    const v = this.buf.readUIntBE(this.pos, 3);
    this.pos += 3;
    return v;
  }
  i24(): number {
    this.need(3, 'i24');
    const v = this.buf.readIntBE(this.pos, 3);
    this.pos += 3;
    return v;
  }
  u32(): number {
    this.need(4, 'u32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u32le(): number {
    this.need(4, 'u32le');
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8, 'u64');
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return hi * 0x1_0000_0000 + lo;
  }
  f64(): number {
    this.need(8, 'f64');
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }
  /** A view (not a copy) of the next n bytes. */
  bytes(n: number): Buffer {
    this.need(n, 'bytes');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  skip(n: number): void {
    this.need(n, 'skip');
    this.pos += n;
  }
  /** A reader bounded to the next n bytes; this reader moves past them. */
  sub(n: number): ByteReader {
    this.need(n, 'sub-record');
    const r = new ByteReader(this.buf, this.format, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
  /** The bytes left, as a view. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }
}
