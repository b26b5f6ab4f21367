// Name -> Feed. The only place feeds are created and destroyed; everything else asks it.

import { feedKeyOf, layerKeyOf, layerParentOf, nameKey } from '../config/names.js';
import type { Logger } from '../observability/logger.js';
import { TypedEmitter } from '../typed-emitter.js';
import { Feed, type FeedOptions, type PublisherInfo } from './feed.js';

export interface FeedManagerOptions extends FeedOptions {
  /** Whether a publisher may create a feed that the config does not declare. */
  dynamicFeeds: boolean;
  /** A dynamic feed without publisher and readers for this long is removed (DynamicFeedTimeout, default 300 s). */
  dynamicFeedTimeoutMs?: number;
}

const DEFAULT_DYNAMIC_FEED_TIMEOUT_MS = 300_000;

/** What FeedManager.applyConfig reads of a config (ServerConfig has it). */
export interface FeedsConfig {
  publisherTimeoutMs: number;
  publisherGraceMs: number;
  dynamicFeeds: boolean;
  dynamicFeedTimeoutMs: number;
  feeds: readonly { name: string; key: string }[];
}

/** Names a dynamic feed may take: safe in URLs, file names and HTML. */
const FEED_KEY = /^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$/;

export { feedKeyOf } from '../config/names.js';

/** A feed's key, or a simulcast layer's (`FEED~RID`, a layer relayed from another node of the cluster). */
function isFeedOrLayerKey(key: string): boolean {
  const parent = layerParentOf(key);
  if (parent === undefined) return FEED_KEY.test(key);
  return FEED_KEY.test(parent) && /^[A-Za-z0-9_-]{1,32}$/.test(key.slice(parent.length + 1));
}

/**
 * Whether a feed this node does not have is published on another node of the cluster (cluster/): the
 * feed's key as published there, or undefined.
 */
export type RemoteFeedLookup = (key: string) => string | undefined;

/**
 * `Workers N` (cluster/worker-claims.ts): asks the primary process for a feed's one publisher slot, so that two
 * publishers of one feed on two workers are refused as on one process. Rejects with FeedBusyError.
 */
export type PublisherClaim = (feed: Feed, protocol: string) => Promise<void>;

export type FeedManagerEvents = {
  /** A publisher started sending `feed` (declared or dynamic feeds; not derived ones). */
  publish: [Feed, PublisherInfo];
  /** That publisher left, with the reason. */
  unpublish: [Feed, PublisherInfo, string];
};

export class FeedManager extends TypedEmitter<FeedManagerEvents> {
  private readonly feeds = new Map<string, Feed>();
  /** Feeds made inside the server from others (a ladder's output, one variant's tracks): not found by name. */
  private readonly derived = new Set<Feed>();
  /**
   * Simulcast layer feeds (`FEED~RID`) by map key: found by get() (readers), never by forPublisher;
   * `owner` is the parent's publisher that sends them.
   */
  private readonly layers = new Map<string, { parent: Feed; feed: Feed; owner: PublisherInfo }>();
  /** Read live by every feed (the same object): a reload changes the timeouts of feeds that exist. */
  private readonly options: FeedManagerOptions;
  private readonly log: Logger;
  /** Dynamic feeds by key, with the time since which each has had no publisher and no reader. */
  private readonly dynamic = new Map<string, number | undefined>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** The cluster's view of the feeds published on other nodes; undefined on a single node. */
  private remote: RemoteFeedLookup | undefined;
  /** Keys of the feeds made for a relay from another node (a kind of dynamic feed). */
  private readonly relayed = new Set<string>();
  /** Workers N: the primary arbitrates between the workers' publishers; undefined on one process. */
  private claim: PublisherClaim | undefined;

  constructor(options: FeedManagerOptions, log: Logger) {
    super(log);
    this.options = { ...options };
    this.log = log;
  }

  /**
   * A new config: PublisherTimeout, PublisherGracePeriod and DynamicFeeds apply to every feed at
   * once; feeds in `replace` (removed or changed: their readers were told by the reload) are
   * closed, and every declared feed exists afterwards. Dynamic feeds stay unless DynamicFeeds
   * went off (`diff.feedsReplaced`: config/reload-rules.ts). Returns the keys of the feeds closed.
   */
  applyConfig(next: FeedsConfig, diff: { readonly feedsReplaced: ReadonlySet<string> }): string[] {
    this.options.publisherTimeoutMs = next.publisherTimeoutMs;
    this.options.publisherGraceMs = next.publisherGraceMs;
    this.options.dynamicFeeds = next.dynamicFeeds;
    if (this.options.dynamicFeedTimeoutMs !== next.dynamicFeedTimeoutMs && this.sweepTimer !== undefined) {
      // The sweep runs at a quarter of the timeout: start it again at the new pace.
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
      this.options.dynamicFeedTimeoutMs = next.dynamicFeedTimeoutMs;
      this.startSweep();
    }
    this.options.dynamicFeedTimeoutMs = next.dynamicFeedTimeoutMs;
    const declared = new Set(next.feeds.map((f) => nameKey(feedKeyOf(f.name))));
    const replaced = new Set([...diff.feedsReplaced].map(nameKey));
    const closed: string[] = [];
    for (const [mapKey, feed] of [...this.feeds]) {
      if (replaced.has(mapKey) || (!declared.has(mapKey) && !next.dynamicFeeds)) {
        this.remove(mapKey);
        closed.push(feed.key);
      }
    }
    for (const f of next.feeds) this.declare(f.name);
    return closed;
  }

