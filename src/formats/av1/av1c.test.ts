// av1C and the AV1 codec string from a real libaom stream (test/fixtures/av1-160x120.obu): the record
// is byte for byte what ffmpeg's MP4 muxer writes for the same stream, it parses back, and any cut or
// damaged record throws MalformedInputError.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { av1FixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { av1CodecString, parseAv1c } from './av1c.js';
import { isKeyTemporalUnit, readObus } from './obu.js';

// `ffmpeg -f obu -i test/fixtures/av1-160x120.obu -c copy out.mp4`, its av1C payload:
// 81 (marker, version 1) | 00 (profile 0, level 0) | 0c (tier 0, 8 bit, 4:2:0) | 00 | sequence header OBU
const FFMPEG_AV1C = Buffer.from('81000c000a0a00000003b4ff736be401', 'hex');

test('av1C from the sequence header is what ffmpeg writes, and parses back', () => {
  const { track } = av1FixtureFrames();
  assert.deepEqual(track.config, FFMPEG_AV1C);
  const c = parseAv1c(FFMPEG_AV1C);
  assert.equal(c.width, 160);
  assert.equal(c.bitDepth, 8);
  assert.deepEqual(c.sequenceHeaderObu, FFMPEG_AV1C.subarray(4));
  assert.equal(av1CodecString(FFMPEG_AV1C), 'av01.0.00M.08');
});

test('the codec string has tier H and 10-bit depth when the record says so', () => {
  const high = Buffer.from(FFMPEG_AV1C);
  high[1] = (0 << 5) | 13; // profile 0, level 13 (5.1)
  high[2] = 0x80 | 0x40 | 0x0c; // tier 1, high_bitdepth
  assert.equal(av1CodecString(high), 'av01.0.13H.10');
});

test('only the first temporal unit of the fixture is a key one', () => {
  assert.deepEqual(
    av1FixtureFrames().frames.map((f) => isKeyTemporalUnit(readObus(f.data))),
    [true, false, false],
  );
});

test('a cut or damaged av1C throws MalformedInputError, never anything else', () => {
  for (let n = 0; n < FFMPEG_AV1C.length; n++) {
    assert.throws(() => parseAv1c(FFMPEG_AV1C.subarray(0, n)), { name: 'MalformedInputError' }, `cut at ${n}`);
  }
  fc.assert(
    fc.property(fc.nat(FFMPEG_AV1C.length - 1), fc.nat(255), (at, value) => {
      const bad = Buffer.from(FFMPEG_AV1C);
      bad[at] = value;
      try {
        parseAv1c(bad);
      } catch (err) {
        assert.equal((err as Error).name, 'MalformedInputError');
      }
    }),
    { numRuns: 300 },
  );
});
