// A point in time as a reader of recordings writes it (`?start=`, `?end=`, `--from`, `--to`): ISO
// 8601 (2026-12-07T04:00:00Z, with an offset, or local), a Unix time in seconds (1796616000, with
// a fraction), `now`, or a duration back from now (-30, -30s, -5m, -1h, -1:30; feedfile/time-spec.ts).

import { MalformedInputError } from '../errors.js';
import { parseAbsoluteTime, parseRelativeTime, wallMsBack } from '../feedfile/time-spec.js';

/** Wall-clock ms since the epoch; MalformedInputError (format `time`) when it is none of the forms. */
export function parseTimePoint(text: string, nowMs = Date.now()): number {
  const s = text.trim();
  if (s.startsWith('-')) return wallMsBack(nowMs, parseRelativeTime(s));
  if (/^\d{9,11}(\.\d{1,6})?$/.test(s)) return Math.round(Number(s) * 1000);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?[+-]\d{2}:?\d{2}$/.test(s)) {
    const ms = Date.parse(s.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
    if (Number.isFinite(ms)) return ms;
  }
  try {
    return parseAbsoluteTime(s, nowMs);
  } catch (err) {
    if (err instanceof MalformedInputError) {
      throw new MalformedInputError(
        'time',
        0,
        `"${s.slice(0, 64)}" is not a time: write ISO 8601 (2026-12-07T04:00:00Z), a Unix time (1796616000) or a duration back from now (-30s, -5m, -1h)`,
      );
    }
    throw err;
  }
}
