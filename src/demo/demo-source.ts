// The built-in demo publisher: a short H.264/AAC clip shipped in assets/, demuxed once and
// published in a loop at its real pace (feed/clip-loop.ts). Needs no external program, so
// `feedcast` alone serves a live feed.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ClipLoop, parseTsClip, type Clip } from '../feed/clip-loop.js';
import type { Feed } from '../feed/feed.js';
import type { Logger } from '../observability/logger.js';

export const DEMO_CLIP = fileURLToPath(new URL('../../assets/demo.ts', import.meta.url));

export type DemoClip = Clip;

export async function loadDemoClip(path = DEMO_CLIP): Promise<DemoClip> {
  return parseTsClip(await readFile(path), `demo clip ${path}`);
}

/** Publishes the clip into `feed` until stop() is called. */
export class DemoSource {
  private readonly clip: DemoClip;
  private readonly feed: Feed;
  private readonly log: Logger;
  private loop: ClipLoop | undefined;

  constructor(clip: DemoClip, feed: Feed, log: Logger) {
    this.clip = clip;
    this.feed = feed;
    this.log = log.child({ demo: feed.key });
  }

  start(): void {
    const session = this.feed.attachPublisher({ protocol: 'demo', remoteAddress: 'built-in', startedAt: new Date() });
    this.loop = new ClipLoop(this.clip, session, this.log);
    this.loop.start();
  }

  stop(): void {
    this.loop?.stop('demo stopped');
    this.loop = undefined;
  }
}
