// The contract between Feedcast Frames and RTP payload formats: a packetiser turns one Frame into
// the payloads of its RTP packets; a depacketiser turns received packets back into Frame payloads.

import type { Frame } from '../../media/frame.js';
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
