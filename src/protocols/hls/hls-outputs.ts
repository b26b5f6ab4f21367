// The HLS segmenters of the server, one per (feed or declared stream, container) and one per
// ladder rendition: started by the first playlist request, stopped when no request has come for
// `idleTimeoutMs` (disposing one releases what it holds: an on-demand source, a ladder).

import type { Logger } from '../../observability/logger.js';
import type { Segmenter } from './segmenter.js';

export interface SegmenterFactory {
  /** A new, started segmenter (it holds its source and ladder until disposed). */
  create: () => Segmenter;
  /**
   * Whether an ended segmenter gives way to a new one now: a publisher is back, or one can be
   * started (an on-demand source, a ladder). Otherwise the ended one keeps answering (ENDLIST).
   */
  restartEnded: () => boolean;
}

export class HlsOutputs {
  private readonly segmenters = new Map<string, Segmenter>();
  private readonly log: Logger;
  private idleTimeoutMs: number;
  private sweepTimer: NodeJS.Timeout;

  constructor(log: Logger, idleTimeoutMs: number) {
    this.log = log;
    this.idleTimeoutMs = idleTimeoutMs;
    this.sweepTimer = this.startSweeping();
  }

  private startSweeping(): NodeJS.Timeout {
    const timer = setInterval(() => this.sweep(Date.now()), Math.min(5000, Math.max(100, this.idleTimeoutMs / 4)));
    timer.unref();
    return timer;
  }

  /** `HLSIdleTimeout` changed (reload): applies to the segmenters running too. */
  setIdleTimeout(ms: number): void {
    if (ms === this.idleTimeoutMs) return;
    this.idleTimeoutMs = ms;
    clearInterval(this.sweepTimer);
    this.sweepTimer = this.startSweeping();
  }

  /** `HLSIdleTimeout` in force. */
  get idleTimeout(): number {
    return this.idleTimeoutMs;
  }

  /** The running segmenter for `key`, or a new one from `factory`. */
  acquire(key: string, factory: SegmenterFactory, nowMs = Date.now()): Segmenter {
    let segmenter = this.segmenters.get(key);
    if (segmenter !== undefined && segmenter.ended && factory.restartEnded()) {
      segmenter.dispose();
      segmenter = undefined;
    }
    if (segmenter === undefined) {
      segmenter = factory.create();
      this.segmenters.set(key, segmenter);
    }
    segmenter.lastRequestAt = nowMs;
    return segmenter;
  }

  /** The running segmenter for `key`, if any (segment and part requests never start one). */
  find(key: string, nowMs = Date.now()): Segmenter | undefined {
    const segmenter = this.segmenters.get(key);
    if (segmenter !== undefined) segmenter.lastRequestAt = nowMs;
    return segmenter;
  }

  /** The running segmenter for `key`, without counting this as a request. */
  peek(key: string): Segmenter | undefined {
    return this.segmenters.get(key);
  }

  get size(): number {
    return this.segmenters.size;
  }

  sweep(nowMs: number): void {
    for (const [key, segmenter] of this.segmenters) {
      // A request still held (waiting for the first segment, say) counts as a request now.
      if (segmenter.waiting > 0 && !segmenter.ended) segmenter.lastRequestAt = nowMs;
      // A DVR window (HLSDVRWindow) is history kept for viewers to come: it runs while its feed does.
      if ((segmenter.options.dvrWindowMs ?? 0) > 0 && !segmenter.ended) continue;
      if (nowMs - segmenter.lastRequestAt < this.idleTimeoutMs) continue;
      this.log.info('HLS segmenter stopped: no request', { output: key, idleMs: nowMs - segmenter.lastRequestAt });
      segmenter.dispose();
      this.segmenters.delete(key);
    }
  }

  close(): void {
    clearInterval(this.sweepTimer);
    for (const segmenter of this.segmenters.values()) segmenter.dispose();
    this.segmenters.clear();
  }
}
