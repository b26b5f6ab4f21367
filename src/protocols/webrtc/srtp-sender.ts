// The WHEP send path past werift's RTP sender, once a viewer's DTLS is up: the viewer's packets of
// one frame are written into one buffer of its own (headers, shared payloads copied after them),
// SRTP-protected there (srtp-protect.ts, keys from werift's DTLS exporter) and sent on the ICE
// pair werift selected, as one sendmmsg() per frame (native/rtp-send.c) or one send() per packet
// without the native module. werift keeps ICE (consent checks), DTLS, SRTCP: its sender's RTCP
// loop still sends the sender reports, from the counters updated here, and the NACKs, PLIs and
// receiver reports it decodes are still its events (from-feed.ts answers NACKs from its own ring
// of the protected packets, which this file resends as they are).

import type { Socket as UdpSocket } from 'node:dgram';
import type { RTCDtlsTransport, RTCRtpSender } from 'werift';
import { udpHandle } from '../udp-handle.js';
import { nativeRtpSend } from './native-rtp-send.js';
import { deriveSrtpKeys, SrtpProtector, srtpProfileSizes } from './srtp-protect.js';

/** What is read of werift's DTLS transport (its DTLS socket's SRTP profile and exporter). */
interface DtlsInternals {
  dtls?: {
    srtp?: { srtpProfile?: number };
    extractSessionKeys?: (keyLength: number, saltLength: number) => { localKey: Buffer; localSalt: Buffer };
  };
  bytesSent: number;
  packetsSent: number;
  iceTransport: { connection: unknown };
}

/** What is read of werift's ICE connection: the selected pair and RFC 7675 consent. */
interface IceInternals {
  nominated?: {
    protocol: { transport?: { socket?: unknown; closed?: boolean } };
    remoteAddr: readonly [string, number];
    packetsSent: number;
    bytesSent: number;
  };
  canSendApplicationData?: () => boolean;
  send: (data: Buffer) => Promise<void>;
}

/** What werift's RTCP loop reads to write the sender reports (RFC 3550 6.4.1). */
interface SenderReportFields {
  ntpTimestamp: bigint;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
}

function isUdpSocket(x: unknown): x is UdpSocket {
  return typeof x === 'object' && x !== null && typeof (x as UdpSocket).send === 'function' && 'type' in x;
}

const NTP_EPOCH_OFFSET_SEC = 2_208_988_800;

/** Now as a 64-bit NTP timestamp (RFC 5905), for sender reports. */
export function ntpNow(nowMs: number): bigint {
  const seconds = Math.floor(nowMs / 1000);
  const fraction = Math.floor(((nowMs - seconds * 1000) / 1000) * 2 ** 32);
  return (BigInt(seconds + NTP_EPOCH_OFFSET_SEC) << 32n) | BigInt(fraction);
}

/** One viewer's SRTP session and UDP path (all its RTP streams share it: BUNDLE). */
export class SrtpSender {
  readonly protector: SrtpProtector;
  private readonly dtls: DtlsInternals;
  private readonly ice: IceInternals;
  /** How the packets leave, for the status page: "sendmmsg", "send" or "werift ICE". */
  path = 'none';
  /** Datagrams the socket or the ICE pair could not send. */
  dropped = 0;

  private constructor(dtls: DtlsInternals, protector: SrtpProtector) {
    this.dtls = dtls;
    this.ice = dtls.iceTransport.connection as IceInternals;
    this.protector = protector;
  }

  /**
   * The sender for a connected DTLS transport, or the reason there is none (werift then sends as
   * before): an SRTP profile this path does not protect with, or a werift without the exporter.
   */
  static open(transport: RTCDtlsTransport): SrtpSender | string {
    const dtls = transport as unknown as DtlsInternals;
    const socket = dtls.dtls;
    const profile = socket?.srtp?.srtpProfile;
    if (socket?.extractSessionKeys === undefined || profile === undefined) return 'DTLS has no SRTP profile or exporter';
    const sizes = srtpProfileSizes(profile);
    if (sizes === undefined) return `SRTP profile 0x${profile.toString(16)}`;
    const keys = socket.extractSessionKeys(sizes.keyBytes, sizes.saltBytes);
    return new SrtpSender(dtls, new SrtpProtector(deriveSrtpKeys(profile, keys.localKey, keys.localSalt)));
  }

