// Which H.264 a WebRTC viewer can take as it is: B-frames show as a frame presented before the one
// decoded ahead of it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Frame } from '../../media/frame.js';
import { ReorderDetector, webRtcVideoArgs } from './video-reencoder.js';

function frames(pts: number[]): Frame[] {
  return pts.map((p, i) => ({ trackId: 1, pts90k: p * 3600, dts90k: i * 3600, keyframe: i === 0, data: Buffer.alloc(1) }));
}

test('decode order I P B B (pts 0 3 1 2) is reordered; I P P P is not, whatever constant offset it has', () => {
  const withB = new ReorderDetector();
  assert.deepEqual(
    frames([0, 3, 1, 2, 6, 4, 5]).map((f) => withB.push(f)),
    [false, false, true, true, true, true, true],
  );
  const plain = new ReorderDetector();
  assert.ok(!frames([2, 3, 4, 5, 6, 7]).some((f) => plain.push(f)));
});

test('the re-encode is Baseline (no B-frames), keyframes where the source has them, bounded rate, copyts', () => {
  const args = webRtcVideoArgs(3000);
  const after = (flag: string): string | undefined => args[args.indexOf(flag) + 1];
  assert.equal(after('-profile:v'), 'baseline');
  assert.equal(after('-force_key_frames'), 'source');
  assert.equal(after('-maxrate'), '3000k');
  assert.ok(args.includes('-copyts'));
});
