// A progressive (non-fragmented) MP4 header: ftyp + moov with complete sample tables (ISO/IEC
// 14496-12 8.6.1.2 stts, 8.6.1.3 ctts, 8.6.2 stss, 8.7.3 stsz, 8.7.4 stsc, 8.7.5 co64) + the mdat
// header; the samples follow in chunks. The moov comes first, so a player can seek at once.

import { box, containerBox, encodeBoxes, fullBox, UNITY_MATRIX, type Box } from './box.js';
import { dinfBox, ftypBox, hdlrBox, smhdBox, vmhdBox } from './init-segment.js';

const MOVIE_TIMESCALE = 1000;

export interface ProgressiveSample {
  duration: number;
  size: number;
  compositionOffset: number;
  keyframe: boolean;
}

/** A run of samples stored one after the other in the mdat. */
export interface ProgressiveChunk {
  /** Index of the chunk's first sample in the track's samples. */
  firstSample: number;
  sampleCount: number;
  /** Offset of the chunk from the start of the mdat payload. */
  mdatOffset: number;
}

export interface ProgressiveTrack {
  trackId: number;
  kind: 'video' | 'audio';
  timescale: number;
  width: number;
  height: number;
  /** The sample description box (stsd) as a recording has it. */
  stsd: Buffer;
  samples: readonly ProgressiveSample[];
  chunks: readonly ProgressiveChunk[];
}

function trackDuration(t: ProgressiveTrack): number {
  let d = 0;
  for (const s of t.samples) d += s.duration;
  return d;
}

/** mvhd v1 (8.2.2): 64-bit times and duration. */
function mvhdBox(durationMs: number, nextTrackId: number): Box {
  return fullBox('mvhd', 1, 0, 108, (w) => {
    w.u64(0).u64(0); // creation_time, modification_time
    w.u32(MOVIE_TIMESCALE).u64(durationMs);
    w.u32(0x00010000).u16(0x0100).fill(0, 10); // rate 1.0, volume 1.0, reserved
    for (const v of UNITY_MATRIX) w.u32(v);
    w.fill(0, 24); // pre_defined
    w.u32(nextTrackId);
  });
}

/** tkhd v1 (8.3.2), enabled and in the movie, with its duration in the movie timescale. */
function tkhdBox(t: ProgressiveTrack, durationMs: number): Box {
  return fullBox('tkhd', 1, 0x000003, 92, (w) => {
    w.u64(0).u64(0); // creation_time, modification_time
    w.u32(t.trackId).u32(0); // track_ID, reserved
    w.u64(durationMs);
    w.fill(0, 8); // reserved
    w.u16(0).u16(0); // layer, alternate_group
    w.u16(t.kind === 'audio' ? 0x0100 : 0).u16(0); // volume, reserved
    for (const v of UNITY_MATRIX) w.u32(v);
    w.u32(t.width * 0x10000).u32(t.height * 0x10000);
  });
}

/** mdhd v1 (8.4.2): the track's timescale and duration, language "und". */
function mdhdBox(t: ProgressiveTrack, duration: number): Box {
  return fullBox('mdhd', 1, 0, 32, (w) => {
    w.u64(0).u64(0).u32(t.timescale).u64(duration);
    w.u16(0x55c4).u16(0);
  });
}

/** stts: (sample_count, sample_delta) runs. */
function sttsBox(samples: readonly ProgressiveSample[]): Box {
  const runs: [number, number][] = [];
  for (const s of samples) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] === s.duration) last[0]++;
    else runs.push([1, s.duration]);
  }
  return fullBox('stts', 0, 0, 4 + runs.length * 8, (w) => {
    w.u32(runs.length);
    for (const [n, d] of runs) w.u32(n).u32(d);
  });
}

/** ctts v1 (signed offsets): (sample_count, sample_offset) runs; undefined when every offset is 0. */
function cttsBox(samples: readonly ProgressiveSample[]): Box | undefined {
  if (samples.every((s) => s.compositionOffset === 0)) return undefined;
  const runs: [number, number][] = [];
  for (const s of samples) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] === s.compositionOffset) last[0]++;
    else runs.push([1, s.compositionOffset]);
  }
  return fullBox('ctts', 1, 0, 4 + runs.length * 8, (w) => {
    w.u32(runs.length);
    for (const [n, o] of runs) w.u32(n).u32(o >>> 0);
  });
}

