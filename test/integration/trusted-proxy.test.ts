// TrustedProxy (docs/config.md): behind a reverse proxy, ACLs, StatusACL, MaxConnectionsPerAddress, the
// connection list and the access log see the client X-Forwarded-For names; other peers' headers are ignored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, waitFor } from '../helpers/test-server.js';

interface Answer {
  status: number;
  body: string;
}

/** One request on its own connection, as a proxy would forward it; the body is read to its end. */
function get(url: string, forwardedFor?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = forwardedFor !== undefined ? { 'X-Forwarded-For': forwardedFor } : undefined;
    const req = request(url, { headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A long-lived request (the event stream) held open until `close()`; resolves once its head arrives. */
function hold(url: string, forwardedFor: string): Promise<{ status: number; close: () => void; body: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { 'X-Forwarded-For': forwardedFor }, agent: false }, (res: IncomingMessage) => {
      let body = '';
      const ended = new Promise<string>((done) => {
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => done(body));
        res.on('close', () => done(body));
      });
      resolve({ status: res.statusCode ?? 0, close: () => req.destroy(), body: () => ended });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET') reject(err);
    });
    req.end();
  });
}

test('behind a TrustedProxy, every check and record sees the forwarded client', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'feedcast-proxy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const accessLog = join(dir, 'access.log');
  const server = await startTestServer(
    t,
    [
      'TrustedProxy 127.0.0.1',
      'StatusACL allow 127.0.0.0/8',
      'StatusACL allow 198.51.100.0/24',
      'MaxConnectionsPerAddress 2',
      `CustomLog ${accessLog}`,
      '<Feed feed1.ffm>',
      'ACL allow 127.0.0.1',
      '</Feed>',
    ].join('\n'),
  );

  // StatusACL judges the client, not the proxy at 127.0.0.1.
  const refused = await get(server.url('/stat.html'), '203.0.113.9');
  assert.equal(refused.status, 403);
  assert.match(refused.body, /203\.0\.113\.9 may not read the status page/);
  // Hops added by trusted proxies are skipped; the client's own claims to the left are not believed.
  const chained = await get(server.url('/stat.html'), '198.51.100.1, 203.0.113.9, 127.0.0.1');
  assert.equal(chained.status, 403);
  assert.match(chained.body, /203\.0\.113\.9/);
  assert.equal((await get(server.url('/stat.html'), '198.51.100.7')).status, 200);
  assert.equal((await get(server.url('/stat.html'))).status, 200, 'no header: the proxy itself is the client');

  // A header a trusted proxy should never send is refused, not guessed at.
  const bad = await get(server.url('/stat.html'), 'unknown');
  assert.equal(bad.status, 400);
  assert.match(bad.body, /X-Forwarded-For hop 'unknown' is not an IP address/);

  // A feed's ACL judges the client too.
  const feedRead = await get(server.url('/feed1.ts'), '198.51.100.7');
  assert.equal(feedRead.status, 403);
  assert.match(feedRead.body, /198\.51\.100\.7/);

  // MaxConnectionsPerAddress 2 counts each client behind the proxy; the proxy's own five connections are not refused.
  const events = server.url('/api/v1/events');
  const held = [
    await hold(events, '198.51.100.7'),
    await hold(events, '198.51.100.7'),
    await hold(events, '198.51.100.8'),
    await hold(events, '198.51.100.8'),
  ];
  t.after(() => held.forEach((h) => h.close()));
  assert.deepEqual(
    held.map((h) => h.status),
    [200, 200, 200, 200],
  );
  const third = await get(events, '198.51.100.7');
  assert.equal(third.status, 503);
  assert.match(third.body, /Too many connections from 198\.51\.100\.7: the limit is MaxConnectionsPerAddress 2/);

  // The connection list shows the client and the proxy it came through.
  const list = JSON.parse((await get(server.url('/api/v1/connections'))).body) as {
    connections: { remoteAddress: string; proxyAddress: string | null; target: string }[];
  };
  const viaProxy = list.connections.filter((c) => c.target === 'api/v1/events');
  assert.deepEqual(viaProxy.map((c) => `${c.remoteAddress} via ${String(c.proxyAddress)}`).sort(), [
    '198.51.100.7 via 127.0.0.1',
    '198.51.100.7 via 127.0.0.1',
    '198.51.100.8 via 127.0.0.1',
    '198.51.100.8 via 127.0.0.1',
  ]);

  // The access log names the clients.
  await waitFor('the access log lines', async () => {
    const text = await readFile(accessLog, 'utf8').catch(() => '');
    return /^203\.0\.113\.9 .*"GET \/stat\.html HTTP\/1\.1" 403/m.test(text) && /^198\.51\.100\.7 .* 503 /m.test(text);
  });
});

test('without TrustedProxy, X-Forwarded-For is ignored', async (t) => {
  const server = await startTestServer(t, 'StatusACL allow 127.0.0.1\nMaxConnectionsPerAddress 2\n');
  assert.equal((await get(server.url('/stat.html'), '203.0.113.9')).status, 200);
  assert.equal((await get(server.url('/stat.html'), 'unknown')).status, 200);
  // The one peer is limited as a whole, whatever it claims.
  const events = server.url('/api/v1/events');
  const held = [await hold(events, '198.51.100.7'), await hold(events, '198.51.100.8')];
  t.after(() => held.forEach((h) => h.close()));
  assert.equal((await get(events, '198.51.100.9')).status, 503);
});
