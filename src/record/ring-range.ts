// A time range of a feed's FeedFile ring read once, as fast as the caller takes it, and ended at
// the range's end or at the newest frame on disk (never waiting for live frames, unlike a
// time-shift reader): for downloads made of the ring (`/FEED.mp4?start=&end=`). From the join
// point at or before the start (the oldest one if the ring begins later); every track stops at
// its first frame at or after the end; times from 0 at the first frame.

import type { FeedFileCursor } from '../feedfile/cursor.js';
import { RecordType } from '../feedfile/format.js';
import { sameTracks, type ShiftItem } from '../feedfile/time-shift.js';
import type { FeedFileWriter } from '../feedfile/writer.js';
import type { Track } from '../media/track.js';

export type RingRangeOpen = { kind: 'ok'; reader: RingRangeReader; startWallMs: number } | { kind: 'none' };

export class RingRangeReader {
  private readonly cursor: FeedFileCursor;
  private readonly endFileDts90k: number;
  private readonly zeroDts90k: number;
  private tracks: readonly Track[] = [];
  private readonly pastEnd = new Set<number>();
  private done = false;

  private constructor(cursor: FeedFileCursor, join: { wallMs: number; dts90k: number }, endWallMs: number) {
    this.cursor = cursor;
    this.zeroDts90k = join.dts90k;
    this.endFileDts90k = join.dts90k + Math.round((endWallMs - join.wallMs) * 90);
  }

  /** The ring's [startMs, endMs): 'none' when it holds nothing of it. */
  static async open(writer: FeedFileWriter, startMs: number, endMs: number): Promise<RingRangeOpen> {
    const cursor = writer.cursor();
    let found = await cursor.seek(startMs);
    if (found.kind === 'before' && endMs > found.range.oldestWallMs) found = await cursor.seek(found.range.oldestWallMs);
    if (found.kind !== 'ok' || found.wallMs >= endMs) return { kind: 'none' };
    return { kind: 'ok', reader: new RingRangeReader(cursor, found, endMs), startWallMs: found.wallMs };
  }

  /** The next track list or frame (DTS from 0), or undefined at the end of the range or of the ring. */
  async next(): Promise<ShiftItem | undefined> {
    while (!this.done) {
      const record = await this.cursor.next();
      if (record === undefined) break;
      if (record.type === RecordType.tracks) {
        if (sameTracks(this.tracks, record.tracks)) continue;
        this.tracks = record.tracks;
        this.pastEnd.clear();
        return { kind: 'tracks', tracks: record.tracks };
      }
      const f = record.frame;
      if (f.dts90k < this.zeroDts90k) continue; // audio stored just before the keyframe it follows
      if (f.dts90k >= this.endFileDts90k) {
        this.pastEnd.add(f.trackId);
        if (this.tracks.every((t) => this.pastEnd.has(t.id))) break;
        continue;
      }
      return { kind: 'frame', frame: { ...f, dts90k: f.dts90k - this.zeroDts90k, pts90k: f.pts90k - this.zeroDts90k } };
    }
    this.done = true;
    return undefined;
  }

  close(): void {
    this.done = true;
  }
}
