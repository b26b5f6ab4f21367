// Feeds whose publisher is an ffmpeg child the server runs itself: `Launch` (ffserver ref §2.3)
// and `Source URL` (pull rtsp/rtmp/http/srt, a v4l2 device or a file; looped unless NoLoop).
// The child writes MPEG-TS on stdout, demuxed in-process into the feed. On demand (started by
// the first reader, stopped after the idle timeout) or always on.

import type { ChildProcess } from 'node:child_process';
import { FeedBusyError } from '../errors.js';
import type { Feed, PublisherSession } from '../feed/feed.js';
import type { FeedManager } from '../feed/feed-manager.js';
import { TsDemuxer } from '../formats/mpegts/ts-demuxer.js';
import type { Logger } from '../observability/logger.js';
import type { ByteBudget } from '../media/byte-budget.js';
import type { ServerConfig } from '../config/config.js';
import { isFileSource, launchArgs, pullArgs, resolveFfmpeg } from './ffmpeg-args.js';
import { FfmpegProcess, type BackoffOptions, type FfmpegProcessStatus } from '../process/ffmpeg-process.js';
import { detach } from '../observability/detach.js';

export interface FeedSourceSpec {
  feedKey: string;
  /** `Launch` argv as written, or undefined for a pulled `Source`. */
  launch?: readonly string[];
  /** `Source URL`. */
  url?: string;
  /** `NoLoop`: a file source plays once; the feed then ends. */
  noLoop?: boolean;
  /** Re-encode a pulled source to H.264/AAC (`SourceTranscode`). */
  transcode?: boolean;
  /** false: started with the server and kept running (`OnDemand off`). */
  onDemand?: boolean;
}

export interface SourceManagerOptions {
  /** Extra or replacing sources (tests); by default every feed with `Launch` or `Source` has one. */
  sources?: readonly FeedSourceSpec[];
  /** Overrides every feed's `OnDemand` (tests). */
  onDemand?: boolean;
  /** Overrides `TranscodeIdleTimeout`. */
  idleTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** The server's cap on unfinished PES of every MPEG-TS ingest (a pulled stream is as hostile as a pushed one). */
  pesBudget?: ByteBudget;
}

/** The sources a config declares: `Launch` (wins when both are given) or `Source`, with OnDemand and NoLoop. */
export function sourceSpecsOf(config: ServerConfig): FeedSourceSpec[] {
  const specs: FeedSourceSpec[] = [];
  for (const f of config.feeds) {
    if (f.launch !== undefined) specs.push({ feedKey: f.key, launch: f.launch, onDemand: f.onDemand });
    else if (f.source !== undefined) specs.push({ feedKey: f.key, url: f.source, noLoop: !f.loop, onDemand: f.onDemand });
  }
  return specs;
}

export interface SourceSettings {
  /** `TranscodeIdleTimeout`: how long an on-demand source runs after its last reader left. */
  readonly idleTimeoutMs: number;
  /** Shared by every source's demuxer, and by the server's other MPEG-TS ingests. */
  readonly pesBudget?: ByteBudget;
}

export interface FeedSourceStatus extends FfmpegProcessStatus {
  feed: string;
  kind: 'launch' | 'pull';
  readers: number;
  onDemand: boolean;
}

export class FeedSource {
  readonly spec: FeedSourceSpec;
  private readonly feed: Feed;
  private readonly log: Logger;
  private readonly proc: FfmpegProcess;
  private readonly onDemand: boolean;
  /** The manager's, read when the last reader leaves (a reload changes it). */
  private readonly settings: SourceSettings;
  private refs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private session: PublisherSession | undefined;
  private closed = false;

