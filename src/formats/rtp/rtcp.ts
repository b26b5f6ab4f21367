// RTCP (RFC 3550 6): the sender report + SDES CNAME compound a sender sends every few seconds,
// BYE, and a parser for the compound packets peers send (SR from publishers, RR from players).
//
//  common header: 2 V=2 | 1 P | 5 count | 8 packet type | 16 length (32-bit words - 1)
//  SR (200): SSRC | NTP seconds | NTP fraction | RTP timestamp | packet count | octet count | blocks
//  RR (201): SSRC | blocks
//  report block: SSRC | 8 fraction lost | 24 cumulative lost | highest seq | jitter | LSR | DLSR
//  SDES (202): chunks { SSRC, items { 8 type, 8 length, text }, 0, pad to 32 bits }
//  BYE (203): SSRC list

import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';

export const RtcpType = { sr: 200, rr: 201, sdes: 202, bye: 203, app: 204 } as const;

/** Seconds between 1900-01-01 (NTP epoch) and 1970-01-01 (Unix epoch). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

export interface ReportBlock {
  ssrc: number;
  fractionLost: number;
  cumulativeLost: number;
  highestSequence: number;
  jitter: number;
  lastSr: number;
  delaySinceLastSr: number;
}

export interface SenderInfo {
  /** Wall-clock time of the report, ms since the Unix epoch (from the 64-bit NTP timestamp). */
  ntpMs: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
}

export type RtcpPacket =
  | { type: 'sr'; ssrc: number; sender: SenderInfo; reports: ReportBlock[] }
  | { type: 'rr'; ssrc: number; reports: ReportBlock[] }
  | { type: 'sdes'; cnames: { ssrc: number; cname: string }[] }
  | { type: 'bye'; ssrcs: number[] }
  | { type: 'other'; packetType: number };

/** Parses a compound RTCP packet. Throws MalformedInputError; an unknown packet type is kept as 'other'. */
export function parseRtcp(buf: Buffer): RtcpPacket[] {
  const r = new ByteReader(buf, 'rtcp');
  const packets: RtcpPacket[] = [];
  while (r.remaining > 0) {
    if (packets.length >= 32) r.fail('more than 32 packets in one compound packet');
    const b0 = r.u8();
    if (b0 >> 6 !== 2) r.fail(`version ${b0 >> 6}, expected 2`);
    const count = b0 & 0x1f;
    const packetType = r.u8();
    const words = r.u16();
    const body = r.sub(words * 4);
    packets.push(parseOne(body, packetType, count));
  }
  if (packets.length === 0) r.fail('empty RTCP packet');
  return packets;
}

function parseOne(r: ByteReader, packetType: number, count: number): RtcpPacket {
  switch (packetType) {
    case RtcpType.sr: {
      const ssrc = r.u32();
      const seconds = r.u32();
      const fraction = r.u32();
      const sender: SenderInfo = {
        ntpMs: (seconds - NTP_UNIX_OFFSET_S) * 1000 + (fraction / 0x1_0000_0000) * 1000,
        rtpTimestamp: r.u32(),
        packetCount: r.u32(),
        octetCount: r.u32(),
      };
      return { type: 'sr', ssrc, sender, reports: reportBlocks(r, count) };
    }
    case RtcpType.rr:
      return { type: 'rr', ssrc: r.u32(), reports: reportBlocks(r, count) };
    case RtcpType.sdes: {
      const cnames: { ssrc: number; cname: string }[] = [];
      for (let i = 0; i < count && r.remaining >= 4; i++) {
        const ssrc = r.u32();
        const start = r.pos;
        for (;;) {
          const type = r.u8();
          if (type === 0) break;
          const text = r.bytes(r.u8());
          if (type === 1) cnames.push({ ssrc, cname: text.toString('utf8') });
        }
        const used = r.pos - start;
        r.skip(Math.min((4 - (used % 4)) % 4, r.remaining));
      }
      return { type: 'sdes', cnames };
    }
    case RtcpType.bye: {
      const ssrcs: number[] = [];
      for (let i = 0; i < count; i++) ssrcs.push(r.u32());
      return { type: 'bye', ssrcs };
    }
    default:
      return { type: 'other', packetType };
  }
}

