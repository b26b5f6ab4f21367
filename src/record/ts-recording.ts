// TS recordings (RecordFormat ts) read back: the join points of each file (PAT + PMT before each
// keyframe, formats/mpegts/ts-join-index.ts), indexed once per file and kept up to date as a
// file being written grows; and the tracks and frames from any join point, through the TS
// demuxer, each frame with its wall-clock time (the file's start time is its first frame's).

import { open } from 'node:fs/promises';
import { TsDemuxer } from '../formats/mpegts/ts-demuxer.js';
import { TsJoinIndexer } from '../formats/mpegts/ts-join-index.js';
import { TS_WRAP } from '../media/timebase.js';
import type { Track } from '../media/track.js';
import type { RecordedFrame } from './recorded-frames.js';
import type { RecordingEntry } from './recording-index.js';

/** Read this much at a time (a whole number of packets). */
const READ_BYTES = 188 * 5577;
/** Files whose index is kept. */
const CACHED_FILES = 64;

/** A TS recording's join points with their wall-clock times. */
export interface TsRecordingIndex {
  joins: { offset: number; dts90k: number; wallMs: number }[];
  /** Wall-clock end of its last frame on the join track (its DTS plus one frame). */
  endWallMs: number | undefined;
  /** DTS of the first join: frame times are measured from it (modulo 2^33). */
  zeroDts90k: number | undefined;
}

/** Reads `path` from `indexer.bytes` to its end into the indexer. */
async function indexFrom(path: string, indexer: TsJoinIndexer): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, READ_BYTES, indexer.bytes);
      if (bytesRead === 0) return;
      indexer.push(Buffer.from(buf.subarray(0, bytesRead)));
      if (bytesRead % 188 !== 0) return; // a partial packet at the end of a file being written: next time
    }
  } finally {
    await fh.close();
  }
}

/**
 * The 90 kHz distance from `zero` to `dts` (33-bit times wrap): within half a wrap period (13 h)
 * either way, so audio stored just before the first keyframe comes out slightly negative.
 */
function since(zero: number, dts: number): number {
  const d = (((dts - zero) % TS_WRAP) + TS_WRAP) % TS_WRAP;
  return d >= TS_WRAP / 2 ? d - TS_WRAP : d;
}

/** The index of each TS recording a feed holds, read once and extended as a file grows. */
export class TsIndexCache {
  private readonly byPath = new Map<string, { indexer: TsJoinIndexer; pending: Promise<void> }>();

  async of(entry: RecordingEntry): Promise<TsRecordingIndex> {
    let hit = this.byPath.get(entry.path);
    if (hit === undefined) {
      if (this.byPath.size >= CACHED_FILES) {
        const oldest = this.byPath.keys().next().value;
        if (oldest !== undefined) this.byPath.delete(oldest);
      }
      hit = { indexer: new TsJoinIndexer(), pending: Promise.resolve() };
      this.byPath.set(entry.path, hit);
    }
    const h = hit;
    // One read at a time per file; each extends what the last one left.
    h.pending = h.pending.then(() => (h.indexer.bytes < entry.bytes ? indexFrom(entry.path, h.indexer) : undefined));
    try {
      await h.pending;
    } catch (err) {
      this.byPath.delete(entry.path);
      throw err;
    }
    const ix = h.indexer;
    const zero = ix.joins[0]?.dts90k;
    const wallOf = (dts: number): number => entry.startWallMs + (zero === undefined ? 0 : since(zero, dts) / 90);
    return {
      joins: ix.joins.map((j) => ({ ...j, wallMs: wallOf(j.dts90k) })),
      endWallMs: ix.lastDts90k !== undefined ? wallOf(ix.lastDts90k + (ix.lastStep90k ?? 0)) : undefined,
      zeroDts90k: zero,
    };
  }
}

/** What a TS recording gives from a join point: its track list whenever it changes, then frames. */
export type TsRecordingItem = { kind: 'tracks'; tracks: readonly Track[] } | ({ kind: 'frame' } & RecordedFrame);

/**
 * The tracks and frames of the TS recording `entry` from the join point at `offset`, read a MiB at
 * a time; `zeroDts90k` (the file's first join) is at the file's start time.
 */
export async function* tsRecordingItems(
  entry: RecordingEntry,
  offset: number,
  zeroDts90k: number,
): AsyncGenerator<TsRecordingItem> {
  const fh = await open(entry.path, 'r');
  const pending: TsRecordingItem[] = [];
  const demuxer = new TsDemuxer({
    onTracks: (tracks) => pending.push({ kind: 'tracks', tracks: [...tracks] }),
    onFrame: (frame) => pending.push({ kind: 'frame', frame, wallMs: entry.startWallMs + since(zeroDts90k, frame.dts90k) / 90 }),
  });
  try {
    for (let position = offset; ;) {
      const buf = Buffer.allocUnsafe(READ_BYTES);
      const { bytesRead } = await fh.read(buf, 0, READ_BYTES, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      demuxer.push(buf.subarray(0, bytesRead));
      yield* pending.splice(0);
    }
    demuxer.end();
    yield* pending.splice(0);
  } finally {
    await fh.close();
  }
}
