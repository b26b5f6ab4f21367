// Where an RTSP PLAY starts and ends (RFC 2326 12.29 Range, 3.6 npt, 3.7 clock): live, or a past
// time of a feed with a File, up to an end or on into live. `clock=T1-T2` is wall-clock time of
// recording (HTTP's `?date=T1&end=T2`); `npt=N-` is N seconds before the live edge (HTTP's
// `?start=-N`), so `npt=0-`, which players send on every PLAY, stays live; `npt=A-B` plays B-A
// seconds from there. The URL's `?date=` / `?start=` / `?buffer=` / `?end=` serve players that
// cannot send a Range.

import { MalformedInputError } from '../../errors.js';
import { isoTime, parseAbsoluteTime, parseStartRequest, wallMsBack } from '../../feedfile/time-spec.js';
import { parseTimePoint } from '../../record/time-point.js';
import { RtspStatus } from './messages.js';
import { RtspError } from './session.js';

export type PlayStart =
  | { kind: 'live' }
  /**
   * `unit` is how the reader asked, and so how the PLAY answer names the range. `endWallMs`: where
   * the play stops (undefined: it runs on into live).
   */
  | { kind: 'at'; wallMs: number; endWallMs: number | undefined; asked: string; unit: 'clock' | 'npt' | 'query' };

const FORMAT = 'rtsp range';
/** A utc-time (RFC 2326 form, or ISO 8601 with `-` and `:`). */
const UTC_TIME = '\\d{8}T\\d{6}(?:[.,]\\d+)?Z?|\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(?::\\d{2}(?:[.,]\\d+)?)?Z?';
/** A clock range: a start, `-`, and an optional end. */
const CLOCK_RANGE = new RegExp(`^(${UTC_TIME})-(${UTC_TIME})?$`, 'i');

/**
 * The range a Range header asks for. Only the first range of a list counts. A live start has no
 * end (npt=0-B plays live, as npt=0- does). Throws MalformedInputError for a range that does not
 * parse or ends before it starts (the server answers 457), RtspError 501 for a unit other than npt
 * and clock (RFC 2326 12.29).
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
    const endText = value.slice(dash + 1).trim();
    const wallMs = wallMsBack(nowMs, seconds * 1000);
    if (endText === '') return { kind: 'at', wallMs, endWallMs: undefined, asked: `npt=${start}-`, unit: 'npt' };
    // npt=A-B: the presentation starts A seconds before now and runs B-A seconds (RFC 2326 3.6).
    const endSeconds = nptSeconds(endText);
    if (endSeconds <= seconds)
      throw new MalformedInputError(FORMAT, 0, `"Range: ${first.slice(0, 80)}" ends before it starts (npt=A-B needs B > A)`);
    return {
      kind: 'at',
      wallMs,
      endWallMs: wallMs + (endSeconds - seconds) * 1000,
      asked: `npt=${start}-${endText}`,
      unit: 'npt',
    };
  }
  if (unit === 'clock') {
    const m = CLOCK_RANGE.exec(value);
    if (m === null || m[1] === undefined) {
      throw new MalformedInputError(
        FORMAT,
        0,
        `"Range: ${first.slice(0, 80)}" is not a UTC time range (e.g. clock=20261123T221500.25Z- or clock=20261123T221500Z-20261123T221600Z)`,
      );
    }
    const wallMs = clockTime(m[1]);
    const endWallMs = m[2] !== undefined ? clockTime(m[2]) : undefined;
    if (endWallMs !== undefined && endWallMs <= wallMs)
      throw new MalformedInputError(FORMAT, 0, `"Range: ${first.slice(0, 80)}" ends before it starts`);
    return { kind: 'at', wallMs, endWallMs, asked: `clock=${m[1]}-${m[2] ?? ''}`, unit: 'clock' };
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
 * The range a PLAY asks for: a Range naming a past time wins; otherwise the first query (the PLAY
 * URL's, then the one the session was set up with) that has `date`, `start`, `buffer` or `end` (as
 * on HTTP: the start as `.ts?start=`, the end any time `/FEED.mp4?end=` takes), which is how
 * players that send `npt=0-` on every PLAY can still ask for the past; otherwise live. Throws
 * MalformedInputError for a time that does not parse, an end with a live start, or an end before
 * the start.
 */
export function playStartOf(rangeHeader: string | undefined, queries: readonly URLSearchParams[], nowMs = Date.now()): PlayStart {
  if (rangeHeader !== undefined && rangeHeader.trim() !== '') {
    const range = parseRange(rangeHeader, nowMs);
    if (range.kind === 'at') return range;
  }
  const query = queries.find((q) => q.has('date') || q.has('start') || q.has('buffer') || q.has('end'));
  if (query === undefined) return { kind: 'live' };
  const fromQuery = parseStartRequest(query, 0, nowMs);
  const endText = query.get('end');
  const endWallMs = endText !== null ? parseTimePoint(endText, nowMs) : undefined;
  if (fromQuery.kind === 'live') {
    if (endText !== null)
      throw new MalformedInputError(
        FORMAT,
        0,
        `end=${endText.slice(0, 64)} needs a start in the past (date=T, start=-N); a live play has no end`,
      );
    return { kind: 'live' };
  }
  if (endWallMs !== undefined && endWallMs <= fromQuery.wallMs) {
    throw new MalformedInputError(
      FORMAT,
      0,
      `end=${(endText ?? '').slice(0, 64)} (${isoTime(endWallMs)}) must come after ${fromQuery.asked} (${isoTime(fromQuery.wallMs)})`,
    );
  }
  const asked = endText !== null ? `${fromQuery.asked}&end=${endText.slice(0, 64)}` : fromQuery.asked;
  return { kind: 'at', wallMs: fromQuery.wallMs, endWallMs, asked, unit: 'query' };
}

/** RFC 2326 3.7 utc-time of `wallMs`, to the millisecond: `20261123T221500.120Z`. */
export function clockOf(wallMs: number): string {
  const iso = isoTime(wallMs); // 2026-11-23T22:15:00.120Z
  if (!iso.endsWith('Z')) return iso;
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 23)}Z`;
}
