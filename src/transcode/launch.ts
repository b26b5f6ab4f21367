// Feeds whose publisher is an ffmpeg child the server runs itself: `Launch` (ffserver ref §2.3)
// and `Source URL` (pull rtsp/rtmp/http/srt, a v4l2 device or a file; looped unless NoLoop).
// The child writes MPEG-TS on stdout, demuxed in-process into the feed. On demand (started by
// the first reader, stopped after the idle timeout) or always on.

import type { ChildProcess } from 'node:child_process';
import { FeedBusyError } from '../errors.js';
import type { Feed, PublisherSession } from '../feed/feed.js';
import { TsDemuxer } from '../formats/mpegts/ts-demuxer.js';
import type { Logger } from '../observability/logger.js';
import type { ServerContext } from '../server-context.js';
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
  private readonly idleTimeoutMs: number;
  private refs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private session: PublisherSession | undefined;
  private closed = false;

  constructor(
    spec: FeedSourceSpec,
    feed: Feed,
    ffmpegPath: string,
    log: Logger,
    idleTimeoutMs: number,
    backoff?: BackoffOptions,
  ) {
    this.spec = spec;
    this.feed = feed;
    this.log = log.child({ source: spec.feedKey });
    this.onDemand = spec.onDemand ?? true;
    this.idleTimeoutMs = idleTimeoutMs;
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
        this.log.info('no readers, stopping the source', { idleTimeoutMs: this.idleTimeoutMs });
        detach(this.proc.stop(), this.log, 'source stop');
      }, this.idleTimeoutMs);
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
    const demuxer = new TsDemuxer({
      onTracks: (t) => session.setTracks(t),
      onFrame: (f) => session.write(f),
      onWarning: (m) => this.log.debug('source output', { warning: m }),
    });
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
  private readonly log: Logger;
  /** Why sources could not be started (no ffmpeg), per feed. */
  readonly unavailable = new Map<string, string>();

  constructor(ctx: ServerContext, options: SourceManagerOptions = {}) {
    this.log = ctx.log.child({ part: 'sources' });
    const specs = sourceSpecsOf(ctx.config);
    for (const f of ctx.config.feeds) {
      if (f.launch !== undefined && f.source !== undefined) {
        this.log.warn('feed has both Launch and Source; Launch is used', { feed: f.key, where: f.where });
      }
    }
    for (const s of options.sources ?? []) {
      const at = specs.findIndex((x) => x.feedKey === s.feedKey);
      if (at >= 0) specs.splice(at, 1, s);
      else specs.push(s);
    }
    if (options.onDemand !== undefined) for (const [i, s] of specs.entries()) specs[i] = { ...s, onDemand: options.onDemand };
    if (specs.length === 0) return;
    const ffmpeg = resolveFfmpeg(ctx.config.ffmpegPath);
    for (const spec of specs) {
      const feed = ctx.feeds.get(spec.feedKey);
      if (feed === undefined) {
        this.log.warn('source for an unknown feed ignored', { feed: spec.feedKey });
        continue;
      }
      if (!ffmpeg.ok) {
        this.unavailable.set(spec.feedKey, ffmpeg.reason);
        this.log.error('feed source cannot run', { feed: spec.feedKey, reason: ffmpeg.reason });
        continue;
      }
      this.sources.set(
        spec.feedKey,
        new FeedSource(
          spec,
          feed,
          ffmpeg.path,
          this.log,
          options.idleTimeoutMs ?? ctx.config.transcodeIdleTimeoutMs,
          options.backoff,
        ),
      );
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
