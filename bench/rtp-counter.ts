// Counts one WebRTC viewer's RTP packets per SSRC from their headers alone (RFC 3550 5.1; SRTP
// leaves the header in the clear, so nothing is decrypted), and turns two snapshots into a
// window's figures: packets received and expected (sequence gaps = loss), media time, full rate.

/** What one SSRC has delivered so far. */
export interface SsrcCount {
  packets: number;
  /** Whole datagrams (header + encrypted payload + auth tag). */
  bytes: number;
  /** Highest extended sequence number seen, and the extended RTP timestamp of that packet. */
  maxSeq: number;
  tsAtMax: number;
}

/** RFC 7983 / RFC 5761: first byte 128–191 is RTP or RTCP; a second byte 192–223 is RTCP. */
export function isRtp(packet: Uint8Array): boolean {
  if (packet.length < 12) return false;
  const b0 = packet[0] as number;
  const b1 = packet[1] as number;
  return b0 >= 128 && b0 <= 191 && !(b1 >= 192 && b1 <= 223);
}

export class RtpCounter {
  readonly bySsrc = new Map<number, SsrcCount>();
  /** Wall ms of the first RTP packet (any SSRC), for the time to first packet. */
  firstAt: number | undefined;
  /** Datagrams that looked like RTP but were too short for their own header. */
  malformed = 0;

  /** Counts one datagram; false when it is not RTP (the caller passes it on: STUN, DTLS, RTCP). */
  onDatagram(packet: Uint8Array, nowMs: number): boolean {
    if (!isRtp(packet)) return false;
    const csrcs = (packet[0] as number) & 0x0f;
    if (packet.length < 12 + 4 * csrcs) {
      this.malformed++;
      return true;
    }
    const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
    const seq = view.getUint16(2);
    const ts = view.getUint32(4);
    const ssrc = view.getUint32(8);
    this.firstAt ??= nowMs;
    const c = this.bySsrc.get(ssrc);
    if (c === undefined) {
      this.bySsrc.set(ssrc, { packets: 1, bytes: packet.length, maxSeq: seq, tsAtMax: ts });
      return true;
    }
    c.packets++;
    c.bytes += packet.length;
    const forward = (seq - (c.maxSeq & 0xffff) + 0x10000) & 0xffff;
    // A late (reordered or repeated) packet counts but does not move the highest sequence number.
    if (forward === 0 || forward >= 0x8000) return true;
    c.maxSeq += forward;
    const tsDelta = (ts - (c.tsAtMax % 2 ** 32) + 2 ** 32) % 2 ** 32;
    c.tsAtMax += tsDelta < 2 ** 31 ? tsDelta : tsDelta - 2 ** 32;
    return true;
  }

  /** A copy of the counts now. */
  snapshot(): Map<number, SsrcCount> {
    return new Map([...this.bySsrc].map(([k, v]) => [k, { ...v }]));
  }
}

export interface WindowFigures {
  ssrc: number;
  received: number;
  /** Packets the sequence numbers say were sent over the window; expected − received is the loss. */
  expected: number;
  lost: number;
  bytes: number;
  /** Media seconds the RTP timestamps advanced. */
  mediaSec: number;
  /** Received packets per wall second, and the sender's packets per media second. */
  rate: number;
  sentRate: number;
  /** Received rate ≥ `threshold` × sent rate: nothing lost and nothing late beyond the threshold. */
  fullRate: boolean;
}

/**
 * The window between two snapshots of one viewer, for its busiest SSRC (the video): a viewer is
 * at full rate when the packets it received per wall second reach `threshold` of the packets the
 * sender made per media second (a server that falls behind delivers less media time; one that
 * drops leaves sequence gaps).
 */
export function windowFigures(
  before: ReadonlyMap<number, SsrcCount>,
  after: ReadonlyMap<number, SsrcCount>,
  wallSec: number,
  clockRate: number,
  threshold = 0.95,
): WindowFigures | undefined {
  let ssrc: number | undefined;
  let most = -1;
  for (const [k, v] of after) {
    const gained = v.packets - (before.get(k)?.packets ?? 0);
    if (gained > most) {
      most = gained;
      ssrc = k;
    }
  }
  if (ssrc === undefined) return undefined;
  const a = before.get(ssrc);
  const b = after.get(ssrc) as SsrcCount;
  if (a === undefined || b.maxSeq <= a.maxSeq) return undefined;
  const received = b.packets - a.packets;
  const expected = b.maxSeq - a.maxSeq;
  const mediaSec = (b.tsAtMax - a.tsAtMax) / clockRate;
  const rate = received / wallSec;
  const sentRate = mediaSec > 0 ? expected / mediaSec : Infinity;
  return {
    ssrc,
    received,
    expected,
    lost: Math.max(0, expected - received),
    bytes: b.bytes - a.bytes,
    mediaSec,
    rate,
    sentRate,
    fullRate: rate >= threshold * sentRate,
  };
}
