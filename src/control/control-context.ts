// What control/ (API, pages, metrics, reload) reads: everything the protocols are given, plus the
// server's identity and its reload; server.ts builds it (server-context.ts) and passes it in.

import type { Cluster } from '../cluster/cluster.js';
import type { ProtocolContext } from '../protocols/protocol-context.js';

export interface ControlContext extends ProtocolContext {
  readonly startedAt: Date;
  readonly version: string;
  /** Re-reads the config file and applies it (set when started from a file). */
  reload: (() => Promise<ReloadSummary>) | undefined;
  /** This node of a cluster (ClusterRedis); undefined on a single node. */
  cluster: Cluster | undefined;
}

/** What a reload changed. */
export interface ReloadSummary {
  source: string;
  feedsAdded: string[];
  feedsRemoved: string[];
  streamsAdded: string[];
  streamsRemoved: string[];
  streamsChanged: string[];
  connectionsClosed: number;
  /** Directives that changed but only take effect after a restart (config/reload-rules.ts). */
  needRestart: string[];
  warnings: string[];
}
