// AV1 Open Bitstream Units (AV1 spec 5.3, 5.5): OBU headers, LEB128 sizes, the low-overhead
// layout Feedcast keeps AV1 frames in, and the frame size from a sequence header.
//
//  obu_header: forbidden(1) obu_type(4) obu_extension_flag(1) obu_has_size_field(1) reserved(1)
//              [extension: temporal_id(3) spatial_id(2) reserved(3)]  [obu_size: leb128()]

import { MalformedInputError } from '../../errors.js';
import { BitReader } from '../bytes/bit-reader.js';

const FORMAT = 'av1';

export const ObuType = {
  sequenceHeader: 1,
  temporalDelimiter: 2,
  frameHeader: 3,
  tileGroup: 4,
  metadata: 5,
  frame: 6,
  padding: 15,
} as const;

/** One OBU: its header byte(s) with obu_has_size_field cleared, and its payload. */
export interface Obu {
  readonly type: number;
  /** obu_header and the extension byte when present, with obu_has_size_field = 0. */
  readonly header: Buffer;
  readonly payload: Buffer;
}

/** leb128() (4.10.5): at most 8 bytes, value below 2^32. Returns the value and the bytes read. */
export function readLeb128(buf: Buffer, pos: number): { value: number; length: number } {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const byte = buf[pos + i];
    if (byte === undefined) throw new MalformedInputError(FORMAT, pos + i, 'leb128 runs past the end');
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) {
      if (value > 0xffffffff) throw new MalformedInputError(FORMAT, pos, `leb128 value ${value} is over 2^32-1`);
      return { value, length: i + 1 };
    }
  }
  throw new MalformedInputError(FORMAT, pos, 'leb128 longer than 8 bytes');
}

export function encodeLeb128(value: number): Buffer {
  const out: number[] = [];
  let v = value;
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) byte |= 0x80;
    out.push(byte);
  } while (v > 0);
  return Buffer.from(out);
}

/**
 * One OBU from `buf` at `pos`. An OBU without a size field takes `available` bytes (all that is
 * left of its RTP element). Returns the OBU and the bytes it took.
 */
export function readObu(buf: Buffer, pos: number, available = buf.length - pos): { obu: Obu; length: number } {
  const end = pos + available;
  if (available < 1 || end > buf.length) throw new MalformedInputError(FORMAT, pos, 'OBU header runs past the end');
  const first = buf[pos] as number;
  if ((first & 0x80) !== 0) throw new MalformedInputError(FORMAT, pos, 'obu_forbidden_bit is set');
  const hasExtension = (first & 0x04) !== 0;
  const hasSize = (first & 0x02) !== 0;
  const headerLength = hasExtension ? 2 : 1;
  if (pos + headerLength > end) throw new MalformedInputError(FORMAT, pos, 'OBU extension header runs past the end');
  let payloadStart = pos + headerLength;
  let payloadLength = end - payloadStart;
  if (hasSize) {
    const size = readLeb128(buf, payloadStart);
    payloadStart += size.length;
    payloadLength = size.value;
    if (payloadStart + payloadLength > end) {
      throw new MalformedInputError(FORMAT, pos, `OBU declares ${payloadLength} bytes, ${end - payloadStart} are left`);
    }
  }
  const header = Buffer.from(buf.subarray(pos, pos + headerLength));
  header[0] = first & ~0x02;
  return {
    obu: { type: (first >> 3) & 0x0f, header, payload: buf.subarray(payloadStart, payloadStart + payloadLength) },
    length: payloadStart + payloadLength - pos,
  };
}

/** The OBUs of a temporal unit kept in Feedcast's frame layout (each with obu_has_size_field = 1). */
export function readObus(data: Buffer): Obu[] {
  const out: Obu[] = [];
  for (let pos = 0; pos < data.length;) {
    if ((((data[pos] as number) >> 1) & 1) === 0)
      throw new MalformedInputError(FORMAT, pos, 'an OBU of a frame has no size field');
    const { obu, length } = readObu(data, pos);
    out.push(obu);
    pos += length;
  }
  return out;
}

/** OBUs as one frame payload: each with its size field, temporal delimiters and padding left out. */
export function writeObus(obus: readonly Obu[]): Buffer {
  const parts: Buffer[] = [];
  for (const o of obus) {
    if (o.type === ObuType.temporalDelimiter || o.type === ObuType.padding) continue;
    const header = Buffer.from(o.header);
    header[0] = (header[0] as number) | 0x02;
    parts.push(header, encodeLeb128(o.payload.length), o.payload);
  }
  return Buffer.concat(parts);
}

/** What a sequence header (5.5) says that containers repeat: av1C fields and the maximum frame size. */
export interface SequenceHeader {
  readonly profile: number;
  /** seq_level_idx[0] and seq_tier[0]: the level and tier of operating point 0. */
  readonly level: number;
  readonly tier: number;
  readonly bitDepth: 8 | 10 | 12;
  readonly monochrome: boolean;
  readonly subsamplingX: boolean;
  readonly subsamplingY: boolean;
  readonly chromaSamplePosition: number;
  /** max_frame_width_minus_1 + 1 and max_frame_height_minus_1 + 1: the coded size of its frames. */
  readonly width: number;
  readonly height: number;
}

/**
 * sequence_header_obu() (5.5.1) up to color_config() (5.5.2):
 *   seq_profile(3) still_picture(1) reduced_still_picture_header(1)
 *   [timing_info, decoder_model_info, operating points: operating_point_idc(12) seq_level_idx(5) [seq_tier(1)] ...]
 *   frame_width_bits_minus_1(4) frame_height_bits_minus_1(4) max_frame_width_minus_1(n) max_frame_height_minus_1(n)
 *   [frame id numbers] use_128x128_superblock ... enable_superres enable_cdef enable_restoration color_config()
 */
