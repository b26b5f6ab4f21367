// The one way a reader gets in, whatever its protocol: the name is resolved (feed or stream, any case),
// the authorisation policy decides (ACL, DynamicACL, read tokens, JWT, hooks, callback), then the reader
// takes its MaxReaders slot and its bandwidth (the configured bitrate of an encoded stream, the measured
// rate of a feed it passes through) and, for a Launch/Source feed, holds the on-demand source. The answer
// is an Admission (a disposable that holds all of that and cuts the reader when its credentials expire)
// or a Refusal with its status, which each protocol translates (refusalFor* below).

import type { ServerConfig, StreamConfig } from '../config/config.js';
import { nameKey } from '../config/names.js';
import type { Feed } from '../feed/feed.js';
import type { FeedManager } from '../feed/feed-manager.js';
import type { Logger } from '../observability/logger.js';
import { AuthPolicy, cutAtExpiry, type AuthCredentials, type AuthDecision, type AuthRequest } from './auth.js';
import type { ConnectionInfo, ConnectionRegistry } from './connections.js';
import { LoginThrottle } from './login-throttle.js';
import { addressLimitReason, costKbps, ReaderLimits, type ReaderCost, type ReaderResource } from './limits.js';
import { TypedEmitter } from '../typed-emitter.js';

/** What the access service reads from the running server, live (the config is replaced by a reload). */
export interface AccessDeps {
  readonly config: ServerConfig;
  readonly feeds: FeedManager;
  readonly connections: ConnectionRegistry;
  readonly log: Logger;
  /** Starts a feed's on-demand Launch/Source child for one reader; undefined when it has none. */
  readonly children: { acquireSource(feedKey: string): (() => void) | undefined } | undefined;
}

export type ReadProtocol = 'http' | 'hls' | 'rtmp' | 'rtsp' | 'webrtc' | 'srt';

/** What a read name resolves to: a declared stream (with its feed, if live) or a feed. */
export interface ReadTarget {
  /** The canonical name: the stream's name or the feed's key. */
  readonly name: string;
  readonly feed: Feed | undefined;
  readonly stream: StreamConfig | undefined;
}

export interface AdmitRequest {
  protocol: ReadProtocol;
  /** A name to resolve, or a target resolved already. */
  target: string | ReadTarget;
  address: string;
  credentials: AuthCredentials;
  /** Whether the admission holds the feed's on-demand source (default true). */
  holdSource?: boolean;
  /** What the reader costs when it is not the default (stream Bandwidth, else the feed's measured rate). */
  cost?: ReaderCost;
}

/** Why a reader is not let in. `cause` picks the protocol's answer; `status` is HTTP's. */
export interface Refusal {
  readonly kind: 'refused';
  readonly cause: 'not-found' | 'unauthorized' | 'forbidden' | 'readers' | 'bandwidth' | 'unavailable' | 'redirect';
  readonly status: 302 | 401 | 403 | 404 | 503;
  readonly reason: string;
  /** For `redirect`: where to. */
  readonly location?: string | undefined;
}

/** A reader let in: holds its slot, bandwidth and source until released (idempotent, also by `using`). */
export interface Admission extends Disposable {
  readonly kind: 'admitted';
  readonly target: ReadTarget & { readonly feed: Feed };
  readonly protocol: ReadProtocol;
  readonly address: string;
  /** When the credentials that let it in expire (ms since the epoch), if they do. */
  readonly expiresAt: number | undefined;
  /** Whether it holds an on-demand Launch/Source child of its feed. */
  readonly sourced: boolean;
  /** What it costs against MaxBandwidth now, in kbit/s. */
  readonly costKbps: () => number;
  /** Calls `cut` when the credentials expire (TokenExpiryCutsReaders); released with the admission. */
  readonly cutAtExpiry: (cut: () => void) => void;
  /** Gives everything back. */
  readonly release: () => void;
}

export type AccessEvents = {
  /** A reader was let in. */
  read: [Admission];
  /** That reader left (its admission released), after `durationMs`. */
  readEnd: [Admission, number];
  /** A reader was refused (after its log line). */
  refused: [AdmitRequest, Refusal];
};

export class Access extends TypedEmitter<AccessEvents> {
  readonly policy: AuthPolicy;
  /** Failed ControlUser logins per address (429 with a doubling wait after a few). */
  readonly controlLogins = new LoginThrottle();
  private readonly deps: AccessDeps;
  private readonly limits = new ReaderLimits();

  constructor(deps: AccessDeps) {
    super(deps.log);
    this.deps = deps;
    this.policy = new AuthPolicy(deps);
  }

  /** A feed key (`feed1`, `feed1.ffm`) or a declared stream name, in any case; streams first. */
  resolve(name: string): ReadTarget | undefined {
    const key = nameKey(name);
    const stream = this.deps.config.streams.find((s) => nameKey(s.name) === key);
    if (stream !== undefined) {
      return { name: stream.name, stream, feed: stream.feed !== undefined ? this.deps.feeds.get(stream.feed) : undefined };
    }
    const feed = this.deps.feeds.get(name);
    return feed !== undefined ? { name: feed.key, feed, stream: undefined } : undefined;
  }

  /** kbit/s promised to readers now. */
  get bandwidthInUseKbps(): number {
    return this.limits.bandwidthInUseKbps();
  }

  /** Readers counted for a feed (by key) or a declared stream (by name). */
  readerCount(resource: ReaderResource): number {
    return this.limits.readerCount(resource);
  }

