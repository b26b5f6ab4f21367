// Where a PLAY starts and ends: Range npt/clock (RFC 2326 3.6, 3.7, 12.29) and the URL query, with
// the rule that `npt=0-` (sent by players on every PLAY) and `npt=now-` stay live.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FeedcastError, MalformedInputError } from '../../errors.js';
import { clockOf, parseRange, playStartOf } from './range.js';
import { RtspError } from './session.js';

const NOW = Date.UTC(2026, 10, 23, 22, 20, 0, 0);

test('npt: 0, 0.000 and now are live (an end too); N is N seconds before now; hh:mm:ss works; A-B plays B-A seconds', () => {
  for (const live of ['npt=0-', 'npt=0.000-', 'npt=now-', 'npt=-', 'NPT = 0.0-', 'npt=0.000-5.5', 'npt=-30']) {
    assert.deepEqual(parseRange(live, NOW), { kind: 'live' }, live);
  }
  assert.deepEqual(parseRange('npt=30-', NOW), {
    kind: 'at',
    wallMs: NOW - 30_000,
    endWallMs: undefined,
    asked: 'npt=30-',
    unit: 'npt',
  });
  assert.deepEqual(parseRange('npt=2.5-10', NOW), {
    kind: 'at',
    wallMs: NOW - 2500,
    endWallMs: NOW - 2500 + 7500,
    asked: 'npt=2.5-10',
    unit: 'npt',
  });
  assert.equal((parseRange('npt=0:01:30.5-', NOW) as { wallMs: number }).wallMs, NOW - 90_500);
  assert.equal((parseRange('npt=30-, npt=60-', NOW) as { wallMs: number }).wallMs, NOW - 30_000, 'first range only');
  assert.equal((parseRange('npt=30-;time=19970123T143720Z', NOW) as { wallMs: number }).wallMs, NOW - 30_000);
  for (const bad of ['npt=30', 'npt=abc-', 'npt=1:99:00-', 'npt=1.2.3-', 'npt=30-20', 'npt=30-30', 'npt=30-x']) {
    assert.throws(() => parseRange(bad, NOW), MalformedInputError, bad);
  }
});

test('clock: RFC 2326 utc-time with or without fraction, ISO spelling, always UTC', () => {
  const at = Date.UTC(2026, 10, 23, 22, 15, 0, 0);
  assert.deepEqual(parseRange('clock=20261123T221500Z-', NOW), {
    kind: 'at',
    wallMs: at,
    endWallMs: undefined,
    asked: 'clock=20261123T221500Z-',
    unit: 'clock',
  });
  assert.deepEqual(parseRange('clock=20261123T221500Z-20261123T221600.5Z', NOW), {
    kind: 'at',
    wallMs: at,
    endWallMs: at + 60_500,
    asked: 'clock=20261123T221500Z-20261123T221600.5Z',
    unit: 'clock',
  });
  assert.equal(
    (parseRange('clock=2026-11-23T22:15:00Z-2026-11-23T22:15:10Z', NOW) as { endWallMs: number }).endWallMs,
    at + 10_000,
  );
  assert.equal((parseRange('clock=20261123T221500.25Z-', NOW) as { wallMs: number }).wallMs, at + 250);
  assert.equal((parseRange('clock=20261123T221500.123456789Z-20261123T230000Z', NOW) as { wallMs: number }).wallMs, at + 123);
  assert.equal((parseRange('clock=20261123T221500-', NOW) as { wallMs: number }).wallMs, at, 'no Z: UTC anyway');
  assert.equal((parseRange('clock=2026-11-23T22:15:00.5Z-', NOW) as { wallMs: number }).wallMs, at + 500);
  for (const bad of [
    'clock=-20261123T221500Z',
    'clock=yesterday-',
    'clock=20261123T221500Z',
    'clock=20261323T221500Z-',
    'clock=20261123T221500Z-20261123T221400Z', // ends before it starts
    'clock=20261123T221500Z-20261123T221500Z', // empty
    'clock=20261123T221500Z-soon',
  ]) {
    assert.throws(() => parseRange(bad, NOW), MalformedInputError, bad);
  }
});

