// H.264 sequence parameter set: the fields a server needs (profile, level, picture size),
// from ISO/IEC 14496-10 7.3.2.1.1. Emulation prevention bytes are removed first.

import { BitReader } from '../bytes/bit-reader.js';
import { MalformedInputError } from '../../errors.js';

export interface H264Sps {
  profileIdc: number;
  constraintFlags: number;
  levelIdc: number;
  width: number;
  height: number;
  /**
   * How many frames may precede a frame in decode order and follow it in output order: the VUI's
   * max_num_reorder_frames (E.2.1); 0 for Baseline, which has no B-frames; undefined when the SPS
   * does not say.
   */
  maxNumReorderFrames: number | undefined;
}

/** Removes emulation prevention bytes (00 00 03 -> 00 00), 7.4.1. */
export function unescapeRbsp(nal: Uint8Array): Uint8Array {
  const out = new Uint8Array(nal.length);
  let o = 0;
  let zeros = 0;
  for (let i = 0; i < nal.length; i++) {
    const b = nal[i] as number;
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    zeros = b === 0 ? zeros + 1 : 0;
    out[o++] = b;
  }
  return out.subarray(0, o);
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/** Parses an SPS NAL unit (with its 1-byte NAL header). */
export function parseH264Sps(nal: Uint8Array): H264Sps {
  if (nal.length < 4) throw new MalformedInputError('h264 sps', 0, `SPS of ${nal.length} bytes is too short`);
  const r = new BitReader(unescapeRbsp(nal.subarray(1)), 'h264 sps');
  const profileIdc = r.bits(8);
  const constraintFlags = r.bits(8);
  const levelIdc = r.bits(8);
  r.ue(); // seq_parameter_set_id
  let chromaFormatIdc = 1;
  let separateColourPlane = false;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = r.ue();
    if (chromaFormatIdc === 3) separateColourPlane = r.flag();
    r.ue(); // bit_depth_luma_minus8
    r.ue(); // bit_depth_chroma_minus8
    r.skip(1); // qpprime_y_zero_transform_bypass_flag
    if (r.flag()) {
      // seq_scaling_matrix_present_flag
      const count = chromaFormatIdc === 3 ? 12 : 8;
      for (let i = 0; i < count; i++) {
        if (r.flag()) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === 0) {
    r.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType === 1) {
    r.skip(1); // delta_pic_order_always_zero_flag
    r.se(); // offset_for_non_ref_pic
    r.se(); // offset_for_top_to_bottom_field
    const n = r.ue();
    if (n > 255) throw new MalformedInputError('h264 sps', 0, `num_ref_frames_in_pic_order_cnt_cycle ${n} > 255`);
    for (let i = 0; i < n; i++) r.se();
  }
  r.ue(); // max_num_ref_frames (max_num_ref_frames)
  r.skip(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.flag();
  if (!frameMbsOnly) r.skip(1); // mb_adaptive_frame_field_flag
  r.skip(1); // direct_8x8_inference_flag
  let cropLeft = 0;
  let cropRight = 0;
  let cropTop = 0;
  let cropBottom = 0;
  if (r.flag()) {
    cropLeft = r.ue();
    cropRight = r.ue();
    cropTop = r.ue();
    cropBottom = r.ue();
  }
  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const subWidthC = chromaFormatIdc === 3 ? 1 : 2;
  const subHeightC = chromaFormatIdc === 1 ? 2 : 1;
  const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
  const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * (frameMbsOnly ? 1 : 2);
  const width = widthMbs * 16 - cropUnitX * (cropLeft + cropRight);
  const height = (frameMbsOnly ? 1 : 2) * heightMapUnits * 16 - cropUnitY * (cropTop + cropBottom);
  if (width <= 0 || height <= 0 || width > 16384 || height > 16384) {
    throw new MalformedInputError('h264 sps', 0, `implausible picture size ${width}x${height}`);
  }
  let maxNumReorderFrames: number | undefined;
  if (r.flag()) maxNumReorderFrames = vuiReorderFrames(r); // vui_parameters_present_flag
  // Baseline and Constrained Baseline (constraint_set1) have no B-frames.
  if (maxNumReorderFrames === undefined && (profileIdc === 66 || (constraintFlags & 0x40) !== 0)) maxNumReorderFrames = 0;
  return { profileIdc, constraintFlags, levelIdc, width, height, maxNumReorderFrames };
}

/**
 * vui_parameters() (E.1.1) up to bitstream_restriction's max_num_reorder_frames, or undefined
 * without bitstream_restriction. A VUI cut short leaves it unknown: the picture size before it stands.
 */
function vuiReorderFrames(r: BitReader): number | undefined {
  try {
    if (r.flag()) {
      // aspect_ratio_info_present_flag: aspect_ratio_idc, 255 = Extended_SAR (sar_width, sar_height)
      if (r.bits(8) === 255) r.skip(32);
    }
    if (r.flag()) r.skip(1); // overscan_info_present_flag: overscan_appropriate_flag
    if (r.flag()) {
      // video_signal_type_present_flag: video_format(3) video_full_range_flag(1)
      r.skip(4);
      if (r.flag()) r.skip(24); // colour_description_present_flag: primaries, transfer, matrix
    }
    if (r.flag()) {
      r.ue(); // chroma_sample_loc_type_top_field
      r.ue(); // chroma_sample_loc_type_bottom_field
    }
    if (r.flag()) r.skip(65); // timing_info_present_flag: num_units_in_tick, time_scale, fixed_frame_rate_flag
    const nalHrd = r.flag();
    if (nalHrd) skipHrdParameters(r);
    const vclHrd = r.flag();
    if (vclHrd) skipHrdParameters(r);
    if (nalHrd || vclHrd) r.skip(1); // low_delay_hrd_flag
    r.skip(1); // pic_struct_present_flag
    if (!r.flag()) return undefined; // bitstream_restriction_flag
    r.skip(1); // motion_vectors_over_pic_boundaries_flag
    r.ue(); // max_bytes_per_pic_denom
    r.ue(); // max_bits_per_mb_denom
    r.ue(); // log2_max_mv_length_horizontal
    r.ue(); // log2_max_mv_length_vertical
    const reorder = r.ue(); // max_num_reorder_frames
    r.ue(); // max_dec_frame_buffering
    return reorder <= 16 ? reorder : undefined;
  } catch (err) {
    if (err instanceof MalformedInputError) return undefined;
    throw err;
  }
}

/** hrd_parameters() (E.1.2). */
function skipHrdParameters(r: BitReader): void {
  const cpbCount = r.ue() + 1; // cpb_cnt_minus1
  if (cpbCount > 32) throw new MalformedInputError('h264 sps', 0, `cpb_cnt_minus1 ${cpbCount - 1} > 31`);
  r.skip(8); // bit_rate_scale, cpb_size_scale
  for (let i = 0; i < cpbCount; i++) {
    r.ue(); // bit_rate_value_minus1
    r.ue(); // cpb_size_value_minus1
    r.skip(1); // cbr_flag
  }
  r.skip(20); // initial_cpb_removal_delay_length_minus1, cpb_removal_delay_length_minus1, dpb_output_delay_length_minus1, time_offset_length
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      next = (last + r.se() + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
}

const PROFILE_NAMES: Record<number, string> = {
  66: 'Baseline',
  77: 'Main',
  88: 'Extended',
  100: 'High',
  110: 'High 10',
  122: 'High 4:2:2',
  244: 'High 4:4:4',
};

export function describeH264Profile(sps: H264Sps): string {
  const name = PROFILE_NAMES[sps.profileIdc] ?? `profile ${sps.profileIdc}`;
  return `${name} ${(sps.levelIdc / 10).toFixed(1)}`;
}