  constructor(
    spec: FeedSourceSpec,
    feed: Feed,
    ffmpegPath: string,
    log: Logger,
    settings: SourceSettings,
    backoff?: BackoffOptions,
  ) {
    this.spec = spec;
    this.feed = feed;
    this.log = log.child({ source: spec.feedKey });
    this.onDemand = spec.onDemand ?? true;
    this.settings = settings;
    const file = spec.url !== undefined && isFileSource(spec.url);
    this.proc = new FfmpegProcess({
      name: `${spec.launch !== undefined ? 'launch' : 'source'} ${spec.feedKey}`,
      command: ffmpegPath,
      args: () =>
        spec.launch !== undefined
          ? launchArgs(spec.launch)
          : pullArgs(spec.url ?? '', { loop: !(spec.noLoop ?? false), transcode: spec.transcode ?? false }),
      log: this.log,
      stdin: 'ignore',
      onSpawn: (child) => this.wire(child),
      // A file played once (NoLoop) ends the feed; everything else is restarted when it exits.
      restartOnCleanExit: !(file && (spec.noLoop ?? false)),
      ...(backoff !== undefined ? { backoff } : {}),
    });
    this.proc.on('exit', () => this.endSession('source ffmpeg exited'));
    if (!this.onDemand) this.proc.start();
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Whether this source publishes into `feed` (a reload may have replaced the feed). */
  serves(feed: Feed | undefined): boolean {
    return feed === this.feed;
  }

  status(): FeedSourceStatus {
    return {
      ...this.proc.status(),
      feed: this.spec.feedKey,
      kind: this.spec.launch !== undefined ? 'launch' : 'pull',
      readers: this.refs,
      onDemand: this.onDemand,
    };
  }

  /** A reader of the feed starts: the source runs until it leaves (plus the idle timeout). */
  acquire(): () => void {
    this.refs++;
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    if (!this.closed) this.proc.start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.refs--;
      if (this.refs > 0 || !this.onDemand || this.closed) return;
      this.idleTimer = setTimeout(() => {
        this.idleTimer = undefined;
        this.log.info('no readers, stopping the source', { idleTimeoutMs: this.settings.idleTimeoutMs });
        detach(this.proc.stop(), this.log, 'source stop');
      }, this.settings.idleTimeoutMs);
      this.idleTimer.unref();
    };
  }

  private wire(child: ChildProcess): void {
    this.endSession('source restarted');
    let session: PublisherSession;
    try {
      session = this.feed.attachPublisher({
        protocol: this.spec.launch !== undefined ? 'launch' : 'pull',
        remoteAddress: `ffmpeg pid ${child.pid ?? '?'}`,
        startedAt: new Date(),
      });
    } catch (err) {
      if (!(err instanceof FeedBusyError)) throw err;
      this.log.info('the feed already has a publisher; the source is not needed', { reason: err.message });
      detach(this.proc.stop(), this.log, 'source stop');
      return;
    }
    this.session = session;
    const pesBudget = this.settings.pesBudget;
    const demuxer = new TsDemuxer(
      {
        onTracks: (t) => session.setTracks(t),
        onFrame: (f) => session.write(f),
        onWarning: (m) => this.log.debug('source output', { warning: m }),
      },
      pesBudget !== undefined ? { pesBudget } : {},
    );
    // What this child's demuxer holds goes back to the shared budget when its output ends.
    child.stdout?.once('close', () => demuxer.close());
    child.stdout?.on('data', (d: Buffer) => {
      session.touch(d.length);
      try {
        demuxer.push(d);
      } catch (err) {
        this.log.warn('source output cannot be followed, restarting it', { err });
        child.kill('SIGKILL');
      }
    });
  }

  private endSession(reason: string): void {
    this.session?.end(reason);
    this.session = undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    await this.proc.stop();
    this.endSession('server stopping');
  }
}

/** Every Launch/Source feed of the config. */
export class SourceManager {
  private readonly sources = new Map<string, FeedSource>();
  private readonly feeds: FeedManager;
  private readonly log: Logger;
  private readonly options: SourceManagerOptions;
  private readonly settings: { idleTimeoutMs: number; pesBudget?: ByteBudget };
  /** Why sources could not be started (no ffmpeg), per feed. */
  readonly unavailable = new Map<string, string>();

