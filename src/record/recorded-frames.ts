// fMP4 recordings read back as Frames, so any output (TS, FLV, RTP, progressive MP4) can play them:
// fragment by fragment, the moof's sample tables over the mdat bytes, the tracks from the moov's
// sample entries (formats/fmp4/sample-entry.ts), each frame with its wall-clock time from the
// fragment's prft. Reads are bounded; bad bytes give typed errors. (TS recordings: ts-recording.ts.)

import type { FileHandle } from 'node:fs/promises';
import { LimitExceededError, MalformedInputError } from '../errors.js';
import { parseMoof, type Mp4TrackInfo } from '../formats/fmp4/read.js';
import { parseSampleEntry } from '../formats/fmp4/sample-entry.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import { to90k } from '../media/timebase.js';
import type { FragmentInfo } from './fmp4-file.js';

/** A fragment (one GOP) larger than this is not one of ours: refused rather than read into memory. */
export const MAX_FRAGMENT_BYTES = 64 * 1024 * 1024;

/** A frame of a recording, with its wall-clock time (ms since the epoch). */
export interface RecordedFrame {
  frame: Frame;
  wallMs: number;
}

/** The feed tracks of an fMP4 recording (fMP4 track id − 1), with the timescale of each. */
export interface RecordedTracks {
  tracks: Track[];
  byMp4Id: Map<number, { track: Track; timescale: number }>;
}

export function tracksOfFmp4(mp4Tracks: readonly Mp4TrackInfo[]): RecordedTracks {
  const tracks: Track[] = [];
  const byMp4Id = new Map<number, { track: Track; timescale: number }>();
  for (const t of mp4Tracks) {
    if (t.kind === 'other') continue;
    const track = parseSampleEntry(t.stsd, t.trackId - 1);
    if (track === undefined) continue;
    tracks.push(track);
    byMp4Id.set(t.trackId, { track, timescale: t.timescale });
  }
  return { tracks, byMp4Id };
}

async function readExactly(fh: FileHandle, position: number, length: number, what: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0)
      throw new MalformedInputError('mp4', position + done, `${what} ends early (the file was cut or deleted)`);
    done += bytesRead;
  }
  return buf;
}

/**
 * The frames of one fragment of an open recording, in decode order across tracks, with times on
 * the file's clock (90 kHz, its time 0 is the file's first frame) and wall-clock times from its prft.
 */
export async function readFragmentFrames(fh: FileHandle, frag: FragmentInfo, tracks: RecordedTracks): Promise<RecordedFrame[]> {
  const bytes = frag.end - frag.moofOffset;
  if (bytes > MAX_FRAGMENT_BYTES) {
    throw new LimitExceededError('recorded fragment bytes', bytes, MAX_FRAGMENT_BYTES);
  }
  const buf = await readExactly(fh, frag.moofOffset, bytes, 'a fragment');
  const trafs = parseMoof(buf.subarray(0, frag.moofSize));
  const ref = tracks.byMp4Id.get(frag.refTrackId);
  // Wall time of the file's time 0: the prft dates the reference track's first sample.
  const zeroWallMs = frag.wallMs - (ref !== undefined ? (frag.refBaseDecodeTime * 1000) / ref.timescale : 0);
  const out: RecordedFrame[] = [];
  for (const traf of trafs) {
    const t = tracks.byMp4Id.get(traf.trackId);
    if (t === undefined) continue;
    let decode = traf.baseDecodeTime;
    let offset = traf.dataOffset;
    for (const s of traf.samples) {
      if (offset < frag.moofSize || offset + s.size > bytes) {
        throw new MalformedInputError(
          'mp4',
          frag.moofOffset + offset,
          `a sample of ${s.size} bytes lies outside its fragment's mdat`,
        );
      }
      const dts90k = to90k(decode, t.timescale);
      out.push({
        frame: {
          trackId: t.track.id,
          dts90k,
          pts90k: to90k(decode + s.compositionOffset, t.timescale),
          keyframe: t.track.kind === 'audio' || s.keyframe,
          data: buf.subarray(offset, offset + s.size),
        },
        wallMs: zeroWallMs + dts90k / 90,
      });
      decode += s.duration;
      offset += s.size;
    }
  }
  // Decode order across tracks (stable: within a track the order is the file's).
  return out.sort((a, b) => a.frame.dts90k - b.frame.dts90k);
}
