// RTP payload format for VP9 (RFC 9628) and the start of the VP9 uncompressed header (VP9
// bitstream spec 6.2, 7.2).
//
//  Payload descriptor (4.2):
//   |I|P|L|F|B|E|V|Z|   required: I picture id, P inter-predicted, L layer indices, F flexible mode,
//   |M| PICTURE ID  |   if I     B start of a frame, E end of a frame, V scalability structure
//   | EXTENDED PID  |   if M (15-bit picture id)
//   |  TID  |U| SID |D| if L
//   |   TL0PICIDX   |   if L and not F
//   | P_DIFF      |N|   if P and F, repeated while N (at most 3)
//   | SS ...        |   if V
//
//  Scalability structure (4.2.1):
//   |N_S  |Y|G|-|-|-|   then if Y: WIDTH, HEIGHT (16 bits each) per spatial layer (N_S + 1)
//   |      N_G      |   if G; then per picture group entry: |TID|U| R |-|-| and R P_DIFF bytes
//
// A frame starts at a packet with B=1 and ends at the packet with E=1 (the RTP marker ends the
// picture; with one spatial layer both are the same packet).

import { MalformedInputError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import { BitReader } from '../bytes/bit-reader.js';
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

const FORMAT = 'rtp vp9';

/** Whether a VP9 frame is a key frame, and its size when it is. */
export interface Vp9FrameHeader {
  keyframe: boolean;
  profile: number;
  width?: number;
  height?: number;
}

/**
 * VP9 bitstream 6.2 uncompressed_header(), as far as the frame size of a key frame:
 *   frame_marker(2) = 2, profile_low_bit(1), profile_high_bit(1), [reserved_zero(1) if profile 3],
 *   show_existing_frame(1) [then frame_to_show_map_idx(3): not a key frame], frame_type(1) (0 = key),
 *   show_frame(1), error_resilient_mode(1); for a key frame: frame_sync_code 0x49 0x83 0x42,
 *   color_config() (7.2.2), frame_width_minus_1(16), frame_height_minus_1(16).
 */
export function parseVp9FrameHeader(frame: Buffer): Vp9FrameHeader {
  const b = new BitReader(frame, 'vp9');
  const marker = b.bits(2);
  if (marker !== 2) throw new MalformedInputError('vp9', 0, `frame_marker is ${marker} (want 2)`);
  const low = b.bits(1);
  const profile = (b.bits(1) << 1) | low;
  if (profile === 3) b.skip(1);
  if (b.flag()) return { keyframe: false, profile }; // show_existing_frame
  if (b.bits(1) !== 0) return { keyframe: false, profile };
  b.skip(2); // show_frame, error_resilient_mode
  const sync = b.bits(24);
  if (sync !== 0x498342) throw new MalformedInputError('vp9', 1, `key frame sync code is 0x${sync.toString(16)} (want 498342)`);
  if (profile >= 2) b.skip(1); // ten_or_twelve_bit
  const colorSpace = b.bits(3);
  if (colorSpace !== 7) {
    b.skip(1); // color_range
    if (profile === 1 || profile === 3) b.skip(3); // subsampling_x, subsampling_y, reserved_zero
  } else if (profile === 1 || profile === 3) {
    b.skip(1); // reserved_zero (RGB is 4:4:4)
  }
  const width = b.bits(16) + 1;
  const height = b.bits(16) + 1;
  return { keyframe: true, profile, width, height };
}

export class Vp9Packetizer implements RtpPacketizer {
  readonly payloadType: number;
  readonly clockRate = 90_000;
  private readonly maxPayload: number;

  constructor(payloadType = 96, maxPayload = MAX_RTP_PAYLOAD_BYTES) {
    this.payloadType = payloadType;
    this.maxPayload = maxPayload;
  }

  /**
   * Non-flexible descriptors without picture id or layer indices (a replayed GOP must not look
   * like frames already seen; receivers then order frames by sequence number): P on inter frames,
   * B and E, and on a key frame's first packet a scalability structure with its size (one layer).
   */
  packetize(frame: Frame): RtpPayloadUnit[] {
    const data = frame.data;
    if (data.length === 0) return [];
    let header: Vp9FrameHeader;
    try {
      header = parseVp9FrameHeader(data);
    } catch {
      header = { keyframe: frame.keyframe, profile: 0 };
    }
    const size = header.keyframe && header.width !== undefined && header.height !== undefined ? header : undefined;
    const units: RtpPayloadUnit[] = [];
    for (let pos = 0; pos < data.length;) {
      const first = pos === 0;
      const ss = first && size !== undefined ? scalabilityStructure(size.width ?? 0, size.height ?? 0) : undefined;
      const room = this.maxPayload - 1 - (ss?.length ?? 0);
      const end = Math.min(pos + room, data.length);
      const last = end === data.length;
      const flags = (header.keyframe ? 0 : 0x40) | (first ? 0x08 : 0) | (last ? 0x04 : 0) | (ss !== undefined ? 0x02 : 0);
      const descriptor = Buffer.from([flags]);
      units.push({
        parts: ss === undefined ? [descriptor, data.subarray(pos, end)] : [descriptor, ss, data.subarray(pos, end)],
        marker: last,
      });
      pos = end;
    }
    return units;
  }
}

/** SS for one spatial layer with its resolution (N_S = 0, Y = 1, G = 0). */
function scalabilityStructure(width: number, height: number): Buffer {
  return Buffer.from([0x10, width >> 8, width & 0xff, height >> 8, height & 0xff]);
}

/** Reads the payload descriptor; returns its B and E bits. */
function readDescriptor(r: ByteReader): { begins: boolean; ends: boolean } {
  const first = r.u8();
  const hasPictureId = (first & 0x80) !== 0;
  const predicted = (first & 0x40) !== 0;
  const hasLayers = (first & 0x20) !== 0;
  const flexible = (first & 0x10) !== 0;
  if (hasPictureId && (r.u8() & 0x80) !== 0) r.skip(1);
  if (hasLayers) {
    r.skip(1);
    if (!flexible) r.skip(1); // TL0PICIDX
  }
  if (flexible && predicted) {
    for (let i = 0; ; i++) {
      if (i === 3) r.fail('more than 3 P_DIFF entries');
      if ((r.u8() & 0x01) === 0) break;
    }
  }
  if ((first & 0x02) !== 0) {
    const ss = r.u8();
    const layers = (ss >> 5) + 1;
    if ((ss & 0x10) !== 0) r.skip(4 * layers);
    if ((ss & 0x08) !== 0) {
      const groups = r.u8();
      for (let i = 0; i < groups; i++) r.skip((r.u8() >> 2) & 0x03);
    }
  }
  return { begins: (first & 0x08) !== 0, ends: (first & 0x04) !== 0 };
}

export class Vp9Depacketizer implements RtpDepacketizer {
  private readonly frames = new FrameAssembler(FORMAT);
  private readonly size = new KeyFrameSize();

  push(packet: RtpPacket): DepacketizedFrame[] {
    const r = new ByteReader(packet.payload, FORMAT);
    const { begins, ends } = readDescriptor(r);
    const f = this.frames.add(packet, r.rest(), begins, ends || packet.marker);
    if (f === undefined) return [];
    if (f.data.length === 0) throw new MalformedInputError(FORMAT, 0, `frame at RTP time ${f.timestamp} is empty`);
    const header = parseVp9FrameHeader(f.data);
    if (header.keyframe) this.size.update(header.width, header.height);
    return [{ timestamp: f.timestamp, data: f.data, keyframe: header.keyframe }];
  }

  /** The size of the newest key frame, once after it changes (VP9 has no out-of-band config). */
  takeSize(): { width: number; height: number } | undefined {
    return this.size.take();
  }
}
