// A node of a Feedcast cluster (ClusterRedis, docs/cluster.md): registers itself and every feed published
// on it in the registry, lets FeedManager find the feeds published elsewhere, and relays those on demand.
// server.ts imports this module only when ClusterRedis is set (the Redis client is loaded with it).

import { hostname } from 'node:os';
import type { ClusterConfig } from '../config/config.js';
import type { Feed, PublisherInfo } from '../feed/feed.js';
import type { FeedManager } from '../feed/feed-manager.js';
import type { ByteBudget } from '../media/byte-budget.js';
import type { Logger } from '../observability/logger.js';
import { ClusterRegistry, type FeedRecord, type NodeRecord, type RelayRecord } from './registry.js';
import { Relays } from './relays.js';
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
}

/** What GET /api/v1/cluster answers. */
export interface ClusterStatus {
  readonly node: NodeRecord;
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
  readonly registry: ClusterRegistry;
  readonly relays: Relays;
  readonly node: NodeRecord;
  private readonly feeds: FeedManager;
  /** The 'tracks' and 'frame' listeners of the feeds published here, removed when their publisher leaves. */
  private readonly watched = new Map<Feed, () => void>();
  private readonly offs: (() => void)[] = [];

  private constructor(config: ClusterConfig, deps: ClusterDeps) {
    const name = config.nodeName ?? `${hostname()}:${deps.httpPort}`;
    const host = isWildcard(deps.bindAddress) ? hostname() : deps.bindAddress;
    const url = config.nodeUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${deps.httpPort}`;
    this.node = { name, url, startedAt: new Date().toISOString(), version: deps.version };
    this.feeds = deps.feeds;
    this.registry = new ClusterRegistry({ redisUrl: config.redisUrl, node: this.node, ttlMs: config.nodeTtlMs }, deps.log);
    this.relays = new Relays(
      this.registry,
      deps.feeds,
      {
        nodeName: name,
        idleTimeoutMs: config.relayIdleTimeoutMs,
        ...(!isWildcard(deps.bindAddress) ? { localAddress: deps.bindAddress } : {}),
        ...(config.relayVia !== undefined ? { via: (origin: FeedRecord) => this.parentFor(origin, config.relayVia) } : {}),
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
    const feeds = this.feeds;
    this.offs.push(
      feeds.on('publish', (feed, info) => this.published(feed, info)),
      feeds.on('unpublish', (feed, info) => this.unpublished(feed, info)),
    );
    for (const feed of feeds.all()) {
      const info = feed.publisher;
      if (info !== undefined) this.published(feed, info);
    }
    feeds.setRemoteLookup((key) => this.registry.remoteFeed(key)?.feed);
    await this.registry.start();
  }

  /** Keeps a relay of a feed published on another node running for one reader (undefined: not one). */
  acquireRelay(feedKey: string): (() => void) | undefined {
    return this.relays.acquire(feedKey);
  }

  /** RelayVia: the parent node, while it is registered and is neither this node nor the feed's origin. */
  private parentFor(origin: FeedRecord, parent: string | undefined): RelaySource | undefined {
    if (parent === undefined || parent === this.node.name || parent === origin.node) return undefined;
    const node = this.registry.nodes().find((n) => n.name === parent);
    return node !== undefined ? { node: node.name, url: node.url } : undefined;
  }

  async status(): Promise<ClusterStatus> {
    const shared = await this.registry.snapshot();
    return {
      node: this.node,
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
    for (const off of this.watched.values()) off();
    this.watched.clear();
    this.feeds.setRemoteLookup(undefined);
    this.relays.closeAll();
    await this.registry.close();
  }

  private published(feed: Feed, info: PublisherInfo): void {
    if (info.protocol === 'relay') return; // a copy of another node's feed: that node is its origin
    const register = (): void =>
      this.registry.registerFeed({
        feed: feed.key,
        protocol: info.protocol,
        tracks: feed.tracks.map((t) => ({ id: t.id, kind: t.kind, codec: t.codec })),
        startedAt: info.startedAt.toISOString(),
      });
    this.watched.get(feed)?.();
    const offTracks = feed.on('tracks', register);
    // The newest frame's DTS and wall time, sent with the heartbeat: relays measure their delay against it.
    const offFrames = feed.on('frame', (frame) =>
      this.registry.updateClock(feed.key, { dts90k: frame.dts90k, atMs: Date.now() }),
    );
    this.watched.set(feed, () => {
      offTracks();
      offFrames();
    });
    register();
  }

  private unpublished(feed: Feed, info: PublisherInfo): void {
    if (info.protocol === 'relay') return;
    this.watched.get(feed)?.();
    this.watched.delete(feed);
    this.registry.unregisterFeed(feed.key);
  }
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '';
}