  get tagBytes(): number {
    return this.protector.tagBytes;
  }

  /**
   * Sends `count` protected datagrams of `buf`: datagram i spans [ends[i-1] (0 for the first), ends[i]).
   * Returns how many were sent or queued: 0 without a selected pair or without consent (RFC 7675).
   */
  send(buf: Buffer, ends: Int32Array, count: number): number {
    const ice = this.ice;
    const pair = ice.nominated;
    if (count === 0 || pair === undefined || ice.canSendApplicationData?.() === false) return 0;
    const bytes = ends[count - 1] as number;
    const socket = pair.protocol.transport?.socket;
    if (isUdpSocket(socket)) {
      const handle = udpHandle(socket);
      // A closed socket (the peer is going): nothing to send on, and dgram would throw.
      if (handle === null || pair.protocol.transport?.closed === true) return 0;
      const fd = handle?.fd;
      const native = nativeRtpSend;
      let from = 0;
      // Past Node only while Node holds none of this socket's datagrams, so they leave in order.
      if (native !== undefined && typeof fd === 'number' && fd >= 0 && this.inNode === 0) {
        this.path = 'sendmmsg';
        from = Math.max(0, native.sendDatagrams(fd, buf, ends, count, pair.remoteAddr[0], pair.remoteAddr[1]));
      } else {
        this.path = 'send';
      }
      // What the kernel did not take at once (or everything, without the native module) goes
      // through Node, which queues it until the socket is writable, as werift's sends were.
      let start = from === 0 ? 0 : (ends[from - 1] as number);
      for (let i = from; i < count; i++) {
        const end = ends[i] as number;
        this.inNode++;
        socket.send(buf, start, end - start, pair.remoteAddr[1], pair.remoteAddr[0], this.sendDone);
        start = end;
      }
    } else {
      // Not a plain UDP socket: werift's own ICE send, one datagram at a time.
      this.path = 'werift ICE';
      let start = 0;
      for (let i = 0; i < count; i++) {
        const end = ends[i] as number;
        ice.send(buf.subarray(start, end)).catch(this.iceSendFailed);
        start = end;
      }
    }
    pair.packetsSent += count;
    pair.bytesSent += bytes;
    this.dtls.packetsSent += count;
    this.dtls.bytesSent += bytes;
    return count;
  }

  /** Datagrams handed to Node's socket and not sent yet. */
  private inNode = 0;

  /** Node's send callback: a datagram the socket could not send (no route, message too long) is counted. */
  private readonly sendDone = (err: Error | null): void => {
    this.inNode--;
    if (err !== null) this.dropped++;
  };

  private readonly iceSendFailed = (): void => {
    this.dropped++;
  };

  /** Sends one datagram again (a NACKed packet, protected as it was: same index, same bytes). */
  resend(buf: Buffer, start: number, end: number): void {
    const ends = this.one;
    ends[0] = end - start;
    this.send(buf.subarray(start, end), ends, 1);
  }

  private readonly one = new Int32Array(1);
}

/** Updates what werift's RTCP loop puts in `sender`'s next sender report, and starts the loop once. */
export function noteSent(sender: RTCRtpSender, rtpTimestamp: number, packets: number, payloadBytes: number, nowMs: number): void {
  const s = sender as unknown as SenderReportFields;
  s.ntpTimestamp = ntpNow(nowMs);
  s.rtpTimestamp = rtpTimestamp;
  s.packetCount = (s.packetCount + packets) >>> 0;
  s.octetCount = (s.octetCount + payloadBytes) >>> 0;
}
