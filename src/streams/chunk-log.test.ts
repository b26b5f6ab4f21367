// ChunkLog: the one log behind every shared output. Retention keeps the newest join point and
// whatever lies within ReaderMaxQueue bytes of the head, read from the shared settings at each
// trim (a reload applies to logs that exist).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../observability/logger.js';
import { ChunkLog, type OutputSettings } from './chunk-log.js';

class TestLog extends ChunkLog {
  constructor(settings: OutputSettings) {
    super('test.log', { settings }, silentLogger);
  }
  header(): Buffer {
    return Buffer.from('H');
  }
  push(bytes: number, joinable: boolean): void {
    this.append(Buffer.alloc(bytes), joinable, this.headSeq * 3000, true);
  }
}

test('sequence numbers run on, and chunks are found by them', () => {
  const log = new TestLog({ retainBytes: 1 << 20 });
  const seen: number[] = [];
  log.on('chunk', (c) => seen.push(c.seq));
  log.push(10, true);
  log.push(20, false);
  log.push(30, true);
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(log.headSeq, 3);
  assert.equal(log.joinSeq(), 2);
  assert.equal(log.at(1)?.startByte, 10);
  assert.equal(log.producedByteCount, 60);
});

test('retention: within retainBytes of the head, and never past the newest join point', () => {
  const settings = { retainBytes: 1000 };
  const log = new TestLog(settings);
  // One join point, then 200 chunks of 100 bytes: everything since the join point stays.
  log.push(100, true);
  for (let i = 0; i < 200; i++) log.push(100, false);
  assert.equal(log.firstSeq, 0, 'the newest join point is kept however far back it is');
  // A new join point: what lies before it and further than 1000 bytes from the head goes.
  log.push(100, true);
  for (let i = 0; i < 100; i++) log.push(100, false);
  assert.ok(log.firstSeq > 0 && log.firstSeq <= 201, `trimmed up to the join point (first ${log.firstSeq})`);
  assert.ok(log.retainedChunks >= 101, 'everything from the join point is kept');
});

test('a changed retainBytes applies at the next trim (reload)', () => {
  const settings = { retainBytes: 1 << 30 };
  const log = new TestLog(settings);
  for (let i = 0; i < 300; i++) log.push(100, true);
  assert.equal(log.firstSeq, 0, 'all kept under a large bound');
  settings.retainBytes = 500;
  log.push(100, true);
  assert.ok(log.retainedChunks <= 6, `kept ${log.retainedChunks} chunks after the bound shrank`);
});
