// What a feed holds of its past, for GET /api/v1/recordings/FEED and `feedcast recordings list`:
// the spans of time covered by its recordings and its FeedFile ring (merged where they touch), the
// gaps between them, and the files.

import { isoTime } from '../feedfile/time-spec.js';
import { GAP_TOLERANCE_MS, spansOf, type Span } from './recording-index.js';
import type { FeedRecordings, FeedRecordingsStatus } from './recordings.js';

export interface HeldSpan {
  start: string;
  end: string;
  startMs: number;
  endMs: number;
  seconds: number;
  bytes: number;
  sources: ('recordings' | 'ring')[];
}

export interface RecordingsListing {
  feed: string;
  spans: HeldSpan[];
  gaps: { start: string; end: string; seconds: number }[];
  bytes: number;
  recording: FeedRecordingsStatus | null;
  files: { path: string; format: string; start: string; end: string; seconds: number; bytes: number; writing: boolean }[];
  ring: { start: string; end: string; seconds: number; bytes: number } | null;
}

type Piece = Span & { source: 'recordings' | 'ring' };

const round3 = (ms: number): number => Math.round(ms) / 1000;

/** The listing of one feed; `ring` is its FeedFile's range and size, if it has one that holds anything. */
export function listRecordings(
  feedKey: string,
  recordings: FeedRecordings | undefined,
  ring: { oldestWallMs: number; newestWallMs: number; bytes: number } | undefined,
): RecordingsListing {
  const files = recordings?.files().filter((f) => f.bytes > 0) ?? [];
  const pieces: Piece[] = spansOf(files).map((s) => ({ ...s, source: 'recordings' as const }));
  if (ring !== undefined && ring.newestWallMs > ring.oldestWallMs) {
    pieces.push({ startWallMs: ring.oldestWallMs, endWallMs: ring.newestWallMs, bytes: ring.bytes, files: 0, source: 'ring' });
  }
  pieces.sort((a, b) => a.startWallMs - b.startWallMs);
  const merged: { startMs: number; endMs: number; bytes: number; sources: Set<'recordings' | 'ring'> }[] = [];
  for (const p of pieces) {
    const last = merged[merged.length - 1];
    if (last !== undefined && p.startWallMs - last.endMs <= GAP_TOLERANCE_MS) {
      last.endMs = Math.max(last.endMs, p.endWallMs);
      last.bytes += p.bytes;
      last.sources.add(p.source);
    } else {
      merged.push({ startMs: p.startWallMs, endMs: p.endWallMs, bytes: p.bytes, sources: new Set([p.source]) });
    }
  }
  const spans: HeldSpan[] = merged.map((m) => ({
    start: isoTime(m.startMs),
    end: isoTime(m.endMs),
    startMs: Math.round(m.startMs),
    endMs: Math.round(m.endMs),
    seconds: round3(m.endMs - m.startMs),
    bytes: m.bytes,
    sources: [...m.sources].sort(),
  }));
  const gaps = spans.slice(1).map((s, i) => {
    const before = spans[i] as HeldSpan;
    return { start: before.end, end: s.start, seconds: round3(s.startMs - before.endMs) };
  });
  return {
    feed: feedKey,
    spans,
    gaps,
    bytes: spans.reduce((n, s) => n + s.bytes, 0),
    recording: recordings !== undefined ? { ...recordings.status } : null,
    files: files.map((f) => ({
      path: f.path,
      format: f.format,
      start: isoTime(f.startWallMs),
      end: isoTime(f.endWallMs),
      seconds: round3(f.endWallMs - f.startWallMs),
      bytes: f.bytes,
      writing: recordings?.entries.some((e) => e.path === f.path && e.live !== undefined) ?? false,
    })),
    ring:
      ring !== undefined && ring.newestWallMs > ring.oldestWallMs
        ? {
            start: isoTime(ring.oldestWallMs),
            end: isoTime(ring.newestWallMs),
            seconds: round3(ring.newestWallMs - ring.oldestWallMs),
            bytes: ring.bytes,
          }
        : null,
  };
}
