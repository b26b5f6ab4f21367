// Runs the lifecycle hooks (OnPublish, OnUnpublish, OnRead, OnReadEnd, OnRecordSegment) for each event: a
// program with the event in its environment, or a JSON POST with retries. Never on the hot path: an event only
// queues work; at most HookConcurrency hooks run at once, the queue is bounded, and every child is killed at its
// timeout and reaped. They report; whether a reader or publisher is let in is decided elsewhere (access/).

import { spawn, type ChildProcess } from 'node:child_process';
import type { ServerConfig } from '../config/config.js';
import type { HookSpec } from '../config/hooks.js';
import { findFeedConfig } from '../config/names.js';
import type { Logger } from '../observability/logger.js';
import { throttledWarner } from '../observability/throttled-warn.js';
import type { LifecycleEvent } from './lifecycle-events.js';

/** Jobs waiting for a free slot; past this, new ones are dropped (and counted). */
const MAX_QUEUED = 1000;
/** A program that ignores SIGTERM gets SIGKILL this long after. */
const KILL_GRACE_MS = 2000;
const FIRST_RETRY_MS = 500;
const STDERR_TAIL_BYTES = 2048;

export interface HookStats {
  /** Hooks finished with success / failure (after retries), and dropped from a full queue. */
  succeeded: number;
  failed: number;
  dropped: number;
  running: number;
  queued: number;
}

interface Job {
  readonly hook: HookSpec;
  readonly event: LifecycleEvent;
}

