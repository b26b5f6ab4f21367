// What the protocol servers (protocols/*) are given: the config in force and the owners they plug
// into, as interfaces defined here, below control/ and server.ts, which build and pass them in.

import type { Access } from '../access/access.js';
import type { ConnectionRegistry } from '../access/connections.js';
import type { ServerConfig } from '../config/config.js';
import type { FeedManager } from '../feed/feed-manager.js';
import type { FeedFiles } from '../feedfile/feed-files.js';
import type { IngestBudgets } from '../media/ingest-budgets.js';
import type { AccessLog } from '../observability/access-log.js';
import type { Logger } from '../observability/logger.js';
import type { Recordings } from '../record/recordings.js';
import type { OutputRegistry } from '../streams/output-registry.js';
import type { FeedSourceStatus } from '../transcode/launch.js';
import type { TranscoderStatus } from '../transcode/transcoder.js';

export interface ProtocolContext {
  /** The config in force; replaced as a whole by a reload. */
  config: ServerConfig;
  readonly feeds: FeedManager;
  /** The feeds' disk rings (time-shift, status). */
  readonly feedFiles: FeedFiles;
  /** The feeds' recordings (`Record on`): files, listing, time-range playback. */
  readonly recordings: Recordings;
  readonly outputs: OutputRegistry;
  readonly connections: ConnectionRegistry;
  readonly log: Logger;
  accessLog: AccessLog | undefined;
  /** Who may read and publish: names, the authorisation policy, reader slots and bandwidth (access/). */
  readonly access: Access;
  readonly counters: ServerCounters;
  /** Server-wide caps on unfinished ingest (MPEG-TS PES, RTMP messages) that every ingest of that kind shares. */
  readonly ingestBudgets: IngestBudgets;
  /** The ffmpeg children (transcoders, Launch/pulled sources), for the status page, API and metrics. */
  children: ServerChildren | undefined;
  /** This node of a cluster (ClusterRedis), as the protocols ask it; undefined on a single node. */
  cluster: ClusterNode | undefined;
}

export interface ClusterNode {
  /** Why another node (`from`) may not relay `feedKey` from this one (a RelayVia loop), or undefined. */
  relayLoop(feedKey: string, from: string): string | undefined;
}

export interface ServerChildren {
  transcoders(): TranscoderStatus[];
  sources(): FeedSourceStatus[];
  /**
   * Starts (or keeps running) the on-demand Launch/Source child of a feed for one reader; call the
   * returned release when that reader leaves. Undefined when the feed has no such source.
   */
  acquireSource(feedKey: string): (() => void) | undefined;
}

export interface ServerCounters {
  /** Connections refused at accept time (MaxClients, MaxHTTPConnections). */
  refusedConnections: number;
  reloads: number;
  /** Per URL name (stream or feed output): readers served and bytes sent, as ffserver's status page showed. */
  served: Map<string, { conns: number; bytes: number }>;
  /**
   * WebRTC: inbound packets dropped before werift read them (srtp-guard.ts), by kind ("srtp",
   * "srtcp") and reason ("auth", "replay", "too-old", "malformed").
   */
  webrtcInboundRejected: Record<string, Record<string, number>>;
}
