// AV1CodecConfigurationRecord (av1C, AV1 Codec ISO Media File Format Binding 2.3.3): what a Track
// of codec 'av1' keeps as its config, built from the stream's sequence header OBU, and its codec
// string (same binding, "Codecs Parameter String": av01.P.LLT.DD).
//
//  marker(1)=1 version(7)=1 | seq_profile(3) seq_level_idx_0(5) |
//  seq_tier_0(1) high_bitdepth(1) twelve_bit(1) monochrome(1) chroma_subsampling_x(1)
//  chroma_subsampling_y(1) chroma_sample_position(2) | reserved(3) initial_presentation_delay_present(1)
//  initial_presentation_delay_minus_one_or_reserved(4) | configOBUs (the sequence header OBU)

import { MalformedInputError } from '../../errors.js';
import { ObuType, parseSequenceHeader, readObus, writeObus, type Obu, type SequenceHeader } from './obu.js';

const FORMAT = 'av1C';
/** The four fixed bytes before configOBUs. */
export const AV1C_HEADER_BYTES = 4;

export interface Av1Config extends SequenceHeader {
  /** The sequence header OBU (with its size field), ready to go in-band before a key frame. */
  readonly sequenceHeaderObu: Buffer;
}

/** av1C for a sequence header OBU (5.5). */
export function buildAv1c(sequenceHeader: Obu): Buffer {
  if (sequenceHeader.type !== ObuType.sequenceHeader) {
    throw new MalformedInputError(FORMAT, 0, `OBU type ${sequenceHeader.type} is not a sequence header`);
  }
  const s = parseSequenceHeader(sequenceHeader.payload);
  const obu = writeObus([sequenceHeader]);
  const out = Buffer.alloc(AV1C_HEADER_BYTES + obu.length);
  out[0] = 0x81; // marker, version 1
  out[1] = (s.profile << 5) | s.level;
  out[2] =
    (s.tier << 7) |
    (s.bitDepth > 8 ? 0x40 : 0) |
    (s.bitDepth === 12 ? 0x20 : 0) |
    (s.monochrome ? 0x10 : 0) |
    (s.subsamplingX ? 0x08 : 0) |
    (s.subsamplingY ? 0x04 : 0) |
    s.chromaSamplePosition;
  out[3] = 0; // no initial_presentation_delay
  obu.copy(out, AV1C_HEADER_BYTES);
  return out;
}

/** av1C fields and its sequence header; the record's own fields win over the OBU's where they differ. */
export function parseAv1c(av1c: Buffer): Av1Config {
  if (av1c.length < AV1C_HEADER_BYTES) {
    throw new MalformedInputError(FORMAT, 0, `${av1c.length} bytes, a record has at least ${AV1C_HEADER_BYTES}`);
  }
  const b0 = av1c[0] as number;
  const b1 = av1c[1] as number;
  const b2 = av1c[2] as number;
  if (b0 !== 0x81) throw new MalformedInputError(FORMAT, 0, `marker/version byte is 0x${b0.toString(16)} (want 0x81)`);
  const sequence = readObus(av1c.subarray(AV1C_HEADER_BYTES)).find((o) => o.type === ObuType.sequenceHeader);
  if (sequence === undefined) throw new MalformedInputError(FORMAT, AV1C_HEADER_BYTES, 'no sequence header OBU in configOBUs');
  const size = parseSequenceHeader(sequence.payload);
  return {
    ...size,
    profile: b1 >> 5,
    level: b1 & 0x1f,
    tier: b2 >> 7,
    bitDepth: (b2 & 0x40) === 0 ? 8 : (b2 & 0x20) !== 0 ? 12 : 10,
    monochrome: (b2 & 0x10) !== 0,
    subsamplingX: (b2 & 0x08) !== 0,
    subsamplingY: (b2 & 0x04) !== 0,
    chromaSamplePosition: b2 & 0x03,
    sequenceHeaderObu: writeObus([sequence]),
  };
}

/** av01.P.LLT.DD: profile, two-digit level index, tier M/H, two-digit bit depth. */
export function av1CodecString(av1c: Buffer): string {
  const c = parseAv1c(av1c);
  return `av01.${c.profile}.${String(c.level).padStart(2, '0')}${c.tier === 1 ? 'H' : 'M'}.${String(c.bitDepth).padStart(2, '0')}`;
}
