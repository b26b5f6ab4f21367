// One 188-byte transport stream packet: header and adaptation field (ISO/IEC 13818-1 2.4.3.2,
// 2.4.3.4), parsed and written. The framer that finds packets in a byte stream is TsDemuxer.

import { ByteReader } from '../bytes/byte-reader.js';
import type { ByteWriter } from '../bytes/byte-writer.js';
import { TS_WRAP } from '../../media/timebase.js';

export const TS_PACKET_SIZE = 188;
export const TS_SYNC_BYTE = 0x47;
export const PID_PAT = 0x0000;
export const PID_NULL = 0x1fff;

export interface TsPacket {
  pid: number;
  payloadUnitStart: boolean;
  transportError: boolean;
  scrambling: number;
  continuityCounter: number;
  /** The packet carries payload bytes (adaptation_field_control 01 or 11). */
  hasPayload: boolean;
  /** Offset of the payload within the packet (188 when there is none). */
  payloadOffset: number;
  discontinuity: boolean;
  randomAccess: boolean;
  /** 27 MHz program clock reference, when the adaptation field carries one. */
  pcr27m?: number;
  /** The adaptation field's transport_private_data bytes (a view into the packet), when it carries some. */
  privateData?: Buffer;
}

/**
 * Parses the packet `buf[offset .. offset+188)`.
 *
 *  8 sync_byte (0x47) | 1 transport_error_indicator | 1 payload_unit_start_indicator
 *  | 1 transport_priority | 13 PID | 2 transport_scrambling_control
 *  | 2 adaptation_field_control (01 payload, 10 adaptation field, 11 both) | 4 continuity_counter
 *  adaptation_field: 8 adaptation_field_length | 1 discontinuity_indicator | 1 random_access_indicator
 *  | 1 elementary_stream_priority_indicator | 1 PCR_flag | 1 OPCR_flag | 1 splicing_point_flag
 *  | 1 transport_private_data_flag | 1 adaptation_field_extension_flag
 *  | [33 program_clock_reference_base | 6 reserved | 9 program_clock_reference_extension]
 *  | [48 OPCR] | [8 splice_countdown] | [8 transport_private_data_length | private_data_byte ...] | ...
 */
export function parseTsPacket(buf: Buffer, offset = 0): TsPacket {
  const r = new ByteReader(buf, 'mpegts packet', offset, offset + TS_PACKET_SIZE);
  const sync = r.u8();
  if (sync !== TS_SYNC_BYTE) r.fail(`sync byte 0x${sync.toString(16)}, expected 0x47`);
  const b1 = r.u8();
  const b2 = r.u8();
  const b3 = r.u8();
  const afc = (b3 >> 4) & 3;
  if (afc === 0) r.fail('reserved adaptation_field_control 00');
  const packet: TsPacket = {
    pid: ((b1 & 0x1f) << 8) | b2,
    payloadUnitStart: (b1 & 0x40) !== 0,
    transportError: (b1 & 0x80) !== 0,
    scrambling: b3 >> 6,
    continuityCounter: b3 & 0x0f,
    hasPayload: (afc & 1) !== 0,
    payloadOffset: TS_PACKET_SIZE,
    discontinuity: false,
    randomAccess: false,
  };
  if (afc & 2) {
    const afLength = r.u8();
    const maxLength = afc === 3 ? 182 : 183;
    if (afLength > maxLength) r.fail(`adaptation_field_length ${afLength} > ${maxLength}`);
    if (afLength > 0) {
      const af = r.sub(afLength);
      const flags = af.u8();
      packet.discontinuity = (flags & 0x80) !== 0;
      packet.randomAccess = (flags & 0x40) !== 0;
      if (flags & 0x10) {
        const hi = af.u32();
        const lo = af.u16();
        const base = hi * 2 + (lo >> 15);
        packet.pcr27m = base * 300 + (lo & 0x1ff);
      }
      // transport_private_data (relay-mark.ts reads it). A field that does not fit is left unread rather
      // than failing the packet: its payload is still good, and nothing before this needed it.
      const before = (flags & 0x08 ? 6 : 0) + (flags & 0x04 ? 1 : 0);
      if (flags & 0x02 && af.remaining > before) {
        af.skip(before); // OPCR, splice_countdown
        const length = af.u8();
        if (length <= af.remaining) packet.privateData = af.bytes(length);
      }
    }
  }
  if (packet.hasPayload) packet.payloadOffset = r.pos - offset;
  return packet;
}

/** Size of the adaptation field (with its length byte) that `writeTsHeader` writes. */
export function adaptationFieldSize(fields: {
  pcr90k?: number | undefined;
  randomAccess?: boolean | undefined;
  privateData?: Uint8Array | undefined;
}): number {
  const privateBytes = fields.privateData !== undefined ? 1 + fields.privateData.length : 0;
  if (fields.pcr90k !== undefined) return 8 + privateBytes; // length, flags, 6 PCR bytes
  return fields.randomAccess === true || privateBytes > 0 ? 2 + privateBytes : 0;
}

export interface TsHeaderFields {
  pid: number;
  payloadUnitStart: boolean;
  continuityCounter: number;
  /** Payload bytes that follow in this packet (<= 184 - adaptation field). */
  payloadLength: number;
  pcr90k?: number | undefined;
  randomAccess?: boolean | undefined;
  /** transport_private_data of the adaptation field (at most 180 bytes with no PCR). */
  privateData?: Uint8Array | undefined;
}

/**
 * Writes a 4-byte header and an adaptation field holding the PCR / random_access_indicator and
 * the stuffing that makes the packet exactly 188 bytes with `payloadLength` payload bytes.
 */
export function writeTsHeader(w: ByteWriter, f: TsHeaderFields): void {
  const wanted = adaptationFieldSize(f);
  const room = TS_PACKET_SIZE - 4 - f.payloadLength; // bytes for the adaptation field
  const hasAf = wanted > 0 || room > 0;
  const afc = (hasAf ? 2 : 0) | (f.payloadLength > 0 ? 1 : 0);
  w.u8(TS_SYNC_BYTE);
  w.u8((f.payloadUnitStart ? 0x40 : 0) | ((f.pid >> 8) & 0x1f));
  w.u8(f.pid & 0xff);
  w.u8((afc << 4) | (f.continuityCounter & 0x0f));
  if (!hasAf) return;
  w.u8(room - 1); // adaptation_field_length
  if (room === 1) return; // a lone length byte of 0 is one byte of stuffing
  const pcr = f.pcr90k;
  const priv = f.privateData;
  w.u8((f.randomAccess === true ? 0x40 : 0) | (pcr !== undefined ? 0x10 : 0) | (priv !== undefined ? 0x02 : 0));
  let used = 2;
  if (pcr !== undefined) {
    const base = ((pcr % TS_WRAP) + TS_WRAP) % TS_WRAP;
    w.u32(Math.floor(base / 2)); // program_clock_reference_base[32..1]
    w.u8(((base % 2) << 7) | 0x7e); // base[0] | 6 reserved bits | extension[8]
    w.u8(0); // extension[7..0]
    used += 6;
  }
  if (priv !== undefined) {
    w.u8(priv.length); // transport_private_data_length
    w.bytes(priv);
    used += 1 + priv.length;
  }
  w.fill(0xff, room - used); // stuffing_byte
}
