// The feed's clock: maps each publisher's own timestamps onto one monotonic 90 kHz timeline
// that survives publisher reconnects, and repairs per-track timestamp faults (DTS going back,
// jumps) so every output sees time that only moves forward.

/** A forward or backward step larger than this is a timestamp jump, not a real gap. */
export const DEFAULT_JUMP_LIMIT_90K = 10 * 90_000;

export interface ClockRepairs {
  /** Frames whose DTS was not after the previous one on their track. */
  nonMonotonic: number;
  /** Steps on a track larger than the jump limit (source restarted its timestamps, lost data). */
  jumps: number;
}

interface TrackTime {
  lastDts: number;
  /** The last sensible frame spacing, used to place a frame after a repair. */
  lastStep: number;
  /** Extra offset this track carries after a jump repair. */
  repairOffset: number;
}

/** Default spacing per track kind when nothing is known yet: 40 ms video, ~21 ms AAC. */
const DEFAULT_STEP_90K = { video: 3600, audio: 1920 } as const;

/**
 * One timeline for several feeds written by one publisher (a simulcast WHIP publisher's feed and
 * its layer feeds): the first of them to start places the session, the others take the same offset,
 * so the same picture has the same time in every layer (HLS renditions must match, RFC 8216bis 6.2.4).
 * The publisher's times already share one origin.
 */
export interface SharedClockOrigin {
  offset90k?: number;
  /**
   * The publisher's times are already a feed's timeline: a relay of the feed of another node of the cluster
   * (cluster/relay.ts), whose origin repaired them. A step forward past the jump limit is then the origin's own
   * (its publisher came back after a long gap) and is kept, so this feed stays on the origin's timeline.
   */
  readonly keepsJumps?: boolean;
}

export class FeedClock {
  private readonly jumpLimit90k: number;
  private readonly tracks = new Map<number, TrackTime>();
  /** Offset of the current publisher session: feed time = input time + sessionOffset. */
  private sessionOffset: number | undefined;
  private sharedOrigin: SharedClockOrigin | undefined;
  private keepsJumps = false;
  private lastWallMs: number | undefined;
  readonly repairs: ClockRepairs = { nonMonotonic: 0, jumps: 0 };

  constructor(jumpLimit90k = DEFAULT_JUMP_LIMIT_90K) {
    this.jumpLimit90k = jumpLimit90k;
  }

  /** The newest DTS on any track, or undefined before the first frame. */
  get endDts90k(): number | undefined {
    let end: number | undefined;
    for (const t of this.tracks.values()) end = end === undefined ? t.lastDts : Math.max(end, t.lastDts);
    return end;
  }

  /** A new publisher session begins: its first frame is placed after the feed's end plus the real gap. */
  startSession(shared?: SharedClockOrigin): void {
    this.sessionOffset = undefined;
    this.sharedOrigin = shared;
    this.keepsJumps = shared?.keepsJumps === true;
    for (const t of this.tracks.values()) t.repairOffset = 0;
  }

  /**
   * Maps one frame's input times to feed times. `firstOfSession` anchoring happens on the first
   * call after startSession(). Returns [dts, pts].
   */
  place(trackId: number, kind: 'video' | 'audio', dts: number, pts: number, nowMs: number): [number, number] {
    if (this.sessionOffset === undefined) {
      const end = this.endDts90k;
      const shared = this.sharedOrigin;
      if (shared?.offset90k !== undefined && dts + shared.offset90k >= 0 && (end === undefined || dts + shared.offset90k > end)) {
        this.sessionOffset = shared.offset90k;
      } else if (end === undefined) {
        // A shared timeline keeps the publisher's own origin, so feeds starting later still match.
        this.sessionOffset = shared !== undefined && dts >= 0 ? 0 : -dts;
      } else {
        // No going back and no jump larger than the real gap: wall time since the last frame,
        // at least one frame step so the new first frame comes strictly after the old last one.
        const gap90k = this.lastWallMs === undefined ? 0 : Math.max(0, nowMs - this.lastWallMs) * 90;
        this.sessionOffset = end + Math.max(gap90k, DEFAULT_STEP_90K.video) - dts;
      }
      if (shared !== undefined) shared.offset90k ??= this.sessionOffset;
    }
    let track = this.tracks.get(trackId);
    let outDts = dts + this.sessionOffset + (track?.repairOffset ?? 0);
    if (track === undefined) {
      track = { lastDts: outDts, lastStep: DEFAULT_STEP_90K[kind], repairOffset: 0 };
      this.tracks.set(trackId, track);
    } else {
      const step = outDts - track.lastDts;
      if (step > this.jumpLimit90k && this.keepsJumps) {
        // The origin's own step forward (see SharedClockOrigin.keepsJumps): followed, not learnt as the spacing.
      } else if (step > this.jumpLimit90k || step < -this.jumpLimit90k) {
        this.repairs.jumps++;
        const target = track.lastDts + track.lastStep;
        track.repairOffset += target - outDts;
        outDts = target;
      } else if (step <= 0) {
        this.repairs.nonMonotonic++;
        outDts = track.lastDts + 1;
      } else {
        track.lastStep = step;
      }
      track.lastDts = outDts;
    }
    this.lastWallMs = nowMs;
    const ptsOffset = pts - dts;
    return [outDts, outDts + Math.max(0, ptsOffset)];
  }
}
