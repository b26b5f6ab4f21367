// The older segments of an HLS DVR window (HLSDVRWindow), read back from the feed's FeedFile ring
// instead of being held in memory: the segmenter keeps, per segment, the first and last DTS of
// each track; this finds those frames in the ring and gives them back with their feed-clock times
// and the durations the live segment had, so the segment is packaged again byte for byte alike
// in its timing (one fragment instead of its parts).

import type { FeedFileCursor } from '../../feedfile/cursor.js';
import { RecordType } from '../../feedfile/format.js';
import type { FeedFileWriter } from '../../feedfile/writer.js';
import type { Frame } from '../../media/frame.js';
import type { HlsSample } from './packager.js';
import type { SegmentStore, TrackSpan } from './segmenter.js';

/** Seeks tried to land on a join point at or before the segment (wall time and DTS may disagree). */
const MAX_SEEKS = 8;
/** Read this far past the last frame of a segment for the other tracks' last frames, 90 kHz. */
const READ_PAST_90K = 5 * 90_000;
/**
 * Once the ring overwrites, a segment leaves the window this long before the ring reaches it: the
 * ring goes on writing while a player fetches the playlist, then the segment.
 */
const OVERWRITE_MARGIN_90K = 10 * 90_000;

export class RingSegmentStore implements SegmentStore {
  /** The feed's ring, looked up at each use (a reload may add or remove the File). */
  private readonly ring: () => FeedFileWriter | undefined;

  constructor(ring: () => FeedFileWriter | undefined) {
    this.ring = ring;
  }

  oldestDts90k(): number | undefined {
    const writer = this.ring();
    const offset = writer?.fileClockOffset90k;
    const range = writer?.heldRange;
    if (writer === undefined || !writer.isWriting || offset === undefined || range === undefined) return undefined;
    const status = writer.status;
    const overwriting = status.wraps > 0 || status.sizeBytes >= status.maxSizeBytes;
    return range.oldestDts90k - offset + (overwriting ? OVERWRITE_MARGIN_90K : 0);
  }

  async read(spans: ReadonlyMap<number, TrackSpan>, wallHintMs: number): Promise<HlsSample[] | undefined> {
    const writer = this.ring();
    const offset = writer?.fileClockOffset90k;
    if (writer === undefined || offset === undefined || spans.size === 0) return undefined;
    let from = Infinity;
    let to = -Infinity;
    for (const s of spans.values()) {
      from = Math.min(from, s.firstDts90k + offset);
      to = Math.max(to, s.lastDts90k + offset);
    }
    const cursor = writer.cursor();
    if (!(await seekBefore(cursor, from, wallHintMs))) return undefined;
    const byTrack = new Map<number, Frame[]>([...spans.keys()].map((id) => [id, []]));
    const done = new Set<number>();
    for (;;) {
      const record = await cursor.next();
      if (record === undefined) break;
      if (record.type !== RecordType.frame) continue;
      const f = record.frame;
      if (f.dts90k > to + READ_PAST_90K) break;
      const span = spans.get(f.trackId);
      const list = byTrack.get(f.trackId);
      if (span === undefined || list === undefined) continue;
      const dts = f.dts90k - offset;
      if (dts >= span.firstDts90k && dts <= span.lastDts90k) list.push(f);
      if (dts >= span.lastDts90k) done.add(f.trackId);
      if (done.size === spans.size) break;
    }
    const samples: HlsSample[] = [];
    for (const [trackId, span] of spans) {
      const frames = byTrack.get(trackId) ?? [];
      // The segment must come back whole: its first and last frames of every track.
      if (frames[0]?.dts90k !== span.firstDts90k + offset || frames[frames.length - 1]?.dts90k !== span.lastDts90k + offset) {
        return undefined;
      }
      frames.forEach((f, i) => {
        const next = frames[i + 1];
        const dts90k = f.dts90k - offset;
        samples.push({
          trackId,
          dts90k,
          pts90k: f.pts90k - offset,
          keyframe: f.keyframe,
          data: f.data,
          duration90k: Math.max(1, next !== undefined ? next.dts90k - f.dts90k : span.endDts90k - dts90k),
        });
      });
    }
    // Decode order across tracks, as the live parts were made (a TS segment interleaves them).
    return samples.sort((a, b) => a.dts90k - b.dts90k);
  }
}

/**
 * Positions `cursor` at a join point whose file DTS is at or before `fileDts90k`: from the wall
 * time the segment was dated at, then back by what the DTS still lacks (a publisher sending faster
 * than real time dates frames ahead of their arrival). False when the ring no longer holds it.
 */
async function seekBefore(cursor: FeedFileCursor, fileDts90k: number, wallHintMs: number): Promise<boolean> {
  let wallMs = wallHintMs - 1000;
  for (let i = 0; i < MAX_SEEKS; i++) {
    const found = await cursor.seek(wallMs);
    if (found.kind === 'empty') return false;
    if (found.kind !== 'ok') {
      const r = found.range;
      if (found.kind === 'before' && r.oldestDts90k > fileDts90k) return false;
      wallMs = found.kind === 'before' ? r.oldestWallMs : r.newestWallMs - (r.newestDts90k - fileDts90k) / 90 - 1000;
      continue;
    }
    if (found.dts90k <= fileDts90k) return true;
    wallMs = found.wallMs - (found.dts90k - fileDts90k) / 90 - 1000 * 2 ** i;
  }
  return false;
}
