// Limits and access control over HTTP: ACL refusals, MaxClients 503, unknown paths, slow readers.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { postBytes, startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('close', () => resolve(text));
  });
}

describe('limits and ACLs', () => {
  test('the feed ACL refuses a publisher and a reader from a denied address with 403', async (t) => {
    const server = await startTestServer(
      t,
      '<Feed feed1.ffm>\nACL deny 127.0.0.1\n</Feed>\n<Stream s.flv>\nFeed feed1.ffm\nACL allow 10.0.0.1\n</Stream>\n',
    );
    const post = await postBytes(server.url('/feed1.ffm'), Buffer.alloc(188, 0x47));
    assert.equal(post.status, 403);
    assert.match(post.body, /127\.0\.0\.1 may not publish/);
    const read = await fetch(server.url('/feed1.flv'));
    assert.equal(read.status, 403);
    // `ACL allow 10.0.0.1` alone means: only 10.0.0.1 (ffserver's last-rule inversion).
    const stream = await fetch(server.url('/s.flv'));
    assert.equal(stream.status, 403);
  });

  test('a feed with PublishSecret refuses publishers without the right ?secret=', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\nPublishSecret hush\n</Feed>\n');
    const { readFile } = await import('node:fs/promises');
    const body = await readFile(new URL('../fixtures/h264-aac.ts', import.meta.url));
    const none = await postBytes(server.url('/feed1.ffm'), body);
    assert.equal(none.status, 401, 'a missing credential is 401; a wrong one 403');
    assert.match(none.body, /needs its publish secret/);
    const wrong = await postBytes(server.url('/feed1.ffm?secret=guess'), body);
    assert.equal(wrong.status, 403);
    assert.match(wrong.body, /Wrong publish secret/);
    const right = await postBytes(server.url('/feed1.ffm?secret=hush'), body);
    assert.equal(right.status, 204);
    assert.ok((server.ctx.feeds.get('feed1')?.stats.framesIn ?? 0) > 40);
  });

  test('MaxClients is enforced with 503 and a clear body', async (t) => {
    const server = await startTestServer(t, 'MaxClients 2\nMaxHTTPConnections 10\n');
    const a = await openSocket(server.httpPort);
    const b = await openSocket(server.httpPort);
    t.after(() => {
      a.destroy();
      b.destroy();
    });
    await waitFor('two connections', () => server.ctx.connections.size === 2);
    const c = await openSocket(server.httpPort);
    const answer = await readAll(c);
    assert.match(answer, /^HTTP\/1\.1 503/);
    assert.match(answer, /limit is MaxClients 2/);
  });

  test('unknown paths get 404, wrong methods 405, publish points explain themselves', async (t) => {
    const server = await startTestServer(
      t,
      '<Feed feed1.ffm>\n</Feed>\n<Redirect index.html>\nURL http://example.invalid/\n</Redirect>\n',
    );
    const missing = await fetch(server.url('/nothing.flv'));
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /Not found: \/nothing\.flv/);
    const get = await fetch(server.url('/feed1'));
    assert.equal(get.status, 405);
    assert.match(await get.text(), /feed1\.flv/);
    // GET of the .ffm URL is old ffmpeg's first connection (issue 18 class 7): the FFM2 header ffserver answered.
    const handshake = await fetch(server.url('/feed1.ffm'));
    assert.equal(handshake.status, 200);
    assert.equal(
      Buffer.from(await handshake.arrayBuffer())
        .subarray(0, 4)
        .toString('latin1'),
      'FFM2',
    );
    const del = await fetch(server.url('/feed1.flv'), { method: 'DELETE' });
    assert.equal(del.status, 405);
    const redirect = await fetch(server.url('/index.html'), { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get('location'), 'http://example.invalid/');
    const undeclared = await postBytes(server.url('/other.ffm'), Buffer.alloc(188, 0x47));
    assert.equal(undeclared.status, 404);
    assert.match(undeclared.body, /DynamicFeeds/);
  });

  test('ffm streams (ffserver to ffserver) answer 501 with an alternative', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n<Stream relay.ffm>\nFeed feed1.ffm\n</Stream>\n');
    const res = await fetch(server.url('/relay.ffm'));
    assert.equal(res.status, 501);
    assert.match(await res.text(), /relay with Format mpegts or flv/);
  });

  test('a reader that never reads is closed as too slow; a normal reader is unaffected', { skip }, async (t) => {
    const server = await startTestServer(t, 'ReaderMaxQueue 256K\nReaderMaxLag 2\n<Feed feed1.ffm>\n</Feed>\n');
    const pub = publish(server.url('/feed1.ffm'), { seconds: 40, bitrateK: 2000, size: '640x360' });
    t.after(() => pub.stop());
    await waitFor('publisher', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) > 0);

    const slow = await openSocket(server.httpPort);
    t.after(() => slow.destroy());
    slow.pause(); // never reads: the kernel buffers fill, then the server's writes stall
    slow.write('GET /feed1.ts HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor('the slow reader to be served', () => server.ctx.connections.list().some((c) => c.role === 'reader'));
    const slowConn = server.ctx.connections.list().find((c) => c.role === 'reader');

    const probing = probePackets(server.url('/feed1.ts'), 6, 40_000);
    await waitFor('the slow reader to be closed', () => !server.ctx.connections.list().includes(slowConn!), 60_000);
    const fast = await probing;
    const video = fast.packets.filter((p) => p.codec_type === 'video');
    assert.ok(video.length >= 120, `the normal reader got ${video.length} video packets in 6 s of stream`);
  });
});
