// A worker's registry with `Workers N` and no ClusterRedis (docs/cluster.md, "Workers"): the primary process
// is the registry. The worker reports its node, the feeds published on it and its relays over IPC; the primary
// sends back the whole map after each change, kept here as the synchronous mirror the relays read.

import type { Logger } from '../observability/logger.js';
import { TypedEmitter } from '../typed-emitter.js';
import type { FeedRecord, NodeRecord, RegistryEvents, RelayRecord, Registry } from './registry.js';
import { isClusterMap, type ClusterMap, type WorkerReport } from './worker-messages.js';

/** How often the feeds' registrations and the relays' figures are reported (the primary sends its map as often). */
const BEAT_MS = 1000;

export type SendToPrimary = (report: WorkerReport) => void;

/** Reports over this process's IPC channel; a channel already closed (the primary is gone) is ignored. */
function sendOverIpc(report: WorkerReport): void {
  if (process.send === undefined || !process.connected) return;
  process.send(report, undefined, {}, () => undefined);
}

/**
 * With ClusterRedis the registry is Redis, but the primary still learns from this report that the worker serves
 * (it logs `workers ready`, and knows a later death for a crash to recover from, not a failed start).
 */
export function announceWorkerNode(node: NodeRecord): void {
  sendOverIpc({ fc: 'node', node });
}

