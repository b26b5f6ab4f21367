// Single-port WebRTC (ICE UDP mux, as MediaMTX and others do): one public UDP socket for every
// peer, and likewise one ICE-TCP listener (RFC 6544 passive, RFC 4571 framing). A new remote address is tied to a peer by the USERNAME of its first STUN Binding request
// (RFC 8445 7.2.2 `serverUfrag:clientUfrag`), checked with MESSAGE-INTEGRITY (RFC 5389 15.4).
//
// werift-ice opens its own socket per peer and has no injection point for a shared one, so each
// peer's werift socket is bound to loopback and the mux relays: remote -> public socket -> one
// loopback socket per remote (connected to the werift socket) -> werift, and back the same way.
// werift 0.22 has no ICE-TCP of its own, so a TCP connection is relayed the same way: its frames
// become datagrams to the peer's werift UDP socket.
// werift learns the remote as a peer-reflexive candidate (the loopback address); the mux puts the
// real address back into the XOR-MAPPED-ADDRESS of werift's Binding responses (re-signed with
// the peer's ICE password) so the client learns its true mapped address.

import { createHmac } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, isIP, isIPv4, type Server, type Socket as Socket_ } from 'node:net';
import { ByteReader } from '../../formats/bytes/byte-reader.js';
import type { Logger } from '../../observability/logger.js';

// --- STUN (RFC 5389 6, 15) --------------------------------------------------------------------

/** SO_RCVBUF asked for the shared WebRTC UDP socket (the kernel caps it at net.core.rmem_max). */
const UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;
export const STUN_MAGIC_COOKIE = 0x2112a442;
const STUN_HEADER_BYTES = 20;
const ATTR_USERNAME = 0x0006;
const ATTR_MESSAGE_INTEGRITY = 0x0008;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
const ATTR_FINGERPRINT = 0x8028;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const FINGERPRINT_XOR = 0x5354554e;
/** USERNAME is at most 513 bytes (RFC 5389 15.3). */
const MAX_USERNAME_BYTES = 513;

export interface StunAttribute {
  type: number;
  /** Offset of the attribute's 4-byte header in the message. */
  offset: number;
  value: Buffer;
}

export interface StunMessage {
  /** Message type: method and class bits (0x0001 Binding request, 0x0101 success response). */
  type: number;
  transactionId: Buffer;
  attributes: StunAttribute[];
}

/**
 * True when the datagram can be STUN (RFC 7983 demultiplexing: first byte 0..3, then the magic
 * cookie); DTLS, RTP and RTCP never pass.
 */
export function looksLikeStun(data: Buffer): boolean {
  return data.length >= STUN_HEADER_BYTES && (data[0] as number) < 4 && data.readUInt32BE(4) === STUN_MAGIC_COOKIE;
}

/**
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * |0 0|     STUN Message Type     |         Message Length        |
 * |                         Magic Cookie                          |
 * |                     Transaction ID (96 bits)                  |
 * then attributes: Type (16) | Length (16) | Value, padded to 4 bytes (RFC 5389 15).
 */
export function parseStunMessage(data: Buffer): StunMessage {
  const r = new ByteReader(data, 'stun');
  const type = r.u16();
  if (type >> 14 !== 0) r.fail(`the first two bits must be 0 (type 0x${type.toString(16)})`);
  const length = r.u16();
  if (r.u32() !== STUN_MAGIC_COOKIE) r.fail('no magic cookie');
  const transactionId = r.bytes(12);
  if (length % 4 !== 0) r.fail(`message length ${length} is not a multiple of 4`);
  if (length > r.remaining) r.fail(`message length ${length} exceeds the ${r.remaining} bytes left`);
  const body = r.sub(length);
  const attributes: StunAttribute[] = [];
  while (body.remaining > 0) {
    const offset = body.pos;
    const attrType = body.u16();
    const attrLength = body.u16();
    const value = body.bytes(attrLength);
    body.skip((4 - (attrLength % 4)) % 4);
    attributes.push({ type: attrType, offset, value });
  }
  return { type, transactionId, attributes };
}

