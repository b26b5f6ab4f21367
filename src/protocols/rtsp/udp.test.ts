import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSocket } from 'node:dgram';
import { nativeUdpSend, nativeUdpSendStatus } from './native-udp-send.js';
import { rtpPacketBounds, sendRtpPackets, UDP_PACE_BURST_BYTES, UdpPacer } from './udp.js';

// Issue 24, item 8: the GOP cache went to UDP players as one burst; the pacer spreads it.
test('UdpPacer: one burst at once, then the rest at the rate, the waiting sender woken', async () => {
  let now = 0;
  const pacer = new UdpPacer(
    () => 1_000_000,
    () => now,
  ); // 1 MB/s: 1 ms per KB
  assert.equal(pacer.spend(UDP_PACE_BURST_BYTES), true, 'a burst goes at once');
  assert.equal(pacer.spend(10_000), false, 'past it the sender waits');
  assert.equal(pacer.waiting, true);
  const woken = new Promise<void>((resolve) => pacer.whenReady(resolve));
  now += 10; // 10 ms later the bucket holds the 10 KB again
  await woken;
  assert.equal(pacer.waiting, false);
  now += 1000;
  assert.equal(pacer.spend(UDP_PACE_BURST_BYTES), true, 'a second of silence refills at most one burst');
  assert.equal(pacer.spend(1), false);
  pacer.stop();
});

/** An interleaved chunk (`$`, channel, u16 length, packet) of packets of the given sizes, each filled with its index. */
function interleaved(sizes: number[]): Buffer {
  const parts = sizes.map((size, i) =>
    Buffer.concat([Buffer.from([0x24, 0, size >> 8, size & 0xff]), Buffer.alloc(size, i + 1)]),
  );
  return Buffer.concat(parts);
}

test('rtpPacketBounds: where each packet of an interleaved chunk lies, found once per chunk', () => {
  const chunk = interleaved([20, 1400, 12]);
  const b = rtpPacketBounds(chunk);
  assert.deepEqual([...b.bounds], [4, 24, 28, 1428, 1432, 1444]);
  assert.equal(b.count, 3);
  assert.equal(b.bytes, 1432);
  assert.equal(b.payloadOctets, 8 + 1388 + 0);
  assert.equal(rtpPacketBounds(chunk), b, 'the same object for the same chunk (every reader of the feed)');
  // A truncated last packet is left out, never read past the chunk.
  const cut = rtpPacketBounds(chunk.subarray(0, chunk.length - 5));
  assert.equal(cut.count, 2);
  assert.deepEqual([...cut.bounds.subarray(0, 4)], [4, 24, 28, 1428]);
  assert.equal(rtpPacketBounds(Buffer.from('not interleaved')).count, 0);
});

// Issue 26: a frame's packets leave in one sendmmsg() (in calls of up to 64): the player must still
// get each packet as its own datagram, whole, in order.
test('sendRtpPackets: every packet arrives as its own datagram, in order, through the native module or dgram', async (t) => {
  const receiver = createSocket('udp4');
  const sender = createSocket('udp4');
  t.after(() => {
    receiver.close();
    sender.close();
  });
  await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', resolve));
  // SPS, PPS, then a keyframe in FU-A fragments (a run of equal sizes ending shorter), then 70 more (past the 64 of one sendmmsg() call).
  const sizes = [30, 10, ...Array<number>(10).fill(1200), 700, ...Array<number>(70).fill(1000), 1000, 40];
  const chunk = interleaved(sizes);
  const got: Buffer[] = [];
  const all = new Promise<void>((resolve) =>
    receiver.on('message', (msg) => {
      got.push(msg);
      if (got.length === sizes.length) resolve();
    }),
  );
  const stats = { nativeSends: 0 };
  const sent = sendRtpPackets(sender, chunk, rtpPacketBounds(chunk), receiver.address().port, '127.0.0.1', stats);
  assert.equal(sent, sizes.length);
  assert.equal(stats.nativeSends, nativeUdpSend === undefined ? 0 : 1, `path: ${nativeUdpSendStatus}`);
  await all;
  assert.deepEqual(
    got.map((m) => m.length),
    sizes,
  );
  got.forEach((m, i) =>
    assert.ok(
      m.every((byte) => byte === i + 1),
      `datagram ${i} is packet ${i}`,
    ),
  );
});
