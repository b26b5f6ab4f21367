// Issue 20, part 1: without ClusterRedis nothing of the cluster runs. A single node loads no Redis client
// (server.ts imports src/cluster/ only with ClusterRedis) and answers 404 for /api/v1/cluster.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { startTestServer } from '../helpers/test-server.js';

const require = createRequire(import.meta.url);
/** Whether ioredis (a CommonJS package, so in require's cache once loaded, even by import) was loaded. */
const ioredisLoaded = (): boolean => Object.keys(require.cache).some((path) => path.includes('/node_modules/ioredis/'));

test('a single node (no ClusterRedis) loads no Redis client and has no cluster API', async (t) => {
  const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
  const res = await fetch(server.url('/api/v1/cluster'));
  assert.equal(res.status, 404);
  assert.match(await res.text(), /not part of a cluster: set ClusterRedis/);
  assert.equal(server.ctx.cluster, undefined);
  assert.equal(ioredisLoaded(), false, 'no Redis client loaded');
  // The check sees the client once it is loaded.
  await import('ioredis');
  assert.equal(ioredisLoaded(), true);
});