export class WorkerRegistry extends TypedEmitter<RegistryEvents> implements Registry {
  private readonly node: NodeRecord;
  private readonly send: SendToPrimary;
  private readonly ownFeeds = new Map<string, FeedRecord>();
  private readonly ownRelays = new Map<string, () => RelayRecord>();
  /** Feeds registered to this worker even with no publisher (worker 1's on-demand Launch/Source feeds). */
  private readonly pinned = new Map<string, FeedRecord>();
  private readonly mirror = new Map<string, FeedRecord>();
  private nodesSeen: NodeRecord[] = [];
  private relaysSeen: RelayRecord[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly onMessage = (message: unknown): void => {
    if (isClusterMap(message)) this.receive(message);
  };
  readonly outages = 0;

  constructor(node: NodeRecord, log: Logger, send: SendToPrimary = sendOverIpc) {
    super(log);
    this.node = node;
    this.send = send;
    this.nodesSeen = [node];
  }

  get nodeName(): string {
    return this.node.name;
  }

  /** The primary is this process's parent: it answers while this process runs. */
  get connected(): boolean {
    return true;
  }

  start(): Promise<void> {
    process.on('message', this.onMessage);
    this.send({ fc: 'node', node: this.node });
    for (const record of [...this.pinned.values(), ...this.ownFeeds.values()]) this.send({ fc: 'feed', record });
    this.heartbeat = setInterval(() => this.beat(), BEAT_MS);
    this.heartbeat.unref();
    return Promise.resolve();
  }

  /**
   * Registers `feedKey` to this worker while it has no publisher, so that a reader on another worker relays
   * it from here (and its read starts this worker's on-demand source).
   */
  pin(feedKey: string): void {
    const key = feedKey.toLowerCase();
    const record: FeedRecord = {
      feed: feedKey,
      node: this.node.name,
      url: this.node.url,
      protocol: 'source',
      tracks: [],
      startedAt: new Date().toISOString(),
    };
    this.pinned.set(key, record);
    if (this.ownFeeds.has(key)) return;
    this.mirror.set(key, record);
    this.send({ fc: 'feed', record });
  }

  /**
   * Pins exactly `feedKeys` (a reload added or removed Launch/Source feeds): the new ones are registered here,
   * the ones no longer listed leave the map unless a publisher sends to them here.
   */
  pinOnly(feedKeys: readonly string[]): void {
    const wanted = new Set(feedKeys.map((k) => k.toLowerCase()));
    for (const key of [...this.pinned.keys()]) {
      if (wanted.has(key)) continue;
      this.pinned.delete(key);
      if (this.ownFeeds.has(key)) continue;
      if (this.mirror.get(key)?.node === this.node.name) this.mirror.delete(key);
      this.send({ fc: 'unfeed', key });
    }
    for (const key of feedKeys) if (!this.pinned.has(key.toLowerCase())) this.pin(key);
  }

  remoteFeed(key: string): FeedRecord | undefined {
    const record = this.mirror.get(key.toLowerCase());
    return record !== undefined && record.node !== this.node.name ? record : undefined;
  }

  feeds(): FeedRecord[] {
    return [...this.mirror.values()];
  }

  nodes(): readonly NodeRecord[] {
    return this.nodesSeen;
  }

  relays(): readonly RelayRecord[] {
    return this.relaysSeen;
  }

  registerFeed(record: Omit<FeedRecord, 'node' | 'url'>): void {
    const full: FeedRecord = { ...record, node: this.node.name, url: this.node.url };
    const key = record.feed.toLowerCase();
    this.ownFeeds.set(key, full);
    this.mirror.set(key, full);
    this.send({ fc: 'feed', record: full });
  }

  unregisterFeed(feedKey: string): void {
    const key = feedKey.toLowerCase();
    if (!this.ownFeeds.delete(key)) return;
    const pinned = this.pinned.get(key);
    if (pinned !== undefined) {
      this.mirror.set(key, pinned);
      this.send({ fc: 'feed', record: pinned });
      return;
    }
    if (this.mirror.get(key)?.node === this.node.name) this.mirror.delete(key);
    this.send({ fc: 'unfeed', key });
  }

  registerRelay(feedKey: string, read: () => RelayRecord): void {
    const key = feedKey.toLowerCase();
    this.ownRelays.set(key, read);
    this.send({ fc: 'relay', key, record: read() });
  }

  unregisterRelay(feedKey: string): void {
    const key = feedKey.toLowerCase();
    if (!this.ownRelays.delete(key)) return;
    this.send({ fc: 'unrelay', key });
  }

  snapshot(): Promise<{ nodes: NodeRecord[]; feeds: FeedRecord[]; relays: RelayRecord[] }> {
    return Promise.resolve({ nodes: [...this.nodesSeen], feeds: this.feeds(), relays: [...this.relaysSeen] });
  }

  close(): Promise<void> {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    process.off('message', this.onMessage);
    for (const key of new Set([...this.ownFeeds.keys(), ...this.pinned.keys()])) this.send({ fc: 'unfeed', key });
    for (const key of this.ownRelays.keys()) this.send({ fc: 'unrelay', key });
    this.ownFeeds.clear();
    this.pinned.clear();
    this.ownRelays.clear();
    return Promise.resolve();
  }

  /** The feeds' registrations and the relays' figures, sent again at each beat. */
  private beat(): void {
    for (const record of this.ownFeeds.values()) this.send({ fc: 'feed', record });
    for (const [key, read] of this.ownRelays) this.send({ fc: 'relay', key, record: read() });
  }

  /** The primary's map: the mirror follows it; this worker's own registrations stay as this worker knows them. */
  private receive(map: ClusterMap): void {
    this.nodesSeen = [...map.nodes];
    this.relaysSeen = [...map.relays];
    const seen = new Set<string>();
    for (const record of map.feeds) {
      const key = record.feed.toLowerCase();
      seen.add(key);
      const own = this.ownFeeds.get(key);
      // Our own publisher is the origin here even if the primary's map (or another worker) says otherwise for now.
      const next = own ?? record;
      const before = this.mirror.get(key);
      this.mirror.set(key, next);
      if (before?.node !== next.node) this.safeEmit('feedChanged', key, next);
    }
    for (const key of [...this.mirror.keys()]) {
      if (seen.has(key) || this.ownFeeds.has(key) || this.pinned.has(key)) continue;
      this.mirror.delete(key);
      this.safeEmit('feedChanged', key, undefined);
    }
  }
}
