// Bit rate over a sliding window (ffserver measured "actual bit/s" over 5-10 s): counts bytes
// into one-second buckets and averages the last few whole ones.

export class RateMeter {
  private readonly windowSeconds: number;
  private readonly buckets: number[];
  private currentSecond = 0;

  constructor(windowSeconds = 5) {
    this.windowSeconds = windowSeconds;
    this.buckets = new Array<number>(windowSeconds + 1).fill(0);
  }

  add(bytes: number, nowMs = Date.now()): void {
    this.advance(nowMs);
    const i = this.currentSecond % this.buckets.length;
    this.buckets[i] = (this.buckets[i] ?? 0) + bytes;
  }

  /** Bits per second over the last whole seconds of the window. */
  bitsPerSecond(nowMs = Date.now()): number {
    this.advance(nowMs);
    let sum = 0;
    for (let s = 1; s <= this.windowSeconds; s++) {
      sum += this.buckets[(this.currentSecond - s + this.buckets.length * 2) % this.buckets.length] ?? 0;
    }
    return (sum * 8) / this.windowSeconds;
  }

  private advance(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (this.currentSecond === 0) this.currentSecond = second;
    const steps = Math.min(second - this.currentSecond, this.buckets.length);
    for (let k = 1; k <= steps; k++) this.buckets[(this.currentSecond + k) % this.buckets.length] = 0;
    if (second > this.currentSecond) this.currentSecond = second;
  }
}
