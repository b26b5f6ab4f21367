// Which simulcast layer a WHEP viewer should get, from two signals. Its bandwidth estimate (REMB,
// bandwidth-estimate.ts): the largest layer whose measured bit rate, audio included, fits under
// 0.85x the estimate; down at once when the estimate falls below what the layer needs, up once it has
// allowed a larger layer for a while. And the loss in its RTCP receiver reports (RFC 3550 6.4.1:
// fraction lost per report, weighted by the packets each covers, over windows of a second or more):
// down one layer after sustained loss, back up one after a long clean spell, waiting longer after
// each fall (by either signal) so a viewer does not flap. A browser's estimate stays under about 1.5x
// what it receives, so it rarely allows a larger layer by itself: the clean-spell move up is the
// probe, and only a falling estimate moves the viewer down (one climbing, or stuck, does not).

import { layerThatFits } from './bandwidth-estimate.js';

/** A layer silent this long no longer counts as sent (a publisher pauses what its bandwidth cannot carry). */
export const LAYER_STALL_MS = 2000;

export interface LayerChoiceOptions {
  /** A report with at least this fraction lost counts as lossy. Default 0.05. */
  downLoss: number;
  /** Lossy reports in a row that move the viewer down a layer. Default 3 (about 3 s). */
  lossyReports: number;
  /** A report under this fraction lost counts as clean. Default 0.01. */
  cleanLoss: number;
  /** The shortest window the loss is measured over (Chromium sends several reports a second). Default 1000. */
  windowMs: number;
  /** Clean time before trying the layer above; doubled after each fall, up to `maxUpAfterMs`. Default 8000. */
  upAfterMs: number;
  maxUpAfterMs: number;
  /** The share of the estimate the video of a layer and the audio may use. Default 0.85. */
  headroom: number;
  /** How long the estimate must allow a larger layer before the viewer moves up to it. Default 4000. */
  estimateUpAfterMs: number;
  /**
   * The estimate fell: it is under `fallenBy` times the highest of the last `fallenOverMs` (since
   * the viewer last moved up). Only a falling estimate moves the viewer down: one still climbing
   * towards a new layer, or stuck where it was (Chromium's stays put for minutes after a fall, at
   * most about 1.5x what it receives), leaves it to the loss rule. Defaults 0.97 and 5000.
   */
  fallenBy: number;
  fallenOverMs: number;
}

export const DEFAULT_LAYER_CHOICE: LayerChoiceOptions = {
  downLoss: 0.05,
  lossyReports: 3,
  cleanLoss: 0.01,
  windowMs: 1000,
  upAfterMs: 8000,
  maxUpAfterMs: 64_000,
  headroom: 0.85,
  estimateUpAfterMs: 4000,
  fallenBy: 0.97,
  fallenOverMs: 5000,
};

/** Layers are numbered from 0, the largest; `count - 1` is the smallest. */
export class LayerChoice {
  private readonly options: LayerChoiceOptions;
  private readonly count: number;
  /** The layer the viewer gets or is being moved to. */
  current: number;
  private lossy = 0;
  /** The loss of the last window (0..1). */
  lastLoss = 0;
  private cleanSince: number | undefined;
  private upAfterMs: number;
  /** The current window: when it started, the highest sequence number so far, packets it covers, of them lost, and asked again (NACK). */
  private window: { startMs: number; highest: number; expected: number; lost: number; nacked: number } | undefined;

  /** The last estimate (bit/s), and those of the last `fallenOverMs` with their times. */
  lastEstimate: number | undefined;
  private readonly estimates: { atMs: number; bitsPerSecond: number }[] = [];
  /** Since when the estimate has allowed a larger layer, and the smallest of the layers it allowed since. */
  private allowedUp: { sinceMs: number; index: number } | undefined;

  constructor(count: number, start: number, nowMs: number, options: Partial<LayerChoiceOptions> = {}) {
    this.options = { ...DEFAULT_LAYER_CHOICE, ...options };
    this.count = count;
    this.current = Math.min(Math.max(0, start), count - 1);
    this.upAfterMs = this.options.upAfterMs;
    this.cleanSince = nowMs;
  }

  /** The share of the estimate a layer may use. */
  get headroom(): number {
    return this.options.headroom;
  }

  /** The viewer was moved to `index` for another reason (its layer stalled): loss counting starts again there. */
  moveTo(index: number, nowMs: number): void {
    this.current = Math.min(Math.max(0, index), this.count - 1);
    this.lossy = 0;
    this.cleanSince = nowMs;
    this.allowedUp = undefined;
  }

