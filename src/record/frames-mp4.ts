// A progressive MP4 (moov first, complete sample tables, seekable) made of frames read from stored
// media that is not fMP4 on disk: the FeedFile ring (ring-range.ts) or TS recordings
// (recorded-source.ts). Two passes over the same range: the first lays out the sample tables
// (sizes, durations to the frame, keyframes) and keeps only each frame's identity; the second,
// at each request, reads the frames again and sends the bytes asked for. Stored media that
// changed in between (the ring overwrote it, retention deleted a file) ends the body with an error
// rather than with wrong bytes.

import { LimitExceededError } from '../errors.js';
import { sameTracks, type ShiftItem } from '../feedfile/time-shift.js';
import { encodeInitSegment, fmp4TrackOf, type Fmp4Track } from '../formats/fmp4/init-segment.js';
import {
  encodeProgressiveHeader,
  type ProgressiveChunk,
  type ProgressiveSample,
  type ProgressiveTrack,
} from '../formats/fmp4/progressive.js';
import { parseBoxHeader, parseMoov } from '../formats/fmp4/read.js';
import type { Frame } from '../media/frame.js';
import { from90k } from '../media/timebase.js';
import type { Track } from '../media/track.js';

/** Frames one download may hold (about 4 h of 25 fps video with 48 kHz AAC): its tables stay in memory. */
export const MAX_DOWNLOAD_FRAMES = 1_000_000;

/** One pass over a range: a track list first, then frames (DTS from 0), then undefined. */
export interface FrameReader {
  next(): Promise<ShiftItem | undefined>;
  close(): void;
}

/** Opens the range again for each pass (the same frames in the same order each time). */
export type OpenFrames = () => Promise<{ reader: FrameReader; startWallMs: number } | undefined>;

/** A download: its size, its times, and its bytes [from, to] (read at each call). */
export interface Mp4Download {
  totalBytes: number;
  startWallMs: number;
  endWallMs: number;
  durationMs: number;
  bytes(from: number, to: number): AsyncGenerator<Buffer>;
}

interface TrackState {
  fmp4: Fmp4Track;
  stsd: Buffer;
  samples: ProgressiveSample[];
  chunks: ProgressiveChunk[];
  count: number;
  prev: Frame | undefined;
  lastDuration: number;
}

/** The order the frames go into the mdat: track, DTS and size of each, to check the second pass. */
interface Layout {
  trackIds: number[];
  dts90k: number[];
  sizes: number[];
}

/** The stsd of each fMP4 track, as the init segment writes them. */
function stsdOf(fmp4: readonly Fmp4Track[]): Map<number, Buffer> {
  const init = encodeInitSegment(fmp4);
  const ftyp = parseBoxHeader(init);
  const moov = parseMoov(init.subarray(ftyp?.size ?? 0));
  return new Map(moov.map((t) => [t.trackId, t.stsd]));
}

/**
 * The download of what `openFrames` reads, or undefined when it reads nothing fMP4 can carry.
 * The range ends where the track list changes.
 */
