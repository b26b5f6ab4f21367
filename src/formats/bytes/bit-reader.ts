// MSB-first bit reads (SPS, ADTS, sequence headers), with Exp-Golomb. At most 32 bits a call;
// throws MalformedInputError on exhaustion.

import { MalformedInputError } from '../../errors.js';

export class BitReader {
  private readonly buf: Uint8Array;
  private readonly format: string;
  private bitPos = 0;
  private readonly bitEnd: number;

  constructor(buf: Uint8Array, format: string) {
    this.buf = buf;
    this.format = format;
    this.bitEnd = buf.length * 8;
  }

  get bitsLeft(): number {
    return this.bitEnd - this.bitPos;
  }

  bits(n: number): number {
    if (n < 0 || n > 32) throw new RangeError(`BitReader.bits: ${n} is not in 0..32`);
    if (n > this.bitEnd - this.bitPos) {
      throw new MalformedInputError(this.format, this.bitPos >> 3, `read of ${n} bits with ${this.bitEnd - this.bitPos} left`);
    }
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.buf[this.bitPos >> 3] as number;
      const bit = (byte >> (7 - (this.bitPos & 7))) & 1;
      v = v * 2 + bit; // arithmetic, not <<, so 32-bit values stay positive
      this.bitPos++;
    }
    return v;
  }
  flag(): boolean {
    return this.bits(1) === 1;
  }
  skip(n: number): void {
    if (n > this.bitEnd - this.bitPos) {
      throw new MalformedInputError(this.format, this.bitPos >> 3, `skip of ${n} bits with ${this.bitEnd - this.bitPos} left`);
    }
    this.bitPos += n;
  }
  /** Unsigned Exp-Golomb (H.264 7.2 ue(v)). */
  ue(): number {
    let zeros = 0;
    while (this.bits(1) === 0) {
      zeros++;
      if (zeros > 31) throw new MalformedInputError(this.format, this.bitPos >> 3, 'Exp-Golomb code longer than 32 bits');
    }
    return zeros === 0 ? 0 : 2 ** zeros - 1 + this.bits(zeros);
  }
  /** Signed Exp-Golomb (se(v)). */
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }
}