  /** The settings feeds read now (status, tests). */
  settings(): Readonly<FeedManagerOptions> {
    return this.options;
  }

  /**
   * A feed derived inside the server from another (ladder output, variant selector), named `id`:
   * not reachable by name nor listed with the feeds. Its grace period is at least `minGraceMs`
   * (a restarting ffmpeg must not end its readers); both timeouts follow reloads.
   */
  derive(id: string, minGraceMs = 0): Feed {
    const shared = this.options;
    const options: FeedOptions = {
      get publisherTimeoutMs() {
        return shared.publisherTimeoutMs;
      },
      get publisherGraceMs() {
        return Math.max(shared.publisherGraceMs, minGraceMs);
      },
    };
    const feed = new Feed(id, id, options, this.log);
    this.derived.add(feed);
    return feed;
  }

  /** Closes a feed made by derive(). */
  removeDerived(feed: Feed): void {
    if (this.derived.delete(feed)) feed.close();
  }

  /**
   * The feeds of the simulcast layers `rids` that `owner`, the publisher of `parent`, sends (a WHIP
   * offer with a=simulcast): `PARENT~RID` each, made at the first such publisher and kept while the
   * parent lives, so their readers survive a reconnect. Layers of `parent` not in `rids` are closed.
   */
  setLayers(parent: Feed, rids: readonly string[], owner: PublisherInfo): Feed[] {
    const keep = new Set(rids.map((rid) => nameKey(layerKeyOf(parent.key, rid))));
    for (const [key, layer] of [...this.layers]) {
      if (layer.parent === parent && !keep.has(key)) {
        this.layers.delete(key);
        layer.feed.close();
      }
    }
    if (rids.length > 0 && ![...this.layers.values()].some((l) => l.parent === parent)) {
      parent.on('close', () => this.setLayers(parent, [], owner));
    }
    return rids.map((rid) => {
      const key = layerKeyOf(parent.key, rid);
      const existing = this.layers.get(nameKey(key));
      if (existing !== undefined) {
        existing.owner = owner;
        return existing.feed;
      }
      const feed = new Feed(key, key, this.options, this.log);
      this.layers.set(nameKey(key), { parent, feed, owner });
      this.log.info('simulcast layer feed', { feed: key });
      return feed;
    });
  }

  /**
   * The layer feeds of `parent` while its publisher (or, between publishers, its last one) sends
   * them, in the publisher's order; empty for every other feed.
   */
  layersOf(parent: Feed): Feed[] {
    const out: Feed[] = [];
    for (const layer of this.layers.values()) {
      if (layer.parent !== parent) continue;
      if (parent.publisher !== undefined && parent.publisher !== layer.owner) return [];
      out.push(layer.feed);
    }
    return out;
  }

  /** The feed whose simulcast layer `feed` is, or undefined when it is not a layer feed. */
  parentOfLayer(feed: Feed): Feed | undefined {
    const layer = this.layers.get(nameKey(feed.key));
    return layer?.feed === feed ? layer.parent : undefined;
  }

  /** Declares a configured feed (`<Feed feed1.ffm>`), reachable as `feed1`. */
  declare(name: string): Feed {
    const key = feedKeyOf(name);
    const existing = this.feeds.get(nameKey(key));
    this.dynamic.delete(nameKey(key)); // declared by the config now: kept for good
    this.relayed.delete(nameKey(key));
    if (existing !== undefined) return existing;
    const feed = new Feed(name, key, this.options, this.log);
    this.feeds.set(nameKey(key), feed);
    feed.on('publisher', (info) => {
      if (info !== undefined) this.safeEmit('publish', feed, info);
    });
    feed.on('unpublished', (info, reason) => this.safeEmit('unpublish', feed, info, reason));
    return feed;
  }

  /**
   * The feed named by `key` (`feed1`) or its full name (`feed1.ffm`), in any case. In a cluster, a feed
   * published on another node is made here on first use, for a relay to publish into (isRelayed); like a
   * dynamic feed it is removed DynamicFeedTimeout after it last had a publisher or a reader.
   */
  get(nameOrKey: string): Feed | undefined {
    const key = nameKey(feedKeyOf(nameOrKey));
    const feed = this.feeds.get(key) ?? this.layers.get(key)?.feed;
    if (feed !== undefined || this.remote === undefined) return feed;
    const remoteKey = this.remote(key);
    if (remoteKey === undefined || !isFeedOrLayerKey(remoteKey) || nameKey(remoteKey) !== key) return undefined;
    this.log.info('feed made for a relay from another node', { feed: remoteKey });
    const created = this.declare(remoteKey);
    this.dynamic.set(key, undefined);
    this.relayed.add(key);
    this.startSweep();
    return created;
  }

