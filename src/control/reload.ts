// Applies a new config to a running server without dropping what did not change: new feeds and
// streams appear, removed ones close their connections with a reason, connections a changed ACL
// no longer allows are closed, and settings that need a restart are named.

import type { FeedConfig, ServerConfig, StreamConfig } from '../config/config.js';
import type { ReloadSummary, ServerContext } from '../server-context.js';
import { AccessLog } from './access-log.js';

/** The parts of a stream that change what its readers receive (ACL is handled separately). */
function streamShape(s: StreamConfig): string {
  return JSON.stringify([s.feed, s.file, s.format.name, s.encoding, s.noAudio, s.noVideo, s.metadata, s.maxTimeSeconds]);
}

function feedShape(f: FeedConfig): string {
  return JSON.stringify([f.name, f.file, f.readOnly, f.fileMaxSizeBytes, f.truncate, f.launch]);
}

export function applyConfig(ctx: ServerContext, next: ServerConfig): ReloadSummary {
  const prev = ctx.config;
  const summary: ReloadSummary = {
    source: next.source,
    feedsAdded: [],
    feedsRemoved: [],
    streamsAdded: [],
    streamsRemoved: [],
    streamsChanged: [],
    connectionsClosed: 0,
    needRestart: [],
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

  // Feeds.
  const nextFeeds = new Map(next.feeds.map((f) => [f.key, f]));
  for (const old of prev.feeds) {
    const now = nextFeeds.get(old.key);
    if (now === undefined || feedShape(now) !== feedShape(old)) {
      close(
        (target) => isFeedTarget(target, old),
        `feed ${old.key} was ${now === undefined ? 'removed' : 'changed'} by a config reload`,
      );
      ctx.feeds.remove(old.key);
      if (now === undefined) summary.feedsRemoved.push(old.key);
    } else if (now.acl.describe() !== old.acl.describe()) {
      close((target, address) => isFeedTarget(target, now) && !now.acl.allows(address), `the ACL of feed ${now.key} changed`);
    }
  }
  const prevKeys = new Set(prev.feeds.map((f) => f.key));
  for (const f of next.feeds) {
    if (!prevKeys.has(f.key)) summary.feedsAdded.push(f.key);
    ctx.feeds.declare(f.name);
  }
  if (prev.dynamicFeeds && !next.dynamicFeeds) {
    for (const feed of ctx.feeds.all()) {
      if (!nextFeeds.has(feed.key)) {
        close(
          (target) => target === feed.key || target === feed.name || target.startsWith(`${feed.key}.`),
          'DynamicFeeds was turned off',
        );
        ctx.feeds.remove(feed.key);
        summary.feedsRemoved.push(feed.key);
      }
    }
  }

  // Streams.
  const nextStreams = new Map(next.streams.map((s) => [s.name, s]));
  for (const old of prev.streams) {
    const now = nextStreams.get(old.name);
    if (now === undefined) {
      summary.streamsRemoved.push(old.name);
      close((target) => target === old.name, `stream ${old.name} was removed by a config reload`);
    } else if (streamShape(now) !== streamShape(old)) {
      summary.streamsChanged.push(old.name);
      close((target) => target === old.name, `stream ${old.name} was changed by a config reload; reconnect`);
    } else if (now.acl.describe() !== old.acl.describe()) {
      close((target, address) => target === now.name && !now.acl.allows(address), `the ACL of stream ${now.name} changed`);
    }
  }
  const prevStreams = new Set(prev.streams.map((s) => s.name));
  for (const s of next.streams) if (!prevStreams.has(s.name)) summary.streamsAdded.push(s.name);

  // Listeners cannot move without a restart.
  const listener = (name: string, a: unknown, b: unknown): void => {
    if (JSON.stringify(a) !== JSON.stringify(b)) summary.needRestart.push(name);
  };
  listener('HTTPPort/HTTPBindAddress', prev.http, next.http);
  listener('RTSPPort/RTSPBindAddress', prev.rtsp, next.rtsp);
  listener('RTMPPort/RTMPBindAddress', prev.rtmp, next.rtmp);
  listener('WebRTC settings (WebRTC, WebRTCAddress, WebRTCUDPPort, WebRTCPortRange, ...)', prev.webrtc, next.webrtc);
  listener('WriteCoalesce', prev.writeCoalesceMs, next.writeCoalesceMs);
  listener('EgressThreads', prev.egressThreads, next.egressThreads);
  if (prev.publisherTimeoutMs !== next.publisherTimeoutMs || prev.publisherGraceMs !== next.publisherGraceMs) {
    summary.needRestart.push('PublisherTimeout/PublisherGracePeriod (for feeds that already exist)');
  }

  if (prev.customLog !== next.customLog) {
    ctx.accessLog?.close();
    ctx.accessLog = next.customLog !== undefined ? new AccessLog(next.customLog) : undefined;
  }
  ctx.config = next;
  ctx.counters.reloads++;
  return summary;
}