  /** Why a new connection from `address` is refused (MaxConnectionsPerAddress), or undefined. */
  addressLimitReason(address: string, self?: ConnectionInfo): string | undefined {
    return addressLimitReason(this.deps.config, this.deps.connections.list(), address, self);
  }

  /** The policy alone (publishers, RTSP DESCRIBE): what the credentials allow, no slot taken. */
  authorize(request: AuthRequest): Promise<AuthDecision> {
    return this.policy.authorize(request);
  }

  /** Resolves, authorises and counts one reader, with one log line when refused. Never throws. */
  async admit(request: AdmitRequest): Promise<Admission | Refusal> {
    const admitted = await this.admitOrRefuse(request);
    if (admitted.kind === 'admitted') return this.reported(admitted);
    const target = typeof request.target === 'string' ? request.target.slice(0, 100) : request.target.name;
    const fields = {
      protocol: request.protocol,
      target,
      from: request.address,
      status: admitted.status,
      reason: admitted.reason,
    };
    if (admitted.cause === 'redirect') this.deps.log.info('read redirected by the authorisation policy', fields);
    else if (admitted.cause === 'readers') this.deps.log.warn('reader refused: MaxReaders', fields);
    else if (admitted.cause === 'bandwidth') this.deps.log.warn('reader refused: MaxBandwidth', fields);
    else this.deps.log.warn('read refused', fields);
    this.safeEmit('refused', request, admitted);
    return admitted;
  }

  /** The admission, telling listeners (lifecycle hooks, /api/v1/events) when it starts and ends. */
  private reported(admission: Admission): Admission {
    const startedAt = Date.now();
    const giveBack = admission.release;
    let ended = false;
    const release = (): void => {
      if (ended) return;
      ended = true;
      giveBack();
      this.safeEmit('readEnd', reported, Date.now() - startedAt);
    };
    const reported: Admission = { ...admission, release, [Symbol.dispose]: release };
    this.safeEmit('read', reported);
    return reported;
  }

  private async admitOrRefuse(request: AdmitRequest): Promise<Admission | Refusal> {
    const asked = request.target;
    const target = typeof asked === 'string' ? this.resolve(asked) : asked;
    if (target === undefined) {
      return refused(
        'not-found',
        404,
        `No feed or stream named "${typeof asked === 'string' ? asked.slice(0, 100) : asked.name}".`,
      );
    }
    const feed = target.feed;
    if (feed === undefined) {
      return refused('not-found', 404, `${target.name} is not fed by a live feed.`);
    }
    const decision = await this.policy.authorize({
      action: 'read',
      protocol: request.protocol,
      feed: feed.key,
      stream: target.stream?.name,
      address: request.address,
      credentials: request.credentials,
    });
    if (decision.kind === 'redirect') {
      return {
        kind: 'refused',
        cause: 'redirect',
        status: 302,
        reason: `redirected to ${decision.location}`,
        location: decision.location,
      };
    }
    if (decision.kind === 'deny') {
      const cause =
        decision.status === 401
          ? 'unauthorized'
          : decision.status === 403
            ? 'forbidden'
            : decision.status === 404
              ? 'not-found'
              : 'unavailable';
      return refused(cause, decision.status, decision.reason);
    }
    const stream = target.stream;
    const cost: ReaderCost =
      request.cost ?? (stream !== undefined && stream.bandwidthKbps > 0 ? { kbps: stream.bandwidthKbps } : { feed });
    const resource: ReaderResource = stream !== undefined ? { stream: stream.name } : { feed: feed.key };
    const slot = this.limits.acquire(this.deps.config, resource, cost);
    if (!('release' in slot)) return refused(slot.limit, 503, slot.reason);
    const releaseSource = request.holdSource !== false ? this.deps.children?.acquireSource(feed.key) : undefined;
    const disarms: (() => void)[] = [];
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      for (const disarm of disarms.splice(0)) disarm();
      slot.release();
      releaseSource?.();
    };
    const expiresAt = decision.expiresAt;
    return {
      kind: 'admitted',
      target: { ...target, feed },
      protocol: request.protocol,
      address: request.address,
      expiresAt,
      sourced: releaseSource !== undefined,
      costKbps: () => costKbps(cost),
      cutAtExpiry: (cut) => {
        if (released) return;
        disarms.push(
          cutAtExpiry(this.deps, decision, { protocol: request.protocol, target: target.name, from: request.address }, cut),
        );
      },
      release,
      [Symbol.dispose]: release,
    };
  }
}

function refused(cause: Refusal['cause'], status: Refusal['status'], reason: string): Refusal {
  return { kind: 'refused', cause, status, reason };
}

// ---------------------------------------------------------------------------------------------------------------
// Each protocol's answer to a refusal.

/** RTMP play: onStatus code (NetStream.Play.*) and description. */
export function rtmpPlayRefusal(refusal: Refusal): { code: string; description: string } {
  const code = refusal.cause === 'not-found' ? 'NetStream.Play.StreamNotFound' : 'NetStream.Play.Failed';
  return { code, description: refusal.reason };
}

/** RTSP: 401 (with a challenge), 403, 404, 453 Not Enough Bandwidth, 503 (MaxReaders), or 302. */
export function rtspRefusalStatus(refusal: Refusal): number {
  if (refusal.cause === 'bandwidth') return 453;
  return refusal.status;
}

/** WHEP: 401/403 for credentials, 404, 503 for limits (with Retry-After), 302. */
export function whepRefusalStatus(refusal: Refusal): number {
  return refusal.status;
}
