// Start times as readers send them: any query value either parses to a valid date (clamped to
// MAX_BACK_MS) or throws MalformedInputError; nothing else escapes (issue 25 item 1).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MalformedInputError } from '../errors.js';
import { parseRange } from '../protocols/rtsp/range.js';
import { isoTime, MAX_BACK_MS, parseStartRequest, wallMsBack } from './time-spec.js';

const NOW = Date.UTC(2026, 11, 7, 1, 0, 0);

/** Values shaped like times (digits, signs, units, colons) and arbitrary text. */
const timeLike = fc.oneof(
  fc.stringMatching(/^-?\d{1,30}(\.\d{1,5})?[smhSMH]?$/),
  fc.stringMatching(/^-?(\d{1,12}:)?\d{1,3}:\d{1,3}(\.\d{1,4})?$/),
  fc.stringMatching(/^\d{4}-?\d{2}-?\d{2}([T ]\d{2}:?\d{2}(:?\d{2})?)?Z?$/),
  fc.string({ maxLength: 40 }),
);

function assertValidOrMalformed(run: () => { kind: string; wallMs?: number }, what: string, relative: boolean): void {
  try {
    const r = run();
    if (r.kind === 'at') {
      assert.ok(Number.isFinite(r.wallMs), `${what}: wallMs ${r.wallMs}`);
      assert.match(isoTime(r.wallMs as number), /Z$/, `${what}: a valid date`);
      if (relative) assert.ok((r.wallMs as number) >= NOW - MAX_BACK_MS, `${what}: clamped`);
    }
  } catch (err) {
    if (!(err instanceof MalformedInputError)) throw err;
  }
}

test('every date, start and buffer value parses to a valid date or is refused as malformed', () => {
  fc.assert(
    fc.property(fc.constantFrom('date', 'start', 'buffer'), timeLike, (key, value) => {
      assertValidOrMalformed(
        () => parseStartRequest(new URLSearchParams({ [key]: value }), 0, NOW),
        `${key}=${value}`,
        key !== 'date',
      );
    }),
    { numRuns: 3000 },
  );
});

test('every RTSP npt and clock Range parses to a valid date or is refused as malformed', () => {
  fc.assert(
    fc.property(fc.constantFrom('npt', 'clock'), timeLike, (unit, value) => {
      assertValidOrMalformed(() => parseRange(`${unit}=${value}-`, NOW), `${unit}=${value}-`, unit === 'npt');
    }),
    { numRuns: 3000 },
  );
});

test('the values that ended the process are clamped to a hundred years back', () => {
  for (const [key, value] of [
    ['start', '-9000000000000'],
    ['buffer', '9000000000000'],
    ['start', '-12345678901234567890'],
    ['start', `-${'9'.repeat(400)}`],
  ] as const) {
    const r = parseStartRequest(new URLSearchParams({ [key]: value }), 0, NOW);
    assert.equal(r.kind, 'at');
    assert.equal(r.kind === 'at' ? r.wallMs : 0, NOW - MAX_BACK_MS, `${key}=${value}`);
  }
  assert.equal(wallMsBack(NOW, Number.NaN), NOW - MAX_BACK_MS);
  assert.equal(wallMsBack(NOW, -5), NOW);
  assert.equal(isoTime(9e15), '9000000000000000 ms');
});
