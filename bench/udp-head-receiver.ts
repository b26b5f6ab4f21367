// The RTSP/UDP load generator's receiving side: one process receives every reader's datagrams, and
// through dgram (one 'message' event, one Buffer and one rinfo object per datagram: ~190 a second
// per reader for the 2 Mb/s bench feed) it saturated before 500 readers, measuring itself rather
// than the server. Here the sockets are the native module's (native/rtp-udp.c), never read by
// Node: every few ms one call receives what all of them hold (epoll, then recvmmsg() per ready
// socket), keeping each datagram's length and first bytes, which is all the readers count.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

interface NativeUdpReceive {
  bindUdp(address: string, port: number, receiveBufferBytes: number): number;
  localPort(fd: number): number;
  openPoller(): number;
  watch(poller: number, fd: number, tag: number): number;
  receiveHeads(poller: number, out: Uint8Array, recordBytes: number): number;
  closeFd(fd: number): number;
}

/** A datagram of `length` bytes whose first min(length, HEAD_BYTES) bytes are buf[at, ...). */
export type DatagramHandler = (buf: Buffer, at: number, length: number) => void;

/** Bytes of each datagram kept: the RTP header with a few CSRCs and the first payload bytes. */
export const HEAD_BYTES = 56;
const RECORD_BYTES = 8 + HEAD_BYTES;
const RECORDS = 4096;
const POLL_MS = 5;

function load(): NativeUdpReceive | undefined {
  if (process.env['BENCH_UDP_RECEIVE'] === 'dgram') return undefined;
  try {
    const path = fileURLToPath(new URL('../build/native/rtp-udp.node', import.meta.url));
    const m = createRequire(import.meta.url)(path) as Partial<NativeUdpReceive>;
    return typeof m.receiveHeads === 'function' ? (m as NativeUdpReceive) : undefined;
  } catch {
    return undefined;
  }
}

const native = load();

/** How UDP readers receive, for the report: "recvmmsg" or "dgram". */
export const udpReceivePath = native === undefined ? 'dgram' : 'recvmmsg';

export class UdpHeadReceiver {
  private readonly m: NativeUdpReceive;
  private readonly poller: number;
  private readonly handlers: (DatagramHandler | undefined)[] = [];
  private readonly out = Buffer.alloc(RECORD_BYTES * RECORDS);
  private timer: NodeJS.Timeout | undefined;

  private constructor(m: NativeUdpReceive) {
    this.m = m;
    const poller = m.openPoller();
    if (poller < 0) throw new Error(`epoll_create1: errno ${-poller}`);
    this.poller = poller;
  }

  /** The process's receiver, or undefined without the native module (readers use dgram then). */
  static shared(): UdpHeadReceiver | undefined {
    if (native === undefined) return undefined;
    shared ??= new UdpHeadReceiver(native);
    return shared;
  }

  /** A socket bound to host:port (0: any), whose datagrams go to `onDatagram`: its fd and port. */
  open(host: string, port: number, onDatagram: DatagramHandler): { fd: number; port: number } | string {
    const fd = this.m.bindUdp(host, port, 1 << 20);
    if (fd < 0) return `bind ${host}:${port}: errno ${-fd}`;
    const bound = this.m.localPort(fd);
    const tag = this.handlers.length;
    const watched = this.m.watch(this.poller, fd, tag);
    if (bound < 0 || watched < 0) {
      this.m.closeFd(fd);
      return `socket setup: errno ${-(bound < 0 ? bound : watched)}`;
    }
    this.handlers.push(onDatagram);
    this.timer ??= setInterval(() => this.drain(), POLL_MS);
    // Closing the fd takes it out of epoll; the tag is retired with it.
    const close = (): void => {
      this.handlers[tag] = undefined;
      this.m.closeFd(fd);
    };
    this.closers.set(fd, close);
    return { fd, port: bound };
  }

  private readonly closers = new Map<number, () => void>();

  close(fd: number): void {
    this.closers.get(fd)?.();
    this.closers.delete(fd);
  }

  private drain(): void {
    for (;;) {
      const n = this.m.receiveHeads(this.poller, this.out, RECORD_BYTES);
      if (n <= 0) return;
      for (let i = 0; i < n; i++) {
        const at = i * RECORD_BYTES;
        const handler = this.handlers[this.out.readUInt32LE(at)];
        handler?.(this.out, at + 8, this.out.readUInt32LE(at + 4));
      }
      if (n < RECORDS) return;
    }
  }
}

let shared: UdpHeadReceiver | undefined;
