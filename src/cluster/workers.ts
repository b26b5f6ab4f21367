// The primary process of `Workers N` (docs/cluster.md, "Workers"): forks N Feedcast workers with node:cluster
// (which accepts the TCP connections of the shared ports and hands them to the workers in turn), is their
// registry (which feed is published on which worker, over IPC), passes SIGHUP on, stops them on SIGTERM and
// starts again a worker that dies. Serves nothing itself. main.ts loads this module only when Workers > 1.

import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { ProcessError } from '../errors.js';
import { detach } from '../observability/detach.js';
import type { Logger } from '../observability/logger.js';
import type { FeedRecord, NodeRecord, RelayRecord } from './registry.js';
import { PublisherClaims } from './worker-claims.js';
import { isWorkerReport, WORKER_ENV, type ClaimAnswer, type ClusterMap, type WorkerReport } from './worker-messages.js';

const MIN_RESTART_MS = 500;
const MAX_RESTART_MS = 10_000;
/** A worker that ran this long before dying is restarted at once (backoff reset). */
const STABLE_MS = 30_000;
/** Workers still running this long after SIGTERM are killed. */
const STOP_TIMEOUT_MS = 20_000;
const MAP_EVERY_MS = 1000;

/** What the primary knows of one worker slot (1..N): the process in it now and what it registered. */
interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  startedAt: number;
  /** Reported its node: it listens and serves. */
  ready: boolean;
  /** Has been ready once: a later death is a crash to recover from, not a failed start. */
  everReady: boolean;
  restartMs: number;
  node: NodeRecord | undefined;
  readonly feeds: Map<string, FeedRecord>;
  readonly relays: Map<string, RelayRecord>;
}

export interface WorkersStatus {
  readonly index: number;
  readonly pid: number | undefined;
  readonly ready: boolean;
  readonly restarts: number;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly log: Logger;
  private readonly secret = randomBytes(16).toString('hex');
  private readonly restarts = new Map<number, number>();
  /** One publisher per feed across the workers: the first worker to claim a feed's slot holds it. */
  private readonly claims = new PublisherClaims();
  private mapTimer: NodeJS.Timeout | undefined;
  private mapPending = false;
  private stopping: Promise<void> | undefined;
  private readyResolve: (() => void) | undefined;
  private readyReject: ((err: Error) => void) | undefined;

  constructor(count: number, log: Logger) {
    this.log = log.child({ part: 'workers' });
    for (let index = 1; index <= count; index++) {
      this.slots.push({
        index,
        worker: undefined,
        startedAt: 0,
        ready: false,
        everReady: false,
        restartMs: MIN_RESTART_MS,
        node: undefined,
        feeds: new Map(),
        relays: new Map(),
      });
    }
  }