/** The ICE ufrags of a Binding request's USERNAME: `receiver:sender` (RFC 8445 7.2.2). */
export function iceUsername(message: StunMessage): { serverUfrag: string; clientUfrag: string } | undefined {
  const attr = message.attributes.find((a) => a.type === ATTR_USERNAME);
  if (attr === undefined || attr.value.length > MAX_USERNAME_BYTES) return undefined;
  const text = attr.value.toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) return undefined;
  return { serverUfrag: text.slice(0, colon), clientUfrag: text.slice(colon + 1) };
}

/** HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, its length field covering it (RFC 5389 15.4). */
function integrityOf(data: Buffer, miOffset: number, password: string): Buffer {
  const head = Buffer.from(data.subarray(0, miOffset));
  head.writeUInt16BE(miOffset - STUN_HEADER_BYTES + 24, 2);
  return createHmac('sha1', Buffer.from(password, 'utf8')).update(head).digest();
}

/** Checks MESSAGE-INTEGRITY with the short-term credential `password` (the receiver's ice-pwd). */
export function verifyIntegrity(data: Buffer, message: StunMessage, password: string): boolean {
  const mi = message.attributes.find((a) => a.type === ATTR_MESSAGE_INTEGRITY);
  if (mi === undefined || mi.value.length !== 20) return false;
  return integrityOf(data, mi.offset, password).equals(mi.value);
}

