// One cheap RTSP player for the load generator (bench/flv-readers.ts with an rtsp:// URL): DESCRIBE,
// SETUP of the video and the audio track, PLAY, one request at a time, over a raw socket; then it
// counts RTP packets from their 12-byte headers only (RFC 3550 5.1), either interleaved on the
// RTSP connection (`$`, channel, u16 length, packet: RFC 2326 10.12) or on a UDP port pair of its
// own per track. A video frame ends at the packet with the marker bit; its first payload bytes
// tell an H.264 keyframe (IDR or SPS, alone, in STAP-A or FU-A). Payloads are skipped by count,
// nothing is copied. Same counters as FlvReader; the RTP clock has a random origin, so the
// lateness (arrival − media time) is not measured (latCount stays 0). Over UDP the sockets are
// the native receiver's (udp-head-receiver.ts: epoll + recvmmsg, datagram heads only) when it is
// built, so one process keeps up with thousands of readers; else dgram's.

import * as dgram from 'node:dgram';
import type * as net from 'node:net';
import { nowMs } from './flv-reader-core.js';
import { connectSharedBuffer, LoadReaderState } from './load-reader-state.js';
import { HEAD_BYTES, UdpHeadReceiver, type DatagramHandler } from './udp-head-receiver.js';

export type RtspLower = 'tcp' | 'udp';

export interface RtspReaderOptions {
  host: string;
  port: number;
  /** The stream's path, e.g. `/feed1`. */
  path: string;
  transport: RtspLower;
  /** The buffer TCP sockets read into (shared by all readers of a process). */
  readBuffer: Buffer;
}

interface Media {
  kind: string;
  control: string;
  /** Interleaved RTP channel (TCP), from the SETUP answer. */
  channel: number;
  udp: dgram.Socket[];
  /** The native receiver's sockets (instead of `udp`). */
  nativeFds: number[];
}

