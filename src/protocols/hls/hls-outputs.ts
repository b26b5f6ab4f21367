// The HLS segmenters of the server, one per (feed or declared stream, container): started by the
// first playlist request, stopped when no request has come for `idleTimeoutMs`.

import type { Feed } from '../../feed/feed.js';
import type { Logger } from '../../observability/logger.js';
import { Segmenter, type SegmenterOptions } from './segmenter.js';

export class HlsOutputs {
  private readonly segmenters = new Map<string, Segmenter>();
  private readonly log: Logger;
  private readonly idleTimeoutMs: number;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(log: Logger, idleTimeoutMs: number) {
    this.log = log;
    this.idleTimeoutMs = idleTimeoutMs;
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), Math.min(5000, Math.max(100, idleTimeoutMs / 4)));
    this.sweepTimer.unref();
  }

  /** The running segmenter for `key`, or a new one; an ended one is replaced once a publisher is back. */
  acquire(key: string, feed: Feed, options: SegmenterOptions, nowMs = Date.now()): Segmenter {
    let segmenter = this.segmenters.get(key);
    if (segmenter !== undefined && segmenter.ended && feed.publisher !== undefined) {
      segmenter.dispose();
      segmenter = undefined;
    }
    if (segmenter === undefined) {
      segmenter = new Segmenter(feed, options, this.log);
      this.segmenters.set(key, segmenter);
      segmenter.start();
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

  get size(): number {
    return this.segmenters.size;
  }

  sweep(nowMs: number): void {
    for (const [key, segmenter] of this.segmenters) {
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
