// Conversions between the internal 90 kHz clock and the timebases of the formats, and the
// unwrapping of the 33-bit (MPEG-TS) and 32-bit (FLV/RTMP) timestamps at the format boundary.

export const CLOCK_HZ = 90_000;
export const TS_WRAP = 2 ** 33;
export const FLV_WRAP = 2 ** 32;

export function msTo90k(ms: number): number {
  return Math.round(ms * 90);
}
export function ms90kToMs(t90k: number): number {
  return Math.round(t90k / 90);
}
export function to90k(value: number, timescale: number): number {
  return Math.round((value * CLOCK_HZ) / timescale);
}
export function from90k(t90k: number, timescale: number): number {
  return Math.round((t90k * timescale) / CLOCK_HZ);
}

/**
 * Turns a wrapping counter (33-bit TS, 32-bit FLV) into a continuous number: each value is
 * placed in the period nearest to the previous one, so both forward wraps and small backward
 * steps come out right.
 */
export class Unwrapper {
  private readonly period: number;
  private last: number | undefined;

  constructor(period: number) {
    this.period = period;
  }

  unwrap(value: number): number {
    if (this.last === undefined) {
      this.last = value;
      return value;
    }
    const base = this.last - (((this.last % this.period) + this.period) % this.period);
    let candidate = base + value;
    const half = this.period / 2;
    if (candidate - this.last > half) candidate -= this.period;
    else if (this.last - candidate > half) candidate += this.period;
    this.last = candidate;
    return candidate;
  }

  reset(): void {
    this.last = undefined;
  }
}
