// One cheap RTMP player for the load generator (bench/flv-readers.ts with an rtmp:// URL): a raw
// socket that does the simple handshake, sends connect, createStream, play(name) and Set Buffer
// Length at once without waiting for the answers (every server here gives the first stream id 1),
// then walks the chunk stream reading chunk headers only: payload bytes are skipped by count,
// except the 4 bytes of Set Chunk Size and Window Acknowledgement Size and the first 2 bytes of
// each video message (frame or sequence header, keyframe or not). No message is reassembled or
// copied. Same counters as FlvReader. Like ffmpeg's client (libavformat/rtmpproto.c) it asks for
// a 3000 ms buffer and acknowledges every half of the server's window, so the server does what
// it does for real players (measured: neither changes Feedcast's CPU, docs/performance.md).

import type * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { encodeRtmpMessages } from '../src/formats/rtmp/chunk-writer.js';
import { UserControlEvent, ackMessage, commandMessage, userControlMessage } from '../src/formats/rtmp/messages.js';
import { nowMs } from './flv-reader-core.js';
import { connectSharedBuffer, LoadReaderState } from './load-reader-state.js';

const HANDSHAKE = 1536;
const TYPE_SET_CHUNK_SIZE = 1;
const TYPE_VIDEO = 9;
const TYPE_WINDOW_ACK_SIZE = 5;
/** ffmpeg's default `rtmp_buffer`. */
const BUFFER_MS = 3000;

export interface RtmpReaderOptions {
  host: string;
  port: number;
  app: string;
  name: string;
  /** The buffer sockets read into (shared by all readers of a process). */
  readBuffer: Buffer;
  onVideoFrame?: (arrivalMs: number, timestampMs: number) => void;
}

/** Options of a tap: a walker of a publisher's chunk stream (C0 C1 C2, then chunks), fed by feed(). */
export type RtmpTapOptions = Pick<RtmpReaderOptions, 'onVideoFrame'>;

interface CsState {
  len: number;
  type: number;
  ts: number;
  delta: number;
  remaining: number;
  extended: boolean;
}

