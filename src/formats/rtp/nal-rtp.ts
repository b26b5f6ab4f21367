// RTP payload formats for NAL-unit video: H.264 (RFC 6184: single NAL unit 5.6, STAP-A 5.7.1,
// FU-A 5.8; packetization-mode=1) and H.265 (RFC 7798: single NAL unit 4.4.1, AP 4.4.2, FU 4.4.3;
// no DONL). Before each keyframe the parameter sets from the track config are sent in-band, so a
// player that missed the SDP (or a decoder reset) can start there.
//
//  H.264 STAP-A: [F|NRI|24] { u16 size, NAL }...      FU-A: [F|NRI|28] [S|E|R|type] fragment
//  H.265 AP:     [F|48|LayerId|TID] { u16 size, NAL }  FU:   [F|49|LayerId|TID] [S|E|type] fragment

import { MalformedInputError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { buildAvcc, parseAvcc } from '../h264/avcc.js';
import { H264Nal, H265Nal, h264NalType, h265NalType, joinLengthPrefixed, splitLengthPrefixed } from '../h264/nal.js';
import { buildHvcc, parseHvcc } from '../h265/hvcc.js';
import type { RtpPacket } from './rtp-packet.js';
import { MAX_RTP_PAYLOAD_BYTES } from './rtp-packet.js';
import {
  MAX_UNIT_BYTES,
  MAX_UNIT_NALS,
  SequenceTracker,
  type DepacketizedFrame,
  type RtpDepacketizer,
  type RtpPacketizer,
  type RtpPayloadUnit,
} from './payload.js';

/** What differs between the two NAL formats. */
interface NalSyntax {
  readonly name: 'h264' | 'h265';
  readonly headerBytes: 1 | 2;
  readonly aggregationType: number;
  readonly fragmentType: number;
  type(nal: Uint8Array): number;
  isParameterSet(type: number): boolean;
  isKey(type: number): boolean;
  isDelimiter(type: number): boolean;
  /** Payload header of an aggregation packet holding these NAL units. */
  aggregationHeader(nals: readonly Buffer[]): Buffer;
  /** Payload header + FU header of a fragment of `nal`. */
  fragmentHeader(nal: Buffer, start: boolean, end: boolean): Buffer;
}

const H264: NalSyntax = {
  name: 'h264',
  headerBytes: 1,
  aggregationType: 24,
  fragmentType: 28,
  type: h264NalType,
  isParameterSet: (t) => t === H264Nal.sps || t === H264Nal.pps,
  isKey: (t) => t === H264Nal.idr,
  isDelimiter: (t) => t === H264Nal.aud,
  aggregationHeader(nals) {
    let f = 0;
    let nri = 0;
    for (const n of nals) {
      f |= (n[0] as number) & 0x80;
      nri = Math.max(nri, (n[0] as number) & 0x60);
    }
    return Buffer.from([f | nri | 24]);
  },
  fragmentHeader(nal, start, end) {
    const b0 = nal[0] as number;
    return Buffer.from([(b0 & 0xe0) | 28, (start ? 0x80 : 0) | (end ? 0x40 : 0) | (b0 & 0x1f)]);
  },
};

const H265: NalSyntax = {
  name: 'h265',
  headerBytes: 2,
  aggregationType: 48,
  fragmentType: 49,
  type: h265NalType,
  isParameterSet: (t) => t === H265Nal.vps || t === H265Nal.sps || t === H265Nal.pps,
  isKey: (t) => t >= H265Nal.irapFirst && t <= H265Nal.irapLast,
  isDelimiter: (t) => t === H265Nal.aud,
  aggregationHeader(nals) {
    // F is the OR of the F bits; LayerId and TID are the lowest of the aggregated units (RFC 7798 4.4.2).
    let f = 0;
    let layer = 63;
    let tid = 7;
    for (const n of nals) {
      const b0 = n[0] as number;
      const b1 = n[1] as number;
      f |= b0 & 0x80;
      layer = Math.min(layer, ((b0 & 1) << 5) | (b1 >> 3));
      tid = Math.min(tid, b1 & 7);
    }
    return Buffer.from([f | (48 << 1) | (layer >> 5), ((layer & 0x1f) << 3) | tid]);
  },
  fragmentHeader(nal, start, end) {
    const b0 = nal[0] as number;
    const type = (b0 >> 1) & 0x3f;
    return Buffer.from([(b0 & 0x81) | (49 << 1), nal[1] as number, (start ? 0x80 : 0) | (end ? 0x40 : 0) | type]);
  },
};

function parameterSetsOf(track: Track): Buffer[] {
  if (track.config === undefined) return [];
  if (track.codec === 'h264') {
    const avcc = parseAvcc(track.config);
    return [...avcc.sps, ...avcc.pps];
  }
  const hvcc = parseHvcc(track.config);
  return [...hvcc.vps, ...hvcc.sps, ...hvcc.pps];
}

export class NalPacketizer implements RtpPacketizer {
  readonly payloadType: number;
  readonly clockRate = 90_000;
  private readonly syntax: NalSyntax;
  private readonly parameterSets: Buffer[];
  private readonly maxPayload: number;

  constructor(track: Track, payloadType = 96, maxPayload = MAX_RTP_PAYLOAD_BYTES) {
    if (track.codec !== 'h264' && track.codec !== 'h265') {
      throw new MalformedInputError('rtp', 0, `NAL packetiser given a ${track.codec} track`);
    }
    this.syntax = track.codec === 'h264' ? H264 : H265;
    this.payloadType = payloadType;
    this.maxPayload = maxPayload;
    this.parameterSets = parameterSetsOf(track);
  }

  packetize(frame: Frame): RtpPayloadUnit[] {
    const syntax = this.syntax;
    const nals = splitLengthPrefixed(frame.data).filter(
      (n) => n.length > syntax.headerBytes && !syntax.isDelimiter(syntax.type(n)),
    );
    if (frame.keyframe && !nals.some((n) => syntax.isParameterSet(syntax.type(n)))) {
      nals.unshift(...this.parameterSets);
    }
    const units: { parts: Buffer[] }[] = [];
    let group: Buffer[] = [];
    let groupBytes = 0;
    const flush = (): void => {
      if (group.length === 1) units.push({ parts: [group[0] as Buffer] });
      else if (group.length > 1) {
        const parts: Buffer[] = [syntax.aggregationHeader(group)];
        for (const nal of group) {
          const size = Buffer.allocUnsafe(2);
          size.writeUInt16BE(nal.length);
          parts.push(size, nal);
        }
        units.push({ parts });
      }
      group = [];
      groupBytes = syntax.headerBytes;
    };
    flush();
    for (const nal of nals) {
      if (nal.length > this.maxPayload) {
        flush();
        this.fragment(nal, units);
        continue;
      }
      if (groupBytes + 2 + nal.length > this.maxPayload) flush();
      group.push(nal);
      groupBytes += 2 + nal.length;
    }
    flush();
    return units.map((u, i) => ({ parts: u.parts, marker: i === units.length - 1 }));
  }

  private fragment(nal: Buffer, units: { parts: Buffer[] }[]): void {
    const h = this.syntax.headerBytes;
    const room = this.maxPayload - h - 1;
    for (let pos = h; pos < nal.length; pos += room) {
      const end = Math.min(pos + room, nal.length);
      units.push({ parts: [this.syntax.fragmentHeader(nal, pos === h, end === nal.length), nal.subarray(pos, end)] });
    }
  }
}

export class NalDepacketizer implements RtpDepacketizer {
  private readonly syntax: NalSyntax;
  private readonly seq = new SequenceTracker();
  private nals: Buffer[] = [];
  private bytes = 0;
  private timestamp: number | undefined;
  private fu: Buffer[] | undefined;
  private fuBytes = 0;
  private paramSets = new Map<number, Buffer>();
  private configChanged = false;
  private knownConfig: Buffer | undefined;

  constructor(codec: 'h264' | 'h265', config?: Buffer) {
    this.syntax = codec === 'h264' ? H264 : H265;
    this.knownConfig = config;
  }

  get packetsLost(): number {
    return this.seq.lost;
  }

  push(packet: RtpPacket): DepacketizedFrame[] {
    const out: DepacketizedFrame[] = [];
    const inOrder = this.seq.next(packet.sequence);
    if (this.timestamp !== undefined && packet.timestamp !== this.timestamp) this.emit(out);
    this.timestamp = packet.timestamp;
    if (!inOrder) this.fu = undefined; // a lost fragment spoils the NAL unit being rebuilt
    try {
      this.take(packet.payload);
    } catch (err) {
      this.reset();
      throw err;
    }
    if (packet.marker) this.emit(out);
    return out;
  }

  takeConfig(): Buffer | undefined {
    if (!this.configChanged) return undefined;
    this.configChanged = false;
    return this.knownConfig;
  }

  private take(payload: Buffer): void {
    const syntax = this.syntax;
    const h = syntax.headerBytes;
    if (payload.length <= h) throw new MalformedInputError(`rtp ${syntax.name}`, 0, `payload of ${payload.length} bytes`);
    if (((payload[0] as number) & 0x80) !== 0) {
      throw new MalformedInputError(`rtp ${syntax.name}`, 0, 'forbidden_zero_bit set');
    }
    const type = syntax.type(payload);
    if (type === syntax.aggregationType) {
      let pos = h;
      while (pos < payload.length) {
        if (pos + 2 > payload.length) throw new MalformedInputError(`rtp ${syntax.name}`, pos, 'truncated aggregation size');
        const size = payload.readUInt16BE(pos);
        pos += 2;
        if (size === 0 || pos + size > payload.length) {
          throw new MalformedInputError(`rtp ${syntax.name}`, pos - 2, `aggregated NAL of ${size} bytes overruns the payload`);
        }
        this.addNal(payload.subarray(pos, pos + size));
        pos += size;
      }
      return;
    }
    if (type === syntax.fragmentType) {
      if (payload.length < h + 2) throw new MalformedInputError(`rtp ${syntax.name}`, 0, 'fragment without data');
      const fuHeader = payload[h] as number;
      const start = (fuHeader & 0x80) !== 0;
      const end = (fuHeader & 0x40) !== 0;
      const data = payload.subarray(h + 1);
      if (start) {
        const nalHeader =
          syntax.name === 'h264'
            ? Buffer.from([((payload[0] as number) & 0xe0) | (fuHeader & 0x1f)])
            : Buffer.from([((payload[0] as number) & 0x81) | ((fuHeader & 0x3f) << 1), payload[1] as number]);
        this.fu = [nalHeader, data];
        this.fuBytes = nalHeader.length + data.length;
      } else if (this.fu !== undefined) {
        this.fu.push(data);
        this.fuBytes += data.length;
        if (this.fuBytes > MAX_UNIT_BYTES) {
          throw new MalformedInputError(`rtp ${syntax.name}`, 0, `fragmented NAL unit over ${MAX_UNIT_BYTES} bytes`);
        }
      }
      if (end && this.fu !== undefined) {
        this.addNal(Buffer.concat(this.fu, this.fuBytes));
        this.fu = undefined;
      }
      return;
    }
    if ((syntax.name === 'h264' && type >= 1 && type <= 23) || (syntax.name === 'h265' && type < 48)) {
      this.addNal(payload);
      return;
    }
    throw new MalformedInputError(`rtp ${syntax.name}`, 0, `unsupported packet type ${type}`);
  }

  private addNal(nal: Buffer): void {
    const type = this.syntax.type(nal);
    if (this.syntax.isDelimiter(type)) return;
    if (this.nals.length >= MAX_UNIT_NALS || this.bytes + nal.length > MAX_UNIT_BYTES) {
      throw new MalformedInputError(
        `rtp ${this.syntax.name}`,
        0,
        `access unit over ${MAX_UNIT_NALS} NAL units or ${MAX_UNIT_BYTES} bytes`,
      );
    }
    if (this.syntax.isParameterSet(type)) this.noteParameterSet(type, nal);
    this.nals.push(nal);
    this.bytes += nal.length;
  }

  private noteParameterSet(type: number, nal: Buffer): void {
    const old = this.paramSets.get(type);
    if (old !== undefined && old.equals(nal)) return;
    this.paramSets.set(type, Buffer.from(nal));
    let config: Buffer | undefined;
    try {
      if (this.syntax.name === 'h264') {
        const sps = this.paramSets.get(H264Nal.sps);
        const pps = this.paramSets.get(H264Nal.pps);
        if (sps !== undefined && pps !== undefined) config = buildAvcc([sps], [pps]);
      } else {
        const vps = this.paramSets.get(H265Nal.vps);
        const sps = this.paramSets.get(H265Nal.sps);
        const pps = this.paramSets.get(H265Nal.pps);
        if (vps !== undefined && sps !== undefined && pps !== undefined) config = buildHvcc([vps], [sps], [pps]);
      }
    } catch {
      return; // an SPS we cannot read: keep the config we have, the decoder still gets it in-band
    }
    if (config !== undefined && (this.knownConfig === undefined || !config.equals(this.knownConfig))) {
      this.knownConfig = config;
      this.configChanged = true;
    }
  }

  private emit(out: DepacketizedFrame[]): void {
    if (this.nals.length > 0 && this.timestamp !== undefined) {
      const keyframe = this.nals.some((n) => this.syntax.isKey(this.syntax.type(n)));
      out.push({ timestamp: this.timestamp, data: joinLengthPrefixed(this.nals), keyframe });
    }
    this.nals = [];
    this.bytes = 0;
    this.fu = undefined;
  }

  private reset(): void {
    this.nals = [];
    this.bytes = 0;
    this.fu = undefined;
  }
}
