// PES packet header (ISO/IEC 13818-1 2.4.3.6/2.4.3.7): stream_id, PES_packet_length and the
// 33-bit PTS/DTS, parsed and written.

import type { ByteReader } from '../bytes/byte-reader.js';
import type { ByteWriter } from '../bytes/byte-writer.js';
import { TS_WRAP } from '../../media/timebase.js';

export const StreamId = {
  privateStream1: 0xbd,
  padding: 0xbe,
  audio: 0xc0,
  video: 0xe0,
} as const;

/** Bytes a PES header needs before PES_packet_length can be read. */
export const PES_LENGTH_PREFIX = 6;

export interface PesHeader {
  streamId: number;
  /** PES_packet_length: bytes after this field, 0 for "unbounded" (video only). */
  packetLength: number;
  /** Offset of the elementary stream data from the start of the PES. */
  payloadOffset: number;
  /** Raw 33-bit values. */
  pts?: number;
  dts?: number;
}

/** stream_ids without the optional PES header (2.4.3.7 Table 2-22 exceptions). */
function hasOptionalHeader(streamId: number): boolean {
  return ![0xbc, 0xbe, 0xbf, 0xf0, 0xf1, 0xf2, 0xf8, 0xff].includes(streamId);
}

/**
 * Parses the header of a PES held in `r` (its first byte is the start code prefix).
 *
 *  24 packet_start_code_prefix (0x000001) | 8 stream_id | 16 PES_packet_length
 *  | 2 '10' | 2 PES_scrambling_control | 1 PES_priority | 1 data_alignment_indicator
 *  | 1 copyright | 1 original_or_copy | 2 PTS_DTS_flags | 1 ESCR_flag | 1 ES_rate_flag
 *  | 1 DSM_trick_mode_flag | 1 additional_copy_info_flag | 1 PES_CRC_flag | 1 PES_extension_flag
 *  | 8 PES_header_data_length | [PTS: 4 '0010'/'0011' 3 PTS[32..30] 1 marker 15 PTS[29..15]
 *  1 marker 15 PTS[14..0] 1 marker] [DTS: same with '0001'] | ... stuffing
 */
export function parsePesHeader(r: ByteReader): PesHeader {
  const start = r.pos;
  const prefix = r.u24();
  if (prefix !== 1) r.fail(`PES start code 0x${prefix.toString(16).padStart(6, '0')}, expected 0x000001`);
  const streamId = r.u8();
  const packetLength = r.u16();
  if (!hasOptionalHeader(streamId)) return { streamId, packetLength, payloadOffset: r.pos - start };
  const flags1 = r.u8();
  if ((flags1 & 0xc0) !== 0x80) r.fail(`PES header marker bits ${(flags1 >> 6).toString(2)}, expected 10`);
  const flags2 = r.u8();
  const headerDataLength = r.u8();
  const opt = r.sub(headerDataLength);
  const header: PesHeader = { streamId, packetLength, payloadOffset: r.pos - start };
  const ptsDts = flags2 >> 6;
  if (ptsDts === 1) opt.fail('PTS_DTS_flags 01 is forbidden');
  if (ptsDts & 2) header.pts = readTimestamp(opt);
  if (ptsDts === 3) header.dts = readTimestamp(opt);
  return header;
}

function readTimestamp(r: ByteReader): number {
  const b0 = r.u8();
  const mid = r.u16();
  const low = r.u16();
  // Marker bits are not checked: some encoders get them wrong and every reader tolerates it.
  return ((b0 >> 1) & 0x07) * 2 ** 30 + (mid >> 1) * 2 ** 15 + (low >> 1);
}

/** A 90 kHz time as its 33-bit wire value (negative times and times past 2^33 wrap). */
export function to33Bits(t90k: number): number {
  return ((Math.round(t90k) % TS_WRAP) + TS_WRAP) % TS_WRAP;
}

/** Writes the 5-byte PTS or DTS field: 4-bit prefix, 33-bit value split by marker bits. */
export function writeTimestamp(w: ByteWriter, prefix: number, t90k: number): void {
  const v = to33Bits(t90k);
  w.u8((prefix << 4) | (Math.floor(v / 2 ** 30) << 1) | 1);
  w.u16(((Math.floor(v / 2 ** 15) & 0x7fff) << 1) | 1);
  w.u16(((v % 0x8000) << 1) | 1);
}

/** Bytes of the PES header `writePesHeader` writes. */
export function pesHeaderSize(withDts: boolean): number {
  return withDts ? 19 : 14;
}

/**
 * Writes a PES header with PTS (and DTS when `dts90k` is given). `payloadLength` is the
 * elementary stream bytes that follow; PES_packet_length is 0 when it does not fit 16 bits.
 */
export function writePesHeader(w: ByteWriter, streamId: number, payloadLength: number, pts90k: number, dts90k?: number): void {
  const withDts = dts90k !== undefined;
  const headerDataLength = withDts ? 10 : 5;
  const packetLength = 3 + headerDataLength + payloadLength;
  w.u24(1); // packet_start_code_prefix
  w.u8(streamId);
  w.u16(packetLength > 0xffff ? 0 : packetLength);
  w.u8(0x84); // '10', not scrambled, priority 0, data_alignment_indicator 1, copyright 0, original 0
  w.u8(withDts ? 0xc0 : 0x80); // PTS_DTS_flags, no other optional fields
  w.u8(headerDataLength);
  writeTimestamp(w, withDts ? 0x3 : 0x2, pts90k);
  if (withDts) writeTimestamp(w, 0x1, dts90k);
}
