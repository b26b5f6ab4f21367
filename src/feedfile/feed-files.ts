// The feed files of a server: one FeedFileWriter per feed with a `File`, opened at start and on
// reload (new or changed feeds), closed with their feed. Readers (HTTP and RTSP time-shift, status
// page, API, metrics) find a feed's file here.

import type { FeedConfig } from '../config/config.js';
import type { Feed } from '../feed/feed.js';
import type { FeedManager } from '../feed/feed-manager.js';
import { nameKey } from '../config/names.js';
import type { Logger } from '../observability/logger.js';
import { FeedFileWriter } from './writer.js';

/** Errors of a disk that cannot be written: the feed runs live without its file. */
const UNUSABLE_DISK = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'EIO']);

interface Open {
  feed: Feed;
  writer: FeedFileWriter;
  shape: string;
}

function fileShape(f: FeedConfig): string {
  return JSON.stringify([f.file, f.fileMaxSizeBytes, f.fileSyncMs, f.truncate, f.readOnly]);
}

export class FeedFiles {
  private readonly feeds: FeedManager;
  private readonly log: Logger;
  private readonly open = new Map<string, Open>();

  constructor(feeds: FeedManager, log: Logger) {
    this.feeds = feeds;
    this.log = log;
  }

  /** The feed file of `feed`, if it has one open. */
  of(feed: Feed): FeedFileWriter | undefined {
    const o = this.open.get(nameKey(feed.key));
    return o !== undefined && o.feed === feed ? o.writer : undefined;
  }

  /**
   * Opens the file of every feed of `feeds` that has one and is not open yet (or whose feed or
   * File settings changed), and closes the others. An existing file is recovered; a file that is
   * not ours throws at start (`strict`) and is logged on reload; a disk that cannot be written
   * costs that feed its recording, not the server.
   */
  async applyConfig(next: { feeds: readonly FeedConfig[] }, strict = false): Promise<void> {
    const wanted = new Map(next.feeds.filter((f) => f.file !== undefined).map((f) => [nameKey(f.key), f]));
    for (const [key, o] of [...this.open]) {
      const f = wanted.get(key);
      if (f === undefined || fileShape(f) !== o.shape || this.feeds.get(key) !== o.feed) {
        this.open.delete(key);
        await o.writer.close();
      }
    }
    for (const [key, f] of wanted) {
      const feed = this.feeds.get(f.key);
      if (feed === undefined || f.file === undefined || this.open.has(key)) continue;
      try {
        const writer = await FeedFileWriter.open(feed, {
          path: f.file,
          maxSizeBytes: f.fileMaxSizeBytes,
          syncIntervalMs: f.fileSyncMs,
          truncate: f.truncate,
          readOnly: f.readOnly,
          log: this.log,
        });
        this.open.set(key, { feed, writer, shape: fileShape(f) });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== undefined && UNUSABLE_DISK.has(code)) {
          this.log.error('feed file unusable: the feed runs live without it', { feed: f.key, file: f.file, code });
          continue;
        }
        if (strict) throw err;
        this.log.error('feed file cannot be opened: the feed runs live without it', { feed: f.key, file: f.file, err });
      }
    }
  }

  /** Flushes and closes every file. */
  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((o) => o.writer.close()));
  }
}
