// A WHEP viewer's bandwidth estimate and what each simulcast layer really costs: the browser's REMB
// (draft-alvestrand-rmcat-remb, RTCP PSFB FMT 15) as werift parses it, each layer's measured bit
// rate over a sliding window, and the largest layer that fits under the estimate with headroom.
//
// Why REMB and not transport-cc: with TWCC the browser only reports arrival times and the sender has
// to run the estimator (delay and loss based, GCC); with REMB Chromium runs its own receive-side
// estimator (abs-send-time based, which Feedcast already writes) and sends the result. werift's WHEP
// answer repeats the rtcp-fb lines of the codec the browser offered (goog-remb and transport-cc
// among them) but lists only the header extensions Feedcast configures (peer.ts: mid, abs-send-time,
// playout-delay), not transport-wide-cc, so Chromium 156 cannot send TWCC and sends REMB, four or
// five times a second (test/fixtures/chromium-remb.json). Its estimate never climbs past about 1.5x
// what it receives (libwebrtc's AimdRateControl), so it says when a layer is too big, seldom that a
// bigger one would fit: layer-choice.ts moves up by trying.

/** One REMB: the estimate (bit/s) and the SSRCs it covers. */
export interface Remb {
  bitsPerSecond: number;
  ssrcs: readonly number[];
}

/** The REMB in one of werift's parsed RTCP packets (PSFB, RFC 4585 6.1, FMT 15 "REMB"), or undefined. */
export function rembOf(packet: unknown): Remb | undefined {
  if (typeof packet !== 'object' || packet === null) return undefined;
  const p = packet as {
    type?: number;
    feedback?: { count?: number; uniqueID?: string; bitrate?: bigint; ssrcFeedbacks?: number[] };
  };
  const f = p.feedback;
  if (p.type !== 206 || f?.count !== 15 || f.uniqueID !== 'REMB' || typeof f.bitrate !== 'bigint') return undefined;
  return { bitsPerSecond: Number(f.bitrate), ssrcs: f.ssrcFeedbacks ?? [] };
}

/** Bytes an RTP packet costs on the wire beyond its payload: RTP header and extensions, SRTP tag, UDP/IP. */
export const PACKET_OVERHEAD_BYTES = 12 + 12 + 10 + 28;

/**
 * A bit rate measured over the last `windowMs`, in buckets of `windowMs / 8` (bursts such as a
 * keyframe spread over the window rather than counting whole or not at all).
 */
export class BitrateMeter {
  private readonly bucketMs: number;
  private readonly buckets: Float64Array;
  /** The bucket (time / bucketMs) the newest bytes went into. */
  private newest = -1;
  private readonly startedAt: number;
  private readonly windowMs: number;

  constructor(nowMs: number, windowMs = 4000) {
    this.windowMs = windowMs;
    this.bucketMs = windowMs / 8;
    this.buckets = new Float64Array(8);
    this.startedAt = nowMs;
  }

  add(bytes: number, nowMs: number): void {
    this.advance(nowMs);
    const i = this.newest % this.buckets.length;
    this.buckets[i] = (this.buckets[i] as number) + bytes;
  }

  /** Bit/s over the window (or the time since the meter started, once that is a second). */
  bitsPerSecond(nowMs: number): number | undefined {
    const measuredMs = Math.min(this.windowMs, nowMs - this.startedAt);
    if (measuredMs < 1000) return undefined;
    this.advance(nowMs);
    let bytes = 0;
    for (const b of this.buckets) bytes += b;
    return (bytes * 8 * 1000) / measuredMs;
  }

  /** Empties the buckets that fell out of the window since the last call. */
  private advance(nowMs: number): void {
    const bucket = Math.floor(nowMs / this.bucketMs);
    if (this.newest < 0) this.newest = bucket;
    const stale = Math.min(this.buckets.length, bucket - this.newest);
    for (let k = 1; k <= stale; k++) this.buckets[(this.newest + k) % this.buckets.length] = 0;
    if (bucket > this.newest) this.newest = bucket;
  }
}

/**
 * The largest layer (0 is the largest) whose video plus the audio fits under `headroom` times the
 * estimate; the smallest when none does. A layer not measured yet (undefined) does not fit.
 */
export function layerThatFits(
  layerBitsPerSecond: readonly (number | undefined)[],
  audioBitsPerSecond: number,
  estimateBitsPerSecond: number,
  headroom: number,
): number {
  const budget = estimateBitsPerSecond * headroom;
  for (let i = 0; i < layerBitsPerSecond.length; i++) {
    const video = layerBitsPerSecond[i];
    if (video !== undefined && video + audioBitsPerSecond <= budget) return i;
  }
  return Math.max(0, layerBitsPerSecond.length - 1);
}
