// Puts srtp-verify.ts in front of werift for one peer: every SRTP and SRTCP packet the peer sends
// is authenticated and replay-checked before werift decrypts and parses it (werift 0.22 checks
// neither), and what fails is dropped and counted. DTLS, STUN and anything else pass untouched.
//
// The hook: werift's ICE connection hands each received non-STUN datagram to its subscribers with
// `connection.onData.execute(data)` (ice.js), and the DTLS transport's subscriber (dtls.js
// startSrtp) decrypts what looks like RTP/RTCP. Wrapping that one `execute` filters the datagram
// before every subscriber, without throwing through werift and without touching its SRTP sessions,
// which werift replaces when DTLS reconnects (updateSrtpSession). The keys are the remote side's,
// read from werift's DTLS exporter the way srtp-sender.ts reads ours, again whenever werift makes a
// new SRTP session. If a werift upgrade moves any of this, install() says so (the route refuses
// the peer and logs it), a packet we cannot check is dropped (logged once), and bypassed() counts
// media werift received that never came through here. srtp-guard.test.ts checks the hook on the
// werift installed; test/integration/webrtc-srtp-auth.test.ts fails if packets get past it.

import type { RTCPeerConnection } from 'werift';
import { MalformedInputError } from '../../errors.js';
import { srtpProfileSizes } from './srtp-protect.js';
import { SrtpVerifier, type SrtpRejection, type SrtpVerdict } from './srtp-verify.js';

export type SrtpPacketKind = 'srtp' | 'srtcp';
export type InboundRejection = SrtpRejection | 'malformed';
export const INBOUND_REJECTIONS: readonly InboundRejection[] = ['auth', 'replay', 'too-old', 'malformed'];

export type RejectionCounts = Record<SrtpPacketKind, Record<InboundRejection, number>>;

export function emptyRejectionCounts(): RejectionCounts {
  return {
    srtp: { auth: 0, replay: 0, 'too-old': 0, malformed: 0 },
    srtcp: { auth: 0, replay: 0, 'too-old': 0, malformed: 0 },
  };
}

export interface SrtpGuardEvents {
  /** A packet was dropped (called per packet: the caller counts, and logs once). */
  rejected: (kind: SrtpPacketKind, reason: InboundRejection, detail: string) => void;
  /** werift's internals are not where this file expects them: nothing can be checked (called once). */
  broken: (detail: string) => void;
}

/** What is read of werift 0.22's DTLS transport: its DTLS socket (profile, exporter), SRTP session, counter, ICE. */
interface DtlsInternals {
  dtls?: {
    srtp?: { srtpProfile?: number };
    extractSessionKeys?: (keyLength: number, saltLength: number) => { remoteKey: Buffer; remoteSalt: Buffer };
  };
  srtp?: object;
  packetsReceived?: number;
  iceTransport?: { connection?: { onData?: DataEvent } };
}

interface DataEvent {
  execute?: (data: Buffer, ...rest: unknown[]) => void;
}

/** werift's tests for what it hands to SRTP/SRTCP (rtp helper.js isMedia, rtcp.js isRtcp): the same here. */
function isMedia(data: Buffer): boolean {
  const first = data[0];
  return first !== undefined && first > 127 && first < 192;
}
function isRtcp(data: Buffer): boolean {
  const pt = data[1];
  return pt !== undefined && pt >= 192 && pt <= 208;
}

const GUARDED = Symbol('feedcast.srtpGuard');

/** One DTLS transport's check (a BUNDLEd peer has one). */
class TransportGuard {
  private readonly transport: DtlsInternals;
  private readonly events: SrtpGuardEvents;
  private readonly counts: { verified: number; rejected: RejectionCounts; unchecked: number };
  /** werift's SRTP session the verifier was made for: a new one means new keys. */
  private session: object | undefined;
  private verifier: SrtpVerifier | undefined;

  constructor(transport: DtlsInternals, events: SrtpGuardEvents, counts: TransportGuard['counts']) {
    this.transport = transport;
    this.events = events;
    this.counts = counts;
  }

  /** The profile the keys are for, once DTLS chose one. */
  get profileName(): string | undefined {
    return this.verifier !== undefined ? srtpProfileSizes(this.verifier.profile)?.name : undefined;
  }

