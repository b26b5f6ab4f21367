// Name -> Feed. The only place feeds are created and destroyed; everything else asks it.

import { feedKeyOf, nameKey } from '../config/names.js';
import type { Logger } from '../observability/logger.js';
import { Feed, type FeedOptions } from './feed.js';

export interface FeedManagerOptions extends FeedOptions {
  /** Whether a publisher may create a feed that the config does not declare. */
  dynamicFeeds: boolean;
}

/** Names a dynamic feed may take: safe in URLs, file names and HTML. */
const FEED_KEY = /^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$/;

export { feedKeyOf } from '../config/names.js';

export class FeedManager {
  private readonly feeds = new Map<string, Feed>();
  private readonly options: FeedManagerOptions;
  private readonly log: Logger;

  constructor(options: FeedManagerOptions, log: Logger) {
    this.options = options;
    this.log = log;
  }

  /** Declares a configured feed (`<Feed feed1.ffm>`), reachable as `feed1`. */
  declare(name: string): Feed {
    const key = feedKeyOf(name);
    const existing = this.feeds.get(nameKey(key));
    if (existing !== undefined) return existing;
    const feed = new Feed(name, key, this.options, this.log);
    this.feeds.set(nameKey(key), feed);
    return feed;
  }

  /** The feed named by `key` (`feed1`) or its full name (`feed1.ffm`), in any case. */
  get(nameOrKey: string): Feed | undefined {
    return this.feeds.get(nameKey(feedKeyOf(nameOrKey)));
  }

  /**
   * The feed a publisher asked for: a declared one, or a new dynamic one when the config allows
   * it. Returns undefined when the name is unknown and dynamic feeds are off (or the name unsafe).
   */
  forPublisher(nameOrKey: string): Feed | undefined {
    const feed = this.get(nameOrKey);
    if (feed !== undefined || !this.options.dynamicFeeds) return feed;
    const key = feedKeyOf(nameOrKey);
    if (!FEED_KEY.test(key)) return undefined;
    this.log.info('dynamic feed created', { feed: key });
    return this.declare(key);
  }

  all(): Feed[] {
    return [...this.feeds.values()];
  }

  remove(nameOrKey: string): void {
    const key = nameKey(feedKeyOf(nameOrKey));
    const feed = this.feeds.get(key);
    if (feed === undefined) return;
    this.feeds.delete(key);
    feed.close();
  }

  /** The server is stopping: publishers that leave from now on are not waited for. */
  beginStop(): void {
    for (const feed of this.feeds.values()) feed.beginStop();
  }

  closeAll(): void {
    for (const feed of this.feeds.values()) feed.close();
    this.feeds.clear();
  }
}
