// Reads a recorded fragmented MP4 file back: its tracks and, per fragment, where it lies and what
// wall-clock time it starts at (its prft box). With `repair`, a file cut by a crash (kill -9,
// power loss) is truncated after its last complete fragment, so it ends cleanly.

import { open, type FileHandle } from 'node:fs/promises';
import { FeedcastError, MalformedInputError } from '../errors.js';
import { parseBoxHeader, parseMoof, parseMoov, parsePrft, type Mp4TrackInfo, type TrackFragment } from '../formats/fmp4/read.js';

/** Boxes larger than this are not read into memory (moov, moof and prft are a few KiB). */
const MAX_META_BOX_BYTES = 16 * 1024 * 1024;

export interface FragmentInfo {
  /** Offset of the fragment's first box (its prft). */
  start: number;
  /** Offset of the moof in the file, and of the first byte after its mdat. */
  moofOffset: number;
  moofSize: number;
  end: number;
  /** Wall-clock time of the reference track's first sample (prft), and the fragment's duration on it. */
  wallMs: number;
  durationMs: number;
  /** Whether the reference track's first sample is a sync sample (fragments start at keyframes). */
  startsWithKey: boolean;
  /** The reference track (its prft's) and the decode time of its first sample, in its timescale. */
  refTrackId: number;
  refBaseDecodeTime: number;
}

export interface Fmp4FileInfo {
  tracks: Mp4TrackInfo[];
  fragments: FragmentInfo[];
  /** Bytes up to the end of the last complete fragment. */
  validBytes: number;
  /** Bytes after it that a repair cut (0 when the file ended cleanly). */
  cutBytes: number;
  startWallMs: number | undefined;
  endWallMs: number | undefined;
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** Walks the top-level boxes of a recording; `repair` truncates an incomplete tail. */
export async function scanFmp4File(path: string, options: { repair?: boolean } = {}): Promise<Fmp4FileInfo> {
  const fh = await open(path, options.repair === true ? 'r+' : 'r');
  try {
    const size = (await fh.stat()).size;
    let at = 0;
    let tracks: Mp4TrackInfo[] | undefined;
    let prft: { wallMs: number; mediaTime: number; trackId: number; offset: number } | undefined;
    let moof: { offset: number; size: number; trafs: TrackFragment[] } | undefined;
    const fragments: FragmentInfo[] = [];
    let validBytes = 0;
    for (;;) {
      if (size - at < 8) break;
      const head = await readAt(fh, at, 16);
      let h;
      try {
        h = parseBoxHeader(head);
      } catch (err) {
        if (err instanceof MalformedInputError) break; // garbage: the rest is cut
        throw err;
      }
      if (h === undefined || at + h.size > size) break; // the box is cut
      const isMeta = h.type === 'moov' || h.type === 'moof' || h.type === 'prft';
      if (isMeta && h.size > MAX_META_BOX_BYTES) break;
      if (h.type === 'moov') tracks = parseMoov(await readAt(fh, at, h.size));
      else if (h.type === 'prft') prft = { ...parsePrft(await readAt(fh, at, h.size)), offset: at };
      else if (h.type === 'moof') moof = { offset: at, size: h.size, trafs: parseMoof(await readAt(fh, at, h.size)) };
      else if (h.type === 'mdat' && moof !== undefined && tracks !== undefined) {
        const frag = describeFragment(tracks, moof, prft, at + h.size);
        if (frag !== undefined) fragments.push(frag);
        moof = undefined;
        prft = undefined;
      }
      at += h.size;
      // ftyp + moov make a valid (empty) file; after that, only whole fragments count.
      if (h.type === 'moov' || h.type === 'mdat' || h.type === 'ftyp') validBytes = at;
    }
    if (tracks === undefined) {
      throw new MalformedInputError('mp4', 0, `${path} has no complete moov: not a recording (or cut before its first bytes)`);
    }
    const cutBytes = size - validBytes;
    if (cutBytes > 0 && options.repair === true) await fh.truncate(validBytes);
    const last = fragments[fragments.length - 1];
    return {
      tracks,
      fragments,
      validBytes,
      cutBytes,
      startWallMs: fragments[0]?.wallMs,
      endWallMs: last !== undefined ? last.wallMs + last.durationMs : undefined,
    };
  } finally {
    await fh.close();
  }
}

function describeFragment(
  tracks: readonly Mp4TrackInfo[],
  moof: { offset: number; size: number; trafs: TrackFragment[] },
  prft: { wallMs: number; mediaTime: number; trackId: number; offset: number } | undefined,
  end: number,
): FragmentInfo | undefined {
  if (prft === undefined) return undefined; // not one of ours: no wall-clock time
  const traf = moof.trafs.find((t) => t.trackId === prft.trackId) ?? moof.trafs[0];
  const track = tracks.find((t) => t.trackId === traf?.trackId);
  if (traf === undefined || track === undefined) return undefined;
  const duration = traf.samples.reduce((n, s) => n + s.duration, 0);
  const wallMs = prft.wallMs + ((traf.baseDecodeTime - prft.mediaTime) * 1000) / track.timescale;
  return {
    start: prft.offset,
    moofOffset: moof.offset,
    moofSize: moof.size,
    end,
    wallMs,
    durationMs: (duration * 1000) / track.timescale,
    startsWithKey: traf.samples[0]?.keyframe ?? false,
    refTrackId: traf.trackId,
    refBaseDecodeTime: traf.baseDecodeTime,
  };
}

/** Why a recording cannot be read, for logs: the FeedcastError message or the system error. */
export function describeScanError(err: unknown): string {
  if (err instanceof FeedcastError) return err.message;
  return err instanceof Error ? err.message : String(err);
}