export class HookRunner {
  private config: ServerConfig;
  private readonly log: Logger;
  private readonly warn: (message: string) => void;
  private readonly queue: Job[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly aborts = new Set<AbortController>();
  private running = 0;
  private closed = false;
  readonly stats: Omit<HookStats, 'running' | 'queued'> = { succeeded: 0, failed: 0, dropped: 0 };

  constructor(config: ServerConfig, log: Logger) {
    this.config = config;
    this.log = log.child({ part: 'hooks' });
    this.warn = throttledWarner(this.log, 10_000);
  }

  /** The hook settings in force (the server-wide hooks, timeout, concurrency, retries). */
  get settings(): ServerConfig['hooks'] {
    return this.config.hooks;
  }

  applyConfig(next: ServerConfig): void {
    this.config = next;
    this.pump();
  }

  status(): HookStats {
    return { ...this.stats, running: this.running, queued: this.queue.length };
  }

  /** Queues the hooks this event's type has, server-wide and for its feed. */
  handle(event: LifecycleEvent): void {
    if (this.closed || event.type === 'read-refused') return;
    const feedHooks = event.feed !== '' ? (findFeedConfig(this.config.feeds, event.feed)?.hooks ?? []) : [];
    for (const hook of [...this.config.hooks.global, ...feedHooks]) {
      if (hook.event !== event.type) continue;
      if (this.queue.length >= MAX_QUEUED) {
        this.stats.dropped++;
        this.warn(
          `hook queue full (${MAX_QUEUED}): ${event.type} hook of ${hook.where} dropped; raise HookConcurrency or speed up the hook`,
        );
        continue;
      }
      this.queue.push({ hook, event });
    }
    this.pump();
  }

  /** Kills running programs, aborts POSTs and forgets the queue. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    for (const abort of this.aborts) abort.abort(new Error('server stopping'));
    const exits = [...this.children].map((child) => new Promise<void>((resolve) => child.once('close', () => resolve())));
    for (const child of this.children) child.kill('SIGTERM');
    await Promise.all(exits);
  }

  private pump(): void {
    while (!this.closed && this.running < this.config.hooks.concurrency && this.queue.length > 0) {
      const job = this.queue.shift();
      if (job === undefined) break;
      this.running++;
      void this.run(job).then(
        (ok) => {
          this.running--;
          if (ok) this.stats.succeeded++;
          else this.stats.failed++;
          this.pump();
        },
        (err: unknown) => {
          // run() catches everything it expects; this is a bug, logged and counted, never thrown.
          this.running--;
          this.stats.failed++;
          this.log.error('hook crashed', { where: job.hook.where, err });
          this.pump();
        },
      );
    }
  }

  private run(job: Job): Promise<boolean> {
    return job.hook.action.kind === 'url' ? this.post(job, job.hook.action.url) : this.exec(job, job.hook.action.argv);
  }

  private exec(job: Job, argv: readonly string[]): Promise<boolean> {
    const [program = '', ...args] = argv;
    const { event, hook } = job;
    return new Promise((resolve) => {
      const child = spawn(program, args, {
        env: { ...process.env, ...hookEnvironment(event) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      this.children.add(child);
      let stderr = '';
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES);
      });
      let timedOut = false;
      let killTimer: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      }, this.config.hooks.timeoutMs);
      let spawnError: Error | undefined;
      child.once('error', (err) => {
        spawnError = err;
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (killTimer !== undefined) clearTimeout(killTimer);
        this.children.delete(child);
        if (code === 0 && !timedOut) {
          resolve(true);
          return;
        }
        const why =
          spawnError !== undefined
            ? `could not start ${program}: ${spawnError.message} (give an absolute path or check PATH)`
            : timedOut
              ? `killed after HookTimeout (${this.config.hooks.timeoutMs} ms)`
              : `exited with ${code !== null ? `code ${code}` : `signal ${signal ?? '?'}`}`;
        this.log.warn(`${event.type} hook failed: ${why}`, {
          where: hook.where,
          feed: event.feed,
          ...(stderr.trim() !== '' ? { stderr: stderr.trim().split('\n').slice(-5).join(' | ') } : {}),
        });
        resolve(false);
      });
    });
  }

  private async post(job: Job, url: string): Promise<boolean> {
    const { event, hook } = job;
    const body = JSON.stringify(event);
    let why = '';
    for (let attempt = 0; attempt <= this.config.hooks.retries && !this.closed; attempt++) {
      if (attempt > 0 && !(await this.pause(FIRST_RETRY_MS * 2 ** (attempt - 1)))) break;
      const abort = new AbortController();
      this.aborts.add(abort);
      const timer = setTimeout(() => abort.abort(new Error('timeout')), this.config.hooks.timeoutMs);
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'User-Agent': 'Feedcast hooks' },
          body,
          signal: abort.signal,
          redirect: 'manual',
        });
        await response.body?.cancel();
        if (response.ok) return true;
        why = `answered ${response.status}`;
        // A 4xx will not change by asking again.
        if (response.status < 500) break;
      } catch (err) {
        why = abort.signal.aborted ? `no answer within HookTimeout (${this.config.hooks.timeoutMs} ms)` : errorText(err);
      } finally {
        clearTimeout(timer);
        this.aborts.delete(abort);
      }
    }
    this.log.warn(`${event.type} hook POST failed: ${why}`, { where: hook.where, url, feed: event.feed });
    return false;
  }

  /** Waits `ms` unless the runner closes first (then false). */
  private pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const abort = new AbortController();
      this.aborts.add(abort);
      const timer = setTimeout(() => {
        this.aborts.delete(abort);
        resolve(true);
      }, ms);
      abort.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        this.aborts.delete(abort);
        resolve(false);
      });
    });
  }
}

/** The event as FEEDCAST_* variables for a hook program. */
export function hookEnvironment(event: LifecycleEvent): Record<string, string> {
  const env: Record<string, string> = {
    FEEDCAST_EVENT: event.type,
    FEEDCAST_EVENT_ID: String(event.id),
    FEEDCAST_TIME: event.time,
    FEEDCAST_FEED: event.feed,
    FEEDCAST_NAME: event.name,
    FEEDCAST_PROTOCOL: event.protocol,
    FEEDCAST_REMOTE_ADDR: event.remoteAddress,
  };
  if (event.reason !== undefined) env.FEEDCAST_REASON = event.reason;
  if (event.durationMs !== undefined) env.FEEDCAST_DURATION_MS = String(Math.round(event.durationMs));
  if (event.file !== undefined) env.FEEDCAST_FILE = event.file;
  if (event.bytes !== undefined) env.FEEDCAST_BYTES = String(event.bytes);
  return env;
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
