// Refused connections are logged at most once per address per interval, with the count of the ones
// held back (issue 25): one address reconnecting thousands of times a second must not flood the log.

import type { LogFields, Logger } from './logger.js';

/** Addresses remembered at most; past it the oldest are forgotten (their next refusal is logged). */
const MAX_ADDRESSES = 10_000;

interface Entry {
  lastMs: number;
  held: number;
}

export class RefusalLog {
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly byAddress = new Map<string, Entry>();

  constructor(log: Logger, intervalMs = 10_000) {
    this.log = log;
    this.intervalMs = intervalMs;
  }

  /** Logs `msg` for `address` unless one was logged within the interval; then only counts it. */
  warn(address: string, msg: string, fields: LogFields = {}): void {
    const now = Date.now();
    const entry = this.byAddress.get(address);
    if (entry !== undefined && now - entry.lastMs < this.intervalMs) {
      entry.held++;
      return;
    }
    const held = entry?.held ?? 0;
    this.byAddress.delete(address);
    this.byAddress.set(address, { lastMs: now, held: 0 });
    if (this.byAddress.size > MAX_ADDRESSES) this.prune(now);
    this.log.warn(msg, held > 0 ? { ...fields, from: address, alsoRefused: held } : { ...fields, from: address });
  }

  private prune(now: number): void {
    for (const [address, entry] of this.byAddress) {
      if (this.byAddress.size <= MAX_ADDRESSES && now - entry.lastMs < this.intervalMs) break;
      this.byAddress.delete(address);
    }
  }
}
