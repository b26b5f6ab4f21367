// Which part serves a <Stream> that needs encoding: a VariantSelector when the feed already
// carries the stream's variant (published by `feedcast publish`), else a shared ladder
// transcoder (one ffmpeg child per feed encoding every FLV/TS variant, keyframe-aligned) or a raw
// transcoder (one ffmpeg child per feed and container profile: webm, mpjpeg, mp3 ...).

import { createHash } from 'node:crypto';
import type { StreamConfig } from '../config/config.js';
import type { Feed, FeedOptions } from '../feed/feed.js';
import { feedKeyOf } from '../feed/feed-manager.js';
import { FORMATS } from '../config/formats.js';
import type { Track } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import type { ServerContext } from '../server-context.js';
import { tracksOfVariant, variantsOf, type Variant } from './encodings.js';
import { profileOf, resolveFfmpeg, type FfmpegLocation } from './ffmpeg-args.js';
import type { BackoffOptions } from '../process/ffmpeg-process.js';
import { Transcoder, VariantSelector, type TranscoderStatus } from './transcoder.js';
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
  private readonly ctx: ServerContext;
  private readonly opts: TranscoderManagerOptions;
  private readonly log: Logger;
  private readonly transcoders = new Map<string, Transcoder>();
  private readonly selectors = new Map<string, VariantSelector>();
  private location: { path: string | undefined; result: FfmpegLocation } | undefined;
  private closed = false;

  constructor(ctx: ServerContext, opts: TranscoderManagerOptions = {}) {
    this.ctx = ctx;
    this.opts = opts;
    this.log = ctx.log.child({ part: 'transcode' });
  }

  /** The ffmpeg program (FFmpegPath, FEEDCAST_FFMPEG, PATH), looked up once per config. */
  ffmpeg(): FfmpegLocation {
    const path = this.ctx.config.ffmpegPath;
    if (this.location === undefined || this.location.path !== path) this.location = { path, result: resolveFfmpeg(path) };
    return this.location.result;
  }

  /** Streams whose transcoder runs without readers: the option, else those marked `AlwaysOn`. */
  private alwaysOnNames(): readonly string[] {
    return this.opts.alwaysOn ?? this.ctx.config.streams.filter((s) => s.alwaysOn).map((s) => s.name);
  }

  /** Starts the transcoders of AlwaysOn streams (call once the server listens). */
  startAlwaysOn(): void {
    for (const name of this.alwaysOnNames()) {
      const stream = findByName(this.ctx.config.streams, name);
      if (stream === undefined) continue;
      const served = this.open(stream, true);
      if (served.kind === 'error') this.log.error('always-on stream cannot start', { stream: name, reason: served.message });
    }
  }

  private feedOptions(): FeedOptions {
    // A restarting ffmpeg must not end the readers: the derived feed waits at least 15 s.
    return {
      publisherTimeoutMs: this.ctx.config.publisherTimeoutMs,
      publisherGraceMs: Math.max(this.ctx.config.publisherGraceMs, 15_000),
    };
  }

  /** What serves `stream` for one reader (call release() when it leaves). The source feed must have tracks. */
  open(stream: StreamConfig, alwaysOn = false): Served {
    if (this.closed) return { kind: 'error', status: 503, message: 'the server is stopping' };
    if (stream.feed === undefined) return { kind: 'error', status: 404, message: `/${stream.name} has no Feed` };
    const feedKey = feedKeyOf(stream.feed);
    const source = this.ctx.feeds.get(feedKey);
    if (source === undefined)
      return { kind: 'error', status: 404, message: `/${stream.name}: its feed ${stream.feed} does not exist` };
    // A `Format hls` stream with encoder directives is a ladder rendition: its profile is that of
    // the same encoding in FLV (H.264 + AAC by default), so it shares the FLV/TS streams' variant.
    const profile = profileOf(
      stream.format.support === 'hls' && FORMATS['flv'] !== undefined ? { ...stream, format: FORMATS['flv'] } : stream,
    );
    const isAlwaysOn = alwaysOn || this.alwaysOnNames().includes(stream.name);

    if (profile.output === 'feed') {
      const variants = variantsOf(this.ctx.config, feedKey);
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
    const id = `${feedKey}~${profile.format === 'jpeg' ? 'mpjpeg' : profile.format}-${shortHash(profile.key)}`;
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
      derivedFeedOptions: this.feedOptions(),
      retainBytes: this.ctx.config.readerMaxQueueBytes,
      idleTimeoutMs: this.opts.idleTimeoutMs ?? this.ctx.config.transcodeIdleTimeoutMs,
      ...(this.opts.backoff !== undefined ? { backoff: this.opts.backoff } : {}),
      ...(acquireSource !== undefined ? { acquireSource: () => acquireSource(base.source.key) ?? (() => undefined) } : {}),
    });
    this.transcoders.set(id, t);
    return t;
  }

  private selector(id: string, source: Feed, variants: readonly Variant[], variant: Variant): VariantSelector {
    const existing = this.selectors.get(id);
    if (existing !== undefined) return existing;
    const s = new VariantSelector(id, source, variants, variant, this.feedOptions(), this.log);
    this.selectors.set(id, s);
    return s;
  }

  /** The H.264 (or other video) renditions of a feed, for an HLS multivariant playlist. */
  listRenditions(feedKey: string): Rendition[] {
    return variantsOf(this.ctx.config, feedKey)
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

/** Module-level access for other parts (HLS): set by the server when it creates the manager. */
let current: TranscoderManager | undefined;
export function setTranscoderManager(manager: TranscoderManager | undefined): void {
  current = manager;
}
/** The renditions of a feed's H.264 ladder (empty when there is none or no manager). */
export function listRenditions(feedKey: string): Rendition[] {
  return current?.listRenditions(feedKey) ?? [];
}
/** The server's manager (HLS opens ladder renditions through it), if one is running. */
export function currentTranscoderManager(): TranscoderManager | undefined {
  return current;
}
