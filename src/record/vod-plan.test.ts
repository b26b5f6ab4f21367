// VOD segment planning and file names (issue 21, part 3): keyframe cuts grouped into segments that
// never cross a break, and the file names a segment request is parsed from (bounded, strict).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupSegments, parseVodFileName, vodInitName, vodSegmentName, type VodCut } from './vod-plan.js';

const cut = (at: string, wallMs: number, seconds: number, breakBefore = false): VodCut => ({
  at,
  wallMs,
  duration90k: seconds * 90_000,
  breakBefore,
});

test('cuts are grouped into segments of at least the target, a break starts a new one, the timeline runs on', () => {
  const plan = groupSegments(
    'rec',
    [cut('1000', 1000, 1), cut('2000', 2000, 1), cut('3000', 3000, 1), cut('9000', 9000, 1, true), cut('10000', 10000, 0.5)],
    2000,
  );
  assert.ok(plan !== undefined);
  assert.deepEqual(
    plan.segments.map((s) => [s.at, s.out90k / 90_000, s.dur90k / 90_000]),
    [
      ['1000', 0, 2],
      ['3000', 2, 1],
      ['9000', 3, 1.5],
    ],
  );
  assert.equal(plan.startWallMs, 1000);
  assert.equal(plan.endWallMs, 10_500);
  assert.equal(groupSegments('ring', [], 2000), undefined);
});

test('file names round-trip; anything else is refused', () => {
  const seg = { at: '1796648082627.183600', wallMs: 0, out90k: 180_000, dur90k: 180_000 };
  assert.deepEqual(parseVodFileName(vodSegmentName('ring', seg)), {
    kind: 'segment',
    source: 'ring',
    at: seg.at,
    out90k: 180_000,
    dur90k: 180_000,
  });
  assert.deepEqual(parseVodFileName(vodInitName('rec', '1796648082927')), { kind: 'init', source: 'rec', at: '1796648082927' });
  for (const bad of [
    'rec-1-0-0.m4s', // empty segment
    `rec-1-0-${601 * 90_000}.m4s`, // longer than any segment made
    'tape-1-0-90000.m4s',
    'rec-1.2.3-0-90000.m4s',
    'rec-1-0-90000.ts',
    'rec-1--90000.m4s',
    'rec-1-0-90000-1.m4s',
    'rec-12345678901234567-0-90000.m4s',
    'rec-1-init.mp4x',
    `rec-1-${24 * 3600 * 90_000 + 1}-90000.m4s`, // past any playlist's timeline
    'rec-1-999999999999999999-90000.m4s', // not exact in a double
    '',
  ]) {
    assert.equal(parseVodFileName(bad), undefined, bad);
  }
});
