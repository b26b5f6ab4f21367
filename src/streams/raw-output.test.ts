// RawOutput: pieces from a framer become shared chunks; readers join at join points; Preroll
// finds the join point N seconds back (ffserver ref §3.4) within what is retained.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../observability/logger.js';
import type { RawFramer, RawPiece } from '../formats/raw/framers.js';
import { mpjpegPart, RawOutput } from './raw-output.js';

/** A framer whose every pushed buffer is one piece; the first byte says whether it is joinable. */
class OnePiecePerPush implements RawFramer {
  push(chunk: Buffer): RawPiece[] {
    return [{ data: chunk, joinable: chunk[0] === 1 }];
  }
  header(): Buffer | undefined {
    return Buffer.from('HDR');
  }
}

function output(clock: { ms: number }, retainBytes = 1 << 20): RawOutput {
  return new RawOutput(
    't',
    'audio/mpeg',
    new OnePiecePerPush(),
    { settings: { retainBytes }, now: () => clock.ms },
    silentLogger,
  );
}

test('Preroll joins at the newest join point at least N seconds old', () => {
  const clock = { ms: 1_000_000 };
  const out = output(clock);
  // One piece per second for 10 s; a join point every 2 s (t = 0, 2, 4, 6, 8).
  for (let s = 0; s < 10; s++) {
    clock.ms = 1_000_000 + s * 1000;
    out.write(Buffer.from([s % 2 === 0 ? 1 : 0, s]));
  }
  clock.ms = 1_000_000 + 9500;
  assert.equal(out.joinSeq(), 8, 'without Preroll: the newest join point');
  assert.equal(out.prerollJoinSeq(0), 8);
  assert.equal(out.prerollJoinSeq(3), 6, '9.5 s - 3 s = 6.5 s: the join point at 6 s');
  assert.equal(out.prerollJoinSeq(4), 4);
  assert.equal(out.prerollJoinSeq(60), 0, 'further back than kept: the oldest join point');
  assert.equal(out.at(6)?.data[1], 6);
});

test('Preroll is bounded by the retained bytes', () => {
  const clock = { ms: 0 };
  const out = output(clock, 300);
  for (let s = 0; s < 20; s++) {
    clock.ms = s * 1000;
    out.write(Buffer.alloc(100, s % 2 === 0 ? 1 : 0));
  }
  const seq = out.prerollJoinSeq(60);
  assert.ok(seq !== undefined && seq >= out.firstSeq, `${String(seq)} is still kept (first ${out.firstSeq})`);
  assert.ok(out.at(seq)?.joinable);
});

test('mpjpeg parts carry the boundary, type and length', () => {
  const part = mpjpegPart(Buffer.from([0xff, 0xd8, 0xff, 0xd9])).toString('latin1');
  assert.equal(part, '--ffserver\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\n\r\n\xff\xd8\xff\xd9\r\n');
});

test('end() ends readers once and drops the chunks', () => {
  const out = output({ ms: 0 });
  let ends = 0;
  out.on('end', () => ends++);
  out.write(Buffer.from([1]));
  assert.equal(out.ready, true);
  out.end('done');
  out.end('again');
  assert.equal(ends, 1);
  assert.equal(out.at(0), undefined);
  out.write(Buffer.from([1]));
  assert.equal(out.headSeq, 1, 'writes after the end are ignored');
});
