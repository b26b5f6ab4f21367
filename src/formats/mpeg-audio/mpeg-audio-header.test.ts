// MPEG audio frame headers: MPEG-1 Layer III and II, MPEG-2 LSF Layer III, and bad headers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedInputError } from '../../errors.js';
import { parseMpegAudioHeader } from './mpeg-audio-header.js';

const cases = [
  {
    name: 'MPEG-1 Layer III 128 kbit/s 44.1 kHz joint stereo',
    // ff fb: sync, version 11 (MPEG-1), layer 01 (III), no CRC
    // 90: bitrate index 9 (128), rate 00 (44100), no padding | 64: mode 01 (joint stereo)
    bytes: [0xff, 0xfb, 0x90, 0x64],
    want: { version: 1, layer: 3, bitrateKbps: 128, sampleRate: 44100, channels: 2, frameLength: 417, samplesPerFrame: 1152 },
  },
  {
    name: 'MPEG-1 Layer II 64 kbit/s 44.1 kHz mono, padded',
    // ff fd: layer 10 (II) | 42: bitrate index 4 (64), rate 00, padding 1 | c0: mode 11 (mono)
    bytes: [0xff, 0xfd, 0x42, 0xc0],
    want: { version: 1, layer: 2, bitrateKbps: 64, sampleRate: 44100, channels: 1, frameLength: 209, samplesPerFrame: 1152 },
  },
  {
    name: 'MPEG-2 Layer III 32 kbit/s 22.05 kHz',
    // ff f3: version 10 (MPEG-2), layer 01 | 40: bitrate index 4 (32), rate 00 (22050) | c4: mono
    bytes: [0xff, 0xf3, 0x40, 0xc4],
    want: { version: 2, layer: 3, bitrateKbps: 32, sampleRate: 22050, channels: 1, frameLength: 104, samplesPerFrame: 576 },
  },
] as const;

for (const c of cases) {
  test(`parseMpegAudioHeader: ${c.name}`, () => {
    assert.deepEqual(parseMpegAudioHeader(Buffer.from(c.bytes)), c.want);
    for (let i = 0; i < c.bytes.length; i++) {
      assert.throws(() => parseMpegAudioHeader(Buffer.from(c.bytes.slice(0, i))), MalformedInputError);
    }
  });
}

test('parseMpegAudioHeader rejects reserved and free-format values', () => {
  assert.throws(() => parseMpegAudioHeader(Buffer.from([0xff, 0xeb, 0x90, 0x64])), /reserved version/); // version 01
  assert.throws(() => parseMpegAudioHeader(Buffer.from([0xff, 0xf9, 0x90, 0x64])), /reserved layer/); // layer 00
  assert.throws(() => parseMpegAudioHeader(Buffer.from([0xff, 0xfb, 0x00, 0x64])), /free-format/);
  assert.throws(() => parseMpegAudioHeader(Buffer.from([0xff, 0xfb, 0xf0, 0x64])), /bitrate index 15/);
  assert.throws(() => parseMpegAudioHeader(Buffer.from([0xff, 0xfb, 0x9c, 0x64])), /sampling frequency/);
  assert.throws(() => parseMpegAudioHeader(Buffer.from([0xfe, 0xfb, 0x90, 0x64])), MalformedInputError);
});
