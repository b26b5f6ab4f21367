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

test('cluster (issue 20): a feed published on another node is made on first use, swept when idle, and becomes local when published here', () => {
  const feeds = new FeedManager(
    { publisherTimeoutMs: 5000, publisherGraceMs: 0, dynamicFeeds: false, dynamicFeedTimeoutMs: 1000 },
    silentLogger,
  );
  assert.equal(feeds.get('cam1'), undefined, 'no cluster: unknown');
  const elsewhere = new Map([['cam1', 'Cam1']]);
  feeds.setRemoteLookup((key) => elsewhere.get(key));
  const relayed = feeds.get('CAM1.ffm');
  assert.equal(relayed?.key, 'Cam1', 'made under the key it is published with');
  assert.equal(feeds.get('cam1'), relayed, 'made once');
  assert.ok(relayed !== undefined && feeds.isRelayed(relayed) && feeds.isDynamic(relayed));
  assert.equal(feeds.get('other'), undefined, 'a feed published nowhere is still unknown');
  assert.equal(feeds.forPublisher('other'), undefined, 'publishers do not make remote feeds (DynamicFeeds off)');

  // Unused for DynamicFeedTimeout: removed like a dynamic feed.
  feeds.sweepDynamic(0);
  feeds.sweepDynamic(1000);
  assert.equal(feeds.all().length, 0, 'swept when idle');

  // A publisher here takes it over: it is this node's own feed from then on.
  const again = feeds.get('cam1');
  assert.ok(again !== undefined && feeds.isRelayed(again));
  assert.equal(feeds.forPublisher('cam1'), again);
  assert.equal(feeds.isRelayed(again), false);

  // A simulcast layer of a remote feed (FEED~RID) is made too; peek() looks without making anything.
  elsewhere.set('cam2~h', 'Cam2~h').set('cam2~h!', 'Cam2~h!');
  assert.equal(feeds.peek('cam2~h'), undefined, 'peek makes nothing');
  assert.equal(feeds.get('cam2~h')?.key, 'Cam2~h', 'a remote layer feed is made for its relay');
  assert.equal(feeds.peek('CAM2~H')?.key, 'Cam2~h');
  assert.equal(feeds.get('cam2~h!'), undefined, 'not a layer name');
  feeds.closeAll();
});
