// RTP payload formats for audio: AAC as mpeg4-generic AAC-hbr (RFC 3640 3.3.6: one AU header
// section, 13-bit sizes, 3-bit indices; an AU too big for one packet is fragmented, 3.2.3) and
// Opus (RFC 7587: one Opus packet per RTP packet, 48 kHz clock).
//
//  AAC payload: u16 AU-headers-length (bits) | { 13 AU-size | 3 AU-Index(-delta) }... | AUs

import { MalformedInputError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import { from90k } from '../../media/timebase.js';
import { AAC_FRAME_SAMPLES } from '../aac/audio-specific-config.js';
import { ByteReader } from '../bytes/byte-reader.js';
import type { RtpPacket } from './rtp-packet.js';
import { MAX_RTP_PAYLOAD_BYTES } from './rtp-packet.js';
import {
  MAX_UNIT_BYTES,
  SequenceTracker,
  type DepacketizedFrame,
  type RtpDepacketizer,
  type RtpPacketizer,
  type RtpPayloadUnit,
} from './payload.js';

export class AacPacketizer implements RtpPacketizer {
  readonly payloadType: number;
  readonly clockRate: number;
  private readonly maxPayload: number;

  constructor(sampleRate: number, payloadType = 97, maxPayload = MAX_RTP_PAYLOAD_BYTES) {
    this.clockRate = sampleRate;
    this.payloadType = payloadType;
    this.maxPayload = maxPayload;
  }

  packetize(frame: Frame): RtpPayloadUnit[] {
    const au = frame.data;
    if (au.length === 0) return [];
    if (au.length > 0x1fff) return []; // 13-bit AU-size: an AAC frame is never this big
    const header = Buffer.from([0x00, 0x10, (au.length >> 5) & 0xff, (au.length & 0x1f) << 3]);
    const room = this.maxPayload - header.length;
    const units: RtpPayloadUnit[] = [];
    for (let pos = 0; pos < au.length; pos += room) {
      const end = Math.min(pos + room, au.length);
      units.push({ parts: [header, au.subarray(pos, end)], marker: end === au.length });
    }
    return units;
  }
}

export interface AacDepacketizerOptions {
  sizeLength: number;
  indexLength: number;
  indexDeltaLength: number;
  /** Samples per AU (1024, or 960 for some encoders), to time the AUs of one packet. */
  frameSamples?: number;
}

export class AacDepacketizer implements RtpDepacketizer {
  private readonly options: AacDepacketizerOptions;
  private readonly seq = new SequenceTracker();
  private fragment: { timestamp: number; size: number; parts: Buffer[]; have: number } | undefined;

  constructor(options: AacDepacketizerOptions = { sizeLength: 13, indexLength: 3, indexDeltaLength: 3 }) {
    if (options.sizeLength < 1 || options.sizeLength > 16 || options.indexLength > 8 || options.indexDeltaLength > 8) {
      throw new MalformedInputError(
        'rtp aac',
        0,
        `unsupported sizelength ${options.sizeLength} / indexlength ${options.indexLength} / indexdeltalength ${options.indexDeltaLength}`,
      );
    }
    this.options = options;
  }

  get packetsLost(): number {
    return this.seq.lost;
  }

  push(packet: RtpPacket): DepacketizedFrame[] {
    if (!this.seq.next(packet.sequence)) this.fragment = undefined;
    const r = new ByteReader(packet.payload, 'rtp aac');
    const headerBits = r.u16();
    const headerBytes = Math.ceil(headerBits / 8);
    const headers = r.sub(headerBytes);
    const { sizeLength, indexLength, indexDeltaLength } = this.options;
    const sizes: number[] = [];
    let bitPos = 0;
    const readBits = (n: number): number => {
      let v = 0;
      for (let i = 0; i < n; i++) {
        const byte = headers.buf[headers.pos + (bitPos >> 3)] as number;
        v = v * 2 + ((byte >> (7 - (bitPos & 7))) & 1);
        bitPos++;
      }
      return v;
    };
    while (headerBits - bitPos >= sizeLength + (sizes.length === 0 ? indexLength : indexDeltaLength)) {
      if (sizes.length >= 64) throw new MalformedInputError('rtp aac', 2, 'more than 64 AU headers in one packet');
      sizes.push(readBits(sizeLength));
      readBits(sizes.length === 1 ? indexLength : indexDeltaLength);
    }
    if (sizes.length === 0) throw new MalformedInputError('rtp aac', 0, `AU-headers-length ${headerBits} holds no AU header`);
    const data = r.rest();
    const first = sizes[0] as number;
    // A single AU larger than the data: a fragment (RFC 3640 3.2.3), completed by the packet with the marker.
    if (sizes.length === 1 && first > data.length) {
      if (first > MAX_UNIT_BYTES) throw new MalformedInputError('rtp aac', 2, `AU of ${first} bytes`);
      const f = this.fragment;
      if (f !== undefined && f.timestamp === packet.timestamp && f.size === first) {
        f.parts.push(data);
        f.have += data.length;
      } else {
        this.fragment = { timestamp: packet.timestamp, size: first, parts: [data], have: data.length };
      }
      const cur = this.fragment;
      if (cur !== undefined && cur.have >= cur.size) {
        this.fragment = undefined;
        return [{ timestamp: cur.timestamp, data: Buffer.concat(cur.parts, cur.have).subarray(0, cur.size), keyframe: true }];
      }
      return [];
    }
    this.fragment = undefined;
    const out: DepacketizedFrame[] = [];
    const samples = this.options.frameSamples ?? AAC_FRAME_SAMPLES;
    let pos = 0;
    for (const [i, size] of sizes.entries()) {
      if (pos + size > data.length) {
        throw new MalformedInputError('rtp aac', 2 + headerBytes + pos, `AU ${i} of ${size} bytes overruns the payload`);
      }
      out.push({
        timestamp: (packet.timestamp + i * samples) >>> 0,
        data: Buffer.from(data.subarray(pos, pos + size)),
        keyframe: true,
      });
      pos += size;
    }
    return out;
  }
}

export class OpusPacketizer implements RtpPacketizer {
  readonly payloadType: number;
  readonly clockRate = 48_000;

  constructor(payloadType = 97) {
    this.payloadType = payloadType;
  }

  packetize(frame: Frame): RtpPayloadUnit[] {
    if (frame.data.length === 0) return [];
    return [{ parts: [frame.data], marker: false }];
  }
}

export class OpusDepacketizer implements RtpDepacketizer {
  push(packet: RtpPacket): DepacketizedFrame[] {
    if (packet.payload.length === 0) throw new MalformedInputError('rtp opus', 0, 'empty payload');
    return [{ timestamp: packet.timestamp, data: Buffer.from(packet.payload), keyframe: true }];
  }
}

/** RTP timestamp of a frame: its PTS in the clock rate, offset by the sender's random base, modulo 2^32. */
export function rtpTimestampOf(pts90k: number, clockRate: number, base: number): number {
  const v = (base + from90k(pts90k, clockRate)) % 0x1_0000_0000;
  return v < 0 ? v + 0x1_0000_0000 : v;
}
