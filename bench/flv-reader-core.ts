// One cheap HTTP-FLV reader for the benchmarks: a raw TCP socket that writes a GET and then counts
// the bytes it receives. It walks the FLV tag framing without touching tag bodies (it reads each
// tag's 11-byte header plus the first two body bytes of video tags, and skips the rest by size),
// which is enough to time the first video frame, follow the media timestamps, and catch a broken
// stream (a PreviousTagSize that does not match the tag before it).
//
// Sockets use `onread` with one buffer shared by every reader of the process: no Buffer is
// allocated per read, so a load generator of a thousand readers stays light.
//
// With `command` it reads no socket: it runs the command (an ffmpeg that remuxes what it reads,
// e.g. an SRT reader, to FLV on its stdout) and walks that FLV the same way.

import { spawn, type ChildProcess } from 'node:child_process';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { connectSharedBuffer, LoadReaderState } from './load-reader-state.js';

/** Wall-clock time in ms (epoch based, sub-ms resolution): comparable between processes. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

const HEAD_MAX = 8192;
const CRLFCRLF = Buffer.from('\r\n\r\n');

const Phase = { Head: 0, FlvHeader: 1, Tags: 2, Opaque: 3 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

export interface FlvReaderOptions {
  host: string;
  port: number;
  /** Request path, e.g. /feed1.flv */
  path: string;
  /** The buffer sockets read into (shared by all readers of a process). */
  readBuffer: Buffer;
  /** Called for each video frame tag (not sequence headers): arrival time and the tag's timestamp. */
  onVideoFrame?: (arrivalMs: number, timestampMs: number) => void;
  /** Called once when the socket is closed. */
  onClose?: (reader: FlvReader) => void;
  /** Instead of an HTTP request: a command whose stdout is FLV (no HTTP head), stopped by its PID. */
  command?: readonly [string, readonly string[]];
}

export class FlvReader extends LoadReaderState {
  readonly opts: FlvReaderOptions;
  private socket: net.Socket | undefined;
  private child: ChildProcess | undefined;

  // Timing, counters and lateness: LoadReaderState; FLV's own:
  firstVideoTagAt: number | undefined;
  tags = 0;
  audioTags = 0;

  // Parser state
  private phase: Phase = Phase.Head;
  private readonly acc = Buffer.alloc(HEAD_MAX);
  private accLen = 0;
  private want = 0;
  private skip = 0;
  private expectedPrevSize = 0;
  private tagStartAt = 0;
  private chunked = false;
  private cState = 0;
  private cLeft = 0;
  private cSizeOpen = true;

  constructor(opts: FlvReaderOptions) {
    super();
    this.opts = opts;
  }

  get isOpen(): boolean {
    return (this.socket !== undefined || this.child !== undefined) && this.closedAt === undefined;
  }

  start(): void {
    this.connectAt = nowMs();
    if (this.opts.command !== undefined) {
      this.startCommand(this.opts.command);
      return;
    }
    const socket = connectSharedBuffer(this.opts.host, this.opts.port, this.opts.readBuffer, (buf, n) => this.onData(buf, n));
    this.socket = socket;
    socket.on('connect', () => {
      this.connectedAt = nowMs();
      socket.write(
        `GET ${this.opts.path} HTTP/1.1\r\nHost: ${this.opts.host}:${this.opts.port}\r\nUser-Agent: feedcast-bench\r\nAccept: */*\r\n\r\n`,
      );
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= err.code ?? err.message;
    });
    socket.on('close', () => {
      this.closedAt = nowMs();
      this.opts.onClose?.(this);
    });
  }

