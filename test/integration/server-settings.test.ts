// Global settings that change what the server wires up: WebRTC on/off, WriteCoalesce.

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freePort, startTestServer } from '../helpers/test-server.js';

const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';

test('WebRTC off: no WHEP endpoint, and the player page does not offer WebRTC', async (t) => {
  const on = await startTestServer(t, '', { demoFeeds: ['demo'] });
  const off = await startTestServer(t, 'WebRTC off', { demoFeeds: ['demo'] });
  const post = (base: typeof on): Promise<Response> =>
    fetch(base.url('/demo/whep'), { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: OFFER });
  // With WebRTC on, the (bad) offer reaches the WHEP endpoint, which rejects the SDP; off, nothing answers there.
  assert.equal((await post(on)).status, 400);
  assert.equal((await post(off)).status, 404);
  const page = await (await fetch(off.url('/player/demo'))).text();
  assert.doesNotMatch(page, /whep/i);
});

test('WriteCoalesce sets the outputs’ write coalescing; off writes every chunk at once', async (t) => {
  const twenty = await startTestServer(t, 'WriteCoalesce 20');
  assert.equal(twenty.ctx.outputs.writeCoalesceMs, 20);
  const off = await startTestServer(t, 'WriteCoalesce off');
  assert.equal(off.ctx.outputs.writeCoalesceMs, undefined);
});

/** Whether something already holds `port` on 127.0.0.1 (binding it fails with EADDRINUSE). */
async function udpPortTaken(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '127.0.0.1', resolve);
    });
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return true;
    throw err;
  } finally {
    socket.close();
  }
}

async function tcpPortTaken(port: number): Promise<boolean> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return true;
    throw err;
  } finally {
    server.close();
  }
}

test('WebRTCUDPPort and WebRTCTCP open the single-port mux when the server starts', async (t) => {
  const port = await freePort();
  assert.equal(await udpPortTaken(port), false);
  const server = await startTestServer(t, `WebRTCUDPPort ${port}\nWebRTCTCP on`);
  assert.equal(await udpPortTaken(port), true, 'the UDP mux listens on WebRTCUDPPort');
  assert.equal(await tcpPortTaken(port), true, 'ICE-TCP listens on the same number');
  await server.close();
  assert.equal(await udpPortTaken(port), false, 'closed with the server');
});
