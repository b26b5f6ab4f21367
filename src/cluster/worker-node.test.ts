// Workers N: what each worker runs (worker 1 the whole config, the others without what is done once), its node
// in the local cluster, and the internal port where a forwarded request stands for its client only with the secret.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { parseConfigText } from '../config/config.js';
import { startTestServer } from '../../test/helpers/test-server.js';
import { configForWorker, internalHost, workerClusterConfig } from './worker-node.js';
import { FORWARD_HEADERS } from './worker-messages.js';

const CONF = `HTTPPort 8090
SRTPort 9000
Workers 2
<Feed cam1.ffm>
  File /tmp/feedcast-worker-node-test-cam1.ffm
  Record on
  OfflineSlate on
</Feed>
<Feed src.ffm>
  Source http://127.0.0.1:1/x.ts
</Feed>
`;

test('Workers N: worker 1 runs the whole config; the others leave out feed files, recordings, children, slates, WebRTC and SRT', async () => {
  const config = await parseConfigText(CONF, 'w.conf');
  assert.equal(config.workers, 2);
  assert.equal(configForWorker(config, 1), config);
  const second = configForWorker(config, 2);
  const cam1 = second.feeds.find((f) => f.key === 'cam1');
  const src = second.feeds.find((f) => f.key === 'src');
  assert.equal(cam1?.file, undefined);
  assert.equal(cam1?.record, undefined);
  assert.equal(cam1?.offlineSlate, undefined);
  assert.equal(src?.source, undefined);
  assert.equal(second.webrtc.enabled, false);
  assert.equal(second.srt.port, undefined);
  // What it still serves is unchanged.
  assert.deepEqual(second.http, config.http);
  assert.deepEqual(
    second.feeds.map((f) => f.key),
    config.feeds.map((f) => f.key),
  );
  assert.ok(config.feeds.find((f) => f.key === 'cam1')?.file !== undefined, 'the config given is not changed');
});

test('Workers auto is the number of CPUs; 0, 65 and words are refused', async () => {
  const { availableParallelism } = await import('node:os');
  assert.equal((await parseConfigText('Workers auto\n', 'w.conf')).workers, availableParallelism());
  assert.equal((await parseConfigText('', 'w.conf')).workers, 1);
  await assert.rejects(parseConfigText('Workers 0\n', 'w.conf'), /Workers 0 is out of range/);
  await assert.rejects(parseConfigText('Workers 65\n', 'w.conf'), /out of range/);
  await assert.rejects(parseConfigText('Workers many\n', 'w.conf'), /Workers "many" is not a whole number or auto/);
});

test("a worker's node: worker-K on loopback alone; with ClusterRedis NAME-wK at NodeURL's host", async () => {
  const alone = await parseConfigText('HTTPPort 8090\nWorkers 2\n', 'w.conf');
  assert.equal(internalHost(alone), '127.0.0.1');
  const local = workerClusterConfig(alone, { index: 2, count: 2, secret: 's' }, 41000);
  assert.equal(local.nodeName, 'worker-2');
  assert.equal(local.nodeUrl, 'http://127.0.0.1:41000');
  const shared = await parseConfigText(
    'HTTPPort 8090\nHTTPBindAddress 10.0.0.2\nWorkers 2\nClusterRedis redis://10.0.0.1\nNodeName edge-b\nNodeURL http://10.0.0.2:8090\n',
    'w.conf',
  );
  assert.equal(internalHost(shared), '10.0.0.2');
  const node = workerClusterConfig(shared, { index: 1, count: 2, secret: 's' }, 41001);
  assert.equal(node.nodeName, 'edge-b-w1');
  assert.equal(node.nodeUrl, 'http://10.0.0.2:41001');
  assert.equal(node.redisUrl, 'redis://10.0.0.1');
});

function statusOf(port: number, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/stat.html', headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

test("the internal port: a request with the workers' secret stands for the client it names; without it, or on the shared port, it does not", async (t) => {
  const server = await startTestServer(t, 'StatusACL allow 10.1.2.3\n');
  const internal = await server.http.listenInternal('127.0.0.1', 'the-secret');
  assert.notEqual(internal, server.httpPort);
  const forwarded = { [FORWARD_HEADERS.secret]: 'the-secret', [FORWARD_HEADERS.client]: '10.1.2.3' };
  assert.equal(await statusOf(internal, forwarded), 200, 'forwarded for 10.1.2.3, which StatusACL allows');
  assert.equal(await statusOf(internal, {}), 403, 'no secret: the peer, 127.0.0.1');
  assert.equal(await statusOf(internal, { ...forwarded, [FORWARD_HEADERS.secret]: 'the-secreT' }), 403, 'a wrong secret');
  assert.equal(await statusOf(internal, { ...forwarded, [FORWARD_HEADERS.client]: 'not-an-address' }), 403, 'no address');
  assert.equal(await statusOf(server.httpPort, forwarded), 403, 'the shared port ignores the headers');
});
