// FeedFileWriter + recovery + cursor on real files: append and read back byte for byte,
// wrap-around within FileMaxSize, restart after an unclean stop, seeking by wall time, Truncate,
// ReadOnlyFile, foreign files left untouched, and a failing disk that is never fatal.

import assert from 'node:assert/strict';
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MalformedInputError, UnsupportedError } from '../errors.js';
import type { Frame } from '../media/frame.js';
import { silentLogger } from '../observability/logger.js';
import { frameKey, syntheticFeed, tempDir } from '../../test/helpers/feedfile-fixtures.js';
import { FeedFileCursor, FileBlockSource } from './cursor.js';
import { RecordType } from './format.js';
import { openFeedFile } from './recovery.js';
import { FeedFileWriter } from './writer.js';

async function readAll(cursor: FeedFileCursor): Promise<Frame[]> {
  const frames: Frame[] = [];
  for (let r = await cursor.next(); r !== undefined; r = await cursor.next()) {
    if (r.type === RecordType.frame) frames.push({ ...r.frame, data: Buffer.from(r.frame.data) });
  }
  return frames;
}

async function readFile(path: string): Promise<{ frames: Frame[]; cursor: FeedFileCursor; close: () => Promise<void> }> {
  const opened = await openFeedFile(path, { mode: 'read' });
  const range = opened.newest !== undefined ? { oldestSeq: opened.oldestSeq, newestSeq: opened.newest.seq } : undefined;
  const cursor = new FeedFileCursor(new FileBlockSource(opened.fh, opened.geometry, opened.header.fileId, range));
  const frames = await readAll(cursor);
  return { frames, cursor, close: () => opened.fh.close() };
}

const options = (path: string, maxSizeBytes = 8 * 1024 * 1024) => ({ path, maxSizeBytes, log: silentLogger });

test('every frame written is read back byte for byte, with the feed clock', async (t) => {
  const path = join(tempDir(t), 'feed1.ffm');
  const src = syntheticFeed();
  const writer = await FeedFileWriter.open(src.feed, options(path));
  src.run(10);
  await writer.flush();
  const status = writer.status;
  assert.equal(status.oldestWallMs, src.wall[0]);
  assert.equal(status.newestWallMs, src.wall.at(-1));
  await writer.close();
  const { frames, close } = await readFile(path);
  await close();
  assert.equal(frames.length, src.emitted.length);
  frames.forEach((f, i) => assert.deepEqual(f, src.emitted[i], `frame ${i}`));
  assert.equal(status.framesWritten, src.emitted.length);
  assert.equal(status.framesDropped, 0);
  assert.ok(status.bytesWritten > 0 && status.writeErrors === 0);
});

test('wrap-around: the file never exceeds FileMaxSize and holds the newest frames', async (t) => {
  const path = join(tempDir(t), 'small.ffm');
  const src = syntheticFeed();
  const writer = await FeedFileWriter.open(src.feed, options(path, 256 * 1024));
  for (let i = 0; i < 20; i++) {
    src.run(1);
    await writer.flush();
    assert.ok(statSync(path).size <= 256 * 1024, `size ${statSync(path).size}`);
  }
  assert.ok(writer.status.wraps >= 1, `wraps ${writer.status.wraps}`);
  const range = await writer.cursor().timeRange();
  assert.ok(range !== undefined && range.newestWallMs - range.oldestWallMs < 10_000, 'only the newest seconds remain');
  await writer.close();
  const { frames, cursor, close } = await readFile(path);
  await close();
  assert.equal(cursor.stats.badBlocks, 0);
  assert.ok(frames.length > 50);
  // What is read is a contiguous run ending with the last frame written, starting at a keyframe.
  const start = src.emitted.findIndex((f) => frameKey(f) === frameKey(frames[0]!));
  assert.ok(start > 0);
  assert.ok(frames[0]!.keyframe && frames[0]!.trackId === 0);
  assert.deepEqual(frames.map(frameKey), src.emitted.slice(start).map(frameKey));
});

