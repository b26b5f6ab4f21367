// A node of a Feedcast cluster (ClusterRedis, docs/cluster.md): registers itself and every feed published
// on it in the registry, lets FeedManager find the feeds published elsewhere, and relays those on demand.
// server.ts imports this module only when ClusterRedis is set (the Redis client is loaded with it).

import { hostname } from 'node:os';
import type { ClusterConfig } from '../config/config.js';
import type { Feed, PublisherInfo } from '../feed/feed.js';
import type { FeedManager } from '../feed/feed-manager.js';
import type { ByteBudget } from '../media/byte-budget.js';
import type { Logger } from '../observability/logger.js';
import { ClusterRegistry, type FeedRecord, type NodeRecord, type Registry, type RelayRecord } from './registry.js';
import { Relays } from './relays.js';
import { warmUpRelayPath } from './relay-warm-up.js';
import type { RelaySource, RelayStatus } from './relay.js';

export interface ClusterDeps {
  readonly feeds: FeedManager;
  readonly log: Logger;
  /** The HTTP port the server listens on (NodeName and NodeURL default to it). */
  readonly httpPort: number;
  /** HTTPBindAddress: relays connect from it when it names one address. */
  readonly bindAddress: string;
  readonly version: string;
  readonly pesBudget?: ByteBudget;
  /** `Workers N` without ClusterRedis: the primary process is the registry (worker-registry.ts); else Redis. */
  readonly registry?: (node: NodeRecord) => Registry;
}

/** What GET /api/v1/cluster answers. */
export interface ClusterStatus {
  readonly node: NodeRecord;
  /** What holds the registry: Redis (ClusterRedis), or the primary process of `Workers N`. */
  readonly registry: 'redis' | 'workers';
  /** Whether the registry (Redis) answers; false: this node serves its own feeds only. */
  readonly redis: 'up' | 'down';
  readonly redisOutages: number;
  readonly nodes: readonly NodeRecord[];
  /** Every feed of the cluster and the node it is published on. */
  readonly feeds: readonly FeedRecord[];
  /** Every relay of the cluster (node ← from), with its bytes and delay. */
  readonly relays: readonly RelayRecord[];
  /** This node's relays, in detail. */
  readonly localRelays: readonly RelayStatus[];
}

export class Cluster {
  readonly registry: Registry;
  /** What holds the registry: Redis, or the primary process of `Workers N`. */
  readonly registryKind: 'redis' | 'workers';
  readonly relays: Relays;
  readonly node: NodeRecord;
  private readonly feeds: FeedManager;
  private readonly log: Logger;
  /** The 'tracks' listeners of the feeds published here, removed when their publisher leaves. */
  private readonly watched = new Map<Feed, () => void>();
  /** Feeds whose publisher left this node (lowercased keys), until one publishes here again. */
  private readonly leftHere = new Set<string>();
  /** Feeds whose publisher left this node for another, relayed from there for the readers they had (key → end). */
  private readonly takeovers = new Map<string, () => void>();
  /** The RelayVia loops already logged (feed and requesting node), so that each is logged once. */
  private readonly loopsLogged = new Set<string>();
  private readonly offs: (() => void)[] = [];

