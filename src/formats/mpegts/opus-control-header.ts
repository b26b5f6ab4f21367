// Opus in MPEG-TS (ETSI TS 102 366 style, as written by ffmpeg and the Opus-in-TS draft 5.2):
// the control header before each Opus packet in a PES, and the packet duration from its TOC
// byte (RFC 6716 3.1), which places the packets of one PES in time.

import type { ByteWriter } from '../bytes/byte-writer.js';
import { MalformedInputError } from '../../errors.js';

export interface OpusControlHeader {
  /** Bytes of the control header itself. */
  headerLength: number;
  /** Bytes of the Opus packet that follows. */
  auSize: number;
  startTrim?: number;
  endTrim?: number;
}

/**
 * Parses the control header at `offset`.
 *
 *  11 control_header_prefix (0x3FF) | 1 start_trim_flag | 1 end_trim_flag
 *  | 1 control_extension_flag | 2 reserved
 *  au_size: a run of 0xFF bytes (255 each) ended by a byte < 255, summed
 *  [3 reserved | 13 start_trim] [3 reserved | 13 end_trim]
 *  [8 control_extension_length | that many bytes]
 */
export function parseOpusControlHeader(buf: Uint8Array, offset: number): OpusControlHeader {
  const fail = (at: number, detail: string): never => {
    throw new MalformedInputError('opus control header', at, detail);
  };
  if (buf.length - offset < 3) fail(offset, `needs 3 bytes, ${buf.length - offset} left`);
  const b0 = buf[offset] as number;
  const b1 = buf[offset + 1] as number;
  if (b0 !== 0x7f || (b1 & 0xe0) !== 0xe0) fail(offset, 'no 0x7FE0 prefix');
  let pos = offset + 2;
  let auSize = 0;
  for (;;) {
    const b = buf[pos];
    if (b === undefined) return fail(pos, 'au_size runs past the end');
    pos++;
    auSize += b;
    if (b !== 0xff) break;
  }
  const header: OpusControlHeader = { headerLength: 0, auSize };
  if (b1 & 0x10) {
    if (pos + 2 > buf.length) fail(pos, 'start_trim runs past the end');
    header.startTrim = (((buf[pos] as number) & 0x1f) << 8) | (buf[pos + 1] as number);
    pos += 2;
  }
  if (b1 & 0x08) {
    if (pos + 2 > buf.length) fail(pos, 'end_trim runs past the end');
    header.endTrim = (((buf[pos] as number) & 0x1f) << 8) | (buf[pos + 1] as number);
    pos += 2;
  }
  if (b1 & 0x04) {
    const len = buf[pos];
    if (len === undefined || pos + 1 + len > buf.length) fail(pos, 'control extension runs past the end');
    pos += 1 + (len ?? 0);
  }
  header.headerLength = pos - offset;
  return header;
}

/** Bytes of a control header (no trims, no extension) for a packet of `auSize` bytes. */
export function opusControlHeaderLength(auSize: number): number {
  return 2 + Math.floor(auSize / 255) + 1;
}

/** Writes a control header (no trims, no extension) for a packet of `auSize` bytes. */
export function writeOpusControlHeader(w: ByteWriter, auSize: number): void {
  w.u8(0x7f).u8(0xe0);
  w.fill(0xff, Math.floor(auSize / 255));
  w.u8(auSize % 255);
}

/** Frame durations in 48 kHz samples by TOC config (RFC 6716 Table 2). */
function frameSamples(config: number): number {
  if (config < 12) return [480, 960, 1920, 2880][config & 3] as number; // SILK 10/20/40/60 ms
  if (config < 16) return [480, 960][config & 1] as number; // Hybrid 10/20 ms
  return [120, 240, 480, 960][config & 3] as number; // CELT 2.5/5/10/20 ms
}

/** The duration of one Opus packet in 48 kHz samples (TOC byte, code 0..3 frame count). */
export function opusPacketSamples(packet: Uint8Array): number {
  const toc = packet[0];
  if (toc === undefined) throw new MalformedInputError('opus', 0, 'empty packet');
  const code = toc & 3;
  let frames: number;
  if (code === 0) frames = 1;
  else if (code === 3) {
    const count = packet[1];
    if (count === undefined) throw new MalformedInputError('opus', 1, 'code 3 packet without a frame count byte');
    frames = count & 0x3f;
  } else frames = 2;
  return frames * frameSamples(toc >> 3);
}
