// HLS VOD over a feed's recordings. fMP4: the fragments (one a GOP, each with its prft wall time)
// grouped into segments that never cross a file; a segment is rebuilt from the file's own samples
// (no re-encoding) with times on the playlist's timeline, and the file's ftyp+moov is the init.
// TS (RecordFormat ts): the join points of each file (its index, ts-recording.ts) are the cuts; a
// segment is demuxed from its join point and packaged as fMP4, the init made from its tracks.

import { open, type FileHandle } from 'node:fs/promises';
import { encodeFragment, type Fmp4Sample, type TrackRun } from '../formats/fmp4/fragment.js';
import { encodeInitSegment, fmp4TrackOf, type Fmp4Track } from '../formats/fmp4/init-segment.js';
import type { Frame } from '../media/frame.js';
import { from90k } from '../media/timebase.js';
import type { Track } from '../media/track.js';
import type { RecordedMedia } from './recorded-source.js';
import { tsRecordingItems, type TsRecordingIndex } from './ts-recording.js';
import { parseBoxHeader, parseMoof, type Mp4TrackInfo } from '../formats/fmp4/read.js';
import { scanFmp4File, type Fmp4FileInfo, type FragmentInfo } from './fmp4-file.js';
import { current, type RecordingEntry } from './recording-index.js';
import { groupSegments, type VodCut, type VodPlan } from './vod-plan.js';

/** Files whose scan is kept (a scan reads every moof of a file). */
const SCAN_CACHE_FILES = 32;
/** ftyp + moov are a few KiB; more is not a recording of ours. */
const MAX_INIT_BYTES = 1024 * 1024;
/** A TS segment is read this far past its end for the audio that goes with its last video frames. */
const TS_READ_PAST_90K = 2 * 90_000;
/** A TS join point's first frames (its track list) come within this much of the file. */
const TS_TRACKS_WITHIN_90K = 2 * 90_000;

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`record: file ended at ${position + done} while reading ${length} bytes at ${position}`);
    done += bytesRead;
  }
  return buf;
}

function sameTracks(a: readonly Mp4TrackInfo[], b: readonly Mp4TrackInfo[]): boolean {
  return a.length === b.length && a.every((t, i) => t.trackId === b[i]?.trackId && t.stsd.equals(b[i]?.stsd ?? Buffer.alloc(0)));
}

function referenceTrack(tracks: readonly Mp4TrackInfo[]): Mp4TrackInfo | undefined {
  return tracks.find((t) => t.kind === 'video') ?? tracks.find((t) => t.kind === 'audio');
}

/** The `at` of a fragment: its wall-clock time in ms (prft), unique among a feed's fragments. */
function atOf(f: FragmentInfo): string {
  return String(Math.round(f.wallMs));
}

/** 90 kHz duration of the reference track's samples of `frag` that start before `limitMs` into it. */
async function durationBefore(
  path: string,
  frag: FragmentInfo,
  tracks: readonly Mp4TrackInfo[],
  limitMs: number,
): Promise<number> {
  const ref = referenceTrack(tracks);
  const fh = await open(path, 'r');
  try {
    const traf = parseMoof(await readAt(fh, frag.moofOffset, frag.moofSize)).find((t) => t.trackId === ref?.trackId);
    if (ref === undefined || traf === undefined) return Math.round(limitMs * 90);
    let at = 0;
    for (const s of traf.samples) {
      if ((at * 1000) / ref.timescale >= limitMs) break;
      at += s.duration;
    }
    return Math.round((at * 90_000) / ref.timescale);
  } finally {
    await fh.close();
  }
}

export class RecordedVod {
  private readonly scans = new Map<string, { bytes: number; info: Promise<Fmp4FileInfo> }>();

  /** The scan of a file as it is now (cached while its size does not change). */
  private scan(e: RecordingEntry): Promise<Fmp4FileInfo> {
    const hit = this.scans.get(e.path);
    if (hit !== undefined && hit.bytes === e.bytes) return hit.info;
    const info = scanFmp4File(e.path);
    this.scans.delete(e.path);
    if (this.scans.size >= SCAN_CACHE_FILES) {
      const oldest = this.scans.keys().next().value;
      if (oldest !== undefined) this.scans.delete(oldest);
    }
    this.scans.set(e.path, { bytes: e.bytes, info });
    info.catch(() => {
      if (this.scans.get(e.path)?.info === info) this.scans.delete(e.path);
    });
    return info;
  }

