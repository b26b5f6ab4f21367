// A time range of a feed's recordings as a ShiftSource (feedfile/time-shift.ts), for the readers
// that play the past from the FeedFile ring when the ring no longer holds it: `/FEED.ts` and
// `/FEED.flv?start=&end=`, RTSP `PLAY Range: clock=T1-T2` (through a TimeShiftOutput, as a ring
// read is). From the keyframe at or before the start, across files (fMP4 or TS), every track
// stopping at its first frame at or after the end; times on one continuous clock from 0.

import { open } from 'node:fs/promises';
import { RANGE_END_REASON, sameTracks, type ShiftItem, type ShiftSource, type TimeShiftStats } from '../feedfile/time-shift.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import { scanFmp4File } from './fmp4-file.js';
import { readFragmentFrames, tracksOfFmp4, type RecordedFrame } from './recorded-frames.js';
import { current, type RecordingEntry } from './recording-index.js';
import { tsRecordingItems, type TsIndexCache } from './ts-recording.js';

/** Reading stops this far (wall time) past the end: the other tracks' last frames lie within it. */
const READ_PAST_MS = 2000;

/** What the recordings give, file after file: track lists and frames on each file's own clock. */
export type RecordedItem = { kind: 'tracks'; tracks: readonly Track[] } | ({ kind: 'frame'; file: number } & RecordedFrame);

/** A feed's recordings as the readers take them (FeedRecordings is one). */
export interface RecordedMedia {
  readonly entries: readonly RecordingEntry[];
  readonly tsIndexes: TsIndexCache;
}

export interface RecordedRangeOptions {
  /** Where the range ends (ms since the epoch): every track stops at its first frame at or after it. */
  endWallMs: number;
  /** 'fast' (default): as fast as the reader takes it; 'realtime': at the pace it was recorded (RTP). */
  pace?: 'fast' | 'realtime';
}

/** The files of `entries` that hold something of [startMs, endMs), oldest first. */
export function filesOver(entries: readonly RecordingEntry[], startMs: number, endMs: number): RecordingEntry[] {
  return entries
    .map(current)
    .filter((e) => e.bytes > 0 && e.endWallMs > startMs && e.startWallMs < endMs)
    .sort((a, b) => a.startWallMs - b.startWallMs);
}

/** An fMP4 recording from the last fragment starting on a keyframe at or before `startMs`. */
async function* fmp4Items(path: string, file: number, startMs: number, endMs: number): AsyncGenerator<RecordedItem> {
  const info = await scanFmp4File(path);
  const tracks = tracksOfFmp4(info.tracks);
  if (tracks.tracks.length === 0) return;
  let first = -1;
  info.fragments.forEach((f, i) => {
    if (f.startsWithKey && (f.wallMs <= startMs || first < 0)) first = i;
  });
  if (first < 0) return;
  yield { kind: 'tracks', tracks: tracks.tracks };
  const fh = await open(path, 'r');
  try {
    for (let i = first; i < info.fragments.length; i++) {
      const frag = info.fragments[i];
      if (frag === undefined || frag.wallMs >= endMs + READ_PAST_MS) break;
      for (const f of await readFragmentFrames(fh, frag, tracks)) yield { kind: 'frame', file, ...f };
    }
  } finally {
    await fh.close();
  }
}

/** A TS recording from its join point (PAT, PMT, keyframe) at or before `startMs`, found in its index. */
async function* tsItems(
  tsIndexes: TsIndexCache,
  entry: RecordingEntry,
  file: number,
  startMs: number,
  endMs: number,
): AsyncGenerator<RecordedItem> {
  const index = await tsIndexes.of(entry);
  const zero = index.zeroDts90k;
  if (zero === undefined) return;
  let from = index.joins[0];
  for (const j of index.joins) if (j.wallMs <= startMs) from = j;
  if (from === undefined) return;
  for await (const item of tsRecordingItems(entry, from.offset, zero)) {
    if (item.kind === 'tracks') {
      yield item;
      continue;
    }
    if (item.wallMs >= endMs + READ_PAST_MS) break;
    yield { kind: 'frame', file, frame: item.frame, wallMs: item.wallMs };
  }
}

/** Every file over the range in turn: the first from the keyframe at or before `startMs`, the others whole. */
export async function* recordedItems(media: RecordedMedia, startMs: number, endMs: number): AsyncGenerator<RecordedItem> {
  const files = filesOver(media.entries, startMs, endMs);
  for (let i = 0; i < files.length; i++) {
    const f = files[i] as RecordingEntry;
    const from = i === 0 ? startMs : -Infinity;
    yield* f.format === 'fmp4' ? fmp4Items(f.path, i, from, endMs) : tsItems(media.tsIndexes, f, i, from, endMs);
  }
}

export type RecordedRangeOpen = { kind: 'ok'; source: RecordedRangeSource; startWallMs: number } | { kind: 'none' };