const Phase = { Handshake: 0, Header: 1, Payload: 2, Opaque: 3 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

export class RtmpReader extends LoadReaderState {
  readonly opts: RtmpReaderOptions;
  private socket: net.Socket | undefined;

  private phase: Phase = Phase.Handshake;
  private handshakeLeft = 1 + 2 * HANDSHAKE;
  private readonly s1 = Buffer.alloc(HANDSHAKE);
  private chunkSize = 128;
  private readonly hdr = Buffer.alloc(18);
  private hdrLen = 0;
  private readonly streams = new Map<number, CsState>();
  private cur: CsState | undefined;
  /** Payload bytes left in the current chunk. */
  private chunkLeft = 0;
  /** Payload offset within the current message (to catch its first bytes). */
  private msgOffset = 0;
  private readonly peek = Buffer.alloc(4);
  private msgStartAt = 0;

  private readonly passive: boolean;
  /** Acknowledge every this many bytes (half the server's window, as ffmpeg does); 0: not asked. */
  private ackEvery = 0;
  private ackedAt = 0;

  constructor(opts: RtmpReaderOptions, passive = false) {
    super();
    this.opts = opts;
    this.passive = passive;
  }

  /**
   * A walker of the other direction: the chunk stream a publisher sends (its C0+C1+C2 are as
   * long as S0+S1+S2), fed with feed(); reports each video frame's departure via onVideoFrame.
   */
  static tap(opts: RtmpTapOptions): RtmpReader {
    return new RtmpReader({ host: '', port: 0, app: '', name: '', readBuffer: Buffer.alloc(0), ...opts }, true);
  }

  /** Bytes seen by a tap. */
  feed(buf: Buffer): void {
    this.onData(buf, buf.length);
  }

  get isOpen(): boolean {
    return this.socket !== undefined && this.closedAt === undefined;
  }

  start(): void {
    this.connectAt = nowMs();
    const socket = connectSharedBuffer(this.opts.host, this.opts.port, this.opts.readBuffer, (buf, n) => this.onData(buf, n));
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      this.connectedAt = nowMs();
      const c0c1 = Buffer.alloc(1 + HANDSHAKE);
      c0c1[0] = 3;
      randomBytes(HANDSHAKE - 8).copy(c0c1, 9);
      socket.write(c0c1);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= err.code ?? err.message;
    });
    socket.on('close', () => {
      this.closedAt = nowMs();
    });
  }

  stop(): void {
    this.socket?.destroy();
  }

  private onData(buf: Buffer, n: number): void {
    this.bytes += n;
    if (this.phase === Phase.Opaque) return;
    if (this.ackEvery > 0 && this.bytes - this.ackedAt >= this.ackEvery) {
      this.ackedAt = this.bytes;
      this.socket?.write(encodeRtmpMessages([ackMessage(this.bytes >>> 0)], 128));
    }
    // The common case: the whole read is inside a chunk's payload, past the bytes we look at.
    if (this.phase === Phase.Payload && this.chunkLeft > n && this.msgOffset >= 4) {
      this.chunkLeft -= n;
      this.msgOffset += n;
      if (this.cur !== undefined) this.cur.remaining -= n;
      return;
    }
    try {
      this.parse(buf, n);
    } catch (err) {
      this.framingErrors++;
      this.error ??= err instanceof Error ? err.message : String(err);
      this.phase = Phase.Opaque;
    }
  }

  private parse(buf: Buffer, end: number): void {
    let i = 0;
    while (i < end) {
      if (this.phase === Phase.Handshake) {
        const k = Math.min(this.handshakeLeft, end - i);
        // S1 is bytes 1..1536 of the reply: keep it to echo as C2.
        const done = 1 + 2 * HANDSHAKE - this.handshakeLeft;
        for (let j = 0; j < k; j++) {
          const at = done + j;
          if (at >= 1 && at <= HANDSHAKE) this.s1[at - 1] = buf[i + j]!;
        }
        this.handshakeLeft -= k;
        i += k;
        if (this.handshakeLeft === 0) this.afterHandshake();
        continue;
      }
      if (this.phase === Phase.Header) {
        this.hdr[this.hdrLen++] = buf[i++]!;
        this.tryHeader();
        continue;
      }
      if (this.phase === Phase.Payload) {
        const k = Math.min(this.chunkLeft, end - i);
        const cur = this.cur!;
        if (this.msgOffset < 4) {
          for (let j = 0; j < k && this.msgOffset + j < 4; j++) this.peek[this.msgOffset + j] = buf[i + j]!;
          const before = this.msgOffset;
          if (before < 2 && before + k >= 2 && cur.type === TYPE_VIDEO) this.onVideoStart(cur);
        }
        this.msgOffset += k;
        this.chunkLeft -= k;
        cur.remaining -= k;
        i += k;
        if (this.chunkLeft === 0) {
          if (cur.remaining === 0) this.onMessageEnd(cur);
          this.phase = Phase.Header;
          this.hdrLen = 0;
        }
        continue;
      }
      return;
    }
  }

  private afterHandshake(): void {
    this.headAt = nowMs();
    this.status = 0;
    this.phase = Phase.Header;
    this.hdrLen = 0;
    if (this.passive) return;
    const socket = this.socket!;
    const url = `rtmp://${this.opts.host}:${this.opts.port}/${this.opts.app}`;
    // C2 and the three commands in one write: written apart, Nagle holds the second write until
    // the server ACKs the first, and the server delays that ACK (~40 ms on Linux): that wait
    // was most of this client's time to first frame, not the server's (docs/performance.md).
    const commands = encodeRtmpMessages(
      [
        commandMessage(0, 'connect', 1, {
          app: this.opts.app,
          tcUrl: url,
          flashVer: 'LNX 9,0,124,2',
          fpad: false,
          capabilities: 15,
          audioCodecs: 3191,
          videoCodecs: 252,
          videoFunction: 1,
          objectEncoding: 0,
        }),
        commandMessage(0, 'createStream', 2, null),
        { ...commandMessage(1, 'play', 0, null, this.opts.name, -1000), csid: 8 },
        userControlMessage(UserControlEvent.setBufferLength, 1, BUFFER_MS),
      ],
      128,
    );
    socket.write(Buffer.concat([this.s1, commands]));
  }

  /** Parses the chunk header in `hdr` once it is complete. */
  private tryHeader(): void {
    const h = this.hdr;
    const fmt = h[0]! >> 6;
    const low = h[0]! & 0x3f;
    const basic = low === 0 ? 2 : low === 1 ? 3 : 1;
    if (this.hdrLen < basic) return;
    const csid = low === 0 ? 64 + h[1]! : low === 1 ? 64 + h[1]! + h[2]! * 256 : low;
    const mh = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
    if (this.hdrLen < basic + mh) return;
    let st = this.streams.get(csid);
    if (st === undefined) {
      if (fmt !== 0) throw new Error(`chunk stream ${csid} starts with a type-${fmt} header`);
      st = { len: 0, type: 0, ts: 0, delta: 0, remaining: 0, extended: false };
      this.streams.set(csid, st);
    }
    let tsField = 0;
    if (fmt < 3) tsField = h.readUIntBE(basic, 3);
    const extended = fmt < 3 ? tsField === 0xffffff : st.extended;
    const total = basic + mh + (extended ? 4 : 0);
    if (this.hdrLen < total) return;
    if (extended) tsField = h.readUInt32BE(basic + mh);
    st.extended = extended;
    const newMessage = fmt < 3 || st.remaining === 0;
    if (fmt === 0) {
      st.ts = tsField;
      st.delta = 0;
    } else if (fmt === 1 || fmt === 2) {
      st.delta = tsField;
      st.ts += tsField;
    } else if (newMessage) {
      st.ts += st.delta;
    }
    if (fmt === 0 || fmt === 1) {
      st.len = h.readUIntBE(basic + 3, 3);
      st.type = h[basic + 6]!;
    }
    if (newMessage) {
      st.remaining = st.len;
      this.msgOffset = 0;
      this.msgStartAt = nowMs();
    } else {
      this.msgOffset = st.len - st.remaining;
    }
    this.cur = st;
    this.chunkLeft = Math.min(this.chunkSize, st.remaining);
    this.phase = Phase.Payload;
    if (this.chunkLeft === 0) {
      this.onMessageEnd(st);
      this.phase = Phase.Header;
      this.hdrLen = 0;
    }
  }

  private onVideoStart(st: CsState): void {
    const b0 = this.peek[0]!;
    const codec = b0 & 0x0f;
    const isFrame = b0 & 0x80 ? (b0 & 0x0f) === 1 || (b0 & 0x0f) === 3 : codec === 7 || codec === 12 ? this.peek[1] === 1 : true;
    if (!isFrame) return;
    const key = (b0 & 0x70) >> 4 === 1;
    this.videoFrames++;
    if (key) this.keyframes++;
    if (this.firstFrameAt === undefined) {
      this.firstFrameAt = this.msgStartAt;
      this.firstFrameKeyframe = key;
    }
    this.lastVideoTs = st.ts;
    if (this.sampling) {
      const lat = this.msgStartAt - st.ts;
      this.latCount++;
      this.latSum += lat;
      if (lat > this.latMax) this.latMax = lat;
      if (lat < this.latMin) this.latMin = lat;
    }
    this.opts.onVideoFrame?.(this.msgStartAt, st.ts);
  }

  private onMessageEnd(st: CsState): void {
    if (st.type === TYPE_SET_CHUNK_SIZE && st.len >= 4) {
      const size = this.peek.readUInt32BE(0) & 0x7fffffff;
      if (size < 1) throw new Error(`Set Chunk Size ${size}`);
      this.chunkSize = size;
    } else if (st.type === TYPE_WINDOW_ACK_SIZE && st.len >= 4 && !this.passive) {
      this.ackEvery = Math.floor(this.peek.readUInt32BE(0) / 2);
    }
  }
}