export async function framesMp4(openFrames: OpenFrames): Promise<Mp4Download | undefined> {
  const opened = await openFrames();
  if (opened === undefined) return undefined;
  const { reader, startWallMs } = opened;
  const states = new Map<number, TrackState>();
  const layout: Layout = { trackIds: [], dts90k: [], sizes: [] };
  let tracks: readonly Track[];
  let mdatBytes = 0;
  let lastTrack: number | undefined;
  try {
    const first = await reader.next();
    if (first?.kind !== 'tracks') return undefined;
    tracks = first.tracks;
    const fmp4 = first.tracks.map(fmp4TrackOf).filter((t): t is Fmp4Track => t !== undefined);
    if (fmp4.length === 0) return undefined;
    const stsd = stsdOf(fmp4);
    for (const t of fmp4) {
      states.set(t.feedTrackId, {
        fmp4: t,
        stsd: stsd.get(t.trackId) ?? Buffer.alloc(0),
        samples: [],
        chunks: [],
        count: 0,
        prev: undefined,
        lastDuration: t.kind === 'audio' ? 1024 : 3600,
      });
    }
    for (;;) {
      const item = await reader.next();
      if (item === undefined) break;
      if (item.kind === 'tracks') {
        if (sameTracks(tracks, item.tracks)) continue;
        break; // other tracks: the download ends here
      }
      const f = item.frame;
      const st = states.get(f.trackId);
      if (st === undefined) continue;
      if (st.count === 0 && st.fmp4.kind === 'video' && !f.keyframe) continue; // a video track starts on a keyframe
      if (layout.sizes.length >= MAX_DOWNLOAD_FRAMES) {
        throw new LimitExceededError(
          'frames in one MP4 download (ask for a shorter range)',
          layout.sizes.length + 1,
          MAX_DOWNLOAD_FRAMES,
        );
      }
      if (st.prev !== undefined) complete(st, f.dts90k);
      st.prev = f;
      if (lastTrack !== f.trackId || st.chunks.length === 0) {
        st.chunks.push({ firstSample: st.count, sampleCount: 0, mdatOffset: mdatBytes });
      }
      const chunk = st.chunks[st.chunks.length - 1] as ProgressiveChunk;
      chunk.sampleCount++;
      st.count++;
      lastTrack = f.trackId;
      mdatBytes += f.data.length;
      layout.trackIds.push(f.trackId);
      layout.dts90k.push(f.dts90k);
      layout.sizes.push(f.data.length);
    }
  } finally {
    reader.close();
  }
  // The last frame of each track lasts as long as the one before it.
  for (const st of states.values()) if (st.prev !== undefined) complete(st, undefined);
  const progressive: ProgressiveTrack[] = [...states.values()]
    .filter((st) => st.samples.length > 0)
    .map((st) => ({
      trackId: st.fmp4.trackId,
      kind: st.fmp4.kind,
      timescale: st.fmp4.timescale,
      width: st.fmp4.width,
      height: st.fmp4.height,
      stsd: st.stsd,
      samples: st.samples,
      chunks: st.chunks,
    }));
  if (progressive.length === 0) return undefined;
  const header = encodeProgressiveHeader(progressive, mdatBytes);
  const durationMs = Math.max(...progressive.map((t) => (t.samples.reduce((n, s) => n + s.duration, 0) * 1000) / t.timescale));
  return {
    totalBytes: header.length + mdatBytes,
    startWallMs,
    endWallMs: startWallMs + durationMs,
    durationMs,
    bytes: (from, to) => bytesOf(openFrames, header, layout, from, to),
  };
}

function complete(st: TrackState, nextDts90k: number | undefined): void {
  const p = st.prev;
  if (p === undefined) return;
  const ts = st.fmp4.timescale;
  const start = from90k(p.dts90k, ts);
  const duration = nextDts90k !== undefined ? Math.max(1, from90k(nextDts90k, ts) - start) : st.lastDuration;
  st.lastDuration = duration;
  st.samples.push({
    duration,
    size: p.data.length,
    compositionOffset: from90k(p.pts90k, ts) - start,
    keyframe: st.fmp4.kind === 'audio' || p.keyframe,
  });
  st.prev = undefined;
}

/** The bytes [from, to] of a download: its header, then the frames read again in the laid-out order. */
async function* bytesOf(
  openFrames: OpenFrames,
  header: Buffer,
  layout: Layout,
  from: number,
  to: number,
): AsyncGenerator<Buffer> {
  if (from < header.length) yield header.subarray(from, Math.min(header.length, to + 1));
  let at = header.length;
  if (at > to) return;
  const opened = await openFrames();
  if (opened === undefined) throw new Error('record: the stored media of this download is gone (overwritten or deleted)');
  const { reader } = opened;
  try {
    let k = 0;
    while (k < layout.sizes.length && at <= to) {
      const item = await reader.next();
      if (item === undefined)
        throw new Error(`record: the stored media of this download ended at frame ${k} of ${layout.sizes.length}`);
      if (item.kind !== 'frame') continue;
      const f = item.frame;
      if (f.trackId !== layout.trackIds[k] || f.dts90k !== layout.dts90k[k]) continue; // not laid out (another track, a leading frame)
      if (f.data.length !== layout.sizes[k])
        throw new Error(`record: frame ${k} of this download changed (the stored media was overwritten)`);
      k++;
      const end = at + f.data.length;
      if (end > from) yield f.data.subarray(Math.max(0, from - at), Math.min(f.data.length, to + 1 - at));
      at = end;
    }
  } finally {
    reader.close();
  }
}
