// AV1 in MPEG-TS's start-code based format (AOM "Carriage of AV1 in MPEG-2 TS" v1.0.1, 4.2):
// each OBU as ts_open_bitstream_unit(): the start code 0x000001, then the OBU with an
// emulation_prevention_three_byte (0x03) after every 0x0000 that a byte 0x00-0x03 would follow.

import { MalformedInputError } from '../../errors.js';
import { encodeLeb128, ObuType, readObu, type Obu } from './obu.js';

const FORMAT = 'av1 ts';
const START_CODE = Buffer.from([0, 0, 1]);
/**
 * The temporal delimiter that opens every access unit: obu_type 2 without obu_size (its size, 0,
 * would put a 0x00 right before the next start code).
 */
const TEMPORAL_DELIMITER = Buffer.from([0x10]);
/** Most OBUs one access unit may hold (a frame has a few; tiles may add some). */
const MAX_OBUS_PER_UNIT = 4096;

/**
 * One access unit for a PES: a temporal delimiter, then each OBU (its obu_size field set, as the
 * spec recommends) behind a start code, escaped. `obus` are those of Feedcast's frame layout.
 */
export function writeStartCodeObus(obus: readonly Obu[]): Buffer {
  const parts: Buffer[] = [START_CODE, TEMPORAL_DELIMITER];
  for (const o of obus) {
    if (o.type === ObuType.temporalDelimiter) continue;
    const header = Buffer.from(o.header);
    header[0] = (header[0] as number) | 0x02;
    parts.push(START_CODE, escape(Buffer.concat([header, encodeLeb128(o.payload.length), o.payload])));
  }
  return Buffer.concat(parts);
}

/**
 * The OBUs of one PES payload. Start-code based (the spec's format: it begins with 0x000001), or
 * the plain low-overhead format earlier drafts and some muxers write (OBUs with obu_size back to back).
 */
export function readStartCodeObus(data: Buffer): Obu[] {
  if (data.length >= 3 && data[0] === 0 && data[1] === 0 && data[2] === 1) return readEscaped(data);
  const out: Obu[] = [];
  for (let pos = 0; pos < data.length;) {
    if (out.length >= MAX_OBUS_PER_UNIT) throw new MalformedInputError(FORMAT, pos, `more than ${MAX_OBUS_PER_UNIT} OBUs`);
    if ((((data[pos] as number) >> 1) & 1) === 0) {
      throw new MalformedInputError(FORMAT, pos, 'an OBU without obu_size outside the start-code format');
    }
    const { obu, length } = readObu(data, pos);
    out.push(obu);
    pos += length;
  }
  return out;
}

function readEscaped(data: Buffer): Obu[] {
  const out: Obu[] = [];
  let start = 3;
  while (start <= data.length) {
    if (out.length >= MAX_OBUS_PER_UNIT) throw new MalformedInputError(FORMAT, start, `more than ${MAX_OBUS_PER_UNIT} OBUs`);
    const next = data.indexOf(START_CODE, start);
    const end = next === -1 ? data.length : next;
    const bytes = unescape(data.subarray(start, end));
    if (bytes.length > 0) {
      // With obu_size the OBU ends where it says (a zero byte before the next start code is not
      // its own); without, it takes every byte up to the next start code.
      const { obu } = readObu(bytes, 0);
      out.push(obu);
    }
    if (next === -1) break;
    start = next + 3;
  }
  return out;
}

/** Inserts 0x03 after each 0x0000 followed by 0x00-0x03, and after a final 0x0000. */
function escape(src: Buffer): Buffer {
  let extra = 0;
  let zeros = 0;
  for (const b of src) {
    if (zeros >= 2 && b <= 3) {
      extra++;
      zeros = 0;
    }
    zeros = b === 0 ? zeros + 1 : 0;
  }
  if (zeros >= 2) extra++;
  if (extra === 0) return src;
  const out = Buffer.allocUnsafe(src.length + extra);
  let j = 0;
  zeros = 0;
  for (const b of src) {
    if (zeros >= 2 && b <= 3) {
      out[j++] = 3;
      zeros = 0;
    }
    out[j++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  if (zeros >= 2) out[j++] = 3;
  return out;
}

/** Removes each emulation_prevention_three_byte (a 0x03 after 0x0000). */
function unescape(src: Buffer): Buffer {
  let zeros = 0;
  let found = false;
  for (const b of src) {
    if (zeros >= 2 && b === 3) {
      found = true;
      break;
    }
    zeros = b === 0 ? zeros + 1 : 0;
  }
  if (!found) return src;
  const out = Buffer.allocUnsafe(src.length);
  let j = 0;
  zeros = 0;
  for (const b of src) {
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out[j++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, j);
}
