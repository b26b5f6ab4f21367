// The slow-reader policy every reader of a shared output follows (DESIGN.md, "Bounded memory per
// reader"): a reader more than maxQueueBytes behind is moved to the newest keyframe (the caller
// skips); one still behind after maxLagMs is closed with ClientTooSlowError. OutputReader measures
// "behind" as bytes between its cursor and the head of the log; a WebRTC viewer as the bytes its
// ICE-TCP connection has not sent (protocols/webrtc/from-feed.ts).

import { ClientTooSlowError } from '../errors.js';

export interface SlowReaderLimits {
  maxQueueBytes: number;
  maxLagMs: number;
}

export class SlowReaderPolicy {
  private readonly limits: SlowReaderLimits;
  /** Names the reader in the error. */
  private readonly what: string;
  private behindSince: number | undefined;

  constructor(limits: SlowReaderLimits, what: string) {
    this.limits = limits;
    this.what = what;
  }

  /** The reader is behind now (since its last catch-up). */
  get behind(): boolean {
    return this.behindSince !== undefined;
  }

  /**
   * 'ok' when `lagBytes` is within the bound (and nothing it needs was dropped: `evicted`),
   * 'skip' when the reader should move to the newest keyframe, or the error to close it with.
   */
  check(lagBytes: number, evicted = false, now = Date.now()): 'ok' | 'skip' | ClientTooSlowError {
    if (!evicted && lagBytes <= this.limits.maxQueueBytes) return 'ok';
    this.behindSince ??= now;
    const behindMs = now - this.behindSince;
    if (behindMs > this.limits.maxLagMs) {
      return new ClientTooSlowError(`${this.what} stayed more than ${this.limits.maxQueueBytes} bytes behind for ${behindMs} ms`);
    }
    return 'skip';
  }

  /** The reader reached the live edge: its time behind starts again at the next fall. */
  caughtUp(): void {
    this.behindSince = undefined;
  }
}
