import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig, type ServerConfig } from '../config/config.js';
import type { HookSpec } from '../config/hooks.js';
import { silentLogger } from '../observability/logger.js';
import { HookRunner, hookEnvironment } from './hooks.js';
import type { LifecycleEvent } from './lifecycle-events.js';

const event = (id: number, type: LifecycleEvent['type'] = 'publish'): LifecycleEvent => ({
  id,
  type,
  time: '2026-12-07T05:00:00.000Z',
  feed: 'cam',
  name: 'cam',
  protocol: 'rtmp',
  remoteAddress: '192.0.2.7',
});

function config(hooks: HookSpec[], concurrency: number): ServerConfig {
  return defaultConfig({ hooks: { global: hooks, timeoutMs: 60_000, concurrency, retries: 0 } });
}

const sleeper: HookSpec = { event: 'publish', action: { kind: 'command', argv: ['/bin/sleep', '30'] }, where: 't:1' };

test('at most HookConcurrency hooks run; the rest wait, and close() kills the running ones', async () => {
  const runner = new HookRunner(config([sleeper], 2), silentLogger);
  for (let i = 1; i <= 5; i++) runner.handle(event(i));
  assert.deepEqual(runner.status(), { succeeded: 0, failed: 0, dropped: 0, running: 2, queued: 3 });
  // Only events of the hook's type run it.
  runner.handle(event(6, 'read'));
  assert.equal(runner.status().queued, 3);
  await runner.close();
  assert.equal(runner.status().queued, 0);
});

test('past 1000 waiting hooks, new ones are dropped and counted', async () => {
  const runner = new HookRunner(config([sleeper], 1), silentLogger);
  for (let i = 1; i <= 1005; i++) runner.handle(event(i));
  const status = runner.status();
  assert.equal(status.running, 1);
  assert.equal(status.queued, 1000);
  assert.equal(status.dropped, 4);
  await runner.close();
});

test('the event reaches a program as FEEDCAST_* variables', () => {
  assert.deepEqual(hookEnvironment({ ...event(3, 'read-end'), durationMs: 1234.6, reason: 'gone' }), {
    FEEDCAST_EVENT: 'read-end',
    FEEDCAST_EVENT_ID: '3',
    FEEDCAST_TIME: '2026-12-07T05:00:00.000Z',
    FEEDCAST_FEED: 'cam',
    FEEDCAST_NAME: 'cam',
    FEEDCAST_PROTOCOL: 'rtmp',
    FEEDCAST_REMOTE_ADDR: '192.0.2.7',
    FEEDCAST_REASON: 'gone',
    FEEDCAST_DURATION_MS: '1235',
  });
});
