import net from 'node:net';

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

/**
 * A TCP connection that reads into `readBuffer`, shared by every reader of the process (`onread`:
 * no Buffer allocated per read, so a thousand readers stay light), handing each read to `onData`.
 */
export function connectSharedBuffer(
  host: string,
  port: number,
  readBuffer: Buffer,
  onData: (buf: Buffer, n: number) => void,
): net.Socket {
  return net.connect({
    host,
    port,
    onread: {
      buffer: readBuffer,
      callback: (n: number, buf: Uint8Array): boolean => {
        onData(buf as Buffer, n);
        return true;
      },
    },
  });
}
