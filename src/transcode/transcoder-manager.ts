// Which part serves a <Stream> that needs encoding: a VariantSelector when the feed already
// carries the stream's variant (published by `feedcast publish`), else a shared ladder
// transcoder (one ffmpeg child per feed encoding every FLV/TS variant, keyframe-aligned) or a raw
// transcoder (one ffmpeg child per feed and container profile: webm, mpjpeg, mp3 ...).

import { createHash } from 'node:crypto';
import type { ServerConfig, StreamConfig } from '../config/config.js';
import type { Feed } from '../feed/feed.js';
import { feedKeyOf, type FeedManager } from '../feed/feed-manager.js';
import { FORMATS } from '../config/formats.js';
import type { Track } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import { tracksOfVariant, variantsOf, type Variant } from './encodings.js';
import { profileOf, resolveFfmpeg, type FfmpegLocation } from './ffmpeg-args.js';
import type { BackoffOptions } from '../process/ffmpeg-process.js';
import { Transcoder, VariantSelector, type TranscoderSettings, type TranscoderStatus } from './transcoder.js';
import { findByName } from '../config/names.js';

export interface TranscoderManagerOptions {
  /** Overrides `TranscodeIdleTimeout`: how long a transcoder keeps running after its last reader left. */
  idleTimeoutMs?: number;
  /** Overrides the streams marked `AlwaysOn` in the config: their transcoders run all the time. */
  alwaysOn?: readonly string[];
  backoff?: BackoffOptions;
  /** Keeps a Launch/Source feed's source running while a transcoder reads it (SourceManager.acquire). */
  acquireSource?: (feedKey: string) => (() => void) | undefined;
}

/**
 * The multi-track feed a variant's tracks come from (the published feed, or the ladder's), for
 * readers that must share its timeline across variants (HLS renditions: aligned timestamps).
 */
export interface VariantCarrier {
  feed: Feed;
  /** The variant's video and audio tracks among the carrier's (none when the layout does not match). */
  pick: (tracks: readonly Track[]) => Track[];
  variant: Variant;
}

/** What serves a stream right now. */
export type Served =
  | { kind: 'feed'; feed: Feed; release: () => void; via: 'published variant' | 'ladder'; carrier: VariantCarrier }
  | { kind: 'raw'; transcoder: Transcoder; release: () => void }
  | { kind: 'error'; status: number; message: string };

export interface Rendition {
  index: number;
  streams: readonly string[];
  codec: string | undefined;
  width: number;
  height: number;
  frameRate: number;
  /** Video + audio bit rate, for the multivariant playlist's BANDWIDTH. */
  bandwidthBps: number;
  audioCodec: string | undefined;
}

export class TranscoderManager {
  private config: ServerConfig;
  private readonly feeds: FeedManager;
  private readonly opts: TranscoderManagerOptions;
  private readonly log: Logger;
  /** Shared by every transcoder and read when used: a reload changes them for those running too. */
  private readonly settings: TranscoderSettings;
  private readonly transcoders = new Map<string, Transcoder>();
  private readonly selectors = new Map<string, VariantSelector>();
  private location: { path: string | undefined; result: FfmpegLocation } | undefined;
  private closed = false;

  constructor(config: ServerConfig, feeds: FeedManager, log: Logger, opts: TranscoderManagerOptions = {}) {
    this.config = config;
    this.feeds = feeds;
    this.opts = opts;
    this.log = log.child({ part: 'transcode' });
    this.settings = {
      idleTimeoutMs: opts.idleTimeoutMs ?? config.transcodeIdleTimeoutMs,
      retainBytes: config.readerMaxQueueBytes,
    };
  }

  /** The settings the transcoders read now (tests). */
  get settingsNow(): Readonly<TranscoderSettings> {
    return this.settings;
  }

