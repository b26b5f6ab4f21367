// A real redis-server (Debian's) started by a test on a free loopback port, without persistence, stopped
// by PID when the test ends (or earlier, to test a node's life without its registry).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { freePort, waitFor } from './test-server.js';

const REDIS = process.env['FEEDCAST_REDIS_SERVER'] ?? 'redis-server';

/** Why Redis tests cannot run here, or false. */
export function skipWithoutRedis(): string | false {
  const probe = spawnSync(REDIS, ['--version'], { stdio: 'ignore' });
  if (probe.status === 0) return false;
  if (process.env['CI'] !== undefined) throw new Error('redis-server is required in CI (apt-get install -y redis-server)');
  return 'redis-server is not installed (apt-get install redis-server)';
}

export interface RunningRedis {
  readonly port: number;
  readonly url: string;
  readonly pid: () => number | undefined;
  /** Stops it (SIGTERM, by PID) and waits for its exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is persisted). */
  restart(): Promise<void>;
}

async function spawnRedis(port: number): Promise<ChildProcess> {
  const child = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-8000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-8000)));
  await waitFor(
    'redis-server to accept connections',
    () => output.includes('Ready to accept connections') || child.exitCode !== null,
    30_000,
  );
  if (child.exitCode !== null) throw new Error(`redis-server exited before it was ready:\n${output}`);
  return child;
}

/** Starts redis-server on a free port of 127.0.0.1; stopped by PID when the test ends. */
export async function startRedis(t: TestContext): Promise<RunningRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined = await spawnRedis(port);
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGTERM');
    await exited;
  };
  t.after(stop);
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    pid: () => child?.pid,
    stop,
    restart: async () => {
      await stop();
      child = await spawnRedis(port);
    },
  };
}
