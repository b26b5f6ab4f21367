// One on-demand relay of a feed published on another node of the cluster: an HTTP MPEG-TS read of
// ORIGIN/FEED.ts (the origin's ordinary reader path, starting from its GOP cache), demuxed into this node's
// feed as its publisher. Shared by every local reader; reconnects while read; stops RelayIdleTimeout after
// its last reader left.

import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FeedBusyError } from '../errors.js';
import type { Feed, PublisherSession } from '../feed/feed.js';
import { DEFAULT_JUMP_LIMIT_90K, type SharedClockOrigin } from '../feed/feed-clock.js';
import { TsDemuxer } from '../formats/mpegts/ts-demuxer.js';
import type { ByteBudget } from '../media/byte-budget.js';
import { TS_WRAP } from '../media/timebase.js';
import type { Logger } from '../observability/logger.js';
import type { FeedRecord } from './registry.js';
import { RELAY_HEADER } from './relay-header.js';

export { RELAY_HEADER } from './relay-header.js';

const MIN_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;
/** Delay samples kept (one per PES, about 2 s of a 25 fps feed with audio); the median is reported. */
const DELAY_SAMPLES = 128;
/** The status a node answers a relay request that would close a RelayVia loop with (Loop Detected). */
const LOOP_DETECTED = 508;

/** A node a relay reads from: the feed's origin, or the parent named by RelayVia. */
export interface RelaySource {
  readonly node: string;
  readonly url: string;
}

export interface RelaySettings {
  /** This node's name (sent to the origin). */
  readonly nodeName: string;
  readonly idleTimeoutMs: number;
  /** The address relays connect from (HTTPBindAddress when it names one): the origin sees this node's address. */
  readonly localAddress?: string;
  /** The server's cap on unfinished PES of every MPEG-TS ingest. */
  readonly pesBudget?: ByteBudget;
  /** RelayVia: the parent to read from instead of `origin` (undefined: the origin itself). */
  readonly via?: (origin: FeedRecord) => RelaySource | undefined;
}

export interface RelayStatus {
  readonly feed: string;
  /** The node relayed from (the origin, or the RelayVia parent), and its URL; undefined while no origin is known. */
  readonly from: string | undefined;
  readonly url: string | undefined;
  /** The node the feed is published on. */
  readonly origin: string | undefined;
  readonly state: 'connecting' | 'relaying' | 'waiting' | 'idle';
  readonly readers: number;
  readonly startedAt: Date;
  readonly bytes: number;
  readonly frames: number;
  /** Connections made again after the first (origin restarts, moves, network errors). */
  readonly reconnects: number;
  /**
   * Milliseconds this hop adds: from the node read muxing a frame to this node's demuxer completing it (the
   * median of the last frames; 0 and up), when measured. Needs the nodes' clocks in step (NTP).
   */
  readonly delayMs: number | undefined;
}

export class Relay {
  readonly feed: Feed;
  private readonly origin: () => FeedRecord | undefined;
  private readonly settings: RelaySettings;
  private readonly log: Logger;
  private readonly onStop: () => void;
  private readers = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = MIN_RETRY_MS;
  private request: ClientRequest | undefined;
  private session: PublisherSession | undefined;
  /** The feed's registration when the current connection was made, and the node that connection reads. */
  private connectedTo: FeedRecord | undefined;
  private source: RelaySource | undefined;
  private connections = 0;
  private stopped = false;
  private readonly startedAt = new Date();
  private bytes = 0;
  private frames = 0;
  /** The last DELAY_SAMPLES delays (ms), a ring, and how many were taken. */
  private readonly delays = new Float64Array(DELAY_SAMPLES);
  private delayCount = 0;
  /** The RelayVia parent refused a read as a loop: this relay reads the origin itself. */
  private bypassVia = false;
  /** The DTS of the last frame relayed, on the origin's clock (what a new connection's frames are compared with). */
  private newestOriginDts90k: number | undefined;
  /** When the current connection was asked for (performance.now()), for the start-up figures logged. */
  private connectStartedAt = 0;

  constructor(feed: Feed, origin: () => FeedRecord | undefined, settings: RelaySettings, log: Logger, onStop: () => void) {
    this.feed = feed;
    this.origin = origin;
    this.settings = settings;
    this.log = log.child({ relay: feed.key });
    this.onStop = onStop;
  }