function reportBlocks(r: ByteReader, count: number): ReportBlock[] {
  const blocks: ReportBlock[] = [];
  for (let i = 0; i < count; i++) {
    const ssrc = r.u32();
    const lost = r.u32();
    blocks.push({
      ssrc,
      fractionLost: lost >>> 24,
      cumulativeLost: lost & 0xffffff,
      highestSequence: r.u32(),
      jitter: r.u32(),
      lastSr: r.u32(),
      delaySinceLastSr: r.u32(),
    });
  }
  return blocks;
}

function writeNtp(w: ByteWriter, ms: number): void {
  const seconds = Math.floor(ms / 1000);
  const fraction = Math.floor(((ms - seconds * 1000) / 1000) * 0x1_0000_0000);
  w.u32(seconds + NTP_UNIX_OFFSET_S);
  w.u32(Math.min(fraction, 0xffff_ffff));
}

function sdesSize(cname: Buffer): number {
  // header 4 + SSRC 4 + item (2 + text) + terminator 1, padded to 32 bits
  const raw = 8 + 2 + cname.length + 1;
  return raw + ((4 - (raw % 4)) % 4);
}

function writeSdes(w: ByteWriter, ssrc: number, cname: Buffer): void {
  const size = sdesSize(cname);
  w.u8(0x81)
    .u8(RtcpType.sdes)
    .u16(size / 4 - 1);
  w.u32(ssrc);
  w.u8(1).u8(cname.length).bytes(cname);
  w.fill(0, size - 8 - 2 - cname.length);
}

/** The compound packet a sender sends: SR (no report blocks) + SDES CNAME (RFC 3550 6.1). */
export function buildSenderReport(ssrc: number, info: SenderInfo, cnameText: string): Buffer {
  const cname = Buffer.from(cnameText.slice(0, 255), 'utf8').subarray(0, 255);
  const w = new ByteWriter(28 + sdesSize(cname));
  w.u8(0x80).u8(RtcpType.sr).u16(6);
  w.u32(ssrc);
  writeNtp(w, info.ntpMs);
  w.u32(info.rtpTimestamp).u32(info.packetCount).u32(info.octetCount);
  writeSdes(w, ssrc, cname);
  return w.done();
}

/** RR with one report block + SDES: what a receiver (our RTSP publish side) sends back. */
export function buildReceiverReport(ssrc: number, block: ReportBlock, cnameText: string): Buffer {
  const cname = Buffer.from(cnameText.slice(0, 255), 'utf8').subarray(0, 255);
  const w = new ByteWriter(32 + sdesSize(cname));
  w.u8(0x81).u8(RtcpType.rr).u16(7);
  w.u32(ssrc);
  w.u32(block.ssrc);
  w.u32(((block.fractionLost & 0xff) << 24) | (block.cumulativeLost & 0xffffff));
  w.u32(block.highestSequence).u32(block.jitter).u32(block.lastSr).u32(block.delaySinceLastSr);
  writeSdes(w, ssrc, cname);
  return w.done();
}

/**
 * BYE for one source: the stream has ended (RFC 3550 6.6), in a compound packet led by an empty RR as 6.1 asks
 * (ffmpeg's RTSP client ignores RTCP shorter than 12 bytes, so a lone 8-byte BYE never ended its read).
 */
export function buildBye(ssrc: number): Buffer {
  const w = new ByteWriter(16);
  w.u8(0x80).u8(RtcpType.rr).u16(1).u32(ssrc); // RC 0: no report blocks
  w.u8(0x81).u8(RtcpType.bye).u16(1).u32(ssrc);
  return w.done();
}

/** The middle 32 bits of an NTP timestamp (the LSR field of a report block). */
export function ntpMiddle32(ms: number): number {
  const seconds = Math.floor(ms / 1000) + NTP_UNIX_OFFSET_S;
  const fraction = Math.floor(((ms % 1000) / 1000) * 65536);
  return ((seconds & 0xffff) * 65536 + fraction) >>> 0;
}