  private static files(
    entries: readonly RecordingEntry[],
    fromMs: number,
    toMs: number,
    format: 'fmp4' | 'ts' = 'fmp4',
  ): RecordingEntry[] {
    return entries
      .map(current)
      .filter((e) => e.format === format && e.bytes > 0 && e.endWallMs > fromMs && e.startWallMs < toMs)
      .sort((a, b) => a.startWallMs - b.startWallMs);
  }

  /**
   * Segments over [startMs, endMs): from the keyframe at or before start to the last frame before
   * end; files whose tracks differ from the first one's end the plan there. Undefined: nothing held.
   */
  async plan(media: RecordedMedia, startMs: number, endMs: number, targetMs: number): Promise<VodPlan | undefined> {
    return (await this.planFmp4(media.entries, startMs, endMs, targetMs)) ?? this.planTs(media, startMs, endMs, targetMs);
  }

  private async planFmp4(
    entries: readonly RecordingEntry[],
    startMs: number,
    endMs: number,
    targetMs: number,
  ): Promise<VodPlan | undefined> {
    const cuts: VodCut[] = [];
    let tracks: Mp4TrackInfo[] | undefined;
    for (const f of RecordedVod.files(entries, startMs, endMs)) {
      const info = await this.scan(f);
      tracks ??= info.tracks;
      if (!sameTracks(tracks, info.tracks)) break;
      let firstInFile = true;
      for (const frag of info.fragments) {
        if (frag.wallMs >= endMs) break;
        if (frag.wallMs + frag.durationMs <= startMs) continue;
        // The fragment `end` cuts: up to the end of its last frame that starts before `end`.
        const duration90k =
          frag.wallMs + frag.durationMs > endMs
            ? await durationBefore(f.path, frag, info.tracks, endMs - frag.wallMs)
            : Math.round(frag.durationMs * 90);
        const last = cuts[cuts.length - 1];
        if (frag.startsWithKey || last === undefined || firstInFile) {
          if (!frag.startsWithKey) continue; // a file always starts on a keyframe; anything else is not ours
          cuts.push({ at: atOf(frag), wallMs: frag.wallMs, duration90k, breakBefore: firstInFile });
        } else {
          last.duration90k += duration90k;
        }
        firstInFile = false;
      }
    }
    return groupSegments('rec', cuts, targetMs);
  }

  /** Segments over [startMs, endMs) of the TS recordings: their join points, from the one at or before start. */
  private async planTs(media: RecordedMedia, startMs: number, endMs: number, targetMs: number): Promise<VodPlan | undefined> {
    const cuts: VodCut[] = [];
    for (const f of RecordedVod.files(media.entries, startMs, endMs, 'ts')) {
      const index = await media.tsIndexes.of(f);
      const joins = index.joins;
      let first = 0;
      joins.forEach((j, i) => {
        if (j.wallMs <= startMs) first = i;
      });
      let firstInFile = true;
      for (let i = first; i < joins.length; i++) {
        const j = joins[i] as TsRecordingIndex['joins'][number];
        if (j.wallMs >= endMs) break;
        const next = joins[i + 1];
        const until = next !== undefined ? next.wallMs : (index.endWallMs ?? j.wallMs);
        const duration90k = Math.round((Math.min(until, endMs) - j.wallMs) * 90);
        if (duration90k <= 0) continue;
        cuts.push({ at: atOfWall(j.wallMs), wallMs: j.wallMs, duration90k, breakBefore: firstInFile });
        firstInFile = false;
      }
    }
    return groupSegments('rec', cuts, targetMs);
  }

  /** The TS recording and join point whose `at` is `at`. */
  private async findTs(
    media: RecordedMedia,
    at: string,
  ): Promise<{ file: RecordingEntry; join: { offset: number; dts90k: number }; zero: number } | undefined> {
    const wallMs = Number(at);
    for (const file of RecordedVod.files(media.entries, wallMs - 1, wallMs + 1, 'ts')) {
      const index = await media.tsIndexes.of(file);
      const join = index.joins.find((j) => atOfWall(j.wallMs) === at);
      if (join !== undefined && index.zeroDts90k !== undefined) return { file, join, zero: index.zeroDts90k };
    }
    return undefined;
  }

