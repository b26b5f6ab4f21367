// Issue 19: the logger dropped an error's stack and cause, so a log line said what failed but not
// where or why. Errors are now logged as data with both, one line a record.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MalformedInputError, ProcessError } from '../errors.js';
import { createLogger } from './logger.js';

function capture(format: 'json' | 'pretty'): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger({ format, level: 'debug', write: (l) => lines.push(l) }) };
}

test('an error is logged with its stack, its own fields and its cause chain, on one line', () => {
  const { lines, log } = capture('json');
  const disk = Object.assign(new Error('EIO: i/o error, open /x'), { code: 'EIO', errno: -5, syscall: 'open', path: '/x' });
  const err = new Error('time-shift cannot open the feed file', { cause: disk });
  log.error('read failed', { err });
  assert.equal(lines.length, 1);
  const line = lines[0] ?? '';
  assert.ok(!line.includes('\n'));
  const record = JSON.parse(line) as { err: Record<string, unknown> & { cause: Record<string, unknown> } };
  assert.equal(record.err['message'], 'time-shift cannot open the feed file');
  assert.match(String(record.err['stack']), /logger\.test\.ts/);
  assert.equal(record.err.cause['code'], 'EIO');
  assert.equal(record.err.cause['syscall'], 'open');
  assert.equal(record.err.cause['path'], '/x');
  assert.match(String(record.err.cause['stack']), /^Error: EIO/);
});

test('typed errors keep their fields; cycles and aggregates do not break the line', () => {
  const { lines, log } = capture('json');
  const proc = new ProcessError('ffmpeg', 1, null, ['Unknown encoder', 'Conversion failed!']);
  const bad = new MalformedInputError('flv', 1234, 'tag too big');
  const loop = new Error('a');
  (loop as { cause?: unknown }).cause = loop;
  log.warn('several', { proc, bad, loop, all: new AggregateError([bad], 'both') });
  const record = JSON.parse(lines[0] ?? '') as Record<string, Record<string, unknown>>;
  assert.equal(record['proc']?.['exitCode'], 1);
  assert.deepEqual(record['proc']?.['stderrTail'], ['Unknown encoder', 'Conversion failed!']);
  assert.equal(record['proc']?.['code'], 'FC_ERR_PROCESS');
  assert.equal(record['bad']?.['offset'], 1234);
  assert.equal(record['loop']?.['cause'], '[circular]');
  assert.equal((record['all']?.['errors'] as Record<string, unknown>[])[0]?.['offset'], 1234);
});

test('the terminal format keeps the stack and cause too, on one line', () => {
  const { lines, log } = capture('pretty');
  log.error('failed', { err: new Error('outer', { cause: new Error('inner') }) });
  assert.equal(lines.length, 1);
  assert.ok(!(lines[0] ?? '').includes('\n'));
  assert.match(lines[0] ?? '', /"stack":"Error: outer\\n/);
  assert.match(lines[0] ?? '', /"cause":\{"name":"Error","message":"inner"/);
});
