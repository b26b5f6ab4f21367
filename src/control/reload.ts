// Applies a new config to a running server without dropping what did not change: the connections
// of removed or changed feeds and streams (and those a changed ACL no longer allows) are closed
// with a reason, then every owner of running state applies the config itself (applyConfig, in the
// order server.ts gave), and the directives that need a restart are named (config/reload-rules.ts).

import type { FeedConfig, ServerConfig } from '../config/config.js';
import { diffConfig, type ConfigDiff } from '../config/reload-rules.js';
import type { ControlContext, ReloadSummary } from './control-context.js';
import { AccessLog } from '../observability/access-log.js';

/** A part of the server that takes a new config itself. */
export interface ConfigOwner {
  applyConfig(next: ServerConfig, diff: ConfigDiff): void | Promise<void>;
}

export async function applyConfig(
  ctx: ControlContext,
  next: ServerConfig,
  owners: readonly ConfigOwner[],
): Promise<ReloadSummary> {
  const prev = ctx.config;
  const diff = diffConfig(prev, next);
  const summary: ReloadSummary = {
    source: next.source,
    feedsAdded: [...diff.feedsAdded],
    feedsRemoved: [...diff.feedsRemoved],
    streamsAdded: [...diff.streamsAdded],
    streamsRemoved: [...diff.streamsRemoved],
    streamsChanged: [...diff.streamsChanged],
    connectionsClosed: 0,
    needRestart: [...diff.needRestart],
    warnings: next.warnings.map((w) => `${w.where}: ${w.message}`),
  };
  const close = (predicate: (target: string, address: string, role: string) => boolean, reason: string): void => {
    for (const c of ctx.connections.list()) {
      if (c.kick !== undefined && predicate(c.target, c.remoteAddress, c.role)) {
        c.kick(reason);
        summary.connectionsClosed++;
      }
    }
  };
  const isFeedTarget = (target: string, feed: FeedConfig): boolean =>
    target === feed.name || target === feed.key || target === `${feed.key}.flv` || target === `${feed.key}.ts`;

  // Feeds: connections first, with the reason; FeedManager closes the Feed objects below.
  const nextFeeds = new Map(next.feeds.map((f) => [f.key, f]));
  for (const old of prev.feeds) {
    const now = nextFeeds.get(old.key);
    if (diff.feedsReplaced.has(old.key)) {
      close(
        (target) => isFeedTarget(target, old),
        `feed ${old.key} was ${now === undefined ? 'removed' : 'changed'} by a config reload`,
      );
    } else if (now !== undefined && now.acl.describe() !== old.acl.describe()) {
      close((target, address) => isFeedTarget(target, now) && !now.acl.allows(address), `the ACL of feed ${now.key} changed`);
    }
  }
  if (!next.dynamicFeeds) {
    for (const feed of ctx.feeds.all()) {
      if (nextFeeds.has(feed.key) || prev.feeds.some((f) => f.key === feed.key)) continue;
      close(
        (target) => target === feed.key || target === feed.name || target.startsWith(`${feed.key}.`),
        'DynamicFeeds was turned off',
      );
      summary.feedsRemoved.push(feed.key);
    }
  }

  // Streams.
  const nextStreams = new Map(next.streams.map((s) => [s.name, s]));
  const removedOrChanged = new Set([...diff.streamsRemoved, ...diff.streamsChanged]);
  for (const old of prev.streams) {
    const now = nextStreams.get(old.name);
    if (now === undefined) close((target) => target === old.name, `stream ${old.name} was removed by a config reload`);
    else if (removedOrChanged.has(old.name))
      close((target) => target === old.name, `stream ${old.name} was changed by a config reload; reconnect`);
    else if (now.acl.describe() !== old.acl.describe()) {
      close((target, address) => target === now.name && !now.acl.allows(address), `the ACL of stream ${now.name} changed`);
    }
  }

  // Every owner applies the new config itself; the API, pages and protocols read ctx.config live.
  for (const owner of owners) await owner.applyConfig(next, diff);
  if (prev.customLog !== next.customLog) {
    ctx.accessLog?.close();
    ctx.accessLog = next.customLog !== undefined ? new AccessLog(next.customLog) : undefined;
  }
  ctx.config = next;
  ctx.counters.reloads++;
  return summary;
}
