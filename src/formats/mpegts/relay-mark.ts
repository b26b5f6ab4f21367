// The end-of-PES mark of Feedcast's relay stream (docs/cluster.md): the last TS packet of each PES carries,
// in its adaptation field's transport_private_data (ISO/IEC 13818-1 2.4.3.4, 2.4.3.5), the tag 'FCpe' and the
// sender's wall clock. A relaying node's demuxer then completes the frame on that packet instead of waiting for
// the next PES (video PES over 64 KiB have no PES_packet_length), and measures the hop's delay. Other
// demuxers skip private data they do not know.

import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';

/** 'FCpe': Feedcast, PES end. */
const TAG = 0x46437065;
/** Tag (4 bytes) and the sender's time in ms since the epoch (6 bytes). */
export const RELAY_MARK_BYTES = 10;

/**
 * The mark's private data bytes.
 *
 *  32 tag 'FCpe' | 48 sent_at_ms (ms since 1970-01-01 UTC, when the sender muxed the frame)
 */
export function encodeRelayMark(sentAtMs: number): Buffer {
  const w = new ByteWriter(RELAY_MARK_BYTES);
  const ms = Math.max(0, Math.floor(sentAtMs));
  w.u32(TAG);
  w.u16(Math.floor(ms / 2 ** 32) & 0xffff);
  w.u32(ms % 2 ** 32);
  return w.done();
}

/** The sender's time of a mark, or undefined when the private data is not one (another tag, another length). */
export function parseRelayMark(data: Buffer): number | undefined {
  if (data.length !== RELAY_MARK_BYTES) return undefined;
  const r = new ByteReader(data, 'relay mark');
  if (r.u32() !== TAG) return undefined;
  const hi = r.u16();
  return hi * 2 ** 32 + r.u32();
}
