// Which simulcast layer a WHEP viewer should get, from the loss its browser reports (RTCP receiver
// reports, RFC 3550 6.4.1: fraction lost per report, weighted by the packets each covers, over
// windows of a second or more): down one layer after sustained loss, back up one after a long
// clean spell, waiting longer after each fall so a viewer does not flap.

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
}

export const DEFAULT_LAYER_CHOICE: LayerChoiceOptions = {
  downLoss: 0.05,
  lossyReports: 3,
  cleanLoss: 0.01,
  windowMs: 1000,
  upAfterMs: 8000,
  maxUpAfterMs: 64_000,
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

  constructor(count: number, start: number, nowMs: number, options: Partial<LayerChoiceOptions> = {}) {
    this.options = { ...DEFAULT_LAYER_CHOICE, ...options };
    this.count = count;
    this.current = Math.min(Math.max(0, start), count - 1);
    this.upAfterMs = this.options.upAfterMs;
    this.cleanSince = nowMs;
  }

  /** The viewer was moved to `index` for another reason (its layer stalled): loss counting starts again there. */
  moveTo(index: number, nowMs: number): void {
    this.current = Math.min(Math.max(0, index), this.count - 1);
    this.lossy = 0;
    this.cleanSince = nowMs;
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
      this.lossy = 0;
      this.upAfterMs = Math.min(this.options.maxUpAfterMs, this.upAfterMs * 2);
      this.current++;
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
    this.current--;
    return this.current;
  }
}
