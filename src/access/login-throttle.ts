// Failed ControlUser logins, per client address (issue 25 item 9): the first few failures are free,
// then each further failure shuts that address out for a doubling time (1 s, 2 s, 4 s ... 5 min), during
// which it gets 429 without its password being checked. A success forgets the address. Bounded: an
// address is forgotten 15 minutes after its last failure, and at most MAX_ADDRESSES are remembered.

export const FREE_FAILURES = 5;
const MAX_BLOCK_MS = 5 * 60_000;
const FORGET_AFTER_MS = 15 * 60_000;
const MAX_ADDRESSES = 10_000;

interface Failures {
  count: number;
  lastMs: number;
  blockedUntilMs: number;
}

export class LoginThrottle {
  private readonly byAddress = new Map<string, Failures>();

  /** Seconds `address` must wait before its next try, or undefined when it may try now. */
  retryAfterSeconds(address: string, nowMs = Date.now()): number | undefined {
    const f = this.byAddress.get(address);
    if (f === undefined) return undefined;
    if (nowMs - f.lastMs > FORGET_AFTER_MS) {
      this.byAddress.delete(address);
      return undefined;
    }
    return f.blockedUntilMs > nowMs ? Math.ceil((f.blockedUntilMs - nowMs) / 1000) : undefined;
  }

  /** Counts a failed login; returns the seconds the address is now shut out for (0: none yet). */
  failed(address: string, nowMs = Date.now()): number {
    let f = this.byAddress.get(address);
    if (f === undefined || nowMs - f.lastMs > FORGET_AFTER_MS) {
      f = { count: 0, lastMs: nowMs, blockedUntilMs: 0 };
      this.byAddress.delete(address);
      if (this.byAddress.size >= MAX_ADDRESSES) this.forgetOldest(nowMs);
      this.byAddress.set(address, f);
    }
    f.count++;
    f.lastMs = nowMs;
    if (f.count < FREE_FAILURES) return 0;
    const blockMs = Math.min(MAX_BLOCK_MS, 1000 * 2 ** Math.min(20, f.count - FREE_FAILURES));
    f.blockedUntilMs = nowMs + blockMs;
    return Math.ceil(blockMs / 1000);
  }

  succeeded(address: string): void {
    this.byAddress.delete(address);
  }

  private forgetOldest(nowMs: number): void {
    for (const [address, f] of this.byAddress) {
      if (nowMs - f.lastMs > FORGET_AFTER_MS || this.byAddress.size >= MAX_ADDRESSES) this.byAddress.delete(address);
      if (this.byAddress.size < MAX_ADDRESSES / 2) return;
    }
  }
}
