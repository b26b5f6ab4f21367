// Limits that hold under abuse (docs/security.md): connections per client address
// (MaxConnectionsPerAddress), readers per feed or stream (MaxReaders) and the bandwidth promised to
// readers (MaxBandwidth), for every protocol. The counts live here and nowhere else.

import type { ServerConfig } from '../config/config.js';
import type { Feed } from '../feed/feed.js';
import type { ConnectionInfo } from './connections.js';
import { findByName, findFeedConfig } from '../config/names.js';

/**
 * Why a new connection from `address` is refused (MaxConnectionsPerAddress), or undefined. `self` is
 * the new connection when it is registered already (it is not counted).
 */
export function addressLimitReason(
  config: ServerConfig,
  connections: Iterable<ConnectionInfo>,
  address: string,
  self?: ConnectionInfo,
): string | undefined {
  const max = config.maxConnectionsPerAddress;
  if (max <= 0) return undefined;
  let count = 0;
  for (const c of connections) {
    if (c !== self && c.remoteAddress === address && ++count >= max) {
      return `Too many connections from ${address}: the limit is MaxConnectionsPerAddress ${max}.`;
    }
  }
  return undefined;
}

/** What one reader is counted for: a feed (by key) or a declared stream (by name). */
export interface ReaderResource {
  feed?: string | undefined;
  stream?: string | undefined;
}

/**
 * What one reader costs against MaxBandwidth: the configured bitrate of an encoded stream (a fixed
 * number), or the measured input rate of the feed it passes through, read whenever the sum is asked
 * (so a reader that joined before the publisher counts once it sends).
 */
export type ReaderCost = { readonly kbps: number } | { readonly feed: Feed };

export function costKbps(cost: ReaderCost): number {
  return 'kbps' in cost ? cost.kbps : cost.feed.inputRate.bitsPerSecond() / 1000;
}

/** A counted reader: gives its slot and bandwidth back once (idempotent). */
export interface ReaderSlot {
  release(): void;
}

/** The reader slots (MaxReaders) and the bandwidth in use (MaxBandwidth) of one running server. */
export class ReaderLimits {
  private readonly slots = new Map<string, number>();
  /** Readers counted at a fixed kbit/s: their sum. */
  private fixedKbps = 0;
  /** Readers counted at their feed's measured rate: how many per feed. */
  private readonly perFeed = new Map<Feed, number>();

  /** kbit/s promised to readers now (ffserver's MaxBandwidth accounting, with measured feed rates). */
  bandwidthInUseKbps(): number {
    let sum = this.fixedKbps;
    for (const [feed, n] of this.perFeed) sum += n * (feed.inputRate.bitsPerSecond() / 1000);
    return sum;
  }

  /** Readers currently counted for a feed or stream. */
  readerCount(resource: ReaderResource): number {
    return this.slots.get(slotKey(resource)) ?? 0;
  }

  /**
   * Takes one reader slot of a feed or stream and counts its cost, or returns why not (MaxReaders,
   * then MaxBandwidth). Every reader takes one, whatever its protocol, and releases it when it closes.
   */
  acquire(
    config: ServerConfig,
    resource: ReaderResource,
    cost: ReaderCost,
  ): ReaderSlot | { readonly limit: 'readers' | 'bandwidth'; readonly reason: string } {
    const key = slotKey(resource);
    const max = maxReadersOf(config, resource);
    const now = this.slots.get(key) ?? 0;
    if (max > 0 && now >= max) {
      const what = resource.stream !== undefined ? `stream ${resource.stream}` : `feed ${resource.feed ?? ''}`;
      return { limit: 'readers', reason: `Server too busy: ${what} has its ${max} readers (MaxReaders). Try again later.` };
    }
    const inUse = this.bandwidthInUseKbps();
    const kbps = costKbps(cost);
    if (inUse + kbps > config.maxBandwidthKbps) {
      return {
        limit: 'bandwidth',
        reason: `Server too busy: serving this stream would bring the bandwidth in use to ${Math.ceil(inUse + kbps)} kbit/s, over the limit of ${config.maxBandwidthKbps} kbit/s (MaxBandwidth).`,
      };
    }
    this.slots.set(key, now + 1);
    this.count(cost, +1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const n = (this.slots.get(key) ?? 1) - 1;
        if (n <= 0) this.slots.delete(key);
        else this.slots.set(key, n);
        this.count(cost, -1);
      },
    };
  }

  private count(cost: ReaderCost, delta: 1 | -1): void {
    if ('kbps' in cost) {
      this.fixedKbps = Math.max(0, this.fixedKbps + delta * cost.kbps);
      return;
    }
    const n = (this.perFeed.get(cost.feed) ?? 0) + delta;
    if (n <= 0) this.perFeed.delete(cost.feed);
    else this.perFeed.set(cost.feed, n);
  }
}

function slotKey(resource: ReaderResource): string {
  return resource.stream !== undefined ? `stream:${resource.stream}` : `feed:${resource.feed ?? ''}`;
}

/** The reader cap of a feed (by key) or declared stream (by name); 0 = none. */
function maxReadersOf(config: ServerConfig, resource: ReaderResource): number {
  if (resource.stream !== undefined) return findByName(config.streams, resource.stream)?.maxReaders ?? 0;
  if (resource.feed !== undefined) return findFeedConfig(config.feeds, resource.feed)?.maxReaders ?? 0;
  return 0;
}