  /**
   * A new config: TranscodeIdleTimeout and ReaderMaxQueue apply to the running transcoders,
   * FFmpegPath to the next child started. A transcoder no stream of `next` maps to any more (its
   * stream was removed, or its encoding, ladder or AlwaysOn changed) is stopped; the AlwaysOn
   * ones of `next` are started.
   */
  async applyConfig(next: ServerConfig): Promise<void> {
    const prev = this.config;
    const prevPlan = this.plan();
    this.config = next;
    this.settings.idleTimeoutMs = this.opts.idleTimeoutMs ?? next.transcodeIdleTimeoutMs;
    this.settings.retainBytes = next.readerMaxQueueBytes;
    const nextPlan = this.plan();
    const stale = [...this.transcoders.entries()].filter(([id]) => nextPlan.get(id) !== prevPlan.get(id));
    for (const [id] of stale) this.transcoders.delete(id);
    // A selector picks variant N of its feed: stale when the feed's variants changed.
    const variantsOfFeed = (config: ServerConfig, feedKey: string): string =>
      JSON.stringify(variantsOf(config, feedKey).map((v) => v.profile.key));
    const staleSelectors = [...this.selectors.entries()].filter(([id]) => {
      const feedKey = id.split(/[~#]/)[0] ?? '';
      return variantsOfFeed(prev, feedKey) !== variantsOfFeed(next, feedKey);
    });
    for (const [id, selector] of staleSelectors) {
      this.selectors.delete(id);
      selector.close();
    }
    await Promise.all(stale.map(([, t]) => t.close()));
    if (stale.length > 0) this.log.info('transcoders stopped by a config reload', { ids: stale.map(([id]) => id).join(',') });
    this.startAlwaysOn();
  }

  /**
   * What each transcoder id stands for under the current config (a ladder's variants, a raw
   * transcoder's profile) and whether it runs always: a running transcoder whose entry changes
   * is stale.
   */
  private plan(): Map<string, string> {
    const parts = new Map<string, { what: string; alwaysOn: boolean }>();
    const alwaysOn = new Set(this.alwaysOnNames());
    for (const stream of this.config.streams) {
      if (stream.feed === undefined) continue;
      const feedKey = feedKeyOf(stream.feed);
      const profile = this.profileFor(stream);
      const [id, what] =
        profile.output === 'feed'
          ? [`${feedKey}~ladder`, JSON.stringify(variantsOf(this.config, feedKey).map((v) => v.profile.key))]
          : [this.rawId(feedKey, profile), profile.key];
      parts.set(id, { what, alwaysOn: (parts.get(id)?.alwaysOn ?? false) || alwaysOn.has(stream.name) });
    }
    return new Map([...parts].map(([id, p]) => [id, `${p.what} ${String(p.alwaysOn)}`]));
  }

  private profileFor(stream: StreamConfig): ReturnType<typeof profileOf> {
    // A `Format hls` stream with encoder directives is a ladder rendition: its profile is that of
    // the same encoding in FLV (H.264 + AAC by default), so it shares the FLV/TS streams' variant.
    return profileOf(
      stream.format.support === 'hls' && FORMATS['flv'] !== undefined ? { ...stream, format: FORMATS['flv'] } : stream,
    );
  }

  private rawId(feedKey: string, profile: ReturnType<typeof profileOf>): string {
    return `${feedKey}~${profile.format === 'jpeg' ? 'mpjpeg' : profile.format}-${shortHash(profile.key)}`;
  }

  /** The ffmpeg program (FFmpegPath, FEEDCAST_FFMPEG, PATH), looked up once per config. */
  ffmpeg(): FfmpegLocation {
    const path = this.config.ffmpegPath;
    if (this.location === undefined || this.location.path !== path) this.location = { path, result: resolveFfmpeg(path) };
    return this.location.result;
  }

  /** Streams whose transcoder runs without readers: the option, else those marked `AlwaysOn`. */
  private alwaysOnNames(): readonly string[] {
    return this.opts.alwaysOn ?? this.config.streams.filter((s) => s.alwaysOn).map((s) => s.name);
  }

  /** Starts the transcoders of AlwaysOn streams (call once the server listens). */
  startAlwaysOn(): void {
    for (const name of this.alwaysOnNames()) {
      const stream = findByName(this.config.streams, name);
      if (stream === undefined) continue;
      const served = this.open(stream, true);
      if (served.kind === 'error') this.log.error('always-on stream cannot start', { stream: name, reason: served.message });
    }
  }

  /** What serves `stream` for one reader (call release() when it leaves). The source feed must have tracks. */
  open(stream: StreamConfig, alwaysOn = false): Served {
    if (this.closed) return { kind: 'error', status: 503, message: 'the server is stopping' };
    if (stream.feed === undefined) return { kind: 'error', status: 404, message: `/${stream.name} has no Feed` };
    const feedKey = feedKeyOf(stream.feed);
    const source = this.feeds.get(feedKey);
    if (source === undefined)
      return { kind: 'error', status: 404, message: `/${stream.name}: its feed ${stream.feed} does not exist` };
    const profile = this.profileFor(stream);
    const isAlwaysOn = alwaysOn || this.alwaysOnNames().includes(stream.name);

    if (profile.output === 'feed') {
      const variants = variantsOf(this.config, feedKey);
      const variant = variants.find((v) => v.profile.key === profile.key);
      if (variant === undefined) {
        return {
          kind: 'error',
          status: 501,
          message: `/${stream.name}: Format ${profile.format} cannot carry ${profile.video?.encoder ?? profile.audio?.encoder ?? 'this encoding'}; use Format webm, mpjpeg or mpegts`,
        };
      }
      const pick = (tracks: readonly Track[]): Track[] => {
        const found = tracksOfVariant(tracks, variants, variant);
        return found === undefined ? [] : [found.video, found.audio].filter((t): t is Track => t !== undefined);
      };
      if (source.tracks.length > 0 && tracksOfVariant(source.tracks, variants, variant) !== undefined) {
        const selector = this.selector(`${feedKey}#v${variant.index}`, source, variants, variant);
        return {
          kind: 'feed',
          feed: selector.derived,
          release: () => undefined,
          via: 'published variant',
          carrier: { feed: source, pick, variant },
        };
      }
      const ffmpeg = this.ffmpeg();
      if (!ffmpeg.ok)
        return { kind: 'error', status: 503, message: `/${stream.name} needs ffmpeg to be encoded: ${ffmpeg.reason}` };
      const ladderId = `${feedKey}~ladder`;
      const ladder = this.transcoder(ladderId, () => ({
        kind: 'ladder',
        source,
        profile: undefined,
        variants,
        ffmpegPath: ffmpeg.path,
        alwaysOn: isAlwaysOn,
      }));
      const release = ladder.acquire();
      const derived = ladder.derived;
      if (derived === undefined) throw new Error(`ladder ${ladderId} has no derived feed`);
      const selector = this.selector(`${ladderId}#v${variant.index}`, derived, variants, variant);
      return { kind: 'feed', feed: selector.derived, release, via: 'ladder', carrier: { feed: derived, pick, variant } };
    }

    const ffmpeg = this.ffmpeg();
    if (!ffmpeg.ok)
      return { kind: 'error', status: 503, message: `/${stream.name} needs ffmpeg to be encoded: ${ffmpeg.reason}` };
    const id = this.rawId(feedKey, profile);
    const transcoder = this.transcoder(id, () => ({
      kind: 'raw',
      source,
      profile,
      variants: [],
      ffmpegPath: ffmpeg.path,
      alwaysOn: isAlwaysOn,
    }));
    return { kind: 'raw', transcoder, release: transcoder.acquire() };
  }

  private transcoder(
    id: string,
    make: () => Pick<
      ConstructorParameters<typeof Transcoder>[0],
      'kind' | 'source' | 'profile' | 'variants' | 'ffmpegPath' | 'alwaysOn'
    >,
  ): Transcoder {
    const existing = this.transcoders.get(id);
    if (existing !== undefined) return existing;
    const base = make();
    const acquireSource = this.opts.acquireSource;
    const t = new Transcoder({
      id,
      ...base,
      log: this.log,
      feeds: this.feeds,
      settings: this.settings,
      ...(this.opts.backoff !== undefined ? { backoff: this.opts.backoff } : {}),
      ...(acquireSource !== undefined ? { acquireSource: () => acquireSource(base.source.key) ?? (() => undefined) } : {}),
    });
    this.transcoders.set(id, t);
    return t;
  }

  private selector(id: string, source: Feed, variants: readonly Variant[], variant: Variant): VariantSelector {
    const existing = this.selectors.get(id);
    if (existing !== undefined) return existing;
    const s = new VariantSelector(id, source, variants, variant, this.feeds, this.log);
    this.selectors.set(id, s);
    return s;
  }

  /** The H.264 (or other video) renditions of a feed, for an HLS multivariant playlist. */
  listRenditions(feedKey: string): Rendition[] {
    return variantsOf(this.config, feedKey)
      .filter((v) => v.profile.video !== undefined)
      .map((v) => {
        const video = v.profile.video;
        const audio = v.profile.audio;
        return {
          index: v.index,
          streams: v.streams,
          codec: video?.codec,
          width: video?.width ?? 0,
          height: video?.height ?? 0,
          frameRate: video?.frameRate ?? 0,
          bandwidthBps: ((video?.bitRateKbps ?? 0) + (audio?.bitRateKbps ?? 0)) * 1000,
          audioCodec: audio?.codec,
        };
      });
  }

  /** Running transcoders, for the status page and the API. */
  status(): TranscoderStatus[] {
    return [...this.transcoders.values()].map((t) => t.status());
  }

  get(id: string): Transcoder | undefined {
    return this.transcoders.get(id);
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.transcoders.values()].map((t) => t.close()));
    for (const s of this.selectors.values()) s.close();
    this.transcoders.clear();
    this.selectors.clear();
  }
}

function shortHash(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 8);
}