  constructor(config: ServerConfig, feeds: FeedManager, log: Logger, options: SourceManagerOptions = {}) {
    this.feeds = feeds;
    this.log = log.child({ part: 'sources' });
    this.options = options;
    this.settings = {
      idleTimeoutMs: options.idleTimeoutMs ?? config.transcodeIdleTimeoutMs,
      ...(options.pesBudget !== undefined ? { pesBudget: options.pesBudget } : {}),
    };
    for (const f of config.feeds) {
      if (f.launch !== undefined && f.source !== undefined) {
        this.log.warn('feed has both Launch and Source; Launch is used', { feed: f.key, where: f.where });
      }
    }
    this.startNew(config, this.specsOf(config));
  }

  /** The settings the sources read now (tests). */
  get settingsNow(): Readonly<SourceSettings> {
    return this.settings;
  }

  private specsOf(config: ServerConfig): FeedSourceSpec[] {
    const specs = sourceSpecsOf(config);
    for (const s of this.options.sources ?? []) {
      const at = specs.findIndex((x) => x.feedKey === s.feedKey);
      if (at >= 0) specs.splice(at, 1, s);
      else specs.push(s);
    }
    const onDemand = this.options.onDemand;
    return onDemand === undefined ? specs : specs.map((s) => ({ ...s, onDemand }));
  }

  /**
   * A new config: TranscodeIdleTimeout applies to running sources; a source whose feed was
   * removed or replaced (a changed Launch, Source, OnDemand...) stops, and the new ones start
   * (the always-on ones at once). Call after FeedManager.applyConfig.
   */
  async applyConfig(config: ServerConfig): Promise<void> {
    this.settings.idleTimeoutMs = this.options.idleTimeoutMs ?? config.transcodeIdleTimeoutMs;
    const specs = this.specsOf(config);
    const wanted = new Map(specs.map((s) => [s.feedKey, s]));
    const stopping: Promise<void>[] = [];
    for (const [key, source] of [...this.sources]) {
      const spec = wanted.get(key);
      if (spec === undefined || JSON.stringify(spec) !== JSON.stringify(source.spec) || !source.serves(this.feeds.get(key))) {
        this.sources.delete(key);
        stopping.push(source.close());
      }
    }
    this.unavailable.clear();
    this.startNew(config, specs);
    await Promise.all(stopping);
  }

  /** Starts the sources of `specs` that do not run yet (synchronously: a reader may come next). */
  private startNew(config: ServerConfig, specs: readonly FeedSourceSpec[]): void {
    if (specs.length === 0) return;
    const ffmpeg = resolveFfmpeg(config.ffmpegPath);
    for (const spec of specs) {
      if (this.sources.has(spec.feedKey)) continue;
      const feed = this.feeds.get(spec.feedKey);
      if (feed === undefined) {
        this.log.warn('source for an unknown feed ignored', { feed: spec.feedKey });
        continue;
      }
      if (!ffmpeg.ok) {
        this.unavailable.set(spec.feedKey, ffmpeg.reason);
        this.log.error('feed source cannot run', { feed: spec.feedKey, reason: ffmpeg.reason });
        continue;
      }
      this.sources.set(spec.feedKey, new FeedSource(spec, feed, ffmpeg.path, this.log, this.settings, this.options.backoff));
    }
  }

  has(feedKey: string): boolean {
    return this.sources.has(feedKey) || this.unavailable.has(feedKey);
  }

  get(feedKey: string): FeedSource | undefined {
    return this.sources.get(feedKey);
  }

  /** Keeps a feed's source running for a reader; undefined when the feed has no source. */
  acquire(feedKey: string): (() => void) | undefined {
    return this.sources.get(feedKey)?.acquire();
  }

  status(): FeedSourceStatus[] {
    return [...this.sources.values()].map((s) => s.status());
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.sources.values()].map((s) => s.close()));
  }
}
