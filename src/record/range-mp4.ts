// A time range of a feed's fMP4 recordings as one progressive MP4 (moov first, complete sample
// tables): from the last fragment that starts (on a keyframe) at or before `start`, to the last
// frame before `end`, across files. The samples are not copied into memory: the plan says which
// byte ranges of which files follow the header, in order (one chunk per fragment and track).

import { open, type FileHandle } from 'node:fs/promises';
import { parseMoof, type Mp4TrackInfo } from '../formats/fmp4/read.js';
import {
  encodeProgressiveHeader,
  type ProgressiveChunk,
  type ProgressiveSample,
  type ProgressiveTrack,
} from '../formats/fmp4/progressive.js';
import { scanFmp4File, type FragmentInfo } from './fmp4-file.js';
import { current, type RecordingEntry } from './recording-index.js';

/** Bytes of one file that follow the header in the output. */
export interface RangePiece {
  path: string;
  position: number;
  length: number;
}

export interface RangePlan {
  header: Buffer;
  pieces: RangePiece[];
  totalBytes: number;
  /** Wall-clock times of the first video frame (a keyframe) and the end of the last frame. */
  startWallMs: number;
  endWallMs: number;
  /** Media duration of the longest track. */
  durationMs: number;
}

interface Located {
  path: string;
  info: FragmentInfo;
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

function sameTracks(a: readonly Mp4TrackInfo[], b: readonly Mp4TrackInfo[]): boolean {
  return a.length === b.length && a.every((t, i) => t.trackId === b[i]?.trackId && t.stsd.equals(b[i]?.stsd ?? Buffer.alloc(0)));
}

/**
 * The MP4 of [startMs, endMs) from `entries` (a feed's recordings), or undefined when no fMP4
 * recording holds any of it. Files whose tracks differ from the first one's end the range there.
 */
export async function planMp4Range(
  entries: readonly RecordingEntry[],
  startMs: number,
  endMs: number,
): Promise<RangePlan | undefined> {
  const files = entries
    .map(current)
    .filter((e) => e.format === 'fmp4' && e.bytes > 0 && e.endWallMs > startMs && e.startWallMs < endMs)
    .sort((a, b) => a.startWallMs - b.startWallMs);
  let tracks: Mp4TrackInfo[] | undefined;
  const fragments: Located[] = [];
  for (const f of files) {
    const info = await scanFmp4File(f.path);
    tracks ??= info.tracks;
    if (!sameTracks(tracks, info.tracks)) break;
    for (const frag of info.fragments) fragments.push({ path: f.path, info: frag });
  }
  if (tracks === undefined) return undefined;
  const media = tracks.filter((t): t is Mp4TrackInfo & { kind: 'video' | 'audio' } => t.kind !== 'other');
  const ref = media.find((t) => t.kind === 'video') ?? media[0];
  if (ref === undefined) return undefined;

  // From the last fragment starting on a keyframe at or before `start` (the first one if none does).
  let first = fragments.findIndex((f) => f.info.startsWithKey && f.info.wallMs + f.info.durationMs > startMs);
  for (let i = first; i >= 0 && i < fragments.length; i--) {
    const f = fragments[i] as Located;
    if (f.info.startsWithKey && f.info.wallMs <= startMs) {
      first = i;
      break;
    }
  }
  if (first < 0) return undefined;

  const out = new Map<number, { samples: ProgressiveSample[]; chunks: ProgressiveChunk[] }>(
    media.map((t) => [t.trackId, { samples: [], chunks: [] }]),
  );
  const pieces: RangePiece[] = [];
  let mdatOffset = 0;
  let startWallMs: number | undefined;
  let endWallMs = 0;
  const handles = new Map<string, FileHandle>();
  try {
    for (let i = first; i < fragments.length; i++) {
      const { path, info } = fragments[i] as Located;
      if (info.wallMs >= endMs) break;
      let fh = handles.get(path);
      if (fh === undefined) {
        fh = await open(path, 'r');
        handles.set(path, fh);
      }
      const trafs = parseMoof(await readAt(fh, info.moofOffset, info.moofSize));
      const refTraf = trafs.find((t) => t.trackId === ref.trackId) ?? trafs[0];
      const refTrack = media.find((t) => t.trackId === refTraf?.trackId);
      if (refTraf === undefined || refTrack === undefined) continue;
      const refBaseSeconds = refTraf.baseDecodeTime / refTrack.timescale;
      for (const traf of trafs) {
        const track = media.find((t) => t.trackId === traf.trackId);
        const o = out.get(traf.trackId);
        if (track === undefined || o === undefined) continue;
        let decode = traf.baseDecodeTime;
        let offset = info.moofOffset + traf.dataOffset;
        let chunkStart: number | undefined;
        let chunkBytes = 0;
        const firstSample = o.samples.length;
        for (const s of traf.samples) {
          const wall = info.wallMs + (decode / track.timescale - refBaseSeconds) * 1000;
          // Video from the first fragment's keyframe; audio from that keyframe's time; both until `end`.
          const keep = wall < endMs && (track.trackId === ref.trackId || startWallMs === undefined || wall >= startWallMs - 1);
          if (keep) {
            if (track.trackId === ref.trackId) startWallMs ??= wall;
            chunkStart ??= offset;
            chunkBytes += s.size;
            o.samples.push({ duration: s.duration, size: s.size, compositionOffset: s.compositionOffset, keyframe: s.keyframe });
            endWallMs = Math.max(endWallMs, wall + (s.duration * 1000) / track.timescale);
          } else if (chunkStart !== undefined) {
            break; // the samples kept are contiguous: past `end` nothing more of this track
          }
          decode += s.duration;
          offset += s.size;
        }
        if (chunkStart !== undefined && chunkBytes > 0) {
          o.chunks.push({ firstSample, sampleCount: o.samples.length - firstSample, mdatOffset });
          pieces.push({ path, position: chunkStart, length: chunkBytes });
          mdatOffset += chunkBytes;
        }
      }
    }
  } finally {
    await Promise.all([...handles.values()].map((fh) => fh.close()));
  }
  if (startWallMs === undefined) return undefined;
  const progressive: ProgressiveTrack[] = media
    .map((t) => ({
      trackId: t.trackId,
      kind: t.kind,
      timescale: t.timescale,
      width: t.width,
      height: t.height,
      stsd: t.stsd,
      samples: out.get(t.trackId)?.samples ?? [],
      chunks: out.get(t.trackId)?.chunks ?? [],
    }))
    .filter((t) => t.samples.length > 0);
  const header = encodeProgressiveHeader(progressive, mdatOffset);
  const durationMs = Math.max(...progressive.map((t) => (t.samples.reduce((n, s) => n + s.duration, 0) * 1000) / t.timescale));
  return { header, pieces, totalBytes: header.length + mdatOffset, startWallMs, endWallMs, durationMs };
}
