// Feedcast in its own network namespace whose lo also holds a LAN address (10.99.0.1): a client connecting
// to that address comes from it, a real non-loopback peer for the server's sockets. Root only (unshare -n).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { run } from './media-tools.js';
import { waitFor } from './test-server.js';

export const LAN = '10.99.0.1';
const NETNS_SETUP = `ip link set lo up && ip addr add ${LAN}/32 dev lo`;
const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

/** Why these tests cannot run here, or false. */
export function skipWithoutNetns(): string | false {
  if (process.getuid?.() !== 0) return 'needs root for unshare -n';
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', NETNS_SETUP], { stdio: 'ignore', timeout: 30_000 });
  return probe.status === 0 ? false : 'unshare -n with an address on lo is not permitted here';
}

/** Why packets cannot be dropped in a test's namespace here (nftables' `numgen random`; this kernel has no sch_netem), or false. */
export function skipWithoutLossTools(): string | false {
  const netns = skipWithoutNetns();
  if (netns !== false) return netns;
  const nft = spawnSync('unshare', ['-n', 'nft', 'add', 'table', 'inet', 'probe'], { stdio: 'ignore', timeout: 30_000 });
  return nft.status === 0 ? false : 'nft (nftables) is needed to drop packets in a network namespace';
}

export interface LogLine {
  msg?: string;
  [field: string]: unknown;
}

export interface NetnsServer extends ServerProcess {
  /** Runs a command inside its namespace. */
  readonly inNs: (cmd: string, args: string[]) => ReturnType<typeof run>;
}

/** A Feedcast started as a child process (JSON logs), stopped by PID when the test ends. */
export interface ServerProcess {
  readonly child: ChildProcess;
  /** Everything it printed so far. */
  readonly output: () => string;
  /** Its JSON log lines so far. */
  readonly lines: () => LogLine[];
}

/** Spawns `command args`, a Feedcast that logs JSON; resolves once it logs `ready`, throws if it exits first. */
async function startLoggingChild(
  t: TestContext,
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<ServerProcess> {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FEEDCAST_LOG_FORMAT: 'json', ...env },
  });
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const lines = (): LogLine[] =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  await waitFor('the server to be ready', () => lines().some((l) => l.msg === 'ready') || child.exitCode !== null, 60_000);
  if (child.exitCode !== null) throw new Error(`feedcast exited before it was ready:\n${output}`);
  return { child, output: () => output, lines };
}

/** Starts `feedcast ARGS` as a child process in this network namespace. */
export function startServerProcess(t: TestContext, args: string[], env: Record<string, string> = {}): Promise<ServerProcess> {
  return startLoggingChild(t, process.execPath, ['--import', 'tsx', MAIN, ...args], env);
}

/** Starts `feedcast ARGS` (JSON logs) in a new namespace, stopped by PID when the test ends; resolves once it logs `ready`. */
export async function startNetnsServer(t: TestContext, args: string[], env: Record<string, string> = {}): Promise<NetnsServer> {
  const server = await startLoggingChild(
    t,
    'unshare',
    ['-n', 'sh', '-c', `${NETNS_SETUP} && exec "$0" --import tsx "$@"`, process.execPath, MAIN, ...args],
    env,
  );
  const { child } = server;
  const pid = String(child.pid);
  return { ...server, inNs: (cmd, a) => run('nsenter', ['-t', pid, '-n', cmd, ...a], 60_000) };
}