test('restart after an unclean stop: the newest block is found, the clock continues after it', async (t) => {
  const path = join(tempDir(t), 'crash.ffm');
  const a = syntheticFeed();
  const first = await FeedFileWriter.open(a.feed, options(path));
  a.run(4);
  await first.flush();
  const flushed = a.emitted.length;
  a.run(0.2);
  // No close(): as after kill -9, the header checkpoint may be behind the data. The tail is written first: a
  // writer of this process still writing while the second one recovers the same file would race it (seen on a
  // loaded machine), which a killed process cannot do. (A tail lost to kill -9: test/integration/feedfile.test.ts.)
  await first.flush();
  const b = syntheticFeed(a.nowMs() + 5000);
  const second = await FeedFileWriter.open(b.feed, options(path));
  const report = second.status.recovery;
  assert.equal(report.created, false);
  assert.ok(report.blocksScanned >= 1 && report.blocksScanned < 64, `scanned ${report.blocksScanned}`);
  b.run(3);
  await second.close();
  const { frames, cursor, close } = await readFile(path);
  await close();
  assert.equal(cursor.stats.badBlocks, 0);
  const before = frames.slice(0, flushed);
  assert.deepEqual(before.map(frameKey), a.emitted.slice(0, flushed).map(frameKey), 'everything flushed survived');
  const after = frames.slice(frames.length - b.emitted.length);
  assert.equal(after.length, b.emitted.length);
  const lastOld = Math.max(...before.map((f) => f.dts90k));
  assert.ok(after[0]!.dts90k > lastOld, 'the file clock continues after the old data');
  assert.deepEqual(
    after.map((f) => f.dts90k - after[0]!.dts90k),
    b.emitted.map((f) => f.dts90k - b.emitted[0]!.dts90k),
  );
  await first.close().catch(() => undefined);
});

test('seek: the join point at or before a wall time, by binary search; outside the range is reported', async (t) => {
  const path = join(tempDir(t), 'seek.ffm');
  const src = syntheticFeed(1_700_000_000_000, 50); // a keyframe every 2 s
  const writer = await FeedFileWriter.open(src.feed, options(path, 32 * 1024 * 1024));
  src.run(60);
  await writer.close();
  const opened = await openFeedFile(path, { mode: 'read' });
  t.after(() => opened.fh.close());
  const source = new FileBlockSource(opened.fh, opened.geometry, opened.header.fileId, {
    oldestSeq: opened.oldestSeq,
    newestSeq: opened.newest!.seq,
  });
  const base = 1_700_000_000_000;
  for (const at of [0, 1000, 1999, 2000, 2001, 33_333, 59_000]) {
    const cursor = new FeedFileCursor(source);
    const found = await cursor.seek(base + at);
    assert.equal(found.kind, 'ok', `at ${at}`);
    if (found.kind !== 'ok') continue;
    assert.equal(found.wallMs, base + Math.floor(at / 2000) * 2000, `key wall for ${at}`);
    const r1 = await cursor.next();
    const r2 = await cursor.next();
    assert.ok(r1?.type === RecordType.tracks && r1.join, 'a join point starts with the track list');
    assert.ok(r2?.type === RecordType.frame && r2.frame.keyframe && r2.frame.trackId === 0, 'then the keyframe');
    if (r2?.type === RecordType.frame) assert.equal(r2.frame.dts90k, found.dts90k);
    assert.ok(cursor.stats.blocksRead < 200, `read ${cursor.stats.blocksRead} blocks`);
  }
  const before = await new FeedFileCursor(source).seek(base - 1);
  assert.equal(before.kind, 'before');
  if (before.kind === 'before') assert.equal(before.range.oldestWallMs, base);
});

test('Truncate drops the content; ReadOnlyFile reads without writing', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 't.ffm');
  const a = syntheticFeed();
  const w1 = await FeedFileWriter.open(a.feed, options(path));
  a.run(3);
  await w1.close();
  const bytes = readFileSync(path);
  const ro = await FeedFileWriter.open(undefined, { ...options(path), readOnly: true });
  const range = await ro.cursor().timeRange();
  assert.ok(range !== undefined);
  await ro.close();
  assert.ok(readFileSync(path).equals(bytes), 'ReadOnlyFile leaves every byte as it was');
  const b = syntheticFeed();
  const w2 = await FeedFileWriter.open(b.feed, { ...options(path), truncate: true });
  assert.equal(w2.status.recovery.truncated, true);
  assert.equal(await w2.cursor().timeRange(), undefined, 'nothing left after Truncate');
  b.run(2);
  await w2.close();
  const { frames, close } = await readFile(path);
  await close();
  assert.deepEqual(frames.map(frameKey), b.emitted.map(frameKey));
});

