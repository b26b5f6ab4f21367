// H.264/H.265 NAL unit framing: Annex B start codes (ISO/IEC 14496-10 Annex B, used by MPEG-TS)
// and 4-byte length prefixes (ISO/IEC 14496-15, used by FLV, MP4 and inside Feedcast's Frames).

import { FrameTooLargeError } from '../../errors.js';

/**
 * NAL units one access unit may have (issue 25: a frame of four million one-byte NAL units grew
 * into a 20 MB FLV tag). Real encoders write a few per slice; 1024 slices is far past any of them.
 */
export const MAX_NALS_PER_FRAME = 1024;

/**
 * Splits an Annex B byte stream into NAL unit views (start codes removed, trailing zeros kept off).
 * Throws FrameTooLargeError past `maxNals` units, before making more views.
 */
export function splitAnnexB(data: Buffer, maxNals = Infinity): Buffer[] {
  const nalus: Buffer[] = [];
  let start = -1;
  let i = 0;
  const n = data.length;
  while (i + 2 < n) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (nalus.length >= maxNals) throw new FrameTooLargeError('h26x: NAL units in one access unit', nalus.length + 1, maxNals);
      if (start >= 0) nalus.push(trimTrailingZeros(data.subarray(start, i)));
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < n) nalus.push(trimTrailingZeros(data.subarray(start, n)));
  return nalus.filter((nal) => nal.length > 0);
}

function trimTrailingZeros(nal: Buffer): Buffer {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--;
  return nal.subarray(0, end);
}

/** Splits a 4-byte length-prefixed buffer into NAL unit views; stops at a length that overruns. */
export function splitLengthPrefixed(data: Buffer, lengthSize = 4): Buffer[] {
  const nalus: Buffer[] = [];
  let pos = 0;
  while (pos + lengthSize <= data.length) {
    const len = data.readUIntBE(pos, lengthSize);
    pos += lengthSize;
    if (len === 0 || pos + len > data.length) break;
    nalus.push(data.subarray(pos, pos + len));
    pos += len;
  }
  return nalus;
}

/** NAL units in a 4-byte length-prefixed buffer, counted up to `stopAt` (then `stopAt` is returned). */
export function countLengthPrefixed(data: Buffer, stopAt: number): number {
  let count = 0;
  let pos = 0;
  while (pos + 4 <= data.length && count < stopAt) {
    const len = data.readUInt32BE(pos);
    pos += 4 + len;
    count++;
  }
  return count;
}

/** Joins NAL units with 4-byte length prefixes into one new buffer. */
export function joinLengthPrefixed(nalus: readonly Uint8Array[]): Buffer {
  let size = 0;
  for (const nal of nalus) size += 4 + nal.length;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const nal of nalus) {
    out.writeUInt32BE(nal.length, pos);
    out.set(nal, pos + 4);
    pos += 4 + nal.length;
  }
  return out;
}

/** Rewrites length-prefixed NAL units as Annex B (4-byte start codes): same size, new buffer. */
export function lengthPrefixedToAnnexB(data: Buffer): Buffer {
  const out = Buffer.from(data);
  let pos = 0;
  while (pos + 4 <= out.length) {
    const len = out.readUInt32BE(pos);
    out.writeUInt32BE(1, pos);
    pos += 4 + len;
  }
  return out;
}

export const H264Nal = {
  slice: 1,
  idr: 5,
  sei: 6,
  sps: 7,
  pps: 8,
  aud: 9,
} as const;

export function h264NalType(nal: Uint8Array): number {
  return (nal[0] ?? 0) & 0x1f;
}

export const H265Nal = {
  /** 16..21 are IRAP pictures (BLA, IDR, CRA). */
  irapFirst: 16,
  irapLast: 23,
  vps: 32,
  sps: 33,
  pps: 34,
  aud: 35,
} as const;

export function h265NalType(nal: Uint8Array): number {
  return ((nal[0] ?? 0) >> 1) & 0x3f;
}
