// HLS VOD over a feed's FeedFile ring: the join points (a video keyframe, its track list and the
// wall time it arrived at) of a time range grouped into segments; a segment is read back from the
// ring and packaged as fMP4 like a live part (no re-encoding), on the playlist's timeline.

import type { FeedFileCursor, TimeRange } from '../../feedfile/cursor.js';
import { RecordType } from '../../feedfile/format.js';
import { sameTracks } from '../../feedfile/time-shift.js';
import type { FeedFileWriter } from '../../feedfile/writer.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { groupSegments, type VodCut, type VodPlan } from '../../record/vod-plan.js';
import { createPackager, type HlsSample, type Packager } from './packager.js';

/** Two video frames further apart than this are a gap (the publisher was away): a segment ends. */
const GAP_90K = 90_000;
/** A segment reads on this far past its end for the audio that goes with its last video frames. */
const READ_PAST_90K = 2 * 90_000;

export type RingPlan = { kind: 'ok'; plan: VodPlan } | { kind: 'outside'; range: TimeRange } | { kind: 'empty' };

/** `WALL.DTS`: a join point's wall time (ms) and file DTS (90 kHz), as its track record holds them. */
function atOf(wallMs: number, dts90k: number): string {
  return `${wallMs}.${dts90k}`;
}

function parseAt(at: string): { wallMs: number; dts90k: number } | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(at);
  return m === null ? undefined : { wallMs: Number(m[1]), dts90k: Number(m[2]) };
}

/** The track the segments are cut on: the first video track fMP4 carries, else the first it carries. */
function cutTrackOf(packager: Packager | undefined): number | undefined {
  return (packager?.tracks.find((t) => t.kind === 'video') ?? packager?.tracks[0])?.id;
}

/** Positions a cursor at the join point at or before `wallMs`, or at the oldest if `wallMs` is before it. */
async function seekClamped(cursor: FeedFileCursor, wallMs: number, endMs: number): Promise<RingPlan | undefined> {
  const found = await cursor.seek(wallMs);
  if (found.kind === 'empty') return { kind: 'empty' };
  if (found.kind === 'after') return { kind: 'outside', range: found.range };
  if (found.kind === 'before') {
    if (endMs <= found.range.oldestWallMs) return { kind: 'outside', range: found.range };
    const again = await cursor.seek(found.range.oldestWallMs);
    if (again.kind !== 'ok') return again.kind === 'empty' ? { kind: 'empty' } : { kind: 'outside', range: again.range };
  }
  return undefined;
}

/** Segments over [startMs, endMs) of what the ring holds: from the join point at or before start. */
export async function planRingVod(writer: FeedFileWriter, startMs: number, endMs: number, targetMs: number): Promise<RingPlan> {
  const cursor = writer.cursor();
  const refused = await seekClamped(cursor, startMs, endMs);
  if (refused !== undefined) return refused;
  const cuts: VodCut[] = [];
  let tracks: readonly Track[] | undefined;
  let cutTrack: number | undefined;
  let join: { wallMs: number; dts90k: number } | undefined;
  let prev: { dts90k: number } | undefined;
  let lastDuration = 3600;
  let cut: (VodCut & { dts90k: number }) | undefined;
  for (;;) {
    const record = await cursor.next();
    if (record === undefined) break;
    if (record.type === RecordType.tracks) {
      if (tracks !== undefined && !sameTracks(tracks, record.tracks)) break; // the range ends at a change of tracks
      if (tracks === undefined) {
        tracks = record.tracks;
        cutTrack = cutTrackOf(createPackager('fmp4', tracks));
        if (cutTrack === undefined) break;
      }
      if (record.join) join = { wallMs: record.wallMs, dts90k: record.dts90k };
      continue;
    }
    const frame = record.frame;
    if (frame.trackId !== cutTrack) continue;
    const wallMs = cut === undefined ? join?.wallMs : cut.wallMs + (frame.dts90k - cut.dts90k) / 90;
    if (wallMs === undefined || wallMs >= endMs) {
      if (cut !== undefined) break;
      continue;
    }
    const step = prev === undefined ? undefined : frame.dts90k - prev.dts90k;
    const gap = step !== undefined && (step <= 0 || step > GAP_90K);
    if (cut !== undefined && step !== undefined) {
      const d = gap ? lastDuration : step;
      cut.duration90k += d;
      lastDuration = d;
    }
    if (frame.keyframe && join !== undefined && join.dts90k === frame.dts90k) {
      cut = { at: atOf(join.wallMs, join.dts90k), wallMs: join.wallMs, dts90k: frame.dts90k, duration90k: 0, breakBefore: gap };
      cuts.push(cut);
    }
    prev = { dts90k: frame.dts90k };
  }
  if (cut !== undefined) cut.duration90k += lastDuration; // the last frame read, whole
  const plan = groupSegments('ring', cuts, targetMs);
  if (plan !== undefined) return { kind: 'ok', plan };
  const range = await writer.cursor().timeRange();
  return range === undefined ? { kind: 'empty' } : { kind: 'outside', range };
}

