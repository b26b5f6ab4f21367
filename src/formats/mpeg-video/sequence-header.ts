// MPEG-1/MPEG-2 video: the sequence header (ISO/IEC 11172-2 2.4.2.3, 13818-2 6.2.2.1), the
// sequence extension (13818-2 6.2.2.3) and the picture header's coding type (6.2.3), which is
// what a server needs to label a picture and its track.

import { BitReader } from '../bytes/bit-reader.js';
import { MalformedInputError } from '../../errors.js';

export interface SequenceHeader {
  width: number;
  height: number;
  aspectRatioCode: number;
  frameRateCode: number;
  /** In units of 400 bit/s, as coded (0x3FFFF: variable). */
  bitRateValue: number;
}

export const MpegVideoStartCode = {
  picture: 0x00,
  userData: 0xb2,
  sequenceHeader: 0xb3,
  extension: 0xb5,
  sequenceEnd: 0xb7,
  groupOfPictures: 0xb8,
} as const;

/** picture_coding_type values (6.3.9). */
export const PictureCodingType = { i: 1, p: 2, b: 3 } as const;

/**
 * Parses a sequence header body (the bytes after the 00 00 01 B3 start code).
 *
 *  12 horizontal_size_value | 12 vertical_size_value | 4 aspect_ratio_information
 *  | 4 frame_rate_code | 18 bit_rate_value | 1 marker_bit | 10 vbv_buffer_size_value
 *  | 1 constrained_parameters_flag | 1 load_intra_quantiser_matrix (+ 8*64) | 1 load_non_intra...
 */
export function parseSequenceHeader(body: Uint8Array): SequenceHeader {
  const r = new BitReader(body, 'mpeg video sequence header');
  const width = r.bits(12);
  const height = r.bits(12);
  const aspectRatioCode = r.bits(4);
  const frameRateCode = r.bits(4);
  const bitRateValue = r.bits(18);
  if (width === 0 || height === 0) {
    throw new MalformedInputError('mpeg video sequence header', 0, `picture size ${width}x${height}`);
  }
  return { width, height, aspectRatioCode, frameRateCode, bitRateValue };
}

export interface SequenceExtension {
  profileAndLevel: number;
  progressiveSequence: boolean;
  chromaFormat: number;
  /** The two high bits of the 14-bit sizes. */
  horizontalSizeExtension: number;
  verticalSizeExtension: number;
}

/**
 * Parses a sequence extension body (after 00 00 01 B5), or returns undefined for another
 * extension kind.
 *
 *  4 extension_start_code_identifier (0001) | 8 profile_and_level_indication
 *  | 1 progressive_sequence | 2 chroma_format | 2 horizontal_size_extension
 *  | 2 vertical_size_extension | 12 bit_rate_extension | ...
 */
export function parseSequenceExtension(body: Uint8Array): SequenceExtension | undefined {
  const r = new BitReader(body, 'mpeg video sequence extension');
  if (r.bits(4) !== 1) return undefined;
  const profileAndLevel = r.bits(8);
  const progressiveSequence = r.flag();
  const chromaFormat = r.bits(2);
  const horizontalSizeExtension = r.bits(2);
  const verticalSizeExtension = r.bits(2);
  return { profileAndLevel, progressiveSequence, chromaFormat, horizontalSizeExtension, verticalSizeExtension };
}

/** What one coded picture (one PES of MPEG-1/2 video) says about itself. */
export interface MpegVideoPictureInfo {
  /** The sequence header carried before the picture, with sizes extended for MPEG-2. */
  sequence?: SequenceHeader;
  /** True when a sequence extension is present (MPEG-2). */
  mpeg2: boolean;
  /** picture_coding_type of the first picture (1 I, 2 P, 3 B), or undefined without a picture header. */
  pictureCodingType?: number;
}

/**
 * Scans an elementary stream chunk for start codes and reads the sequence header, sequence
 * extension and the first picture header.
 *
 *  picture header: 10 temporal_reference | 3 picture_coding_type | 16 vbv_delay | ...
 */
export function inspectMpegVideoPicture(data: Uint8Array): MpegVideoPictureInfo {
  let sequence: SequenceHeader | undefined;
  let mpeg2 = false;
  let pictureCodingType: number | undefined;
  const n = data.length;
  for (let i = 0; i + 3 < n; i++) {
    if (data[i] !== 0 || data[i + 1] !== 0 || data[i + 2] !== 1) continue;
    const code = data[i + 3] as number;
    const body = data.subarray(i + 4);
    if (code === MpegVideoStartCode.sequenceHeader) {
      sequence = parseSequenceHeader(body);
    } else if (code === MpegVideoStartCode.extension && sequence !== undefined && !mpeg2) {
      const ext = parseSequenceExtension(body);
      if (ext !== undefined) {
        mpeg2 = true;
        sequence = {
          ...sequence,
          width: sequence.width + ext.horizontalSizeExtension * 4096,
          height: sequence.height + ext.verticalSizeExtension * 4096,
        };
      }
    } else if (code === MpegVideoStartCode.picture) {
      const r = new BitReader(body, 'mpeg video picture header');
      r.skip(10); // temporal_reference
      pictureCodingType = r.bits(3);
      break; // the slices follow: nothing more to learn
    }
    i += 3;
  }
  const info: MpegVideoPictureInfo = { mpeg2 };
  if (sequence !== undefined) info.sequence = sequence;
  if (pictureCodingType !== undefined) info.pictureCodingType = pictureCodingType;
  return info;
}
