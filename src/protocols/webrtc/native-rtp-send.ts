// The WHEP send module (native/rtp-send.c, built at install by scripts/build-native.mjs): SRTP
// protection of a frame's packets and their sendmmsg() in two C calls per viewer and frame.
// Optional: without it (no C compiler, Node headers without OpenSSL, FEEDCAST_NATIVE=off) the
// direct send path protects with node:crypto and sends with dgram (srtp-protect.ts, srtp-sender.ts).

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeRtpSend {
  /**
   * Protects `count` packets of `data` in place; packet i: start layout[4i], header layout[4i+1]
   * bytes, payload layout[4i+2] bytes, rollover counter layout[4i+3]; the tag goes after the payload.
   * profile 1 (AES-CM-HMAC-SHA1-80: salt 14, authKey 20 bytes) or 7 (AEAD-AES-128-GCM: salt 12).
   */
  protectDatagrams(
    profile: number,
    key: Uint8Array,
    salt: Uint8Array,
    authKey: Uint8Array,
    data: Uint8Array,
    layout: Int32Array,
    count: number,
  ): void;
  /** Datagram i = data[ends[i-1] (0 for the first), ends[i]) to address:port through fd: how many left, or -errno. */
  sendDatagrams(fd: number, data: Uint8Array, ends: Int32Array, count: number, address: string, port: number): number;
}

export const RTP_SEND_MODULE_PATH = fileURLToPath(new URL('../../../build/native/rtp-send.node', import.meta.url));

function load(): { module: NativeRtpSend | undefined; status: string } {
  if (process.env['FEEDCAST_NATIVE'] === 'off') return { module: undefined, status: 'node:crypto (FEEDCAST_NATIVE=off)' };
  try {
    const loaded = createRequire(import.meta.url)(RTP_SEND_MODULE_PATH) as Partial<NativeRtpSend>;
    if (typeof loaded.protectDatagrams !== 'function' || typeof loaded.sendDatagrams !== 'function') {
      return { module: undefined, status: `node:crypto (${RTP_SEND_MODULE_PATH} is an older build)` };
    }
    return { module: loaded as NativeRtpSend, status: 'native' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'MODULE_NOT_FOUND' ? 'not built: run `node scripts/build-native.mjs`' : (err as Error).message;
    return { module: undefined, status: `node:crypto (native module ${why})` };
  }
}

const loaded = load();

/** The native module, or undefined when the direct path works with node:crypto and dgram. */
export const nativeRtpSend: NativeRtpSend | undefined = loaded.module;

/** "native", or why not, for the log. */
export const nativeRtpSendStatus: string = loaded.status;
