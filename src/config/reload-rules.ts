// What a reload (SIGHUP, POST /api/v1/reload) can apply and what needs a restart, written once:
// the directives read only when the server starts, and the diff of two configs that every owner
// of running state (server.ts builds them; control/reload.ts calls their applyConfig) is given.

import type { FeedConfig, ServerConfig, StreamConfig } from './config.js';

/** A group of global directives that a running server cannot change (its listeners, its threads). */
export interface RestartRule {
  /** The directives, as written in the config file. */
  readonly directives: readonly string[];
  /** Why they need a restart, for `feedcast check` and the reload answer. */
  readonly why: string;
  readonly changed: (prev: ServerConfig, next: ServerConfig) => boolean;
}

const differs = (a: unknown, b: unknown): boolean => JSON.stringify(a) !== JSON.stringify(b);

/** Every global directive not listed here applies on reload (test/integration/reload.test.ts checks each). */
export const RESTART_RULES: readonly RestartRule[] = [
  {
    directives: ['HTTPPort', 'HTTPBindAddress', 'BindAddress', 'Port'],
    why: 'the HTTP listener is opened at start',
    changed: (a, b) => differs(a.http, b.http),
  },
  {
    directives: ['RTSPPort', 'RTSPBindAddress'],
    why: 'the RTSP listener is opened at start',
    changed: (a, b) => differs(a.rtsp, b.rtsp),
  },
  {
    directives: ['RTMPPort', 'RTMPBindAddress'],
    why: 'the RTMP listener is opened at start',
    changed: (a, b) => a.rtmp.port !== b.rtmp.port || a.rtmp.bindAddress !== b.rtmp.bindAddress,
  },
  {
    directives: ['SRTPort', 'SRTBindAddress', 'SRTLatency'],
    why: 'the SRT listener is opened at start (SRTPassphrase applies on reload)',
    changed: (a, b) => differs(a.srt, b.srt),
  },
  {
    directives: ['HTTPSPort', 'RTMPSPort', 'SSLCertificate', 'SSLCertificateKey'],
    why: 'the TLS listeners are opened at start (the certificate files themselves are re-read when they change)',
    changed: (a, b) => differs(a.tls, b.tls),
  },
  {
    directives: [
      'WebRTC',
      'WebRTCAddress',
      'WebRTCUDPPort',
      'WebRTCPortRange',
      'WebRTCTCP',
      'WebRTCTCPPort',
      'WebRTCBindAddress',
      'WebRTCIceServer',
      'WebRTCServerIceServer',
      'WebRTCPeerTimeout',
      'WHIPKeyframeInterval',
      'WebRTCPlayoutDelayZero',
    ],
    why: 'the WebRTC route, its ports and the ffmpeg it converts audio with are set up at start',
    changed: (a, b) => differs(a.webrtc, b.webrtc),
  },
  {
    directives: ['WriteCoalesce'],
    why: 'readers of running outputs are grouped by it',
    changed: (a, b) => a.writeCoalesceMs !== b.writeCoalesceMs,
  },
  {
    directives: ['EgressThreads'],
    why: 'the worker threads are started at start',
    changed: (a, b) => a.egressThreads !== b.egressThreads,
  },
  {
    directives: ['Workers'],
    why: 'the worker processes are started at start',
    changed: (a, b) => a.workers !== b.workers,
  },
  {
    directives: ['ClusterRedis', 'NodeName', 'NodeURL', 'NodeTTL', 'RelayIdleTimeout', 'RelayVia'],
    why: 'the cluster registry connection and the relays are set up at start',
    changed: (a, b) => differs(a.cluster, b.cluster),
  },
];

/** The directives a reload cannot apply, one line each, for `feedcast check`. */
export function describeRestartRules(): string[] {
  return RESTART_RULES.map((r) => `${r.directives.join(', ')}: ${r.why}`);
}

/** The parts of a feed that make it a different feed (its readers are closed, the Feed made again). */
export function feedShape(f: FeedConfig): string {
  return JSON.stringify([f.name, f.file, f.readOnly, f.fileMaxSizeBytes, f.truncate, f.launch]);
}

/** The parts of a stream that change what its readers receive (ACL is handled separately). */
export function streamShape(s: StreamConfig): string {
  return JSON.stringify([s.feed, s.file, s.format.name, s.encoding, s.noAudio, s.noVideo, s.metadata, s.maxTimeSeconds]);
}

/** What changed between the running config and the next one. */
export interface ConfigDiff {
  /** Keys of feeds removed or changed (feedShape): their Feed is closed and, if still declared, made again. */
  readonly feedsReplaced: ReadonlySet<string>;
  readonly feedsAdded: readonly string[];
  readonly feedsRemoved: readonly string[];
  readonly streamsAdded: readonly string[];
  readonly streamsRemoved: readonly string[];
  readonly streamsChanged: readonly string[];
  /** The directives that changed but need a restart. */
  readonly needRestart: readonly string[];
}

export function diffConfig(prev: ServerConfig, next: ServerConfig): ConfigDiff {
  const nextFeeds = new Map(next.feeds.map((f) => [f.key, f]));
  const prevFeedKeys = new Set(prev.feeds.map((f) => f.key));
  const feedsReplaced = new Set<string>();
  const feedsRemoved: string[] = [];
  for (const old of prev.feeds) {
    const now = nextFeeds.get(old.key);
    if (now === undefined) feedsRemoved.push(old.key);
    if (now === undefined || feedShape(now) !== feedShape(old)) feedsReplaced.add(old.key);
  }
  const nextStreams = new Map(next.streams.map((s) => [s.name, s]));
  const prevStreamNames = new Set(prev.streams.map((s) => s.name));
  const streamsRemoved: string[] = [];
  const streamsChanged: string[] = [];
  for (const old of prev.streams) {
    const now = nextStreams.get(old.name);
    if (now === undefined) streamsRemoved.push(old.name);
    else if (streamShape(now) !== streamShape(old)) streamsChanged.push(old.name);
  }
  return {
    feedsReplaced,
    feedsAdded: next.feeds.filter((f) => !prevFeedKeys.has(f.key)).map((f) => f.key),
    feedsRemoved,
    streamsAdded: next.streams.filter((s) => !prevStreamNames.has(s.name)).map((s) => s.name),
    streamsRemoved,
    streamsChanged,
    needRestart: RESTART_RULES.filter((r) => r.changed(prev, next)).map((r) => `${r.directives.join('/')} (${r.why})`),
  };
}