  /** Frames of a TS recording from a join point: its track list, then frames with their DTS from the keyframe. */
  private static async tsFrames(
    found: { file: RecordingEntry; join: { offset: number; dts90k: number }; zero: number },
    untilRel90k: number,
    take: (tracks: readonly Track[] | undefined, frame: Frame | undefined, rel90k: number) => boolean,
  ): Promise<void> {
    let keyDts90k: number | undefined;
    const items = tsRecordingItems(found.file, found.join.offset, found.zero);
    try {
      for await (const item of items) {
        if (item.kind === 'tracks') {
          if (!take(item.tracks, undefined, 0)) return;
          continue;
        }
        // The demuxer's times are continuous from its first frame, the keyframe.
        keyDts90k ??= item.frame.dts90k;
        const rel90k = item.frame.dts90k - keyDts90k;
        if (rel90k > untilRel90k) return;
        if (!take(undefined, item.frame, rel90k)) return;
      }
    } finally {
      await items.return(undefined);
    }
  }

  /** The fragment whose `at` is `at`, in the file that holds it. */
  private async find(
    entries: readonly RecordingEntry[],
    at: string,
  ): Promise<{ file: RecordingEntry; info: Fmp4FileInfo; index: number } | undefined> {
    const wallMs = Number(at);
    for (const file of RecordedVod.files(entries, wallMs - 1, wallMs + 1)) {
      const info = await this.scan(file);
      const index = info.fragments.findIndex((f) => atOf(f) === at);
      if (index >= 0) return { file, info, index };
    }
    return undefined;
  }

  /** The init section of the recording holding `at`: its own ftyp and moov. */
  async init(media: RecordedMedia, at: string): Promise<Buffer | undefined> {
    const found = await this.find(media.entries, at);
    if (found === undefined) return this.tsInit(media, at);
    const fh = await open(found.file.path, 'r');
    try {
      let pos = 0;
      for (;;) {
        const h = parseBoxHeader(await readAt(fh, pos, 16));
        if (h === undefined || pos + h.size > MAX_INIT_BYTES) return undefined;
        pos += h.size;
        if (h.type === 'moov') return await readAt(fh, 0, pos);
      }
    } finally {
      await fh.close();
    }
  }

  /**
   * The segment starting at the keyframe `at`: every sample from it up to `dur90k` later (audio by
   * its own time, from the fragment before too), placed at `out90k` on the playlist's timeline.
   */
  async segment(media: RecordedMedia, at: string, out90k: number, dur90k: number): Promise<Buffer | undefined> {
    const found = await this.find(media.entries, at);
    if (found === undefined) return this.tsSegment(media, at, out90k, dur90k);
    const { info, index } = found;
    const ref = referenceTrack(info.tracks);
    const key = info.fragments[index];
    if (ref === undefined || key === undefined) return undefined;
    const fh = await open(found.file.path, 'r');
    try {
      const keyTraf = parseMoof(await readAt(fh, key.moofOffset, key.moofSize)).find((t) => t.trackId === ref.trackId);
      if (keyTraf === undefined) return undefined;
      const keyDecode = keyTraf.baseDecodeTime;
      const runs = new Map<number, { first: number | undefined; samples: Fmp4Sample[] }>();
      const endMs = key.wallMs + dur90k / 90;
      for (let i = Math.max(0, index - 1); i < info.fragments.length; i++) {
        const frag = info.fragments[i] as FragmentInfo;
        if (frag.wallMs > endMs + 1000) break; // audio runs at most a little past the video
        const trafs = parseMoof(await readAt(fh, frag.moofOffset, frag.moofSize));
        for (const traf of trafs) {
          const track = info.tracks.find((t) => t.trackId === traf.trackId);
          if (track === undefined || track.kind === 'other') continue;
          let decode = traf.baseDecodeTime;
          let offset = frag.moofOffset + traf.dataOffset;
          const kept: { offset: number; size: number; relSec: number; duration: number; cto: number; key: boolean }[] = [];
          for (const s of traf.samples) {
            // Seconds from the keyframe, the numerator exact in integers: both tracks share the file's clock.
            const relSec = (decode * ref.timescale - keyDecode * track.timescale) / (track.timescale * ref.timescale);
            const rel90k = relSec * 90_000;
            if (rel90k > -1e-6 && rel90k < dur90k - 1e-6) {
              kept.push({ offset, size: s.size, relSec, duration: s.duration, cto: s.compositionOffset, key: s.keyframe });
            }
            decode += s.duration;
            offset += s.size;
          }
          const firstKept = kept[0];
          const lastKept = kept[kept.length - 1];
          if (firstKept === undefined || lastKept === undefined) continue;
          const data = await readAt(fh, firstKept.offset, lastKept.offset + lastKept.size - firstKept.offset);
          let run = runs.get(track.trackId);
          if (run === undefined) {
            run = { first: undefined, samples: [] };
            runs.set(track.trackId, run);
          }
          run.first ??= Math.round((out90k / 90_000 + firstKept.relSec) * track.timescale);
          for (const k of kept) {
            const from = k.offset - firstKept.offset;
            run.samples.push({
              duration: k.duration,
              compositionOffset: k.cto,
              keyframe: k.key,
              data: data.subarray(from, from + k.size),
            });
          }
        }
      }
      const out: TrackRun[] = [];
      for (const t of info.tracks) {
        const run = runs.get(t.trackId);
        if (run?.first !== undefined) out.push({ trackId: t.trackId, baseDecodeTime: run.first, samples: run.samples });
      }
      if (out.length === 0) return undefined;
      return encodeFragment(1, out);
    } finally {
      await fh.close();
    }
  }