  /** The feed (or simulcast layer feed) this node has under `nameOrKey`, never made here: unlike get(). */
  peek(nameOrKey: string): Feed | undefined {
    const key = nameKey(feedKeyOf(nameOrKey));
    return this.feeds.get(key) ?? this.layers.get(key)?.feed;
  }

  /** Lets get() find the feeds published on other nodes of the cluster (cluster/ sets it). */
  setRemoteLookup(lookup: RemoteFeedLookup | undefined): void {
    this.remote = lookup;
  }

  setPublisherClaim(claim: PublisherClaim | undefined): void {
    this.claim = claim;
  }

  /**
   * Asked by every protocol just before `feed.attachPublisher`: on one process there is nothing to ask; with
   * `Workers N` it rejects with FeedBusyError (the same refusal attachPublisher gives) while a publisher of
   * the feed sends to another worker.
   */
  claimPublisher(feed: Feed, protocol: string): Promise<void> {
    return this.claim?.(feed, protocol) ?? Promise.resolve();
  }

  /** Whether `feed` was made for a relay from another node of the cluster. */
  isRelayed(feed: Feed): boolean {
    return this.relayed.has(nameKey(feed.key));
  }

  /**
   * The feed a publisher asked for: a declared one, or a new dynamic one when the config allows
   * it. Returns undefined when the name is unknown and dynamic feeds are off (or the name unsafe).
   */
  forPublisher(nameOrKey: string): Feed | undefined {
    const feed = this.feeds.get(nameKey(feedKeyOf(nameOrKey)));
    if (feed !== undefined && this.dynamic.has(nameKey(feed.key))) this.dynamic.set(nameKey(feed.key), undefined);
    // A publisher here (the feed moved from another node): it is this node's own feed now.
    if (feed !== undefined) this.relayed.delete(nameKey(feed.key));
    if (feed !== undefined || !this.options.dynamicFeeds) return feed;
    const key = feedKeyOf(nameOrKey);
    if (!FEED_KEY.test(key)) return undefined;
    this.log.info('dynamic feed created', { feed: key });
    const created = this.declare(key);
    this.dynamic.set(nameKey(key), undefined);
    this.startSweep();
    return created;
  }

  /** Whether `feed` was created by a publisher (DynamicFeeds) rather than declared. */
  isDynamic(feed: Feed): boolean {
    return this.dynamic.has(nameKey(feed.key));
  }

  private startSweep(): void {
    if (this.sweepTimer !== undefined) return;
    const timeoutMs = this.options.dynamicFeedTimeoutMs ?? DEFAULT_DYNAMIC_FEED_TIMEOUT_MS;
    this.sweepTimer = setInterval(() => this.sweepDynamic(Date.now()), Math.max(250, Math.min(10_000, timeoutMs / 4)));
    this.sweepTimer.unref();
  }

  /**
   * Removes the dynamic feeds that have had neither a publisher nor a reader (anything waiting
   * for its frames or tracks) for DynamicFeedTimeout (issue 25: 3000 one-off names stayed forever).
   */
  sweepDynamic(nowMs: number): void {
    const timeoutMs = this.options.dynamicFeedTimeoutMs ?? DEFAULT_DYNAMIC_FEED_TIMEOUT_MS;
    for (const [key, idleSince] of this.dynamic) {
      const feed = this.feeds.get(key);
      if (feed === undefined) {
        this.dynamic.delete(key);
        continue;
      }
      const inUse = feed.publisher !== undefined || feed.listenerCount('frame') > 0 || feed.listenerCount('tracks') > 0;
      if (inUse) {
        this.dynamic.set(key, undefined);
      } else if (idleSince === undefined) {
        this.dynamic.set(key, nowMs);
      } else if (nowMs - idleSince >= timeoutMs) {
        this.log.info('dynamic feed removed: no publisher and no reader', { feed: feed.key, idleMs: nowMs - idleSince });
        this.remove(key);
      }
    }
    if (this.dynamic.size === 0 && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  all(): Feed[] {
    return [...this.feeds.values()];
  }

  remove(nameOrKey: string): void {
    const key = nameKey(feedKeyOf(nameOrKey));
    const feed = this.feeds.get(key);
    this.dynamic.delete(key);
    this.relayed.delete(key);
    if (feed === undefined) return;
    this.feeds.delete(key);
    feed.close();
  }

  /** The server is stopping: publishers that leave from now on are not waited for. */
  beginStop(): void {
    for (const feed of this.feeds.values()) feed.beginStop();
    for (const layer of this.layers.values()) layer.feed.beginStop();
  }

  closeAll(): void {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.dynamic.clear();
    this.relayed.clear();
    for (const feed of this.feeds.values()) feed.close();
    this.feeds.clear();
    for (const feed of this.derived) feed.close();
    this.derived.clear();
    for (const layer of this.layers.values()) layer.feed.close();
    this.layers.clear();
  }
}
