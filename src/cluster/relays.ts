// This node's relays, one per feed published on another node and read here (cluster/relay.ts): made by the
// first reader (through the admission's on-demand source, like a Launch/Source child), shared by the next.

import { layerParentOf } from '../config/names.js';
import type { FeedManager } from '../feed/feed-manager.js';
import type { Logger } from '../observability/logger.js';
import type { Registry } from './registry.js';
import { Relay, type RelaySettings, type RelayStatus } from './relay.js';

/** A feed's relay figures since this node started, ended relays included (metrics' counters). */
export interface RelayTotals {
  readonly feed: string;
  readonly bytes: number;
  readonly reconnects: number;
}

export class Relays {
  private readonly relays = new Map<string, Relay>();
  /** What the relays that ended had counted, per feed. */
  private readonly ended = new Map<string, { feed: string; bytes: number; reconnects: number }>();
  private readonly registry: Registry;
  private readonly feeds: FeedManager;
  private readonly settings: RelaySettings;
  private readonly log: Logger;

  constructor(registry: Registry, feeds: FeedManager, settings: RelaySettings, log: Logger) {
    this.registry = registry;
    this.feeds = feeds;
    this.settings = settings;
    this.log = log;
    // A layer's relay (FEED~RID) follows its feed's registration.
    registry.on('feedChanged', (key) => {
      for (const [relayKey, relay] of this.relays) {
        if (relayKey === key || layerParentOf(relayKey) === key) relay.originChanged();
      }
    });
  }

  /**
   * Keeps a relay of `feedKey` running for one reader; undefined when the feed is not published on another
   * node, or has a publisher here (then the node serves it itself).
   */
  acquire(feedKey: string): (() => void) | undefined {
    const key = feedKey.toLowerCase();
    const running = this.relays.get(key);
    if (running !== undefined) return running.acquire();
    if (this.registry.remoteFeed(key) === undefined) return undefined;
    const feed = this.feeds.get(feedKey);
    if (feed === undefined) return undefined;
    const publisher = feed.publisher;
    if (publisher !== undefined && publisher.protocol !== 'relay') return undefined;
    const relay: Relay = new Relay(
      feed,
      () => this.registry.remoteFeed(key),
      this.settings,
      this.log,
      () => {
        if (this.relays.get(key) === relay) this.relays.delete(key);
        this.registry.unregisterRelay(key);
      },
    );
    this.relays.set(key, relay);
    this.registry.registerRelay(key, () => {
      const s = relay.status();
      return {
        feed: s.feed,
        node: this.settings.nodeName,
        from: s.from ?? '',
        startedAt: s.startedAt.toISOString(),
        bytes: s.bytes,
        reconnects: s.reconnects,
        delayMs: s.delayMs,
      };
    });
    return relay.acquire();
  }

  totals(): RelayTotals[] {
    const totals = new Map([...this.ended].map(([key, t]) => [key, { ...t }]));
    for (const [key, relay] of this.relays) {
      const s = relay.status();
      const t = totals.get(key) ?? { feed: s.feed, bytes: 0, reconnects: 0 };
      totals.set(key, { feed: s.feed, bytes: t.bytes + s.bytes, reconnects: t.reconnects + s.reconnects });
    }
    return [...totals.values()];
  }

  status(): RelayStatus[] {
    return [...this.relays.values()].map((r) => r.status());
  }

  closeAll(): void {
    for (const relay of [...this.relays.values()]) relay.stop();
    this.relays.clear();
  }
}
