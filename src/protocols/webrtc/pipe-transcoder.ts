// One track of a feed re-encoded by a supervised ffmpeg for WebRTC viewers, shared by all of them:
// the frames go in as MPEG-TS with their timestamps (TsMuxer) and come back as MPEG-TS (TsDemuxer)
// under -copyts, so each output frame keeps the feed time of the input it was made from. The Opus
// audio (opus-transcoder.ts) and the H.264 without B-frames (video-reencoder.ts) are two uses.

import type { ChildProcess } from 'node:child_process';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import type { Logger } from '../../observability/logger.js';
import { TsDemuxer } from '../../formats/mpegts/ts-demuxer.js';
import { TsMuxer } from '../../formats/mpegts/ts-muxer.js';
import { FfmpegProcess } from '../../process/ffmpeg-process.js';
import { TS_WRAP } from '../../media/timebase.js';

export interface PipeTranscoderOptions {
  /** For logs and the process status: "webrtc opus", "webrtc h264". */
  name: string;
  /** The feed's track that goes in. */
  source: Track;
  ffmpegPath: string;
  /** ffmpeg's arguments: MPEG-TS on pipe:0 in, MPEG-TS on pipe:1 out, -copyts. */
  args: readonly string[];
  log: Logger;
  /** Input bytes that may wait in ffmpeg's stdin before frames are dropped (the feed never waits). */
  maxBacklogBytes: number;
  /** Each output frame, on the feed clock, with the output track it belongs to. */
  onFrame: (frame: Frame, track: Track | undefined) => void;
}

export class PipeTranscoder {
  private readonly opts: PipeTranscoderOptions;
  private readonly proc: FfmpegProcess;
  protected readonly log: Logger;
  private muxer: TsMuxer;
  private stdin: NodeJS.WritableStream | undefined;
  private sentHeader = false;
  /** Feed time minus ffmpeg output time, learnt from the first output frame of each child. */
  private offset90k: number | undefined;
  private lastInputPts90k = 0;
  /** The output's tracks, as the demuxer of the current child announced them. */
  private outputTracks: readonly Track[] = [];
  framesIn = 0;
  framesOut = 0;
  framesDropped = 0;

  constructor(opts: PipeTranscoderOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.muxer = new TsMuxer([opts.source], { pcrOffset90k: 0 });
    this.proc = new FfmpegProcess({
      name: opts.name,
      command: opts.ffmpegPath,
      args: () => [...opts.args],
      log: this.log,
      stdin: 'pipe',
      onSpawn: (child: ChildProcess) => this.wire(child),
    });
  }

  start(): void {
    this.proc.start();
  }

  get running(): boolean {
    return this.proc.running;
  }

  private wire(child: ChildProcess): void {
    // A new child starts a new MPEG-TS stream and a new timestamp mapping.
    this.muxer = new TsMuxer([this.opts.source], { pcrOffset90k: 0 });
    this.sentHeader = false;
    this.offset90k = undefined;
    this.outputTracks = [];
    this.stdin = child.stdin ?? undefined;
    child.stdin?.on('error', () => undefined); // EPIPE when the child dies; the supervisor restarts it
    const demuxer = new TsDemuxer({
      onTracks: (tracks) => {
        this.outputTracks = tracks;
      },
      onFrame: (frame) => {
        // -copyts keeps our (33-bit wrapped) input times; map them back onto the feed clock.
        if (this.offset90k === undefined) {
          const wrapped = this.lastInputPts90k % TS_WRAP;
          this.offset90k = this.lastInputPts90k - wrapped + Math.round((wrapped - frame.pts90k) / TS_WRAP) * TS_WRAP;
        }
        this.framesOut++;
        const track = this.outputTracks.find((t) => t.id === frame.trackId);
        this.opts.onFrame({ ...frame, pts90k: frame.pts90k + this.offset90k, dts90k: frame.dts90k + this.offset90k }, track);
      },
      onWarning: (message) => this.log.debug('transcoder output', { message }),
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      try {
        demuxer.push(chunk);
      } catch (err) {
        this.log.warn('cannot read the transcoder output; restarting it', { err });
        child.kill('SIGTERM');
      }
    });
  }

  /** Queues one frame of the source track; drops it when ffmpeg is behind. Returns false when dropped. */
  write(frame: Frame): boolean {
    const stdin = this.stdin as (NodeJS.WritableStream & { writableLength?: number }) | undefined;
    if (stdin === undefined || !this.proc.running) return false;
    if ((stdin.writableLength ?? 0) > this.opts.maxBacklogBytes) {
      this.framesDropped++;
      return false;
    }
    this.framesIn++;
    this.lastInputPts90k = frame.pts90k;
    if (!this.sentHeader) {
      stdin.write(this.muxer.header());
      this.sentHeader = true;
    }
    stdin.write(this.muxer.mux(frame));
    return true;
  }

  async close(): Promise<void> {
    this.stdin = undefined;
    await this.proc.stop();
  }
}
