// Trust (issue 11): one authorisation policy on every protocol. Read tokens and JWTs over HTTP-FLV,
// HLS (segment URIs carry the token), RTMP play and RTSP DESCRIBE; publish secrets over HTTP, RTMP
// and RTSP; DynamicACL files re-read when they change; the embedding hook and the AuthCallback
// (allow, deny, redirect, fail closed on timeout); secrets never shown by the API, status page or logs.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { signedQuery } from '../../src/access/auth.js';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { RtmpTestClient, statusCode, statusDescription } from '../helpers/rtmp-client.js';
import { RawRtspClient, startRtsp } from '../helpers/rtsp-tools.js';
import { recordingLogger, type LogLine } from '../helpers/recording-logger.js';
import { postBytes, startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const KEY = 'test-read-key';

function b64url(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

function hs256(claims: Record<string, unknown>, key: string): string {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
}

/** The status of a GET (the body is not read; the connection is dropped). */
function status(url: string, headers: Record<string, string> = {}): Promise<{ status: number; location?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const code = res.statusCode ?? 0;
      if (code === 200 && !/mpegurl/.test(String(res.headers['content-type']))) {
        res.destroy();
        resolve({ status: code, body: '' });
        return;
      }
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () =>
        resolve({ status: code, body, ...(res.headers.location !== undefined ? { location: res.headers.location } : {}) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function publishing(t: TestContext, server: TestServer, path: string): Promise<void> {
  const p = publish(server.url(path), { seconds: 60 });
  t.after(() => p.stop());
  const key =
    path
      .slice(1)
      .split('?')[0]
      ?.replace(/\.ffm$/, '') ?? '';
  await waitFor('the publisher', () => (server.ctx.feeds.get(key)?.tracks.length ?? 0) > 0, 20_000);
}

async function startRtmp(t: TestContext, server: TestServer): Promise<number> {
  const rtmp = new RtmpServer(server.ctx);
  const port = await rtmp.listen(0, '127.0.0.1');
  t.after(() => rtmp.close());
  return port;
}

describe('trust: authorisation on every protocol', { skip }, () => {
  test('RequireReadToken: HTTP-FLV, HLS (segments carry the token), RTMP play and RTSP DESCRIBE answer 401/403/OK alike', async (t) => {
    const server = await startTestServer(t, `ReadTokenKey ${KEY}\nJWTKey jwt-key\n<Feed feed1.ffm>\nRequireReadToken\n</Feed>\n`);
    await publishing(t, server, '/feed1.ffm');
    const q = signedQuery(KEY, 'feed1', 120);

    // HTTP-FLV
    assert.equal((await status(server.url('/feed1.flv'))).status, 401);
    assert.equal((await status(server.url('/feed1.flv?token=AAAA&expires=9999999999'))).status, 403);
    assert.equal((await status(server.url(`/feed1.flv?${signedQuery(KEY, 'feed2', 120)}`))).status, 403);
    assert.equal((await status(server.url(`/feed1.flv?${signedQuery(KEY, 'feed1', -10)}`))).status, 403);
    assert.equal((await status(server.url(`/feed1.flv?${q}`))).status, 200);
    const jwt = hs256({ feeds: ['feed1'], actions: ['read'], exp: Date.now() / 1000 + 60 }, 'jwt-key');
    assert.equal((await status(server.url('/feed1.ts'), { Authorization: `Bearer ${jwt}` })).status, 200);
    const publishOnly = hs256({ feeds: ['feed1'], actions: ['publish'] }, 'jwt-key');
    assert.equal((await status(server.url(`/feed1.ts?jwt=${publishOnly}`))).status, 403);

    // HLS: the playlist and every file URI in it carry the token; a bare segment request is refused.
    assert.equal((await status(server.url('/feed1/ts/index.m3u8'))).status, 401);
    const playlist = await status(server.url(`/feed1/ts/index.m3u8?${q}`));
    assert.equal(playlist.status, 200, playlist.body);
    const segment = playlist.body.split('\n').find((l) => l.endsWith(`?${q}`) && !l.startsWith('#'));
    assert.ok(segment !== undefined, `a segment URI with the token in:\n${playlist.body}`);
    const segmentRes = await fetch(server.url(`/feed1/ts/${segment}`));
    assert.equal(segmentRes.status, 200);
    assert.equal((await segmentRes.arrayBuffer()).byteLength % 188, 0);
    assert.equal((await status(server.url(`/feed1/ts/${segment.split('?')[0] ?? ''}`))).status, 401);

    // RTMP play: NetStream.Play.Failed with the reason, then Play.Start with the token in the name.
    const rtmpPort = await startRtmp(t, server);
    const denied = await RtmpTestClient.open('127.0.0.1', rtmpPort);
    t.after(() => denied.close());
    await denied.connect('live', `rtmp://127.0.0.1:${rtmpPort}/live`);
    const refusal = await denied.play('feed1');
    assert.equal(statusCode(refusal), 'NetStream.Play.Failed');
    assert.match(statusDescription(refusal), /needs a read token/);
    const allowed = await RtmpTestClient.open('127.0.0.1', rtmpPort);
    t.after(() => allowed.close());
    await allowed.connect('live', `rtmp://127.0.0.1:${rtmpPort}/live`);
    assert.equal(statusCode(await allowed.play(`feed1?${q}`)), 'NetStream.Play.Reset');

    // RTSP DESCRIBE: 401 with a challenge, 403 for a bad token, 200 with SDP for a good one.
    const { port } = await startRtsp(t, server);
    const rtsp = new RawRtspClient(port);
    t.after(() => rtsp.close());
    const base = `rtsp://127.0.0.1:${port}/feed1`;
    const r401 = await rtsp.request('DESCRIBE', base);
    assert.equal(r401.status, 401);
    assert.ok(r401.headers.has('www-authenticate'));
    assert.equal((await rtsp.request('DESCRIBE', `${base}?token=x&expires=9999999999`)).status, 403);
    const ok = await rtsp.request('DESCRIBE', `${base}?${q}`);
    assert.equal(ok.status, 200);
    assert.match(ok.body, /m=video/);
  });

  test('publish secrets on HTTP, RTMP and RTSP; a JWT with the publish action stands in; nothing shows the secret', async (t) => {
    const lines: LogLine[] = [];
    const logDir = mkdtempSync(join(tmpdir(), 'feedcast-accesslog-'));
    t.after(() => rmSync(logDir, { recursive: true, force: true }));
    const accessLog = join(logDir, 'access.log');
    const server = await startTestServer(
      t,
      `CustomLog ${accessLog}\nJWTKey jwt-key\n<Feed feed1.ffm>\nPublishSecret hush-hush-42\n</Feed>\n`,
    );
    Object.assign(server.ctx, { log: recordingLogger(lines) });
    const { readFile } = await import('node:fs/promises');
    const body = await readFile(new URL('../fixtures/h264-aac.ts', import.meta.url));
    const none = await postBytes(server.url('/feed1'), body);
    assert.equal(none.status, 401);
    assert.match(none.body, /needs its publish secret/);
    assert.equal((await postBytes(server.url('/feed1?secret=nope'), body)).status, 403);
    const jwt = hs256({ feeds: 'feed1', actions: 'publish' }, 'jwt-key');
    assert.equal((await postBytes(server.url(`/feed1?jwt=${jwt}`), body)).status, 204);
    assert.equal((await postBytes(server.url('/feed1?secret=hush-hush-42'), body)).status, 204);

    const rtmpPort = await startRtmp(t, server);
    const c = await RtmpTestClient.open('127.0.0.1', rtmpPort);
    t.after(() => c.close());
    await c.connect('live', `rtmp://127.0.0.1:${rtmpPort}/live`);
    const refused = await c.publish('feed1?secret=nope');
    assert.equal(statusCode(refused.status), 'NetStream.Publish.Unauthorized');
    assert.match(statusDescription(refused.status), /Wrong publish secret/);
    const c2 = await RtmpTestClient.open('127.0.0.1', rtmpPort);
    t.after(() => c2.close());
    await c2.connect('live', `rtmp://127.0.0.1:${rtmpPort}/live`);
    assert.equal(statusCode((await c2.publish('feed1?secret=hush-hush-42')).status), 'NetStream.Publish.Start');
    c2.close();

    const { port } = await startRtsp(t, server);
    const rtsp = new RawRtspClient(port);
    t.after(() => rtsp.close());
    const sdp =
      'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n';
    const ann = await rtsp.request('ANNOUNCE', `rtsp://127.0.0.1:${port}/feed1`, { 'Content-Type': 'application/sdp' }, sdp);
    assert.equal(ann.status, 401);
    assert.match(ann.headers.get('www-authenticate') ?? '', /Basic/);
    const basic = Buffer.from('user:hush-hush-42').toString('base64');
    const ok = await rtsp.request(
      'ANNOUNCE',
      `rtsp://127.0.0.1:${port}/feed1`,
      { 'Content-Type': 'application/sdp', Authorization: `Basic ${basic}` },
      sdp,
    );
    assert.equal(ok.status, 200);

    // Viewers never see the secret: API config, status page, index page, logs.
    for (const path of ['/api/v1/config', '/stat.html', '/', '/api/v1/feeds']) {
      const text = await (await fetch(server.url(path))).text();
      assert.ok(!text.includes('hush-hush-42'), `${path} shows the publish secret`);
    }
    assert.ok(!JSON.stringify(lines).includes('hush-hush-42'), 'a log line holds the publish secret');
    await waitFor('the access log', () => existsSync(accessLog) && readFileSync(accessLog, 'utf8').includes('secret=***'), 5000);
    assert.ok(!readFileSync(accessLog, 'utf8').includes('hush-hush-42'), 'the access log holds the publish secret');
    const refusals = lines.filter((l) => l.msg === 'publish refused');
    assert.ok(refusals.length >= 2 && refusals.every((l) => l.fields['from'] === '127.0.0.1'), JSON.stringify(refusals));
  });

  test('DynamicACL in a <Feed> applies to every protocol and is re-read when the file changes', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-acl-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'feed.acl');
    const server = await startTestServer(t, `<Feed feed1.ffm>\nDynamicACL ${file}\n</Feed>\n`);
    await publishing(t, server, '/feed1.ffm');
    // A missing file allows all (ffserver).
    assert.equal((await status(server.url('/feed1.flv'))).status, 200);
    writeFileSync(file, '# only 10.x may read\nACL allow 10.0.0.0/8\n');
    assert.equal((await status(server.url('/feed1.flv'))).status, 403);
    assert.equal((await status(server.url('/feed1/index.m3u8'))).status, 403);
    const { port } = await startRtsp(t, server);
    const rtsp = new RawRtspClient(port);
    t.after(() => rtsp.close());
    assert.equal((await rtsp.request('DESCRIBE', `rtsp://127.0.0.1:${port}/feed1`)).status, 403);
    writeFileSync(file, 'ACL allow 127.0.0.0/8\nACL allow ::1\nACL deny 0.0.0.0/0\n');
    assert.equal((await status(server.url('/feed1.flv'))).status, 200);
    assert.equal((await rtsp.request('DESCRIBE', `rtsp://127.0.0.1:${port}/feed1`)).status, 200);
    // A bad line closes the feed (fail closed) until it is fixed.
    writeFileSync(file, 'ACL allow not-an-address!\n');
    assert.equal((await status(server.url('/feed1.flv'))).status, 403);
    writeFileSync(file, 'ACL allow 127.0.0.1\n');
    assert.equal((await status(server.url('/feed1.flv'))).status, 200);
  });

  test('the embedding hook and the AuthCallback decide before media flows: allow, deny, redirect, fail closed', async (t) => {
    const asked: unknown[] = [];
    let answer: (body: Record<string, unknown>) => { status: number; json?: unknown; delayMs?: number } = () => ({ status: 204 });
    const auth = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        const body = JSON.parse(text) as Record<string, unknown>;
        asked.push(body);
        const a = answer(body);
        setTimeout(() => {
          if (a.json === undefined) res.writeHead(a.status).end();
          else res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.json));
        }, a.delayMs ?? 0);
      });
    });
    await new Promise<void>((r) => auth.listen(0, '127.0.0.1', r));
    t.after(() => auth.close());
    const authPort = (auth.address() as { port: number }).port;
    const server = await startTestServer(
      t,
      `AuthCallback http://127.0.0.1:${authPort}/auth\nAuthCallbackTimeout 0.5\n<Feed feed1.ffm>\n</Feed>\n`,
    );
    await publishing(t, server, '/feed1.ffm?secret=abc');
    const publishAsk = asked[0] as Record<string, unknown>;
    assert.equal(publishAsk['action'], 'publish');
    assert.equal(publishAsk['feed'], 'feed1');
    assert.deepEqual(publishAsk['credentials'], { secret: 'abc' });

    assert.equal((await status(server.url('/feed1.flv'))).status, 200);
    answer = () => ({ status: 200, json: { allow: false, reason: 'not your feed' } });
    const denied = await status(server.url('/feed1.flv'));
    assert.equal(denied.status, 403);
    assert.match(denied.body, /not your feed/);
    answer = () => ({ status: 200, json: { redirect: 'http://cdn.example/feed1.flv' } });
    const moved = await status(server.url('/feed1.flv'));
    assert.equal(moved.status, 302);
    assert.equal(moved.location, 'http://cdn.example/feed1.flv');
    answer = () => ({ status: 500 });
    assert.equal((await status(server.url('/feed1.flv'))).status, 503);
    answer = () => ({ status: 204, delayMs: 3000 });
    assert.equal((await status(server.url('/feed1.flv'))).status, 503, 'a callback slower than its timeout refuses');
    answer = () => ({ status: 204 });

    // The embedding program's hook runs before the callback, on every protocol.
    const policy = server.ctx.access.policy;
    policy.setHooks({
      onRead: (r) =>
        r.address === '127.0.0.1' && r.protocol === 'rtmp' ? { kind: 'deny', status: 403, reason: 'no RTMP today' } : undefined,
    });
    t.after(() => policy.setHooks({}));
    assert.equal((await status(server.url('/feed1.flv'))).status, 200);
    const rtmpPort = await startRtmp(t, server);
    const c = await RtmpTestClient.open('127.0.0.1', rtmpPort);
    t.after(() => c.close());
    await c.connect('live', `rtmp://127.0.0.1:${rtmpPort}/live`);
    const refusal = await c.play('feed1');
    assert.equal(statusCode(refusal), 'NetStream.Play.Failed');
    assert.match(statusDescription(refusal), /no RTMP today/);
  });

  test('MaxReaders and MaxConnectionsPerAddress hold across protocols', async (t) => {
    const server = await startTestServer(t, 'MaxConnectionsPerAddress 6\n<Feed feed1.ffm>\nMaxReaders 2\n</Feed>\n');
    await publishing(t, server, '/feed1.ffm');
    const readers: { destroy(): void }[] = [];
    t.after(() => readers.forEach((r) => r.destroy()));
    const open = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request(server.url('/feed1.flv'), (res) => {
          readers.push(res);
          if (res.statusCode !== 200) res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    assert.equal(await open(), 200);
    assert.equal(await open(), 200);
    const third = await open();
    assert.equal(third, 503);
    const rtmpPort = await startRtmp(t, server);
    const c = await RtmpTestClient.open('127.0.0.1', rtmpPort);
    t.after(() => c.close());
    await c.connect('live', `rtmp://127.0.0.1:${rtmpPort}/live`);
    const refusal = await c.play('feed1');
    assert.equal(statusCode(refusal), 'NetStream.Play.Failed');
    assert.match(statusDescription(refusal), /MaxReaders/);
    // One reader leaves: a slot frees.
    readers[0]?.destroy();
    await waitFor('a reader slot', async () => (await open()) === 200, 5000);

    // Per address: publisher + readers + the RTMP connection count; keep-alive sockets opened one by one
    // fill the rest of the 6, and the next one is answered 503 at once.
    const sockets: number[] = [];
    for (let i = 0; i < 8; i++) {
      sockets.push(
        await new Promise<number>((resolve) => {
          const s = connect(server.httpPort, '127.0.0.1', () => s.write('GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n'));
          readers.push(s);
          s.once('data', (d: Buffer) => resolve(Number(d.toString('latin1').split(' ')[1])));
          s.on('error', () => resolve(0));
        }),
      );
    }
    assert.ok(sockets.includes(200) && sockets.includes(503), `some of ${sockets.join(',')} refused`);
    assert.deepEqual(
      sockets.slice(sockets.indexOf(503)),
      sockets.slice(sockets.indexOf(503)).map(() => 503),
    );
  });
});
