// RTP payload formats for MPEG-1/2 elementary streams (RFC 2250): audio (MPA, 3.5, static payload
// type 14) and video (MPV, 3.4, static payload type 32), both on a 90 kHz clock.
//
//  MPA header: 16 MBZ | 16 Frag_offset                       then whole frames, or a fragment
//  MPV header: 5 MBZ | 1 T | 10 TR | 1 AN | 1 N | 1 S | 1 B | 1 E | 3 P | 1 FBV | 3 BFC | 1 FFV | 3 FFC
//              (T=1: a 4-byte MPEG-2 extension header follows; Feedcast sends T=0)

import { MalformedInputError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { parseMpegAudioHeader } from '../mpeg-audio/mpeg-audio-header.js';
import { MpegVideoStartCode, PictureCodingType } from '../mpeg-video/sequence-header.js';
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

export const MPA_PAYLOAD_TYPE = 14;
export const MPV_PAYLOAD_TYPE = 32;

export class MpaPacketizer implements RtpPacketizer {
  readonly payloadType = MPA_PAYLOAD_TYPE;
  readonly clockRate = 90_000;
  private readonly maxPayload: number;

  constructor(maxPayload = MAX_RTP_PAYLOAD_BYTES) {
    this.maxPayload = maxPayload;
  }

  packetize(frame: Frame): RtpPayloadUnit[] {
    const data = frame.data;
    if (data.length === 0) return [];
    const room = this.maxPayload - 4;
    const units: RtpPayloadUnit[] = [];
    for (let pos = 0; pos < data.length; pos += room) {
      const end = Math.min(pos + room, data.length);
      const header = Buffer.from([0, 0, (pos >> 8) & 0xff, pos & 0xff]);
      units.push({ parts: [header, data.subarray(pos, end)], marker: false });
    }
    return units;
  }
}

export class MpaDepacketizer implements RtpDepacketizer {
  private readonly seq = new SequenceTracker();
  private fragment: { timestamp: number; parts: Buffer[]; have: number; need: number } | undefined;
  private layer: number | undefined;
  private layerChanged = false;

  push(packet: RtpPacket): DepacketizedFrame[] {
    const inOrder = this.seq.next(packet.sequence);
    const r = new ByteReader(packet.payload, 'rtp mpa');
    r.skip(2);
    const offset = r.u16();
    const data = r.rest();
    if (offset > 0) {
      const f = this.fragment;
      if (!inOrder || f === undefined || f.timestamp !== packet.timestamp || f.have !== offset) {
        this.fragment = undefined;
        return [];
      }
      f.parts.push(data);
      f.have += data.length;
      if (f.have < f.need) return [];
      this.fragment = undefined;
      return [{ timestamp: f.timestamp, data: Buffer.concat(f.parts, f.have).subarray(0, f.need), keyframe: true }];
    }
    this.fragment = undefined;
    const out: DepacketizedFrame[] = [];
    let pos = 0;
    let timestamp = packet.timestamp;
    while (pos < data.length) {
      if (out.length >= 64) throw new MalformedInputError('rtp mpa', 4 + pos, 'more than 64 frames in one packet');
      const header = parseMpegAudioHeader(data, pos);
      this.noteLayer(header.layer);
      if (pos + header.frameLength > data.length) {
        if (pos !== 0) throw new MalformedInputError('rtp mpa', 4 + pos, 'a frame after the first one is cut');
        if (header.frameLength > MAX_UNIT_BYTES) throw new MalformedInputError('rtp mpa', 4, 'frame too large');
        this.fragment = { timestamp, parts: [data], have: data.length, need: header.frameLength };
        return out;
      }
      out.push({ timestamp, data: Buffer.from(data.subarray(pos, pos + header.frameLength)), keyframe: true });
      pos += header.frameLength;
      timestamp = (timestamp + Math.round((header.samplesPerFrame * 90_000) / header.sampleRate)) >>> 0;
    }
    return out;
  }

  /** MPEG audio's "config" is the layer (3: mp3, else mp2), as one byte. */
  takeConfig(): Buffer | undefined {
    if (!this.layerChanged || this.layer === undefined) return undefined;
    this.layerChanged = false;
    return Buffer.from([this.layer]);
  }

  private noteLayer(layer: number): void {
    if (this.layer === layer) return;
    this.layer = layer;
    this.layerChanged = true;
  }
}

/** Start-code-delimited pieces of a picture: [offset, startCode] for each 00 00 01 xx. */
function startCodes(data: Buffer): { offset: number; code: number }[] {
  const found: { offset: number; code: number }[] = [];
  for (let i = 0; i + 3 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      found.push({ offset: i, code: data[i + 3] as number });
      i += 3;
    }
  }
  return found;
}

