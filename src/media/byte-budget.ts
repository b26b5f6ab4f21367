// A count of bytes that several holders share with one cap (issue 25): e.g. the PES buffers of every
// MPEG-TS publisher of a server, so many publishers cannot together hold more than the cap.

export class ByteBudget {
  readonly maxBytes: number;
  private heldBytes = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get held(): number {
    return this.heldBytes;
  }

  /** Takes `n` bytes if they fit under the cap; false (and nothing taken) otherwise. */
  take(n: number): boolean {
    if (this.heldBytes + n > this.maxBytes) return false;
    this.heldBytes += n;
    return true;
  }

  give(n: number): void {
    this.heldBytes = Math.max(0, this.heldBytes - n);
  }
}