  /** The init section of the TS recording's join point `at`: its tracks, as fMP4. */
  private async tsInit(media: RecordedMedia, at: string): Promise<Buffer | undefined> {
    const found = await this.findTs(media, at);
    if (found === undefined) return undefined;
    const made: { init: Buffer | undefined } = { init: undefined };
    await RecordedVod.tsFrames(found, TS_TRACKS_WITHIN_90K, (tracks) => {
      if (tracks === undefined) return true;
      const fmp4 = tracks.map(fmp4TrackOf).filter((t): t is Fmp4Track => t !== undefined);
      if (fmp4.length > 0) made.init = encodeInitSegment(fmp4);
      return false;
    });
    return made.init;
  }

  /**
   * The segment starting at the TS recording's join point `at`: every frame from its keyframe up to
   * `dur90k` later, packaged as one fMP4 fragment placed at `out90k` on the playlist's timeline.
   */
  private async tsSegment(media: RecordedMedia, at: string, out90k: number, dur90k: number): Promise<Buffer | undefined> {
    const found = await this.findTs(media, at);
    if (found === undefined) return undefined;
    const carried: { fmp4: Fmp4Track[] | undefined } = { fmp4: undefined };
    const byTrack = new Map<number, { rel90k: number; frame: Frame }[]>();
    await RecordedVod.tsFrames(found, dur90k + TS_READ_PAST_90K, (tracks, frame, rel90k) => {
      if (tracks !== undefined) {
        if (carried.fmp4 !== undefined) return false; // the tracks change: the segment ends here
        carried.fmp4 = tracks.map(fmp4TrackOf).filter((t): t is Fmp4Track => t !== undefined);
        return true;
      }
      if (frame === undefined || carried.fmp4 === undefined) return true;
      const list = byTrack.get(frame.trackId) ?? [];
      byTrack.set(frame.trackId, list);
      list.push({ rel90k, frame });
      return true;
    });
    const fmp4 = carried.fmp4;
    if (fmp4 === undefined) return undefined;
    const runs: TrackRun[] = [];
    for (const t of fmp4) {
      const frames = byTrack.get(t.feedTrackId) ?? [];
      const samples: Fmp4Sample[] = [];
      let first: number | undefined;
      let lastDuration = t.kind === 'audio' ? 1024 : 3600;
      frames.forEach(({ rel90k, frame }, i) => {
        if (rel90k < 0 || rel90k >= dur90k) return;
        const start = from90k(out90k + rel90k, t.timescale);
        const next = frames[i + 1];
        const duration = next !== undefined ? Math.max(1, from90k(out90k + next.rel90k, t.timescale) - start) : lastDuration;
        lastDuration = duration;
        first ??= start;
        samples.push({
          duration,
          compositionOffset: from90k(frame.pts90k - frame.dts90k, t.timescale),
          keyframe: t.kind === 'audio' || frame.keyframe,
          data: frame.data,
        });
      });
      if (first !== undefined && samples.length > 0) runs.push({ trackId: t.trackId, baseDecodeTime: first, samples });
    }
    return runs.length > 0 ? encodeFragment(1, runs) : undefined;
  }
}

/** The `at` of a TS join point: its wall-clock time in ms. */
function atOfWall(wallMs: number): string {
  return String(Math.round(wallMs));
}
