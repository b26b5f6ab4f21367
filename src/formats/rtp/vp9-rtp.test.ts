// VP9 over RTP (RFC 9628): frames survive packetising and depacketising with their key frame flag
// and size (from the uncompressed header, and in the scalability structure sent on key frames),
// descriptors with picture ids, layer indices, P_DIFFs and SS are read, a lost packet drops only
// its frame, and any payload either parses or throws MalformedInputError.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MalformedInputError } from '../../errors.js';
import { assertParsesOrMalformed, packetsOf } from '../../../test/helpers/rtp-packets.js';
import type { RtpPacket } from './rtp-packet.js';
import { parseVp9FrameHeader, Vp9Depacketizer, Vp9Packetizer } from './vp9-rtp.js';

/** Packs [value, bits] pairs MSB first into bytes (the last byte zero-padded). */
function bits(fields: [number, number][]): Buffer {
  const out: number[] = [];
  let acc = 0;
  let n = 0;
  for (const [value, width] of fields) {
    for (let i = width - 1; i >= 0; i--) {
      acc = (acc << 1) | (Math.floor(value / 2 ** i) & 1);
      if (++n === 8) {
        out.push(acc);
        acc = 0;
        n = 0;
      }
    }
  }
  if (n > 0) out.push(acc << (8 - n));
  return Buffer.from(out);
}

/** A profile 0 key frame's uncompressed header for WxH (VP9 6.2), then `size` bytes of filler. */
function keyFrame(width: number, height: number, size: number): Buffer {
  const head = bits([
    [2, 2], // frame_marker
    [0, 1], // profile_low_bit
    [0, 1], // profile_high_bit
    [0, 1], // show_existing_frame
    [0, 1], // frame_type: KEY_FRAME
    [1, 1], // show_frame
    [0, 1], // error_resilient_mode
    [0x498342, 24], // frame_sync_code
    [2, 3], // color_space: CS_BT_709
    [0, 1], // color_range
    [width - 1, 16], // frame_width_minus_1
    [height - 1, 16], // frame_height_minus_1
  ]);
  return Buffer.concat([head, Buffer.alloc(size, 0xab)]);
}

/** An inter frame: frame_type NON_KEY_FRAME, shown. */
function interFrame(size: number): Buffer {
  return Buffer.concat([
    bits([
      [2, 2],
      [0, 2],
      [0, 1],
      [1, 1],
      [1, 1],
      [0, 1],
    ]),
    Buffer.alloc(size, 0xcd),
  ]);
}

function packets(frames: Buffer[], maxPayload = 200): RtpPacket[] {
  return packetsOf(new Vp9Packetizer(96, maxPayload), frames);
}

test('the uncompressed header gives the key frame flag and size (profiles 0 and 1)', () => {
  assert.deepEqual(parseVp9FrameHeader(keyFrame(640, 360, 0)), { keyframe: true, profile: 0, width: 640, height: 360 });
  assert.deepEqual(parseVp9FrameHeader(interFrame(4)), { keyframe: false, profile: 0 });
  const profile1 = bits([
    [2, 2],
    [1, 1],
    [0, 1],
    [0, 1],
    [0, 1],
    [1, 1],
    [0, 1],
    [0x498342, 24],
    [1, 3],
    [0, 1],
    [0, 3],
    [1279, 16],
    [719, 16],
  ]);
  assert.deepEqual(parseVp9FrameHeader(profile1), { keyframe: true, profile: 1, width: 1280, height: 720 });
});

test('frames split over many packets (sequence numbers wrapping) come back whole, with key frame and size', () => {
  const frames = [keyFrame(640, 360, 900), interFrame(450), interFrame(10)];
  const all = packets(frames);
  // Descriptor of the key frame's first packet: B, and V with SS |N_S=0|Y=1|G=0| 640 360.
  assert.deepEqual([...(all[0]?.payload.subarray(0, 6) ?? [])], [0x0a, 0x10, 0x02, 0x80, 0x01, 0x68]);
  assert.equal((all[1]?.payload[0] ?? 0) & 0x4e, 0x00, 'key frame continuation: no P, B, E or V');
  const lastOfKey = all.findIndex((p) => p.marker);
  assert.equal((all[lastOfKey]?.payload[0] ?? 0) & 0x04, 0x04, 'E on the last packet');
  assert.equal((all[lastOfKey + 1]?.payload[0] ?? 0) & 0x48, 0x48, 'an inter frame starts with P and B');
  const d = new Vp9Depacketizer();
  const out = all.flatMap((p) => d.push(p));
  assert.deepEqual(
    out.map((f) => f.data),
    frames,
  );
  assert.deepEqual(
    out.map((f) => f.keyframe),
    [true, false, false],
  );
  assert.deepEqual(d.takeSize(), { width: 640, height: 360 });
  assert.equal(d.takeSize(), undefined, 'the size is told once');
});

test('a lost packet drops its frame only; the next frame comes through', () => {
  const frames = [keyFrame(320, 240, 500), interFrame(300)];
  const d = new Vp9Depacketizer();
  const out = packets(frames)
    .filter((_, i) => i !== 1)
    .flatMap((p) => d.push(p));
  assert.deepEqual(
    out.map((f) => f.data),
    [frames[1]],
  );
});

test('descriptors as browsers send them are skipped: 15-bit picture id, layers with TL0PICIDX, flexible P_DIFFs, SS with groups', () => {
  const frame = interFrame(20);
  const cases = [
    // I P L - B E - -, M + 15-bit picture id, TID/U/SID/D, TL0PICIDX
    Buffer.from([0xec, 0x81, 0x23, 0x00, 0x05]),
    // I P - F B E - -, 7-bit picture id, two P_DIFFs (N on the first)
    Buffer.from([0xdc, 0x11, 0x03, 0x02]),
    // I - - - B E V -, picture id, SS: N_S=0 Y=1 G=1, 320x180, N_G=2: (TID,U,R=1 + one P_DIFF), (R=0)
    Buffer.from([0x8e, 0x01, 0x18, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x04, 0x01, 0x00]),
  ];
  for (const descriptor of cases) {
    const d = new Vp9Depacketizer();
    const out = d.push({
      marker: true,
      payloadType: 96,
      sequence: 1,
      timestamp: 0,
      ssrc: 1,
      csrcs: [],
      extension: undefined,
      payload: Buffer.concat([descriptor, frame]),
    });
    assert.deepEqual(out[0]?.data, frame, descriptor.toString('hex'));
  }
});

test('a key frame without its sync code, or a frame with a bad marker, is malformed', () => {
  const bad = keyFrame(64, 64, 0);
  bad[1] = 0;
  assert.throws(() => parseVp9FrameHeader(bad), MalformedInputError);
  assert.throws(() => parseVp9FrameHeader(Buffer.from([0x00])), MalformedInputError);
  assert.throws(() => parseVp9FrameHeader(Buffer.from([0x82, 0x49])), MalformedInputError);
});

test('any payload parses or throws MalformedInputError', () => {
  assertParsesOrMalformed(() => new Vp9Depacketizer(), 2000);
});