  private startCommand([cmd, args]: readonly [string, readonly string[]]): void {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    // No HTTP head: the FLV header comes first.
    this.status = 200;
    this.phase = Phase.FlvHeader;
    this.want = 9;
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      this.connectedAt ??= nowMs();
      this.onData(d, d.length);
    });
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-300)));
    child.on('error', (err) => (this.error ??= err.message));
    child.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) this.error ??= `${cmd} exited ${code}: ${stderr.trim()}`;
      this.closedAt = nowMs();
      this.opts.onClose?.(this);
    });
  }

  stop(): void {
    this.socket?.destroy();
    if (this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private onData(buf: Buffer, n: number): void {
    this.bytes += n;
    if (this.phase === Phase.Opaque) return;
    if (this.phase === Phase.Tags && this.skip >= n && (!this.chunked || (this.cState === 1 && this.cLeft >= n))) {
      this.skip -= n; // the common case: the whole read is inside a tag body
      if (this.chunked) this.cLeft -= n;
      return;
    }
    const at = nowMs();
    if (this.chunked) this.dechunk(buf, 0, n, at);
    else this.parse(buf, 0, n, at);
  }

  /**
   * Transfer-Encoding: chunked (Node-Media-Server answers so): strips the chunk framing and hands
   * the data to parse(). cState 0 = in a size line, 1 = in data, 2 = in the CRLF after data.
   */
  private dechunk(buf: Buffer, start: number, end: number, at: number): void {
    let i = start;
    while (i < end) {
      if (this.cState === 1) {
        const k = Math.min(this.cLeft, end - i);
        this.parse(buf, i, i + k, at);
        if (this.phase === Phase.Opaque) return;
        this.cLeft -= k;
        i += k;
        if (this.cLeft === 0) this.cState = 2;
        continue;
      }
      const c = buf[i++]!;
      if (c !== 0x0a) {
        if (this.cState === 0 && this.cSizeOpen) {
          const d =
            c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
          if (d >= 0) this.cLeft = this.cLeft * 16 + d;
          else this.cSizeOpen = false; // chunk extensions or CR
        }
        continue;
      }
      if (this.cState === 2) {
        this.cState = 0;
        this.cLeft = 0;
        this.cSizeOpen = true;
        continue;
      }
      if (this.cLeft === 0) {
        this.fail('chunked body ended');
        return;
      }
      this.cState = 1;
    }
  }

  /** Copies bytes into `acc` until it holds `want` bytes; returns the new read position. */
  private fill(buf: Buffer, i: number, end: number): number {
    const k = Math.min(this.want - this.accLen, end - i);
    buf.copy(this.acc, this.accLen, i, i + k);
    this.accLen += k;
    return i + k;
  }

  private parse(buf: Buffer, start: number, end: number, at: number): void {
    let i = start;
    while (i < end) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, end - i);
        this.skip -= k;
        i += k;
        continue;
      }
      if (this.phase === Phase.Head) {
        const before = this.accLen;
        const k = Math.min(HEAD_MAX - before, end - i);
        buf.copy(this.acc, before, i, i + k);
        this.accLen += k;
        const p = this.acc.subarray(0, this.accLen).indexOf(CRLFCRLF);
        if (p < 0) {
          if (this.accLen >= HEAD_MAX) this.fail('response head larger than 8 KiB');
          return;
        }
        this.headAt = at;
        const statusLine = this.acc.toString('latin1', 0, Math.min(p, 200)).split('\r\n')[0] ?? '';
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
        this.status = m?.[1] === undefined ? undefined : Number(m[1]);
        i += p + 4 - before;
        this.accLen = 0;
        if (this.status !== 200) {
          this.fail(`HTTP ${this.status ?? '?'}: ${statusLine}`);
          return;
        }
        this.phase = Phase.FlvHeader;
        this.want = 9;
        if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(this.acc.toString('latin1', 0, p))) {
          this.chunked = true;
          this.dechunk(buf, i, end, at);
          return;
        }
        continue;
      }
      if (this.accLen === 0) this.tagStartAt = at;
      i = this.fill(buf, i, end);
      if (this.accLen < this.want) return;
      if (this.phase === Phase.FlvHeader) {
        if (this.acc.toString('latin1', 0, 3) !== 'FLV') {
          this.fail('body does not start with an FLV header');
          return;
        }
        this.skip = Math.max(0, this.acc.readUInt32BE(5) - 9);
        this.phase = Phase.Tags;
        this.expectedPrevSize = 0;
        this.want = 15; // PreviousTagSize + tag header
        this.accLen = 0;
        continue;
      }
      this.onTagHeader(at);
    }
  }

  /** acc holds PreviousTagSize(4) + tag header(11) [+ up to 2 video body bytes]. */
  private onTagHeader(at: number): void {
    const a = this.acc;
    const type = a[4]! & 0x1f;
    const size = (a[5]! << 16) | (a[6]! << 8) | a[7]!;
    if (type === 9 && this.want === 15 && size > 0) {
      this.want = 15 + Math.min(size, 2); // look at the video frame type and packet type
      return;
    }
    if (a.readUInt32BE(0) !== this.expectedPrevSize) this.framingErrors++;
    if (type !== 8 && type !== 9 && type !== 18) {
      this.framingErrors++;
      this.fail(`lost the FLV tag framing (tag type ${type})`);
      return;
    }
    const ts = ((a[8]! << 16) | (a[9]! << 8) | a[10]! | (a[11]! << 24)) >>> 0;
    this.tags++;
    if (type === 8) this.audioTags++;
    else if (type === 9) this.onVideoTag(ts, size, at);
    const consumed = this.want - 15;
    this.skip = size - consumed;
    this.expectedPrevSize = 11 + size;
    this.want = 15;
    this.accLen = 0;
  }

  private onVideoTag(ts: number, size: number, at: number): void {
    this.firstVideoTagAt ??= this.tagStartAt;
    if (size < 1) return;
    const b0 = this.acc[15]!;
    let isFrame: boolean;
    if (b0 & 0x80) {
      const packetType = b0 & 0x0f; // enhanced RTMP/FLV: 1 = CodedFrames, 3 = CodedFramesX
      isFrame = packetType === 1 || packetType === 3;
    } else {
      const codec = b0 & 0x0f;
      isFrame = codec === 7 || codec === 12 ? size >= 2 && this.acc[16] === 1 : true;
    }
    if (!isFrame) return;
    const key = (b0 & 0x70) >> 4 === 1; // frame type 1 (the ExHeader bit 7 aside)
    this.videoFrames++;
    if (key) this.keyframes++;
    if (this.firstFrameAt === undefined) {
      this.firstFrameAt = this.tagStartAt;
      this.firstFrameKeyframe = key;
    }
    this.lastVideoTs = ts;
    if (this.sampling) {
      const lat = at - ts;
      this.latCount++;
      this.latSum += lat;
      if (lat > this.latMax) this.latMax = lat;
      if (lat < this.latMin) this.latMin = lat;
    }
    this.opts.onVideoFrame?.(at, ts);
  }

  private fail(reason: string): void {
    this.error ??= reason;
    this.phase = Phase.Opaque;
  }
}