  private constructor(config: ClusterConfig, deps: ClusterDeps) {
    const name = config.nodeName ?? `${hostname()}:${deps.httpPort}`;
    const host = isWildcard(deps.bindAddress) ? hostname() : deps.bindAddress;
    const url = config.nodeUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${deps.httpPort}`;
    this.node = {
      name,
      url,
      startedAt: new Date().toISOString(),
      version: deps.version,
      ...(config.relayVia !== undefined ? { relayVia: config.relayVia } : {}),
    };
    this.log = deps.log.child({ part: 'cluster' });
    this.feeds = deps.feeds;
    this.registryKind = deps.registry !== undefined ? 'workers' : 'redis';
    this.registry =
      deps.registry?.(this.node) ??
      new ClusterRegistry({ redisUrl: config.redisUrl, node: this.node, ttlMs: config.nodeTtlMs }, deps.log);
    this.relays = new Relays(
      this.registry,
      deps.feeds,
      {
        nodeName: name,
        idleTimeoutMs: config.relayIdleTimeoutMs,
        ...(!isWildcard(deps.bindAddress) ? { localAddress: deps.bindAddress } : {}),
        ...(config.relayVia !== undefined ? { via: (origin: FeedRecord) => this.parentFor(origin) } : {}),
        ...(deps.pesBudget !== undefined ? { pesBudget: deps.pesBudget } : {}),
      },
      deps.log,
    );
  }

  /** Joins the cluster (local-only until Redis answers, if it does not at once). */
  static async start(config: ClusterConfig, deps: ClusterDeps): Promise<Cluster> {
    const cluster = new Cluster(config, deps);
    await cluster.join();
    return cluster;
  }

  private async join(): Promise<void> {
    this.warmUp();
    const feeds = this.feeds;
    this.offs.push(
      feeds.on('publish', (feed, info) => this.published(feed, info)),
      feeds.on('unpublish', (feed, info) => this.unpublished(feed, info)),
    );
    this.offs.push(
      this.registry.on('feedChanged', (key, record) => {
        if (record === undefined || record.node === this.node.name) return;
        const feed = this.feeds.peek(key);
        if (feed !== undefined) this.takeOver(feed);
      }),
    );
    for (const feed of feeds.all()) {
      const info = feed.publisher;
      if (info !== undefined) this.published(feed, info);
    }
    feeds.setRemoteLookup((key) => this.registry.remoteFeed(key)?.feed);
    await this.registry.start();
  }

  /** The relay path's first run, here rather than at the first viewer's relay (relay-warm-up.ts). */
  private warmUp(): void {
    const startedAt = performance.now();
    try {
      const frames = warmUpRelayPath();
      this.log.debug('cluster: relay path warmed up', { frames, ms: Math.round(performance.now() - startedAt) });
    } catch (err) {
      this.log.warn('cluster: warming up the relay path failed; the first relay will take longer', { err });
    }
  }

  /** Keeps a relay of a feed published on another node running for one reader (undefined: not one). */
  acquireRelay(feedKey: string): (() => void) | undefined {
    return this.relays.acquire(feedKey);
  }

  /** RelayVia: the parent node, while it is registered and is neither this node nor the feed's origin. */
  private parentFor(origin: FeedRecord): RelaySource | undefined {
    const parent = this.parentOf(this.node, origin);
    return parent !== undefined ? { node: parent.name, url: parent.url } : undefined;
  }

  /** The node `node` relays `origin`'s feed through (its RelayVia, under the same rule), if any. */
  private parentOf(node: NodeRecord, origin: FeedRecord): NodeRecord | undefined {
    const via = node.relayVia;
    if (via === undefined || via === node.name || via === origin.node) return undefined;
    return this.registry.nodes().find((n) => n.name === via);
  }

  /**
   * Why node `from` may not relay `feedKey` from this node: this node would relay it through `from` again,
   * directly or further up its RelayVia chain (A via B via A). Undefined when there is no loop. The refusal is
   * logged once per feed and node.
   */
  relayLoop(feedKey: string, from: string): string | undefined {
    const origin = this.registry.remoteFeed(feedKey);
    if (origin === undefined) return undefined; // published here (or nowhere): served from here, not relayed
    const chain = [from, this.node.name];
    let next = this.parentOf(this.node, origin);
    while (next !== undefined) {
      const seen = chain.includes(next.name);
      chain.push(next.name);
      if (seen) {
        const text =
          `RelayVia loop: node ${from} relays ${origin.feed} through ${this.node.name}, which would relay it back ` +
          `(${chain.join(' -> ')}). Make the nodes' RelayVia a tree; ${from} should read the origin ${origin.node} directly.`;
        const logged = `${origin.feed.toLowerCase()} ${from}`;
        if (!this.loopsLogged.has(logged)) {
          this.loopsLogged.add(logged);
          this.log.error('cluster: relay refused, RelayVia loop', { feed: origin.feed, from, chain: chain.join(' -> ') });
        }
        return text;
      }
      next = this.parentOf(next, origin);
    }
    return undefined;
  }

  /**
   * Failover for this node's own viewers: the publisher of `feed` left this node, and the registry shows the
   * feed on another node. While the feed waits for a publisher (PublisherGracePeriod) and has readers here,
   * this node relays it from the new origin into the same feed (its timeline continuing), until they are gone.
   */
  private takeOver(feed: Feed): void {
    const key = feed.key.toLowerCase();
    if (!this.leftHere.has(key) || this.takeovers.has(key) || feed.publisher !== undefined) return;
    if (!hasReaders(feed) || this.feeds.isRelayed(feed)) {
      this.leftHere.delete(key); // nobody here to move
      return;
    }
    const release = this.relays.acquire(feed.key);
    if (release === undefined) return;
    this.log.info('cluster: the feed moved to another node; relaying it from there for its readers here', {
      feed: feed.key,
      origin: this.registry.remoteFeed(key)?.node,
    });
    const end = (): void => {
      clearInterval(check);
      if (this.takeovers.get(key) === end) this.takeovers.delete(key);
      this.leftHere.delete(key);
      release();
    };
    // Until the readers it had are gone (the relay then idles out after RelayIdleTimeout).
    const check = setInterval(() => {
      if (!hasReaders(feed)) end();
    }, 1000);
    check.unref();
    this.takeovers.set(key, end);
  }

  async status(): Promise<ClusterStatus> {
    const shared = await this.registry.snapshot();
    return {
      node: this.node,
      registry: this.registryKind,
      redis: this.registry.connected ? 'up' : 'down',
      redisOutages: this.registry.outages,
      nodes: shared?.nodes ?? [this.node],
      feeds: shared?.feeds ?? this.registry.feeds(),
      relays: shared?.relays ?? [],
      localRelays: this.relays.status(),
    };
  }

  async close(): Promise<void> {
    for (const off of this.offs.splice(0)) off();
    for (const end of [...this.takeovers.values()]) end();
    for (const off of this.watched.values()) off();
    this.watched.clear();
    this.feeds.setRemoteLookup(undefined);
    this.relays.closeAll();
    await this.registry.close();
  }

  private published(feed: Feed, info: PublisherInfo): void {
    if (info.protocol === 'relay') return; // a copy of another node's feed: that node is its origin
    this.leftHere.delete(feed.key.toLowerCase());
    const register = (): void =>
      this.registry.registerFeed({
        feed: feed.key,
        protocol: info.protocol,
        tracks: feed.tracks.map((t) => ({ id: t.id, kind: t.kind, codec: t.codec })),
        startedAt: info.startedAt.toISOString(),
      });
    this.watched.get(feed)?.();
    this.watched.set(feed, feed.on('tracks', register));
    register();
  }

  private unpublished(feed: Feed, info: PublisherInfo): void {
    if (info.protocol === 'relay') return;
    this.watched.get(feed)?.();
    this.watched.delete(feed);
    if (hasReaders(feed)) this.leftHere.add(feed.key.toLowerCase());
    this.registry.unregisterFeed(feed.key);
    // The publisher may already be on another node (it reconnected there before this one saw it leave).
    if (this.registry.remoteFeed(feed.key) !== undefined) this.takeOver(feed);
  }
}

/** Whether anything reads the feed here (outputs, HLS, WHEP ...): what FeedManager's sweep counts as use too. */
function hasReaders(feed: Feed): boolean {
  return feed.listenerCount('frame') > 0 || feed.listenerCount('tracks') > 0;
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '';
}
