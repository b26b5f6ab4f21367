// What every benchmark load reader (HTTP-FLV, RTMP, RTSP) records, whatever its protocol: its
// timing, its counters and the lateness of its video frames while sampling. The load generators
// (flv-readers.ts) and peers.ts read these fields alike from any of them.

export abstract class LoadReaderState {
  // Timing (wall-clock ms, see nowMs)
  connectAt = 0;
  connectedAt: number | undefined;
  /** The protocol's answer came (HTTP response head, RTMP handshake, RTSP PLAY answer). */
  headAt: number | undefined;
  firstFrameAt: number | undefined;
  firstFrameKeyframe: boolean | undefined;
  closedAt: number | undefined;

  // Result of the request
  status: number | undefined;
  error: string | undefined;

  // Counters
  /** All bytes received, protocol framing included. */
  bytes = 0;
  videoFrames = 0;
  keyframes = 0;
  framingErrors = 0;
  /** Timestamp (ms) of the newest video frame. */
  lastVideoTs: number | undefined;

  // Lateness (arrival - timestamp) of video frames while `sampling` is on
  sampling = false;
  latCount = 0;
  latSum = 0;
  latMax = -Infinity;
  latMin = Infinity;

  /** Time to first frame: connect call → first byte of the first video frame (ms). */
  get ttffMs(): number | undefined {
    return this.firstFrameAt === undefined ? undefined : this.firstFrameAt - this.connectAt;
  }

  resetLateness(): void {
    this.latCount = 0;
    this.latSum = 0;
    this.latMax = -Infinity;
    this.latMin = Infinity;
  }
}
