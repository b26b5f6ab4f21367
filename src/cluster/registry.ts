// The cluster's shared state in Redis (ClusterRedis, docs/cluster.md): each node and each feed published on
// a node is a key with a TTL that the node's heartbeat renews; changes are announced on channels so every
// node keeps a synchronous mirror of where each feed is and which nodes there are. Redis going away leaves the
// node serving locally.

import { Redis } from 'ioredis';
import { layerParentOf } from '../config/names.js';
import type { Logger } from '../observability/logger.js';
import { detach } from '../observability/detach.js';
import { TypedEmitter } from '../typed-emitter.js';

const PREFIX = 'feedcast:';
const NODE_PREFIX = `${PREFIX}node:`;
const FEED_PREFIX = `${PREFIX}feed:`;
const RELAY_PREFIX = `${PREFIX}relay:`;
/** Every change of a feed's registration is announced here (the message is the feed's key). */
const CHANGES = `${PREFIX}changes`;
/**
 * A node joining or leaving is announced here (the message is its name), so the others see a new RelayVia
 * parent at once rather than at their next heartbeat; the heartbeat still reads the nodes (a node that dies
 * without leaving is gone when its key expires).
 */
const NODES = `${PREFIX}nodes`;

/** Deletes a key only while it still names this node (a feed that moved away is not ours to remove). */
const DELETE_IF_OURS = `local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).node == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export interface NodeRecord {
  readonly name: string;
  /** How the other nodes reach its HTTP port (NodeURL). */
  readonly url: string;
  readonly startedAt: string;
  readonly version: string;
  /** Its RelayVia parent, if it has one: every node can tell whether a relay would go round a loop. */
  readonly relayVia?: string;
}

export interface TrackSummary {
  readonly id: number;
  readonly kind: 'video' | 'audio';
  readonly codec: string;
}

export interface FeedRecord {
  readonly feed: string;
  /** The node it is published on, and that node's URL. */
  readonly node: string;
  readonly url: string;
  readonly protocol: string;
  readonly tracks: readonly TrackSummary[];
  readonly startedAt: string;
}

export interface RelayRecord {
  readonly feed: string;
  /** The node that relays, and the node it relays from. */
  readonly node: string;
  readonly from: string;
  readonly startedAt: string;
  readonly bytes: number;
  readonly reconnects: number;
  /** Milliseconds the hop adds (cluster/relay.ts), when measured. */
  readonly delayMs: number | undefined;
}

export type RegistryEvents = {
  /** The Redis connection was lost (`up` false) or is back (`up` true, after everything was registered again). */
  redis: [up: boolean];
  /** The mirror learned that a feed's registration changed (registered, moved or removed). */
  feedChanged: [key: string, record: FeedRecord | undefined];
};

/**
 * What the cluster (cluster.ts, relays.ts) uses of a registry: Redis (ClusterRegistry, below), or with
 * `Workers N` and no ClusterRedis the primary process over IPC (worker-registry.ts).
 */
export interface Registry {
  readonly nodeName: string;
  /** Whether the registry answers now (IPC: always). */
  readonly connected: boolean;
  readonly outages: number;
  on<K extends keyof RegistryEvents>(event: K, listener: (...args: RegistryEvents[K]) => void): () => void;
  start(): Promise<void>;
  remoteFeed(key: string): FeedRecord | undefined;
  feeds(): FeedRecord[];
  nodes(): readonly NodeRecord[];
  relays(): readonly RelayRecord[];
  registerFeed(record: Omit<FeedRecord, 'node' | 'url'>): void;
  unregisterFeed(feedKey: string): void;
  registerRelay(feedKey: string, read: () => RelayRecord): void;
  unregisterRelay(feedKey: string): void;
  snapshot(): Promise<{ nodes: NodeRecord[]; feeds: FeedRecord[]; relays: RelayRecord[] } | undefined>;
  close(): Promise<void>;
}

export interface RegistryOptions {
  readonly redisUrl: string;
  readonly node: NodeRecord;
  readonly ttlMs: number;
}

/** One node's view of, and entries in, the cluster registry. */
export class ClusterRegistry extends TypedEmitter<RegistryEvents> implements Registry {
  private readonly options: RegistryOptions;
  private readonly log: Logger;
  private readonly client: Redis;
  private readonly subscriber: Redis;
  /** What this node has registered, renewed by the heartbeat and written again after an outage. */
  private readonly ownFeeds = new Map<string, FeedRecord>();
  private readonly ownRelays = new Map<string, () => RelayRecord>();
  /** Every feed of the cluster by lowercased key, as last read. */
  private readonly mirror = new Map<string, FeedRecord>();
  /** The nodes (read again when one joins or leaves) and relays of the cluster, as read at the last heartbeat. */
  private nodesSeen: NodeRecord[] = [];
  private relaysSeen: RelayRecord[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private up = false;
  /** Whether the loss of Redis has been logged (once per outage). */
  private reportedDown = false;
  private closed = false;
  /** Times the connection to Redis was lost (metrics). */
  outages = 0;

  constructor(options: RegistryOptions, log: Logger) {
    super(log);
    this.options = options;
    this.log = log.child({ part: 'cluster' });
    const redisOptions = {
      lazyConnect: true,
      // Fail at once while Redis is away: the node serves its own feeds meanwhile.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt: number) => Math.min(100 * attempt, 2000),
      connectionName: `feedcast:${options.node.name}`,
    };
    this.client = new Redis(options.redisUrl, redisOptions);
    this.subscriber = new Redis(options.redisUrl, { ...redisOptions, enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.client.on('error', () => undefined); // reported by 'close'/'ready' below, once per outage
    this.subscriber.on('error', () => undefined);
    this.client.on('ready', () => this.onReady());
    this.client.on('close', () => this.onLost());
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === NODES) this.refreshNodes();
      else this.refreshFeed(message);
    });
  }

  get nodeName(): string {
    return this.options.node.name;
  }

  /** Whether Redis answers now. */
  get connected(): boolean {
    return this.up;
  }

  /** Connects (waiting at most `timeoutMs`; the node starts local-only if Redis is away) and starts the heartbeat. */
  async start(timeoutMs = 5000): Promise<void> {
    // Not awaited: with Redis away it completes when Redis comes (and ioredis subscribes again after each outage).
    this.subscriber.subscribe(CHANGES, NODES).catch(() => undefined);
    const connected = this.client.connect().then(
      () => true,
      () => false,
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const ok = await Promise.race([connected, timedOut]);
    clearTimeout(timer);
    if (ok) await this.registerAll();
    else this.onLost();
    this.heartbeat = setInterval(
      () => detach(this.beat(), this.log, 'cluster: heartbeat'),
      Math.max(300, Math.floor(this.options.ttlMs / 3)),
    );
    this.heartbeat.unref();
  }

  /**
   * The feed published on another node under `key` (any case), from the mirror. A simulcast layer `FEED~RID`
   * of such a feed is there too, on its feed's node (layers are not registered: their feed is).
   */
  remoteFeed(key: string): FeedRecord | undefined {
    const lower = key.toLowerCase();
    const record = this.mirror.get(lower);
    if (record !== undefined) return record.node !== this.options.node.name ? record : undefined;
    const parentKey = layerParentOf(lower);
    const parent = parentKey !== undefined ? this.mirror.get(parentKey) : undefined;
    if (parent === undefined || parent.node === this.options.node.name) return undefined;
    return { ...parent, feed: `${parent.feed}${key.slice(parent.feed.length)}` };
  }

  /** Every feed registered in the cluster, as last read. */
  feeds(): FeedRecord[] {
    return [...this.mirror.values()];
  }

  /** The nodes of the cluster, as read when one last joined or left, or at the last heartbeat. */
  nodes(): readonly NodeRecord[] {
    return this.nodesSeen;
  }

  /** Every relay of the cluster, as read at the last heartbeat. */
  relays(): readonly RelayRecord[] {
    return this.relaysSeen;
  }

  /** Registers a feed published on this node (again, when its tracks change). */
  registerFeed(record: Omit<FeedRecord, 'node' | 'url'>): void {
    const full: FeedRecord = { ...record, node: this.options.node.name, url: this.options.node.url };
    this.ownFeeds.set(record.feed.toLowerCase(), full);
    this.mirror.set(record.feed.toLowerCase(), full);
    detach(this.writeFeed(full, true), this.log, 'cluster: register feed');
  }

  /** The feed's publisher on this node left: its registration goes, unless another node took it over. */
  unregisterFeed(feedKey: string): void {
    const key = feedKey.toLowerCase();
    if (!this.ownFeeds.delete(key)) return;
    if (this.mirror.get(key)?.node === this.options.node.name) this.mirror.delete(key);
    this.detached('unregister feed', async () => {
      const removed = await this.client.eval(DELETE_IF_OURS, 1, FEED_PREFIX + key, this.options.node.name);
      if (removed === 1) await this.client.publish(CHANGES, key);
    });
  }

  /** Lists a relay this node runs; `read` is asked for its figures at each heartbeat. */
  registerRelay(feedKey: string, read: () => RelayRecord): void {
    this.ownRelays.set(feedKey.toLowerCase(), read);
    detach(this.writeRelay(feedKey.toLowerCase(), read()), this.log, 'cluster: register relay');
  }

  unregisterRelay(feedKey: string): void {
    const key = feedKey.toLowerCase();
    if (!this.ownRelays.delete(key)) return;
    this.detached('unregister relay', () => this.client.del(`${RELAY_PREFIX}${key}:${this.options.node.name}`));
  }

  /** The nodes, feeds and relays of the cluster, read from Redis now (GET /api/v1/cluster). */
  async snapshot(): Promise<{ nodes: NodeRecord[]; feeds: FeedRecord[]; relays: RelayRecord[] } | undefined> {
    if (!this.up) return undefined;
    try {
      const [nodes, feeds, relays] = await Promise.all([
        this.readAll<NodeRecord>(NODE_PREFIX),
        this.readAll<FeedRecord>(FEED_PREFIX),
        this.readAll<RelayRecord>(RELAY_PREFIX),
      ]);
      return { nodes, feeds, relays };
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    if (this.up) {
      // Leave at once rather than by TTL: our node, our feeds and our relays.
      try {
        for (const key of this.ownFeeds.keys()) {
          const removed = await this.client.eval(DELETE_IF_OURS, 1, FEED_PREFIX + key, this.options.node.name);
          if (removed === 1) await this.client.publish(CHANGES, key);
        }
        const relayKeys = [...this.ownRelays.keys()].map((k) => `${RELAY_PREFIX}${k}:${this.options.node.name}`);
        await this.client.del(NODE_PREFIX + this.options.node.name, ...relayKeys);
        await this.client.publish(NODES, this.options.node.name);
      } catch (err) {
        this.log.debug('cluster: leaving the registry failed; it expires by TTL', { err });
      }
    }
    this.ownFeeds.clear();
    this.ownRelays.clear();
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  private onReady(): void {
    if (this.closed || this.up || this.heartbeat === undefined) return; // the first connection: start() registers
    detach(this.registerAll(), this.log, 'cluster: register again');
  }

  private onLost(): void {
    if (this.closed) return;
    this.up = false;
    if (this.reportedDown) return;
    this.reportedDown = true;
    this.outages++;
    this.log.error("cluster: Redis is unreachable; serving this node's own feeds only until it is back", {
      redis: redactRedisUrl(this.options.redisUrl),
    });
    this.safeEmit('redis', false);
  }

  /** After a (re)connection: this node, its feeds and relays are written again, and the mirror read whole. */
  private async registerAll(): Promise<void> {
    try {
      await this.writeNode();
      await this.client.publish(NODES, this.options.node.name);
      for (const record of this.ownFeeds.values()) await this.writeFeed(record, true);
      for (const [key, read] of this.ownRelays) await this.writeRelay(key, read());
      await this.readMirror();
      this.nodesSeen = await this.readAll<NodeRecord>(NODE_PREFIX);
      this.relaysSeen = await this.readAll<RelayRecord>(RELAY_PREFIX);
    } catch (err) {
      this.log.warn('cluster: registering in Redis failed', { err });
      return;
    }
    const wasDown = this.reportedDown;
    this.up = true;
    this.reportedDown = false;
    if (wasDown) this.log.info('cluster: Redis is back; this node is registered again');
    else this.log.info('cluster: joined', { node: this.options.node.name, url: this.options.node.url });
    this.safeEmit('redis', true);
  }

  private async beat(): Promise<void> {
    if (this.closed || !this.up) return;
    try {
      await this.writeNode();
      for (const record of this.ownFeeds.values()) await this.writeFeed(record, false);
      for (const [key, read] of this.ownRelays) await this.writeRelay(key, read());
      await this.readMirror();
      this.nodesSeen = await this.readAll<NodeRecord>(NODE_PREFIX);
      this.relaysSeen = await this.readAll<RelayRecord>(RELAY_PREFIX);
    } catch {
      // 'close' reports the outage; a slow answer is retried at the next beat.
    }
  }

  private writeNode(): Promise<unknown> {
    return this.client.set(NODE_PREFIX + this.options.node.name, JSON.stringify(this.options.node), 'PX', this.options.ttlMs);
  }

  private async writeFeed(record: FeedRecord, announce: boolean): Promise<void> {
    if (!this.up && !announce) return;
    await this.run('register feed', async () => {
      const key = record.feed.toLowerCase();
      await this.client.set(FEED_PREFIX + key, JSON.stringify(record), 'PX', this.options.ttlMs);
      if (announce) await this.client.publish(CHANGES, key);
    });
  }

  private async writeRelay(key: string, record: RelayRecord): Promise<void> {
    await this.run('register relay', () =>
      this.client.set(`${RELAY_PREFIX}${key}:${this.options.node.name}`, JSON.stringify(record), 'PX', this.options.ttlMs),
    );
  }

  private detached(what: string, command: () => Promise<unknown>): void {
    detach(this.run(what, command), this.log, `cluster: ${what}`);
  }

  /** Runs a Redis command; while Redis is away it fails quietly (the heartbeat writes everything again later). */
  private async run(what: string, command: () => Promise<unknown>): Promise<void> {
    if (this.closed) return;
    try {
      await command();
    } catch (err) {
      if (this.up) this.log.debug(`cluster: ${what} failed`, { err });
    }
  }

  private async readMirror(): Promise<void> {
    const records = await this.readAll<FeedRecord>(FEED_PREFIX);
    const seen = new Set<string>();
    for (const record of records) {
      const key = record.feed.toLowerCase();
      seen.add(key);
      const before = this.mirror.get(key);
      this.mirror.set(key, record);
      if (before?.node !== record.node) this.safeEmit('feedChanged', key, record);
    }
    for (const key of [...this.mirror.keys()]) {
      if (seen.has(key) || this.ownFeeds.has(key)) continue;
      this.mirror.delete(key);
      this.safeEmit('feedChanged', key, undefined);
    }
  }

  private refreshFeed(key: string): void {
    this.detached('read feed', async () => {
      const text = await this.client.get(FEED_PREFIX + key);
      const record = text !== null ? parseRecord<FeedRecord>(text) : undefined;
      const before = this.mirror.get(key);
      if (record === undefined) {
        if (this.ownFeeds.has(key)) return;
        this.mirror.delete(key);
      } else {
        this.mirror.set(key, record);
      }
      if (before?.node !== record?.node) this.safeEmit('feedChanged', key, record);
    });
  }

  /** A node joined or left (NODES): the nodes are read again now. */
  private refreshNodes(): void {
    this.detached('read nodes', async () => {
      this.nodesSeen = await this.readAll<NodeRecord>(NODE_PREFIX);
    });
  }

  private async readAll<T>(prefix: string): Promise<T[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0' && keys.length < 100_000);
    if (keys.length === 0) return [];
    const values = await this.client.mget(...keys);
    return values.flatMap((v) => {
      const record = v !== null ? parseRecord<T>(v) : undefined;
      return record !== undefined ? [record] : [];
    });
  }
}

function parseRecord<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** The Redis URL without its password, for logs. */
export function redactRedisUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return 'redis://?';
  }
}
