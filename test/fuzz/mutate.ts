// A small mutation engine for the fuzzer (test/fuzz/fuzz.test.ts): a seeded PRNG and byte-level
// mutations of real captures (bit flips, boundary values, inserts, deletes, duplicated and spliced
// ranges, truncation), as AFL-style "havoc" stacks. Deterministic for a given seed.

/** xorshift32: fast, seedable, reproducible. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  /** 0 <= n < max */
  below(max: number): number {
    return max <= 1 ? 0 : this.next() % max;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)] as T;
  }
}

const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x47, 0x10, 0x40, 0x20];
const INTERESTING_16 = [0x0000, 0x0001, 0x7fff, 0x8000, 0xffff, 0x00ff, 0x0100, 0x1fff];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x00ffffff, 0x01000000, 0x0000ffff];

type Mutator = (input: Buffer, rng: Rng, other: Buffer) => Buffer;

const MUTATORS: readonly Mutator[] = [
  // flip one bit
  (b, r) => {
    if (b.length === 0) return b;
    const out = Buffer.from(b);
    const i = r.below(out.length);
    out[i] = (out[i] ?? 0) ^ (1 << r.below(8));
    return out;
  },
  // one byte to an interesting value
  (b, r) => {
    if (b.length === 0) return b;
    const out = Buffer.from(b);
    out[r.below(out.length)] = r.pick(INTERESTING_8);
    return out;
  },
  // random byte
  (b, r) => {
    if (b.length === 0) return b;
    const out = Buffer.from(b);
    out[r.below(out.length)] = r.below(256);
    return out;
  },
  // 16-bit boundary value (either endianness)
  (b, r) => {
    if (b.length < 2) return b;
    const out = Buffer.from(b);
    const at = r.below(out.length - 1);
    const v = r.pick(INTERESTING_16);
    if (r.below(2) === 0) out.writeUInt16BE(v, at);
    else out.writeUInt16LE(v, at);
    return out;
  },
  // 32-bit boundary value
  (b, r) => {
    if (b.length < 4) return b;
    const out = Buffer.from(b);
    const at = r.below(out.length - 3);
    const v = r.pick(INTERESTING_32);
    if (r.below(2) === 0) out.writeUInt32BE(v, at);
    else out.writeUInt32LE(v, at);
    return out;
  },
  // add or subtract a small number from a byte (lengths off by a few)
  (b, r) => {
    if (b.length === 0) return b;
    const out = Buffer.from(b);
    const i = r.below(out.length);
    out[i] = ((out[i] ?? 0) + (r.below(2) === 0 ? 1 : -1) * (1 + r.below(16))) & 0xff;
    return out;
  },
  // delete a range
  (b, r) => {
    if (b.length < 2) return b;
    const at = r.below(b.length);
    const len = 1 + r.below(Math.min(256, b.length - at));
    return Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
  },
  // insert random bytes
  (b, r) => {
    const at = r.below(b.length + 1);
    const ins = Buffer.alloc(1 + r.below(64));
    for (let i = 0; i < ins.length; i++) ins[i] = r.below(256);
    return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
  },
  // duplicate a range in place
  (b, r) => {
    if (b.length === 0) return b;
    const at = r.below(b.length);
    const len = 1 + r.below(Math.min(512, b.length - at));
    return Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
  },
  // truncate
  (b, r) => b.subarray(0, r.below(b.length + 1)),
  // splice with another input
  (b, r, other) => {
    if (other.length === 0) return b;
    const at = r.below(b.length + 1);
    const from = r.below(other.length);
    const len = 1 + r.below(Math.min(1024, other.length - from));
    return Buffer.concat([b.subarray(0, at), other.subarray(from, from + len), b.subarray(at)]);
  },
  // overwrite a range with another input's bytes
  (b, r, other) => {
    if (other.length === 0 || b.length === 0) return b;
    const out = Buffer.from(b);
    const at = r.below(out.length);
    const from = r.below(other.length);
    other.copy(out, at, from, from + Math.min(64, out.length - at));
    return out;
  },
];

/** One havoc stack of 1..8 mutations; the result is at most `maxBytes`. */
export function mutate(input: Buffer, rng: Rng, other: Buffer, maxBytes = 1 << 20): Buffer {
  let out = input;
  const n = 1 << rng.below(4);
  for (let i = 0; i < n; i++) out = rng.pick(MUTATORS)(out, rng, other);
  return out.length > maxBytes ? out.subarray(0, maxBytes) : out;
}
