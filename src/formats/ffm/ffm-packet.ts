// FFM data packets and frame headers (ffserver-reference.md §5.4): 4096-byte packets, each a
// 14-byte header and 4082 payload bytes; the payload is a byte stream of frames (a 16- or 20-byte
// frame header, then the data) that span packets freely. Timestamps are in µs.

import { MalformedInputError } from '../../errors.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { FFM_PACKET_SIZE } from './ffm-header.js';

export const FFM_PACKET_HEADER_BYTES = 14;
export const FFM_PAYLOAD_BYTES = FFM_PACKET_SIZE - FFM_PACKET_HEADER_BYTES;
/** "fm" */
export const FFM_PACKET_SYNC = 0x666d;
/** frame_offset bit 15: the first packet a muxer wrote (a discontinuity). */
const FFM_DISCONTINUITY = 0x8000;
export const FFM_FRAME_HEADER_BYTES = 16;
/** Frame header flag: a key frame. */
export const FFM_FLAG_KEY_FRAME = 0x01;
/** Frame header flag: a u32 pts - dts follows (so the header is 20 bytes). */
export const FFM_FLAG_DTS = 0x02;

export interface FfmPacketHeader {
  /** Zero bytes that pad the end of the payload (a packet flushed early). */
  readonly fillSize: number;
  /** µs: dts of the first frame that starts in this packet, else carried over from the previous one. */
  readonly dts: number;
  /** Offset from the packet start of the first frame header that begins in it; 0 when none does. */
  readonly frameOffset: number;
  /** The first packet its muxer wrote. */
  readonly discontinuity: boolean;
}

/**
 * One packet header at `offset` (the packet's 4096 bytes must follow it).
 *
 *  u16 sync "fm" | u16 fill_size | u64 dts (µs) | u16 frame_offset (bit 15: first packet of a muxer)
 */
export function parseFfmPacketHeader(buf: Buffer, offset: number, index: number): FfmPacketHeader {
  const r = new ByteReader(buf, 'ffm', offset, offset + FFM_PACKET_SIZE);
  const sync = r.u16();
  if (sync !== FFM_PACKET_SYNC) {
    throw new MalformedInputError(
      'ffm',
      offset,
      `data packet ${index} starts with 0x${sync.toString(16).padStart(4, '0')}, not "fm": the stream is desynchronized`,
    );
  }
  const fillSize = r.u16();
  if (fillSize > FFM_PAYLOAD_BYTES) {
    throw new MalformedInputError(
      'ffm',
      offset + 2,
      `data packet ${index} declares ${fillSize} fill bytes (at most ${FFM_PAYLOAD_BYTES})`,
    );
  }
  const dts = r.u64();
  const raw = r.u16();
  const frameOffset = raw & ~FFM_DISCONTINUITY;
  if (frameOffset !== 0 && (frameOffset < FFM_PACKET_HEADER_BYTES || frameOffset >= FFM_PACKET_SIZE - fillSize)) {
    throw new MalformedInputError(
      'ffm',
      offset + 12,
      `data packet ${index}: frame offset ${frameOffset} is outside its payload (${FFM_PACKET_HEADER_BYTES}..${FFM_PACKET_SIZE - fillSize - 1})`,
    );
  }
  return { fillSize, dts, frameOffset, discontinuity: (raw & FFM_DISCONTINUITY) !== 0 };
}

export interface FfmFrameHeader {
  readonly streamIndex: number;
  readonly keyframe: boolean;
  /** Bytes of frame data after the header. */
  readonly size: number;
  /** In the stream's time base (µs). */
  readonly duration: number;
  /** µs (the publisher's wall clock). */
  readonly pts: number;
  /** µs: pts - dts (0 when the header has no FLAG_DTS). */
  readonly ptsDtsDelta: number;
}

/** Bytes of the frame header that starts with `flags` byte value. */
export function ffmFrameHeaderLength(flags: number): number {
  return (flags & FFM_FLAG_DTS) !== 0 ? FFM_FRAME_HEADER_BYTES + 4 : FFM_FRAME_HEADER_BYTES;
}

