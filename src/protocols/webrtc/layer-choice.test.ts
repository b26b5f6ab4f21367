// The simulcast layer policy alone (the viewer's use of it: test/integration/webrtc-simulcast.test.ts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
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
