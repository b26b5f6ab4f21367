// The track a recorded MP4 sample description stands for (ISO/IEC 14496-12 8.5.2 stsd): the
// inverse of init-segment.ts's sample entries, so recorded frames can be played again through any
// output (TS, FLV, RTP). avc1/hvc1/av01 + avcC/hvcC/av1C (14496-15 5.4, 8.4; AV1 binding 2.3),
// vp08/vp09 + vpcC, mp4a + esds (14496-14 5.6, 14496-1 7.2.6: ES > DecoderConfig > DSI = ASC).
// A complete stsd box in; MalformedInputError for bytes that break the layout; undefined for a
// codec this server does not carry.

import { MalformedInputError } from '../../errors.js';
import type { Track } from '../../media/track.js';
import { parseAudioSpecificConfig } from '../aac/audio-specific-config.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { parseBoxHeader } from './read.js';

const FORMAT = 'mp4 stsd';

const VISUAL = { avc1: 'h264', hvc1: 'h265', hev1: 'h265', av01: 'av1', vp08: 'vp8', vp09: 'vp9' } as const;
const CONFIG_BOX = { h264: 'avcC', h265: 'hvcC', av1: 'av1C', vp8: 'vpcC', vp9: 'vpcC' } as const;
/** VisualSampleEntry fields before its child boxes (12.1.3), AudioSampleEntry's (12.2.3). */
const VISUAL_FIELDS_BYTES = 78;
const AUDIO_FIELDS_BYTES = 28;

/** Child boxes of [start, end) of `buf`: type and payload bounds. */
function boxesIn(buf: Buffer, start: number, end: number): { type: string; payloadStart: number; end: number }[] {
  const out: { type: string; payloadStart: number; end: number }[] = [];
  for (let at = start; at < end;) {
    const h = parseBoxHeader(buf.subarray(0, end), at);
    if (h === undefined) throw new MalformedInputError(FORMAT, at, 'truncated box header');
    if (at + h.size > end) throw new MalformedInputError(FORMAT, at, `box ${h.type} of ${h.size} bytes overruns its parent`);
    out.push({ type: h.type, payloadStart: at + h.headerSize, end: at + h.size });
    at += h.size;
  }
  return out;
}

/** An MPEG-4 descriptor header (14496-1 8.3.3): tag, then a size in up to four 7-bit groups. */
function descriptor(r: ByteReader): { tag: number; size: number } {
  const tag = r.u8();
  let size = 0;
  for (let i = 0; ; i++) {
    if (i === 4) r.fail(`descriptor ${tag} has a size field longer than 4 bytes`);
    const b = r.u8();
    size = size * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) break;
  }
  if (size > r.remaining) r.fail(`descriptor ${tag} of ${size} bytes overruns its box (${r.remaining} left)`);
  return { tag, size };
}

/** The AudioSpecificConfig of an esds payload (after its version and flags). */
function ascOfEsds(buf: Buffer, start: number, end: number): Buffer | undefined {
  const r = new ByteReader(buf, FORMAT, start, end);
  r.skip(4); // version, flags
  const es = descriptor(r);
  if (es.tag !== 0x03) r.fail(`esds starts with descriptor ${es.tag}, not an ES_Descriptor (3)`);
  r.skip(2); // ES_ID
  const flags = r.u8();
  if (flags & 0x80) r.skip(2); // dependsOn_ES_ID
  if (flags & 0x40) r.skip(r.u8()); // URL
  if (flags & 0x20) r.skip(2); // OCR_ES_Id
  const dc = descriptor(r);
  if (dc.tag !== 0x04) r.fail(`ES_Descriptor holds descriptor ${dc.tag}, not a DecoderConfigDescriptor (4)`);
  const objectType = r.u8();
  r.skip(12); // streamType..avgBitrate
  if (objectType !== 0x40) return undefined; // not MPEG-4 audio (AAC)
  if (r.remaining === 0) return undefined;
  const dsi = descriptor(r);
  if (dsi.tag !== 0x05) r.fail(`DecoderConfigDescriptor holds descriptor ${dsi.tag}, not a DecoderSpecificInfo (5)`);
  return Buffer.from(r.bytes(dsi.size));
}

/**
 * The track of the first sample entry of an stsd box (the whole box), with feed track id `id`;
 * undefined when its codec is not one Feedcast records.
 */
export function parseSampleEntry(stsd: Buffer, id: number): Track | undefined {
  const top = parseBoxHeader(stsd);
  if (top === undefined || top.type !== 'stsd' || top.size > stsd.length) {
    throw new MalformedInputError(FORMAT, 0, 'not a complete stsd box');
  }
  const r = new ByteReader(stsd, FORMAT, top.headerSize, top.size);
  r.skip(4); // version, flags
  const count = r.u32();
  const [entry] = boxesIn(stsd, r.pos, top.size);
  if (count === 0 || entry === undefined) throw new MalformedInputError(FORMAT, r.pos, 'stsd holds no sample entry');
  const fields = new ByteReader(stsd, FORMAT, entry.payloadStart, entry.end);
  const visual = (VISUAL as Record<string, (typeof VISUAL)[keyof typeof VISUAL] | undefined>)[entry.type];
  if (visual !== undefined) {
    fields.skip(24); // reserved, data_reference_index, pre_defined, reserved, pre_defined
    const width = fields.u16();
    const height = fields.u16();
    if (entry.end - entry.payloadStart < VISUAL_FIELDS_BYTES) {
      throw new MalformedInputError(FORMAT, entry.payloadStart, `${entry.type} is shorter than its fields`);
    }
    const config = boxesIn(stsd, entry.payloadStart + VISUAL_FIELDS_BYTES, entry.end).find((b) => b.type === CONFIG_BOX[visual]);
    if (config === undefined && visual !== 'vp8') {
      throw new MalformedInputError(FORMAT, entry.payloadStart, `${entry.type} without its ${CONFIG_BOX[visual]} box`);
    }
    return {
      id,
      kind: 'video',
      codec: visual,
      ...(config !== undefined && visual !== 'vp8'
        ? { config: Buffer.from(stsd.subarray(config.payloadStart, config.end)) }
        : {}),
      width,
      height,
    };
  }
  if (entry.type === 'mp4a') {
    fields.skip(16); // reserved, data_reference_index, reserved
    const channels = fields.u16();
    if (entry.end - entry.payloadStart < AUDIO_FIELDS_BYTES) {
      throw new MalformedInputError(FORMAT, entry.payloadStart, 'mp4a is shorter than its fields');
    }
    const esds = boxesIn(stsd, entry.payloadStart + AUDIO_FIELDS_BYTES, entry.end).find((b) => b.type === 'esds');
    if (esds === undefined) throw new MalformedInputError(FORMAT, entry.payloadStart, 'mp4a without its esds box');
    const config = ascOfEsds(stsd, esds.payloadStart, esds.end);
    if (config === undefined) return undefined;
    const asc = parseAudioSpecificConfig(config);
    return { id, kind: 'audio', codec: 'aac', config, sampleRate: asc.sampleRate, channels: asc.channels || channels };
  }
  return undefined;
}
