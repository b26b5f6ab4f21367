// The recordings of a server: one Recorder per feed with `Record on`, the index of its files (found
// at start-up, repaired if a crash cut them, then kept as the recorder writes) and its retention,
// applied every minute and at each new file. Started and reloaded by applyConfig, as the other owners.

import { rmdir, unlink } from 'node:fs/promises';
import { dirname, normalize } from 'node:path';
import type { FeedConfig, RecordConfig } from '../config/config.js';
import { nameKey } from '../config/names.js';
import type { Feed } from '../feed/feed.js';
import type { FeedManager } from '../feed/feed-manager.js';
import type { Logger } from '../observability/logger.js';
import { Recorder, type RecorderFile, type RecorderStatus } from './recorder.js';
import { recordRoot } from './record-path.js';
import { current, scanRecordings, type RecordingEntry } from './recording-index.js';
import { retentionVictims } from './retention.js';
import { TsIndexCache } from './ts-recording.js';

const RETENTION_INTERVAL_MS = 60_000;

export interface FeedRecordingsStatus extends RecorderStatus {
  feed: string;
  files: number;
  bytesHeld: number;
  oldestWallMs: number | undefined;
  newestWallMs: number | undefined;
  retentionDeletedFiles: number;
  retentionDeletedBytes: number;
}

/** The recordings of one feed. */
export class FeedRecordings {
  readonly feed: Feed;
  readonly recorder: Recorder;
  readonly entries: RecordingEntry[];
  readonly deleted = { files: 0, bytes: 0 };
  /** Join points of its TS recordings (RecordFormat ts), read once per file, for range playback. */
  readonly tsIndexes = new TsIndexCache();

  constructor(feed: Feed, recorder: Recorder, entries: RecordingEntry[]) {
    this.feed = feed;
    this.recorder = recorder;
    this.entries = entries;
  }

  /** The files held now (the one being written with its current end), oldest first. */
  files(): RecordingEntry[] {
    return this.entries.map(current).sort((a, b) => a.startWallMs - b.startWallMs);
  }

  get status(): FeedRecordingsStatus {
    const files = this.files().filter((f) => f.bytes > 0);
    return {
      feed: this.feed.key,
      ...this.recorder.status,
      files: files.length,
      bytesHeld: files.reduce((n, f) => n + f.bytes, 0),
      oldestWallMs: files[0]?.startWallMs,
      newestWallMs: files.reduce<number | undefined>((n, f) => Math.max(n ?? 0, f.endWallMs), undefined),
      retentionDeletedFiles: this.deleted.files,
      retentionDeletedBytes: this.deleted.bytes,
    };
  }
}

/** A finished recording file, as the lifecycle events report it (OnRecordSegment). */
export interface FinishedSegment {
  readonly feed: string;
  readonly file: string;
  readonly bytes: number;
  readonly durationMs: number;
}

export class Recordings {
  /** Told of every file finished with something in it (server.ts: lifecycle events, OnRecordSegment). */
  onSegmentFinished: ((segment: FinishedSegment) => void) | undefined;
  private readonly feeds: FeedManager;
  private readonly log: Logger;
  private readonly byKey = new Map<string, FeedRecordings>();
  private timer: NodeJS.Timeout | undefined;
  private retention: Promise<void> | undefined;
  private retentionAgain = false;

  constructor(feeds: FeedManager, log: Logger) {
    this.feeds = feeds;
    this.log = log;
  }

  /** The recordings of a feed (by key, any case), if it records. */
  of(feedKey: string): FeedRecordings | undefined {
    return this.byKey.get(nameKey(feedKey));
  }

  all(): FeedRecordings[] {
    return [...this.byKey.values()];
  }

