// VP8 over RTP (RFC 7741): frames survive packetising and depacketising, descriptors with picture
// ids are read, a lost packet drops only its frame, and any payload either parses or throws
// MalformedInputError.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MalformedInputError } from '../../errors.js';
import type { RtpPacket } from './rtp-packet.js';
import { assertParsesOrMalformed, packetsOf } from '../../../test/helpers/rtp-packets.js';
import { parseVp8FrameHeader, Vp8Depacketizer, Vp8Packetizer } from './vp8-rtp.js';

/** A VP8 key frame header (RFC 6386 9.1) for WxH, then `size` bytes of filler. */
function keyFrame(width: number, height: number, size: number): Buffer {
  const head = Buffer.from([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, width & 0xff, width >> 8, height & 0xff, height >> 8]);
  return Buffer.concat([head, Buffer.alloc(size, 0xab)]);
}

function interFrame(size: number): Buffer {
  return Buffer.concat([Buffer.from([0x11, 0x02, 0x00]), Buffer.alloc(size, 0xcd)]);
}

function packets(frames: Buffer[], maxPayload = 200): RtpPacket[] {
  return packetsOf(new Vp8Packetizer(96, maxPayload), frames);
}

test('frames split over many packets (sequence numbers wrapping) come back whole, with key frame and size', () => {
  const frames = [keyFrame(640, 360, 900), interFrame(450), interFrame(10)];
  const d = new Vp8Depacketizer();
  const out = packets(frames).flatMap((p) => d.push(p));
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
  const all = packets(frames);
  const d = new Vp8Depacketizer();
  const out = all.filter((_, i) => i !== 1).flatMap((p) => d.push(p));
  assert.deepEqual(
    out.map((f) => f.data),
    [frames[1]],
  );
});

test('descriptors with X, I (15-bit picture id), L, T and K are skipped', () => {
  const frame = interFrame(20);
  const descriptor = Buffer.from([0x90, 0xf0, 0x81, 0x23, 0x05, 0x40]);
  const d = new Vp8Depacketizer();
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
  assert.deepEqual(out[0]?.data, frame);
});

test('a key frame without its start code is malformed', () => {
  assert.throws(() => parseVp8FrameHeader(Buffer.from([0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 1, 0, 1, 0])), MalformedInputError);
  assert.throws(() => parseVp8FrameHeader(Buffer.from([0x10, 0x02])), MalformedInputError);
});

test('any payload parses or throws MalformedInputError', () => {
  assertParsesOrMalformed(() => new Vp8Depacketizer(), 2000);
});