  /** Starts every worker; resolves when all serve, rejects when one fails to start (a port in use, a bad file). */
  start(): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    for (const slot of this.slots) this.fork(slot);
    this.mapTimer = setInterval(() => this.sendMap(), MAP_EVERY_MS);
    return ready;
  }

  /** SIGHUP: every worker re-reads the config file (and its certificates). */
  reload(): void {
    for (const slot of this.slots) slot.worker?.process.kill('SIGHUP');
  }

  status(): WorkersStatus[] {
    return this.slots.map((s) => ({
      index: s.index,
      pid: s.worker?.process.pid,
      ready: s.ready,
      restarts: this.restarts.get(s.index) ?? 0,
    }));
  }

  /** Stops every worker gracefully (SIGTERM: each closes its connections and children), then resolves. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.mapTimer !== undefined) clearInterval(this.mapTimer);
      const exits = this.slots.flatMap((slot) => {
        const worker = slot.worker;
        if (worker === undefined || worker.isDead()) return [];
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.process.kill('SIGTERM');
        const timer = setTimeout(() => {
          this.log.warn('workers: a worker did not stop in time; killing it', { worker: slot.index, pid: worker.process.pid });
          worker.process.kill('SIGKILL');
        }, STOP_TIMEOUT_MS);
        return [exited.finally(() => clearTimeout(timer))];
      });
      await Promise.all(exits);
    })();
    return this.stopping;
  }

  private fork(slot: Slot): void {
    const worker = cluster.fork({
      [WORKER_ENV.index]: String(slot.index),
      [WORKER_ENV.count]: String(this.slots.length),
      [WORKER_ENV.secret]: this.secret,
    });
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.ready = false;
    worker.on('message', (message: unknown) => {
      if (slot.worker === worker && isWorkerReport(message)) this.report(slot, message);
    });
    worker.on('exit', (code: number | null, signal: string | null) => this.exited(slot, worker, code, signal));
  }

  private exited(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = false;
    slot.node = undefined;
    // Its feeds and relays leave the map at once: readers elsewhere wait for the publisher to come back.
    slot.feeds.clear();
    slot.relays.clear();
    this.claims.releaseWorker(slot.index);
    this.mapChanged();
    if (this.stopping !== undefined) return;
    if (!slot.everReady) {
      this.readyReject?.(new ProcessError(`worker ${slot.index}`, code, signal, ['it could not start; its log above says why']));
      this.readyReject = undefined;
      detach(this.stop(), this.log, 'workers: stopping');
      return;
    }
    if (Date.now() - slot.startedAt > STABLE_MS) slot.restartMs = MIN_RESTART_MS;
    const waitMs = slot.restartMs;
    slot.restartMs = Math.min(MAX_RESTART_MS, slot.restartMs * 2);
    this.log.error(`workers: worker ${slot.index} died; starting it again`, {
      worker: slot.index,
      pid: worker.process.pid,
      code,
      signal,
      inMs: waitMs,
    });
    this.restarts.set(slot.index, (this.restarts.get(slot.index) ?? 0) + 1);
    setTimeout(() => {
      if (this.stopping === undefined) this.fork(slot);
    }, waitMs);
  }

  private report(slot: Slot, report: WorkerReport): void {
    switch (report.fc) {
      case 'node': {
        slot.node = report.node;
        slot.ready = true;
        this.mapChanged();
        if (slot.everReady) this.log.info(`workers: worker ${slot.index} serves again`, { pid: slot.worker?.process.pid });
        slot.everReady = true;
        if (this.slots.every((s) => s.ready)) {
          this.readyResolve?.();
          this.readyResolve = undefined;
        }
        break;
      }
      case 'feed': {
        const key = report.record.feed.toLowerCase();
        const isNew = !slot.feeds.has(key);
        slot.feeds.set(key, report.record);
        // A publisher here takes the feed from the worker that had it before: one origin per feed.
        for (const other of this.slots) if (other !== slot) other.feeds.delete(key);
        // Clock updates ride on the map sent every second.
        if (isNew) this.mapChanged();
        break;
      }
      case 'unfeed':
        if (slot.feeds.delete(report.key)) this.mapChanged();
        break;
      case 'relay': {
        const isNew = !slot.relays.has(report.key);
        slot.relays.set(report.key, report.record);
        if (isNew) this.mapChanged();
        break;
      }
      case 'unrelay':
        if (slot.relays.delete(report.key)) this.mapChanged();
        break;
      case 'claim': {
        if (report.id === undefined) {
          this.claims.attached(slot.index, report.key, report.protocol, report.startedAt);
          break;
        }
        const busy = this.claims.claim(slot.index, report.key, report.protocol, report.startedAt);
        const answer: ClaimAnswer = { fc: 'claimed', id: report.id, busy };
        if (slot.worker?.isConnected() === true) slot.worker.send(answer, undefined, () => undefined);
        break;
      }
      case 'unclaim':
        this.claims.release(slot.index, report.key);
        break;
    }
  }

  /** Sends the map on the next turn (several reports of one turn make one message). */
  private mapChanged(): void {
    if (this.mapPending) return;
    this.mapPending = true;
    setImmediate(() => {
      this.mapPending = false;
      this.sendMap();
    });
  }

  private sendMap(): void {
    const map: ClusterMap = {
      fc: 'map',
      nodes: this.slots.flatMap((s) => (s.node !== undefined ? [s.node] : [])),
      feeds: this.slots.flatMap((s) => [...s.feeds.values()]),
      relays: this.slots.flatMap((s) => [...s.relays.values()]),
    };
    for (const slot of this.slots) {
      const worker = slot.worker;
      if (worker !== undefined && worker.isConnected()) worker.send(map, undefined, () => undefined);
    }
  }
}
