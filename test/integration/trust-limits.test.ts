// Trust (issue 11): limits under abuse. Slowloris clients (one header byte every few hundred ms) are
// closed by RequestHeaderTimeout on HTTP and RTSP, and the RTMP handshake timeout, while a normal
// client is served meanwhile; oversized RTSP requests get 413 and oversized HTTP heads 431.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { RawRtspClient, startRtsp } from '../helpers/rtsp-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

interface Slow {
  socket: Socket;
  closed: boolean;
  received: string;
  stop(): void;
}

/** Connects and then sends `text` one byte every `everyMs`, never finishing it. */
function slowClient(port: number, text: string, everyMs: number): Slow {
  const socket = connect(port, '127.0.0.1');
  const slow: Slow = {
    socket,
    closed: false,
    received: '',
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || socket.writableEnded) return;
    socket.write(text.charAt(i % text.length));
    i++;
  }, everyMs);
  socket.on('data', (d: Buffer) => (slow.received += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    slow.closed = true;
    clearInterval(timer);
  });
  return slow;
}

describe('trust: limits under abuse', () => {
  test('HTTP slowloris: connections dribbling a request head are closed after RequestHeaderTimeout; others are served', async (t) => {
    const server = await startTestServer(t, 'RequestHeaderTimeout 1\n');
    const slow = Array.from({ length: 20 }, () => slowClient(server.httpPort, 'GET /stat.html HTTP/1.1\r\nX-A: ', 200));
    t.after(() => slow.forEach((s) => s.stop()));
    await waitFor('the slow clients to connect', () => server.ctx.connections.size >= 20, 5000);
    // While they hold their sockets, a normal client is served.
    const health = await fetch(server.url('/api/v1/health'));
    assert.equal(health.status, 200);
    await waitFor('every slow client to be closed', () => slow.every((s) => s.closed), 15_000);
    assert.ok(
      slow.every((s) => s.received === '' || s.received.startsWith('HTTP/1.1 408')),
      slow[0]?.received,
    );
    assert.equal((await fetch(server.url('/api/v1/health'))).status, 200);
  });

  test('HTTP: a request head over 16 KiB gets 431', async (t) => {
    const server = await startTestServer(t);
    const res = await fetch(server.url('/api/v1/health'), { headers: { 'x-big': 'a'.repeat(20_000) } });
    assert.equal(res.status, 431);
  });

  test('RTSP slowloris is closed with 408 after RequestHeaderTimeout; an oversized request gets 413', async (t) => {
    const server = await startTestServer(t, 'RequestHeaderTimeout 1\n');
    const { port } = await startRtsp(t, server);
    const slow = Array.from({ length: 10 }, () => slowClient(port, 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-A: ', 200));
    t.after(() => slow.forEach((s) => s.stop()));
    await waitFor('every slow RTSP client to be closed', () => slow.every((s) => s.closed), 15_000);
    assert.ok(
      slow.every((s) => s.received.startsWith('RTSP/1.0 408')),
      slow[0]?.received,
    );
    const big = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1', () =>
        s.write(`OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Big: ${'a'.repeat(200_000)}\r\n\r\n`),
      );
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => resolve(text));
    });
    assert.match(big, /^RTSP\/1\.0 (413|400) /);
  });

  test('RTSP: MaxConnectionsPerAddress answers 503 on the connection past the cap', async (t) => {
    const server = await startTestServer(t, 'MaxConnectionsPerAddress 2\n');
    const { port } = await startRtsp(t, server);
    const clients: RawRtspClient[] = [];
    t.after(() => clients.forEach((c) => c.close()));
    const statuses: number[] = [];
    // One after the other, so that the third is the one past the cap.
    for (let i = 0; i < 3; i++) {
      const c = new RawRtspClient(port);
      clients.push(c);
      statuses.push((await c.request('OPTIONS', '*')).status);
    }
    assert.deepEqual(statuses, [200, 200, 503]);
  });

  test('RTMP: a client dribbling its handshake is closed at the handshake timeout', async (t) => {
    const server = await startTestServer(t);
    const rtmp = new RtmpServer(server.ctx, { handshakeTimeoutMs: 1000 });
    const port = await rtmp.listen(0, '127.0.0.1');
    t.after(() => rtmp.close());
    const slow = Array.from({ length: 10 }, () => slowClient(port, '\x03' + 'x'.repeat(1536), 100));
    t.after(() => slow.forEach((s) => s.stop()));
    await waitFor('every slow RTMP client to be closed', () => slow.every((s) => s.closed), 15_000);
    assert.equal((await fetch(server.url('/api/v1/health'))).status, 200);
  });

  test('static files cannot escape their folder: /web/ serves its fixed list only', async (t) => {
    const server = await startTestServer(t);
    const raw = (path: string): Promise<string> =>
      new Promise((resolve) => {
        const s = connect(server.httpPort, '127.0.0.1', () =>
          s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
        );
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString('latin1')));
        s.on('error', () => undefined);
        s.on('close', () => resolve(text));
      });
    assert.match(await raw('/web/player.js'), /^HTTP\/1\.1 200/);
    for (const path of [
      '/web/../package.json',
      '/web/%2e%2e/package.json',
      '/web/%2e%2e%2fpackage.json',
      '/web/..%2f..%2f..%2fetc%2fpasswd',
      '/web/vendor/..%2f..%2fpackage.json',
      '/web/vendor/%2e%2e/%2e%2e/src/server.ts',
      '/web//etc/passwd',
      '/web/player.js%00.txt',
    ]) {
      const answer = await raw(path);
      assert.doesNotMatch(answer, /"name": "feedcast"|root:|startServer/, path);
      assert.match(answer, /^HTTP\/1\.1 (400|404)/, `${path}: ${answer.slice(0, 40)}`);
    }
  });
});
