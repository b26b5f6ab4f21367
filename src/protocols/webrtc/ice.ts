// The werift-free half of Feedcast's WebRTC set-up: ICE options, the SDP edits around werift
// (candidates kept, rewritten for the single-port mux, the offer werift sees) and the ICE server
// Link headers. The route uses these before werift is loaded (it is loaded at the first offer).

import { isIP } from 'node:net';
import type { RTCIceServer } from 'werift';

export interface WebRtcIceOptions {
  /**
   * Addresses announced as host candidates. Default: ['127.0.0.1']. With one address the sockets
   * bind to it; with several they bind to the wildcard, so each announced address receives.
   */
  hostAddresses: readonly string[];
  /**
   * Where the UDP sockets (per peer, or the mux socket) bind instead of the rule above: e.g. the
   * private address behind a 1:1 NAT whose public address is announced, or '0.0.0.0'. Default unset.
   */
  bindAddress: string | undefined;
  /**
   * Single-port mode: every peer on this one UDP port (udp-mux.ts); 0 takes a free port (tests).
   * Default unset: one UDP socket per peer.
   */
  udpMuxPort: number | undefined;
  /**
   * Also offer a passive ICE-TCP host candidate per announced address (RFC 6544), for clients
   * whose UDP is blocked; all peers share one TCP port (udp-mux.ts). Default false.
   */
  tcp: boolean;
  /** The ICE-TCP port. Default unset: udpMuxPort's number when set, else a free port chosen at start. */
  tcpPort: number | undefined;
  /** Ports for the per-peer UDP sockets (not used with udpMuxPort). Default any free port. */
  portRange: readonly [number, number] | undefined;
  /** STUN/TURN servers the server itself uses to gather candidates (outbound traffic!). Default none. */
  serverIceServers: readonly RTCIceServer[];
  /** ICE servers offered to clients in `Link: rel="ice-server"` headers (WHIP RFC 9725 4.6). */
  clientIceServers: readonly RTCIceServer[];
  /** A peer that sends nothing (RTP, RTCP, STUN) for this long is closed. Default 15 000 ms. */
  peerTimeoutMs: number;
}

export const DEFAULT_ICE_OPTIONS: WebRtcIceOptions = {
  hostAddresses: ['127.0.0.1'],
  bindAddress: undefined,
  udpMuxPort: undefined,
  tcp: false,
  tcpPort: undefined,
  portRange: undefined,
  serverIceServers: [],
  clientIceServers: [],
  peerTimeoutMs: 15_000,
};

export const PLAYOUT_DELAY_URI = 'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay';

/** The codecs a peer is allowed to negotiate: exactly those chosen from the offer. */
export interface PeerCodec {
  payloadType: number;
  mimeType: string;
  parameters: string | undefined;
  clockRate: number;
  channels: number | undefined;
}

export interface PeerCodecs {
  video: PeerCodec | undefined;
  audio: PeerCodec | undefined;
}

/**
 * Where werift binds its UDP sockets (werift binds every UDP socket of a family to one address,
 * whichever address its candidate announces): loopback behind the UDP mux; else `bindAddress`;
 * else the one announced address of the family; else (several) the wildcard, so each receives.
 * (ICE-TCP is not werift's: the mux listens, see muxBindAddresses.)
 */
export function udpBindAddresses(ice: WebRtcIceOptions): { udp4?: string; udp6?: string } {
  if (ice.udpMuxPort !== undefined) return { udp4: '127.0.0.1', udp6: '::1' };
  const out: { udp4?: string; udp6?: string } = {};
  if (ice.bindAddress !== undefined) {
    if (isIP(ice.bindAddress) === 4 && ice.bindAddress !== '0.0.0.0') out.udp4 = ice.bindAddress;
    if (isIP(ice.bindAddress) === 6 && ice.bindAddress !== '::') out.udp6 = ice.bindAddress;
    return out;
  }
  if (ice.hostAddresses.length !== 1) return out;
  const only = ice.hostAddresses[0] as string;
  if (isIP(only) === 4) out.udp4 = only;
  if (isIP(only) === 6) out.udp6 = only;
  return out;
}

/**
 * Where the mux's public sockets bind (udp-mux.ts): `bindAddress` when set, else one socket per
 * announced address, so each answers from the address it announces.
 */
export function muxBindAddresses(ice: WebRtcIceOptions): string[] {
  if (ice.bindAddress !== undefined) return [ice.bindAddress];
  return [...new Set(ice.hostAddresses)];
}

/**
 * The client's offer as werift gets it. Behind the UDP mux werift must not know the client's
 * candidates (it would send to them from its loopback socket): it learns the client as
 * peer-reflexive from the checks the mux relays. With ICE-TCP the client's TCP candidates go
 * (werift 0.22 speaks UDP only; the mux relays ICE-TCP). `a=end-of-candidates` goes in both
 * cases, else werift gives up at once when no UDP pair is left to check.
 */
