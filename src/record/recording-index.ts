// What a feed's recordings hold: the files found under its RecordPath at start-up (repaired when
// a crash cut them), plus those the recorder writes since; spans of continuous time and the gaps
// between them, for the API, `feedcast recordings list` and time-range playback.

import { readdir, stat, truncate } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { describeScanError, scanFmp4File } from './fmp4-file.js';
import { recordPathMatcher, recordRoot } from './record-path.js';
import type { SegmentFile } from './segment-file.js';

/** Two files closer than this in time are one continuous span (a new file starts on the next keyframe). */
export const GAP_TOLERANCE_MS = 1500;
const TS_PACKET_SIZE = 188;
/** Directory levels walked under the root (the default pattern needs 1). */
const MAX_DEPTH = 6;

export interface RecordingEntry {
  path: string;
  format: 'fmp4' | 'ts';
  startWallMs: number;
  endWallMs: number;
  bytes: number;
  /** Set while the recorder writes it: start, end and size are read from it. */
  live: SegmentFile | undefined;
}

export interface Span {
  startWallMs: number;
  endWallMs: number;
  bytes: number;
  files: number;
}

/** The entry as it is now (a live file's end and size move). */
export function current(e: RecordingEntry): RecordingEntry {
  if (e.live === undefined) return e;
  return { ...e, endWallMs: e.live.writtenEndWallMs, bytes: e.live.bytesWritten };
}

/** Continuous spans of time over the entries (any order), and the gaps between them. */
export function spansOf(entries: readonly RecordingEntry[], toleranceMs = GAP_TOLERANCE_MS): Span[] {
  const sorted = entries.map(current).sort((a, b) => a.startWallMs - b.startWallMs);
  const spans: Span[] = [];
  for (const e of sorted) {
    const last = spans[spans.length - 1];
    if (last !== undefined && e.startWallMs - last.endWallMs <= toleranceMs) {
      last.endWallMs = Math.max(last.endWallMs, e.endWallMs);
      last.bytes += e.bytes;
      last.files++;
    } else {
      spans.push({ startWallMs: e.startWallMs, endWallMs: e.endWallMs, bytes: e.bytes, files: 1 });
    }
  }
  return spans;
}

export function gapsOf(spans: readonly Span[]): { startWallMs: number; endWallMs: number }[] {
  const gaps: { startWallMs: number; endWallMs: number }[] = [];
  for (let i = 1; i < spans.length; i++) {
    const a = spans[i - 1] as Span;
    const b = spans[i] as Span;
    gaps.push({ startWallMs: a.endWallMs, endWallMs: b.startWallMs });
  }
  return gaps;
}

async function walk(dir: string, depth: number, out: string[]): Promise<void> {
  let items;
  try {
    items = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const item of items) {
    const path = join(dir, item.name);
    if (item.isDirectory() && depth < MAX_DEPTH) await walk(path, depth + 1, out);
    else if (item.isFile()) out.push(path);
  }
}

/**
 * The files of `feedKey`'s pattern under its root, read and (if a crash cut them) repaired: an
 * fMP4 file loses its incomplete last fragment, a TS file its incomplete last packet.
 */
export async function scanRecordings(pattern: string, feedKey: string, log: Logger): Promise<RecordingEntry[]> {
  const root = recordRoot(pattern, feedKey);
  const match = recordPathMatcher(pattern, feedKey);
  const paths: string[] = [];
  await walk(root, 0, paths);
  const entries: RecordingEntry[] = [];
  for (const path of paths) {
    // A name with a `-N` suffix (a restart in the same second) matches once the suffix is dropped.
    const named = match(path) ?? match(path.replace(/-\d+(\.[^./]*)$/, '$1'));
    if (named === undefined) continue;
    const format = extname(path).toLowerCase() === '.ts' ? 'ts' : 'fmp4';
    try {
      if (format === 'fmp4') {
        const info = await scanFmp4File(path, { repair: true });
        if (info.cutBytes > 0)
          log.warn('recording repaired: its incomplete last fragment was cut (crash while writing)', {
            path,
            cutBytes: info.cutBytes,
          });
        if (info.startWallMs === undefined || info.endWallMs === undefined) continue;
        entries.push({
          path,
          format,
          startWallMs: info.startWallMs,
          endWallMs: info.endWallMs,
          bytes: info.validBytes,
          live: undefined,
        });
      } else {
        const st = await stat(path);
        const whole = st.size - (st.size % TS_PACKET_SIZE);
        if (whole !== st.size) {
          await truncate(path, whole);
          log.warn('recording repaired: its incomplete last TS packet was cut (crash while writing)', { path });
        }
        entries.push({ path, format, startWallMs: named, endWallMs: Math.max(named, st.mtimeMs), bytes: whole, live: undefined });
      }
    } catch (err) {
      log.warn('recording skipped: it cannot be read', { path, reason: describeScanError(err) });
    }
  }
  return entries.sort((a, b) => a.startWallMs - b.startWallMs);
}
