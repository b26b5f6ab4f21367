// One stream of lifecycle events (publish, unpublish, read, read-end, read-refused, record-segment) built from
// what the owners report: FeedManager for publishers, Access for readers, the recorder for its files. The hook
// runner and /api/v1/events listen to it; it keeps the newest events so a dashboard that reconnects can catch up.

import type { Access, AdmitRequest, Refusal } from '../access/access.js';
import type { HookEvent } from '../config/hooks.js';
import { feedKeyOf } from '../config/names.js';
import type { FeedManager } from '../feed/feed-manager.js';
import type { Logger } from '../observability/logger.js';
import { TypedEmitter } from '../typed-emitter.js';

export type LifecycleEventType = HookEvent | 'read-refused';

export interface LifecycleEvent {
  /** Increases by one per event since the server started (the SSE `id:`). */
  readonly id: number;
  readonly type: LifecycleEventType;
  /** ISO 8601. */
  readonly time: string;
  /** The feed's key (`feed1`). */
  readonly feed: string;
  /** What was published or read: the feed key, or a declared stream's name. */
  readonly name: string;
  readonly protocol: string;
  readonly remoteAddress: string;
  /** unpublish: why the publisher left; read-refused: why it was refused. */
  readonly reason?: string;
  /** read-refused: the HTTP status of the refusal. */
  readonly status?: number;
  /** read-end: how long the reader stayed. */
  readonly durationMs?: number;
  /** record-segment: the finished file, its bytes and the media time it covers. */
  readonly file?: string;
  readonly bytes?: number;
}

/** What the recorder says when a file is finished (OnRecordSegment). */
export interface RecordSegmentReport {
  readonly feed: string;
  readonly file: string;
  readonly bytes: number;
  readonly durationMs: number;
}

type Events = { event: [LifecycleEvent] };

const HISTORY = 256;

export class LifecycleEvents extends TypedEmitter<Events> {
  private nextId = 1;
  private readonly history: LifecycleEvent[] = [];
  private readonly unsubscribe: (() => void)[] = [];

  constructor(sources: { readonly feeds: FeedManager; readonly access: Access }, log: Logger) {
    super(log);
    this.unsubscribe.push(
      sources.feeds.on('publish', (feed, info) => {
        this.add({ type: 'publish', feed: feed.key, name: feed.key, protocol: info.protocol, remoteAddress: info.remoteAddress });
      }),
      sources.feeds.on('unpublish', (feed, info, reason) => {
        this.add({
          type: 'unpublish',
          feed: feed.key,
          name: feed.key,
          protocol: info.protocol,
          remoteAddress: info.remoteAddress,
          reason,
        });
      }),
      sources.access.on('read', (a) => {
        this.add({ type: 'read', feed: a.target.feed.key, name: a.target.name, protocol: a.protocol, remoteAddress: a.address });
      }),
      sources.access.on('readEnd', (a, durationMs) => {
        this.add({
          type: 'read-end',
          feed: a.target.feed.key,
          name: a.target.name,
          protocol: a.protocol,
          remoteAddress: a.address,
          durationMs,
        });
      }),
      sources.access.on('refused', (request, refusal) => this.refused(sources.access, request, refusal)),
    );
  }

  /** The recorder finished a file. */
  recordSegment(report: RecordSegmentReport): void {
    this.add({
      type: 'record-segment',
      feed: report.feed,
      name: report.feed,
      protocol: 'record',
      remoteAddress: '',
      file: report.file,
      bytes: report.bytes,
      durationMs: report.durationMs,
    });
  }

  /** Events newer than `afterId` still held (a reconnecting dashboard's Last-Event-ID). */
  since(afterId: number): readonly LifecycleEvent[] {
    return this.history.filter((e) => e.id > afterId);
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private refused(access: Access, request: AdmitRequest, refusal: Refusal): void {
    if (refusal.cause === 'redirect') return;
    const target = typeof request.target === 'string' ? access.resolve(request.target) : request.target;
    const asked = typeof request.target === 'string' ? request.target.slice(0, 100) : request.target.name;
    this.add({
      type: 'read-refused',
      feed: target?.feed?.key ?? (target?.stream?.feed !== undefined ? feedKeyOf(target.stream.feed) : ''),
      name: target?.name ?? asked,
      protocol: request.protocol,
      remoteAddress: request.address,
      reason: refusal.reason,
      status: refusal.status,
    });
  }

  private add(fields: Omit<LifecycleEvent, 'id' | 'time'>): void {
    const event: LifecycleEvent = { id: this.nextId++, time: new Date().toISOString(), ...fields };
    this.history.push(event);
    if (this.history.length > HISTORY) this.history.shift();
    this.safeEmit('event', event);
  }
}
