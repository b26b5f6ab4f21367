// REMB as Chromium sends it (test/fixtures/chromium-remb.json), read through werift's RTCP parser as
// the viewer reads it; the layers' measured bit rates; the layer that fits an estimate.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { RtcpPacketConverter } from 'werift';
import { BitrateMeter, layerThatFits, rembOf } from './bandwidth-estimate.js';

interface RembFixture {
  chromium: string;
  packets: { ms: number; hex: string; layerKbps: Record<string, number> }[];
}

const REMB_FIXTURE = JSON.parse(
  readFileSync(new URL('../../../test/fixtures/chromium-remb.json', import.meta.url), 'utf8'),
) as RembFixture;

/** The bit rate of a REMB packet read by hand (draft-alvestrand-rmcat-remb 2.2: 6-bit exponent, 18-bit mantissa). */
function byHand(bytes: Buffer): number {
  const exp = (bytes[17] as number) >> 2;
  const mantissa = (((bytes[17] as number) & 3) << 16) | bytes.readUInt16BE(18);
  return mantissa * 2 ** exp;
}

test("Chromium's REMB packets give its estimate and the SSRC they cover", () => {
  assert.ok(REMB_FIXTURE.packets.length > 100);
  for (const { hex } of REMB_FIXTURE.packets) {
    const bytes = Buffer.from(hex, 'hex');
    const packets = RtcpPacketConverter.deSerialize(bytes);
    assert.equal(packets.length, 1, hex);
    const remb = rembOf(packets[0]);
    assert.ok(remb !== undefined, hex);
    assert.equal(remb.bitsPerSecond, byHand(bytes), hex);
    assert.deepEqual(remb.ssrcs, [bytes.readUInt32BE(20)], hex);
  }
  const first = rembOf(RtcpPacketConverter.deSerialize(Buffer.from(REMB_FIXTURE.packets[0]?.hex ?? '', 'hex'))[0]);
  assert.ok(
    first !== undefined && first.bitsPerSecond > 300_000 && first.bitsPerSecond < 2_000_000,
    String(first?.bitsPerSecond),
  );
});

test('other RTCP is not a REMB', () => {
  // A receiver report and a PLI (PSFB FMT 1) from the same kind of session.
  const rr = Buffer.from('81c90007000000010000000100000000000012340000000000000000000000000000', 'hex').subarray(0, 32);
  const pli = Buffer.from('81ce00020000000100000002', 'hex');
  for (const bytes of [rr, pli]) for (const p of RtcpPacketConverter.deSerialize(bytes)) assert.equal(rembOf(p), undefined);
  assert.equal(rembOf(undefined), undefined);
  assert.equal(rembOf({ type: 206, feedback: { count: 15, uniqueID: 'XXXX', bitrate: 1n } }), undefined);
});

test('a bit rate over a sliding window', () => {
  const meter = new BitrateMeter(0, 4000);
  for (let at = 0; at < 5000; at += 100) meter.add(1000, at); // 10 kB/s
  assert.equal(meter.bitsPerSecond(500), undefined, 'not before a second');
  assert.ok(Math.abs((meter.bitsPerSecond(4999) ?? 0) - 80_000) <= 2500, String(meter.bitsPerSecond(4999)));
  // Silence: the window empties.
  assert.ok((meter.bitsPerSecond(7000) ?? 0) < 40_000);
  assert.equal(meter.bitsPerSecond(9600), 0);
  // Over its first seconds, the rate of the time measured.
  const young = new BitrateMeter(1000, 4000);
  for (let at = 1000; at < 3000; at += 100) young.add(1000, at);
  assert.ok(Math.abs((young.bitsPerSecond(3000) ?? 0) - 80_000) <= 4000, String(young.bitsPerSecond(3000)));
});

test('the largest layer that fits under the estimate with headroom, audio included', () => {
  const layers = [2_500_000, 700_000, 200_000];
  assert.equal(layerThatFits(layers, 50_000, 4_000_000, 0.85), 0);
  assert.equal(layerThatFits(layers, 50_000, 3_000_000, 0.85), 0, '2.55 Mb/s exactly');
  assert.equal(layerThatFits(layers, 50_000, 2_990_000, 0.85), 1);
  assert.equal(layerThatFits(layers, 50_000, 882_353, 0.85), 1, '750 kb/s exactly');
  assert.equal(layerThatFits(layers, 50_000, 882_000, 0.85), 2);
  assert.equal(layerThatFits(layers, 50_000, 10_000, 0.85), 2, 'the smallest when none fits');
  assert.equal(layerThatFits([undefined, 700_000], 0, 10_000_000, 0.85), 1, 'an unmeasured layer does not fit');
});
