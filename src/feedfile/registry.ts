// Which feed has which FeedFile: the writer registers itself when it attaches to a feed, and
// readers (HTTP time-shift, status page, API) look it up here without a reference to the server.

import type { Feed } from '../feed/feed.js';
import type { FeedFileWriter } from './writer.js';

const files = new WeakMap<Feed, FeedFileWriter>();

export function registerFeedFile(feed: Feed, writer: FeedFileWriter): void {
  files.set(feed, writer);
}

export function unregisterFeedFile(feed: Feed, writer: FeedFileWriter): void {
  if (files.get(feed) === writer) files.delete(feed);
}

/** The feed file of `feed`, if it has one open. */
export function feedFileOf(feed: Feed): FeedFileWriter | undefined {
  return files.get(feed);
}
