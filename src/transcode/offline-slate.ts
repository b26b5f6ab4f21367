// The offline slate (OfflineSlate): while a feed waits for its publisher to come back, its outputs keep playing a
// "stream offline" picture with silence rather than stalling. The slate is encoded once per feed, by a one-shot
// ffmpeg, in the feed's codecs at its size and frame rate, and looped in memory (feed/clip-loop.ts) as the feed's
// stand-in; the publisher takes over at its first keyframe (Feed.sessionStarted), the feed clock moving on.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerConfig } from '../config/config.js';
import { findFeedConfig } from '../config/names.js';
import { ClipLoop, parseTsClip, type Clip } from '../feed/clip-loop.js';
import type { Feed } from '../feed/feed.js';
import type { FeedManager } from '../feed/feed-manager.js';
import type { Logger } from '../observability/logger.js';
import { withParentDeathSignal } from '../process/ffmpeg-process.js';
import { resolveFfmpeg } from './ffmpeg-args.js';
import { planSlate, slateArgs, slateKey } from './slate-args.js';

export const DEFAULT_SLATE = fileURLToPath(new URL('../../assets/offline.png', import.meta.url));

/** A slate clip is small (one GOP of a still picture); more than this is a broken source. */
const MAX_SLATE_BYTES = 16 * 1024 * 1024;
const ENCODE_TIMEOUT_MS = 60_000;
/** After the publisher's tracks are known, wait this long so its frame rate can be measured. */
const MEASURE_MS = 2000;

export type SlateState = 'off' | 'waiting' | 'encoding' | 'ready' | 'showing' | 'unavailable';

export interface SlateStatus {
  readonly state: SlateState;
  /** Why there is no slate ('unavailable'), or the last encoding error. */
  readonly reason?: string | undefined;
}

interface FeedSlate {
  clip: Clip | undefined;
  key: string | undefined;
  encoding: Promise<void> | undefined;
  loop: ClipLoop | undefined;
  reason: string | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The feed lost its publisher and waits: show the slate as soon as it is ready. */
  wanted: boolean;
}

export class OfflineSlates {
  private config: ServerConfig;
  private readonly log: Logger;
  private readonly slates = new Map<Feed, FeedSlate>();
  /** Feeds whose idle/close this listens to (once each, whatever reloads turn the slate off and on). */
  private readonly listening = new WeakSet<Feed>();
  private readonly encoders = new Set<ReturnType<typeof spawn>>();
  private closed = false;

  constructor(config: ServerConfig, feeds: FeedManager, log: Logger) {
    this.config = config;
    this.log = log.child({ part: 'offline-slate' });
    feeds.on('publish', (feed) => this.watch(feed));
    feeds.on('unpublish', (feed) => this.show(feed));
  }

  applyConfig(next: ServerConfig): void {
    this.config = next;
    for (const [feed, slate] of this.slates) {
      if (this.sourceOf(feed) !== undefined) continue;
      slate.loop?.stop('OfflineSlate turned off');
      this.forget(feed, slate);
    }
  }

  status(feed: Feed): SlateStatus {
    if (this.sourceOf(feed) === undefined) return { state: 'off' };
    const slate = this.slates.get(feed);
    if (slate === undefined) return { state: 'waiting' };
    if (slate.loop?.running === true) return { state: 'showing' };
    if (slate.encoding !== undefined) return { state: 'encoding' };
    if (slate.clip !== undefined) return { state: 'ready' };
    return slate.reason !== undefined ? { state: 'unavailable', reason: slate.reason } : { state: 'waiting' };
  }

  /** Stops every slate and encoder (the server is stopping); no slate starts after this. */
  closeAll(): void {
    this.closed = true;
    for (const [feed, slate] of this.slates) {
      slate.loop?.stop('server stopping');
      this.forget(feed, slate);
    }
    for (const child of this.encoders) child.kill('SIGKILL');
  }

  /** The picture or clip of `feed`'s slate, or undefined when it has none. */
  private sourceOf(feed: Feed): string | undefined {
    const source = findFeedConfig(this.config.feeds, feed.key)?.offlineSlate;
    return source === 'default' ? DEFAULT_SLATE : source;
  }

  /** A publisher started: (re)make the slate from its tracks once its frame rate can be measured. */
  private watch(feed: Feed): void {
    if (this.closed || this.sourceOf(feed) === undefined) return;
    let slate = this.slates.get(feed);
    if (slate === undefined) {
      slate = {
        clip: undefined,
        key: undefined,
        encoding: undefined,
        loop: undefined,
        reason: undefined,
        timer: undefined,
        wanted: false,
      };
      this.slates.set(feed, slate);
      if (!this.listening.has(feed)) {
        this.listening.add(feed);
        feed.on('idle', () => this.hide(feed, 'no publisher within the grace period'));
        feed.on('close', () => {
          const s = this.slates.get(feed);
          if (s !== undefined) this.forget(feed, s);
        });
      }
    }
    slate.wanted = false;
    if (slate.timer !== undefined) clearTimeout(slate.timer);
    slate.timer = setTimeout(() => {
      if (slate !== undefined) slate.timer = undefined;
      this.prepareLogged(feed);
    }, MEASURE_MS);
    slate.timer.unref();
  }

