// The simulcast layer policy alone (the viewer's use of it: test/integration/webrtc-simulcast.test.ts).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { RtcpPacketConverter } from 'werift';
import { rembOf } from './bandwidth-estimate.js';
import { LayerChoice } from './layer-choice.js';

test('three lossy reports in a row move the viewer down one layer; fewer, or at the smallest, do not', () => {
  const c = new LayerChoice(3, 0, 0);
  assert.equal(c.report(0.2, 1000), undefined);
  assert.equal(c.report(0.2, 2000), undefined);
  assert.equal(c.report(0, 3000), undefined, 'a clean report breaks the streak');
  assert.equal(c.report(0.06, 4000), undefined);
  assert.equal(c.report(0.3, 5000), undefined);
  assert.equal(c.report(0.1, 6000), 1);
  for (const at of [7000, 8000]) assert.equal(c.report(0.5, at), undefined);
  assert.equal(c.report(0.5, 9000), 2);
  for (const at of [10_000, 11_000, 12_000]) assert.equal(c.report(0.5, at), undefined, 'no layer below the smallest');
  assert.equal(c.current, 2);
});

test('a clean spell moves the viewer up one layer, and waits twice as long after each fall', () => {
  const c = new LayerChoice(3, 1, 0);
  assert.equal(c.report(0, 7000), undefined);
  assert.equal(c.report(0.005, 8000), 0, 'up after 8 s clean');
  assert.equal(c.report(0, 20_000), undefined, 'nothing above the largest');
  for (const at of [21_000, 22_000]) c.report(0.2, at);
  assert.equal(c.report(0.2, 23_000), 1, 'down again');
  assert.equal(c.report(0, 24_000), undefined);
  assert.equal(c.report(0, 32_000), undefined, '8 s is not enough any more');
  assert.equal(c.report(0.02, 39_000), undefined, 'some loss (not lossy) starts the clean spell again');
  assert.equal(c.report(0, 40_000), undefined);
  assert.equal(c.report(0, 56_000), 0, '16 s clean');
});

test('the start layer is clamped to the layers there are', () => {
  assert.equal(new LayerChoice(2, 5, 0).current, 1);
  assert.equal(new LayerChoice(2, -1, 0).current, 0);
});

test('receiver reports are weighted by the packets each covers, over windows of a second', () => {
  const c = new LayerChoice(2, 0, 0);
  c.receiverReport(1000, 0, 0);
  // Each second: a report over 10 packets with half lost, then one over 90 with none: 5% lost.
  let down: number | undefined;
  for (let s = 1; s <= 3; s++) {
    assert.equal(c.receiverReport(1000 + (s - 1) * 100 + 10, 0.5, s * 1000 - 500), undefined, 'within the window');
    down = c.receiverReport(1000 + s * 100, 0, s * 1000);
    if (s < 3) assert.equal(down, undefined);
  }
  assert.equal(down, 1, 'three windows of 5% lost');
  assert.ok(Math.abs(c.lastLoss - 0.05) < 1e-9, String(c.lastLoss));
  // A restarted sequence (a new sender) starts a new window; no packets covered is no report.
  const d = new LayerChoice(2, 0, 0);
  assert.equal(d.receiverReport(500, 0, 0), undefined);
  assert.equal(d.receiverReport(10, 1, 2000), undefined);
  assert.equal(d.receiverReport(10, 1, 4000), undefined);
  assert.equal(d.lastLoss, 0);
});

test('moveTo (a stalled layer) restarts the counting on the new layer', () => {
  const c = new LayerChoice(3, 0, 0);
  c.report(0.2, 1000);
  c.report(0.2, 2000);
  c.moveTo(1, 2500);
  assert.equal(c.current, 1);
  assert.equal(c.report(0.2, 3000), undefined, 'the lossy streak started again');
  assert.equal(c.report(0, 4000), undefined);
  assert.equal(c.report(0, 11_900), undefined);
  assert.equal(c.report(0, 12_000), 0, 'up after 8 s clean');
});

test('packets asked again (NACK) count as lost when the receiver reports healed them', () => {
  const c = new LayerChoice(2, 0, 0);
  let seq = 1000;
  const window = (at: number, nacked: number): number | undefined => {
    c.receiverReport(seq, 0, at);
    c.nacked(nacked);
    seq += 100;
    return c.receiverReport(seq, 0, at + 1000);
  };
  assert.equal(window(0, 0), undefined);
  assert.equal(c.lastLoss, 0);
  assert.equal(window(2000, 30), undefined);
  assert.equal(c.lastLoss, 0.3, '30 of 100 packets asked again');
  assert.equal(window(4000, 30), undefined);
  assert.equal(window(6000, 30), 1, 'three lossy windows: down');
});

// The bandwidth estimate (REMB): layers of 2.5 Mb/s, 700 kb/s and 200 kb/s, and 50 kb/s of audio.
const LAYERS = [2_500_000, 700_000, 200_000];
const AUDIO = 50_000;