  /** A reader of the feed starts: the relay runs until it leaves (plus RelayIdleTimeout). */
  acquire(): () => void {
    this.readers++;
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    if (this.request === undefined && this.retryTimer === undefined) this.connect();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.readers--;
      if (this.readers > 0 || this.stopped) return;
      this.idleTimer = setTimeout(() => {
        this.idleTimer = undefined;
        this.log.info('relay: no readers, stopping', { idleTimeoutMs: this.settings.idleTimeoutMs });
        this.stop();
      }, this.settings.idleTimeoutMs);
      this.idleTimer.unref();
    };
  }

  /** The feed's registration changed: a relay reading another node than the one now named pulls from it instead. */
  originChanged(): void {
    if (this.stopped) return;
    const now = this.origin();
    if (now === undefined || (this.connectedTo !== undefined && now.node === this.connectedTo.node)) return;
    this.log.info('relay: the feed moved, pulling from its new origin', { from: now.node });
    this.retryMs = MIN_RETRY_MS;
    this.disconnect('the feed moved to another node');
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.connect();
  }

  /**
   * One frame's delay on this hop: the node read stamps the end of each PES with its clock when it muxes it
   * (formats/mpegts/relay-mark.ts). The frames of its backlog (the GOP it starts with) were muxed earlier:
   * their samples are large, and the median of the last DELAY_SAMPLES leaves them out once the pull runs.
   */
  private measureDelay(sentAtMs: number, nowMs: number): void {
    this.delays[this.delayCount % DELAY_SAMPLES] = Math.max(0, nowMs - sentAtMs);
    this.delayCount++;
  }

  /**
   * Whether a frame of a new connection was relayed by the last one: at or before its newest frame, by less than
   * a timestamp jump (further back, it is another timeline: a node that took the feed over, whose times FeedClock
   * places after the feed's end).
   */
  private alreadyRelayed(originDts90k: number): boolean {
    const newest = this.newestOriginDts90k;
    return newest !== undefined && originDts90k <= newest && originDts90k > newest - DEFAULT_JUMP_LIMIT_90K;
  }

  private medianDelayMs(): number | undefined {
    const n = Math.min(this.delayCount, DELAY_SAMPLES);
    if (n === 0) return undefined;
    const sorted = this.delays.slice(0, n).sort();
    return sorted[Math.floor(n / 2)];
  }

  status(): RelayStatus {
    const delay = this.medianDelayMs();
    const origin = this.connectedTo ?? this.origin();
    const source = this.source ?? origin;
    return {
      feed: this.feed.key,
      from: source?.node,
      url: source?.url,
      origin: origin?.node,
      state: this.stopped
        ? 'idle'
        : this.session !== undefined
          ? 'relaying'
          : this.request !== undefined
            ? 'connecting'
            : 'waiting',
      readers: this.readers,
      startedAt: this.startedAt,
      bytes: this.bytes,
      frames: this.frames,
      reconnects: Math.max(0, this.connections - 1),
      delayMs: delay !== undefined ? Math.round(delay * 10) / 10 : undefined,
    };
  }

  /** Stops pulling: the feed's publisher leaves (its readers wait PublisherGracePeriod as for any publisher). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.idleTimer = this.retryTimer = undefined;
    this.disconnect('relay stopped');
    this.onStop();
  }

  private connect(): void {
    if (this.stopped) return;
    const origin = this.origin();
    if (origin === undefined) {
      // Not published anywhere (yet, or any more): ask again while readers wait.
      this.retryLater();
      return;
    }
    const source = (this.bypassVia ? undefined : this.settings.via?.(origin)) ?? { node: origin.node, url: origin.url };
    const url = new URL(`${source.url}/${encodeURIComponent(this.feed.key)}.ts`);
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      headers: { [RELAY_HEADER]: this.settings.nodeName },
      agent: false,
      ...(this.settings.localAddress !== undefined ? { localAddress: this.settings.localAddress } : {}),
    });
    this.request = request;
    this.connectStartedAt = performance.now();
    this.connectedTo = origin;
    this.source = source;
    this.connections++;
    request.on('response', (res) => this.relay(request, res, source));
    request.on('error', (err) => this.ended(request, `relay connection failed: ${err.message}`));
    request.on('close', () => this.ended(request, 'relay connection closed'));
    request.end();
  }

  private relay(request: ClientRequest, res: IncomingMessage, origin: RelaySource): void {
    if (res.statusCode === LOOP_DETECTED && origin.node !== this.connectedTo?.node) {
      // Our RelayVia parent would relay the feed through us again: read the origin itself.
      this.bypassVia = true;
      this.retryMs = 0;
      readReason(res, (reason) => {
        this.log.error('relay: RelayVia loop, refused by the parent; reading the origin directly', {
          parent: origin.node,
          reason,
        });
        request.destroy();
      });
      return;
    }
    if (res.statusCode !== 200) {
      this.log.warn('relay: the origin refused the read', { from: origin.node, status: res.statusCode });
      res.resume();
      request.destroy();
      return;
    }
    let session: PublisherSession;
    // The feed follows the origin's timeline (the same frame, the same time on every node); the offset is set at
    // the first frame, from its mark. After a move to a node whose timeline lies behind, FeedClock goes on from
    // this feed's end instead (never back).
    const clock: SharedClockOrigin = { keepsJumps: true };
    try {
      session = this.feed.attachPublisher(
        { protocol: 'relay', remoteAddress: `${origin.node} ${origin.url}`, startedAt: new Date() },
        Date.now(),
        clock,
      );
    } catch (err) {
      if (!(err instanceof FeedBusyError)) throw err;
      this.log.info('relay: the feed has a publisher on this node; not relaying', { reason: err.message });
      request.destroy();
      this.stop();
      return;
    }
    this.session = session;
    session.on('end', (reason) => {
      if (this.session !== session) return; // ended by this relay
      // A publisher on this node took the feed over (Feed.attachPublisher): it is this node's own now.
      this.session = undefined;
      this.log.info('relay: stopping, the feed has a publisher on this node', { reason });
      this.stop();
    });
    const responseMs = Math.round(performance.now() - this.connectStartedAt);
    this.log.info('relay: relaying', { from: origin.node, url: origin.url, responseMs });
    let firstFrame = true;
    let markDts90k: number | undefined;
    // A connection after the first starts with the origin's GOP, partly relayed already: those frames are skipped
    // (they cannot be placed again without going back), so the feed stays on the origin's timeline.
    let catchingUp = this.newestOriginDts90k !== undefined;
    const pesBudget = this.settings.pesBudget;
    const demuxer = new TsDemuxer(
      {
        onTracks: (tracks) => session.setTracks(tracks),
        onFrame: (frame) => {
          this.frames++;
          if (firstFrame) {
            firstFrame = false;
            clock.offset90k = originOffset90k(markDts90k, frame.dts90k);
            this.log.info('relay: first frame', { ms: Math.round(performance.now() - this.connectStartedAt) });
          }
          const originDts90k = frame.dts90k + (clock.offset90k ?? 0);
          if (catchingUp && this.alreadyRelayed(originDts90k)) return;
          catchingUp = false;
          this.newestOriginDts90k = originDts90k;
          session.write(frame);
        },
        onWarning: (message) => this.log.debug('relay input', { warning: message }),
      },
      {
        ...(pesBudget !== undefined ? { pesBudget } : {}),
        onRelayMark: (mark) => {
          markDts90k = mark.dts90k;
          this.measureDelay(mark.sentAtMs, Date.now());
        },
      },
    );
    res.once('close', () => demuxer.close());
    res.on('data', (data: Buffer) => {
      this.bytes += data.length;
      this.retryMs = MIN_RETRY_MS;
      session.touch(data.length);
      try {
        demuxer.push(data);
      } catch (err) {
        this.log.warn('relay input cannot be followed, reconnecting', { err });
        request.destroy();
      }
    });
  }

  private ended(request: ClientRequest, reason: string): void {
    if (request !== this.request) return;
    this.request = undefined;
    const session = this.session;
    this.session = undefined;
    session?.end(reason);
    if (this.stopped) return;
    this.log.info('relay: connection ended', { reason });
    this.retryLater();
  }

  private retryLater(): void {
    if (this.stopped || this.retryTimer !== undefined) return;
    const waitMs = this.retryMs;
    this.retryMs = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, this.retryMs * 2));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, waitMs);
    this.retryTimer.unref();
  }

  private disconnect(reason: string): void {
    const request = this.request;
    const session = this.session;
    this.request = undefined;
    this.session = undefined;
    request?.destroy();
    session?.end(reason);
  }
}

/**
 * What turns the relay stream's DTS into the origin's feed DTS: the PES timestamps are the origin's modulo 2^33
 * (the demuxer unwraps them from their first value on), the mark of the same frame has it whole. Whole wraps
 * only; 0 without a DTS in the mark (an older origin: right for feeds younger than 26.5 hours).
 */
function originOffset90k(markDts90k: number | undefined, demuxedDts90k: number): number {
  if (markDts90k === undefined) return 0;
  return Math.round((markDts90k - demuxedDts90k) / TS_WRAP) * TS_WRAP;
}

/** The first line of a refusal's body (at most 500 characters), for the log. */
function readReason(res: IncomingMessage, done: (reason: string) => void): void {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => {
    if (text.length < 500) text += d;
  });
  res.once('close', () => done(text.split('\n')[0]?.slice(0, 500) ?? ''));
}
