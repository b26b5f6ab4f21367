import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UDP_PACE_BURST_BYTES, UdpPacer } from './udp.js';

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