export class RecordedRangeSource implements ShiftSource {
  readonly isLive = false;
  readonly stats: TimeShiftStats = { fileFrames: 0, liveFrames: 0, joinedLiveAt: undefined, framesDropped: 0 };
  private readonly items: AsyncGenerator<RecordedItem>;
  private readonly options: RecordedRangeOptions;
  private readonly startWallMs: number;
  /** Items read ahead by open(). */
  private readonly ahead: RecordedItem[];
  private tracks: readonly Track[] = [];
  private readonly pastEnd = new Set<number>();
  /** Output DTS = file DTS + offset of the file being read (from its first frame's wall time). */
  private file: { index: number; offset90k: number } | undefined;
  private readonly lastDts = new Map<number, number>();
  private paceStart: { wallMs: number; dts90k: number } | undefined;
  private endReason: string | undefined;

  private constructor(
    items: AsyncGenerator<RecordedItem>,
    ahead: RecordedItem[],
    startWallMs: number,
    options: RecordedRangeOptions,
  ) {
    this.items = items;
    this.ahead = ahead;
    this.startWallMs = startWallMs;
    this.options = options;
  }

  /** The recordings of [startMs, options.endWallMs) from the keyframe at or before startMs; 'none' if they hold nothing of it. */
  static async open(media: RecordedMedia, startMs: number, options: RecordedRangeOptions): Promise<RecordedRangeOpen> {
    const items = recordedItems(media, startMs, options.endWallMs);
    const ahead: RecordedItem[] = [];
    let tracks: readonly Track[] = [];
    for (;;) {
      const r = await items.next();
      if (r.done === true) return { kind: 'none' };
      const item = r.value;
      if (item.kind === 'tracks') {
        tracks = item.tracks;
        ahead.push(item);
        continue;
      }
      // The range starts on a video keyframe: the audio a fragment holds from just before it is left
      // out (a reader joins an output at a keyframe; what comes before it would never be sent).
      const track = tracks.find((t) => t.id === item.frame.trackId);
      const joinable = tracks.some((t) => t.kind === 'video') ? track?.kind === 'video' && item.frame.keyframe : true;
      if (!joinable) continue;
      if (item.wallMs >= options.endWallMs) {
        await items.return(undefined);
        return { kind: 'none' };
      }
      ahead.push(item);
      return { kind: 'ok', source: new RecordedRangeSource(items, ahead, item.wallMs, options), startWallMs: item.wallMs };
    }
  }

  get ended(): { reason: string; error: Error | undefined } | undefined {
    return this.endReason !== undefined ? { reason: this.endReason, error: undefined } : undefined;
  }

  async next(): Promise<ShiftItem | undefined> {
    for (;;) {
      if (this.endReason !== undefined) return undefined;
      const item = this.ahead.shift() ?? (await this.pull());
      if (item === undefined) {
        // The recordings end before the range does: it ends there.
        this.end(RANGE_END_REASON);
        return undefined;
      }
      if (item.kind === 'tracks') {
        if (sameTracks(this.tracks, item.tracks)) continue;
        this.tracks = item.tracks;
        return { kind: 'tracks', tracks: item.tracks };
      }
      if (item.wallMs >= this.options.endWallMs) {
        this.pastEnd.add(item.frame.trackId);
        if (this.tracks.every((t) => this.pastEnd.has(t.id))) {
          this.end(RANGE_END_REASON);
          await this.items.return(undefined);
          return undefined;
        }
        continue;
      }
      const frame = this.place(item);
      this.stats.fileFrames++;
      await this.pace(frame);
      return { kind: 'frame', frame };
    }
  }

  private async pull(): Promise<RecordedItem | undefined> {
    const r = await this.items.next();
    return r.done === true ? undefined : r.value;
  }

  /** The frame on the output clock: 0 at the range's first frame, each file placed by its wall time. */
  private place(item: { file: number } & RecordedFrame): Frame {
    if (this.file?.index !== item.file) {
      this.file = { index: item.file, offset90k: Math.round((item.wallMs - this.startWallMs) * 90) - item.frame.dts90k };
    }
    let dts90k = item.frame.dts90k + this.file.offset90k;
    const last = this.lastDts.get(item.frame.trackId);
    if (last !== undefined && dts90k <= last) dts90k = last + 1; // files meet within a ms: never go back
    this.lastDts.set(item.frame.trackId, dts90k);
    return { ...item.frame, dts90k, pts90k: dts90k + (item.frame.pts90k - item.frame.dts90k) };
  }

  private async pace(frame: Frame): Promise<void> {
    if (this.options.pace !== 'realtime') return;
    this.paceStart ??= { wallMs: Date.now(), dts90k: frame.dts90k };
    const dueMs = this.paceStart.wallMs + (frame.dts90k - this.paceStart.dts90k) / 90 - Date.now();
    if (dueMs > 1) await new Promise((r) => setTimeout(r, Math.min(dueMs, 10_000)));
  }

  private end(reason: string): void {
    this.endReason ??= reason;
  }

  /** Stops reading (the reader left). Idempotent. */
  close(): void {
    this.end('closed');
    this.items.return(undefined).catch(() => undefined);
  }
}
