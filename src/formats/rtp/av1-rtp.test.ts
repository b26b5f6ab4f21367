// AV1 over RTP with a real libaom stream (test/fixtures/av1-160x120.obu): the sequence header gives
// the size, temporal units survive packetising and depacketising at any packet size, a lost packet
// drops its unit only, and any payload parses or throws MalformedInputError.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ObuType, parseSequenceHeader, readObu } from '../av1/obu.js';
import type { RtpPacket } from './rtp-packet.js';
import { assertParsesOrMalformed, packetsOf } from '../../../test/helpers/rtp-packets.js';
import { av1FixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { Av1Depacketizer, Av1Packetizer } from './av1-rtp.js';

/** The fixture's temporal units in Feedcast's frame layout (OBUs with sizes, no temporal delimiters). */
function temporalUnits(): Buffer[] {
  return av1FixtureFrames().frames.map((f) => f.data);
}

function packets(frames: Buffer[], maxPayload: number): RtpPacket[] {
  return packetsOf(new Av1Packetizer(96, maxPayload), frames, 65_000);
}

test('the sequence header of a libaom stream gives its size, profile, level and colour format', () => {
  const bytes = readFileSync(new URL('../../../test/fixtures/av1-160x120.obu', import.meta.url));
  let pos = 0;
  let found: { width: number; height: number } | undefined;
  while (pos < bytes.length && found === undefined) {
    const { obu, length } = readObu(bytes, pos);
    if (obu.type === ObuType.sequenceHeader) found = parseSequenceHeader(obu.payload);
    pos += length;
  }
  assert.deepEqual(found, {
    profile: 0,
    level: 0,
    tier: 0,
    width: 160,
    height: 120,
    bitDepth: 8,
    monochrome: false,
    subsamplingX: true,
    subsamplingY: true,
    chromaSamplePosition: 0,
  });
});

test('temporal units come back whole at every packet size, the first a key frame with N set', () => {
  const frames = temporalUnits();
  assert.equal(frames.length, 3);
  for (const maxPayload of [40, 100, 300, 1200]) {
    const list = packets(frames, maxPayload);
    assert.equal((list[0]?.payload[0] ?? 0) & 0x08, 0x08, 'N on the key frame');
    assert.ok(list.every((p) => p.payload.length <= maxPayload));
    // Packets end inside OBUs except at a unit's end: Y=0 only with the marker (libwebrtc's frame boundaries).
    for (const p of list) if (!p.marker && maxPayload < 300) assert.equal((p.payload[0] ?? 0) & 0x40, 0x40);
    const d = new Av1Depacketizer();
    const out = list.flatMap((p) => d.push(p));
    assert.deepEqual(
      out.map((f) => f.data),
      frames,
      `max payload ${maxPayload}`,
    );
    assert.deepEqual(
      out.map((f) => f.keyframe),
      [true, false, false],
    );
    assert.deepEqual(d.takeSize(), { width: 160, height: 120 });
    assert.deepEqual(d.takeConfig(), av1FixtureFrames().track.config, 'the av1C of the sequence header');
    assert.equal(d.takeConfig(), undefined, 'once');
  }
});

test('a lost packet drops its temporal unit only', () => {
  const frames = temporalUnits();
  const list = packets(frames, 100);
  const firstOfSecond = list.findIndex((p) => p.timestamp === 3600);
  const d = new Av1Depacketizer();
  const out = list.filter((_, i) => i !== firstOfSecond + 1).flatMap((p) => d.push(p));
  assert.deepEqual(
    out.map((f) => f.data),
    [frames[0], frames[2]],
  );
});

test('any payload parses or throws MalformedInputError', () => {
  assertParsesOrMalformed(() => new Av1Depacketizer(), 3000, 1);
});