test('an estimate that falls below the layer moves the viewer down at once, to the largest that fits', () => {
  const c = new LayerChoice(3, 0, 0);
  assert.equal(c.estimate(4_000_000, LAYERS, AUDIO, 0), undefined, 'h fits');
  assert.equal(c.estimate(4_000_000, LAYERS, AUDIO, 5000), undefined);
  assert.equal(c.estimate(1_000_000, LAYERS, AUDIO, 6000), 1, '850 kb/s: m fits (750 kb/s with audio)');
  assert.equal(c.estimate(500_000, LAYERS, AUDIO, 6250), 2, 'still falling: l');
  assert.equal(c.lastEstimate, 500_000);
  assert.equal(c.estimate(300_000, LAYERS, AUDIO, 6500), undefined, 'nothing below the smallest');
  assert.equal(c.estimate(100_000, [undefined, 1, 1], 0, 0), undefined, 'a layer not measured yet is not judged');
});

test('an estimate under the layer that climbs or stays put moves nobody; one that falls does', () => {
  const c = new LayerChoice(3, 0, 0);
  assert.equal(c.estimate(1_000_000, LAYERS, AUDIO, 0), undefined, 'under h from the start, but not falling');
  assert.equal(c.estimate(1_100_000, LAYERS, AUDIO, 3000), undefined, 'climbing');
  for (let at = 4000; at <= 20_000; at += 1000) assert.equal(c.estimate(1_100_000, LAYERS, AUDIO, at), undefined, 'stuck');
  assert.equal(c.estimate(1_080_000, LAYERS, AUDIO, 21_000), undefined, 'within 3% of the highest of 5 s');
  assert.equal(c.estimate(1_060_000, LAYERS, AUDIO, 22_000), 1, 'fallen: m');
});

test('the estimate moves the viewer up once it has allowed a larger layer for a while, and the loss agrees', () => {
  const c = new LayerChoice(3, 2, 0);
  assert.equal(c.estimate(1_000_000, LAYERS, AUDIO, 1000), undefined, 'm fits: not yet');
  assert.equal(c.estimate(4_000_000, LAYERS, AUDIO, 3000), undefined, 'h fits from now');
  assert.equal(c.estimate(4_000_000, LAYERS, AUDIO, 4900), undefined);
  assert.equal(c.estimate(4_000_000, LAYERS, AUDIO, 5000), 1, 'held 4 s, but only m all along');
  const d = new LayerChoice(3, 2, 0);
  d.report(0.2, 500); // lossy: not clean since
  assert.equal(d.estimate(4_000_000, LAYERS, AUDIO, 1000), undefined);
  assert.equal(d.estimate(4_000_000, LAYERS, AUDIO, 5000), undefined, 'allowed 4 s, but not clean that long');
  d.report(0, 5500);
  assert.equal(d.estimate(4_000_000, LAYERS, AUDIO, 9000), undefined);
  assert.equal(d.estimate(4_000_000, LAYERS, AUDIO, 9600), 0, 'allowed and clean for 4 s: straight to h');
});

test('after a move up the estimate is judged from there; a fall by estimate doubles the wait before the next try', () => {
  const c = new LayerChoice(3, 1, 0);
  // On m (750 kb/s with audio) the browser's estimate sits near 1.5x that: h does not fit.
  for (let at = 0; at <= 8000; at += 1000) assert.equal(c.estimate(1_100_000, LAYERS, AUDIO, at), undefined);
  assert.equal(c.report(0, 8000), 0, 'the clean spell tries h');
  assert.equal(c.estimate(1_000_000, LAYERS, AUDIO, 8500), undefined, 'lower than before the move, but the first since');
  assert.equal(c.estimate(1_300_000, LAYERS, AUDIO, 11_000), undefined);
  assert.equal(c.estimate(1_500_000, LAYERS, AUDIO, 14_000), undefined, 'climbing');
  assert.equal(c.estimate(1_100_000, LAYERS, AUDIO, 15_000), 1, 'it fell: back to m');
  assert.equal(c.report(0, 23_000), undefined, '8 s clean is not enough any more');
  assert.equal(c.report(0, 31_000), 0, '16 s');
});

test("Chromium's estimate (test/fixtures/chromium-remb.json): the viewer stays on h while it climbs, and moves to m when it falls", () => {
  const fixture = JSON.parse(readFileSync(new URL('../../../test/fixtures/chromium-remb.json', import.meta.url), 'utf8')) as {
    packets: { ms: number; hex: string; layerKbps: Record<string, number> }[];
  };
  const c = new LayerChoice(3, 0, 0);
  const moves: [number, number][] = [];
  for (const p of fixture.packets) {
    const remb = rembOf(RtcpPacketConverter.deSerialize(Buffer.from(p.hex, 'hex'))[0]);
    assert.ok(remb !== undefined);
    const rates = ['h', 'm', 'l'].map((rid) => {
      const kbps = p.layerKbps[rid];
      return kbps !== undefined ? kbps * 1000 : undefined;
    });
    const next = c.estimate(remb.bitsPerSecond, rates, 40_000, p.ms);
    if (next !== undefined) moves.push([p.ms, next]);
  }
  assert.deepEqual(moves, [[34_587, 1]]);
});
