// A dgram socket's descriptor, for the native senders that write past Node (WHEP: srtp-sender.ts;
// RTSP over UDP: rtsp/udp.ts). Node has no public API for it.

import type { Socket as UdpSocket } from 'node:dgram';

/** The symbol a dgram socket keeps its state under (Node's kStateSymbol), found once. */
let stateSymbol: symbol | undefined;

/**
 * A dgram socket's libuv handle (null once closed), read from its state rather than through
 * `_handle`, which warns (DEP0112). undefined when this Node keeps it elsewhere.
 */
export function udpHandle(socket: UdpSocket): { fd?: number } | null | undefined {
  stateSymbol ??= Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  if (stateSymbol === undefined) return undefined;
  const state = (socket as unknown as Record<symbol, { handle?: { fd?: number } | null } | undefined>)[stateSymbol];
  return state?.handle;
}
