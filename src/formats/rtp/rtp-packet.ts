// RTP fixed header (RFC 3550 5.1): parse one packet into its header fields and a payload view,
// and write a packet from its header fields and payload parts (sized first, one allocation).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//  |                           timestamp                           |
//  |           synchronization source (SSRC) identifier            |
//  |            contributing source (CSRC) identifiers  (CC x 32)  |
//  | [extension: 16 profile | 16 length in words | length x 32]    |
//  | payload ... [padding, last byte = padding count]              |

import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';

export const RTP_HEADER_BYTES = 12;
/** Largest RTP packet Feedcast sends (ffserver's 1472: a 1500-byte MTU minus IPv4 and UDP headers). */
export const MAX_RTP_PACKET_BYTES = 1472;
/** Largest payload of a packet with a plain 12-byte header. */
export const MAX_RTP_PAYLOAD_BYTES = MAX_RTP_PACKET_BYTES - RTP_HEADER_BYTES;

export interface RtpHeader {
  marker: boolean;
  payloadType: number;
  sequence: number;
  timestamp: number;
  ssrc: number;
}

export interface RtpPacket extends RtpHeader {
  csrcs: number[];
  /** Header extension (profile-defined), if the X bit was set. */
  extension: { profile: number; data: Buffer } | undefined;
  /** A view of the payload, padding removed. */
  payload: Buffer;
}

/** Parses one RTP packet (a whole datagram or interleaved frame). Throws MalformedInputError. */
export function parseRtpPacket(buf: Buffer): RtpPacket {
  const r = new ByteReader(buf, 'rtp');
  const b0 = r.u8();
  const version = b0 >> 6;
  if (version !== 2) r.fail(`version ${version}, expected 2`);
  const padding = (b0 & 0x20) !== 0;
  const hasExtension = (b0 & 0x10) !== 0;
  const csrcCount = b0 & 0x0f;
  const b1 = r.u8();
  const sequence = r.u16();
  const timestamp = r.u32();
  const ssrc = r.u32();
  const csrcs: number[] = [];
  for (let i = 0; i < csrcCount; i++) csrcs.push(r.u32());
  let extension: RtpPacket['extension'];
  if (hasExtension) {
    const profile = r.u16();
    const words = r.u16();
    extension = { profile, data: r.bytes(words * 4) };
  }
  let end = r.end;
  if (padding) {
    if (r.remaining < 1) r.fail('padding bit set but no padding byte');
    const count = buf[end - 1] as number;
    if (count === 0 || count > r.remaining) r.fail(`padding count ${count} with ${r.remaining} payload bytes`);
    end -= count;
  }
  const payload = buf.subarray(r.pos, end);
  return { marker: (b1 & 0x80) !== 0, payloadType: b1 & 0x7f, sequence, timestamp, ssrc, csrcs, extension, payload };
}

/** Bytes of a packet with a plain header and these payload parts. */
export function rtpPacketSize(parts: readonly Uint8Array[]): number {
  let size = RTP_HEADER_BYTES;
  for (const p of parts) size += p.length;
  return size;
}

/** Writes a plain header (no CSRC, no extension, no padding) and the payload parts into `w`. */
export function writeRtpPacket(w: ByteWriter, header: RtpHeader, parts: readonly Uint8Array[]): void {
  w.u8(0x80);
  w.u8((header.marker ? 0x80 : 0) | (header.payloadType & 0x7f));
  w.u16(header.sequence);
  w.u32(header.timestamp);
  w.u32(header.ssrc);
  for (const p of parts) w.bytes(p);
}

/** One packet as a new buffer. */
export function buildRtpPacket(header: RtpHeader, parts: readonly Uint8Array[]): Buffer {
  const w = new ByteWriter(rtpPacketSize(parts));
  writeRtpPacket(w, header, parts);
  return w.done();
}

/** Reads the sequence number and timestamp of an RTP packet without parsing it (for stats). */
export function peekRtpSeqTimestamp(packet: Buffer): { sequence: number; timestamp: number } | undefined {
  if (packet.length < RTP_HEADER_BYTES) return undefined;
  return { sequence: packet.readUInt16BE(2), timestamp: packet.readUInt32BE(4) };
}

/** RTCP packet types 200..204 share the RTP port range: RFC 5761 4 tells them apart by this byte. */
export function looksLikeRtcp(buf: Buffer): boolean {
  const pt = buf[1];
  return buf.length >= 8 && pt !== undefined && pt >= 192 && pt <= 223;
}