const Phase = { Text: 0, Dollar: 1, Packet: 2, Opaque: 3 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/** H.264 NAL types that start a keyframe's access unit: IDR slice, SPS. */
const isKeyNal = (t: number): boolean => t === 5 || t === 7;

export class RtspReader extends LoadReaderState {
  readonly opts: RtspReaderOptions;
  private socket: net.Socket | undefined;

  private phase: Phase = Phase.Text;
  private text = '';
  private cseq = 0;
  private session: string | undefined;
  private readonly media: Media[] = [];
  private setupAt = 0;
  private videoChannel = -1;
  /** `$` header bytes, then the first bytes of the packet (RTP header and the NAL header bytes). */
  private readonly head = Buffer.alloc(4 + 32);
  private headLen = 0;
  private packetLeft = 0;
  private packetLen = 0;
  private channel = 0;
  /** Extended RTP timestamp of the video, and whether the frame being received is a keyframe. */
  private tsHigh = 0;
  private lastTs32: number | undefined;
  private frameKey = false;

  constructor(opts: RtspReaderOptions) {
    super();
    this.opts = opts;
  }

  get isOpen(): boolean {
    return this.socket !== undefined && this.closedAt === undefined;
  }

  private get baseUrl(): string {
    return `rtsp://${this.opts.host}:${this.opts.port}${this.opts.path}`;
  }

  start(): void {
    this.connectAt = nowMs();
    const socket = connectSharedBuffer(this.opts.host, this.opts.port, this.opts.readBuffer, (buf, n) => this.onData(buf, n));
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      this.connectedAt = nowMs();
      this.request('DESCRIBE', this.baseUrl, ['Accept: application/sdp']);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= err.code ?? err.message;
    });
    socket.on('close', () => {
      this.closedAt = nowMs();
      this.closeUdp();
    });
  }

  stop(): void {
    this.socket?.destroy();
    this.closeUdp();
  }

  private closeUdp(): void {
    for (const m of this.media) {
      for (const s of m.udp.splice(0)) s.close();
      for (const fd of m.nativeFds.splice(0)) UdpHeadReceiver.shared()?.close(fd);
    }
  }

  private fail(message: string): void {
    this.error ??= message;
    this.framingErrors++;
    this.phase = Phase.Opaque;
    this.socket?.destroy();
  }

  private request(method: string, url: string, headers: string[]): void {
    this.cseq++;
    const lines = [`${method} ${url} RTSP/1.0`, `CSeq: ${this.cseq}`, ...headers];
    if (this.session !== undefined) lines.push(`Session: ${this.session}`);
    this.socket?.write(lines.join('\r\n') + '\r\n\r\n');
  }

  // --- TCP input ----------------------------------------------------------------------------

  private onData(buf: Buffer, n: number): void {
    this.bytes += n;
    let i = 0;
    while (i < n) {
      if (this.phase === Phase.Opaque) return;
      if (this.phase === Phase.Packet && this.headLen >= this.head.length) {
        // Past the bytes we look at: skip the rest of the packet by count.
        const k = Math.min(this.packetLeft, n - i);
        this.packetLeft -= k;
        i += k;
        if (this.packetLeft === 0) {
          this.phase = Phase.Dollar;
          this.headLen = 0;
        }
        continue;
      }
      if (this.phase === Phase.Text) {
        // An answer: headers, and a body of Content-Length bytes. `$` starts interleaved data.
        if (this.text.length === 0 && buf[i] === 0x24) {
          this.phase = Phase.Dollar;
          this.headLen = 0;
          continue;
        }
        const chunk = buf.toString('latin1', i, n);
        i = n;
        this.text += chunk;
        this.tryAnswer(buf, n);
        return;
      }
      if (this.phase === Phase.Dollar) {
        if (this.headLen === 0 && buf[i] !== 0x24) {
          // An RTSP answer between packets (none is asked for while playing).
          this.phase = Phase.Text;
          this.text = '';
          continue;
        }
        this.head[this.headLen++] = buf[i++]!;
        if (this.headLen === 4) {
          this.channel = this.head[1]!;
          this.packetLen = this.head.readUInt16BE(2);
          this.packetLeft = this.packetLen;
          this.phase = Phase.Packet;
          if (this.packetLeft === 0) this.phase = Phase.Dollar;
          this.headLen = 4;
        }
        continue;
      }
      // Phase.Packet, still gathering the bytes we look at.
      const want = Math.min(this.head.length - this.headLen, this.packetLeft, n - i);
      buf.copy(this.head, this.headLen, i, i + want);
      this.headLen += want;
      this.packetLeft -= want;
      i += want;
      if (this.headLen - 4 >= Math.min(this.packetLen, this.head.length - 4)) {
        if (this.channel === this.videoChannel) this.onVideoPacket(this.head, 4, this.headLen);
        this.headLen = this.head.length; // skip the rest
      }
      if (this.packetLeft === 0) {
        this.phase = Phase.Dollar;
        this.headLen = 0;
      }
    }
  }

  /** A whole answer in `text`: handles it; interleaved bytes after the PLAY answer are walked. */
  private tryAnswer(buf: Buffer, n: number): void {
    const end = this.text.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.text.slice(0, end);
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.text.length < end + 4 + length) return;
    const body = this.text.slice(end + 4, end + 4 + length);
    const rest = this.text.length - (end + 4 + length);
    this.text = '';
    const status = Number(/^RTSP\/1\.0 (\d{3})/.exec(head)?.[1] ?? 0);
    if (status !== 200) {
      this.status = status;
      this.fail(`RTSP ${status || 'bad answer'}: ${head.split('\r\n')[0]}`);
      return;
    }
    this.onAnswer(head, body);
    if (rest > 0 && this.phase !== Phase.Opaque) {
      // Interleaved data right after the PLAY answer, in the same read.
      this.phase = Phase.Dollar;
      this.headLen = 0;
      const tail = Buffer.from(buf.subarray(n - rest, n));
      this.bytes -= tail.length; // counted already
      this.onData(tail, tail.length);
    }
  }

  private onAnswer(head: string, body: string): void {
    const session = /\r\nsession:\s*([^;\r\n]+)/i.exec(head)?.[1];
    if (session !== undefined) this.session = session.trim();
    if (this.cseq === 1) {
      this.parseSdp(body);
      if (this.media.length === 0) {
        this.fail('the SDP has no video or audio');
        return;
      }
      this.setupNext().catch((err: unknown) => this.fail(String(err)));
      return;
    }
    if (this.setupAt < this.media.length) {
      const m = this.media[this.setupAt - 1]!;
      const interleaved = /interleaved=(\d+)/i.exec(head)?.[1];
      if (interleaved !== undefined) m.channel = Number(interleaved);
      if (m.kind === 'video') this.videoChannel = m.channel;
      this.setupNext().catch((err: unknown) => this.fail(String(err)));
      return;
    }
    if (this.setupAt === this.media.length) {
      const m = this.media[this.setupAt - 1]!;
      const interleaved = /interleaved=(\d+)/i.exec(head)?.[1];
      if (interleaved !== undefined) m.channel = Number(interleaved);
      if (m.kind === 'video') this.videoChannel = m.channel;
      this.setupAt++;
      this.request('PLAY', this.baseUrl, ['Range: npt=0.000-']);
      return;
    }
    // The PLAY answer.
    this.headAt = nowMs();
    this.status = 200;
    this.phase = Phase.Dollar;
    this.headLen = 0;
  }

  private parseSdp(sdp: string): void {
    let current: Media | undefined;
    for (const line of sdp.split(/\r?\n/)) {
      if (line.startsWith('m=')) {
        const kind = line.slice(2).split(' ')[0] ?? '';
        current = kind === 'video' || kind === 'audio' ? { kind, control: '', channel: -1, udp: [], nativeFds: [] } : undefined;
        if (current !== undefined) this.media.push(current);
      } else if (line.startsWith('a=control:') && current !== undefined) {
        current.control = line.slice('a=control:'.length).trim();
      }
    }
  }

  private controlUrl(m: Media): string {
    if (/^rtsp:\/\//i.test(m.control)) return m.control;
    return `${this.baseUrl.replace(/\/$/, '')}/${m.control}`;
  }

  private async setupNext(): Promise<void> {
    const m = this.media[this.setupAt]!;
    this.setupAt++;
    if (this.opts.transport === 'tcp') {
      const ch = 2 * (this.setupAt - 1);
      this.request('SETUP', this.controlUrl(m), [`Transport: RTP/AVP/TCP;unicast;interleaved=${ch}-${ch + 1}`]);
      return;
    }
    const receiver = UdpHeadReceiver.shared();
    if (receiver !== undefined) {
      const video = m.kind === 'video';
      const port = nativeUdpPair(
        receiver,
        m,
        (buf, at, length) => {
          this.bytes += length;
          if (video) this.onVideoPacket(buf, at, at + Math.min(length, HEAD_BYTES));
        },
        (_, __, length) => {
          this.bytes += length;
        },
      );
      if (typeof port === 'string') {
        this.fail(`UDP ports: ${port}`);
        return;
      }
      if (this.closedAt !== undefined) {
        this.closeUdp();
        return;
      }
      this.request('SETUP', this.controlUrl(m), [`Transport: RTP/AVP;unicast;client_port=${port}-${port + 1}`]);
      return;
    }
    try {
      const [rtp, rtcp] = await udpPair();
      m.udp.push(rtp, rtcp);
      const video = m.kind === 'video';
      rtp.on('message', (msg: Buffer) => {
        this.bytes += msg.length;
        if (video) this.onVideoPacket(msg, 0, msg.length);
      });
      rtcp.on('message', (msg: Buffer) => {
        this.bytes += msg.length;
      });
      if (this.closedAt !== undefined) {
        this.closeUdp();
        return;
      }
      const port = rtp.address().port;
      this.request('SETUP', this.controlUrl(m), [`Transport: RTP/AVP;unicast;client_port=${port}-${port + 1}`]);
    } catch (err) {
      this.fail(`UDP ports: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // --- RTP ------------------------------------------------------------------------------------

  /** A video RTP packet whose first bytes are p[at, end). */
  private onVideoPacket(p: Buffer, at: number, end: number): void {
    if (end - at < 12 || p[at]! >> 6 !== 2) {
      this.framingErrors++;
      return;
    }
    const marker = (p[at + 1]! & 0x80) !== 0;
    const ts32 = p.readUInt32BE(at + 4);
    // The NAL header after the fixed header and the CSRCs (an extension header, rare, is not skipped).
    const nal = at + 12 + 4 * (p[at]! & 0x0f);
    if (nal < end) {
      const type = p[nal]! & 0x1f;
      if (isKeyNal(type)) this.frameKey = true;
      else if (type === 24 && nal + 3 < end && isKeyNal(p[nal + 3]! & 0x1f)) this.frameKey = true;
      else if (type === 28 && nal + 1 < end && (p[nal + 1]! & 0x80) !== 0 && isKeyNal(p[nal + 1]! & 0x1f)) this.frameKey = true;
    }
    if (!marker) return;
    if (this.lastTs32 !== undefined && ts32 < this.lastTs32 && this.lastTs32 - ts32 > 0x8000_0000) this.tsHigh += 0x1_0000_0000;
    this.lastTs32 = ts32;
    const key = this.frameKey;
    this.frameKey = false;
    this.videoFrames++;
    if (key) this.keyframes++;
    if (this.firstFrameAt === undefined) {
      this.firstFrameAt = nowMs();
      this.firstFrameKeyframe = key;
    }
    this.lastVideoTs = (this.tsHigh + ts32) / 90;
  }
}

/** The native receiver's two sockets on 127.0.0.1, an even port and the next (RFC 3550 11): the RTP port, or why not. */
function nativeUdpPair(receiver: UdpHeadReceiver, m: Media, onRtp: DatagramHandler, onRtcp: DatagramHandler): number | string {
  let why = '';
  for (let attempt = 0; attempt < 50; attempt++) {
    const rtp = receiver.open('127.0.0.1', 0, onRtp);
    if (typeof rtp === 'string') return rtp;
    if (rtp.port % 2 !== 0 || rtp.port === 65535) {
      receiver.close(rtp.fd);
      continue;
    }
    const rtcp = receiver.open('127.0.0.1', rtp.port + 1, onRtcp);
    if (typeof rtcp === 'string') {
      why = rtcp;
      receiver.close(rtp.fd);
      continue;
    }
    m.nativeFds.push(rtp.fd, rtcp.fd);
    return rtp.port;
  }
  return `no free even/odd UDP port pair in 50 tries (${why})`;
}

/** Two UDP sockets on 127.0.0.1, on an even port and the next one (RFC 3550 11). */
async function udpPair(): Promise<[dgram.Socket, dgram.Socket]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const rtp = dgram.createSocket('udp4');
    const port = await bind(rtp, 0);
    if (port === undefined || port % 2 !== 0 || port === 65535) {
      rtp.close();
      continue;
    }
    const rtcp = dgram.createSocket('udp4');
    if ((await bind(rtcp, port + 1)) === undefined) {
      rtp.close();
      rtcp.close();
      continue;
    }
    for (const s of [rtp, rtcp]) s.setRecvBufferSize(1 << 20);
    return [rtp, rtcp];
  }
  throw new Error('no free even/odd UDP port pair in 50 tries');
}

function bind(s: dgram.Socket, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const onError = (): void => resolve(undefined);
    s.once('error', onError);
    s.bind(port, '127.0.0.1', () => {
      s.removeListener('error', onError);
      resolve(s.address().port);
    });
  });
}
