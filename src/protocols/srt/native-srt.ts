// The SRT module (native/srt.c, built at install by scripts/build-native.mjs against libsrt):
// loaded once, or the reason it is not there, which the server logs when SRTPort is set ("SRT is
// off: ..."). Everything else in Feedcast runs without it.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** An SRT epoll with its waiter thread (native/srt.c explains the threading). */
export type SrtPoller = { readonly __brand: 'SrtPoller' };

export interface SrtAccepted {
  sock: number;
  streamId: string;
  address: string;
  port: number;
  /** The connection is encrypted (a passphrase was agreed). */
  encrypted: boolean;
}

/** srt_bstats totals of one connection. */
export interface SrtStats {
  packetsSent: number;
  packetsReceived: number;
  packetsSentLost: number;
  packetsReceivedLost: number;
  packetsRetransmitted: number;
  packetsReceivedUndecrypted: number;
  packetsSentDropped: number;
  packetsReceivedDropped: number;
  bytesSent: number;
  bytesReceived: number;
  rttMs: number;
  bandwidthMbps: number;
}

export interface NativeSrt {
  createPoller(onReady: () => void): SrtPoller;
  stopPoller(poller: SrtPoller): void;
  resume(poller: SrtPoller): void;
  /** [sock, events, sock, events, ...] ready now. */
  poll(poller: SrtPoller): Int32Array;
  /** [listener socket, bound port]; throws with libsrt's reason. */
  listen(poller: SrtPoller, host: string, port: number, latencyMs: number): [number, number];
  setPassphrases(poller: SrtPoller, listener: number, names: string[], passphrases: string[]): void;
  accept(poller: SrtPoller, listener: number): SrtAccepted | null;
  /** What has arrived (empty: nothing now), or libsrt's error code (the connection is gone). */
  recv(poller: SrtPoller, sock: number): Buffer | number;
  /** Bytes taken from `offset` on (fewer when the send buffer is full), or -code when the connection is gone. */
  send(poller: SrtPoller, sock: number, data: Buffer, offset: number): number;
  watchWritable(poller: SrtPoller, sock: number, on: boolean): void;
  stats(poller: SrtPoller, sock: number): SrtStats | null;
  close(poller: SrtPoller, sock: number): void;
  resourceKey(streamId: string): string;
  version(): string;
  readonly EPOLL_IN: number;
  readonly EPOLL_OUT: number;
  readonly EPOLL_ERR: number;
}

export const SRT_MODULE_PATH = fileURLToPath(new URL('../../../build/native/srt.node', import.meta.url));

function load(): { module: NativeSrt | undefined; status: string } {
  if (process.env['FEEDCAST_NATIVE'] === 'off') return { module: undefined, status: 'FEEDCAST_NATIVE=off' };
  try {
    const loaded = createRequire(import.meta.url)(SRT_MODULE_PATH) as Partial<NativeSrt>;
    if (typeof loaded.createPoller !== 'function' || typeof loaded.resourceKey !== 'function') {
      return { module: undefined, status: `${SRT_MODULE_PATH} is an older build: run \`node scripts/build-native.mjs\`` };
    }
    return { module: loaded as NativeSrt, status: `libsrt ${loaded.version?.() ?? '?'}` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'MODULE_NOT_FOUND'
        ? 'the SRT module is not built: install libsrt-openssl-dev and run `node scripts/build-native.mjs`'
        : `the SRT module does not load: ${(err as Error).message}`;
    return { module: undefined, status: why };
  }
}

let loaded: { module: NativeSrt | undefined; status: string } | undefined;

/** The SRT module, loaded at the first call (a server without SRTPort never loads libsrt). */
export function nativeSrt(): { module: NativeSrt | undefined; status: string } {
  loaded ??= load();
  return loaded;
}
