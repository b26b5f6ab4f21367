// RTP payload format for VP8 (RFC 7741) and the VP8 frame header (RFC 6386 9.1).
//
//  Payload descriptor (4.2):        VP8 frame tag (RFC 6386 9.1), first 3 bytes of a frame:
//   |X|R|N|S|R| PID |   required      bit 0: !key_frame, bits 1-3 version, bit 4 show_frame,
//   |I|L|T|K| RSV   |   if X            bits 5-23 first partition size; a key frame then has the
//   |M| PictureID   |   if I (M: 15 bits) start code 9d 01 2a and 14-bit width and height (LE)
//   |  TL0PICIDX    |   if L
//   |TID|Y| KEYIDX  |   if T or K
//
// A frame starts at a packet with S=1 and PID=0 and ends at the packet with the RTP marker.

import { MalformedInputError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import { ByteReader } from '../bytes/byte-reader.js';
import type { RtpPacket } from './rtp-packet.js';
import { MAX_RTP_PAYLOAD_BYTES } from './rtp-packet.js';
import {
  FrameAssembler,
  KeyFrameSize,
  type DepacketizedFrame,
  type RtpDepacketizer,
  type RtpPacketizer,
  type RtpPayloadUnit,
} from './payload.js';

const FORMAT = 'rtp vp8';

/** Whether a VP8 frame is a key frame, and its size when it is. */
export interface Vp8FrameHeader {
  keyframe: boolean;
  width?: number;
  height?: number;
}

/** RFC 6386 9.1: the frame tag, and for a key frame its start code and dimensions. */
export function parseVp8FrameHeader(frame: Buffer): Vp8FrameHeader {
  const r = new ByteReader(frame, 'vp8');
  const tag = r.u8();
  if ((tag & 0x01) !== 0) return { keyframe: false };
  r.skip(2);
  const start = r.u24();
  if (start !== 0x9d012a)
    throw new MalformedInputError('vp8', 3, `key frame start code is 0x${start.toString(16)} (want 9d012a)`);
  const w = r.u8() | (r.u8() << 8);
  const h = r.u8() | (r.u8() << 8);
  return { keyframe: true, width: w & 0x3fff, height: h & 0x3fff };
}

export class Vp8Packetizer implements RtpPacketizer {
  readonly payloadType: number;
  readonly clockRate = 90_000;
  private readonly maxPayload: number;

  constructor(payloadType = 96, maxPayload = MAX_RTP_PAYLOAD_BYTES) {
    this.payloadType = payloadType;
    this.maxPayload = maxPayload;
  }

  /** One-byte descriptors (no picture id: a replayed GOP must not look like frames already seen). */
  packetize(frame: Frame): RtpPayloadUnit[] {
    const data = frame.data;
    if (data.length === 0) return [];
    const room = this.maxPayload - 1;
    const units: RtpPayloadUnit[] = [];
    for (let pos = 0; pos < data.length; pos += room) {
      const end = Math.min(pos + room, data.length);
      units.push({ parts: [pos === 0 ? START : CONTINUATION, data.subarray(pos, end)], marker: end === data.length });
    }
    return units;
  }
}

const START = Buffer.from([0x10]);
const CONTINUATION = Buffer.from([0x00]);

/** Skips the payload descriptor; returns whether the packet starts a frame (S=1, PID=0). */
function readDescriptor(r: ByteReader): boolean {
  const first = r.u8();
  const startsFrame = (first & 0x10) !== 0 && (first & 0x07) === 0;
  if ((first & 0x80) !== 0) {
    const x = r.u8();
    if ((x & 0x80) !== 0) {
      const pictureId = r.u8();
      if ((pictureId & 0x80) !== 0) r.skip(1);
    }
    if ((x & 0x40) !== 0) r.skip(1);
    if ((x & 0x30) !== 0) r.skip(1);
  }
  return startsFrame;
}

export class Vp8Depacketizer implements RtpDepacketizer {
  private readonly frames = new FrameAssembler(FORMAT);
  private readonly size = new KeyFrameSize();

  push(packet: RtpPacket): DepacketizedFrame[] {
    const r = new ByteReader(packet.payload, FORMAT);
    const starts = readDescriptor(r);
    const f = this.frames.add(packet, r.rest(), starts, packet.marker);
    if (f === undefined) return [];
    if (f.data.length < 3)
      throw new MalformedInputError(FORMAT, 0, `frame at RTP time ${f.timestamp} has ${f.data.length} bytes`);
    const header = parseVp8FrameHeader(f.data);
    if (header.keyframe) this.size.update(header.width, header.height);
    return [{ timestamp: f.timestamp, data: f.data, keyframe: header.keyframe }];
  }

  /** The size of the newest key frame, once after it changes (VP8 has no out-of-band config). */
  takeSize(): { width: number; height: number } | undefined {
    return this.size.take();
  }
}
