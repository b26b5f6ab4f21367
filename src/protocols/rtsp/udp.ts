// UDP for RTP: a pair of sockets on consecutive ports (RTP on the even one, RTCP on the next, as
// RFC 3550 11 asks), bound on the address the RTSP client reached, and a bounded sender: a frame's
// packets in one sendmmsg() through the native module (native-udp-send.ts), else one dgram send()
// each.

import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { randomInt } from 'node:crypto';
import { RtspError } from './session.js';
import { udpHandle } from '../udp-handle.js';
import { nativeUdpSend } from './native-udp-send.js';

export interface UdpPair {
  readonly rtp: Socket;
  readonly rtcp: Socket;
  readonly ports: [number, number];
  close(): void;
}

export interface PortRange {
  min: number;
  max: number;
}

export const DEFAULT_RTP_PORTS: PortRange = { min: 20000, max: 59998 };

function bindOne(socket: Socket, port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const onError = (): void => resolve(false);
    socket.once('error', onError);
    socket.bind({ port, address: host, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(true);
    });
  });
}

/** Binds an even/odd port pair on `host`; tries random even ports in `range` up to 50 times. */
export async function bindUdpPair(
  host: string,
  range: PortRange = DEFAULT_RTP_PORTS,
  onError: (err: Error) => void = () => undefined,
): Promise<UdpPair> {
  const type = isIPv6(host) ? 'udp6' : 'udp4';
  const evenMin = range.min + (range.min % 2);
  const pairs = Math.floor((range.max - evenMin) / 2) + 1;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = evenMin + 2 * randomInt(0, Math.max(1, pairs));
    const rtp = createSocket({ type, reuseAddr: false });
    if (!(await bindOne(rtp, port, host))) {
      rtp.close();
      continue;
    }
    const rtcp = createSocket({ type, reuseAddr: false });
    if (!(await bindOne(rtcp, port + 1, host))) {
      rtp.close();
      rtcp.close();
      continue;
    }
    // Send errors (ICMP unreachable reported back, no route) come as events: count them, never crash.
    rtp.on('error', onError);
    rtcp.on('error', onError);
    let closed = false;
    return {
      rtp,
      rtcp,
      ports: [port, port + 1],
      close: () => {
        if (closed) return;
        closed = true;
        rtp.close();
        rtcp.close();
      },
    };
  }
  throw new RtspError(503, `no free UDP port pair on ${host} in ${range.min}-${range.max} after 50 attempts; try RTP over TCP`);
}

/** Datagrams waiting in a socket's send queue past which packets are dropped, not queued. */
export const MAX_UDP_SEND_QUEUE = 512;

/** Sends unless the socket's queue is full; returns false when the packet was dropped. */
export function sendBounded(socket: Socket, packet: Buffer, port: number, address: string): boolean {
  if (socket.getSendQueueCount() > MAX_UDP_SEND_QUEUE) return false;
  socket.send(packet, port, address);
  return true;
}

/** Where the RTP packets of an interleaved chunk lie (`$`, channel, u16 length, packet: rtp-output.ts). */
export interface RtpPacketBounds {
  /** Packet i is chunk[bounds[2i], bounds[2i+1]). */
  readonly bounds: Int32Array;
  readonly count: number;
  /** Bytes of the packets, and of their payloads (what sender reports count, RFC 3550 6.4.1). */
  readonly bytes: number;
  readonly payloadOctets: number;
}

const boundsOfChunk = new WeakMap<Buffer, RtpPacketBounds>();

/** The packets of a chunk, found once per chunk: every UDP reader of the feed sends the same chunk. */
export function rtpPacketBounds(chunk: Buffer): RtpPacketBounds {
  const known = boundsOfChunk.get(chunk);
  if (known !== undefined) return known;
  let count = 0;
  for (let pos = 0; pos + 4 <= chunk.length && chunk[pos] === 0x24; pos += 4 + chunk.readUInt16BE(pos + 2)) count++;
  const bounds = new Int32Array(2 * count);
  let bytes = 0;
  let payloadOctets = 0;
  let pos = 0;
  let n = 0;
  for (; n < count; n++) {
    const length = chunk.readUInt16BE(pos + 2);
    if (pos + 4 + length > chunk.length) break; // a truncated last packet is not sent
    bounds[2 * n] = pos + 4;
    bounds[2 * n + 1] = pos + 4 + length;
    bytes += length;
    payloadOctets += Math.max(0, length - 12);
    pos += 4 + length;
  }
  const made = { bounds, count: n, bytes, payloadOctets };
  boundsOfChunk.set(chunk, made);
  return made;
}