export function offerForPeer(sdp: string, ice: WebRtcIceOptions): string {
  if (ice.udpMuxPort === undefined && !ice.tcp) return sdp;
  const lines = sdp.split(/\r?\n/).filter((line) => {
    if (line === 'a=end-of-candidates') return false;
    if (!line.startsWith('a=candidate:')) return true;
    if (ice.udpMuxPort !== undefined) return false;
    return line.split(' ')[2]?.toLowerCase() !== 'tcp';
  });
  return lines.join('\r\n');
}

/**
 * Where the mux relays to: werift's UDP socket of the first UDP host candidate in its answer, at
 * the address that socket is bound to (loopback when bound to the wildcard).
 */
export function muxTarget(sdp: string, ice: WebRtcIceOptions): { address: string; port: number } | undefined {
  const bind = udpBindAddresses(ice);
  for (const line of sdp.split(/\r?\n/)) {
    const c = parseCandidateLine(line);
    if (c === undefined || c.transport !== 'udp' || c.type !== 'host') continue;
    const v6 = isIP(c.address) === 6;
    return { address: (v6 ? bind.udp6 : bind.udp4) ?? (v6 ? '::1' : '127.0.0.1'), port: c.port };
  }
  return undefined;
}

interface CandidateLine {
  transport: string;
  address: string;
  port: number;
  type: string;
  tcpType: string | undefined;
}

/** `a=candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ TYPE [...] [tcptype T]` (RFC 8839 5.1). */
function parseCandidateLine(line: string): CandidateLine | undefined {
  if (!line.startsWith('a=candidate:')) return undefined;
  const parts = line.split(' ');
  const tcpAt = parts.indexOf('tcptype');
  const port = Number(parts[5]);
  if (parts.length < 8 || !Number.isInteger(port)) return undefined;
  return {
    transport: (parts[2] ?? '').toLowerCase(),
    address: parts[4] ?? '',
    port,
    type: parts[7] ?? '',
    tcpType: tcpAt > 0 ? parts[tcpAt + 1] : undefined,
  };
}

/** Ports of the mux (udp-mux.ts) that replace or add to werift's candidates in the answer. */
export interface MuxPorts {
  /** Single-port mode: every UDP host candidate carries this port. */
  udp?: number | undefined;
  /** ICE-TCP: a `tcptype passive` host candidate on this port per announced address. */
  tcp?: number | undefined;
}

/**
 * The answer's candidates as the client gets them: host candidates on the configured addresses
 * only (one per address); behind the UDP mux each UDP host candidate carries the mux port; with
 * ICE-TCP a passive TCP candidate follows each UDP one (RFC 6544 4.5). Drops
 * `a=end-of-candidates` duplicates; returns CRLF-terminated SDP.
 */
export function keepCandidates(sdp: string, addresses: readonly string[], mux: MuxPorts = {}): string {
  const allowed = new Set(addresses);
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const line of sdp.split(/\r?\n/)) {
    const c = parseCandidateLine(line);
    if (c === undefined) {
      lines.push(line);
      continue;
    }
    if (c.type === 'host' && !allowed.has(c.address)) continue;
    if (c.transport !== 'udp') continue;
    const host = c.type === 'host';
    const port = host && mux.udp !== undefined ? mux.udp : c.port;
    const key = `${c.address} ${port} ${c.type}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const parts = line.split(' ');
    parts[5] = String(port);
    lines.push(parts.join(' '));
    if (host && mux.tcp !== undefined) lines.push(tcpCandidate(parts, seen.size, c.address, mux.tcp));
  }
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\r\n') + '\r\n';
}

/**
 * A passive ICE-TCP host candidate (RFC 6544 4.5), priority by RFC 8445 5.1.2.1 with the
 * RFC 6544 4.2 local preference (direction-pref 4 for passive): below any UDP host candidate.
 */
function tcpCandidate(udpParts: readonly string[], index: number, address: string, port: number): string {
  const localPreference = 4 * 8192 + (8191 - index);
  const priority = 126 * 2 ** 24 + localPreference * 2 ** 8 + (256 - 1);
  const rest = udpParts.slice(8).filter((p, i, all) => p !== 'tcptype' && all[i - 1] !== 'tcptype');
  return [
    `a=candidate:tcp${index}`,
    '1',
    'tcp',
    String(priority),
    address,
    String(port),
    'typ',
    'host',
    'tcptype',
    'passive',
    ...rest,
  ].join(' ');
}

/** The `Link` header values announcing ICE servers to a client (RFC 9725 4.6). */
export function iceServerLinks(servers: readonly RTCIceServer[]): string[] {
  return servers.map((s) => {
    let link = `<${s.urls}>; rel="ice-server"`;
    if (s.username !== undefined) link += `; username="${s.username.replace(/"/g, '')}"`;
    if (s.credential !== undefined) link += `; credential="${s.credential.replace(/"/g, '')}"; credential-type="password"`;
    return link;
  });
}
