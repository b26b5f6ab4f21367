// The RTP/UDP module (native/rtp-udp.c, built at install by scripts/build-native.mjs): a frame's RTP
// packets to one UDP reader in one sendmmsg(). Optional: without it (no C compiler,
// FEEDCAST_NATIVE=off) or with FEEDCAST_RTSP_UDP_SEND=dgram (for comparison and diagnosis), each
// packet is one dgram send() from Node (udp.ts).

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeUdpSend {
  /** Datagram i = data[bounds[2i], bounds[2i+1]) to address:port through fd: how many left, or -errno. */
  sendPackets(fd: number, data: Uint8Array, bounds: Int32Array, count: number, address: string, port: number): number;
}

export const RTP_UDP_MODULE_PATH = fileURLToPath(new URL('../../../build/native/rtp-udp.node', import.meta.url));

function load(): { module: NativeUdpSend | undefined; status: string } {
  if (process.env['FEEDCAST_NATIVE'] === 'off') return { module: undefined, status: 'dgram (FEEDCAST_NATIVE=off)' };
  if (process.env['FEEDCAST_RTSP_UDP_SEND'] === 'dgram')
    return { module: undefined, status: 'dgram (FEEDCAST_RTSP_UDP_SEND=dgram)' };
  try {
    const loaded = createRequire(import.meta.url)(RTP_UDP_MODULE_PATH) as Partial<NativeUdpSend>;
    if (typeof loaded.sendPackets !== 'function')
      return { module: undefined, status: `dgram (${RTP_UDP_MODULE_PATH} is an older build)` };
    return { module: loaded as NativeUdpSend, status: 'sendmmsg' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'MODULE_NOT_FOUND' ? 'not built: run `node scripts/build-native.mjs`' : (err as Error).message;
    return { module: undefined, status: `dgram (native module ${why})` };
  }
}

const loaded = load();

/** The native module, or undefined when UDP readers are sent through dgram. */
export const nativeUdpSend: NativeUdpSend | undefined = loaded.module;

/** "sendmmsg", or "dgram" and why, for the log. */
export const nativeUdpSendStatus: string = loaded.status;
