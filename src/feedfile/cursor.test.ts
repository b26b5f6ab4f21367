// Reading damaged files and joining live: random corruption of a real file never crashes the
// reader (typed errors or skipped blocks only, and every frame served is a frame written), and a
// time-shift source hands over from the file to the live feed with no gap and no duplicate.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { FeedcastError } from '../errors.js';
import type { Frame } from '../media/frame.js';
import { silentLogger } from '../observability/logger.js';
import { frameKey, syntheticFeed, tempDir } from '../../test/helpers/feedfile-fixtures.js';
import { FeedFileCursor, FileBlockSource } from './cursor.js';
import { RecordType } from './format.js';
import { openFeedFile } from './recovery.js';
import { TimeShiftSource } from './time-shift.js';
import { FeedFileWriter } from './writer.js';

test('property: random corruption never crashes the reader; what it serves was written', async (t) => {
  const dir = tempDir(t);
  const original = join(dir, 'orig.ffm');
  const src = syntheticFeed();
  const writer = await FeedFileWriter.open(src.feed, { path: original, maxSizeBytes: 192 * 1024, log: silentLogger });
  for (let i = 0; i < 8; i++) {
    src.run(1);
    await writer.flush();
  }
  await writer.close();
  const bytes = readFileSync(original);
  const written = new Map(src.emitted.map((f) => [frameKey(f), f]));
  const path = join(dir, 'bad.ffm');
  let skipped = 0;

  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.nat(255), fc.nat(64)), { minLength: 1, maxLength: 24 }),
      fc.option(fc.nat(bytes.length), { nil: undefined }),
      fc.nat(20_000),
      async (edits, cut, seekMs) => {
        const damaged = Buffer.from(bytes);
        for (const [at, value, run] of edits) damaged.fill(value, at, Math.min(damaged.length, at + run + 1));
        writeFileSync(path, cut !== undefined ? damaged.subarray(0, cut) : damaged);
        let opened;
        try {
          opened = await openFeedFile(path, { mode: 'read' });
        } catch (err) {
          if (err instanceof FeedcastError) return; // a damaged header is a clear refusal
          throw err;
        }
        try {
          const range = opened.newest !== undefined ? { oldestSeq: opened.oldestSeq, newestSeq: opened.newest.seq } : undefined;
          const source = new FileBlockSource(opened.fh, opened.geometry, opened.header.fileId, range);
          for (const seek of [false, true]) {
            const cursor = new FeedFileCursor(source);
            if (seek) await cursor.seek(src.wall[0]! + seekMs);
            for (let r = await cursor.next(); r !== undefined; r = await cursor.next()) {
              if (r.type !== RecordType.frame) continue;
              const w = written.get(frameKey(r.frame));
              assert.ok(w !== undefined, `frame ${frameKey(r.frame)} was never written`);
              assert.ok(w.data.equals(r.frame.data) && w.keyframe === r.frame.keyframe, 'payload intact');
            }
            skipped += cursor.stats.badBlocks;
          }
        } finally {
          await opened.fh.close();
        }
      },
    ),
    { numRuns: 60 },
  );
  assert.ok(skipped > 0, 'some runs met damaged blocks');
});

test('time-shift: file then live, with no gap and no duplicate, whatever the flush timing', async (t) => {
  const path = join(tempDir(t), 'shift.ffm');
  const src = syntheticFeed();
  const writer = await FeedFileWriter.open(src.feed, {
    path,
    maxSizeBytes: 16 * 1024 * 1024,
    log: silentLogger,
    flushIntervalMs: 1,
  });
  t.after(() => writer.close());
  for (let i = 0; i < 5; i++) {
    src.run(1);
    await writer.flush();
  }
  const target = src.nowMs() - 3000;
  const opened = await TimeShiftSource.open(writer, src.feed, target, { maxQueueBytes: 64 * 1024 * 1024, maxLagMs: 60_000 });
  assert.equal(opened.kind, 'ok');
  if (opened.kind !== 'ok') return;
  assert.ok(opened.startWallMs <= target && opened.startWallMs > target - 1000, 'the keyframe at or before the time');
  const source = opened.source;
  const out: Frame[] = [];
  let start = -1;
  let step = 0;
  const nextOrTimeout = (): Promise<Awaited<ReturnType<typeof source.next>> | 'timeout'> =>
    Promise.race([source.next(), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000).unref())]);
  while (start < 0 || !source.isLive || out.length < src.emitted.length - start) {
    const item = await nextOrTimeout();
    assert.ok(item !== 'timeout', `stalled after ${out.length} frames (live ${String(source.isLive)}): a gap`);
    assert.ok(item !== undefined);
    if (item.kind === 'frame') {
      out.push(item.frame);
      if (start < 0) start = src.emitted.findIndex((f) => frameKey(f) === frameKey(item.frame));
    }
    step++;
    // The feed goes on meanwhile (slower than the reader); the disk is flushed at irregular moments.
    if (step % 17 === 0 && src.emitted.length < 2000) src.run(0.12);
    if (step % 23 === 0) await writer.flush();
    if (step > 20_000) assert.fail('never caught up with live');
  }
  assert.ok(start >= 0 && src.emitted[start]!.keyframe, 'starts at a keyframe of the feed');
  assert.equal(src.wall[start], opened.startWallMs);
  const expected = src.emitted.slice(start, start + out.length);
  assert.deepEqual(out.map(frameKey), expected.map(frameKey), 'the feed clock, no gap, no duplicate');
  assert.ok(source.stats.fileFrames > 0 && source.stats.liveFrames > 0);
  source.close();
});
