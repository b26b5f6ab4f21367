// The native fan-out write (native/fanout.c, built at install by scripts/build-native.mjs): one C
// loop of write() calls for the sockets that take a batch, instead of one net.Socket.write each.
// Optional: when the module is not built (no C compiler at install) or FEEDCAST_NATIVE=off, the
// FanoutGroup writes through Node's sockets as before.
//
// Only plain TCP sockets with nothing queued in Node are written past it, so bytes leave in the
// order they were written; the caller queues in Node whatever the kernel does not take. Bytes
// written past Node are counted here, so byte counts (access log, RTMP bytesOut) stay true.

import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TLSSocket } from 'node:tls';

export interface NativeFanout {
  /** For i < count: results[i] = bytes of `data` written to fds[i] (maybe fewer), or -errno. */
  writeAll(fds: Int32Array, count: number, data: Uint8Array, results: Int32Array): void;
  /** A new descriptor for the same socket (close-on-exec), or -errno. */
  dupFd(fd: number): number;
  /** Closes a descriptor made by dupFd: 0, or -errno. */
  closeFd(fd: number): number;
}

/** Where scripts/build-native.mjs puts the module (also loaded by the egress threads). */
export const NATIVE_MODULE_PATH = fileURLToPath(new URL('../../build/native/fanout.node', import.meta.url));

function load(): { module: NativeFanout | undefined; status: string } {
  if (process.env['FEEDCAST_NATIVE'] === 'off') return { module: undefined, status: 'off (FEEDCAST_NATIVE=off)' };
  try {
    const loaded = createRequire(import.meta.url)(NATIVE_MODULE_PATH) as Partial<NativeFanout>;
    if (typeof loaded.writeAll !== 'function' || typeof loaded.dupFd !== 'function' || typeof loaded.closeFd !== 'function') {
      return {
        module: undefined,
        status: `Node sockets (${NATIVE_MODULE_PATH} is an older build: run \`node scripts/build-native.mjs\`)`,
      };
    }
    return { module: loaded as NativeFanout, status: 'native' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'MODULE_NOT_FOUND' ? 'not built: run `node scripts/build-native.mjs`' : (err as Error).message;
    return { module: undefined, status: `Node sockets (native module ${why})` };
  }
}

const loaded = load();

/** The native writer, or undefined when Feedcast writes through Node's sockets. */
export const nativeFanout: NativeFanout | undefined = loaded.module;

/** How fan-out writes are made, for the start-up log: "native", or why not. */
export const nativeFanoutStatus: string = loaded.status;

/** Node internals read here: a net.Socket's libuv TCP handle (null once closed) and its descriptor. */
interface SocketInternals {
  _handle: { fd?: number } | null;
}

/** Bytes written past Node, per socket. */
const directBytes = new WeakMap<Socket, { bytes: number }>();

/** A socket that batches may be written to past Node: its descriptor, and its byte counter. */
export interface DirectTarget {
  socket: Socket;
  fd: number;
  written: { bytes: number };
}

/** `sink` as a DirectTarget when the native writer is loaded and `sink` is a connected plain TCP socket (not TLS). */
export function directTarget(sink: unknown): DirectTarget | undefined {
  if (nativeFanout === undefined || !(sink instanceof Socket) || sink instanceof TLSSocket) return undefined;
  const fd = (sink as unknown as SocketInternals)._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  let written = directBytes.get(sink);
  if (written === undefined) {
    written = { bytes: 0 };
    directBytes.set(sink, written);
  }
  return { socket: sink, fd, written };
}

/**
 * True when a write may go past Node now: the socket is open (a closed one's descriptor number may
 * already be reused) and Node holds no bytes for it (nothing queued, not corked).
 */
export function writableDirectly(socket: Socket): boolean {
  return (socket as unknown as SocketInternals)._handle !== null && socket.writableLength === 0 && socket.writableCorked === 0;
}

/** Bytes written to `socket` so far, through Node and past it. */
export function socketBytesWritten(socket: Socket): number {
  return socket.bytesWritten + (directBytes.get(socket)?.bytes ?? 0);
}
