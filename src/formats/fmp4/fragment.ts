// One movie fragment (ISO/IEC 14496-12 8.8.4-8.8.12, CMAF chunk): moof (mfhd + one traf per
// track: tfhd default-base-is-moof, tfdt v1, trun v1 with per-sample duration, size, flags and
// composition offset) followed by mdat. H.264/H.265 payloads are already length-prefixed.

import type { ByteWriter } from '../bytes/byte-writer.js';
import { box, containerBox, encodeBoxes, fullBox, type Box } from './box.js';

export interface Fmp4Sample {
  /** In the track's timescale. */
  readonly duration: number;
  /** pts - dts in the track's timescale (may be negative only in theory: trun v1 is signed). */
  readonly compositionOffset: number;
  readonly keyframe: boolean;
  readonly data: Buffer;
}

export interface TrackRun {
  /** track_ID (1-based). */
  readonly trackId: number;
  /** Decode time of the first sample, in the track's timescale. */
  readonly baseDecodeTime: number;
  readonly samples: readonly Fmp4Sample[];
}

/** sample_flags (8.8.3.1): a sync sample depends on nothing; others depend on others and are not sync. */
export const SYNC_SAMPLE_FLAGS = 0x02000000;
export const NON_SYNC_SAMPLE_FLAGS = 0x01010000;

const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
const TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800; // data offset, duration, size, flags, cto
const TRUN_SAMPLE_SIZE = 16;

/** mfhd (8.8.5): sequence_number. */
export function mfhdBox(sequenceNumber: number): Box {
  return fullBox('mfhd', 0, 0, 4, (w) => w.u32(sequenceNumber));
}

/** tfhd (8.8.7): track_ID; the base data offset is the start of the moof. */
export function tfhdBox(trackId: number): Box {
  return fullBox('tfhd', 0, TFHD_DEFAULT_BASE_IS_MOOF, 4, (w) => w.u32(trackId));
}

/** tfdt v1 (8.8.12): baseMediaDecodeTime, 64-bit. */
export function tfdtBox(baseDecodeTime: number): Box {
  return fullBox('tfdt', 1, 0, 8, (w) => w.u64(baseDecodeTime));
}

/** trun v1 (8.8.8): sample_count, data_offset, then {duration, size, flags, composition offset} per sample. */
export function trunBox(samples: readonly Fmp4Sample[], dataOffset: number): Box {
  return fullBox('trun', 1, TRUN_FLAGS, 8 + samples.length * TRUN_SAMPLE_SIZE, (w: ByteWriter) => {
    w.u32(samples.length);
    w.u32(dataOffset >>> 0);
    for (const s of samples) {
      w.u32(s.duration);
      w.u32(s.data.length);
      w.u32(s.keyframe ? SYNC_SAMPLE_FLAGS : NON_SYNC_SAMPLE_FLAGS);
      w.u32(s.compositionOffset >>> 0);
    }
  });
}

function trafBox(run: TrackRun, dataOffset: number): Box {
  return containerBox('traf', [tfhdBox(run.trackId), tfdtBox(run.baseDecodeTime), trunBox(run.samples, dataOffset)]);
}

/** moof whose trun data offsets point into the mdat that follows it. */
export function moofBox(sequenceNumber: number, runs: readonly TrackRun[]): Box {
  // The moof's size does not depend on the offsets' values, so measure it with zeros first.
  const moofSize = containerBox('moof', [mfhdBox(sequenceNumber), ...runs.map((r) => trafBox(r, 0))]).size;
  let offset = moofSize + 8; // past the mdat header
  const trafs: Box[] = [];
  for (const run of runs) {
    trafs.push(trafBox(run, offset));
    offset += run.samples.reduce((n, s) => n + s.data.length, 0);
  }
  return containerBox('moof', [mfhdBox(sequenceNumber), ...trafs]);
}

/** mdat (8.1.1): every sample of the first run, then of the next. */
export function mdatBox(runs: readonly TrackRun[]): Box {
  let size = 0;
  for (const run of runs) for (const s of run.samples) size += s.data.length;
  return box('mdat', size, (w) => {
    for (const run of runs) for (const s of run.samples) w.bytes(s.data);
  });
}

/** moof + mdat for the given runs (runs without samples are left out). */
export function encodeFragment(sequenceNumber: number, runs: readonly TrackRun[]): Buffer {
  const nonEmpty = runs.filter((r) => r.samples.length > 0);
  return encodeBoxes([moofBox(sequenceNumber, nonEmpty), mdatBox(nonEmpty)]);
}
