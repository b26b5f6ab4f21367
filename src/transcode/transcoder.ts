// One supervised ffmpeg transcoder of a feed, shared by its readers: the feed's frames go to
// ffmpeg's stdin as MPEG-TS (dropping to the next keyframe when ffmpeg is behind, never blocking
// the feed); stdout is either MPEG-TS demuxed into a derived Feed (ladder: every variant as
// tracks of one feed) or a container shared as bytes (RawOutput). Plus VariantSelector, which
// serves one variant's tracks of a multi-variant feed as its own Feed, without ffmpeg.

import type { ChildProcess } from 'node:child_process';
import type { FeedcastError } from '../errors.js';
import type { Feed, PublisherSession } from '../feed/feed.js';
import type { FeedManager } from '../feed/feed-manager.js';
import { TsDemuxer } from '../formats/mpegts/ts-demuxer.js';
import { TsMuxer } from '../formats/mpegts/ts-muxer.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import { mpjpegPart, RawOutput } from '../streams/raw-output.js';
import { TypedEmitter } from '../typed-emitter.js';
import type { Variant } from './encodings.js';
import { tracksOfVariant } from './encodings.js';
import { ladderArgs, transcodeArgs, type TranscodeProfile } from './ffmpeg-args.js';
import { FfmpegProcess, type BackoffOptions, type FfmpegProcessStatus } from '../process/ffmpeg-process.js';
import { framerFor, survivesRestart } from '../formats/raw/framers.js';
import { detach } from '../observability/detach.js';
import { lookupFormat } from '../config/formats.js';

export interface TranscoderSettings {
  /** How long a transcoder keeps running after its last reader left (`TranscodeIdleTimeout`). */
  idleTimeoutMs: number;
  /** Bytes a raw output keeps behind its newest chunk for lagging readers (`ReaderMaxQueue`). */
  retainBytes: number;
}

/** Only FeedManager creates and destroys feeds: derived ones too. */
export type DerivedFeeds = Pick<FeedManager, 'derive' | 'removeDerived'>;

/** A restarting ffmpeg must not end the readers of a derived feed: it waits at least this long. */
export const DERIVED_FEED_MIN_GRACE_MS = 15_000;

/** Bytes queued in ffmpeg's stdin beyond which frames are dropped until the next keyframe. */
const MAX_STDIN_QUEUE_BYTES = 4 * 1024 * 1024;

export interface TranscoderStats {
  framesToFfmpeg: number;
  /** Frames not sent because ffmpeg's stdin was full (skipped to the next keyframe). */
  framesDropped: number;
  bytesFromFfmpeg: number;
}

export interface TranscoderStatus extends FfmpegProcessStatus {
  id: string;
  kind: 'ladder' | 'raw';
  feed: string;
  format: string;
  readers: number;
  alwaysOn: boolean;
  stats: TranscoderStats;
}

export interface TranscoderOptions {
  id: string;
  kind: 'ladder' | 'raw';
  source: Feed;
  /** raw: the stream's profile; ladder: the variants to encode. */
  profile: TranscodeProfile | undefined;
  variants: readonly Variant[];
  ffmpegPath: string;
  log: Logger;
  /** Makes and closes the derived feed of a ladder. */
  feeds: DerivedFeeds;
  /** Shared by every transcoder of a manager and read when used, so that a reload applies at once. */
  settings: TranscoderSettings;
  alwaysOn: boolean;
  backoff?: BackoffOptions;
  /** Keeps the source feed's own source running (a Launch/Source feed) while the transcoder runs. */
  acquireSource?: () => () => void;
}

export type TranscoderEvents = {
  /** A raw output was replaced (new ffmpeg child of a format with a file header). */
  output: [RawOutput];
};

/** Writes a feed's frames into a child's stdin as MPEG-TS, with keyframe-aligned dropping. */
class FeedToStdin {
  private readonly muxer: TsMuxer;
  private readonly stdin: NodeJS.WritableStream & { writableLength: number };
  private readonly trackIds: Set<number>;
  private readonly videoIds: Set<number>;
  private blocked = false;
  private waitKey: boolean;
  private readonly stats: TranscoderStats;
  private readonly off: () => void;

