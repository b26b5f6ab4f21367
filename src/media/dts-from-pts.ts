// DTS for video whose transport carries only presentation times (RTP, RFC 6184/7798): with a
// reorder depth of N frames, the k-th smallest PTS is known once frame k + N has arrived, and it is
// a valid DTS for frame k + N (increasing, never after its PTS). The first N frames get DTS one
// frame duration apart before the first PTS. No frame waits.

/** Frame duration assumed for the first `depth` frames, before any is known (30 fps). */
const DEFAULT_FRAME_90K = 3000;

export class DtsFromPts {
  private depthFrames: number;
  /** PTS seen and not yet used as a DTS, ascending; at most depth + 1 entries. */
  private readonly pending: number[] = [];
  private lastDts90k: number | undefined;
  /** Frames that came later than the depth allowed (the depth then grows by one). */
  lateFrames = 0;

  /** `depth`: the stream's reorder depth (H.264 max_num_reorder_frames, H.265 sps_max_num_reorder_pics). */
  constructor(depth: number) {
    this.depthFrames = Math.max(0, Math.min(16, Math.floor(depth)));
  }

  get depth(): number {
    return this.depthFrames;
  }

  /** The DTS of the next frame in decode order, from its PTS. */
  next(pts90k: number): number {
    const last = this.lastDts90k;
    if (last !== undefined && pts90k <= last) {
      // Shown before a time already given as a DTS: the stream reorders deeper than announced.
      // This frame's DTS cannot be before its PTS any more; the following ones will be.
      this.lateFrames++;
      this.depthFrames = Math.min(16, this.depthFrames + 1);
      this.lastDts90k = last + 1;
      return last + 1;
    }
    let at = this.pending.length;
    while (at > 0 && (this.pending[at - 1] as number) > pts90k) at--;
    this.pending.splice(at, 0, pts90k);
    let dts: number;
    if (this.pending.length > this.depthFrames) {
      dts = this.pending.shift() as number;
    } else {
      // The first frames (or the frame after the depth grew): one frame duration apart, below the
      // smallest PTS still to come as a DTS.
      const limit = this.pending[0] as number;
      dts = last === undefined ? limit - this.depthFrames * DEFAULT_FRAME_90K : last + DEFAULT_FRAME_90K;
      if (dts >= limit) dts = last === undefined ? limit - 1 : Math.max(last + 1, Math.floor((last + limit) / 2));
    }
    this.lastDts90k = dts;
    return dts;
  }
}
