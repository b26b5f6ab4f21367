// The native fan-out writer (native/fanout.c) on real loopback TCP sockets, and readers of a
// shared output writing through it: every byte arrives once and in order whether the kernel takes
// a batch whole, in part, or not at all; Node's queue is never overtaken; TLS sockets stay in
// Node; byte counts include what went past Node. Skipped, with the reason, when the module is not
// built (`node scripts/build-native.mjs` says why); the reader tests then check Node's path.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import { FakeChunkSource } from '../../test/helpers/chunk-source.js';
import { closeAll, connectedPairs, pattern, receive, turns } from '../../test/helpers/socket-pairs.js';
import { directTarget, nativeFanout, nativeFanoutStatus, socketBytesWritten } from './native-fanout.js';
import { OutputReader } from './output-reader.js';

const skip = nativeFanout === undefined ? `native fan-out: ${nativeFanoutStatus}` : false;

test('writeAll writes one buffer to each descriptor and says how much each took', { skip }, async () => {
  const pairs = await connectedPairs(3);
  try {
    const data = pattern(0, 10_000);
    const fds = new Int32Array(pairs.map((p) => directTarget(p.sending)!.fd));
    const results = new Int32Array(3);
    nativeFanout!.writeAll(fds, 3, data, results);
    assert.deepEqual([...results], [10_000, 10_000, 10_000]);
    for (const p of pairs) assert.deepEqual(await receive(p).until(10_000), data);
    // A descriptor that is not open gives -EBADF, not a crash.
    const bad = new Int32Array([1 << 20]);
    nativeFanout!.writeAll(bad, 1, data, results);
    assert.equal(results[0], -9);
  } finally {
    closeAll(pairs);
  }
});

test('writeAll rejects bad arguments with a TypeError that says which', { skip }, () => {
  const fds = new Int32Array(2);
  const results = new Int32Array(2);
  const call = (...args: unknown[]): void => (nativeFanout!.writeAll as (...a: unknown[]) => void)(...args);
  assert.throws(() => call([3], 1, Buffer.alloc(1), results), { name: 'TypeError', message: /fds must be an Int32Array/ });
  assert.throws(() => call(fds, 3, Buffer.alloc(1), results), { name: 'TypeError', message: /count is larger/ });
  assert.throws(() => call(fds, -1, Buffer.alloc(1), results), { name: 'TypeError', message: /count must be/ });
  assert.throws(() => call(fds, 1, 'text', results), { name: 'TypeError', message: /data must be a Uint8Array/ });
  assert.throws(() => call(fds, 1, Buffer.alloc(1)), { name: 'TypeError', message: /four arguments/ });
});

test('TLS sockets and unconnected sockets are never written past Node', { skip }, () => {
  const tlsSocket = new tls.TLSSocket(new net.Socket());
  assert.equal(directTarget(tlsSocket), undefined);
  tlsSocket.destroy();
  assert.equal(directTarget(new net.Socket()), undefined);
  assert.equal(directTarget({ write: () => true }), undefined);
});