/** Nearest-rank percentile of a sorted array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export interface Summary {
  n: number;
  min: number | null;
  p50: number | null;
  p95: number | null;
  max: number | null;
  mean: number | null;
}

/** What a load generator reports for one load (flv-readers.ts, rtmp-readers.ts; whep-load.ts adds to it), as peers.ts reads it. */
export interface LoadReport {
  readers: number;
  window: { startMs: number; endMs: number; seconds: number };
  statuses: Record<string, number>;
  errors: Record<string, number>;
  gotFirstFrame: number;
  framingErrors: number;
  kbps: Summary;
  fullRate: { threshold: number | null; count: number };
  realtime: Summary;
  ttffMs: Summary;
  latenessRawMs: { meanPerReader: Summary; maxPerReader: Summary };
  generator: { cpuPct: number; eventLoopDelayP99Ms: number };
}

export function summarize(values: readonly number[], digits = 1): Summary {
  const s = [...values].sort((x, y) => x - y);
  const r = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : Number(v.toFixed(digits)));
  const mean = s.length === 0 ? undefined : s.reduce((x, y) => x + y, 0) / s.length;
  return {
    n: s.length,
    min: r(s[0]),
    p50: r(percentile(s, 50)),
    p95: r(percentile(s, 95)),
    max: r(s[s.length - 1]),
    mean: r(mean),
  };
}
