// A short clip of frames published in a loop at its real pace, with timestamps that keep growing from loop to
// loop: the built-in demo's publisher and the offline slate's stand-in. Needs no external program.

import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import { TsDemuxer } from '../formats/mpegts/ts-demuxer.js';
import type { Logger } from '../observability/logger.js';
import type { PublisherSession } from './feed.js';

export interface Clip {
  tracks: readonly Track[];
  /** In decode order, times rebased so the first video keyframe is at 0. */
  frames: readonly Frame[];
  /** Length of one loop: the video's span plus one frame. */
  loopDuration90k: number;
}

/** The clip in MPEG-TS `bytes`, from its first video keyframe; throws when it has no video with a keyframe. */
export function parseTsClip(bytes: Buffer, what: string): Clip {
  let tracks: readonly Track[] = [];
  const raw: Frame[] = [];
  const demuxer = new TsDemuxer({
    onTracks: (t) => {
      tracks = t;
    },
    onFrame: (f) => raw.push(f),
  });
  demuxer.push(bytes);
  demuxer.end();
  const video = tracks.find((t) => t.kind === 'video');
  const videoFrames = raw.filter((f) => f.trackId === video?.id);
  const firstKey = videoFrames.find((f) => f.keyframe);
  if (video === undefined || firstKey === undefined || videoFrames.length < 2) {
    throw new Error(`${what} has no video with a keyframe`);
  }
  const start = firstKey.dts90k;
  const last = videoFrames[videoFrames.length - 1] as Frame;
  const step = (last.dts90k - start) / (videoFrames.length - 1);
  const loopDuration90k = Math.round(last.dts90k - start + step);
  const frames = raw
    .filter((f) => f.dts90k >= start && f.dts90k - start < loopDuration90k)
    .map((f) => ({ ...f, dts90k: f.dts90k - start, pts90k: f.pts90k - start }))
    .sort((a, b) => a.dts90k - b.dts90k);
  return { tracks, frames, loopDuration90k };
}

/** Writes `clip` into `session` in a loop, each frame when it is due, until stop() or the session ends. */
export class ClipLoop {
  private readonly clip: Clip;
  private readonly session: PublisherSession;
  private timer: NodeJS.Timeout | undefined;
  private index = 0;
  private loop = 0;
  private startWallMs = 0;

  constructor(clip: Clip, session: PublisherSession, log: Logger) {
    this.clip = clip;
    this.session = session;
    log.info('clip loop started', { loopSeconds: clip.loopDuration90k / 90_000 });
  }

  start(): void {
    this.session.setTracks(this.clip.tracks);
    this.startWallMs = Date.now();
    this.tick();
  }

  get running(): boolean {
    return !this.session.isEnded;
  }

  /** Writes every frame that is due, then sleeps until the next one is. */
  private tick(): void {
    if (this.session.isEnded) return;
    const now = Date.now();
    for (;;) {
      const frame = this.clip.frames[this.index];
      if (frame === undefined) {
        this.index = 0;
        this.loop++;
        continue;
      }
      const offset = this.loop * this.clip.loopDuration90k;
      const dueMs = this.startWallMs + (frame.dts90k + offset) / 90;
      if (dueMs > now) {
        this.timer = setTimeout(() => this.tick(), Math.max(1, dueMs - now));
        return;
      }
      this.session.touch(frame.data.length, now);
      this.session.write({ ...frame, dts90k: frame.dts90k + offset, pts90k: frame.pts90k + offset }, now);
      if (this.session.isEnded) return;
      this.index++;
    }
  }

  stop(reason: string): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.session.end(reason);
  }
}