/** stss: 1-based numbers of the sync samples; undefined when all are (audio). */
function stssBox(samples: readonly ProgressiveSample[]): Box | undefined {
  if (samples.every((s) => s.keyframe)) return undefined;
  const sync: number[] = [];
  samples.forEach((s, i) => {
    if (s.keyframe) sync.push(i + 1);
  });
  return fullBox('stss', 0, 0, 4 + sync.length * 4, (w) => {
    w.u32(sync.length);
    for (const n of sync) w.u32(n);
  });
}

/** stsc: (first_chunk, samples_per_chunk, sample_description_index) where the count changes. */
function stscBox(chunks: readonly ProgressiveChunk[]): Box {
  const entries: [number, number][] = [];
  chunks.forEach((c, i) => {
    if (entries[entries.length - 1]?.[1] !== c.sampleCount) entries.push([i + 1, c.sampleCount]);
  });
  return fullBox('stsc', 0, 0, 4 + entries.length * 12, (w) => {
    w.u32(entries.length);
    for (const [first, count] of entries) w.u32(first).u32(count).u32(1);
  });
}

function stszBox(samples: readonly ProgressiveSample[]): Box {
  return fullBox('stsz', 0, 0, 8 + samples.length * 4, (w) => {
    w.u32(0).u32(samples.length);
    for (const s of samples) w.u32(s.size);
  });
}

function co64Box(chunks: readonly ProgressiveChunk[], mdatPayloadStart: number): Box {
  return fullBox('co64', 0, 0, 4 + chunks.length * 8, (w) => {
    w.u32(chunks.length);
    for (const c of chunks) w.u64(mdatPayloadStart + c.mdatOffset);
  });
}

function rawBox(bytes: Buffer): Box {
  return { size: bytes.length, write: (w) => w.bytes(bytes) };
}

function moovBox(tracks: readonly ProgressiveTrack[], mdatPayloadStart: number): Box {
  const durationMs = Math.max(0, ...tracks.map((t) => Math.round((trackDuration(t) * MOVIE_TIMESCALE) / t.timescale)));
  const nextTrackId = Math.max(0, ...tracks.map((t) => t.trackId)) + 1;
  const traks = tracks.map((t) => {
    const d = trackDuration(t);
    const stbl = containerBox(
      'stbl',
      [
        rawBox(t.stsd),
        sttsBox(t.samples),
        cttsBox(t.samples),
        stssBox(t.samples),
        stscBox(t.chunks),
        stszBox(t.samples),
        co64Box(t.chunks, mdatPayloadStart),
      ].filter((b): b is Box => b !== undefined),
    );
    const minf = containerBox('minf', [t.kind === 'video' ? vmhdBox() : smhdBox(), dinfBox(), stbl]);
    const mdia = containerBox('mdia', [mdhdBox(t, d), hdlrBox(t.kind), minf]);
    return containerBox('trak', [tkhdBox(t, Math.round((d * MOVIE_TIMESCALE) / t.timescale)), mdia]);
  });
  return containerBox('moov', [mvhdBox(durationMs, nextTrackId), ...traks]);
}

/** ftyp + moov + the header of an mdat of `mdatPayloadBytes` (64-bit size): the samples follow. */
export function encodeProgressiveHeader(tracks: readonly ProgressiveTrack[], mdatPayloadBytes: number): Buffer {
  const ftyp = ftypBox();
  // co64 offsets do not change the moov's size: measure it first, then write it with the real offsets.
  const moovSize = moovBox(tracks, 0).size;
  const mdatHeaderSize = 16;
  const mdatPayloadStart = ftyp.size + moovSize + mdatHeaderSize;
  const mdat = box('mdat', 8, (w) => w.u64(mdatHeaderSize + mdatPayloadBytes));
  // A 64-bit mdat: size field 1, then the largesize written as the "payload".
  const header = encodeBoxes([ftyp, moovBox(tracks, mdatPayloadStart), mdat]);
  header.writeUInt32BE(1, header.length - 16);
  return header;
}