const isSlice = (code: number): boolean => code >= 0x01 && code <= 0xaf;

export class MpvPacketizer implements RtpPacketizer {
  readonly payloadType = MPV_PAYLOAD_TYPE;
  readonly clockRate = 90_000;
  private readonly maxPayload: number;

  constructor(maxPayload = MAX_RTP_PAYLOAD_BYTES) {
    this.maxPayload = maxPayload;
  }

  packetize(frame: Frame): RtpPayloadUnit[] {
    const data = frame.data;
    if (data.length === 0) return [];
    const codes = startCodes(data);
    let temporalReference = 0;
    let pictureType = 0;
    const pic = codes.find((c) => c.code === MpegVideoStartCode.picture);
    if (pic !== undefined && pic.offset + 6 <= data.length) {
      temporalReference = ((data[pic.offset + 4] as number) << 2) | ((data[pic.offset + 5] as number) >> 6);
      pictureType = ((data[pic.offset + 5] as number) >> 3) & 7;
    }
    const hasSequence = codes.some((c) => c.code === MpegVideoStartCode.sequenceHeader);
    // Pieces: the headers before the first slice stay together with it; then one piece per slice.
    const cuts = [0];
    let seenSlice = false;
    for (const c of codes) {
      if (!isSlice(c.code)) continue;
      if (seenSlice && c.offset > 0) cuts.push(c.offset);
      seenSlice = true;
    }
    cuts.push(data.length);
    const room = this.maxPayload - 4;
    const packets: { start: number; end: number; begin: boolean; endOfSlice: boolean }[] = [];
    let start = 0;
    let end = 0;
    let midSlice = false; // `start` lies inside a slice (after a fragment)
    for (let i = 1; i < cuts.length; i++) {
      const next = cuts[i] as number;
      if (next - start <= room) {
        end = next;
        continue;
      }
      if (end > start) {
        packets.push({ start, end, begin: !midSlice, endOfSlice: true });
        start = end;
        midSlice = false;
      }
      // One slice bigger than a packet: fragment it.
      while (next - start > room) {
        packets.push({ start, end: start + room, begin: !midSlice, endOfSlice: false });
        start += room;
        midSlice = true;
      }
      end = next;
    }
    if (end > start) packets.push({ start, end, begin: !midSlice, endOfSlice: true });
    return packets.map((p, i) => {
      const header = Buffer.from([
        (temporalReference >> 8) & 0x03,
        temporalReference & 0xff,
        ((hasSequence && p.start === 0 ? 1 : 0) << 5) | ((p.begin ? 1 : 0) << 4) | ((p.endOfSlice ? 1 : 0) << 3) | pictureType,
        0,
      ]);
      return { parts: [header, data.subarray(p.start, p.end)], marker: i === packets.length - 1 };
    });
  }
}

export class MpvDepacketizer implements RtpDepacketizer {
  private readonly seq = new SequenceTracker();
  private parts: Buffer[] = [];
  private bytes = 0;
  private timestamp: number | undefined;
  private pictureType = 0;

  push(packet: RtpPacket): DepacketizedFrame[] {
    this.seq.next(packet.sequence);
    const out: DepacketizedFrame[] = [];
    if (this.timestamp !== undefined && packet.timestamp !== this.timestamp) this.emit(out);
    const r = new ByteReader(packet.payload, 'rtp mpv');
    const b0 = r.u8();
    r.skip(1);
    const b2 = r.u8();
    r.skip(1);
    if ((b0 & 0x04) !== 0) r.skip(4); // T: MPEG-2 video-specific header extension
    const data = r.rest();
    if (this.parts.length === 0) this.pictureType = b2 & 7;
    if (this.bytes + data.length > MAX_UNIT_BYTES) {
      this.parts = [];
      this.bytes = 0;
      throw new MalformedInputError('rtp mpv', 0, `picture over ${MAX_UNIT_BYTES} bytes`);
    }
    this.timestamp = packet.timestamp;
    this.parts.push(data);
    this.bytes += data.length;
    if (packet.marker) this.emit(out);
    return out;
  }

  private emit(out: DepacketizedFrame[]): void {
    if (this.parts.length > 0 && this.timestamp !== undefined) {
      const data = Buffer.concat(this.parts, this.bytes);
      let type = this.pictureType;
      if (type === 0) {
        const pic = startCodes(data).find((c) => c.code === MpegVideoStartCode.picture);
        if (pic !== undefined && pic.offset + 6 <= data.length) type = ((data[pic.offset + 5] as number) >> 3) & 7;
      }
      out.push({ timestamp: this.timestamp, data, keyframe: type === PictureCodingType.i });
    }
    this.parts = [];
    this.bytes = 0;
  }
}
