// Supervision helpers: the restart backoff, the ChildReaper (children die with the server even
// after SIGKILL), the parent-death wrapper, and FfmpegProcess start/stop/restart on a stand-in
// program (`sh`), so no ffmpeg is needed.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { silentLogger } from '../observability/logger.js';
import { alive } from '../../test/helpers/processes.js';
import { waitFor } from '../../test/helpers/test-server.js';
import { backoffDelayMs, FfmpegProcess, withParentDeathSignal } from './ffmpeg-process.js';

test('backoff doubles from initialMs and is capped at maxMs', () => {
  const b = { initialMs: 500, maxMs: 4000, stableMs: 10_000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 10].map((n) => backoffDelayMs(n, b)),
    [500, 1000, 2000, 4000, 4000, 4000],
  );
  assert.equal(backoffDelayMs(0, b), 500);
});

test('the ChildReaper kills a silent child when its server is SIGKILLed', { timeout: 30_000 }, async (t) => {
  const helper = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('../../test/helpers/reaper-child.ts', import.meta.url).pathname],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  t.after(() => helper.kill('SIGKILL'));
  const line = await new Promise<string>((resolve) => helper.stdout.once('data', (d: Buffer) => resolve(d.toString())));
  const pid = Number(line.trim());
  assert.ok(pid > 0 && alive(pid), `the child ${pid} runs`);
  t.after(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  helper.kill('SIGKILL');
  await waitFor(`the reaper to kill ${pid}`, () => !alive(pid), 10_000);
});

test('withParentDeathSignal wraps executable paths only', () => {
  const [cmd, args] = withParentDeathSignal('/bin/sh', ['-c', 'true']);
  if (cmd !== '/bin/sh') assert.deepEqual(args, ['--pdeathsig', 'KILL', '--', '/bin/sh', '-c', 'true']);
  assert.deepEqual(withParentDeathSignal('ffmpeg', ['-v']), ['ffmpeg', ['-v']]);
  assert.deepEqual(withParentDeathSignal('/nonexistent/ffmpeg', ['-v']), ['/nonexistent/ffmpeg', ['-v']]);
});

test('FfmpegProcess restarts a dying child with backoff, keeps its stderr tail, and stops', { timeout: 30_000 }, async (t) => {
  const proc = new FfmpegProcess({
    name: 'test child',
    command: '/bin/sh',
    args: () => ['-c', 'echo "line one" >&2; echo "the end" >&2; exit 3'],
    log: silentLogger,
    stdin: 'ignore',
    onSpawn: () => undefined,
    backoff: { initialMs: 50, maxMs: 100, stableMs: 10_000 },
  });
  t.after(() => proc.stop());
  const exits: boolean[] = [];
  proc.on('exit', (_e, willRestart) => exits.push(willRestart));
  proc.start();
  await waitFor('three starts', () => proc.starts >= 3);
  assert.ok(exits.every(Boolean));
  assert.match(proc.lastError?.message ?? '', /test child ended with exit code 3: line one \| the end/);
  await proc.stop();
  const starts = proc.starts;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(proc.starts, starts, 'no restart after stop()');
});

test('FfmpegProcess reports a program that cannot start, without restarting', { timeout: 10_000 }, async () => {
  const proc = new FfmpegProcess({
    name: 'missing',
    command: '/nonexistent/ffmpeg',
    args: () => [],
    log: silentLogger,
    stdin: 'ignore',
    onSpawn: () => undefined,
  });
  const failed = new Promise<string>((resolve) => proc.on('failed', (e) => resolve(e.message)));
  proc.start();
  assert.match(await failed, /cannot start \/nonexistent\/ffmpeg \(ENOENT\); set FFmpegPath or FEEDCAST_FFMPEG/);
  assert.equal(proc.running, false);
});

test('FfmpegProcess stop() kills a child that ignores SIGTERM after the grace period', { timeout: 15_000 }, async () => {
  const proc = new FfmpegProcess({
    name: 'stubborn',
    command: '/bin/sh',
    args: () => ['-c', 'trap "" TERM; while :; do sleep 0.1; done'],
    log: silentLogger,
    stdin: 'ignore',
    onSpawn: () => undefined,
    killGraceMs: 300,
  });
  proc.start();
  await waitFor('the child', () => proc.pid !== undefined);
  const pid = proc.pid ?? 0;
  await proc.stop();
  assert.ok(!alive(pid));
  await proc.stop(); // idempotent
});
