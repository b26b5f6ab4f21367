// Big-endian writes into a buffer allocated once by the muxer (which computes the size first).

export class ByteWriter {
  readonly buf: Buffer;
  pos: number;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.pos = 0;
  }

  u8(v: number): this {
    this.buf[this.pos++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
    return this;
  }
  u24(v: number): this {
    this.buf.writeUIntBE(v & 0xffffff, this.pos, 3);
    this.pos += 3;
    return this;
  }
  i24(v: number): this {
    this.buf.writeIntBE(v, this.pos, 3);
    this.pos += 3;
    return this;
  }
  u32(v: number): this {
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }
  u64(v: number): this {
    this.buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000) >>> 0, this.pos);
    this.buf.writeUInt32BE(v >>> 0, this.pos + 4);
    this.pos += 8;
    return this;
  }
  f64(v: number): this {
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  fill(value: number, n: number): this {
    this.buf.fill(value, this.pos, this.pos + n);
    this.pos += n;
    return this;
  }
  /** The written buffer; throws if the size computed up front was wrong (a muxer bug). */
  done(): Buffer {
    if (this.pos !== this.buf.length) {
      throw new Error(`ByteWriter: wrote ${this.pos} bytes into a buffer sized ${this.buf.length}`);
    }
    return this.buf;
  }
}
