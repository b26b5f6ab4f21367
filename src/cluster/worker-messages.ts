// The IPC messages between the primary process of `Workers N` (workers.ts) and its workers
// (worker-registry.ts): the workers report their node, feeds and relays; the primary answers with the map.

import type { FeedRecord, NodeRecord, RelayRecord } from './registry.js';

/** A worker's report to the primary. */
export type WorkerReport =
  | { readonly fc: 'node'; readonly node: NodeRecord }
  | { readonly fc: 'feed'; readonly record: FeedRecord }
  | { readonly fc: 'unfeed'; readonly key: string }
  | { readonly fc: 'relay'; readonly key: string; readonly record: RelayRecord }
  | { readonly fc: 'unrelay'; readonly key: string }
  /**
   * Asks for a feed's one publisher slot (worker-claims.ts) before a publisher attaches here; `id` is echoed in
   * the answer. Without `id`: a publisher attached here (its details are what refusals quote).
   */
  | { readonly fc: 'claim'; readonly id?: number; readonly key: string; readonly protocol: string; readonly startedAt: string }
  /** The feed's publisher left this worker: its slot is free for any worker. */
  | { readonly fc: 'unclaim'; readonly key: string };

/** The primary's answer to a claim: granted (`busy` undefined) or refused with the holder's publisher. */
export interface ClaimAnswer {
  readonly fc: 'claimed';
  readonly id: number;
  /** As a single process words it: `already published by rtmp since 2026-12-07T19:00:00.000Z`. */
  readonly busy: string | undefined;
}

/** The primary's map of the local cluster, sent to every worker after each change and once a second. */
export interface ClusterMap {
  readonly fc: 'map';
  readonly nodes: readonly NodeRecord[];
  readonly feeds: readonly FeedRecord[];
  readonly relays: readonly RelayRecord[];
}

/** Environment variables the primary gives each worker (main.ts reads them). */
export const WORKER_ENV = {
  /** 1..N: this worker's number (1 owns UDP, feed files, recordings and children). */
  index: 'FEEDCAST_WORKER',
  count: 'FEEDCAST_WORKERS',
  /** A random secret shared by the workers: a request forwarded with it carries its client's address. */
  secret: 'FEEDCAST_WORKER_SECRET',
} as const;

/** Headers of a request one worker forwards to another (cluster/forward.ts, HttpServer's internal listener). */
export const FORWARD_HEADERS = { secret: 'x-feedcast-worker-secret', client: 'x-feedcast-client' } as const;

export function isWorkerReport(message: unknown): message is WorkerReport {
  if (typeof message !== 'object' || message === null) return false;
  const fc = (message as { fc?: unknown }).fc;
  return (
    fc === 'node' || fc === 'feed' || fc === 'unfeed' || fc === 'relay' || fc === 'unrelay' || fc === 'claim' || fc === 'unclaim'
  );
}

export function isClaimAnswer(message: unknown): message is ClaimAnswer {
  return typeof message === 'object' && message !== null && (message as { fc?: unknown }).fc === 'claimed';
}

export function isClusterMap(message: unknown): message is ClusterMap {
  return typeof message === 'object' && message !== null && (message as { fc?: unknown }).fc === 'map';
}
