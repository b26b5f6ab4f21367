// Egress threads on real loopback TCP sockets: batches sent by a worker thread arrive whole and in
// order (also for a reader that stops reading, whose rest the main thread queues), a reader that
// ends has its thread's descriptor closed (the viewer sees the connection end), and a thread that
// dies costs only the readers whose batch it held. Skipped when the native module is not built.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeChunkSource } from '../../test/helpers/chunk-source.js';
import { closeAll, connectedPairs, pattern, receive, turns, type Pair } from '../../test/helpers/socket-pairs.js';
import { silentLogger } from '../observability/logger.js';
import { EgressThreads } from './egress-threads.js';
import { nativeFanout, nativeFanoutStatus, socketBytesWritten } from './native-fanout.js';
import { OutputReader } from './output-reader.js';

const skip = nativeFanout === undefined ? `native fan-out: ${nativeFanoutStatus}` : false;
const base = { maxQueueBytes: 64 << 20, maxLagMs: 60_000, coalesceMs: 0 };

async function withThreads(count: number, body: (threads: EgressThreads) => Promise<void>): Promise<void> {
  const threads = EgressThreads.start(count, silentLogger);
  try {
    await body(threads);
  } finally {
    await threads.stop();
  }
}

/** Waits (bounded) until `condition` holds. */
async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('readers get every byte in order from two threads, also one that stops reading for a while', { skip }, async () => {
  await withThreads(2, async (threads) => {
    const feed = new FakeChunkSource('HEADER');
    feed.push(pattern(0, 1000), true, true);
    const pairs = await connectedPairs(6);
    try {
      const readers = pairs.map((p) => new OutputReader(feed, p.sending, { ...base, egress: threads }));
      for (const r of readers) r.start();
      assert.equal(threads.readers, 6, 'every reader has a descriptor on a thread');
      const live = pairs.slice(0, 5).map(receive);
      const chunks: Buffer[] = [Buffer.from('HEADER'), pattern(0, 1000)];
      for (let i = 1; i <= 120; i++) {
        const data = pattern(i * 7, 50_000);
        chunks.push(data);
        feed.push(data, false, true);
        await turns(2);
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5)); // let the threads answer now and then
      }
      const expected = Buffer.concat(chunks);
      for (const l of live) assert.ok((await l.until(expected.length)).equals(expected), 'a live reader got every byte in order');
      const stalled = pairs[5]!;
      assert.ok((await receive(stalled).until(expected.length)).equals(expected), 'the stalled reader got every byte in order');
      assert.ok(threads.batches > 0);
      for (const p of pairs.slice(0, 5)) {
        assert.equal(socketBytesWritten(p.sending), expected.length);
        // How much a thread sent depends on how soon it answers: chunks that come while a batch
        // is in flight follow through Node. On a quiet machine nearly all go through the threads.
        assert.ok(
          p.sending.bytesWritten < expected.length,
          `some batches went through the threads (Node wrote ${p.sending.bytesWritten} of ${expected.length})`,
        );
      }
      for (const r of readers) r.close('done');
      assert.equal(threads.readers, 0);
    } finally {
      closeAll(pairs);
    }
  });
});

test('a reader that ends has its thread descriptor closed: the viewer sees the connection end', { skip }, async () => {
  await withThreads(1, async (threads) => {
    const feed = new FakeChunkSource('HEADER');
    feed.push(pattern(0, 100), true, true);
    const pairs = await connectedPairs(1);
    const pair = pairs[0]!;
    try {
      const reader = new OutputReader(feed, pair.sending, { ...base, egress: threads });
      reader.start();
      const got = receive(pair);
      feed.push(pattern(1, 20_000), false, true);
      await got.until(20_106);
      const ended = new Promise<void>((resolve) => pair.receiving.once('end', resolve));
      // As the HTTP route does when a reader ends: the reader closes, then the socket.
      reader.close('done');
      pair.sending.destroy();
      await Promise.race([
        ended,
        new Promise((_, reject) => setTimeout(() => reject(new Error('no FIN: the thread kept its descriptor open')), 5000)),
      ]);
      await until('the thread to close its descriptor', () => threads.readers === 0);
    } finally {
      closeAll(pairs);
    }
  });
});

test(
  'a thread that dies closes only the readers whose batch it held; the others go on from the main thread',
  { skip },
  async () => {
    await withThreads(1, async (threads) => {
      const feed = new FakeChunkSource('HEADER');
      feed.push(pattern(0, 100), true, true);
      const pairs: Pair[] = await connectedPairs(3);
      try {
        const readers = pairs.map((p) => new OutputReader(feed, p.sending, { ...base, egress: threads }));
        for (const r of readers) r.start();
        const gots = pairs.map(receive);
        feed.push(pattern(1, 10_000), false, true);
        for (const g of gots) await g.until(10_106);
        // Kill the thread between batches (no batch in flight): nobody loses anything.
        await until('the thread to answer its last batch', () => threads.inFlight === 0);
        const worker = (threads as unknown as { workers: { terminate(): Promise<number> }[] }).workers[0]!;
        await worker.terminate();
        await until('the failure to be noticed', () => !threads.usable);
        const more = pattern(2, 30_000);
        feed.push(more, false, true);
        const expected = Buffer.concat([Buffer.from('HEADER'), pattern(0, 100), pattern(1, 10_000), more]);
        for (const g of gots)
          assert.ok((await g.until(expected.length)).equals(expected), 'the reader went on from the main thread');
        for (const r of readers) r.close('done');
      } finally {
        closeAll(pairs);
      }
    });
  },
);

test(
  'readers not given the egress threads (their socket has other writers, as RTMP) stay on the main thread',
  { skip },
  async () => {
    await withThreads(1, async (threads) => {
      const feed = new FakeChunkSource('HEADER');
      feed.push(pattern(0, 100), true, true);
      const pairs = await connectedPairs(1);
      try {
        const reader = new OutputReader(feed, pairs[0]!.sending, base);
        reader.start();
        assert.equal(threads.readers, 0);
        feed.push(pattern(1, 1000), false, true);
        await receive(pairs[0]!).until(1106);
        assert.equal(threads.batches, 0);
        reader.close('done');
      } finally {
        closeAll(pairs);
      }
    });
  },
);
