// Builders for FeedFile tests: a feed with a publisher writing synthetic H.264 + AAC frames on a
// simulated wall clock, and temp directories removed after the test.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Feed, type PublisherSession } from '../../src/feed/feed.js';
import type { Frame } from '../../src/media/frame.js';
import type { Track } from '../../src/media/track.js';
import { silentLogger } from '../../src/observability/logger.js';

export const VIDEO: Track = {
  id: 0,
  kind: 'video',
  codec: 'h264',
  config: Buffer.from([1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 2, 0x68, 0xee]),
  width: 320,
  height: 240,
  profile: 'High 3.1',
};
export const AUDIO: Track = {
  id: 1,
  kind: 'audio',
  codec: 'aac',
  config: Buffer.from([0x11, 0x90]),
  sampleRate: 48000,
  channels: 2,
};

export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-ff-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A payload whose bytes say which frame it is (so a read-back can be checked byte for byte). */
export function payload(index: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (index * 131 + i * 7 + (i >> 8)) & 0xff;
  return b;
}

export interface SyntheticFeed {
  feed: Feed;
  session: PublisherSession;
  /** Frames as the feed emitted them (feed clock), in order. */
  emitted: Frame[];
  /** Wall-clock ms at which each emitted frame was written. */
  wall: number[];
  /** Writes `seconds` of 25 fps video (keyframe each `gop` frames) and 46.875 fps audio. */
  run(seconds: number, opts?: { videoBytes?: (i: number) => number }): void;
  /** Simulated wall clock now. */
  nowMs(): number;
}

export function syntheticFeed(startWallMs = 1_700_000_000_000, gop = 25, withAudio = true): SyntheticFeed {
  const feed = new Feed('f.ffm', 'f', { publisherTimeoutMs: 60_000, publisherGraceMs: 60_000 }, silentLogger);
  const session = feed.attachPublisher(
    { protocol: 'test', remoteAddress: '127.0.0.1', startedAt: new Date(startWallMs) },
    startWallMs,
  );
  session.setTracks(withAudio ? [VIDEO, AUDIO] : [VIDEO]);
  const emitted: Frame[] = [];
  const wall: number[] = [];
  feed.on('frame', (f) => {
    emitted.push(f);
    wall.push(feed.lastFrameAt ?? 0);
  });
  let v = 0;
  let a = 0;
  const VSTEP = 3600;
  const ASTEP = 1920;
  const now = (): number => startWallMs + Math.round((v * VSTEP) / 90);
  return {
    feed,
    session,
    emitted,
    wall,
    nowMs: now,
    run(seconds, opts = {}) {
      const end = v + Math.round(seconds * 25);
      while (v < end) {
        const vd = v * VSTEP;
        while (withAudio && a * ASTEP < vd) {
          const ad = a * ASTEP;
          session.write(
            { trackId: 1, dts90k: ad, pts90k: ad, keyframe: true, data: payload(1_000_000 + a, 200 + (a % 50)) },
            startWallMs + Math.round(ad / 90),
          );
          a++;
        }
        const size = opts.videoBytes?.(v) ?? (v % gop === 0 ? 9000 : 700 + ((v * 37) % 1500));
        session.write({ trackId: 0, dts90k: vd, pts90k: vd + 7200, keyframe: v % gop === 0, data: payload(v, size) }, now());
        v++;
      }
    },
  };
}

export function frameKey(f: Frame): string {
  return `${f.trackId}:${f.dts90k}`;
}