test('other units are 501 Not Implemented', () => {
  assert.throws(
    () => parseRange('smpte=10:07:00-', NOW),
    (err: unknown) => err instanceof RtspError && err.status === 501 && /npt=N-/.test(err.message),
  );
});

test('playStartOf: a past Range wins, then the first query that asks, else live', () => {
  const none = new URLSearchParams();
  const back = new URLSearchParams('start=-5');
  assert.deepEqual(playStartOf(undefined, [none], NOW), { kind: 'live' });
  assert.deepEqual(playStartOf('npt=0.000-', [none], NOW), { kind: 'live' });
  assert.deepEqual(playStartOf('npt=0.000-', [none, back], NOW), {
    kind: 'at',
    wallMs: NOW - 5000,
    endWallMs: undefined,
    asked: 'start=-5',
    unit: 'query',
  });
  assert.deepEqual(playStartOf('npt=10-', [back], NOW), {
    kind: 'at',
    wallMs: NOW - 10_000,
    endWallMs: undefined,
    asked: 'npt=10-',
    unit: 'npt',
  });
  assert.deepEqual(playStartOf(undefined, [new URLSearchParams('start=0')], NOW), { kind: 'live' });
  assert.deepEqual(playStartOf(undefined, [new URLSearchParams('date=2026-11-23T22:15:00Z&token=x')], NOW), {
    kind: 'at',
    wallMs: Date.UTC(2026, 10, 23, 22, 15),
    endWallMs: undefined,
    asked: 'date=2026-11-23T22:15:00Z',
    unit: 'query',
  });
  assert.throws(() => playStartOf(undefined, [new URLSearchParams('date=soon')], NOW), MalformedInputError);
});

test('playStartOf: the query ends a range with end= in any form /FEED.mp4 takes; a bad or live end is refused', () => {
  const at = Date.UTC(2026, 10, 23, 22, 15);
  for (const end of ['2026-11-23T22:16:00Z', String((at + 60_000) / 1000), '-4m']) {
    assert.deepEqual(
      playStartOf('npt=0.000-', [new URLSearchParams(`date=2026-11-23T22:15:00Z&end=${end}`)], NOW),
      { kind: 'at', wallMs: at, endWallMs: at + 60_000, asked: `date=2026-11-23T22:15:00Z&end=${end}`, unit: 'query' },
      end,
    );
  }
  assert.equal(
    (playStartOf(undefined, [new URLSearchParams('start=-30&end=-10')], NOW) as { endWallMs: number }).endWallMs,
    NOW - 10_000,
  );
  // A Range in the past wins over the query, end and all.
  assert.equal(
    (playStartOf('npt=5-', [new URLSearchParams('start=-30&end=-10')], NOW) as { endWallMs: unknown }).endWallMs,
    undefined,
  );
  for (const bad of ['end=-10', 'start=0&end=-10', 'start=-10&end=-20', 'start=-10&end=-10', 'start=-10&end=later']) {
    assert.throws(() => playStartOf(undefined, [new URLSearchParams(bad)], NOW), MalformedInputError, bad);
  }
});

test('clockOf writes RFC 2326 utc-time that parseRange reads back', () => {
  assert.equal(clockOf(Date.UTC(2026, 10, 23, 22, 15, 0, 120)), '20261123T221500.120Z');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), (ms) => {
      const back = parseRange(`clock=${clockOf(ms)}-`, NOW);
      assert.equal(back.kind === 'at' ? back.wallMs : NaN, ms);
    }),
  );
});

test('fuzz: any Range text gives a start or a typed error', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 60 }),
        fc.constantFrom('npt=', 'clock=', 'smpte=').chain((u) => fc.string().map((s) => u + s)),
      ),
      (text) => {
        try {
          parseRange(text, NOW);
        } catch (err) {
          if (!(err instanceof FeedcastError)) throw err;
        }
      },
    ),
    { numRuns: 1000 },
  );
});