  /**
   * Starts recording the feeds that have `Record on` (after reading and repairing what they already
   * hold), stops those that no longer have it, and hands new settings to running recorders (they
   * apply from the next file).
   */
  async applyConfig(next: { feeds: readonly FeedConfig[] }): Promise<void> {
    const wanted = new Map(
      next.feeds
        .filter((f): f is FeedConfig & { record: RecordConfig } => f.record !== undefined)
        .map((f) => [nameKey(f.key), f]),
    );
    for (const [key, r] of [...this.byKey]) {
      const f = wanted.get(key);
      if (f === undefined || this.feeds.get(key) !== r.feed) {
        this.byKey.delete(key);
        await r.recorder.close();
      } else {
        r.recorder.settings = f.record;
      }
    }
    for (const [key, f] of wanted) {
      const feed = this.feeds.get(f.key);
      if (feed === undefined || this.byKey.has(key)) continue;
      let entries: RecordingEntry[] = [];
      try {
        entries = await scanRecordings(f.record.pathPattern, feed.key, this.log);
      } catch (err) {
        this.log.warn('recordings cannot be listed; recording starts anyway', { feed: feed.key, err });
      }
      const holder: { r?: FeedRecordings } = {};
      const recorder = new Recorder(feed, f.record, this.log, {
        onFileStarted: (file) => {
          if (holder.r !== undefined) this.track(holder.r, file);
        },
        onFileFinished: (file) => {
          if (holder.r !== undefined) this.untrack(holder.r, file);
        },
      });
      holder.r = new FeedRecordings(feed, recorder, entries);
      this.byKey.set(key, holder.r);
      this.log.info('recording', { feed: feed.key, path: f.record.pathPattern, format: f.record.format, files: entries.length });
    }
    if (this.byKey.size > 0 && this.timer === undefined) {
      this.timer = setInterval(() => this.applyRetention(), RETENTION_INTERVAL_MS);
      this.timer.unref();
    }
    await this.applyRetentionNow();
  }

  private track(r: FeedRecordings, f: RecorderFile): void {
    r.entries.push({
      path: f.file.path,
      format: f.format,
      startWallMs: f.file.startWallMs,
      endWallMs: f.file.startWallMs,
      bytes: 0,
      live: f.file,
    });
    this.applyRetention();
  }

  private untrack(r: FeedRecordings, f: RecorderFile): void {
    const e = r.entries.find((x) => x.live === f.file);
    if (e === undefined) return;
    const now = current(e);
    e.path = f.file.path;
    e.endWallMs = now.endWallMs;
    e.bytes = now.bytes;
    e.live = undefined;
    // A file that never got a frame (the disk failed at once) is not a recording.
    if (e.bytes === 0 || (f.file.isFailed && e.endWallMs <= e.startWallMs)) r.entries.splice(r.entries.indexOf(e), 1);
    else {
      const durationMs = Math.max(0, Math.round(e.endWallMs - e.startWallMs));
      this.onSegmentFinished?.({ feed: r.feed.key, file: e.path, bytes: e.bytes, durationMs });
    }
    this.applyRetention();
  }

  /** Runs retention now, or again after the run under way (it may have looked before this change). */
  applyRetention(): void {
    if (this.retention !== undefined) {
      this.retentionAgain = true;
      return;
    }
    this.retention = this.applyRetentionNow().finally(() => {
      this.retention = undefined;
      if (this.retentionAgain) {
        this.retentionAgain = false;
        this.applyRetention();
      }
    });
  }

  /** RecordRetention for every feed: deletes the oldest files over the limits. */
  async applyRetentionNow(): Promise<void> {
    const now = Date.now();
    for (const r of this.byKey.values()) {
      const s = r.recorder.settings;
      if (s.retentionSeconds === undefined && s.retentionBytes === undefined) continue;
      const victims = retentionVictims(
        r.entries,
        { maxAgeMs: s.retentionSeconds !== undefined ? s.retentionSeconds * 1000 : undefined, maxBytes: s.retentionBytes },
        now,
      );
      const root = normalize(recordRoot(s.pathPattern, r.feed.key));
      for (const v of victims) {
        try {
          await unlink(v.path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
            this.log.warn('recording retention: a file cannot be deleted', { path: v.path, err });
            continue;
          }
        }
        const i = r.entries.indexOf(v);
        if (i >= 0) r.entries.splice(i, 1);
        r.deleted.files++;
        r.deleted.bytes += v.bytes;
        this.log.info('recording deleted (RecordRetention)', { feed: r.feed.key, path: v.path, bytes: v.bytes });
        await removeEmptyDirs(dirname(v.path), root);
      }
    }
  }

  /** Ends every recording (the files are complete and closed). */
  async closeAll(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    const all = [...this.byKey.values()];
    this.byKey.clear();
    await Promise.all(all.map((r) => r.recorder.close()));
    while (this.retention !== undefined) await this.retention;
  }
}

/** Removes `dir` and its parents up to (not including) `root` while they are empty. */
async function removeEmptyDirs(dir: string, root: string): Promise<void> {
  let d = normalize(dir);
  while (d !== root && d.startsWith(root) && d.length > root.length) {
    try {
      await rmdir(d);
    } catch {
      return; // not empty (or gone): stop
    }
    d = dirname(d);
  }
}