  constructor(source: Feed, tracks: readonly Track[], stdin: FeedToStdin['stdin'], stats: TranscoderStats) {
    this.stdin = stdin;
    this.stats = stats;
    this.trackIds = new Set(tracks.map((t) => t.id));
    this.videoIds = new Set(tracks.filter((t) => t.kind === 'video').map((t) => t.id));
    this.waitKey = this.videoIds.size > 0;
    this.muxer = new TsMuxer(tracks);
    this.send(this.muxer.header());
    // Start at the last keyframe of the video track ffmpeg reads (the feed may carry others).
    for (const frame of source.gopCache(tracks.find((t) => t.kind === 'video')?.id)) this.onFrame(frame);
    this.off = source.on('frame', (frame) => this.onFrame(frame));
  }

  private onFrame(frame: Frame): void {
    if (!this.trackIds.has(frame.trackId)) return;
    const isVideo = this.videoIds.has(frame.trackId);
    if (this.blocked) {
      this.stats.framesDropped++;
      return;
    }
    if (this.waitKey) {
      if (!(isVideo && frame.keyframe)) {
        this.stats.framesDropped++;
        return;
      }
      this.waitKey = false;
    }
    this.stats.framesToFfmpeg++;
    if (!this.send(this.muxer.mux(frame))) {
      this.blocked = true;
      this.stdin.once('drain', () => {
        this.blocked = false;
        this.waitKey = this.videoIds.size > 0;
      });
    }
  }

  private send(data: Buffer): boolean {
    if (data.length === 0) return true;
    const ok = this.stdin.write(data);
    return ok || this.stdin.writableLength < MAX_STDIN_QUEUE_BYTES;
  }

  close(): void {
    this.off();
  }
}

/** The tracks a transcoder reads: the feed's first video and first audio track. */
function inputTracks(feed: Feed, wantVideo: boolean, wantAudio: boolean): Track[] {
  const video = wantVideo ? feed.tracks.find((t) => t.kind === 'video') : undefined;
  const audio = wantAudio ? feed.tracks.find((t) => t.kind === 'audio') : undefined;
  return [video, audio].filter((t): t is Track => t !== undefined);
}

export class Transcoder extends TypedEmitter<TranscoderEvents> {
  readonly id: string;
  readonly kind: 'ladder' | 'raw';
  readonly source: Feed;
  /** ladder: the feed every variant is published into, as tracks. */
  readonly derived: Feed | undefined;
  private raw: RawOutput | undefined;
  private readonly opts: TranscoderOptions;
  private readonly log: Logger;
  private readonly proc: FfmpegProcess;
  private refs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private active = false;
  private input: FeedToStdin | undefined;
  private session: PublisherSession | undefined;
  private releaseSource: (() => void) | undefined;
  private readonly offSource: (() => void)[] = [];
  private tracksSig = '';
  private closed = false;
  readonly stats: TranscoderStats = { framesToFfmpeg: 0, framesDropped: 0, bytesFromFfmpeg: 0 };

