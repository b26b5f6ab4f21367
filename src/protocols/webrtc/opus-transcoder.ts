// Browsers take only Opus audio over WebRTC: a feed's AAC (or MP3/MP2) track is re-encoded by one
// supervised ffmpeg per feed, shared by all its WebRTC viewers. The audio goes in as MPEG-TS with
// its timestamps (TsMuxer) and comes back as MPEG-TS with Opus (TsDemuxer) under -copyts, so each
// Opus frame keeps the feed time of the audio it was made from.

import type { ChildProcess } from 'node:child_process';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import type { Logger } from '../../observability/logger.js';
import { TsDemuxer } from '../../formats/mpegts/ts-demuxer.js';
import { TsMuxer } from '../../formats/mpegts/ts-muxer.js';
import { FfmpegProcess } from '../../process/ffmpeg-process.js';
import { TS_WRAP } from '../../media/timebase.js';

/** Audio codecs this transcoder turns into Opus. */
export const OPUS_TRANSCODABLE = new Set(['aac', 'mp3', 'mp2']);

/** Input bytes that may wait in ffmpeg's stdin before audio is dropped (about 2 s of AAC). */
const MAX_STDIN_BACKLOG_BYTES = 64 * 1024;

export function opusTranscodeArgs(bitrateKbps: number): string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'warning',
    // Start at once: no probing beyond the program tables and first packets, no input buffering.
    '-fflags',
    '+nobuffer',
    '-probesize',
    '8192',
    '-analyzeduration',
    '0',
    '-f',
    'mpegts',
    '-i',
    'pipe:0',
    '-copyts',
    '-map',
    '0:a:0',
    '-c:a',
    'libopus',
    '-b:a',
    `${bitrateKbps}k`,
    '-ar',
    '48000',
    '-ac',
    '2',
    '-application',
    'lowdelay',
    '-frame_duration',
    '20',
    '-flush_packets',
    '1',
    '-muxdelay',
    '0',
    '-f',
    'mpegts',
    'pipe:1',
  ];
}

export class OpusTranscoder {
  private readonly source: Track;
  private readonly proc: FfmpegProcess;
  private readonly log: Logger;
  private muxer: TsMuxer;
  private stdin: NodeJS.WritableStream | undefined;
  private sentHeader = false;
  /** Feed time minus ffmpeg output time, learnt from the first Opus frame of each child. */
  private offset90k: number | undefined;
  private lastInputPts90k = 0;
  framesIn = 0;
  framesOut = 0;
  framesDropped = 0;

  constructor(source: Track, ffmpegPath: string, log: Logger, onOpus: (frame: Frame) => void, bitrateKbps = 64) {
    this.source = source;
    this.log = log.child({ part: 'webrtc-opus' });
    this.muxer = new TsMuxer([source], { pcrOffset90k: 0 });
    this.proc = new FfmpegProcess({
      name: 'webrtc opus',
      command: ffmpegPath,
      args: () => opusTranscodeArgs(bitrateKbps),
      log: this.log,
      stdin: 'pipe',
      onSpawn: (child: ChildProcess) => this.wire(child, onOpus),
    });
  }

  start(): void {
    this.proc.start();
  }

  get running(): boolean {
    return this.proc.running;
  }

  private wire(child: ChildProcess, onOpus: (frame: Frame) => void): void {
    // A new child starts a new MPEG-TS stream and a new timestamp mapping.
    this.muxer = new TsMuxer([this.source], { pcrOffset90k: 0 });
    this.sentHeader = false;
    this.offset90k = undefined;
    this.stdin = child.stdin ?? undefined;
    child.stdin?.on('error', () => undefined); // EPIPE when the child dies; the supervisor restarts it
    const demuxer = new TsDemuxer({
      onTracks: () => undefined,
      onFrame: (frame) => {
        // -copyts keeps our (33-bit wrapped) input times; map them back onto the feed clock.
        if (this.offset90k === undefined) {
          const wrapped = this.lastInputPts90k % TS_WRAP;
          this.offset90k = this.lastInputPts90k - wrapped + Math.round((wrapped - frame.pts90k) / TS_WRAP) * TS_WRAP;
        }
        this.framesOut++;
        onOpus({ ...frame, pts90k: frame.pts90k + this.offset90k, dts90k: frame.dts90k + this.offset90k });
      },
      onWarning: (message) => this.log.debug('opus output', { message }),
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      try {
        demuxer.push(chunk);
      } catch (err) {
        this.log.warn('cannot read the Opus transcoder output; restarting it', { err });
        child.kill('SIGTERM');
      }
    });
  }

  /** Queues one audio frame of the source track; drops it when ffmpeg is behind (audio never blocks the feed). */
  write(frame: Frame): void {
    const stdin = this.stdin as (NodeJS.WritableStream & { writableLength?: number }) | undefined;
    if (stdin === undefined || !this.proc.running) return;
    if ((stdin.writableLength ?? 0) > MAX_STDIN_BACKLOG_BYTES) {
      this.framesDropped++;
      return;
    }
    this.framesIn++;
    this.lastInputPts90k = frame.pts90k;
    if (!this.sentHeader) {
      stdin.write(this.muxer.header());
      this.sentHeader = true;
    }
    stdin.write(this.muxer.mux(frame));
  }

  async close(): Promise<void> {
    this.stdin = undefined;
    await this.proc.stop();
  }
}
