// Frames of one recording segment -> fMP4 fragments (ISO/IEC 14496-12 8.8). A sample's duration is
// the distance to the next frame of its track, so the newest frame of each track waits for the
// next one; a fragment is what is complete when the caller cuts (at each video keyframe). Pure:
// no I/O; the byte layout is made later, off the hot path (encodeRecordedFragment).

import { encodeBoxes } from '../formats/fmp4/box.js';
import { moofBox, type Fmp4Sample, type TrackRun } from '../formats/fmp4/fragment.js';
import type { Fmp4Track } from '../formats/fmp4/init-segment.js';
import { prftBox } from '../formats/fmp4/read.js';
import type { Frame } from '../media/frame.js';
import { from90k } from '../media/timebase.js';

/** One fragment ready to be laid out: its runs reference the frames' bytes (no copy yet). */
export interface PendingFragment {
  sequence: number;
  runs: TrackRun[];
  /** Wall-clock time of the reference track's first sample, and that sample's decode time. */
  prft: { trackId: number; wallMs: number; mediaTime: number };
  bytes: number;
  /** Decode time of the first sample of the reference track, 90 kHz relative to the segment start. */
  startRel90k: number;
  /** Duration of the fragment on the reference track, 90 kHz. */
  duration90k: number;
}

interface TrackState {
  track: Fmp4Track;
  pending: { frame: Frame; wallMs: number } | undefined;
  samples: Fmp4Sample[];
  firstDecodeTime: number | undefined;
  firstWallMs: number | undefined;
  lastDuration: number;
}

export class Fragmenter {
  readonly tracks: readonly Fmp4Track[];
  /** Feed DTS of the segment's time 0. */
  readonly baseDts90k: number;
  private readonly byFeedTrack = new Map<number, TrackState>();
  private readonly reference: TrackState;
  private sequence = 1;
  /** Frames older than the segment start (audio interleaved before the first keyframe): left out. */
  framesBeforeStart = 0;

  constructor(tracks: readonly Fmp4Track[], baseDts90k: number) {
    this.tracks = tracks;
    this.baseDts90k = baseDts90k;
    for (const t of tracks) {
      this.byFeedTrack.set(t.feedTrackId, {
        track: t,
        pending: undefined,
        samples: [],
        firstDecodeTime: undefined,
        firstWallMs: undefined,
        lastDuration: t.kind === 'audio' ? 1024 : 3600,
      });
    }
    const ref = tracks.find((t) => t.kind === 'video') ?? tracks[0];
    if (ref === undefined) throw new Error('record: a fragmenter needs at least one track');
    this.reference = this.byFeedTrack.get(ref.feedTrackId) as TrackState;
  }

  carries(trackId: number): boolean {
    return this.byFeedTrack.has(trackId);
  }

  /** Adds one frame; the previous frame of its track becomes a complete sample. */
  add(frame: Frame, wallMs: number): void {
    const s = this.byFeedTrack.get(frame.trackId);
    if (s === undefined) return;
    if (frame.dts90k < this.baseDts90k) {
      this.framesBeforeStart++;
      return;
    }
    if (s.pending !== undefined) this.complete(s, this.decodeTime(s, frame.dts90k));
    s.pending = { frame, wallMs };
  }

  /** The complete samples as a fragment (the newest frame of each track stays for the next one). */
  cut(): PendingFragment | undefined {
    return this.take();
  }

  /**
   * Everything (end of segment): the newest frame of `next`'s track lasts until `next` (the first
   * frame of the next segment), the others as long as the frame before them.
   */
  finish(next?: Frame): PendingFragment | undefined {
    for (const s of this.byFeedTrack.values()) {
      if (s.pending === undefined) continue;
      const fallback = this.decodeTime(s, s.pending.frame.dts90k) + s.lastDuration;
      this.complete(s, next !== undefined && next.trackId === s.track.feedTrackId ? this.decodeTime(s, next.dts90k) : fallback);
    }
    return this.take();
  }

  private decodeTime(s: TrackState, dts90k: number): number {
    return from90k(dts90k - this.baseDts90k, s.track.timescale);
  }

  private complete(s: TrackState, nextDecodeTime: number): void {
    const p = s.pending;
    if (p === undefined) return;
    const start = this.decodeTime(s, p.frame.dts90k);
    const duration = Math.max(1, nextDecodeTime - start);
    s.lastDuration = duration;
    s.firstDecodeTime ??= start;
    s.firstWallMs ??= p.wallMs;
    s.samples.push({
      duration,
      compositionOffset: from90k(p.frame.pts90k - this.baseDts90k, s.track.timescale) - start,
      keyframe: s.track.kind === 'audio' || p.frame.keyframe,
      data: p.frame.data,
    });
    s.pending = undefined;
  }

  private take(): PendingFragment | undefined {
    const runs: TrackRun[] = [];
    let bytes = 0;
    for (const s of this.byFeedTrack.values()) {
      if (s.samples.length === 0 || s.firstDecodeTime === undefined) continue;
      runs.push({ trackId: s.track.trackId, baseDecodeTime: s.firstDecodeTime, samples: s.samples });
      for (const x of s.samples) bytes += x.data.length;
    }
    const ref =
      this.reference.samples.length > 0 ? this.reference : [...this.byFeedTrack.values()].find((s) => s.samples.length > 0);
    if (ref === undefined || ref.firstDecodeTime === undefined || ref.firstWallMs === undefined) return undefined;
    const ts = ref.track.timescale;
    const fragment: PendingFragment = {
      sequence: this.sequence++,
      runs,
      prft: { trackId: ref.track.trackId, wallMs: ref.firstWallMs, mediaTime: ref.firstDecodeTime },
      bytes,
      startRel90k: Math.round((ref.firstDecodeTime * 90_000) / ts),
      duration90k: Math.round((ref.samples.reduce((n, x) => n + x.duration, 0) * 90_000) / ts),
    };
    for (const s of this.byFeedTrack.values()) {
      s.samples = [];
      s.firstDecodeTime = undefined;
      s.firstWallMs = undefined;
    }
    return fragment;
  }
}

/**
 * prft + moof + the mdat header, then the samples' own buffers: written with one writev, so the
 * frames are not copied again, and a fragment reaches the file whole or (after a crash) cut, which
 * the start-up repair drops.
 */
export function encodeRecordedFragment(f: PendingFragment): Buffer[] {
  const mdatHeader = Buffer.allocUnsafe(8);
  mdatHeader.writeUInt32BE(8 + f.bytes, 0);
  mdatHeader.write('mdat', 4, 'latin1');
  const head = encodeBoxes([prftBox(f.prft), moofBox(f.sequence, f.runs)]);
  const out = [head, mdatHeader];
  for (const run of f.runs) for (const s of run.samples) out.push(s.data);
  return out;
}