  constructor(opts: TranscoderOptions) {
    super(opts.log);
    this.opts = opts;
    this.id = opts.id;
    this.kind = opts.kind;
    this.source = opts.source;
    this.log = opts.log.child({ transcoder: opts.id });
    if (opts.kind === 'ladder') {
      this.derived = opts.feeds.derive(opts.id, DERIVED_FEED_MIN_GRACE_MS);
    }
    this.proc = new FfmpegProcess({
      name: `transcoder ${opts.id}`,
      command: opts.ffmpegPath,
      args: () => this.args(),
      log: this.log,
      stdin: 'pipe',
      onSpawn: (child) => this.wire(child),
      ...(opts.backoff !== undefined ? { backoff: opts.backoff } : {}),
    });
    this.proc.on('exit', (_err, willRestart) => this.onChildExit(willRestart));
    this.proc.on('failed', () => this.onChildExit(false));
    if (opts.alwaysOn) this.activate();
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get readers(): number {
    return this.refs;
  }

  /** raw: the output readers join now (replaced when ffmpeg restarts with a new file header). */
  output(): RawOutput | undefined {
    return this.raw;
  }

  get lastError(): FeedcastError | undefined {
    return this.proc.lastError;
  }

  status(): TranscoderStatus {
    return {
      ...this.proc.status(),
      id: this.id,
      kind: this.kind,
      feed: this.source.key,
      format: this.opts.profile?.format ?? 'ladder',
      readers: this.refs,
      alwaysOn: this.opts.alwaysOn,
      stats: { ...this.stats },
    };
  }

  /** A reader starts: the transcoder runs until the last one leaves plus the idle timeout. */
  acquire(): () => void {
    this.refs++;
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    this.activate();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.refs--;
      if (this.refs === 0 && !this.opts.alwaysOn && !this.closed) {
        this.idleTimer = setTimeout(() => {
          this.idleTimer = undefined;
          this.log.info('idle, stopping', { idleTimeoutMs: this.opts.settings.idleTimeoutMs });
          detach(this.deactivate('idle'), this.log, 'idle stop');
        }, this.opts.settings.idleTimeoutMs);
        this.idleTimer.unref();
      }
    };
  }

  private activate(): void {
    if (this.active || this.closed) return;
    this.active = true;
    this.releaseSource = this.opts.acquireSource?.();
    this.offSource.push(
      this.source.on('tracks', (tracks) => this.onSourceTracks(tracks)),
      this.source.on('idle', () => detach(this.proc.stop(), this.log, 'stop on idle source')),
      this.source.on('close', () => detach(this.close(), this.log, 'close with its source')),
    );
    if (this.source.tracks.length > 0) this.onSourceTracks(this.source.tracks);
  }

  private onSourceTracks(tracks: readonly Track[]): void {
    const sig = tracks.map((t) => `${t.id}:${t.codec}:${t.width ?? ''}x${t.height ?? ''}:${t.sampleRate ?? ''}`).join(',');
    if (this.proc.running && sig !== this.tracksSig) {
      this.log.info('source tracks changed, restarting ffmpeg');
      this.tracksSig = sig;
      const restart = this.proc.stop().then(() => {
        if (this.active) this.proc.start();
      });
      detach(restart, this.log, 'restart on new source tracks');
      return;
    }
    this.tracksSig = sig;
    this.proc.start();
  }

  private wantKinds(): { video: boolean; audio: boolean } {
    if (this.opts.profile !== undefined) {
      return { video: this.opts.profile.video !== undefined, audio: this.opts.profile.audio !== undefined };
    }
    return {
      video: this.opts.variants.some((v) => v.profile.video !== undefined),
      audio: this.opts.variants.some((v) => v.profile.audio !== undefined),
    };
  }

  private args(): string[] {
    const want = this.wantKinds();
    const tracks = inputTracks(this.source, want.video, want.audio);
    const input = { hasVideo: tracks.some((t) => t.kind === 'video'), hasAudio: tracks.some((t) => t.kind === 'audio') };
    if (this.kind === 'ladder')
      return ladderArgs(
        this.opts.variants.map((v) => v.profile),
        input,
      );
    if (this.opts.profile === undefined) throw new Error(`transcoder ${this.id}: a raw transcoder needs a profile`);
    return transcodeArgs(this.opts.profile, input);
  }