/** CRC-32 (ISO 3309, as zlib) for FINGERPRINT. */
const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
function crc32(data: Buffer): number {
  let c = -1;
  for (const byte of data) c = (CRC_TABLE[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function xorMappedAddress(address: string, port: number, transactionId: Buffer): Buffer {
  const v4 = isIPv4(address);
  const value = Buffer.alloc(v4 ? 8 : 20);
  value[1] = v4 ? 0x01 : 0x02;
  value.writeUInt16BE(port ^ (STUN_MAGIC_COOKIE >>> 16), 2);
  const raw = v4 ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address);
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(STUN_MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4);
  for (let i = 0; i < raw.length; i++) value[4 + i] = (raw[i] as number) ^ (mask[i] as number);
  return value;
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => Number.parseInt(w, 16)));
  const h = words(head);
  const t = words(tail);
  const all = address.includes('::') ? [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t] : h;
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/** The STUN message in `data`, or undefined for anything else (media, a damaged message). */
function tryParseStun(data: Buffer): StunMessage | undefined {
  if (!looksLikeStun(data)) return undefined;
  try {
    return parseStunMessage(data);
  } catch {
    return undefined;
  }
}

/**
 * A Binding success response with XOR-MAPPED-ADDRESS set to `address`:`port`, MESSAGE-INTEGRITY
 * re-signed with `password` and FINGERPRINT recomputed; other attributes are kept. Undefined when
 * `data` is not such a response.
 */
export function rewriteMappedAddress(data: Buffer, address: string, port: number, password: string): Buffer | undefined {
  const message = tryParseStun(data);
  if (message === undefined) return undefined;
  if (message.type !== BINDING_SUCCESS || !message.attributes.some((a) => a.type === ATTR_XOR_MAPPED_ADDRESS)) {
    return undefined;
  }
  const kept = message.attributes.filter((a) => a.type !== ATTR_MESSAGE_INTEGRITY && a.type !== ATTR_FINGERPRINT);
  const values = kept.map((a) =>
    a.type === ATTR_XOR_MAPPED_ADDRESS ? { type: a.type, value: xorMappedAddress(address, port, message.transactionId) } : a,
  );
  const bodyBytes = values.reduce((n, a) => n + 4 + a.value.length + ((4 - (a.value.length % 4)) % 4), 0);
  const out = Buffer.alloc(STUN_HEADER_BYTES + bodyBytes + 24 + 8);
  out.writeUInt16BE(message.type, 0);
  out.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  message.transactionId.copy(out, 8);
  let pos = STUN_HEADER_BYTES;
  for (const a of values) {
    out.writeUInt16BE(a.type, pos);
    out.writeUInt16BE(a.value.length, pos + 2);
    a.value.copy(out, pos + 4);
    pos += 4 + a.value.length + ((4 - (a.value.length % 4)) % 4);
  }
  const miOffset = pos;
  out.writeUInt16BE(ATTR_MESSAGE_INTEGRITY, pos);
  out.writeUInt16BE(20, pos + 2);
  integrityOf(out, miOffset, password).copy(out, pos + 4);
  pos += 24;
  out.writeUInt16BE(pos - STUN_HEADER_BYTES + 8, 2);
  out.writeUInt16BE(ATTR_FINGERPRINT, pos);
  out.writeUInt16BE(4, pos + 2);
  out.writeUInt32BE((crc32(out.subarray(0, pos)) ^ FINGERPRINT_XOR) >>> 0, pos + 4);
  return out;
}

// --- The mux ----------------------------------------------------------------------------------

export interface UdpMuxOptions {
  /** The single UDP port (0: a free one); undefined: no UDP socket (ICE-TCP only). */
  udpPort: number | undefined;
  /** The ICE-TCP listening port (0: a free one); undefined: no ICE-TCP. */
  tcpPort: number | undefined;
  /**
   * Addresses of the public sockets, one UDP socket and one TCP listener each, so a reply leaves
   * from the address that received (a wildcard socket would answer from the kernel's choice).
   * '0.0.0.0' or '::' (dual stack) receive on every address.
   */
  bindAddresses: readonly string[];
  /** A remote that has sent nothing for this long loses its mapping. */
  idleTimeoutMs: number;
  /** Bound on remote addresses mapped at once (all peers). Default 4096. */
  maxMappings?: number;
  /** Bound on remote addresses one peer may use (a client checks from each of its addresses). Default 8. */
  maxMappingsPerPeer?: number;
  log: Logger;
}

/** One peer behind the mux: its ICE credentials and where its werift socket listens. */
export interface MuxPeer {
  /** The server's ICE ufrag (answer `a=ice-ufrag`). */
  serverUfrag: string;
  /** The server's ICE password (answer `a=ice-pwd`): checks requests and signs rewritten responses. */
  serverPassword: string;
  /** The client's ICE ufrag (offer `a=ice-ufrag`). */
  clientUfrag: string;
  /** The werift UDP socket of the peer. */
  target: { address: string; port: number };
}

interface Mapping {
  readonly key: string;
  readonly peer: MuxPeer;
  /** The local socket connected to the peer's werift socket. */
  readonly socket: Socket;
  /** Sends a datagram from werift to the remote (UDP send, or an RFC 4571 frame on TCP). */
  readonly toRemote: (data: Buffer) => void;
  /** Ends the remote side (TCP connection); nothing for UDP. */
  readonly endRemote: () => void;
  /** Bytes written toward the remote and not sent yet (an ICE-TCP connection's); 0 for UDP. */
  readonly backlog: () => number;
  /** Datagrams that arrived before the loopback socket was connected (bounded). */
  pending: Buffer[] | undefined;
  lastHeardMs: number;
}

export interface UdpMuxCounters {
  /** Datagrams (or TCP connections) from unknown remotes that were not a valid Binding request of a known peer. */
  dropped: number;
  mappingsCreated: number;
  mappingsRefused: number;
  /** Packets not written to an ICE-TCP connection whose send buffer was full. */
  tcpPacketsDropped: number;
}

const MAX_PENDING = 16;
/** An ICE-TCP connection must send its first frame (a Binding request) within this time. */
const TCP_FIRST_FRAME_MS = 10_000;
/**
 * Past this much unsent data on an ICE-TCP connection, packets are dropped as UDP would lose them
 * (a WHEP viewer stops sending before: WHEP_MAX_BACKLOG_BYTES in from-feed.ts).
 */
export const MAX_TCP_BACKLOG_BYTES = 1 << 20;

export class UdpMux {
  private readonly udp: readonly Socket[];
  private readonly tcp: readonly Server[];
  private readonly options: Required<UdpMuxOptions>;
  private readonly log: Logger;
  private readonly peers = new Map<string, MuxPeer>();
  private readonly mappings = new Map<string, Mapping>();
  /** The mappings of each peer, by server ufrag (backlogOf runs per video frame per viewer). */
  private readonly byUfrag = new Map<string, Set<Mapping>>();
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;
  readonly counters: UdpMuxCounters = { dropped: 0, mappingsCreated: 0, mappingsRefused: 0, tcpPacketsDropped: 0 };

  private constructor(udp: readonly Socket[], tcp: readonly Server[], options: Required<UdpMuxOptions>) {
    this.udp = udp;
    this.tcp = tcp;
    this.options = options;
    this.log = options.log;
    for (const socket of udp) {
      socket.on('message', (data, rinfo) => this.fromUdp(socket, data, rinfo.address, rinfo.port));
      socket.on('error', (err) => this.log.warn('WebRTC UDP mux socket error', { err }));
    }
    for (const server of tcp) {
      server.on('connection', (conn) => this.fromTcp(conn));
      server.on('error', (err) => this.log.warn('WebRTC ICE-TCP listener error', { err }));
    }
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(250, Math.min(5000, options.idleTimeoutMs / 4)));
    this.sweepTimer.unref();
  }

  /**
   * Binds the public sockets; rejects with the bind error (e.g. EADDRINUSE). Port 0 takes a free
   * port on the first address and the same number on the others.
   */
  static async open(options: UdpMuxOptions): Promise<UdpMux> {
    const udp: Socket[] = [];
    const tcp: Server[] = [];
    try {
      let udpPort = options.udpPort;
      let tcpPort = options.tcpPort;
      for (const address of options.bindAddresses) {
        const v6 = isIP(address) === 6;
        if (udpPort !== undefined) {
          // Every WHIP publisher's media arrives on this one socket: the default receive buffer
          // (208 KiB) is ~0.3 s of one 6 Mb/s publisher, less than a long GC pause on a busy
          // machine, and what overflows is lost. The kernel caps this at net.core.rmem_max.
          const socket = createSocket({
            type: v6 ? 'udp6' : 'udp4',
            recvBufferSize: UDP_RECEIVE_BUFFER_BYTES,
            ...(v6 ? { ipv6Only: false } : {}),
          });
          udp.push(socket);
          const port = udpPort;
          await new Promise<void>((resolve, reject) => {
            socket.once('error', reject);
            socket.bind(port, address, () => {
              socket.off('error', reject);
              resolve();
            });
          });
          udpPort = socket.address().port;
        }
        if (tcpPort !== undefined) {
          const server = createServer({ noDelay: true });
          tcp.push(server);
          const port = tcpPort;
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen({ port, host: address, ...(v6 ? { ipv6Only: false } : {}) }, () => {
              server.off('error', reject);
              resolve();
            });
          });
          const bound = server.address();
          if (bound !== null && typeof bound === 'object') tcpPort = bound.port;
        }
      }
    } catch (err) {
      for (const socket of udp) socket.close();
      for (const server of tcp) server.close();
      throw err;
    }
    return new UdpMux(udp, tcp, { maxMappings: 4096, maxMappingsPerPeer: 8, ...options });
  }

  /** The single UDP port, or undefined without UDP. */
  get port(): number | undefined {
    return this.udp[0]?.address().port;
  }

  /** The ICE-TCP port, or undefined without ICE-TCP. */
  get tcpPort(): number | undefined {
    const a = this.tcp[0]?.address();
    return a !== null && typeof a === 'object' ? a.port : undefined;
  }

  get mappingCount(): number {
    return this.mappings.size;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /**
   * Bytes on their way to the peer with this server ufrag that its ICE-TCP connections have not
   * sent (the largest); 0 over UDP. A WHEP viewer's measure of how far behind it is.
   */
  backlogOf(serverUfrag: string): number {
    let most = 0;
    const mappings = this.byUfrag.get(serverUfrag);
    if (mappings !== undefined) for (const m of mappings) most = Math.max(most, m.backlog());
    return most;
  }

  /** Remotes (`udp|address|port`, `tcp|address|port`) mapped to the peer with this server ufrag. */
  remotesOf(serverUfrag: string): string[] {
    return [...this.mappings.values()].filter((m) => m.peer.serverUfrag === serverUfrag).map((m) => m.key);
  }

  /**
   * Makes a peer reachable through the mux; returns its removal (idempotent). Peers are told apart
   * by both ufrags (werift's own is only 4 characters), as the USERNAME of their checks.
   */
  addPeer(peer: MuxPeer): () => void {
    const key = `${peer.serverUfrag}:${peer.clientUfrag}`;
    if (this.peers.has(key)) throw new Error(`udp mux: ICE user name ${key} is already registered`);
    this.peers.set(key, peer);
    return () => this.removePeer(key, peer);
  }

  private removePeer(key: string, peer: MuxPeer): void {
    if (this.peers.get(key) === peer) this.peers.delete(key);
    for (const m of [...this.mappings.values()]) if (m.peer === peer) this.drop(m);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const m of [...this.mappings.values()]) this.drop(m);
    this.peers.clear();
    for (const socket of this.udp) socket.close();
    for (const server of this.tcp) server.close();
  }

  private fromUdp(udp: Socket, data: Buffer, address: string, port: number): void {
    const key = `udp|${address}|${port}`;
    const mapping = this.mappings.get(key);
    if (mapping !== undefined) {
      this.toWerift(mapping, data);
      return;
    }
    const peer = this.admit(key, data);
    if (peer === undefined) return;
    this.map(
      key,
      peer,
      data,
      address,
      port,
      (out) => udp.send(out, port, address),
      () => undefined,
    );
  }

  /** RFC 4571 framing: each packet behind a 16-bit length. The first must be a Binding request of a known peer. */
  private fromTcp(conn: Socket_): void {
    const address = conn.remoteAddress ?? '';
    const port = conn.remotePort ?? 0;
    const key = `tcp|${address}|${port}`;
    let buffered: Buffer = Buffer.alloc(0);
    let mapping: Mapping | undefined;
    conn.setNoDelay(true);
    const firstFrameTimer = setTimeout(() => conn.destroy(), TCP_FIRST_FRAME_MS);
    firstFrameTimer.unref();
    conn.on('error', () => undefined);
    conn.on('close', () => {
      clearTimeout(firstFrameTimer);
      if (mapping !== undefined) this.drop(mapping);
    });
    conn.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) break;
        const packet = buffered.subarray(2, 2 + length);
        buffered = buffered.subarray(2 + length);
        if (mapping !== undefined) {
          this.toWerift(mapping, packet);
          continue;
        }
        const peer = this.admit(key, packet);
        if (peer === undefined) {
          conn.destroy();
          return;
        }
        clearTimeout(firstFrameTimer);
        const toRemote = (out: Buffer): void => {
          if (conn.writableLength > MAX_TCP_BACKLOG_BYTES) {
            this.counters.tcpPacketsDropped++;
            return;
          }
          const header = Buffer.alloc(2);
          header.writeUInt16BE(out.length, 0);
          conn.cork();
          conn.write(header);
          conn.write(out);
          conn.uncork();
        };
        mapping = this.map(
          key,
          peer,
          packet,
          address,
          port,
          toRemote,
          () => conn.destroy(),
          () => conn.writableLength,
        );
      }
    });
  }

  private toWerift(mapping: Mapping, data: Buffer): void {
    mapping.lastHeardMs = Date.now();
    if (mapping.pending !== undefined) {
      if (mapping.pending.length < MAX_PENDING) mapping.pending.push(data);
    } else mapping.socket.send(data);
  }

  /** The peer a packet from an unknown remote maps to, within the bounds; undefined (counted) otherwise. */
  private admit(key: string, data: Buffer): MuxPeer | undefined {
    const peer = this.peerOf(data);
    if (peer === undefined) {
      this.counters.dropped++;
      return undefined;
    }
    let perPeer = 0;
    for (const m of this.mappings.values()) if (m.peer === peer) perPeer++;
    if (this.mappings.size >= this.options.maxMappings || perPeer >= this.options.maxMappingsPerPeer) {
      this.counters.mappingsRefused++;
      this.log.warn('WebRTC UDP mux: mapping refused', {
        from: key,
        mappings: this.mappings.size,
        forPeer: perPeer,
        maxMappings: this.options.maxMappings,
        maxMappingsPerPeer: this.options.maxMappingsPerPeer,
      });
      return undefined;
    }
    return peer;
  }

  /** The peer a datagram from an unknown remote belongs to: a Binding request naming it, correctly signed. */
  private peerOf(data: Buffer): MuxPeer | undefined {
    const message = tryParseStun(data);
    if (message === undefined || message.type !== BINDING_REQUEST) return undefined;
    const names = iceUsername(message);
    if (names === undefined) return undefined;
    const peer = this.peers.get(`${names.serverUfrag}:${names.clientUfrag}`);
    if (peer === undefined) return undefined;
    return verifyIntegrity(data, message, peer.serverPassword) ? peer : undefined;
  }

  private map(
    key: string,
    peer: MuxPeer,
    first: Buffer,
    remoteAddress: string,
    remotePort: number,
    send: (data: Buffer) => void,
    endRemote: () => void,
    backlog: () => number = () => 0,
  ): Mapping {
    const socket = createSocket(isIP(peer.target.address) === 6 ? 'udp6' : 'udp4');
    // The client learns its address as the mux saw it; an IPv4 client on a dual-stack socket is ::ffff:a.b.c.d.
    const mappedAddress =
      remoteAddress.startsWith('::ffff:') && isIPv4(remoteAddress.slice(7)) ? remoteAddress.slice(7) : remoteAddress;
    const mapping: Mapping = {
      key,
      peer,
      socket,
      toRemote: (data) => send(rewriteMappedAddress(data, mappedAddress, remotePort, peer.serverPassword) ?? data),
      endRemote,
      backlog,
      pending: [first],
      lastHeardMs: Date.now(),
    };
    this.mappings.set(key, mapping);
    const ofPeer = this.byUfrag.get(peer.serverUfrag);
    if (ofPeer === undefined) this.byUfrag.set(peer.serverUfrag, new Set([mapping]));
    else ofPeer.add(mapping);
    this.counters.mappingsCreated++;
    socket.on('message', (data) => {
      if (this.mappings.get(key) === mapping) mapping.toRemote(data);
    });
    socket.on('error', (err) => {
      this.log.debug('WebRTC UDP mux: relay socket error', { remote: key, err });
      this.drop(mapping);
    });
    // Bound to werift's own address (loopback behind the UDP mux), so the relay is reachable only locally.
    socket.bind(0, peer.target.address, () => {
      socket.connect(peer.target.port, peer.target.address, () => {
        const pending = mapping.pending ?? [];
        mapping.pending = undefined;
        if (this.mappings.get(key) !== mapping) return;
        for (const d of pending) socket.send(d);
      });
    });
    this.log.debug('WebRTC UDP mux: new remote', { remote: key, ufrag: peer.serverUfrag });
    return mapping;
  }

  private drop(mapping: Mapping): void {
    if (this.mappings.get(mapping.key) !== mapping) return;
    this.mappings.delete(mapping.key);
    const ofPeer = this.byUfrag.get(mapping.peer.serverUfrag);
    ofPeer?.delete(mapping);
    if (ofPeer?.size === 0) this.byUfrag.delete(mapping.peer.serverUfrag);
    mapping.endRemote();
    try {
      mapping.socket.close();
    } catch {
      // already closed by an error
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const m of [...this.mappings.values()]) {
      if (now - m.lastHeardMs >= this.options.idleTimeoutMs) {
        this.log.debug('WebRTC UDP mux: remote went quiet', { remote: m.key, ufrag: m.peer.serverUfrag });
        this.drop(m);
      }
    }
  }
}
