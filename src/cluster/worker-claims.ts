// One publisher per feed across the workers of `Workers N` (docs/cluster.md, "Workers"): before a publisher
// attaches, its worker asks the primary for the feed's slot (FeedManager.claimPublisher). The primary grants
// it to the first worker that asks (IPC messages are handled one at a time: first claim wins) and refuses the
// others with the words a single process uses, until the holder's publisher leaves or the holder dies.

import { FeedBusyError } from '../errors.js';
import type { Feed } from '../feed/feed.js';
import type { FeedManager } from '../feed/feed-manager.js';
import type { Logger } from '../observability/logger.js';
import { isClaimAnswer, type ClaimAnswer, type WorkerReport } from './worker-messages.js';

/** A worker that got the slot but attached no publisher this long after (its client left meanwhile) gives it back. */
const UNUSED_CLAIM_MS = 3000;
/** The primary answers within a few ms; if it does not (it is stopping), the worker decides alone. */
const ANSWER_TIMEOUT_MS = 3000;

interface Claim {
  readonly worker: number;
  protocol: string;
  startedAt: string;
}

/** The primary's side: which worker holds each feed's publisher slot. */
export class PublisherClaims {
  private readonly claims = new Map<string, Claim>();

  /**
   * Gives `worker` the slot of `key` unless another worker holds it; returns why not (undefined: granted).
   * The holder asking again (a second publisher on the same worker) keeps it: that worker's own feed then
   * decides, as on one process.
   */
  claim(worker: number, key: string, protocol: string, startedAt: string): string | undefined {
    const lower = key.toLowerCase();
    const held = this.claims.get(lower);
    if (held !== undefined && held.worker !== worker) return `already published by ${held.protocol} since ${held.startedAt}`;
    if (held === undefined) this.claims.set(lower, { worker, protocol, startedAt });
    return undefined;
  }

  /**
   * A publisher attached on `worker`: the slot's details become its own (what the refusals quote), or, when it
   * attached without asking (worker 1's Launch/Source, the demo) and the slot is free, it takes the slot.
   */
  attached(worker: number, key: string, protocol: string, startedAt: string): void {
    const lower = key.toLowerCase();
    const held = this.claims.get(lower);
    if (held === undefined) this.claims.set(lower, { worker, protocol, startedAt });
    else if (held.worker === worker) {
      held.protocol = protocol;
      held.startedAt = startedAt;
    }
  }

  release(worker: number, key: string): void {
    const lower = key.toLowerCase();
    if (this.claims.get(lower)?.worker === worker) this.claims.delete(lower);
  }

  /** The worker died: every slot it held is free. */
  releaseWorker(worker: number): void {
    for (const [key, claim] of [...this.claims]) if (claim.worker === worker) this.claims.delete(key);
  }

  /** Which worker holds each slot (tests, status). */
  holders(): Map<string, number> {
    return new Map([...this.claims].map(([key, c]) => [key, c.worker]));
  }
}

export type SendClaim = (report: WorkerReport) => void;

function sendOverIpc(report: WorkerReport): void {
  if (process.send === undefined || !process.connected) return;
  process.send(report, undefined, {}, () => undefined);
}

/** A worker's side: asks for the slot before a publisher attaches here, and gives it back when that one leaves. */
export class WorkerClaims {
  private readonly feeds: FeedManager;
  private readonly log: Logger;
  private readonly send: SendClaim;
  private nextId = 1;
  private readonly pending = new Map<number, (answer: ClaimAnswer | undefined) => void>();
  /** Feeds whose slot this worker holds (lowercased key), with when it got it. */
  private readonly held = new Map<string, number>();
  private readonly offs: (() => void)[] = [];
  private readonly sweep: NodeJS.Timeout;
  private readonly onMessage = (message: unknown): void => {
    if (isClaimAnswer(message)) this.pending.get(message.id)?.(message);
  };

  constructor(feeds: FeedManager, log: Logger, send: SendClaim = sendOverIpc) {
    this.feeds = feeds;
    this.log = log.child({ part: 'workers' });
    this.send = send;
    process.on('message', this.onMessage);
    this.offs.push(
      // A publisher that attached without asking (worker 1's Launch/Source or demo), or the slot's real details.
      feeds.on('publish', (feed, info) => {
        if (info.protocol === 'relay') return;
        this.held.set(feed.key.toLowerCase(), Date.now());
        this.send({ fc: 'claim', key: feed.key, protocol: info.protocol, startedAt: info.startedAt.toISOString() });
      }),
      feeds.on('unpublish', (feed, info) => {
        if (info.protocol !== 'relay' && feed.publisher === undefined) this.release(feed.key);
      }),
    );
    // A slot granted to a client that then left before its publisher attached goes back.
    this.sweep = setInterval(() => this.releaseUnused(Date.now()), 1000);
    this.sweep.unref();
    feeds.setPublisherClaim((feed, protocol) => this.claim(feed, protocol));
  }

  /** Resolves when this worker holds the feed's slot; rejects with FeedBusyError when another worker's publisher has it. */
  async claim(feed: Feed, protocol: string): Promise<void> {
    const id = this.nextId++;
    const answer = await new Promise<ClaimAnswer | undefined>((resolve) => {
      const timer = setTimeout(() => done(undefined), ANSWER_TIMEOUT_MS);
      const done = (a: ClaimAnswer | undefined): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(a);
      };
      this.pending.set(id, done);
      this.send({ fc: 'claim', id, key: feed.key, protocol, startedAt: new Date().toISOString() });
    });
    if (answer === undefined) {
      this.log.warn('workers: the primary did not answer a publisher claim; this worker decides alone', { feed: feed.key });
      return;
    }
    if (answer.busy !== undefined) throw new FeedBusyError(feed.key, answer.busy);
    this.held.set(feed.key.toLowerCase(), Date.now());
  }

  /** Feeds whose slot this worker holds (tests). */
  get holding(): string[] {
    return [...this.held.keys()];
  }

  private release(key: string): void {
    const lower = key.toLowerCase();
    if (!this.held.delete(lower)) return;
    this.send({ fc: 'unclaim', key: lower });
  }

  private releaseUnused(nowMs: number): void {
    for (const [key, since] of [...this.held]) {
      const publisher = this.feeds.peek(key)?.publisher;
      if ((publisher === undefined || publisher.protocol === 'relay') && nowMs - since >= UNUSED_CLAIM_MS) this.release(key);
    }
  }

  close(): void {
    clearInterval(this.sweep);
    for (const off of this.offs.splice(0)) off();
    this.feeds.setPublisherClaim(undefined);
    process.off('message', this.onMessage);
    for (const done of [...this.pending.values()]) done(undefined);
    for (const key of [...this.held.keys()]) this.release(key);
  }
}
