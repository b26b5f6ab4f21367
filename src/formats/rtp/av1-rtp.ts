// RTP payload format for AV1 (AOM "RTP Payload Format For AV1", v1.0, 4.4 and 5).
//
//  aggregation header:  Z(1) Y(1) W(2) N(1) reserved(3)
//    Z: the first OBU element continues an OBU fragment of the previous packet
//    Y: the last OBU element continues in the next packet
//    W: 0 = every element has a leb128 length; 1-3 = that many elements, the last without one
//    N: the packet starts a new coded video sequence (a key frame with its sequence header)
//  then OBU elements: OBUs without obu_size (obu_has_size_field = 0); temporal delimiters are not sent.
//
// A temporal unit (one Frame) ends at the packet with the RTP marker.

import { MalformedInputError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import { encodeLeb128, ObuType, parseSequenceHeader, readLeb128, readObu, readObus, writeObus, type Obu } from '../av1/obu.js';
import { buildAv1c } from '../av1/av1c.js';
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

const FORMAT = 'rtp av1';

export class Av1Packetizer implements RtpPacketizer {
  readonly payloadType: number;
  readonly clockRate = 90_000;
  private readonly room: number;

  constructor(payloadType = 96, maxPayload = MAX_RTP_PAYLOAD_BYTES) {
    this.payloadType = payloadType;
    this.room = maxPayload - 1;
  }

  /**
   * The OBUs of a temporal unit as one run of elements (W=0: each with its leb128 length), packed
   * greedily and cut across packets where a packet is full (Y, then Z on the next). Packets then
   * end inside OBUs except at the end of the unit, as receivers that take Z=0 for the start of a
   * frame and Y=0 for its end (libwebrtc) expect. N=1 on the first packet of a key frame.
   */
  packetize(frame: Frame): RtpPayloadUnit[] {
    const obus = readObus(frame.data).filter((o) => o.type !== ObuType.temporalDelimiter && o.type !== ObuType.padding);
    let newSequence = frame.keyframe && obus.some((o) => o.type === ObuType.sequenceHeader);
    const units: { parts: Buffer[]; marker: boolean }[] = [];
    let parts: Buffer[] = [];
    let used = 0;
    let continues = false;
    const flush = (endsWithFragment: boolean): void => {
      const header = (continues ? 0x80 : 0) | (endsWithFragment ? 0x40 : 0) | (newSequence ? 0x08 : 0);
      units.push({ parts: [Buffer.from([header]), ...parts], marker: false });
      parts = [];
      used = 0;
      newSequence = false;
      continues = endsWithFragment;
    };
    for (const obu of obus) {
      const element = Buffer.concat([obu.header, obu.payload]);
      let pos = 0;
      while (pos < element.length) {
        const free = this.room - used;
        if (free < 3) {
          flush(false); // full at an element boundary
          continue;
        }
        const take = Math.min(element.length - pos, free - encodeLeb128(free).length);
        parts.push(encodeLeb128(take), element.subarray(pos, pos + take));
        used += encodeLeb128(take).length + take;
        pos += take;
        if (pos < element.length) flush(true);
      }
    }
    if (parts.length > 0) flush(false);
    const last = units.at(-1);
    if (last !== undefined) last.marker = true;
    return units;
  }
}

export class Av1Depacketizer implements RtpDepacketizer {
  private readonly seq = new SequenceTracker();
  private unit: { timestamp: number; obus: Obu[]; bytes: number; newSequence: boolean } | undefined;
  /** An OBU cut at the end of the previous packet (Y=1), waiting for its continuation. */
  private fragment: Buffer[] | undefined;
  private size: { width: number; height: number } | undefined;
  private sizeChanged = false;
  /** The newest sequence header OBU's payload, and whether its av1C is still to be taken. */
  private sequenceHeader: Buffer | undefined;
  private config: Buffer | undefined;

  push(packet: RtpPacket): DepacketizedFrame[] {
    const inOrder = this.seq.next(packet.sequence);
    const payload = packet.payload;
    if (payload.length < 1) throw new MalformedInputError(FORMAT, 0, 'empty payload');
    const agg = payload[0] as number;
    const z = (agg & 0x80) !== 0;
    const y = (agg & 0x40) !== 0;
    const w = (agg >> 4) & 0x03;
    const n = (agg & 0x08) !== 0;
    if (!inOrder) {
      this.unit = undefined; // a lost packet: the temporal unit in progress is incomplete
      this.fragment = undefined;
    }
    if (this.unit !== undefined && this.unit.timestamp !== packet.timestamp) {
      this.unit = undefined;
      this.fragment = undefined;
    }
    if (this.unit === undefined) {
      if (z) return []; // the start of this unit was lost
      this.unit = { timestamp: packet.timestamp, obus: [], bytes: 0, newSequence: n };
    }
    const unit = this.unit;
    const elements: Buffer[] = [];
    let pos = 1;
    for (let i = 0; pos < payload.length; i++) {
      const lastCounted = w !== 0 && i === w - 1;
      if (w !== 0 && i >= w) throw new MalformedInputError(FORMAT, pos, `more than the ${w} OBU elements W declares`);
      let length = payload.length - pos;
      if (!lastCounted && (w === 0 || i < w - 1)) {
        const leb = readLeb128(payload, pos);
        pos += leb.length;
        length = leb.value;
        if (pos + length > payload.length)
          throw new MalformedInputError(FORMAT, pos, `OBU element of ${length} bytes, ${payload.length - pos} left`);
      }
      elements.push(payload.subarray(pos, pos + length));
      pos += length;
    }
    elements.forEach((element, i) => {
      let bytes = element;
      if (i === 0 && z) {
        if (this.fragment === undefined) return; // its start was lost
        bytes = Buffer.concat([...this.fragment, element]);
        this.fragment = undefined;
      }
      if (i === elements.length - 1 && y) {
        this.fragment = [Buffer.from(bytes)];
        return;
      }
      unit.bytes += bytes.length;
      if (unit.bytes > MAX_UNIT_BYTES) {
        this.unit = undefined;
        throw new MalformedInputError(FORMAT, 0, `temporal unit at RTP time ${packet.timestamp} exceeds ${MAX_UNIT_BYTES} bytes`);
      }
      if (bytes.length > 0) unit.obus.push(readObu(Buffer.from(bytes), 0).obu);
    });
    if (!packet.marker) return [];
    this.unit = undefined;
    this.fragment = undefined;
    const header = unit.obus.find((o) => o.type === ObuType.sequenceHeader);
    if (header !== undefined) {
      if (this.sequenceHeader === undefined || !this.sequenceHeader.equals(header.payload)) {
        this.sequenceHeader = Buffer.from(header.payload);
        this.config = buildAv1c(header);
      }
      const { width, height } = parseSequenceHeader(header.payload);
      const size = { width, height };
      if (this.size === undefined || this.size.width !== size.width || this.size.height !== size.height) {
        this.size = size;
        this.sizeChanged = true;
      }
    }
    const data = writeObus(unit.obus);
    if (data.length === 0) return [];
    return [{ timestamp: unit.timestamp, data, keyframe: unit.newSequence || header !== undefined }];
  }

  /** The av1C of the newest sequence header, once after it changes. */
  takeConfig(): Buffer | undefined {
    const config = this.config;
    this.config = undefined;
    return config;
  }

  /** The size of the newest sequence header, once after it changes. */
  takeSize(): { width: number; height: number } | undefined {
    if (!this.sizeChanged) return undefined;
    this.sizeChanged = false;
    return this.size;
  }
}
