// RecordPath patterns: `%feed` and the strftime fields of a segment's start (local time), e.g.
// `recordings/%feed/%Y-%m-%d/%H-%M-%S.mp4`. Expands a pattern for one segment and finds the
// directory under which every file of a feed lies (to list them at start-up and for retention).

import { dirname, normalize } from 'node:path';

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** The file of the segment of `feedKey` that starts at `wallMs` (local time, as strftime). */
export function expandRecordPath(pattern: string, feedKey: string, wallMs: number): string {
  const d = new Date(wallMs);
  return pattern.replace(/%(feed|[YmdHMSs%])/g, (_all, field: string) => {
    switch (field) {
      case 'feed':
        return feedKey.replace(/[/\\]/g, '_');
      case 'Y':
        return pad(d.getFullYear(), 4);
      case 'm':
        return pad(d.getMonth() + 1);
      case 'd':
        return pad(d.getDate());
      case 'H':
        return pad(d.getHours());
      case 'M':
        return pad(d.getMinutes());
      case 'S':
        return pad(d.getSeconds());
      case 's':
        return String(Math.floor(wallMs / 1000));
      default:
        return '%';
    }
  });
}

/**
 * The deepest directory that holds every file the pattern can name for this feed: the pattern up
 * to its first time field, cut back to a directory (`recordings/cam1` for the default pattern).
 */
export function recordRoot(pattern: string, feedKey: string): string {
  const withFeed = pattern.replace(/%feed/g, feedKey.replace(/[/\\]/g, '_'));
  const firstField = withFeed.search(/%[YmdHMSs%]/);
  const fixed = firstField < 0 ? withFeed : withFeed.slice(0, firstField);
  return fixed.endsWith('/') ? fixed.slice(0, -1) || '/' : dirname(fixed);
}

const FIELD_RE: Readonly<Record<string, string>> = {
  Y: '(?<Y>\\d{4})',
  m: '(?<m>\\d{2})',
  d: '(?<d>\\d{2})',
  H: '(?<H>\\d{2})',
  M: '(?<M>\\d{2})',
  S: '(?<S>\\d{2})',
  s: '(?<s>\\d+)',
  '%': '%',
};

/**
 * Recognises the files of this feed's pattern (retention must never touch anything else) and reads
 * back the start time the name gives (local time; seconds precision), or undefined for other files.
 */
export function recordPathMatcher(pattern: string, feedKey: string): (path: string) => number | undefined {
  const withFeed = normalize(pattern.replace(/%feed/g, feedKey.replace(/[/\\]/g, '_')));
  const seen = new Set<string>();
  let source = '';
  let last = 0;
  for (const m of withFeed.matchAll(/%([YmdHMSs%])/g)) {
    source += escapeRegExp(withFeed.slice(last, m.index));
    const field = m[1] ?? '%';
    // A field repeated in the pattern matches any digits the second time (named groups must be unique).
    source += seen.has(field) ? '\\d+' : (FIELD_RE[field] ?? '');
    if (field !== '%') seen.add(field);
    last = m.index + m[0].length;
  }
  source += escapeRegExp(withFeed.slice(last));
  const re = new RegExp(`^${source}$`);
  return (path) => {
    const g = re.exec(normalize(path))?.groups;
    if (g === undefined) return undefined;
    if (g['s'] !== undefined) return Number(g['s']) * 1000;
    const now = new Date();
    const t = new Date(
      Number(g['Y'] ?? now.getFullYear()),
      Number(g['m'] ?? 1) - 1,
      Number(g['d'] ?? 1),
      Number(g['H'] ?? 0),
      Number(g['M'] ?? 0),
      Number(g['S'] ?? 0),
    ).getTime();
    return Number.isFinite(t) ? t : undefined;
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