/**
 * One frame header (16 or 20 bytes, already gathered across packets).
 *
 *  u8 stream_index | u8 flags (1 key, 2 dts follows) | u24 size | u24 duration | u64 pts (µs)
 *  [| u32 pts - dts, with flag 2]
 */
export function parseFfmFrameHeader(buf: Buffer, offset: number): FfmFrameHeader {
  const r = new ByteReader(buf, 'ffm', 0, buf.length);
  const streamIndex = r.u8();
  const flags = r.u8();
  const size = r.u24();
  const duration = r.u24();
  const pts = r.u64();
  let ptsDtsDelta = 0;
  if ((flags & FFM_FLAG_DTS) !== 0) {
    const raw = r.u32();
    ptsDtsDelta = raw >= 0x8000_0000 ? raw - 0x1_0000_0000 : raw;
  }
  if (r.remaining !== 0)
    throw new MalformedInputError('ffm', offset, `frame header of ${buf.length} bytes for flags 0x${flags.toString(16)}`);
  return { streamIndex, keyframe: (flags & FFM_FLAG_KEY_FRAME) !== 0, size, duration, pts, ptsDtsDelta };
}

export interface FfmFrameInput {
  readonly streamIndex: number;
  readonly keyframe: boolean;
  /** µs */
  readonly pts: number;
  /** µs (defaults to pts) */
  readonly dts?: number;
  readonly duration?: number;
  readonly data: Uint8Array;
}

function frameHeaderBytes(f: FfmFrameInput): Buffer {
  const dts = f.dts ?? f.pts;
  const hasDts = dts !== f.pts;
  const w = new ByteWriter(hasDts ? FFM_FRAME_HEADER_BYTES + 4 : FFM_FRAME_HEADER_BYTES);
  w.u8(f.streamIndex)
    .u8((f.keyframe ? FFM_FLAG_KEY_FRAME : 0) | (hasDts ? FFM_FLAG_DTS : 0))
    .u24(f.data.length)
    .u24(f.duration ?? 0)
    .u64(f.pts);
  if (hasDts) w.u32((f.pts - dts) >>> 0);
  return w.done();
}

/**
 * Packs frames into FFM data packets as ffmpeg's ffm muxer does (ffm_write_packet, flush_packet):
 * the first packet carries the discontinuity flag, each packet's dts and frame offset name the
 * first frame header that begins in it, and the last packet is zero-filled (fill_size).
 */
export function encodeFfmPackets(frames: readonly FfmFrameInput[]): Buffer {
  const packets: Buffer[] = [];
  let payload = Buffer.alloc(FFM_PAYLOAD_BYTES);
  let used = 0;
  let frameOffset = 0;
  let dts = 0;
  const flush = (): void => {
    const fill = FFM_PAYLOAD_BYTES - used;
    const w = new ByteWriter(FFM_PACKET_SIZE);
    w.u16(FFM_PACKET_SYNC)
      .u16(fill)
      .u64(dts)
      .u16(frameOffset | (packets.length === 0 ? FFM_DISCONTINUITY : 0))
      .bytes(payload.subarray(0, used))
      .fill(0, fill);
    packets.push(w.done());
    payload = Buffer.alloc(FFM_PAYLOAD_BYTES);
    used = 0;
    frameOffset = 0;
  };
  const write = (bytes: Uint8Array, frameDts: number, isHeader: boolean): void => {
    if (isHeader && frameOffset === 0) {
      frameOffset = used + FFM_PACKET_HEADER_BYTES;
      dts = frameDts;
    }
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(FFM_PAYLOAD_BYTES - used, bytes.length - at);
      payload.set(bytes.subarray(at, at + n), used);
      used += n;
      at += n;
      if (used === FFM_PAYLOAD_BYTES) flush();
    }
  };
  for (const f of frames) {
    write(frameHeaderBytes(f), f.dts ?? f.pts, true);
    write(f.data, f.dts ?? f.pts, false);
  }
  if (used > 0) flush();
  return Buffer.concat(packets);
}
