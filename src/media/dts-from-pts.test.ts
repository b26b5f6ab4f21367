import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DtsFromPts } from './dts-from-pts.js';

// Issue 24, item 9: RTSP carries only PTS; with B-frames the DTS was set to the PTS, so every
// output got repeated or backward DTS.

/** Decode-order PTS of I P B B P B B ... (one B-frame pyramid level): frame n shown at n. */
function ibbp(frames: number, frame90k = 3600): number[] {
  const out = [0];
  for (let p = 3; p < frames; p += 3) out.push(p * frame90k, (p - 2) * frame90k, (p - 1) * frame90k);
  return out;
}

test('DTS from PTS: increasing, never after PTS, with no frame held back', () => {
  for (const [pts, depth] of [
    [ibbp(60), 2],
    [ibbp(60).map((p) => p + 7_000_000), 2],
    [Array.from({ length: 30 }, (_, i) => i * 3000), 0],
  ] as const) {
    const d = new DtsFromPts(depth);
    const dts = pts.map((p) => d.next(p));
    for (let i = 0; i < pts.length; i++) {
      assert.ok((dts[i] as number) <= (pts[i] as number), `frame ${i}: dts ${dts[i]} > pts ${pts[i]}`);
      if (i > 0) assert.ok((dts[i] as number) > (dts[i - 1] as number), `frame ${i}: dts ${dts[i]} after ${dts[i - 1]}`);
    }
    // Past the start, the DTS are the sorted PTS, `depth` frames behind.
    const sorted = [...pts].sort((a, b) => a - b);
    for (let i = depth; i < pts.length; i++) assert.equal(dts[i], sorted[i - depth]);
  }
});

test('DTS from PTS: a stream deeper than announced gets increasing DTS, and the depth grows', () => {
  const d = new DtsFromPts(0);
  const pts = ibbp(60);
  const dts = pts.map((p) => d.next(p));
  for (let i = 1; i < dts.length; i++) assert.ok((dts[i] as number) > (dts[i - 1] as number), `frame ${i}`);
  assert.equal(d.depth, 2);
  const late = pts.filter((p, i) => (dts[i] as number) > p).length;
  assert.ok(late <= 2, `${late} frames with DTS after PTS, at the start only`);
});
