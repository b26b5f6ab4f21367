// H.265 SPS and hvcC: parse an x265 parameter set, build the hvcC ffmpeg would write, parse it
// back, and never fail with anything but MalformedInputError on truncated input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedInputError } from '../../errors.js';
import { buildHvcc, parseHvcc } from './hvcc.js';
import { describeH265Profile, parseH265Sps } from './sps.js';

// Parameter sets of test/fixtures/h265-aac.ts (libx265, 320x240, Main).
const VPS = Buffer.from('40010c01ffff01600000030090000003000003003c959809', 'hex');
const SPS = Buffer.from('42010101600000030090000003000003003ca00a080f165959a4932bc05a020000030002000003003210', 'hex');
const PPS = Buffer.from('4401c172b46240', 'hex');

test('parseH265Sps reads profile, level and the cropped size', () => {
  const sps = parseH265Sps(SPS);
  assert.equal(sps.width, 320);
  assert.equal(sps.height, 240);
  assert.equal(sps.generalProfileIdc, 1);
  assert.equal(sps.generalLevelIdc, 60);
  assert.equal(sps.chromaFormatIdc, 1);
  assert.equal(sps.bitDepthLumaMinus8, 0);
  assert.equal(describeH265Profile(sps), 'Main 2.0');
});

test('buildHvcc writes the same header fields as ffmpeg and parseHvcc gets the NAL units back', () => {
  const hvcc = buildHvcc([VPS], [SPS], [PPS]);
  // What `ffmpeg -i h265-aac.ts -c copy x.mp4` writes up to numOfArrays:
  // version 1 | profile_space 0, tier 0, profile 1 | compatibility 0x60000000 | constraint 48 bits
  // | level 60 | f000 | fc (parallelism 0) | fd (chroma 4:2:0) | f8 f8 (8-bit) | avgFrameRate 0
  // | 0f (1 temporal layer, nested, 4-byte lengths) | 03 arrays
  assert.equal(hvcc.subarray(0, 23).toString('hex'), '0101600000009000000000003cf000fcfdf8f800000f03');
  const parsed = parseHvcc(hvcc);
  assert.deepEqual(parsed.vps, [VPS]);
  assert.deepEqual(parsed.sps, [SPS]);
  assert.deepEqual(parsed.pps, [PPS]);
  assert.equal(parsed.generalProfileIdc, 1);
  assert.equal(parsed.generalLevelIdc, 60);
  assert.equal(parsed.lengthSize, 4);
});

test('truncated SPS and hvcC fail with MalformedInputError only', () => {
  const hvcc = buildHvcc([VPS], [SPS], [PPS]);
  for (let i = 0; i < SPS.length; i++) {
    try {
      parseH265Sps(SPS.subarray(0, i));
    } catch (err) {
      assert.ok(err instanceof MalformedInputError, `SPS cut at ${i}: ${String(err)}`);
    }
  }
  for (let i = 0; i < hvcc.length; i++) {
    assert.throws(() => parseHvcc(hvcc.subarray(0, i)), MalformedInputError, `hvcC cut at ${i}`);
  }
  assert.throws(() => buildHvcc([VPS], [], [PPS]), MalformedInputError);
});