  private wire(child: ChildProcess): void {
    const want = this.wantKinds();
    const tracks = inputTracks(this.source, want.video, want.audio);
    if (child.stdin !== null) {
      this.input?.close();
      this.input = new FeedToStdin(this.source, tracks, child.stdin, this.stats);
    }
    const stdout = child.stdout;
    if (stdout === null) return;
    const fail = (err: unknown): void => {
      this.log.warn('ffmpeg output cannot be followed, restarting it', { err });
      child.kill('SIGKILL');
    };
    if (this.derived !== undefined) {
      this.session?.end('ffmpeg restarted');
      const session = this.derived.attachPublisher({
        protocol: 'transcode',
        remoteAddress: `ffmpeg pid ${child.pid ?? '?'}`,
        startedAt: new Date(),
      });
      this.session = session;
      const wantVideos = this.ladderVideoTracks(tracks);
      const demuxer = new TsDemuxer({
        onTracks: (t) => {
          // The demuxer gives up on a track whose codec config is late (2 s of stream time): a
          // ladder without its video would serve sound only, for ever. Start ffmpeg again.
          const videos = t.filter((x) => x.kind === 'video').length;
          if (videos < wantVideos) {
            this.log.warn('ladder output lacks video tracks, restarting ffmpeg', { videos, expected: wantVideos });
            child.kill('SIGKILL');
            return;
          }
          session.setTracks(t);
        },
        onFrame: (f) => session.write(f),
        onWarning: (m) => this.log.debug('transcoder output', { warning: m }),
      });
      stdout.on('data', (d: Buffer) => {
        this.stats.bytesFromFfmpeg += d.length;
        session.touch(d.length);
        try {
          demuxer.push(d);
        } catch (err) {
          fail(err);
        }
      });
      return;
    }
    const profile = this.opts.profile;
    if (profile === undefined) return;
    const framer = framerFor(profile.format);
    if (framer === undefined) return;
    if (this.raw !== undefined && !this.raw.isEnded && survivesRestart(profile.format)) {
      this.raw.restart(framer);
    } else {
      this.raw?.end('ffmpeg restarted');
      this.raw = new RawOutput(
        this.id,
        contentTypeOf(profile),
        framer,
        {
          settings: this.opts.settings,
          ...(profile.format === 'mpjpeg' || profile.format === 'jpeg' ? { wrap: mpjpegPart } : {}),
        },
        this.log,
      );
      this.safeEmit('output', this.raw);
    }
    const raw = this.raw;
    stdout.on('data', (d: Buffer) => {
      this.stats.bytesFromFfmpeg += d.length;
      try {
        raw.write(d);
      } catch (err) {
        fail(err);
      }
    });
  }

  /** How many video tracks the ladder's output must carry: one per variant with video, if the input has video. */
  private ladderVideoTracks(input: readonly Track[]): number {
    if (!input.some((t) => t.kind === 'video')) return 0;
    return this.opts.variants.filter((v) => v.profile.video !== undefined).length;
  }

  private onChildExit(willRestart: boolean): void {
    this.input?.close();
    this.input = undefined;
    this.session?.end(willRestart ? 'ffmpeg exited; restarting' : 'ffmpeg stopped');
    this.session = undefined;
    if (!willRestart && this.raw !== undefined && !survivesRestart(this.opts.profile?.format ?? '')) {
      this.raw.end('ffmpeg stopped');
    }
  }

  private async deactivate(reason: string): Promise<void> {
    if (!this.active) return;
    this.active = false;
    for (const off of this.offSource.splice(0)) off();
    await this.proc.stop();
    this.raw?.end(reason);
    this.raw = undefined;
    this.releaseSource?.();
    this.releaseSource = undefined;
  }

