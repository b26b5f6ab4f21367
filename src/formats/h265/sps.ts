// H.265 sequence parameter set: profile, tier, level, chroma format, bit depths and the
// cropped picture size, from ITU-T H.265 7.3.2.2.1 and profile_tier_level 7.3.3.

import { BitReader } from '../bytes/bit-reader.js';
import { unescapeRbsp } from '../h264/sps.js';
import { MalformedInputError } from '../../errors.js';

export interface H265Sps {
  maxSubLayersMinus1: number;
  temporalIdNesting: boolean;
  generalProfileSpace: number;
  generalTierFlag: number;
  generalProfileIdc: number;
  /** general_profile_compatibility_flag[32], as an unsigned 32-bit number. */
  generalProfileCompatibilityFlags: number;
  /** The 48 bits of general constraint flags (progressive_source_flag ...), 6 bytes. */
  generalConstraintIndicatorFlags: Buffer;
  generalLevelIdc: number;
  chromaFormatIdc: number;
  bitDepthLumaMinus8: number;
  bitDepthChromaMinus8: number;
  width: number;
  height: number;
  /** sps_max_num_reorder_pics of the highest sub-layer (7.4.3.2.1). */
  maxNumReorderPics: number;
}

const FORMAT = 'h265 sps';

/**
 * Parses an SPS NAL unit (with its 2-byte NAL header).
 *
 *  4 sps_video_parameter_set_id | 3 sps_max_sub_layers_minus1 | 1 sps_temporal_id_nesting_flag
 *  profile_tier_level(1, sps_max_sub_layers_minus1):
 *    2 general_profile_space | 1 general_tier_flag | 5 general_profile_idc
 *    32 general_profile_compatibility_flag[j] | 48 constraint flags | 8 general_level_idc
 *    per sub-layer: 1 sub_layer_profile_present_flag | 1 sub_layer_level_present_flag
 *    (then 2-bit reserved pairs up to 8, then 88 profile bits / 8 level bits per sub-layer)
 *  ue sps_seq_parameter_set_id | ue chroma_format_idc [1 separate_colour_plane_flag if 3]
 *  ue pic_width_in_luma_samples | ue pic_height_in_luma_samples
 *  1 conformance_window_flag [ue left, right, top, bottom offsets]
 *  ue bit_depth_luma_minus8 | ue bit_depth_chroma_minus8 | ...
 */
export function parseH265Sps(nal: Uint8Array): H265Sps {
  if (nal.length < 16) throw new MalformedInputError(FORMAT, 0, `SPS of ${nal.length} bytes is too short`);
  const rbsp = unescapeRbsp(nal.subarray(2));
  const r = new BitReader(rbsp, FORMAT);
  r.skip(4); // sps_video_parameter_set_id
  const maxSubLayersMinus1 = r.bits(3);
  const temporalIdNesting = r.flag();
  if (maxSubLayersMinus1 > 6) throw new MalformedInputError(FORMAT, 0, `sps_max_sub_layers_minus1 ${maxSubLayersMinus1} > 6`);
  const generalProfileSpace = r.bits(2);
  const generalTierFlag = r.bits(1);
  const generalProfileIdc = r.bits(5);
  const generalProfileCompatibilityFlags = r.bits(32);
  const generalConstraintIndicatorFlags = Buffer.from(rbsp.subarray(6, 12));
  r.skip(48);
  const generalLevelIdc = r.bits(8);
  const profilePresent: boolean[] = [];
  const levelPresent: boolean[] = [];
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    profilePresent.push(r.flag());
    levelPresent.push(r.flag());
  }
  if (maxSubLayersMinus1 > 0) r.skip(2 * (8 - maxSubLayersMinus1)); // reserved_zero_2bits
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (profilePresent[i] === true) r.skip(88);
    if (levelPresent[i] === true) r.skip(8);
  }
  const spsId = r.ue();
  if (spsId > 15) throw new MalformedInputError(FORMAT, 0, `sps_seq_parameter_set_id ${spsId} > 15`);
  const chromaFormatIdc = r.ue();
  if (chromaFormatIdc > 3) throw new MalformedInputError(FORMAT, 0, `chroma_format_idc ${chromaFormatIdc} > 3`);
  let separateColourPlane = false;
  if (chromaFormatIdc === 3) separateColourPlane = r.flag();
  const lumaWidth = r.ue();
  const lumaHeight = r.ue();
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
  const bitDepthLumaMinus8 = r.ue();
  const bitDepthChromaMinus8 = r.ue();
  r.ue(); // log2_max_pic_order_cnt_lsb_minus4
  const orderingForAll = r.flag(); // sps_sub_layer_ordering_info_present_flag
  let maxNumReorderPics = 0;
  for (let i = orderingForAll ? 0 : maxSubLayersMinus1; i <= maxSubLayersMinus1; i++) {
    r.ue(); // sps_max_dec_pic_buffering_minus1
    maxNumReorderPics = r.ue(); // sps_max_num_reorder_pics
    r.ue(); // sps_max_latency_increase_plus1
  }
  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
  const subHeightC = chromaArrayType === 1 ? 2 : 1;
  const width = lumaWidth - subWidthC * (cropLeft + cropRight);
  const height = lumaHeight - subHeightC * (cropTop + cropBottom);
  if (width <= 0 || height <= 0 || width > 16888 || height > 16888) {
    throw new MalformedInputError(FORMAT, 0, `implausible picture size ${width}x${height}`);
  }
  return {
    maxSubLayersMinus1,
    temporalIdNesting,
    generalProfileSpace,
    generalTierFlag,
    generalProfileIdc,
    generalProfileCompatibilityFlags,
    generalConstraintIndicatorFlags,
    generalLevelIdc,
    chromaFormatIdc,
    bitDepthLumaMinus8,
    bitDepthChromaMinus8,
    width,
    height,
    maxNumReorderPics,
  };
}

const PROFILE_NAMES: Record<number, string> = {
  1: 'Main',
  2: 'Main 10',
  3: 'Main Still Picture',
  4: 'Range Extensions',
};

/** "Main 3.1", "Main 10 High 5.1": profile, tier (when High) and level. */
export function describeH265Profile(sps: H265Sps): string {
  const name = PROFILE_NAMES[sps.generalProfileIdc] ?? `profile ${sps.generalProfileIdc}`;
  const tier = sps.generalTierFlag === 1 ? ' High' : '';
  return `${name}${tier} ${(sps.generalLevelIdc / 30).toFixed(1)}`;
}
