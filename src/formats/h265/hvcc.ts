// HEVCDecoderConfigurationRecord (hvcC), ISO/IEC 14496-15 8.3.3.1: the H.265 codec config of
// MP4, fMP4 and enhanced FLV, built from and split into VPS/SPS/PPS NAL units.
//
//  u8 configurationVersion=1 | 2 general_profile_space | 1 general_tier_flag | 5 general_profile_idc
//  u32 general_profile_compatibility_flags | u48 general_constraint_indicator_flags
//  u8 general_level_idc | 4 reserved(1111) 12 min_spatial_segmentation_idc
//  6 reserved(111111) 2 parallelismType | 6 reserved 2 chromaFormat
//  5 reserved(11111) 3 bitDepthLumaMinus8 | 5 reserved 3 bitDepthChromaMinus8
//  u16 avgFrameRate | 2 constantFrameRate 3 numTemporalLayers 1 temporalIdNested 2 lengthSizeMinusOne
//  u8 numOfArrays { 1 array_completeness 1 reserved 6 NAL_unit_type | u16 numNalus { u16 len, NAL } }

import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { H265Nal, h265NalType } from '../h264/nal.js';
import { parseH265Sps } from './sps.js';
import { MalformedInputError } from '../../errors.js';

export interface Hvcc {
  generalProfileSpace: number;
  generalTierFlag: number;
  generalProfileIdc: number;
  generalLevelIdc: number;
  lengthSize: number;
  vps: Buffer[];
  sps: Buffer[];
  pps: Buffer[];
  /** Other arrays (SEI...), NAL units with their headers. */
  other: Buffer[];
}

export function parseHvcc(buf: Buffer): Hvcc {
  const r = new ByteReader(buf, 'hvcC');
  const version = r.u8();
  if (version !== 1) r.fail(`configurationVersion ${version}, expected 1`);
  const b1 = r.u8();
  r.skip(4 + 6); // compatibility flags, constraint flags
  const generalLevelIdc = r.u8();
  r.skip(2 + 1 + 1 + 1 + 1 + 2); // segmentation, parallelism, chroma, bit depths, avgFrameRate
  const lengthSize = (r.u8() & 0x03) + 1;
  const arrayCount = r.u8();
  const hvcc: Hvcc = {
    generalProfileSpace: b1 >> 6,
    generalTierFlag: (b1 >> 5) & 1,
    generalProfileIdc: b1 & 0x1f,
    generalLevelIdc,
    lengthSize,
    vps: [],
    sps: [],
    pps: [],
    other: [],
  };
  for (let i = 0; i < arrayCount; i++) {
    const type = r.u8() & 0x3f;
    const count = r.u16();
    for (let j = 0; j < count; j++) {
      const nal = r.bytes(r.u16());
      if (type === H265Nal.vps) hvcc.vps.push(nal);
      else if (type === H265Nal.sps) hvcc.sps.push(nal);
      else if (type === H265Nal.pps) hvcc.pps.push(nal);
      else hvcc.other.push(nal);
    }
  }
  if (hvcc.sps.length === 0) throw new MalformedInputError('hvcC', 22, 'no SPS in the configuration record');
  return hvcc;
}

/** Builds an hvcC (4-byte NAL lengths) whose header fields come from the first SPS. */
export function buildHvcc(vps: readonly Uint8Array[], sps: readonly Uint8Array[], pps: readonly Uint8Array[]): Buffer {
  const first = sps[0];
  if (first === undefined) throw new MalformedInputError('hvcC', 0, 'cannot build hvcC without an SPS');
  const info = parseH265Sps(first);
  const arrays: [number, readonly Uint8Array[]][] = [
    [H265Nal.vps, vps],
    [H265Nal.sps, sps],
    [H265Nal.pps, pps],
  ];
  const present = arrays.filter(([, nals]) => nals.length > 0);
  let size = 23;
  for (const [, nals] of present) {
    size += 3;
    for (const nal of nals) size += 2 + nal.length;
  }
  const w = new ByteWriter(size);
  w.u8(1); // configurationVersion
  w.u8((info.generalProfileSpace << 6) | (info.generalTierFlag << 5) | info.generalProfileIdc);
  w.u32(info.generalProfileCompatibilityFlags);
  w.bytes(info.generalConstraintIndicatorFlags);
  w.u8(info.generalLevelIdc);
  w.u16(0xf000); // reserved 1111 + min_spatial_segmentation_idc 0
  w.u8(0xfc); // reserved 111111 + parallelismType 0 (unknown)
  w.u8(0xfc | info.chromaFormatIdc);
  w.u8(0xf8 | info.bitDepthLumaMinus8);
  w.u8(0xf8 | info.bitDepthChromaMinus8);
  w.u16(0); // avgFrameRate: unspecified
  // constantFrameRate 0 | numTemporalLayers | temporalIdNested | lengthSizeMinusOne 3
  w.u8((((info.maxSubLayersMinus1 + 1) & 7) << 3) | ((info.temporalIdNesting ? 1 : 0) << 2) | 3);
  w.u8(present.length);
  for (const [type, nals] of present) {
    w.u8(0x80 | type); // array_completeness 1: every parameter set is here
    w.u16(nals.length);
    for (const nal of nals) w.u16(nal.length).bytes(nal);
  }
  return w.done();
}

/** True for the NAL types an hvcC holds (VPS, SPS, PPS). */
export function isH265ParameterSet(nal: Uint8Array): boolean {
  const t = h265NalType(nal);
  return t === H265Nal.vps || t === H265Nal.sps || t === H265Nal.pps;
}
