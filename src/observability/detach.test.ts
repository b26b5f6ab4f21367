// detach() logs a rejection instead of leaving it unhandled; the process guard logs and keeps the
// server running, or exits 70 when FEEDCAST_EXIT_ON_UNHANDLED=1 (how tests fail on it).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { detach } from './detach.js';
import { createLogger } from './logger.js';

const CHILD = new URL('../../test/helpers/rejection-child.ts', import.meta.url).pathname;

function runChild(env: Record<string, string>): { status: number | null; stdout: string } {
  const { FEEDCAST_EXIT_ON_UNHANDLED: _, ...inherited } = process.env;
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...inherited, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout };
}

test('detach logs a rejection with what was running', async () => {
  const lines: string[] = [];
  const log = createLogger({ format: 'json', write: (l) => lines.push(l) });
  detach(Promise.reject(new Error('disk gone')), log, 'time-shift open', { feed: 'feed1' });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  assert.equal(record['level'], 'error');
  assert.equal(record['msg'], 'time-shift open failed: disk gone');
  assert.equal(record['feed'], 'feed1');
});

test('the process guard logs an unhandled rejection and keeps the process running', () => {
  const r = runChild({});
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /unhandled promise rejection \(a bug\): the server keeps serving/);
  assert.match(r.stdout, /Invalid time value/);
  assert.match(r.stdout, /still serving/);
});

test('with FEEDCAST_EXIT_ON_UNHANDLED=1 the guard exits 70, so a test fails on it', () => {
  const r = runChild({ FEEDCAST_EXIT_ON_UNHANDLED: '1' });
  assert.equal(r.status, 70, r.stdout);
  assert.doesNotMatch(r.stdout, /still serving/);
});