test('a foreign file, an ffserver FFM file or another version is refused and left untouched', async (t) => {
  const dir = tempDir(t);
  const cases: [string, Buffer, RegExp, new (...a: never[]) => Error][] = [
    ['ffm', Buffer.concat([Buffer.from('FFM2'), Buffer.alloc(4092)]), /ffserver FFM/, MalformedInputError],
    ['text', Buffer.from('hello, this is my thesis\n'), /not a Feedcast feed file/, MalformedInputError],
  ];
  const good = join(dir, 'good.ffm');
  const w = await FeedFileWriter.open(undefined, options(good));
  await w.close();
  const v2 = readFileSync(good);
  v2.writeUInt16BE(2, 8);
  v2.writeUInt16BE(2, 4096 + 8);
  cases.push(['v2', v2, /version 2/, UnsupportedError]);
  for (const [name, content, message, type] of cases) {
    const path = join(dir, `${name}.ffm`);
    writeFileSync(path, content);
    const src = syntheticFeed();
    await assert.rejects(
      FeedFileWriter.open(src.feed, { ...options(path), truncate: true }),
      (e: Error) => e instanceof type && message.test(e.message),
    );
    assert.ok(readFileSync(path).equals(content), `${name} untouched`);
  }
});

test('a truncated file (cut mid-block) reopens; the cut block is not served', async (t) => {
  const path = join(tempDir(t), 'cut.ffm');
  const src = syntheticFeed();
  const w = await FeedFileWriter.open(src.feed, options(path));
  src.run(5);
  await w.close();
  truncateSync(path, statSync(path).size - 3000); // into the newest block's payload
  const { frames, cursor, close } = await readFile(path);
  await close();
  assert.ok(frames.length > 0 && frames.length < src.emitted.length);
  assert.deepEqual(frames.map(frameKey), src.emitted.slice(0, frames.length).map(frameKey));
  assert.equal(cursor.stats.badBlocks, 0, 'the cut block is beyond the newest valid one');
});

test('a failing disk is counted, never fatal; the queue stays bounded and writing resumes at a keyframe', async (t) => {
  const path = join(tempDir(t), 'fail.ffm');
  const src = syntheticFeed();
  const writer = await FeedFileWriter.open(src.feed, { ...options(path), maxQueueBytes: 64 * 1024 });
  src.run(2);
  await writer.flush();
  const fh = (writer as unknown as { opened: { fh: { writev: (...a: unknown[]) => Promise<unknown> } } }).opened.fh;
  const real = fh.writev.bind(fh);
  fh.writev = () => Promise.reject(new Error('EIO: simulated disk failure'));
  src.run(5);
  await writer.flush();
  const failing = writer.status;
  assert.ok(failing.writeErrors > 0, 'errors counted');
  assert.ok(failing.framesDropped > 0, 'frames dropped once the queue is full');
  assert.ok(failing.queueBytes <= 64 * 1024 + 16 * 4096, `queue ${failing.queueBytes}`);
  assert.match(failing.lastError ?? '', /EIO/);
  fh.writev = real;
  await writer.flush(); // the queue drains once the disk is back
  for (let i = 0; i < 3; i++) {
    src.run(1); // about 45 KB: within the 64 KiB queue
    await writer.flush();
  }
  await writer.close();
  const { frames, cursor, close } = await readFile(path);
  await close();
  assert.equal(cursor.stats.badBlocks, 0);
  const keys = new Set(src.emitted.map(frameKey));
  assert.ok(
    frames.every((f) => keys.has(frameKey(f))),
    'only real frames',
  );
  assert.ok(frames.length < src.emitted.length, 'the gap is missing');
  assert.deepEqual(frames.slice(-10).map(frameKey), src.emitted.slice(-10).map(frameKey), 'writing resumed');
});

test('FileSync: written data is forced to the disk (fdatasync) after writes; off never syncs', async (t) => {
  const dir = tempDir(t);
  const src = syntheticFeed();
  const synced = await FeedFileWriter.open(src.feed, { ...options(join(dir, 'synced.ffm')), syncIntervalMs: 0 });
  const unsynced = await FeedFileWriter.open(src.feed, options(join(dir, 'unsynced.ffm')));
  src.run(5);
  await synced.flush();
  await unsynced.flush();
  assert.ok(synced.status.syncs >= 1, `syncs after a flush: ${synced.status.syncs}`);
  assert.ok(synced.status.lastSyncWallMs !== undefined);
  assert.equal(unsynced.status.syncs, 0);
  // Nothing new written: no further sync.
  const before = synced.status.syncs;
  await synced.flush();
  assert.equal(synced.status.syncs, before);
  await synced.close();
  await unsynced.close();
});