  /**
   * One bandwidth estimate (bit/s) with what each layer's video and the audio measure now: the layer
   * to move to, or undefined to stay. Down at once to the largest layer that fits when the current
   * one does not and the estimate has just fallen; up to the largest that fits once the
   * estimate has allowed a larger layer for `estimateUpAfterMs`.
   */
  estimate(
    bitsPerSecond: number,
    layerBitsPerSecond: readonly (number | undefined)[],
    audioBitsPerSecond: number,
    nowMs: number,
  ): number | undefined {
    this.lastEstimate = bitsPerSecond;
    this.estimates.push({ atMs: nowMs, bitsPerSecond });
    while ((this.estimates[0]?.atMs ?? nowMs) < nowMs - this.options.fallenOverMs) this.estimates.shift();
    if (layerBitsPerSecond[this.current] === undefined) return undefined; // not measured yet
    const fits = layerThatFits(layerBitsPerSecond, audioBitsPerSecond, bitsPerSecond, this.options.headroom);
    if (fits > this.current) {
      this.allowedUp = undefined;
      if (!this.fallen()) return undefined;
      this.fell(fits, nowMs);
      return this.current;
    }
    if (fits === this.current) {
      this.allowedUp = undefined;
      return undefined;
    }
    if (this.allowedUp === undefined) this.allowedUp = { sinceMs: nowMs, index: fits };
    else this.allowedUp.index = Math.max(this.allowedUp.index, fits);
    // Up only when the loss agrees: clean for as long as the estimate allowed it.
    const cleanMs = this.cleanSince !== undefined ? nowMs - this.cleanSince : 0;
    if (Math.min(cleanMs, nowMs - this.allowedUp.sinceMs) < this.options.estimateUpAfterMs) return undefined;
    this.current = this.allowedUp.index;
    this.allowedUp = undefined;
    this.cleanSince = nowMs;
    this.layerChanged();
    return this.current;
  }

  /**
   * The viewer gets (or is about to get) a larger layer: the browser's estimate, held under about
   * 1.5x the old one's rate, now has to climb, so it is judged only from here on.
   */
  layerChanged(): void {
    this.estimates.length = 0;
  }

  /** Whether the newest estimate is under `fallenBy` times the highest of the window. */
  private fallen(): boolean {
    let highest = 0;
    for (const e of this.estimates) highest = Math.max(highest, e.bitsPerSecond);
    const newest = this.estimates[this.estimates.length - 1];
    return newest !== undefined && newest.bitsPerSecond < highest * this.options.fallenBy;
  }

  /** A move down (either signal): the loss counting starts again there, and the next try up waits longer. */
  private fell(index: number, nowMs: number): void {
    this.current = index;
    this.lossy = 0;
    this.cleanSince = nowMs;
    this.upAfterMs = Math.min(this.options.maxUpAfterMs, this.upAfterMs * 2);
  }

  /**
   * One receiver report block (RFC 3550 6.4.1): the extended highest sequence number received and
   * the fraction lost since the previous report (0..1). Browsers send several a second, each over
   * a few packets, so the fractions are weighted by the packets each covers and go to report() once
   * a window of `windowMs` is over. Returns the layer to move to, or undefined.
   *
   * A packet resent after a NACK and received late no longer counts as lost in Chromium's
   * reports, so the window also takes the packets NACKed (nacked()): the loss the viewer's path shows.
   */
  receiverReport(highestSequence: number, fractionLost: number, nowMs: number): number | undefined {
    const w = this.window;
    if (w === undefined || highestSequence < w.highest) {
      this.window = { startMs: nowMs, highest: highestSequence, expected: 0, lost: 0, nacked: 0 };
      return undefined;
    }
    const covered = highestSequence - w.highest;
    w.highest = highestSequence;
    w.expected += covered;
    w.lost += covered * Math.min(1, Math.max(0, fractionLost));
    if (nowMs - w.startMs < this.options.windowMs) return undefined;
    this.window = { startMs: nowMs, highest: highestSequence, expected: 0, lost: 0, nacked: 0 };
    if (w.expected <= 0) return undefined;
    return this.report(Math.min(1, Math.max(w.lost, w.nacked) / w.expected), nowMs);
  }

  /**
   * Packets the viewer asked for again (NACK, RFC 4585 6.2.1), each counted once. When they are
   * resent in time the receiver reports heal (a packet received late is no longer lost), so the
   * loss of the window is what the reports say or what was asked again, whichever is more.
   */
  nacked(packets: number): void {
    if (this.window !== undefined) this.window.nacked += packets;
  }

  /** One window's fraction lost (0..1): the layer to move to, or undefined to stay. */
  report(fractionLost: number, nowMs: number): number | undefined {
    this.lastLoss = fractionLost;
    if (fractionLost >= this.options.downLoss) {
      this.lossy++;
      this.cleanSince = undefined;
      if (this.lossy < this.options.lossyReports || this.current >= this.count - 1) return undefined;
      this.fell(this.current + 1, nowMs);
      this.cleanSince = undefined;
      return this.current;
    }
    this.lossy = 0;
    if (fractionLost >= this.options.cleanLoss) {
      this.cleanSince = undefined;
      return undefined;
    }
    this.cleanSince ??= nowMs;
    if (this.current === 0 || nowMs - this.cleanSince < this.upAfterMs) return undefined;
    this.cleanSince = nowMs;
    this.allowedUp = undefined;
    this.current--;
    this.layerChanged();
    return this.current;
  }
}