export function parseSequenceHeader(payload: Buffer): SequenceHeader {
  const r = new BitReader(payload, 'av1 sequence header');
  const profile = r.bits(3);
  r.skip(1); // still_picture
  const reduced = r.flag();
  let level = 0;
  let tier = 0;
  if (reduced) {
    level = r.bits(5); // seq_level_idx[0]
  } else {
    let decoderModelInfo = false;
    let bufferDelayLength = 0;
    if (r.flag()) {
      // timing_info
      r.skip(32);
      r.skip(32);
      if (r.flag()) uvlc(r);
      decoderModelInfo = r.flag();
      if (decoderModelInfo) {
        bufferDelayLength = r.bits(5) + 1;
        r.skip(32);
        r.skip(10); // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
      }
    }
    const initialDisplayDelay = r.flag();
    const operatingPoints = r.bits(5) + 1;
    for (let i = 0; i < operatingPoints; i++) {
      r.skip(12); // operating_point_idc
      const opLevel = r.bits(5);
      const opTier = opLevel > 7 ? r.bits(1) : 0;
      if (i === 0) [level, tier] = [opLevel, opTier];
      if (decoderModelInfo && r.flag()) {
        r.skip(bufferDelayLength);
        r.skip(bufferDelayLength);
        r.skip(1);
      }
      if (initialDisplayDelay && r.flag()) r.skip(4);
    }
  }
  const widthBits = r.bits(4) + 1;
  const heightBits = r.bits(4) + 1;
  const width = r.bits(widthBits) + 1;
  const height = r.bits(heightBits) + 1;
  if (!reduced && r.flag()) r.skip(7); // frame_id_numbers_present_flag: delta/additional frame id lengths
  r.skip(3); // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
  if (!reduced) {
    r.skip(4); // enable_interintra_compound, enable_masked_compound, enable_warped_motion, enable_dual_filter
    const orderHint = r.flag();
    if (orderHint) r.skip(2); // enable_jnt_comp, enable_ref_frame_mvs
    const forceScreenContentTools = r.flag() ? 2 : r.bits(1); // seq_choose_screen_content_tools
    if (forceScreenContentTools > 0 && !r.flag()) r.skip(1); // seq_choose_integer_mv, seq_force_integer_mv
    if (orderHint) r.skip(3); // order_hint_bits_minus_1
  }
  r.skip(3); // enable_superres, enable_cdef, enable_restoration
  return { profile, level, tier, width, height, ...parseColorConfig(r, profile) };
}

/** color_config() (5.5.2): bit depth, monochrome, chroma subsampling and sample position. */
function parseColorConfig(
  r: BitReader,
  profile: number,
): Pick<SequenceHeader, 'bitDepth' | 'monochrome' | 'subsamplingX' | 'subsamplingY' | 'chromaSamplePosition'> {
  const highBitdepth = r.flag();
  const twelveBit = profile === 2 && highBitdepth && r.flag();
  const bitDepth = twelveBit ? 12 : highBitdepth ? 10 : 8;
  const monochrome = profile === 1 ? false : r.flag();
  let primaries = 2;
  let transfer = 2;
  let matrix = 2;
  if (r.flag()) {
    // color_description_present_flag
    primaries = r.bits(8);
    transfer = r.bits(8);
    matrix = r.bits(8);
  }
  if (monochrome) {
    r.skip(1); // color_range
    return { bitDepth, monochrome, subsamplingX: true, subsamplingY: true, chromaSamplePosition: 0 };
  }
  if (primaries === 1 && transfer === 13 && matrix === 0) {
    // sRGB: 4:4:4, full range
    return { bitDepth, monochrome, subsamplingX: false, subsamplingY: false, chromaSamplePosition: 0 };
  }
  r.skip(1); // color_range
  let subsamplingX = profile === 0;
  let subsamplingY = profile === 0;
  if (profile > 1) {
    if (bitDepth === 12) {
      subsamplingX = r.flag();
      subsamplingY = subsamplingX && r.flag();
    } else {
      subsamplingX = true;
      subsamplingY = false;
    }
  }
  const chromaSamplePosition = subsamplingX && subsamplingY ? r.bits(2) : 0;
  return { bitDepth, monochrome, subsamplingX, subsamplingY, chromaSamplePosition };
}

/**
 * True when a temporal unit starts a coded video sequence a decoder can join: a sequence header
 * and a frame (or frame header) OBU whose uncompressed_header (5.9.2) says KEY_FRAME and shows it:
 *   show_existing_frame(1) frame_type(2) show_frame(1)   (reduced still picture headers: always key)
 */
export function isKeyTemporalUnit(obus: readonly Obu[]): boolean {
  const sequence = obus.find((o) => o.type === ObuType.sequenceHeader);
  if (sequence === undefined) return false;
  const frame = obus.find((o) => o.type === ObuType.frame || o.type === ObuType.frameHeader);
  if (frame === undefined) return false;
  if (((sequence.payload[0] ?? 0) & 0x08) !== 0) return true; // reduced_still_picture_header
  const first = frame.payload[0];
  if (first === undefined) return false;
  const showExisting = (first & 0x80) !== 0;
  const frameType = (first >> 5) & 0x03;
  return !showExisting && frameType === 0;
}

/** uvlc() (4.10.3). */
function uvlc(r: BitReader): number {
  let leadingZeros = 0;
  while (!r.flag()) {
    leadingZeros++;
    if (leadingZeros > 32) throw new MalformedInputError(FORMAT, 0, 'uvlc with more than 32 leading zeros');
  }
  return leadingZeros === 0 ? 0 : r.bits(leadingZeros) + 2 ** leadingZeros - 1;
}