  /** The publisher left and the feed waits for it: show the slate (now, or once it is encoded). */
  private show(feed: Feed): void {
    const slate = this.slates.get(feed);
    if (this.closed || slate === undefined || this.sourceOf(feed) === undefined) return;
    slate.wanted = true;
    if (slate.clip === undefined) {
      // It left before the slate was made: make it now from what is known.
      if (slate.timer !== undefined) clearTimeout(slate.timer);
      slate.timer = undefined;
      this.prepareLogged(feed);
      return;
    }
    this.start(feed, slate);
  }

  private start(feed: Feed, slate: FeedSlate): void {
    const clip = slate.clip;
    if (clip === undefined || slate.loop?.running === true || feed.publisher !== undefined) return;
    slate.wanted = false;
    let session;
    try {
      session = feed.attachStandIn({ protocol: 'slate', remoteAddress: 'built-in', startedAt: new Date() });
    } catch (err) {
      this.log.warn('offline slate not shown', { feed: feed.key, err });
      return;
    }
    slate.loop = new ClipLoop(clip, session, this.log.child({ feed: feed.key }));
    slate.loop.start();
  }

  private hide(feed: Feed, reason: string): void {
    const slate = this.slates.get(feed);
    slate?.loop?.stop(reason);
    if (slate !== undefined) slate.wanted = false;
  }

  private forget(feed: Feed, slate: FeedSlate): void {
    if (slate.timer !== undefined) clearTimeout(slate.timer);
    slate.loop?.stop('feed removed');
    this.slates.delete(feed);
  }

  /** prepare(), from a timer or an event: a failure is logged, never thrown. */
  private prepareLogged(feed: Feed): void {
    this.prepare(feed).catch((err: unknown) => this.log.error('offline slate failed', { feed: feed.key, err }));
  }

  /** Encodes the slate for the feed's tracks now, unless the one held already fits them. */
  private async prepare(feed: Feed): Promise<void> {
    const slate = this.slates.get(feed);
    const source = this.sourceOf(feed);
    if (this.closed || slate === undefined || source === undefined || feed.standIn !== undefined) return;
    if (slate.encoding !== undefined) {
      await slate.encoding;
      return this.prepare(feed);
    }
    const plan = planSlate(feed.tracks, measuredFps(feed));
    if (typeof plan === 'string') {
      if (slate.clip === undefined && slate.reason !== plan) this.log.info(`no offline slate: ${plan}`, { feed: feed.key });
      if (slate.clip === undefined) slate.reason = plan;
      if (slate.wanted && slate.clip !== undefined) this.start(feed, slate);
      return;
    }
    const key = slateKey(source, plan);
    if (key !== slate.key) {
      slate.encoding = this.encode(source, plan.video.codec, slateArgs(source, plan)).then(
        (clip) => {
          slate.clip = clip;
          slate.key = key;
          slate.reason = undefined;
          this.log.info('offline slate ready', {
            feed: feed.key,
            size: `${plan.video.width ?? '?'}x${plan.video.height ?? '?'}`,
            fps: plan.framesPerSecond,
            codecs: clip.tracks.map((t) => t.codec).join('+'),
          });
        },
        (err: unknown) => {
          slate.reason = err instanceof Error ? err.message : String(err);
          this.log.warn('offline slate could not be encoded', { feed: feed.key, reason: slate.reason });
        },
      );
      await slate.encoding;
      slate.encoding = undefined;
    }
    if (slate.wanted && this.slates.get(feed) === slate) this.start(feed, slate);
  }

  /** Runs the one-shot ffmpeg and parses its MPEG-TS into a clip. */
  private encode(source: string, codec: string, args: string[]): Promise<Clip> {
    const ffmpeg = resolveFfmpeg(this.config.ffmpegPath);
    if (!ffmpeg.ok) return Promise.reject(new Error(ffmpeg.reason));
    return new Promise((resolve, reject) => {
      const [command, argv] = withParentDeathSignal(ffmpeg.path, args);
      const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.encoders.add(child);
      const chunks: Buffer[] = [];
      let bytes = 0;
      let stderr = '';
      let failure: string | undefined;
      const timer = setTimeout(() => {
        failure = `ffmpeg took over ${ENCODE_TIMEOUT_MS / 1000} s`;
        child.kill('SIGKILL');
      }, ENCODE_TIMEOUT_MS);
      child.stdout.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_SLATE_BYTES) {
          failure = `the slate is over ${MAX_SLATE_BYTES} bytes; use a smaller picture or clip`;
          child.kill('SIGKILL');
          return;
        }
        chunks.push(chunk);
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-1000);
      });
      child.once('error', (err) => {
        failure = `ffmpeg could not start: ${err.message}`;
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        this.encoders.delete(child);
        if (failure === undefined && code !== 0)
          failure = `ffmpeg exited with ${code ?? 'a signal'}: ${stderr.trim().split('\n').slice(-2).join(' | ')}`;
        if (failure !== undefined) {
          reject(new Error(`${source} (${codec}): ${failure}`));
          return;
        }
        try {
          resolve(parseTsClip(Buffer.concat(chunks), `the offline slate of ${source}`));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
  }
}

/** The feed's video frame rate from the recent frames' timestamps (25 when it cannot be told). */
function measuredFps(feed: Feed): number {
  const video = feed.tracks.find((t) => t.kind === 'video');
  if (video === undefined) return 25;
  const frames = feed.recentFrames().filter((f) => f.trackId === video.id);
  const first = frames[0];
  const last = frames[frames.length - 1];
  if (first === undefined || last === undefined || frames.length < 5 || last.dts90k <= first.dts90k) return 25;
  return ((frames.length - 1) * 90_000) / (last.dts90k - first.dts90k);
}
