// Limits that hold under abuse (docs/security.md): connections per client address
// (MaxConnectionsPerAddress) and readers per feed or stream (MaxReaders), for every protocol.

import type { ServerContext } from '../server-context.js';
import type { ConnectionInfo } from './connections.js';
import { findByName, findFeedConfig } from '../config/names.js';

/**
 * Why a new connection from `address` is refused (MaxConnectionsPerAddress), or undefined. `self` is
 * the new connection when it is registered already (it is not counted).
 */
export function addressLimitReason(ctx: ServerContext, address: string, self?: ConnectionInfo): string | undefined {
  const max = ctx.config.maxConnectionsPerAddress;
  if (max <= 0) return undefined;
  let count = 0;
  for (const c of ctx.connections.list()) {
    if (c !== self && c.remoteAddress === address && ++count >= max) {
      return `Too many connections from ${address}: the limit is MaxConnectionsPerAddress ${max}.`;
    }
  }
  return undefined;
}

const readers = new WeakMap<ServerContext, Map<string, number>>();

/** The reader cap of a feed (by key) or declared stream (by name); 0 = none. */
function maxReadersOf(ctx: ServerContext, resource: { feed?: string | undefined; stream?: string | undefined }): number {
  if (resource.stream !== undefined) return findByName(ctx.config.streams, resource.stream)?.maxReaders ?? 0;
  if (resource.feed !== undefined) return findFeedConfig(ctx.config.feeds, resource.feed)?.maxReaders ?? 0;
  return 0;
}

export interface ReaderSlot {
  /** Gives the slot back (idempotent). */
  release(): void;
}

/**
 * Takes one reader slot of a feed or stream, or returns why not (MaxReaders). Every reader takes one,
 * whatever its protocol, and releases it when it closes.
 */
export function acquireReaderSlot(
  ctx: ServerContext,
  resource: { feed?: string | undefined; stream?: string | undefined },
): ReaderSlot | string {
  let counts = readers.get(ctx);
  if (counts === undefined) {
    counts = new Map();
    readers.set(ctx, counts);
  }
  const key = resource.stream !== undefined ? `stream:${resource.stream}` : `feed:${resource.feed ?? ''}`;
  const max = maxReadersOf(ctx, resource);
  const now = counts.get(key) ?? 0;
  if (max > 0 && now >= max) {
    const what = resource.stream !== undefined ? `stream ${resource.stream}` : `feed ${resource.feed ?? ''}`;
    return `Server too busy: ${what} has its ${max} readers (MaxReaders). Try again later.`;
  }
  counts.set(key, now + 1);
  let released = false;
  const map = counts;
  return {
    release() {
      if (released) return;
      released = true;
      const n = (map.get(key) ?? 1) - 1;
      if (n <= 0) map.delete(key);
      else map.set(key, n);
    },
  };
}

/** Readers currently counted for a feed or stream (for tests and the status page). */
export function readerCount(ctx: ServerContext, resource: { feed?: string; stream?: string }): number {
  const key = resource.stream !== undefined ? `stream:${resource.stream}` : `feed:${resource.feed ?? ''}`;
  return readers.get(ctx)?.get(key) ?? 0;
}
