// SRTP protection of the RTP packets Feedcast sends to a WHEP viewer, in place in the viewer's
// own buffer: AES-128-CM with HMAC-SHA1-80 (RFC 3711) or AEAD AES-128-GCM (RFC 7714), whichever
// the viewer's DTLS handshake chose (RFC 5764). Session keys are derived once from the DTLS
// exporter's master key and salt (RFC 3711 4.3.1, key_derivation_rate 0); each packet then costs
// one cipher (and, for CM, one HMAC) from node:crypto and no other allocation.
// Sending; the same derivation gives the remote side's keys (SRTP and SRTCP) that srtp-verify.ts
// checks inbound packets with.

import { createCipheriv, createHmac } from 'node:crypto';
import { ProtocolError, UnsupportedError } from '../../errors.js';
import { nativeRtpSend, type NativeRtpSend } from './native-rtp-send.js';

/** DTLS-SRTP protection profile numbers (RFC 5764 4.1.2, RFC 7714 14.2). */
export const SRTP_AES128_CM_HMAC_SHA1_80 = 0x0001;
export const SRTP_AEAD_AES_128_GCM = 0x0007;

export type SrtpProfile = typeof SRTP_AES128_CM_HMAC_SHA1_80 | typeof SRTP_AEAD_AES_128_GCM;

export interface SrtpProfileSizes {
  /** Master (and session) key bytes. */
  readonly keyBytes: number;
  /** Master salt bytes, as the DTLS exporter gives them. */
  readonly saltBytes: number;
  /** Authentication tag appended to each packet. */
  readonly tagBytes: number;
  readonly name: string;
}

const PROFILES: ReadonlyMap<number, SrtpProfileSizes> = new Map([
  [SRTP_AES128_CM_HMAC_SHA1_80, { keyBytes: 16, saltBytes: 14, tagBytes: 10, name: 'AES_CM_128_HMAC_SHA1_80' }],
  [SRTP_AEAD_AES_128_GCM, { keyBytes: 16, saltBytes: 12, tagBytes: 16, name: 'AEAD_AES_128_GCM' }],
]);

/** The sizes of a profile this module protects with, or undefined for any other. */
export function srtpProfileSizes(profile: number): SrtpProfileSizes | undefined {
  return PROFILES.get(profile);
}

/** RFC 3711 4.3.2 key derivation labels: encryption, authentication and salt, of SRTP and of SRTCP. */
const SRTP_LABELS = { encryption: 0x00, authentication: 0x01, salt: 0x02 } as const;
const SRTCP_LABELS = { encryption: 0x03, authentication: 0x04, salt: 0x05 } as const;

/**
 * RFC 3711 4.3.1-4.3.3: `length` bytes of the AES-CM PRF keyed with the master key, at
 * x = (label || index DIV kdr) XOR master salt, kdr 0 (so the index part is zero). A 12-byte
 * master salt (GCM, RFC 7714 12) is padded with zeros to 14 bytes, as libsrtp does.
 */
export function deriveSessionKey(masterKey: Buffer, masterSalt: Buffer, label: number, length: number): Buffer {
  if (masterKey.length !== 16) throw new ProtocolError('SRTP', `master key of ${masterKey.length} bytes (AES-128 takes 16)`);
  if (masterSalt.length > 14) throw new ProtocolError('SRTP', `master salt of ${masterSalt.length} bytes (at most 14)`);
  const iv = Buffer.alloc(16);
  masterSalt.copy(iv, 0);
  // key_id = label || r (48 bits), right-aligned in the 112-bit x: the label is byte 7.
  iv[7] = (iv[7] as number) ^ label;
  return createCipheriv('aes-128-ctr', masterKey, iv).update(Buffer.alloc(length));
}

/** The SRTP session keys of one direction. */
export interface SrtpSessionKeys {
  readonly profile: SrtpProfile;
  readonly encryptionKey: Buffer;
  /** 14 bytes (CM) or 12 (GCM). */
  readonly salt: Buffer;
  /** HMAC-SHA1 key, 20 bytes (CM only). */
  readonly authKey: Buffer | undefined;
}

export function deriveSrtpKeys(profile: number, masterKey: Buffer, masterSalt: Buffer): SrtpSessionKeys {
  return deriveKeys(profile, masterKey, masterSalt, SRTP_LABELS);
}

/** The SRTCP session keys of one direction (RFC 3711 4.3.2 labels 3-5; same sizes as SRTP's). */
export function deriveSrtcpKeys(profile: number, masterKey: Buffer, masterSalt: Buffer): SrtpSessionKeys {
  return deriveKeys(profile, masterKey, masterSalt, SRTCP_LABELS);
}

function deriveKeys(
  profile: number,
  masterKey: Buffer,
  masterSalt: Buffer,
  labels: typeof SRTP_LABELS | typeof SRTCP_LABELS,
): SrtpSessionKeys {
  const sizes = srtpProfileSizes(profile);
  if (sizes === undefined) throw new UnsupportedError(`SRTP protection profile 0x${profile.toString(16)} is not supported`);
  if (masterSalt.length !== sizes.saltBytes) {
    throw new ProtocolError('SRTP', `master salt of ${masterSalt.length} bytes for ${sizes.name} (takes ${sizes.saltBytes})`);
  }
  return {
    profile: profile as SrtpProfile,
    encryptionKey: deriveSessionKey(masterKey, masterSalt, labels.encryption, 16),
    salt: deriveSessionKey(masterKey, masterSalt, labels.salt, 14).subarray(0, sizes.saltBytes),
    authKey:
      profile === SRTP_AES128_CM_HMAC_SHA1_80 ? deriveSessionKey(masterKey, masterSalt, labels.authentication, 20) : undefined,
  };
}

