// Issue 25 item 9: exposure. With the default StatusACL, /api/v1/connections, /feeds, /config, /metrics
// (and /stat.html) gave every client's and publisher's address to anyone; a refused second publisher
// (HTTP 409, RTMP NetStream.Publish.BadName) was told the current publisher's address; ControlUser took
// unlimited password guesses; DELETE /api/v1/connections/N answered 404 before asking for credentials.
// Every request here is sent as raw bytes on a socket, or from a LAN address in a network namespace.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { LAN, skipWithoutNetns, startNetnsServer } from '../helpers/netns-server.js';
import { RtmpTestClient, statusCode, statusDescription } from '../helpers/rtmp-client.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

/** Sends `request` as bytes and returns the whole answer (the server closes, or the status line and body arrive). */
function raw(port: number, request: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body });
    });
  });
}

const basic = (user: string, password: string): string => Buffer.from(`${user}:${password}`).toString('base64');

async function publisher(t: TestContext, server: TestServer): Promise<void> {
  const p = publish(server.url('/feed1.ffm'), { codecs: 'h264-only', size: '160x120', seconds: 60 });
  t.after(() => p.stop());
  await waitFor('the first publisher', () => server.ctx.feeds.get('feed1')?.publisher !== undefined, 20_000);
}

describe('trust: exposure (issue 25 item 9)', () => {
  test(
    'the default StatusACL: a LAN address gets 403 for the API, metrics and status page; loopback and /api/v1/health are served',
    { skip: skipWithoutFfmpeg() || skipWithoutNetns() },
    async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'feedcast-exposure-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const config = join(dir, 'server.conf');
      writeFileSync(config, 'HTTPPort 8090\nHTTPBindAddress 0.0.0.0\nRTSPPort 0\n<Feed feed1.ffm>\n</Feed>\n');
      const server = await startNetnsServer(t, ['-f', config]);
      // Plain HTTP GETs from inside the namespace, once from the LAN address and once from loopback.
      const paths = ['/api/v1/connections', '/api/v1/feeds', '/api/v1/config', '/metrics', '/stat.html', '/api/v1/health'];
      const script = `const paths = ${JSON.stringify(paths)};
        const out = {};
        for (const host of ['${LAN}', '127.0.0.1']) for (const p of paths) {
          const r = await fetch('http://' + host + ':8090' + p);
          out[host + p] = { status: r.status, body: (await r.text()).slice(0, 300) };
        }
        console.log(JSON.stringify(out));`;
      const answer = await server.inNs(process.execPath, ['--input-type=module', '-e', script]);
      const got = JSON.parse(answer.stdout) as Record<string, { status: number; body: string }>;
      for (const p of paths.slice(0, 5)) {
        assert.equal(got[`${LAN}${p}`]?.status, 403, `${p} from ${LAN}: ${got[`${LAN}${p}`]?.body}`);
        assert.equal(got[`127.0.0.1${p}`]?.status, 200, `${p} from loopback`);
      }
      assert.equal(got[`${LAN}/api/v1/health`]?.status, 200, 'health stays open for load balancers');
    },
  );

  test(
    'a refused second publisher (HTTP 409, RTMP BadName) is not told the current publisher address',
    { skip: skipWithoutFfmpeg() },
    async (t) => {
      const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
      await publisher(t, server);
      const busy = await raw(
        server.httpPort,
        'POST /feed1.ffm HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp2t\r\nContent-Length: 188\r\nConnection: close\r\n\r\n' +
          '\x47'.padEnd(188, '\xff'),
      );
      assert.equal(busy.status, 409, busy.headers);
      assert.match(busy.body, /already published/);
      assert.doesNotMatch(busy.body, /127\.0\.0\.1/);

      const rtmp = new RtmpServer(server.ctx);
      const port = await rtmp.listen(0, '127.0.0.1');
      t.after(() => rtmp.close());
      const client = await RtmpTestClient.open('127.0.0.1', port);
      t.after(() => client.close());
      await client.connect('live', `rtmp://127.0.0.1:${port}/live`);
      const { status: refused } = await client.publish('feed1');
      assert.equal(statusCode(refused), 'NetStream.Publish.BadName');
      assert.match(statusDescription(refused), /already published/);
      assert.doesNotMatch(statusDescription(refused), /127\.0\.0\.1/);
    },
  );

  test('ControlUser: credentials before anything else, and failed logins throttled per address (429)', async (t) => {
    const server = await startTestServer(t, 'ControlUser admin right-password\n');
    const port = server.httpPort;
    // DELETE of a connection that does not exist: 401 first, not 404 (which would tell ids apart).
    const noCreds = await raw(port, 'DELETE /api/v1/connections/99999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(noCreds.status, 401, noCreds.body);
    assert.match(noCreds.headers, /WWW-Authenticate: Basic/i);
    const reloadNoCreds = await raw(
      port,
      'POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
    );
    assert.equal(reloadNoCreds.status, 401);

    // Guesses: a few are answered 401, then the address is shut out with 429 and Retry-After, and
    // during that time even the right password is not checked.
    const guess = (password: string) =>
      raw(
        port,
        `DELETE /api/v1/connections/99999 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${basic('admin', password)}\r\nConnection: close\r\n\r\n`,
      );
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await guess(`wrong-${i}`)).status);
    assert.deepEqual(statuses.slice(0, 4), [401, 401, 401, 401]);
    assert.ok(
      statuses.slice(4).every((s) => s === 429),
      statuses.join(','),
    );
    const blocked = await guess('right-password');
    assert.equal(blocked.status, 429);
    assert.match(blocked.headers, /Retry-After: \d+/i);
    // Once the wait is over, the right password works (and the 404 is only told to it).
    await waitFor(
      'the address to be let in again',
      async () => (await guess('right-password')).status === 404,
      Number(/Retry-After: (\d+)/i.exec(blocked.headers)?.[1] ?? '10') * 1000 + 15_000,
    );
  });
});
