// FeedManager's simulcast layer feeds (issue 22): `FEED~RID` is found by readers, never taken by a
// publisher, follows the parent's publisher and goes with the parent.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../observability/logger.js';
import { FeedManager } from './feed-manager.js';

const info = (protocol: string) => ({ protocol, remoteAddress: '127.0.0.1', startedAt: new Date() });

test('layer feeds: found by name, not by publishers, listed while their publisher sends them', () => {
  const feeds = new FeedManager({ publisherTimeoutMs: 5000, publisherGraceMs: 0, dynamicFeeds: true }, silentLogger);
  const cam = feeds.declare('cam.ffm');
  const whip = cam.attachPublisher(info('webrtc'));
  const [h, l] = feeds.setLayers(cam, ['h', 'l'], whip.info);
  assert.equal(h?.key, 'cam~h');
  assert.equal(feeds.get('CAM~H'), h);
  assert.equal(feeds.forPublisher('cam~h'), undefined, 'nobody publishes to a layer');
  assert.deepEqual(feeds.layersOf(cam), [h, l]);
  assert.equal(feeds.all().length, 1, 'layers are not listed as feeds');
  // The same publisher again (a reconnect): the same feeds, so their readers stay.
  whip.end('gone');
  assert.deepEqual(feeds.layersOf(cam), [h, l], "between publishers the last one's layers stay");
  const again = cam.attachPublisher(info('webrtc'));
  assert.deepEqual(feeds.setLayers(cam, ['h'], again.info), [h]);
  assert.equal(feeds.get('cam~l'), undefined, 'a layer no longer sent is closed');
  // Another publisher that sends no layers: the feed is plain again.
  again.end('gone');
  cam.attachPublisher(info('rtmp'));
  assert.deepEqual(feeds.layersOf(cam), []);
  feeds.remove('cam');
  assert.equal(feeds.get('cam~h'), undefined, 'the layers go with their feed');
  feeds.closeAll();
});