/**
 * Protects RTP packets in place: `buf[offset, offset + headerBytes + payloadBytes)` holds a packet
 * in the clear; its payload is encrypted there and the tag written right after it, so the buffer
 * needs `tagBytes` more room. One protector per sending session (its keys); the rollover counter
 * is the caller's, per SSRC (it counts the sequence number's wraps, RFC 3711 3.3.1).
 */
export class SrtpProtector {
  readonly profile: SrtpProfile;
  readonly profileName: string;
  readonly tagBytes: number;
  private readonly key: Buffer;
  private readonly salt: Buffer;
  private readonly authKey: Buffer | undefined;
  /** Reused per packet: the IV (createCipheriv copies it) and the ROC for the HMAC. */
  private readonly iv: Buffer;
  private readonly roc = Buffer.alloc(4);

  /** The native module that protects a whole frame in one call, unless told to use node:crypto. */
  private readonly native: NativeRtpSend | undefined;
  private readonly nativeAuthKey: Buffer;

  constructor(keys: SrtpSessionKeys, useNative = true) {
    this.native = useNative ? nativeRtpSend : undefined;
    this.nativeAuthKey = keys.authKey ?? Buffer.alloc(0);
    this.profile = keys.profile;
    this.profileName = srtpProfileSizes(keys.profile)?.name ?? 'unknown';
    this.tagBytes = keys.profile === SRTP_AEAD_AES_128_GCM ? 16 : 10;
    this.key = keys.encryptionKey;
    this.salt = keys.salt;
    this.authKey = keys.authKey;
    this.iv = Buffer.alloc(keys.profile === SRTP_AEAD_AES_128_GCM ? 12 : 16);
  }

  /** How packets are protected: "native" (OpenSSL, one call a frame) or "node:crypto". */
  get engine(): string {
    return this.native !== undefined ? 'native' : 'node:crypto';
  }

  /**
   * Protects `count` packets of `buf` in place: packet i starts at layout[4i], with a header of
   * layout[4i+1] bytes, a payload of layout[4i+2] bytes and rollover counter layout[4i+3]; each
   * tag goes right after its payload.
   */
  protectAll(buf: Buffer, layout: Int32Array, count: number): void {
    if (this.native !== undefined) {
      this.native.protectDatagrams(this.profile, this.key, this.salt, this.nativeAuthKey, buf, layout, count);
      return;
    }
    for (let i = 0; i < count; i++) {
      const at = 4 * i;
      this.protect(buf, layout[at] as number, layout[at + 1] as number, layout[at + 2] as number, layout[at + 3] as number);
    }
  }

  /** Protects one packet with node:crypto; returns its protected length (header + payload + tag). */
  protect(buf: Buffer, offset: number, headerBytes: number, payloadBytes: number, rolloverCounter: number): number {
    const ssrc = buf.readUInt32BE(offset + 8);
    const seq = buf.readUInt16BE(offset + 2);
    const payloadAt = offset + headerBytes;
    const end = payloadAt + payloadBytes;
    const iv = this.iv;
    iv.fill(0);
    if (this.profile === SRTP_AEAD_AES_128_GCM) {
      // RFC 7714 8.1: 00 00 || SSRC || ROC || SEQ, XOR the 12-byte salt.
      iv.writeUInt32BE(ssrc, 2);
      iv.writeUInt32BE(rolloverCounter >>> 0, 6);
      iv.writeUInt16BE(seq, 10);
      xorInto(iv, this.salt);
      const cipher = createCipheriv('aes-128-gcm', this.key, iv);
      cipher.setAAD(buf.subarray(offset, payloadAt));
      cipher.update(buf.subarray(payloadAt, end)).copy(buf, payloadAt);
      cipher.final();
      cipher.getAuthTag().copy(buf, end);
      return end + 16 - offset;
    }
    // RFC 3711 4.1.1: IV = (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16).
    iv.writeUInt32BE(ssrc, 4);
    iv.writeUInt32BE(rolloverCounter >>> 0, 8);
    iv.writeUInt16BE(seq, 12);
    xorInto(iv, this.salt);
    createCipheriv('aes-128-ctr', this.key, iv).update(buf.subarray(payloadAt, end)).copy(buf, payloadAt);
    // RFC 3711 4.2: HMAC-SHA1 over the packet and the ROC, the first 80 bits.
    this.roc.writeUInt32BE(rolloverCounter >>> 0, 0);
    const mac = createHmac('sha1', this.authKey as Buffer)
      .update(buf.subarray(offset, end))
      .update(this.roc)
      .digest();
    mac.copy(buf, end, 0, 10);
    return end + 10 - offset;
  }
}

function xorInto(target: Buffer, mask: Buffer): void {
  for (let i = 0; i < mask.length; i++) target[i] = (target[i] as number) ^ (mask[i] as number);
}