/** The track list in force at the join point `at`, with the cursor placed on its keyframe's record. */
async function openAt(
  writer: FeedFileWriter,
  at: string,
  backMs: number,
): Promise<{ cursor: FeedFileCursor; key: { wallMs: number; dts90k: number } } | undefined> {
  const key = parseAt(at);
  if (key === undefined) return undefined;
  const cursor = writer.cursor();
  let found = await cursor.seek(key.wallMs - backMs);
  if (found.kind === 'before') found = await cursor.seek(key.wallMs);
  if (found.kind !== 'ok') return undefined;
  return { cursor, key };
}

/** The init section of the join point `at`: the track list it holds, as fMP4. */
export async function ringVodInit(writer: FeedFileWriter, at: string): Promise<Buffer | undefined> {
  const opened = await openAt(writer, at, 0);
  if (opened === undefined) return undefined;
  for (;;) {
    const record = await opened.cursor.next();
    if (record === undefined) return undefined;
    if (record.type !== RecordType.tracks) {
      if (record.frame.dts90k > opened.key.dts90k) return undefined;
      continue;
    }
    if (record.join && record.dts90k === opened.key.dts90k && record.wallMs === opened.key.wallMs) {
      return createPackager('fmp4', record.tracks)?.init;
    }
    if (record.dts90k > opened.key.dts90k) return undefined;
  }
}

/**
 * The segment starting at the join point `at`: every frame from its keyframe up to `dur90k` later
 * (audio by its own time, from the GOP before too), placed at `out90k` on the playlist's timeline.
 * Undefined when the ring no longer holds it.
 */
export async function ringVodSegment(
  writer: FeedFileWriter,
  at: string,
  out90k: number,
  dur90k: number,
): Promise<Buffer | undefined> {
  // From a little earlier: audio that arrived before the keyframe may belong after it.
  const opened = await openAt(writer, at, 1000);
  if (opened === undefined) return undefined;
  const { cursor, key } = opened;
  let packager: Packager | undefined;
  let tracks: readonly Track[] | undefined;
  let sawKey = false;
  const pending = new Map<number, Frame>();
  const durations = new Map<number, number>();
  const samples: HlsSample[] = [];
  const take = (f: Frame, next: number | undefined): void => {
    const d = next !== undefined ? next - f.dts90k : (durations.get(f.trackId) ?? 3600);
    durations.set(f.trackId, d);
    const rel = f.dts90k - key.dts90k;
    samples.push({
      trackId: f.trackId,
      dts90k: out90k + rel,
      pts90k: out90k + rel + (f.pts90k - f.dts90k),
      keyframe: f.keyframe,
      data: f.data,
      duration90k: Math.max(1, d),
    });
  };
  for (;;) {
    const record = await cursor.next();
    if (record === undefined) break;
    if (record.type === RecordType.tracks) {
      if (tracks === undefined || !sameTracks(tracks, record.tracks)) {
        if (sawKey) break; // the tracks change: the segment ends here
        tracks = record.tracks;
        packager = createPackager('fmp4', tracks);
        samples.length = 0;
        pending.clear();
      }
      continue;
    }
    const f = record.frame;
    const rel = f.dts90k - key.dts90k;
    if (rel > dur90k + READ_PAST_90K) break;
    if (packager === undefined) continue;
    if (!packager.tracks.some((t) => t.id === f.trackId)) continue;
    if (f.dts90k === key.dts90k && f.trackId === cutTrackOf(packager)) sawKey = true;
    const before = pending.get(f.trackId);
    if (before !== undefined) {
      take(before, f.dts90k - before.dts90k > GAP_90K ? undefined : f.dts90k);
      pending.delete(f.trackId);
    }
    if (rel >= 0 && rel < dur90k) pending.set(f.trackId, f);
  }
  if (!sawKey || packager === undefined) return undefined;
  for (const f of pending.values()) take(f, undefined);
  if (samples.length === 0) return undefined;
  return packager.part(samples, true);
}