/**
 * Sends the packets of `chunk` to address:port, in order: through the native module in one
 * sendmmsg() while Node holds none of this socket's datagrams, and what the kernel did not take
 * (or everything, without the module) through dgram, bounded by MAX_UDP_SEND_QUEUE. Returns how
 * many of the packets were sent or queued: the first ones; a frame cut short is not finished later.
 * `stats.nativeSends` counts the calls that went through the native module.
 */
export function sendRtpPackets(
  socket: Socket,
  chunk: Buffer,
  packets: RtpPacketBounds,
  port: number,
  address: string,
  stats: { nativeSends: number },
): number {
  const { bounds, count } = packets;
  let from = 0;
  const native = nativeUdpSend;
  if (native !== undefined && count > 0 && socket.getSendQueueCount() === 0) {
    const handle = udpHandle(socket);
    if (handle === null) return 0; // closed
    const fd = handle?.fd;
    if (typeof fd === 'number' && fd >= 0) {
      from = Math.max(0, native.sendPackets(fd, chunk, bounds, count, address, port));
      stats.nativeSends++;
    }
  }
  for (let i = from; i < count; i++) {
    if (!sendBounded(socket, chunk.subarray(bounds[2 * i], bounds[2 * i + 1]), port, address)) return i;
  }
  return count;
}

/** Bytes a UDP reader may get at once: well inside the 64 KB socket buffer ffmpeg asks for. */
export const UDP_PACE_BURST_BYTES = 32 * 1024;
/** The slowest catch-up rate; a feed's readers are paced at 4x its input rate when that is more. */
export const UDP_PACE_MIN_BITS_PER_SECOND = 8_000_000;

/**
 * A token bucket for RTP over UDP (UDP has no backpressure): `spend` after sending; when it
 * answers false the sender waits for the `whenReady` callback. A reader catching up (the GOP cache
 * at PLAY) is spread at `bytesPerSecond` in slices of UDP_PACE_BURST_BYTES instead of one burst
 * that overflows the player's socket buffer; live frames, spaced in time, pass at once.
 */
export class UdpPacer {
  private tokens = UDP_PACE_BURST_BYTES;
  private lastMs: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly rate: () => number;
  private readonly now: () => number;

  /** `bytesPerSecond` is asked again at each refill (it follows the feed's rate). */
  constructor(bytesPerSecond: () => number, now: () => number = Date.now) {
    this.rate = bytesPerSecond;
    this.now = now;
    this.lastMs = now();
  }

  /** Whether the sender is waiting for the bucket (its drain listeners belong here, not to a socket). */
  get waiting(): boolean {
    return this.timer !== undefined;
  }

  /** Takes `bytes` from the bucket; false when the sender must wait for whenReady. */
  spend(bytes: number): boolean {
    this.refill();
    this.tokens -= bytes;
    if (this.tokens >= 0) return true;
    if (this.timer === undefined) {
      const waitMs = Math.max(1, Math.ceil((-this.tokens * 1000) / this.rate()));
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.refill();
        const ready = [...this.waiters];
        this.waiters.clear();
        for (const listener of ready) listener();
      }, waitMs);
    }
    return false;
  }

  whenReady(listener: () => void): void {
    if (this.timer === undefined) setImmediate(listener);
    else this.waiters.add(listener);
  }

  off(listener: () => void): void {
    this.waiters.delete(listener);
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.waiters.clear();
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(UDP_PACE_BURST_BYTES, this.tokens + ((now - this.lastMs) * this.rate()) / 1000);
    this.lastMs = now;
  }
}