  /** Stops ffmpeg and ends every reader. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    await this.deactivate('server stopping');
    if (this.derived !== undefined) this.opts.feeds.removeDerived(this.derived);
  }
}

function contentTypeOf(profile: TranscodeProfile): string {
  switch (profile.format) {
    case 'mpjpeg':
    case 'jpeg':
      return 'multipart/x-mixed-replace;boundary=ffserver';
    case 'webm':
      return profile.video === undefined ? 'audio/webm' : 'video/webm';
    case 'ogg':
    case 'oga':
    case 'opus':
      return profile.video === undefined ? 'audio/ogg' : 'video/ogg';
    case 'matroska':
    case 'mka':
      return profile.video === undefined ? 'audio/x-matroska' : 'video/x-matroska';
    case 'mp3':
    case 'mp2':
      return 'audio/mpeg';
    case 'adts':
      return 'audio/aac';
    case 'mp4':
      return 'video/mp4';
    case 'mpeg':
      return 'video/mpeg';
    case 'mpeg1video':
      return 'video/mpeg';
    case 'mjpeg':
      return 'video/x-mjpeg';
    case 'flv':
    case 'asf':
    case 'rm':
    case 'swf':
    case 'avi':
      // ffserver's MIME types: its muxers' (ref §3.5).
      return lookupFormat(profile.format)?.contentType ?? 'application/octet-stream';
    default:
      return 'application/octet-stream';
  }
}

/**
 * One variant of a multi-variant feed (published by `feedcast publish`, or made by a ladder
 * transcoder) as a Feed of its own: the variant's video and audio tracks, copied, no ffmpeg.
 */
export class VariantSelector {
  readonly id: string;
  readonly derived: Feed;
  private readonly source: Feed;
  private readonly variants: readonly Variant[];
  private readonly variant: Variant;
  private readonly feeds: DerivedFeeds;
  private readonly log: Logger;
  private session: PublisherSession | undefined;
  private ids = new Set<number>();
  private selected: Track[] = [];
  private readonly off: (() => void)[] = [];

  constructor(id: string, source: Feed, variants: readonly Variant[], variant: Variant, feeds: DerivedFeeds, log: Logger) {
    this.id = id;
    this.source = source;
    this.variants = variants;
    this.variant = variant;
    this.feeds = feeds;
    this.log = log.child({ selector: id });
    this.derived = feeds.derive(id, DERIVED_FEED_MIN_GRACE_MS);
    this.off.push(
      source.on('tracks', (tracks) => this.onTracks(tracks)),
      source.on('frame', (frame) => this.onFrame(frame)),
      source.on('idle', () => this.endSession('source idle')),
      // The source's publisher left (ffmpeg stopped or restarted): no stale GOP for new readers;
      // the next frames attach a new session, which starts at a keyframe.
      source.on('publisher', (info) => {
        if (info === undefined) this.endSession('source publisher left');
      }),
    );
    if (source.tracks.length > 0) {
      this.onTracks(source.tracks);
      // This variant's last keyframe, with the audio from there (not another variant's keyframe).
      for (const frame of source.gopCache(this.selected.find((t) => t.kind === 'video')?.id)) this.onFrame(frame);
    }
  }

  private onFrame(frame: Frame): void {
    if (!this.ids.has(frame.trackId)) return;
    if (this.session === undefined || this.session.isEnded) this.attach();
    this.session?.write(frame);
  }

  private attach(): void {
    this.session = this.derived.attachPublisher({ protocol: 'variant', remoteAddress: this.source.key, startedAt: new Date() });
    this.session.setTracks(this.selected);
  }

  /** Whether the source's tracks currently carry this variant. */
  get matched(): boolean {
    return this.ids.size > 0;
  }

  private onTracks(tracks: readonly Track[]): void {
    const found = tracksOfVariant(tracks, this.variants, this.variant);
    if (found === undefined) {
      this.ids = new Set();
      this.endSession('source does not carry the variant');
      return;
    }
    const selected = [found.video, found.audio].filter((t): t is Track => t !== undefined);
    this.selected = selected;
    this.ids = new Set(selected.map((t) => t.id));
    if (this.session === undefined || this.session.isEnded) this.attach();
    else this.session.setTracks(selected);
    this.log.debug('variant selected', { tracks: selected.map((t) => t.id).join(',') });
  }

  private endSession(reason: string): void {
    this.session?.end(reason);
    this.session = undefined;
  }

  close(): void {
    for (const off of this.off.splice(0)) off();
    this.endSession('closed');
    this.feeds.removeDerived(this.derived);
  }
}
