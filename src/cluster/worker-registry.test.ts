// Workers N without ClusterRedis: a worker's registry reports to the primary and mirrors the map it sends back.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../observability/logger.js';
import type { FeedRecord, NodeRecord } from './registry.js';
import type { ClusterMap, WorkerReport } from './worker-messages.js';
import { WorkerRegistry } from './worker-registry.js';

const node = (name: string, port: number): NodeRecord => ({
  name,
  url: `http://127.0.0.1:${port}`,
  startedAt: '2026-12-07T15:00:00.000Z',
  version: 't',
});
const W1 = node('worker-1', 41001);
const W2 = node('worker-2', 41002);

function feedOn(n: NodeRecord, feed: string): FeedRecord {
  return { feed, node: n.name, url: n.url, protocol: 'rtmp', tracks: [], startedAt: '2026-12-07T15:00:00.000Z' };
}

/** Delivers a map as the primary would (over this process's 'message' event). */
function deliver(map: Omit<ClusterMap, 'fc'>): void {
  process.emit('message', { fc: 'map', ...map }, undefined);
}

test('a worker reports its node and feeds, and follows the map: a feed on another worker is remote, changes are events', async (t) => {
  const sent: WorkerReport[] = [];
  const registry = new WorkerRegistry(W2, silentLogger, (r) => sent.push(r));
  t.after(() => registry.close());
  const changes: [string, string | undefined][] = [];
  registry.on('feedChanged', (key, record) => changes.push([key, record?.node]));
  await registry.start();
  assert.deepEqual(sent[0], { fc: 'node', node: W2 });

  registry.registerFeed({ feed: 'Mine', protocol: 'rtmp', tracks: [], startedAt: '2026-12-07T15:00:00.000Z' });
  assert.equal(sent.at(-1)?.fc, 'feed');
  assert.equal(registry.remoteFeed('mine'), undefined, 'a feed published here is not remote');

  deliver({ nodes: [W1, W2], feeds: [feedOn(W1, 'cam1'), feedOn(W2, 'Mine')], relays: [] });
  assert.equal(registry.remoteFeed('CAM1')?.url, W1.url);
  assert.deepEqual(
    registry.nodes().map((n) => n.name),
    ['worker-1', 'worker-2'],
  );
  assert.deepEqual(changes, [['cam1', 'worker-1']]);

  // Worker 1 died: its feed leaves the map; ours stays even if a map does not list it yet.
  deliver({ nodes: [W2], feeds: [], relays: [] });
  assert.equal(registry.remoteFeed('cam1'), undefined);
  assert.deepEqual(changes.at(-1), ['cam1', undefined]);
  assert.ok(registry.feeds().some((f) => f.feed === 'Mine'));

  registry.unregisterFeed('MINE');
  assert.deepEqual(sent.at(-1), { fc: 'unfeed', key: 'mine' });
});

test("a pinned feed (worker 1's Launch/Source) stays registered to its worker without a publisher", async (t) => {
  const sent: WorkerReport[] = [];
  const registry = new WorkerRegistry(W1, silentLogger, (r) => sent.push(r));
  t.after(() => registry.close());
  registry.pin('src');
  await registry.start();
  assert.ok(sent.some((r) => r.fc === 'feed' && r.record.feed === 'src' && r.record.node === 'worker-1'));
  registry.registerFeed({ feed: 'src', protocol: 'http', tracks: [], startedAt: '2026-12-07T15:00:01.000Z' });
  registry.unregisterFeed('src');
  const last = sent.at(-1);
  assert.ok(last?.fc === 'feed' && last.record.protocol === 'source', 'the publisher left: the placeholder is registered again');
  await registry.close();
  assert.deepEqual(sent.at(-1), { fc: 'unfeed', key: 'src' });
});

test('pinOnly: a reload that adds a Launch/Source feed registers it here; one that removes it unregisters it', async (t) => {
  const sent: WorkerReport[] = [];
  const registry = new WorkerRegistry(W1, silentLogger, (r) => sent.push(r));
  t.after(() => registry.close());
  await registry.start();
  registry.pinOnly(['pulled']);
  assert.deepEqual(sent.at(-1), { fc: 'feed', record: { ...registry.feeds()[0], feed: 'pulled', node: 'worker-1' } });
  assert.deepEqual(
    registry.feeds().map((f) => [f.feed, f.node, f.protocol]),
    [['pulled', 'worker-1', 'source']],
  );
  const before = sent.length;
  registry.pinOnly(['pulled']);
  assert.equal(sent.length, before, 'pinned already: nothing new to report');
  registry.pinOnly([]);
  assert.deepEqual(sent.at(-1), { fc: 'unfeed', key: 'pulled' });
  assert.deepEqual(registry.feeds(), []);
});
