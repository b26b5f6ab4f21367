// Which simulcast layer a WHEP viewer should get, from the loss its browser reports (RTCP receiver
// reports, RFC 3550 6.4.2: fraction lost per report interval): down one layer after sustained loss,
// back up one after a long clean spell, waiting longer after each fall so a viewer does not flap.

export interface LayerChoiceOptions {
  /** A report with at least this fraction lost counts as lossy. Default 0.05. */
  downLoss: number;
  /** Lossy reports in a row that move the viewer down a layer. Default 3 (about 3 s). */
  lossyReports: number;
  /** A report under this fraction lost counts as clean. Default 0.01. */
  cleanLoss: number;
  /** Clean time before trying the layer above; doubled after each fall, up to `maxUpAfterMs`. Default 8000. */
  upAfterMs: number;
  maxUpAfterMs: number;
}

export const DEFAULT_LAYER_CHOICE: LayerChoiceOptions = {
  downLoss: 0.05,
  lossyReports: 3,
  cleanLoss: 0.01,
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
  private cleanSince: number | undefined;
  private upAfterMs: number;

  constructor(count: number, start: number, nowMs: number, options: Partial<LayerChoiceOptions> = {}) {
    this.options = { ...DEFAULT_LAYER_CHOICE, ...options };
    this.count = count;
    this.current = Math.min(Math.max(0, start), count - 1);
    this.upAfterMs = this.options.upAfterMs;
    this.cleanSince = nowMs;
  }

  /** One receiver report's fraction lost (0..1): the layer to move to, or undefined to stay. */
  report(fractionLost: number, nowMs: number): number | undefined {
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
