// RTMP handshake records (Adobe RTMP specification 1.0, section 5.2: C0/C1/C2, S0/S1/S2), and the
// digest variant Flash Player, FMS, OBS (librtmp) and ffmpeg send: an HMAC-SHA256 digest placed
// inside C1/S1 at an offset derived from four of its bytes, and an S2 signed with it.

import { createHmac, randomBytes } from 'node:crypto';
import { MalformedInputError, ProtocolError } from '../../errors.js';
import { ByteReader } from '../bytes/byte-reader.js';

export const RTMP_VERSION = 3;
/** C1, C2, S1, S2: 1536 bytes each (5.2.3-5.2.4). */
export const RTMP_HANDSHAKE_SIZE = 1536;
/** C0 + C1: what the server waits for before answering. */
export const RTMP_C0C1_SIZE = 1 + RTMP_HANDSHAKE_SIZE;

const FORMAT = 'rtmp handshake';
const DIGEST_BYTES = 32;

/** The 32 bytes that complete both keys below (from Flash Player / FMS, published by librtmp and ffmpeg). */
const KEY_TAIL = Buffer.from('f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae', 'hex');
/** "Genuine Adobe Flash Player 001": the client's key; its first 30 bytes sign C1. */
export const FP_KEY = Buffer.concat([Buffer.from('Genuine Adobe Flash Player 001', 'latin1'), KEY_TAIL]);
export const FP_KEY_SHORT = FP_KEY.subarray(0, 30);
/** "Genuine Adobe Flash Media Server 001": its first 36 bytes sign S1, all 68 key S2. */
export const FMS_KEY = Buffer.concat([Buffer.from('Genuine Adobe Flash Media Server 001', 'latin1'), KEY_TAIL]);
export const FMS_KEY_SHORT = FMS_KEY.subarray(0, 36);

/** The version Feedcast puts in S1 bytes 4..7 when it answers a digest handshake (clients check byte 1 >= 3). */
const SERVER_VERSION = Buffer.from([4, 5, 0, 1]);

/**
 * Where the digest sits in a 1536-byte C1/S1. Scheme 0 (Flash Player 9 style, ffmpeg's choice):
 * offset bytes at 8..11, digest at 12 + sum % 728. Scheme 1 (Flash Player 10): offset bytes at
 * 772..775, digest at 776 + sum % 728.
 */
export type DigestScheme = 0 | 1;

export interface C1 {
  /** C1 bytes 0..3: the client's epoch, in ms. */
  time: number;
  /** C1 bytes 4..7: zero for the simple handshake, the Flash Player version for the digest one. */
  clientVersion: number;
  /** The digest found and verified with the Flash Player key, if any. */
  digest: { scheme: DigestScheme; offset: number; value: Buffer } | undefined;
  /** The whole 1536 bytes. */
  bytes: Buffer;
}

export function digestOffset(block: Buffer, scheme: DigestScheme): number {
  const base = scheme === 0 ? 8 : 772;
  const sum = (block[base] ?? 0) + (block[base + 1] ?? 0) + (block[base + 2] ?? 0) + (block[base + 3] ?? 0);
  return base + 4 + (sum % 728);
}

/** HMAC-SHA256 of `block` without the 32 digest bytes at `offset`. */
export function blockDigest(block: Buffer, offset: number, key: Buffer): Buffer {
  const h = createHmac('sha256', key);
  h.update(block.subarray(0, offset));
  h.update(block.subarray(offset + DIGEST_BYTES));
  return h.digest();
}

function findDigest(block: Buffer, key: Buffer): C1['digest'] {
  for (const scheme of [1, 0] as const) {
    const offset = digestOffset(block, scheme);
    const value = block.subarray(offset, offset + DIGEST_BYTES);
    if (blockDigest(block, offset, key).equals(value)) return { scheme, offset, value };
  }
  return undefined;
}

/**
 * 5.2.2 C0: u8 version (3; 6 is RTMPE, which Feedcast does not speak).
 * 5.2.3 C1: u32 time | u32 zero (simple) or client version (digest) | 1528 random bytes.
 */
export function parseC0C1(buf: Buffer): C1 {
  const r = new ByteReader(buf, FORMAT);
  const version = r.u8();
  if (version !== RTMP_VERSION) {
    const hint = version === 6 || version === 8 || version === 9 ? ' (RTMPE encryption is not supported: use rtmp://)' : '';
    if (version === 0x47 || version === 0x50 || version === 0x48) {
      throw new ProtocolError('rtmp', `C0 is 0x${version.toString(16)}: this looks like HTTP or MPEG-TS, not RTMP`);
    }
    throw new ProtocolError('rtmp', `C0 asks for version ${version}, the server speaks ${RTMP_VERSION}${hint}`);
  }
  const bytes = r.bytes(RTMP_HANDSHAKE_SIZE);
  const c1r = new ByteReader(bytes, FORMAT);
  const time = c1r.u32();
  const clientVersion = c1r.u32();
  const digest = clientVersion === 0 ? undefined : findDigest(bytes, FP_KEY_SHORT);
  return { time, clientVersion, digest, bytes };
}

