// Start times a reader may ask for: ffserver's `?date=` (av_parse_time's absolute forms, ref §3.4),
// `?buffer=N` (N whole seconds back), and the relative `?start=-30` / `-5m` / `-1:30`.

import { MalformedInputError } from '../errors.js';

const FORMAT = 'time';

/**
 * How far back a start may ask: 100 years. Every relative start (`start=`, `buffer=`, RTSP `npt=`)
 * is clamped to it, so a 20-digit number stays a valid date (JavaScript dates end at ±8.64e15 ms)
 * and the reader gets the usual "outside what the file holds" answer instead of a RangeError.
 */
export const MAX_BACK_MS = 100 * 365.25 * 86_400_000;

/** `nowMs - backMs` for any back (however large, Infinity or NaN): a valid date not before now - MAX_BACK_MS. */
export function wallMsBack(nowMs: number, backMs: number): number {
  const back = Number.isFinite(backMs) ? Math.min(Math.max(backMs, 0), MAX_BACK_MS) : MAX_BACK_MS;
  return nowMs - back;
}

/** ISO 8601 of a wall-clock time in ms; never throws (a value outside JavaScript's dates prints as ms). */
export function isoTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? `${ms} ms` : date.toISOString();
}

/**
 * Absolute time as ffserver accepted it: `now`, or `[DATE][T| ]TIME[.frac][Z]` with DATE
 * `YYYY-MM-DD` or `YYYYMMDD` and TIME `HH:MM[:SS]` or `HHMMSS`; a date alone means its midnight;
 * a time alone means today. Without `Z` the time is local. Returns ms since the epoch.
 */
export function parseAbsoluteTime(text: string, nowMs = Date.now()): number {
  const s = text.trim();
  if (s.toLowerCase() === 'now') return nowMs;
  const m = /^(?:(\d{4})-?(\d{2})-?(\d{2}))?(?:[Tt ]?(\d{2}):?(\d{2})(?::?(\d{2})(?:[.,](\d{1,6}))?)?)?([Zz])?$/.exec(s);
  if (m === null || s === '' || (m[1] === undefined && m[4] === undefined)) {
    throw new MalformedInputError(
      FORMAT,
      0,
      `"${s.slice(0, 64)}" is not a date (e.g. 2024-05-01T12:00:00Z, 20240501 120000, now)`,
    );
  }
  const utc = m[8] !== undefined;
  const now = new Date(nowMs);
  const year = m[1] !== undefined ? Number(m[1]) : utc ? now.getUTCFullYear() : now.getFullYear();
  const month = m[2] !== undefined ? Number(m[2]) - 1 : utc ? now.getUTCMonth() : now.getMonth();
  const day = m[3] !== undefined ? Number(m[3]) : utc ? now.getUTCDate() : now.getDate();
  const hour = Number(m[4] ?? 0);
  const minute = Number(m[5] ?? 0);
  const second = Number(m[6] ?? 0);
  const ms = m[7] !== undefined ? Math.round(Number(`0.${m[7]}`) * 1000) : 0;
  if (month < 0 || month > 11 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    throw new MalformedInputError(FORMAT, 0, `"${s.slice(0, 64)}" has a field out of range`);
  }
  return utc
    ? Date.UTC(year, month, day, hour, minute, second, ms)
    : new Date(year, month, day, hour, minute, second, ms).getTime();
}

/**
 * A duration back from now, in ms: `-30`, `-30s`, `-5m`, `-1h`, `-1:30`, `-01:02:03.5`. `0` is
 * the live edge. A positive value is refused (the time would be in the future).
 */
export function parseRelativeTime(text: string): number {
  const s = text.trim();
  const unit = /^(-?)(\d+(?:\.\d+)?)([smh]?)$/i.exec(s);
  if (unit !== null) {
    const value = Number(unit[2]) * ({ '': 1, s: 1, m: 60, h: 3600 }[(unit[3] ?? '').toLowerCase()] ?? 1) * 1000;
    if (unit[1] !== '-' && value !== 0)
      throw new MalformedInputError(FORMAT, 0, `start=${s}: relative start must be negative (e.g. -30, -5m)`);
    return value;
  }
  const clock = /^(-?)(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/.exec(s);
  if (clock !== null) {
    const value = (Number(clock[2] ?? 0) * 3600 + Number(clock[3]) * 60 + Number(clock[4])) * 1000;
    if (clock[1] !== '-' && value !== 0)
      throw new MalformedInputError(FORMAT, 0, `start=${s}: relative start must be negative (e.g. -1:30)`);
    return value;
  }
  throw new MalformedInputError(FORMAT, 0, `start=${s.slice(0, 64)} is not a duration (e.g. -30, -30s, -5m, -1:30)`);
}

export type StartRequest = { kind: 'live' } | { kind: 'at'; wallMs: number; asked: string };

/**
 * What a reader's query asks for: `date` first, then `start`, then `buffer` (as ffserver: date,
 * else buffer, else Preroll). Throws MalformedInputError for a date or duration that does not parse.
 */
export function parseStartRequest(query: URLSearchParams, prerollSeconds = 0, nowMs = Date.now()): StartRequest {
  const date = query.get('date');
  if (date !== null) return { kind: 'at', wallMs: parseAbsoluteTime(date, nowMs), asked: `date=${date.slice(0, 64)}` };
  const start = query.get('start');
  if (start !== null) {
    const back = parseRelativeTime(start);
    return back === 0 ? { kind: 'live' } : { kind: 'at', wallMs: wallMsBack(nowMs, back), asked: `start=${start.slice(0, 64)}` };
  }
  const buffer = query.get('buffer');
  if (buffer !== null) {
    const n = Number.parseInt(buffer, 10); // strtol: leading digits, garbage is 0
    return Number.isFinite(n) && n > 0
      ? { kind: 'at', wallMs: wallMsBack(nowMs, n * 1000), asked: `buffer=${n}` }
      : { kind: 'live' };
  }
  if (prerollSeconds > 0)
    return { kind: 'at', wallMs: wallMsBack(nowMs, prerollSeconds * 1000), asked: `Preroll ${prerollSeconds}` };
  return { kind: 'live' };
}