test('readers on real sockets get every byte in order, through the native loop, also when one stops reading for a while', async () => {
  const feed = new FakeChunkSource('HEADER');
  feed.push(pattern(0, 1000), true, true);
  const pairs = await connectedPairs(5);
  try {
    const readers = pairs.map(
      (p) => new OutputReader(feed, p.sending, { maxQueueBytes: 64 << 20, maxLagMs: 60_000, coalesceMs: 0 }),
    );
    for (const r of readers) r.start();
    // Four read as they go; the last does not read until the end, so its socket fills and the
    // batches the kernel refuses wait in Node (and later ones behind them).
    const live = pairs.slice(0, 4).map(receive);
    let total = 0;
    const chunks: Buffer[] = [Buffer.from('HEADER'), pattern(0, 1000)];
    for (let i = 1; i <= 120; i++) {
      const data = pattern(i * 7, 50_000);
      chunks.push(data);
      feed.push(data, false, true);
      await turns(3);
    }
    const expected = Buffer.concat(chunks);
    total = expected.length;
    for (const l of live) assert.ok((await l.until(total)).equals(expected), 'a live reader got every byte in order');
    const stalled = pairs[4]!;
    assert.ok(stalled.sending.writableLength > 0, 'the stalled reader has bytes queued in Node');
    assert.ok(
      (await receive(stalled).until(total)).equals(expected),
      'the stalled reader got every byte in order after it read again',
    );
    for (const p of pairs.slice(0, 4)) {
      assert.equal(socketBytesWritten(p.sending), total, 'the byte count includes the bytes written past Node');
      if (nativeFanout !== undefined) {
        assert.ok(
          p.sending.bytesWritten < total / 2,
          `most bytes went through the native loop (Node wrote ${p.sending.bytesWritten} of ${total})`,
        );
      }
    }
    assert.equal(socketBytesWritten(stalled.sending), total);
    assert.equal(feed.bytesServed, total * 5, "bytesServed counts every reader's bytes");
    for (const r of readers) r.close('done');
  } finally {
    closeAll(pairs);
  }
});

test('a reader whose viewer has gone is closed by its socket, and the others go on', async () => {
  const feed = new FakeChunkSource('HEADER');
  feed.push(pattern(0, 100), true, true);
  const pairs = await connectedPairs(2);
  try {
    const readers = pairs.map(
      (p) => new OutputReader(feed, p.sending, { maxQueueBytes: 64 << 20, maxLagMs: 60_000, coalesceMs: 0 }),
    );
    for (const r of readers) r.start();
    const keeper = receive(pairs[0]!);
    const gone = pairs[1]!;
    let error: NodeJS.ErrnoException | undefined;
    gone.sending.on('error', (err) => (error = err));
    const closed = new Promise((resolve) => gone.sending.once('close', resolve));
    gone.receiving.resetAndDestroy();
    const chunks: Buffer[] = [Buffer.from('HEADER'), pattern(0, 100)];
    for (let i = 1; i <= 40; i++) {
      const data = pattern(i, 20_000);
      chunks.push(data);
      feed.push(data, false, true);
      await turns(3);
    }
    await closed;
    assert.ok(
      error?.code === 'EPIPE' || error?.code === 'ECONNRESET',
      `the socket reported the broken connection (${error?.code})`,
    );
    const expected = Buffer.concat(chunks);
    assert.ok((await keeper.until(expected.length)).equals(expected));
    for (const r of readers) r.close('done');
  } finally {
    closeAll(pairs);
  }
});

test('bytes another writer left queued in Node (RTMP control messages, say) are not overtaken', { skip }, async () => {
  const feed = new FakeChunkSource('HEADER');
  feed.push(pattern(0, 100), true, true);
  const [pair] = await connectedPairs(1);
  try {
    const reader = new OutputReader(feed, pair!.sending, { maxQueueBytes: 64 << 20, maxLagMs: 60_000, coalesceMs: 0 });
    reader.start();
    const got = receive(pair!);
    await got.until(106);
    feed.push(pattern(1, 5000), false, true);
    await turns(3);
    assert.equal(pair!.sending.bytesWritten, 106, 'header and first chunk through Node, the batch past it');
    // Node holds bytes of its own for the socket (the moment before libuv writes its queue once
    // the socket is writable again): the next batch must queue behind them, through Node.
    Object.defineProperty(pair!.sending, 'writableLength', { configurable: true, get: () => 1 });
    feed.push(pattern(2, 3000), false, true);
    await turns(3);
    delete (pair!.sending as { writableLength?: number }).writableLength;
    assert.equal(pair!.sending.bytesWritten, 3106, 'the batch went through Node');
    const all = await got.until(8106);
    assert.ok(all.equals(Buffer.concat([Buffer.from('HEADER'), pattern(0, 100), pattern(1, 5000), pattern(2, 3000)])));
    reader.close('done');
  } finally {
    closeAll([pair!]);
  }
});