/**
 * S0 + S1 + S2 for a client's C1. Simple handshake: S1 = time, zero, random; S2 = C1 echoed.
 * Digest handshake: S1 carries the server version and a digest (FMS key, 36 bytes) in the
 * client's scheme; S2 is random bytes whose last 32 are HMAC(HMAC(FMS key 68 bytes, C1 digest), S2 head).
 */
export function makeS0S1S2(c1: C1, random: (n: number) => Buffer = randomBytes, nowMs = Date.now()): Buffer {
  const out = Buffer.alloc(1 + 2 * RTMP_HANDSHAKE_SIZE);
  out[0] = RTMP_VERSION;
  const s1 = out.subarray(1, 1 + RTMP_HANDSHAKE_SIZE);
  const s2 = out.subarray(1 + RTMP_HANDSHAKE_SIZE);
  random(RTMP_HANDSHAKE_SIZE - 8).copy(s1, 8);
  s1.writeUInt32BE(Math.floor(nowMs) >>> 0, 0);
  const digest = c1.digest;
  if (digest === undefined) {
    s1.writeUInt32BE(0, 4);
    c1.bytes.copy(s2);
    return out;
  }
  SERVER_VERSION.copy(s1, 4);
  const offset = digestOffset(s1, digest.scheme);
  blockDigest(s1, offset, FMS_KEY_SHORT).copy(s1, offset);
  random(RTMP_HANDSHAKE_SIZE - DIGEST_BYTES).copy(s2, 0);
  signS2(s2, digest.value);
  return out;
}

/** Writes the last 32 bytes of a 1536-byte C2/S2: HMAC(HMAC(key, peer digest), head). */
export function signS2(block: Buffer, peerDigest: Buffer, key: Buffer = FMS_KEY): void {
  const signingKey = createHmac('sha256', key).update(peerDigest).digest();
  const at = RTMP_HANDSHAKE_SIZE - DIGEST_BYTES;
  createHmac('sha256', signingKey).update(block.subarray(0, at)).digest().copy(block, at);
}

// ---------------------------------------------------------------------------------------------
// The client side, for tests and the load generator (what ffmpeg does in rtmp_handshake()).

/** C0 + C1; with `digest`, C1 carries a Flash Player version and a scheme-0 digest. */
export function makeC0C1(digest: boolean, random: (n: number) => Buffer = randomBytes): Buffer {
  const out = Buffer.alloc(RTMP_C0C1_SIZE);
  out[0] = RTMP_VERSION;
  const c1 = out.subarray(1);
  random(RTMP_HANDSHAKE_SIZE - 8).copy(c1, 8);
  if (!digest) return out;
  Buffer.from([9, 0, 124, 2]).copy(c1, 4);
  const offset = digestOffset(c1, 0);
  blockDigest(c1, offset, FP_KEY_SHORT).copy(c1, offset);
  return out;
}

/**
 * Checks S0+S1+S2 (3073 bytes) against the C1 sent, as a digest-speaking client does: S1's
 * digest with the FMS key, S2's signature keyed by our C1 digest. Returns C2 (S1 echoed for the
 * simple handshake, a signed block for the digest one). Throws ProtocolError on a mismatch.
 */
export function checkS0S1S2(c0c1: Buffer, reply: Buffer): Buffer {
  if (reply.length !== 1 + 2 * RTMP_HANDSHAKE_SIZE) {
    throw new MalformedInputError(FORMAT, 0, `S0+S1+S2 of ${reply.length} bytes, expected ${1 + 2 * RTMP_HANDSHAKE_SIZE}`);
  }
  if (reply[0] !== RTMP_VERSION) throw new ProtocolError('rtmp', `S0 is ${String(reply[0])}, expected ${RTMP_VERSION}`);
  const c1 = c0c1.subarray(1);
  const s1 = reply.subarray(1, 1 + RTMP_HANDSHAKE_SIZE);
  const s2 = reply.subarray(1 + RTMP_HANDSHAKE_SIZE);
  if (c1.readUInt32BE(4) === 0) {
    if (!s2.equals(c1)) throw new ProtocolError('rtmp', 'S2 does not echo C1 (simple handshake)');
    return Buffer.from(s1);
  }
  const found = findDigest(s1, FMS_KEY_SHORT);
  if (found === undefined) throw new ProtocolError('rtmp', 'S1 carries no valid server digest');
  const myOffset = digestOffset(c1, 0);
  const expected = Buffer.from(s2);
  signS2(expected, c1.subarray(myOffset, myOffset + DIGEST_BYTES));
  if (!expected.equals(s2)) throw new ProtocolError('rtmp', 'S2 signature does not match our C1 digest');
  const c2 = randomBytes(RTMP_HANDSHAKE_SIZE);
  signS2(c2, found.value, FP_KEY);
  return c2;
}
