// Where an RTSP PLAY starts (RFC 2326 12.29 Range, 3.6 npt, 3.7 clock): live, or a past time of a
// feed with a File. `clock=` is the wall-clock time of recording (HTTP's `?date=`); `npt=N-` is N
// seconds before the live edge (HTTP's `?start=-N`), so `npt=0-`, which players send on every PLAY,
// stays live. The URL's `?date=` / `?start=` / `?buffer=` serve players that cannot send a Range.

import { MalformedInputError } from '../../errors.js';
import { isoTime, parseAbsoluteTime, parseStartRequest, wallMsBack } from '../../feedfile/time-spec.js';
import { RtspStatus } from './messages.js';
import { RtspError } from './session.js';

export type PlayStart =
  | { kind: 'live' }
  /** `unit` is how the reader asked, and so how the PLAY answer names the start. */
  | { kind: 'at'; wallMs: number; asked: string; unit: 'clock' | 'npt' | 'query' };

const FORMAT = 'rtsp range';
/** A clock range's start (RFC 2326 form, or ISO 8601 with `-` and `:`), then `-` and an end we ignore. */
const CLOCK_RANGE = /^(\d{8}T\d{6}(?:[.,]\d+)?Z?|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?Z?)-(.*)$/i;

/**
 * The start a Range header asks for. Only the first range of a list counts and an end time is
 * ignored (a feed has no end; the session runs on into live). Throws MalformedInputError for a
 * range that does not parse, RtspError 501 for a unit other than npt and clock (RFC 2326 12.29).
 */
export function parseRange(header: string, nowMs = Date.now()): PlayStart {
  const first = (header.split(',')[0] ?? '').split(';')[0]?.trim() ?? '';
  const eq = first.indexOf('=');
  const unit = (eq < 0 ? first : first.slice(0, eq)).trim().toLowerCase();
  const value = eq < 0 ? '' : first.slice(eq + 1).trim();
  if (unit === 'npt') {
    const dash = value.indexOf('-');
    if (dash < 0) throw new MalformedInputError(FORMAT, 0, `"Range: ${first.slice(0, 80)}" has no "-" (e.g. npt=30-)`);
    const start = value.slice(0, dash).trim();
    if (start === '' || start.toLowerCase() === 'now') return { kind: 'live' };
    const seconds = nptSeconds(start);
    if (seconds === 0) return { kind: 'live' };
    return { kind: 'at', wallMs: wallMsBack(nowMs, seconds * 1000), asked: `npt=${start}-`, unit: 'npt' };
  }
  if (unit === 'clock') {
    const m = CLOCK_RANGE.exec(value);
    if (m === null || m[1] === undefined) {
      throw new MalformedInputError(
        FORMAT,
        0,
        `"Range: ${first.slice(0, 80)}" does not start with a UTC time (e.g. clock=20261123T221500.25Z-)`,
      );
    }
    return { kind: 'at', wallMs: clockTime(m[1]), asked: `clock=${m[1]}-`, unit: 'clock' };
  }
  throw new RtspError(
    RtspStatus.notImplemented,
    `Range unit "${unit.slice(0, 20)}" is not supported: use npt=N- (N seconds before live, npt=0- is live) or clock=YYYYMMDDThhmmss[.frac]Z-`,
  );
}

/** npt-sec (`30`, `2.5`) or npt-hhmmss (`1:02:03.5`), in seconds. */
function nptSeconds(text: string): number {
  const sec = /^(\d{1,9})(?:\.(\d*))?$/.exec(text);
  if (sec !== null) return Number(`${sec[1]}.${sec[2] !== undefined && sec[2] !== '' ? sec[2] : '0'}`);
  const hms = /^(\d{1,6}):([0-5]\d):([0-5]\d)(?:\.(\d*))?$/.exec(text);
  if (hms !== null) {
    const frac = hms[4] !== undefined && hms[4] !== '' ? Number(`0.${hms[4]}`) : 0;
    return Number(hms[1]) * 3600 + Number(hms[2]) * 60 + Number(hms[3]) + frac;
  }
  throw new MalformedInputError(FORMAT, 0, `npt start "${text.slice(0, 40)}" is not a time (e.g. npt=30-, npt=0:01:30-)`);
}

/** RFC 2326 3.7 utc-time (`19961108T143720.25Z`) or its ISO 8601 spelling, always UTC. */
function clockTime(text: string): number {
  const t = text.toUpperCase();
  // parseAbsoluteTime takes up to 6 fraction digits; finer than a microsecond means nothing here.
  const trimmed = t.replace(/([.,]\d{6})\d+/, '$1');
  return parseAbsoluteTime(trimmed.endsWith('Z') ? trimmed : `${trimmed}Z`);
}

/**
 * The start a PLAY asks for: a Range naming a past time wins; otherwise the first query (the PLAY
 * URL's, then the one the session was set up with) that has `date`, `start` or `buffer` (as on
 * HTTP), which is how players that send `npt=0-` on every PLAY can still ask for the past;
 * otherwise live.
 */
export function playStartOf(rangeHeader: string | undefined, queries: readonly URLSearchParams[], nowMs = Date.now()): PlayStart {
  if (rangeHeader !== undefined && rangeHeader.trim() !== '') {
    const range = parseRange(rangeHeader, nowMs);
    if (range.kind === 'at') return range;
  }
  const query = queries.find((q) => q.has('date') || q.has('start') || q.has('buffer'));
  if (query === undefined) return { kind: 'live' };
  const fromQuery = parseStartRequest(query, 0, nowMs);
  if (fromQuery.kind === 'live') return { kind: 'live' };
  return { kind: 'at', wallMs: fromQuery.wallMs, asked: fromQuery.asked, unit: 'query' };
}

/** RFC 2326 3.7 utc-time of `wallMs`, to the millisecond: `20261123T221500.120Z`. */
export function clockOf(wallMs: number): string {
  const iso = isoTime(wallMs); // 2026-11-23T22:15:00.120Z
  if (!iso.endsWith('Z')) return iso;
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 23)}Z`;
}
