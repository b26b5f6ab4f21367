// An HLS VOD view of a time range a feed holds (docs/hls.md, "Time ranges"): the keyframes of the
// stored media grouped into segments, each named by where it lies in that media and where it goes
// on the playlist's timeline, so any server or cache answers a segment URL without other state.

/** Which stored media a VOD playlist reads: the fMP4 recordings, or the FeedFile ring. */
export type VodSourceKind = 'rec' | 'ring';

/** A keyframe a segment may start at, as a source finds it. */
export interface VodCut {
  /** Where it is in the stored media (source-specific: digits, dots). */
  at: string;
  wallMs: number;
  /** Media time up to the next cut (or the end), 90 kHz. */
  duration90k: number;
  /** A new file or run starts here (or a gap lies before it): a segment must start here. */
  breakBefore: boolean;
}

export interface VodSegment {
  /** Where its first keyframe is in the stored media. */
  at: string;
  /** Wall-clock time of that keyframe (EXT-X-PROGRAM-DATE-TIME). */
  wallMs: number;
  /** Position on the playlist's timeline (the sum of the segments before it), 90 kHz. */
  out90k: number;
  /** Media time it holds, 90 kHz: the frames from the keyframe up to this much later. */
  dur90k: number;
}

export interface VodPlan {
  source: VodSourceKind;
  segments: VodSegment[];
  /** Wall-clock times of the first keyframe and of the end of the last segment. */
  startWallMs: number;
  endWallMs: number;
}

/** Groups cuts into segments of at least `targetMs` (a segment never crosses a break). */
export function groupSegments(source: VodSourceKind, cuts: readonly VodCut[], targetMs: number): VodPlan | undefined {
  const first = cuts[0];
  if (first === undefined) return undefined;
  const target90k = targetMs * 90;
  const segments: VodSegment[] = [];
  let out90k = 0;
  let open: VodSegment | undefined;
  for (const c of cuts) {
    if (c.duration90k <= 0) continue;
    if (open === undefined || c.breakBefore || open.dur90k >= target90k) {
      if (open !== undefined) out90k += open.dur90k;
      open = { at: c.at, wallMs: c.wallMs, out90k, dur90k: 0 };
      segments.push(open);
    }
    open.dur90k += c.duration90k;
  }
  const last = segments[segments.length - 1];
  if (last === undefined) return undefined;
  return { source, segments, startWallMs: segments[0]?.wallMs ?? first.wallMs, endWallMs: last.wallMs + last.dur90k / 90 };
}

const AT = /^\d{1,15}(\.\d{1,15})?$/;
const MAX_SEGMENT_90K = 600 * 90_000;
const MAX_RANGE_90K = 24 * 3600 * 90_000;
const NUMBER = /^\d{1,15}$/;

/** `rec-AT-OUT-DUR.m4s`: a segment's file name. */
export function vodSegmentName(source: VodSourceKind, s: VodSegment): string {
  return `${source}-${s.at}-${Math.round(s.out90k)}-${Math.round(s.dur90k)}.m4s`;
}

/** `rec-AT-init.mp4`: the initialization section of the media at AT. */
export function vodInitName(source: VodSourceKind, at: string): string {
  return `${source}-${at}-init.mp4`;
}

export type VodFile =
  | { kind: 'init'; source: VodSourceKind; at: string }
  | { kind: 'segment'; source: VodSourceKind; at: string; out90k: number; dur90k: number };

/** The file a VOD name asks for, or undefined when the name is not one this server makes. */
export function parseVodFileName(name: string): VodFile | undefined {
  const parts = name.split('-');
  const source = parts[0];
  if (source !== 'rec' && source !== 'ring') return undefined;
  const at = parts[1] ?? '';
  if (!AT.test(at)) return undefined;
  if (parts.length === 3 && parts[2] === 'init.mp4') return { kind: 'init', source, at };
  const out = parts[2] ?? '';
  const dur = (parts[3] ?? '').replace(/\.m4s$/, '');
  if (parts.length !== 4 || !parts[3]?.endsWith('.m4s') || !NUMBER.test(out) || !NUMBER.test(dur)) return undefined;
  const dur90k = Number(dur);
  const out90k = Number(out);
  // A segment holds at most ten minutes and starts within a playlist's longest range (24 h): the
  // playlist never makes others, and the times stay exact in a double.
  if (dur90k === 0 || dur90k > MAX_SEGMENT_90K || out90k > MAX_RANGE_90K) return undefined;
  return { kind: 'segment', source, at, out90k, dur90k };
}
