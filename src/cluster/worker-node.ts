// One worker of `Workers N` (docs/cluster.md, "Workers"): what it serves (worker 1 owns UDP, the feed files,
// the recordings and the children; the others leave them out of their config), its node in the local cluster,
// and worker 1's copies of the feeds with File or Record on that are published on another worker.

import { hostname } from 'node:os';
import type { ClusterConfig, ServerConfig } from '../config/config.js';
import type { Cluster } from './cluster.js';
import type { FeedRecord } from './registry.js';

export interface WorkerIdentity {
  /** 1..count; worker 1 owns what cannot be shared. */
  readonly index: number;
  readonly count: number;
  /** Shared by the workers: a request forwarded with it stands for its client (HttpServer.listenInternal). */
  readonly secret: string;
}

/** Worker records live this long without news (the primary removes a dead worker's at once anyway). */
const LOCAL_NODE_TTL_MS = 3000;

/**
 * The config a worker runs: worker 1 the whole of it; the others without what worker 1 alone runs (feed files,
 * recordings, Launch/Source children, offline slates, WebRTC, SRT), so that each is done once.
 */
export function configForWorker(config: ServerConfig, index: number): ServerConfig {
  if (index === 1) return config;
  return {
    ...config,
    feeds: config.feeds.map((feed) => ({
      ...feed,
      file: undefined,
      record: undefined,
      launch: undefined,
      source: undefined,
      launchUrl: undefined,
      offlineSlate: undefined,
    })),
    webrtc: { ...config.webrtc, enabled: false },
    srt: { ...config.srt, port: undefined },
  };
}

/** Where a worker's internal port listens: loopback, or with ClusterRedis the HTTP address other machines reach. */
export function internalHost(config: ServerConfig): string {
  if (config.cluster === undefined) return '127.0.0.1';
  const bind = config.http.bindAddress;
  return bind === '0.0.0.0' || bind === '::' || bind === '' ? '0.0.0.0' : bind;
}

/**
 * The worker's node: `worker-K` at its internal port, its relays stopping RelayIdleTimeout after their last
 * reader; with ClusterRedis `NODENAME-wK`, at NodeURL's host
 * (or this host's name) and the internal port.
 */
export function workerClusterConfig(config: ServerConfig, worker: WorkerIdentity, internalPort: number): ClusterConfig {
  const shared = config.cluster;
  if (shared === undefined) {
    return {
      redisUrl: '',
      nodeName: `worker-${worker.index}`,
      nodeUrl: `http://127.0.0.1:${internalPort}`,
      nodeTtlMs: LOCAL_NODE_TTL_MS,
      // RelayIdleTimeout applies between workers as between nodes.
      relayIdleTimeoutMs: config.relayIdleTimeoutMs,
      relayVia: undefined,
    };
  }
  const host = shared.nodeUrl !== undefined ? new URL(shared.nodeUrl).hostname : publicHost(internalHost(config));
  return {
    ...shared,
    nodeName: `${shared.nodeName ?? `${hostname()}:${config.http.port}`}-w${worker.index}`,
    nodeUrl: `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${internalPort}`,
  };
}

/** The feeds worker 1 registers as its own even with no publisher: their Launch/Source child runs there. */
export function sourcedFeedKeys(config: ServerConfig): string[] {
  return config.feeds.filter((f) => f.launch !== undefined || f.source !== undefined).map((f) => f.key);
}

function publicHost(bind: string): string {
  return bind === '0.0.0.0' ? hostname() : bind;
}

/**
 * Worker 1 writes the feed files and recordings: a feed with File or Record on published on another worker is
 * relayed here for as long as it is published there, so that the ring and the recordings are written once.
 */
export class FirstWorkerCopies {
  private readonly cluster: Cluster;
  private readonly needsCopy: (feedKey: string) => boolean;
  private readonly held = new Map<string, () => void>();
  private readonly off: () => void;

  constructor(cluster: Cluster, needsCopy: (feedKey: string) => boolean) {
    this.cluster = cluster;
    this.needsCopy = needsCopy;
    this.off = cluster.registry.on('feedChanged', (key, record) => this.update(key, record));
    for (const record of cluster.registry.feeds()) this.update(record.feed.toLowerCase(), record);
  }

  /** Feeds relayed for their file or recordings now (tests, status). */
  get copies(): string[] {
    return [...this.held.keys()];
  }

  private update(key: string, record: FeedRecord | undefined): void {
    const elsewhere = record !== undefined && record.node !== this.cluster.node.name && this.needsCopy(key);
    const release = this.held.get(key);
    if (elsewhere && release === undefined) {
      const acquired = this.cluster.acquireRelay(record.feed);
      if (acquired !== undefined) this.held.set(key, acquired);
    } else if (!elsewhere && release !== undefined) {
      this.held.delete(key);
      release();
    }
  }

  close(): void {
    this.off();
    for (const release of this.held.values()) release();
    this.held.clear();
  }
}
