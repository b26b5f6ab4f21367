// The contract between Feedcast Frames and RTP payload formats: a packetiser turns one Frame into
// the payloads of its RTP packets; a depacketiser turns received packets back into Frame payloads.

import type { Frame } from '../../media/frame.js';
import { MalformedInputError } from '../../errors.js';
import type { RtpPacket } from './rtp-packet.js';

/** One RTP packet's payload, in parts (a format header, then views of the frame). */
export interface RtpPayloadUnit {
  readonly parts: Buffer[];
  readonly marker: boolean;
  /** Added to the frame's RTP timestamp (RFC 3640 and RFC 2250 carry one frame per packet: 0). */
  readonly timestampOffset?: number;
}

export interface RtpPacketizer {
  readonly payloadType: number;
  readonly clockRate: number;
  /** The payloads of one frame, in order; empty when the frame carries nothing this format can send. */
  packetize(frame: Frame): RtpPayloadUnit[];
}

/** One access unit rebuilt from packets, in Frame payload layout (see media/frame.ts). */
export interface DepacketizedFrame {
  /** RTP timestamp (32-bit, as received) of the unit. */
  readonly timestamp: number;
  readonly data: Buffer;
  readonly keyframe: boolean;
}

export interface RtpDepacketizer {
  /**
   * One received packet (in sequence order as far as the network kept it). Returns the units it
   * completed. Throws MalformedInputError for a payload that breaks its format; the unit in
   * progress is dropped and the next packets are taken as they come.
   */
  push(packet: RtpPacket): DepacketizedFrame[];
  /** The codec config learnt in-band since the last call (SPS/PPS, MPEG audio layer...), if it changed. */
  takeConfig?(): Buffer | undefined;
  /** The picture size learnt from key frames since the last call, if it changed (VP8, AV1: no out-of-band config). */
  takeSize?(): { width: number; height: number } | undefined;
}

/** Bounds of a rebuilt access unit: past these the unit is dropped. */
export const MAX_UNIT_BYTES = 8 * 1024 * 1024;
export const MAX_UNIT_NALS = 1024;

/** Tracks sequence numbers to spot lost packets (16-bit wrap aware). */
export class SequenceTracker {
  private expected: number | undefined;
  lost = 0;

  /** True when `seq` follows the previous packet without a gap. */
  next(seq: number): boolean {
    const expected = this.expected;
    this.expected = (seq + 1) & 0xffff;
    if (expected === undefined || seq === expected) return true;
    const gap = (seq - expected) & 0xffff;
    if (gap < 0x8000) this.lost += gap;
    return false;
  }
}

/**
 * Rebuilds frames from packets whose payload descriptor marks a frame's start and end (VP8, VP9):
 * a packet lost inside a frame drops that frame, and the next start begins afresh.
 */
export class FrameAssembler {
  private readonly format: string;
  private readonly seq = new SequenceTracker();
  private frame: { timestamp: number; parts: Buffer[]; bytes: number } | undefined;

  constructor(format: string) {
    this.format = format;
  }

  /** Adds one packet's frame data; returns the whole frame at its end. Throws past MAX_UNIT_BYTES. */
  add(packet: RtpPacket, data: Buffer, starts: boolean, ends: boolean): { timestamp: number; data: Buffer } | undefined {
    const inOrder = this.seq.next(packet.sequence);
    if (starts) this.frame = { timestamp: packet.timestamp, parts: [], bytes: 0 };
    else if (!inOrder || this.frame === undefined || this.frame.timestamp !== packet.timestamp) {
      this.frame = undefined; // a lost packet: wait for the next frame's start
      return undefined;
    }
    const f = this.frame;
    f.bytes += data.length;
    if (f.bytes > MAX_UNIT_BYTES) {
      this.frame = undefined;
      throw new MalformedInputError(this.format, 0, `frame at RTP time ${packet.timestamp} exceeds ${MAX_UNIT_BYTES} bytes`);
    }
    f.parts.push(Buffer.from(data));
    if (!ends) return undefined;
    this.frame = undefined;
    return { timestamp: f.timestamp, data: Buffer.concat(f.parts, f.bytes) };
  }
}

/** The picture size learnt from key frames, told once after each change (formats without out-of-band config). */
export class KeyFrameSize {
  private size: { width: number; height: number } | undefined;
  private changed = false;

  update(width: number | undefined, height: number | undefined): void {
    if (width === undefined || height === undefined) return;
    if (this.size?.width === width && this.size.height === height) return;
    this.size = { width, height };
    this.changed = true;
  }

  take(): { width: number; height: number } | undefined {
    if (!this.changed) return undefined;
    this.changed = false;
    return this.size;
  }
}
