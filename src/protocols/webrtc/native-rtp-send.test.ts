// The WHEP send module (native/rtp-send.c): sendDatagrams over real loopback UDP sockets (each
// datagram arrives whole, in order, IPv4 and IPv6), and arguments that do not fit refused with a
// TypeError rather than read or written out of bounds. Skipped, with the reason, when not built.

import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { waitFor } from '../../../test/helpers/test-server.js';
import { nativeRtpSend, nativeRtpSendStatus } from './native-rtp-send.js';
import { udpHandle } from '../udp-handle.js';

const skip = nativeRtpSend === undefined ? `native module: ${nativeRtpSendStatus}` : false;

async function bound(t: TestContext, type: 'udp4' | 'udp6', address: string): Promise<Socket> {
  const socket = createSocket(type);
  socket.bind(0, address);
  await once(socket, 'listening');
  t.after(() => socket.close());
  return socket;
}

function fdOf(socket: Socket): number {
  const fd = udpHandle(socket)?.fd;
  assert.ok(typeof fd === 'number' && fd >= 0, 'the socket has a descriptor');
  return fd;
}

for (const [type, address] of [
  ['udp4', '127.0.0.1'],
  ['udp6', '::1'],
] as const) {
  test(`sendDatagrams: each datagram of one buffer arrives whole and in order (${type})`, { skip }, async (t) => {
    const native = nativeRtpSend;
    assert.ok(native !== undefined);
    const receiver = await bound(t, type, address);
    const sender = await bound(t, type, address);
    const got: Buffer[] = [];
    receiver.on('message', (m) => got.push(m));
    // 100 datagrams of 1 to 1200 bytes: more than one sendmmsg() batch of 64.
    const sizes = Array.from({ length: 100 }, (_, i) => 1 + ((i * 37) % 1200));
    const data = Buffer.alloc(sizes.reduce((a, n) => a + n, 0));
    const ends = new Int32Array(sizes.length);
    let at = 0;
    sizes.forEach((n, i) => {
      data.fill(i, at, at + n);
      at += n;
      ends[i] = at;
    });
    const sent = native.sendDatagrams(fdOf(sender), data, ends, sizes.length, address, receiver.address().port);
    assert.equal(sent, sizes.length);
    await waitFor('100 datagrams', () => got.length === sizes.length, 10_000);
    got.forEach((m, i) => assert.deepEqual(m, Buffer.alloc(sizes[i] as number, i), `datagram ${i}`));
  });
}

test('sendDatagrams and protectDatagrams refuse arguments that do not fit', { skip }, () => {
  const native = nativeRtpSend;
  assert.ok(native !== undefined);
  const data = Buffer.alloc(100);
  assert.throws(() => native.sendDatagrams(0, data, Int32Array.of(50, 101), 2, '127.0.0.1', 9), /ends must rise within data/);
  assert.throws(() => native.sendDatagrams(0, data, Int32Array.of(50, 40), 2, '127.0.0.1', 9), /ends must rise within data/);
  assert.throws(() => native.sendDatagrams(0, data, Int32Array.of(50), 2, '127.0.0.1', 9), /count must be/);
  assert.throws(() => native.sendDatagrams(0, data, Int32Array.of(50), 1, 'localhost', 9), /not an IP address/);
  assert.throws(() => native.sendDatagrams(0, data, Int32Array.of(50), 1, '127.0.0.1', 0), /port/);
  const key = Buffer.alloc(16);
  const salt = Buffer.alloc(12);
  // 12 + 80 + 16 = 108 > 100: the tag would not fit.
  assert.throws(
    () => native.protectDatagrams(7, key, salt, Buffer.alloc(0), data, Int32Array.of(0, 12, 80, 0), 1),
    /outside data/,
  );
  assert.throws(
    () => native.protectDatagrams(7, key, salt, Buffer.alloc(0), data, Int32Array.of(0, 8, 10, 0), 1),
    /outside data/,
  );
  assert.throws(
    () => native.protectDatagrams(7, key, Buffer.alloc(14), Buffer.alloc(0), data, Int32Array.of(0, 12, 10, 0), 1),
    /salt/,
  );
  assert.throws(
    () => native.protectDatagrams(1, key, Buffer.alloc(14), Buffer.alloc(0), data, Int32Array.of(0, 12, 10, 0), 1),
    /authKey/,
  );
  assert.throws(() => native.protectDatagrams(2, key, salt, Buffer.alloc(0), data, Int32Array.of(0, 12, 10, 0), 1), /profile/);
  assert.throws(() => native.protectDatagrams(7, key, salt, Buffer.alloc(0), data, Int32Array.of(0, 12, 10, 0), 2), /count/);
  native.protectDatagrams(7, key, salt, Buffer.alloc(0), data, Int32Array.of(0, 12, 72, 0), 1);
});