  /** Whether werift may have `data`: true for anything not SRTP/SRTCP, and for packets that verify. */
  pass(data: Buffer): boolean {
    if (!Buffer.isBuffer(data) || !isMedia(data)) return true;
    const verifier = this.currentVerifier();
    if (verifier === undefined) {
      // Before DTLS is up werift has no SRTP session and reads no media; after, keys we cannot get.
      this.counts.unchecked++;
      return false;
    }
    const kind: SrtpPacketKind = isRtcp(data) ? 'srtcp' : 'srtp';
    let verdict: SrtpVerdict | 'malformed';
    let detail = '';
    try {
      verdict = kind === 'srtcp' ? verifier.verifyRtcp(data) : verifier.verifyRtp(data);
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
      verdict = 'malformed';
      detail = err.message;
    }
    if (verdict === 'ok') {
      this.counts.verified++;
      return true;
    }
    this.counts.rejected[kind][verdict]++;
    this.events.rejected(kind, verdict, detail !== '' ? detail : `${data.length} bytes`);
    return false;
  }

  private currentVerifier(): SrtpVerifier | undefined {
    const session = this.transport.srtp;
    if (session === undefined) return undefined;
    if (session === this.session) return this.verifier;
    this.session = session;
    this.verifier = undefined;
    const socket = this.transport.dtls;
    const profile = socket?.srtp?.srtpProfile;
    const sizes = profile !== undefined ? srtpProfileSizes(profile) : undefined;
    if (profile === undefined || sizes === undefined || typeof socket?.extractSessionKeys !== 'function') {
      this.events.broken(
        `werift's DTLS transport has an SRTP session but ${profile === undefined ? 'no SRTP profile' : sizes === undefined ? `profile 0x${profile.toString(16)}` : 'no key exporter'}`,
      );
      return undefined;
    }
    try {
      const keys = socket.extractSessionKeys(sizes.keyBytes, sizes.saltBytes);
      this.verifier = SrtpVerifier.fromMaster(profile, keys.remoteKey, keys.remoteSalt);
    } catch (err) {
      // Keys werift cannot give (or not in the shape it gave them before): nothing of this session is taken.
      this.events.broken(
        `werift's DTLS exporter gave no usable remote SRTP keys: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    return this.verifier;
  }
}

export class SrtpGuard {
  /** Packets that authenticated and were new. */
  get verified(): number {
    return this.counts.verified;
  }
  /** Packets dropped, by kind and reason. */
  get rejected(): RejectionCounts {
    return this.counts.rejected;
  }
  /** Media packets dropped because no keys were there to check them with (before DTLS, or werift moved). */
  get unchecked(): number {
    return this.counts.unchecked;
  }

  /** The SRTP profile DTLS chose (AES_CM_128_HMAC_SHA1_80 or AEAD_AES_128_GCM), once it did. */
  get profileName(): string | undefined {
    for (const check of this.checks) if (check.profileName !== undefined) return check.profileName;
    return undefined;
  }

  private readonly counts = { verified: 0, rejected: emptyRejectionCounts(), unchecked: 0 };
  private readonly transports: DtlsInternals[];
  private readonly checks: TransportGuard[] = [];

  private constructor(transports: DtlsInternals[]) {
    this.transports = transports;
  }

  /**
   * Wraps the ICE data event of each of `pc`'s DTLS transports (call after setLocalDescription:
   * werift makes them there). Returns why not when werift's transports are not as expected.
   */
  static install(pc: RTCPeerConnection, events: SrtpGuardEvents): SrtpGuard | string {
    const transports = pc.dtlsTransports as unknown as DtlsInternals[];
    if (transports.length === 0) return "werift's peer has no DTLS transport after setLocalDescription";
    const events_: DataEvent[] = [];
    for (const transport of transports) {
      const event = transport.iceTransport?.connection?.onData;
      if (typeof event?.execute !== 'function') return "werift's ICE connection has no onData.execute to filter";
      if (!('srtp' in transport) || !('packetsReceived' in transport))
        return "werift's DTLS transport has no srtp/packetsReceived";
      events_.push(event);
    }
    const guard = new SrtpGuard(transports);
    let brokenSaid = false;
    const once: SrtpGuardEvents = {
      rejected: events.rejected,
      broken: (detail) => {
        if (brokenSaid) return;
        brokenSaid = true;
        events.broken(detail);
      },
    };
    transports.forEach((transport, i) => {
      const event = events_[i] as DataEvent & { [GUARDED]?: true };
      if (event[GUARDED] === true) return;
      const check = new TransportGuard(transport, once, guard.counts);
      guard.checks.push(check);
      const execute = event.execute as (data: Buffer, ...rest: unknown[]) => void;
      event.execute = (data: Buffer, ...rest: unknown[]) => {
        if (check.pass(data)) execute(data, ...rest);
      };
      event[GUARDED] = true;
    });
    return guard;
  }

  /**
   * SRTP/SRTCP packets werift's DTLS transports counted as received beyond those that passed
   * here: more than 0 means werift reads media by another way than the wrapped event.
   */
  bypassed(): number {
    const received = this.transports.reduce((sum, t) => sum + (t.packetsReceived ?? 0), 0);
    return Math.max(0, received - this.counts.verified);
  }
}
