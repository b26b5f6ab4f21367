// The built-in demo publisher: a short H.264/AAC clip shipped in assets/, demuxed once and
// published in a loop at its real pace, with timestamps that keep growing from loop to loop.
// Needs no external program, so `feedcast` alone serves a live feed.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Feed, PublisherSession } from '../feed/feed.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import { TsDemuxer } from '../formats/mpegts/ts-demuxer.js';
import type { Logger } from '../observability/logger.js';

export const DEMO_CLIP = fileURLToPath(new URL('../../assets/demo.ts', import.meta.url));

export interface DemoClip {
  tracks: readonly Track[];
  /** In decode order, times rebased so the first video keyframe is at 0. */
  frames: readonly Frame[];
  /** Length of one loop: the video's span plus one frame. */
  loopDuration90k: number;
}

export async function loadDemoClip(path = DEMO_CLIP): Promise<DemoClip> {
  const bytes = await readFile(path);
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
    throw new Error(`demo clip ${path} has no H.264 video with a keyframe`);
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

/** Publishes the clip into `feed` until stop() is called. */
export class DemoSource {
  private readonly clip: DemoClip;
  private readonly feed: Feed;
  private readonly log: Logger;
  private session: PublisherSession | undefined;
  private timer: NodeJS.Timeout | undefined;
  private index = 0;
  private loop = 0;
  private startWallMs = 0;

  constructor(clip: DemoClip, feed: Feed, log: Logger) {
    this.clip = clip;
    this.feed = feed;
    this.log = log.child({ demo: feed.key });
  }

  start(): void {
    this.session = this.feed.attachPublisher({ protocol: 'demo', remoteAddress: 'built-in', startedAt: new Date() });
    this.session.setTracks(this.clip.tracks);
    this.startWallMs = Date.now();
    this.log.info('demo publisher started', { loopSeconds: this.clip.loopDuration90k / 90_000 });
    this.tick();
  }

  /** Writes every frame that is due, then sleeps until the next one is. */
  private tick(): void {
    const session = this.session;
    if (session === undefined || session.isEnded) return;
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
      session.touch(frame.data.length, now);
      session.write({ ...frame, dts90k: frame.dts90k + offset, pts90k: frame.pts90k + offset }, now);
      this.index++;
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.session?.end('demo stopped');
    this.session = undefined;
  }
}
