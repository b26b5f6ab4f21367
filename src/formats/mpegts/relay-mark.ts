// The end-of-PES mark of Feedcast's relay stream (docs/cluster.md): the last TS packet of each PES carries,
// in its adaptation field's transport_private_data (ISO/IEC 13818-1 2.4.3.4, 2.4.3.5), the tag 'FCpe', the
// sender's wall clock and the frame's DTS on the sender's feed clock, unwrapped. A relaying node's demuxer then
// completes the frame on that packet instead of waiting for the next PES (video PES over 64 KiB have no
// PES_packet_length), measures the hop's delay, and places the feed on the sender's timeline (past the 33 bits
// of a PES timestamp). Other demuxers skip private data they do not know.

import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';

/** 'FCpe': Feedcast, PES end. */
const TAG = 0x46437065;
/** Tag (4 bytes), the sender's time in ms since the epoch (6 bytes) and the frame's feed DTS (6 bytes). */
export const RELAY_MARK_BYTES = 16;
/** The mark of nodes from before the DTS was added: tag and time only (still read, for a rolling upgrade). */
const RELAY_MARK_V1_BYTES = 10;

export interface RelayMark {
  /** When the sender muxed the frame, ms since 1970-01-01 UTC. */
  readonly sentAtMs: number;
  /** The frame's DTS on the sender's feed clock (90 kHz, not wrapped at 33 bits); undefined from an older node. */
  readonly dts90k: number | undefined;
}

/**
 * The mark's private data bytes.
 *
 *  32 tag 'FCpe' | 48 sent_at_ms (ms since 1970-01-01 UTC, when the sender muxed the frame)
 *  | 48 dts_90k (the frame's DTS on the sender's feed clock, 0 and up)
 */
export function encodeRelayMark(sentAtMs: number, dts90k: number): Buffer {
  const out = new ByteWriter(RELAY_MARK_BYTES);
  out.u32(TAG);
  writeU48(out, sentAtMs);
  writeU48(out, dts90k);
  return out.done();
}

/** The mark in private data, or undefined when the data is not one (another tag, another length). */
export function parseRelayMark(data: Buffer): RelayMark | undefined {
  if (data.length !== RELAY_MARK_BYTES && data.length !== RELAY_MARK_V1_BYTES) return undefined;
  const r = new ByteReader(data, 'relay mark');
  if (r.u32() !== TAG) return undefined;
  const sentAtMs = readU48(r);
  return { sentAtMs, dts90k: data.length === RELAY_MARK_BYTES ? readU48(r) : undefined };
}

function writeU48(w: ByteWriter, value: number): void {
  const v = Math.max(0, Math.floor(value));
  w.u16(Math.floor(v / 2 ** 32) & 0xffff);
  w.u32(v % 2 ** 32);
}

function readU48(r: ByteReader): number {
  const hi = r.u16();
  return hi * 2 ** 32 + r.u32();
}
