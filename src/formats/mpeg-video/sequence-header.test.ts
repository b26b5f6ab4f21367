// MPEG-1/2 video: sequence header, sequence extension (MPEG-2) and picture coding type.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedInputError } from '../../errors.js';
import { inspectMpegVideoPicture, parseSequenceHeader } from './sequence-header.js';

// prettier-ignore
const SEQUENCE = [
  0x00, 0x00, 0x01, 0xb3, // sequence_header_code
  0x14, 0x00, 0xf0, // horizontal_size 320 (12 bits), vertical_size 240 (12 bits)
  0x13, // aspect_ratio_information 1, frame_rate_code 3 (25 Hz)
  0xff, 0xff, 0xe0, // bit_rate_value 0x3FFFF (18 bits), marker 1, vbv_buffer_size (5 of 10 bits)
  0x18, // vbv_buffer_size (5 bits), constrained_parameters 0, no quantiser matrices
];
// prettier-ignore
const EXTENSION = [
  0x00, 0x00, 0x01, 0xb5, // extension_start_code
  0x14, 0x8a, // id 0001 (sequence extension), profile_and_level 0x48, progressive 1, chroma 01 (4:2:0),
  //            horizontal_size_extension high bit 0
  0x00, 0x01, 0x00, 0x00, // h ext low bit 0, vertical_size_extension 00, bit_rate_extension, marker, vbv...
];
// prettier-ignore
const PICTURE_I = [
  0x00, 0x00, 0x01, 0x00, // picture_start_code
  0x00, 0x0f, 0xff, 0xf8, // temporal_reference 0, picture_coding_type 1 (I), vbv_delay 0xFFFF
];
// prettier-ignore
const PICTURE_B = [0x00, 0x00, 0x01, 0x00, 0x00, 0x5f, 0xff, 0xf8]; // temporal_reference 1, type 3 (B)

test('parseSequenceHeader reads size, aspect ratio and frame rate', () => {
  assert.deepEqual(parseSequenceHeader(Buffer.from(SEQUENCE.slice(4))), {
    width: 320,
    height: 240,
    aspectRatioCode: 1,
    frameRateCode: 3,
    bitRateValue: 0x3ffff,
  });
});

test('inspectMpegVideoPicture tells MPEG-1 from MPEG-2 and finds the picture type', () => {
  const mpeg1 = inspectMpegVideoPicture(Buffer.from([...SEQUENCE, ...PICTURE_I]));
  assert.equal(mpeg1.mpeg2, false);
  assert.equal(mpeg1.pictureCodingType, 1);
  assert.equal(mpeg1.sequence?.width, 320);
  const mpeg2 = inspectMpegVideoPicture(Buffer.from([...SEQUENCE, ...EXTENSION, ...PICTURE_I]));
  assert.equal(mpeg2.mpeg2, true);
  assert.equal(mpeg2.sequence?.height, 240);
  const b = inspectMpegVideoPicture(Buffer.from(PICTURE_B));
  assert.equal(b.sequence, undefined);
  assert.equal(b.pictureCodingType, 3);
});

test('truncated pictures fail with MalformedInputError only', () => {
  const all = [...SEQUENCE, ...EXTENSION, ...PICTURE_I];
  for (let i = 0; i < all.length; i++) {
    try {
      inspectMpegVideoPicture(Buffer.from(all.slice(0, i)));
    } catch (err) {
      assert.ok(err instanceof MalformedInputError, `cut at ${i}: ${String(err)}`);
    }
  }
});
