// Workers N: which requests only worker 1 serves, and the forwarding of them with the client's address
// (a real upstream HTTP server here; HttpServer's side of the secret is tested in worker-node.test.ts).

import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { silentLogger } from '../observability/logger.js';
import { Forwarder, servedByFirstWorker } from './forward.js';
import { FORWARD_HEADERS } from './worker-messages.js';

const u = (path: string): URL => new URL(`http://x/${path}`);

test('worker 1 serves what is under a feed (WHEP, WHIP, HLS, VOD), the recordings and reads of the past', () => {
  for (const path of [
    'cam1/whep',
    'cam1/whep/0f8fad5b-d9cb-469f-a165-70867728950e',
    'cam1/whip',
    'cam1/index.m3u8',
    'cam1/ts/index.m3u8',
    'cam1/r0/seg12.m4s',
    'cam1/vod/x.ts',
    'recordings',
    'recordings/cam1',
    'api/v1/recordings',
    'api/v1/recordings/cam1',
  ]) {
    assert.equal(servedByFirstWorker(path, u(path)), true, path);
  }
  assert.equal(servedByFirstWorker('cam1.flv', new URL('http://x/cam1.flv?date=2026-12-07T10:00:00Z')), true);
  assert.equal(servedByFirstWorker('cam1.mp4', new URL('http://x/cam1.mp4?start=-5m')), true);
  for (const path of [
    'cam1.flv',
    'cam1.ts',
    'cam1',
    'stat.html',
    '',
    'api/v1/cluster',
    'api/v1/feeds/cam1',
    'api/v1/recordingsx',
    'recordingsx',
    'web/player.js',
    'watch/cam1',
    'metrics',
  ]) {
    assert.equal(servedByFirstWorker(path, u(path)), false, path);
  }
});

interface Seen {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  body: string;
}

async function upstream(t: TestContext): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(201, { location: '/cam1/whep/abc', 'content-type': 'application/sdp', connection: 'keep-alive' });
      res.end('v=0 answer');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

/** A front server that forwards every request to `port` as from 10.1.2.3. */
async function front(t: TestContext, forwarder: Forwarder, port: number): Promise<number> {
  const server = createServer((req, res) => forwarder.forward(req, res, { host: '127.0.0.1', port }, '10.1.2.3'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

function send(
  port: number,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a forwarded request reaches worker 1 with its method, path, body, the client and the secret; the answer comes back', async (t) => {
  const up = await upstream(t);
  const forwarder = new Forwarder('s3cret', silentLogger);
  t.after(() => forwarder.close());
  const port = await front(t, forwarder, up.port);
  const answer = await send(
    port,
    '/cam1/whep?x=1',
    {
      'content-type': 'application/sdp',
      [FORWARD_HEADERS.secret]: 'forged',
      [FORWARD_HEADERS.client]: '6.6.6.6',
      'proxy-authorization': 'x',
    },
    'v=0 offer',
  );
  assert.equal(answer.status, 201);
  assert.equal(answer.body, 'v=0 answer');
  assert.equal(answer.headers.location, '/cam1/whep/abc');
  const [got] = up.seen;
  assert.ok(got !== undefined);
  assert.equal(got.method, 'POST');
  assert.equal(got.url, '/cam1/whep?x=1');
  assert.equal(got.body, 'v=0 offer');
  assert.equal(got.headers['content-type'], 'application/sdp');
  // The client's own secret and client headers are replaced, never passed on.
  assert.equal(got.headers[FORWARD_HEADERS.secret], 's3cret');
  assert.equal(got.headers[FORWARD_HEADERS.client], '10.1.2.3');
  assert.equal(got.headers['proxy-authorization'], undefined, 'hop-by-hop headers stay on their hop');
});

test('worker 1 unreachable: 502 with the reason', async (t) => {
  const up = await upstream(t);
  const closedPort = up.port;
  await new Promise((resolve) => up.server.close(resolve));
  const forwarder = new Forwarder('s3cret', silentLogger);
  t.after(() => forwarder.close());
  const port = await front(t, forwarder, closedPort);
  const answer = await send(port, '/cam1/index.m3u8', {}, '');
  assert.equal(answer.status, 502);
  assert.match(answer.body, /Worker 1, which serves this URL, cannot be reached \(connect ECONNREFUSED/);
});
