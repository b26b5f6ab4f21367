// Checks the SRTP and SRTCP packets a WebRTC peer sends us before werift reads them: the
// authentication tag of AES_CM_128_HMAC_SHA1_80 (RFC 3711 4.2, 3.4) or AEAD_AES_128_GCM
// (RFC 7714 8-9, the tag GCM decryption checks), and replay protection with a sliding window per
// SSRC (RFC 3711 3.3.2; RFC 7714 keeps it). werift 0.22 decrypts without either check.
// Nothing is decrypted for werift here: it decrypts what passes, as before.

import { createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import { MalformedInputError } from '../../errors.js';
import {
  deriveSrtcpKeys,
  deriveSrtpKeys,
  SRTP_AEAD_AES_128_GCM,
  type SrtpProfile,
  type SrtpSessionKeys,
} from './srtp-protect.js';

/** Why a packet was dropped: its tag does not match, its index was seen, or is behind the window. */
export type SrtpRejection = 'auth' | 'replay' | 'too-old';
export type SrtpVerdict = 'ok' | SrtpRejection;

/**
 * Packets an SSRC may arrive out of order and still be taken. libwebrtc's receivers use 1024 for
 * SRTP (a retransmission without RTX comes back with its old index) and libsrtp 128 for SRTCP.
 */
export const SRTP_REPLAY_WINDOW = 1024;
export const SRTCP_REPLAY_WINDOW = 128;

/**
 * RFC 3711 3.3.2: the highest index taken and a bitmap of the `size` indices up to it (a ring:
 * index i is bit i mod size). An index above the highest is new; one `size` or more below is too
 * old to tell, so it is refused.
 */
export class ReplayWindow {
  readonly size: number;
  /** -1 before the first index is taken. */
  highest = -1;
  private readonly seen: Uint32Array;

  constructor(size: number) {
    if (size <= 0 || size % 32 !== 0) throw new RangeError(`replay window of ${size} (a positive multiple of 32)`);
    this.size = size;
    this.seen = new Uint32Array(size / 32);
  }

  check(index: number): SrtpVerdict {
    if (index > this.highest) return 'ok';
    if (index < 0 || this.highest - index >= this.size) return 'too-old';
    return this.isSeen(index) ? 'replay' : 'ok';
  }

  /** Records an index that check() passed and whose packet authenticated. */
  accept(index: number): void {
    if (index > this.highest) {
      // Forget what slides out: the slots of the indices skipped between the old highest and this one.
      if (this.highest < 0 || index - this.highest >= this.size) this.seen.fill(0);
      else for (let i = this.highest + 1; i < index; i++) this.mark(i, false);
      this.highest = index;
    }
    this.mark(index, true);
  }

  private isSeen(index: number): boolean {
    const slot = index % this.size;
    return ((this.seen[slot >>> 5] as number) & (1 << (slot & 31))) !== 0;
  }

  private mark(index: number, seen: boolean): void {
    const slot = index % this.size;
    const word = slot >>> 5;
    const bit = 1 << (slot & 31);
    this.seen[word] = seen ? (this.seen[word] as number) | bit : (this.seen[word] as number) & ~bit;
  }
}

/**
 * RFC 3711 3.3.1 / Appendix A: the 48-bit packet index (ROC * 2^16 + SEQ) of sequence number
 * `seq`, guessed from the highest index taken so far (-1: none yet, and the first packet has
 * ROC 0, as every sender starts). Negative when it would come before the stream began.
 */
export function estimateIndex(highest: number, seq: number): number {
  if (highest < 0) return seq;
  const roc = Math.floor(highest / 0x10000);
  const last = highest % 0x10000;
  let v = roc;
  if (last < 0x8000) {
    if (seq - last > 0x8000) v = roc - 1;
  } else if (last - 0x8000 > seq) {
    v = roc + 1;
  }
  return v * 0x10000 + seq;
}

const RTP_FIXED_HEADER_BYTES = 12;
const RTCP_HEADER_BYTES = 8;
const SRTCP_INDEX_BYTES = 4;
const CM_TAG_BYTES = 10;
const GCM_TAG_BYTES = 16;

/**
 * RFC 3550 5.1: the bytes of an RTP header (fixed part, CSRCs, extension) in `packet`, checked
 * to end by `limit` (where the tag starts).
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 * |                           timestamp                           |
 * |           synchronization source (SSRC) identifier            |
 * |            contributing source (CSRC) identifiers  (CC x 32)  |
 * |  extension profile (X=1)      |     length (32-bit words)     |
 */
export function rtpHeaderBytes(packet: Buffer, limit: number): number {
  if (limit < RTP_FIXED_HEADER_BYTES) {
    throw new MalformedInputError('SRTP', packet.length, `packet of ${packet.length} bytes is shorter than a header and a tag`);
  }
  const first = packet[0] as number;
  if (first >> 6 !== 2) throw new MalformedInputError('SRTP', 0, `RTP version ${first >> 6} (2 expected)`);
  let bytes = RTP_FIXED_HEADER_BYTES + 4 * (first & 0x0f);
  if ((first & 0x10) !== 0) {
    if (bytes + 4 > limit) throw new MalformedInputError('SRTP', bytes, `header extension past the payload end at ${limit}`);
    bytes += 4 + 4 * packet.readUInt16BE(bytes + 2);
  }
  if (bytes > limit)
    throw new MalformedInputError('SRTP', bytes, `RTP header of ${bytes} bytes past the payload end at ${limit}`);
  return bytes;
}

/**
 * Checks inbound SRTP and SRTCP of one peer (the remote side's keys of one DTLS session). Each
 * check returns 'ok' and records the packet's index, or why the packet must be dropped; a packet
 * too short to hold its header and tag throws MalformedInputError.
 */
export class SrtpVerifier {
  readonly profile: SrtpProfile;
  private readonly srtp: SrtpSessionKeys;
  private readonly srtcp: SrtpSessionKeys;
  private readonly tagBytes: number;
  /** Per SSRC: RTP indices, SRTCP indices. Made for an SSRC only once a packet of it authenticates. */
  private readonly rtpWindows = new Map<number, ReplayWindow>();
  private readonly rtcpWindows = new Map<number, ReplayWindow>();
  /** Reused per packet: the IVs (createDecipheriv copies them) and the ROC the HMAC covers. */
  private readonly gcmIv = Buffer.alloc(12);
  private readonly cmIv = Buffer.alloc(16);
  private readonly roc = Buffer.alloc(4);
  private readonly gcmRtcpAad = Buffer.alloc(RTCP_HEADER_BYTES + SRTCP_INDEX_BYTES);

  constructor(srtp: SrtpSessionKeys, srtcp: SrtpSessionKeys) {
    this.profile = srtp.profile;
    this.srtp = srtp;
    this.srtcp = srtcp;
    this.tagBytes = srtp.profile === SRTP_AEAD_AES_128_GCM ? GCM_TAG_BYTES : CM_TAG_BYTES;
  }

  /** The verifier of a peer's packets, from its master key and salt (DTLS exporter, RFC 5764 4.2). */
  static fromMaster(profile: number, masterKey: Buffer, masterSalt: Buffer): SrtpVerifier {
    return new SrtpVerifier(deriveSrtpKeys(profile, masterKey, masterSalt), deriveSrtcpKeys(profile, masterKey, masterSalt));
  }

  /** RFC 3711 3.3: index from SEQ, replay check, then the tag; only an authentic packet moves the window. */
  verifyRtp(packet: Buffer): SrtpVerdict {
    const payloadEnd = packet.length - this.tagBytes;
    const headerBytes = rtpHeaderBytes(packet, payloadEnd);
    const seq = packet.readUInt16BE(2);
    const ssrc = packet.readUInt32BE(8);
    const window = this.rtpWindows.get(ssrc);
    const index = estimateIndex(window?.highest ?? -1, seq);
    const replay = window?.check(index) ?? 'ok';
    if (replay !== 'ok') return replay;
    const roc = Math.floor(index / 0x10000);
    const authentic =
      this.profile === SRTP_AEAD_AES_128_GCM
        ? this.gcmRtpAuthentic(packet, headerBytes, payloadEnd, ssrc, roc, seq)
        : this.cmAuthentic(this.srtp, packet, payloadEnd, roc);
    if (!authentic) return 'auth';
    this.windowOf(this.rtpWindows, ssrc, SRTP_REPLAY_WINDOW).accept(index);
    return 'ok';
  }

  /**
   * RFC 3711 3.4 (CM: ... || E+index || tag) and RFC 7714 9 (GCM: ... || tag || E+index): the
   * 31-bit SRTCP index is in the packet, so no guessing; a window per sender SSRC.
   */
  verifyRtcp(packet: Buffer): SrtpVerdict {
    const minBytes = RTCP_HEADER_BYTES + SRTCP_INDEX_BYTES + this.tagBytes;
    if (packet.length < minBytes) {
      throw new MalformedInputError('SRTCP', packet.length, `packet of ${packet.length} bytes (at least ${minBytes})`);
    }
    const gcm = this.profile === SRTP_AEAD_AES_128_GCM;
    const indexAt = gcm ? packet.length - SRTCP_INDEX_BYTES : packet.length - CM_TAG_BYTES - SRTCP_INDEX_BYTES;
    const word = packet.readUInt32BE(indexAt);
    const index = word & 0x7fffffff;
    const ssrc = packet.readUInt32BE(4);
    const window = this.rtcpWindows.get(ssrc);
    const replay = window?.check(index) ?? 'ok';
    if (replay !== 'ok') return replay;
    const authentic = gcm
      ? this.gcmRtcpAuthentic(packet, indexAt, ssrc, index, (word & 0x80000000) !== 0)
      : this.cmAuthentic(this.srtcp, packet, packet.length - CM_TAG_BYTES, undefined);
    if (!authentic) return 'auth';
    this.windowOf(this.rtcpWindows, ssrc, SRTCP_REPLAY_WINDOW).accept(index);
    return 'ok';
  }

  private windowOf(windows: Map<number, ReplayWindow>, ssrc: number, size: number): ReplayWindow {
    let window = windows.get(ssrc);
    if (window === undefined) {
      window = new ReplayWindow(size);
      windows.set(ssrc, window);
    }
    return window;
  }

  /**
   * RFC 3711 4.2: HMAC-SHA1 over the authenticated portion (SRTP: the packet and the ROC; SRTCP:
   * the packet with its E+index word), its first 80 bits compared in constant time with the tag.
   */
  private cmAuthentic(keys: SrtpSessionKeys, packet: Buffer, tagAt: number, roc: number | undefined): boolean {
    const hmac = createHmac('sha1', keys.authKey as Buffer).update(packet.subarray(0, tagAt));
    if (roc !== undefined) {
      this.roc.writeUInt32BE(roc >>> 0, 0);
      hmac.update(this.roc);
    }
    return timingSafeEqual(hmac.digest().subarray(0, CM_TAG_BYTES), packet.subarray(tagAt, tagAt + CM_TAG_BYTES));
  }

  /** RFC 7714 8.1-8.2: IV = (00 00 || SSRC || ROC || SEQ) XOR salt; the header is the AAD. */
  private gcmRtpAuthentic(
    packet: Buffer,
    headerBytes: number,
    payloadEnd: number,
    ssrc: number,
    roc: number,
    seq: number,
  ): boolean {
    const iv = this.gcmIv;
    iv.writeUInt16BE(0, 0);
    iv.writeUInt32BE(ssrc, 2);
    iv.writeUInt32BE(roc >>> 0, 6);
    iv.writeUInt16BE(seq, 10);
    xorInto(iv, this.srtp.salt);
    return gcmOpens(
      this.srtp.encryptionKey,
      iv,
      packet.subarray(0, headerBytes),
      undefined,
      packet.subarray(headerBytes, payloadEnd),
      packet.subarray(payloadEnd),
    );
  }

  /**
   * RFC 7714 9.1-9.3: IV = (00 00 || SSRC || 00 00 || index) XOR salt. Encrypted (E=1), the AAD is
   * the 8-byte header and the E+index word; not encrypted (E=0), the whole packet before the tag
   * is AAD and nothing is ciphertext.
   */
  private gcmRtcpAuthentic(packet: Buffer, indexAt: number, ssrc: number, index: number, encrypted: boolean): boolean {
    const tagAt = indexAt - GCM_TAG_BYTES;
    const iv = this.gcmIv;
    iv.writeUInt16BE(0, 0);
    iv.writeUInt32BE(ssrc, 2);
    iv.writeUInt16BE(0, 6);
    iv.writeUInt32BE(index, 8);
    xorInto(iv, this.srtcp.salt);
    const indexWord = packet.subarray(indexAt, indexAt + SRTCP_INDEX_BYTES);
    const tag = packet.subarray(tagAt, indexAt);
    if (encrypted) {
      const aad = this.gcmRtcpAad;
      packet.copy(aad, 0, 0, RTCP_HEADER_BYTES);
      indexWord.copy(aad, RTCP_HEADER_BYTES);
      return gcmOpens(this.srtcp.encryptionKey, iv, aad, undefined, packet.subarray(RTCP_HEADER_BYTES, tagAt), tag);
    }
    return gcmOpens(this.srtcp.encryptionKey, iv, packet.subarray(0, tagAt), indexWord, Buffer.alloc(0), tag);
  }
}

/** AES-128-GCM: whether the tag matches (decipher.final() checks it, in constant time, in OpenSSL). */
function gcmOpens(key: Buffer, iv: Buffer, aad: Buffer, aadTail: Buffer | undefined, ciphertext: Buffer, tag: Buffer): boolean {
  const decipher = createDecipheriv('aes-128-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
  decipher.setAAD(aadTail === undefined ? aad : Buffer.concat([aad, aadTail]));
  decipher.setAuthTag(tag);
  decipher.update(ciphertext);
  try {
    decipher.final();
    return true;
  } catch {
    return false;
  }
}

function xorInto(target: Buffer, mask: Buffer): void {
  for (let i = 0; i < mask.length; i++) target[i] = (target[i] as number) ^ (mask[i] as number);
}
