// Feedcast run as a user runs it (src/main.ts -f CONF) in a child process with a private mount
// namespace (`unshare -m`, root only), so a test can mount a small or failing disk under it and
// act on that disk from outside (`nsenter`). Also: byte-counting HTTP readers and the feed file
// view of the API, for tests of recording faults.

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort, waitFor } from './test-server.js';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;
/** The server's output kept for assertions: the newest characters, enough for a few minutes of logs. */
const OUTPUT_LIMIT = 1_000_000;

/** Runs `script` (sh) in a private mount namespace. */
function unshareArgs(script: string): string[] {
  return ['-m', '--propagation', 'private', 'sh', '-c', script];
}

/**
 * Why this machine cannot run a mount-namespace test, or false: not root, or `probe` (a shell
 * script given a scratch directory as $1, run in a private mount namespace) fails.
 */
function cannotUnshareMount(probe: string, needs: string, refused: string): string | false {
  if (process.getuid?.() !== 0) return needs;
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-mount-probe-'));
  try {
    const run = spawnSync('unshare', [...unshareArgs(probe), 'probe', dir], { stdio: 'ignore', timeout: 30_000 });
    return run.status === 0 ? false : refused;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Why a test cannot mount a tmpfs in a private mount namespace here, or false. */
export function skipWithoutTmpfsNamespace(): string | false {
  return cannotUnshareMount(
    'mount -t tmpfs -o size=64k tmpfs "$1" && umount "$1"',
    'needs root for unshare -m and a tmpfs mount',
    'unshare -m with a tmpfs mount is not permitted here',
  );
}

/** Why a test cannot loop-mount an ext4 image in a private mount namespace here, or false. */
export function skipWithoutExt4ImageNamespace(): string | false {
  return cannotUnshareMount(
    'truncate -s 4M "$1/img" && mkfs.ext4 -q -F "$1/img" && mkdir "$1/m" && mount -o loop "$1/img" "$1/m" && umount "$1/m"',
    'needs root: unshare -m and a loop-mounted ext4 image',
    'cannot loop-mount an ext4 image here (no loop device, mkfs.ext4 or mount namespace)',
  );
}

export interface JsonLogLine {
  level?: string;
  msg?: string;
  [field: string]: unknown;
}

export interface ServerProcess {
  child: ChildProcess;
  /** http://127.0.0.1:PORT */
  base: string;
  /** The exit code, once the process has exited. */
  exited: Promise<number | null>;
  /** What the server wrote to stdout and stderr (the newest OUTPUT_LIMIT characters). */
  output: () => string;
  /** The JSON log lines of the output. */
  logLines: () => JsonLogLine[];
  /** Runs a command in the server's mount namespace. */
  nsenter: (...command: string[]) => void;
  /** Resolves true once the server answers its health check, false if it exits first. */
  up: (timeoutMs?: number) => Promise<boolean>;
}

/**
 * Spawns the server on `port` with `conf` after `mount` (a shell command, e.g. mounting the disk of
 * a feed file) in a private mount namespace; JSON logs; killed after the test if still running.
 */
export function spawnServerInMountNamespace(t: TestContext, port: number, conf: string, mount: string): ServerProcess {
  const child = spawn('unshare', unshareArgs(`${mount} && exec "${process.execPath}" --import tsx ${MAIN} -f ${conf}`), {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FEEDCAST_RTSP_PORT: '0', FEEDCAST_RTMP_PORT: '0', FEEDCAST_LOG_FORMAT: 'json' },
  });
  let output = '';
  let truncated = false;
  const keep = (d: Buffer): void => {
    output += d.toString();
    if (output.length > OUTPUT_LIMIT) {
      output = output.slice(-OUTPUT_LIMIT);
      truncated = true;
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    child,
    base,
    exited,
    output: () => output,
    logLines: () =>
      output
        .split('\n')
        .slice(truncated ? 1 : 0) // the first line may have lost its start
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as JsonLogLine),
    nsenter: (...command) => {
      execFileSync('nsenter', ['-t', String(child.pid), '-m', ...command], { stdio: 'ignore' });
    },
    up: (timeoutMs = 30_000) =>
      Promise.race([
        waitFor(
          'the server',
          async () => (await fetch(`${base}/api/v1/health`).catch(() => undefined))?.ok === true,
          timeoutMs,
        ).then(() => true),
        exited.then(() => false),
      ]),
  };
}

export interface RecordingServer extends ServerProcess {
  /** The directory the feed file disk is mounted on (in the server's mount namespace). */
  disk: string;
  /** The feed file of rec as the API shows it. */
  recFile: () => Promise<FeedFileView>;
}

/**
 * The server with two feeds, rec.ffm recorded to a FeedFile on its own disk (`fileMaxSize`, e.g.
 * '16M', if given) and live.ffm not recorded. `mount(dir, disk)` is the shell command that mounts
 * the disk on `disk`; `dir` is a scratch directory removed after the test (for a disk image).
 */
export async function spawnRecordingServer(
  t: TestContext,
  options: { prefix: string; fileMaxSize?: string; mount: (dir: string, disk: string) => string },
): Promise<RecordingServer> {
  const dir = mkdtempSync(join(tmpdir(), options.prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const disk = join(dir, 'disk');
  mkdirSync(disk);
  const port = await freePort();
  const conf = join(dir, 'server.conf');
  const maxSize = options.fileMaxSize !== undefined ? `  FileMaxSize ${options.fileMaxSize}\n` : '';
  writeFileSync(
    conf,
    `HTTPPort ${port}\nHTTPBindAddress 127.0.0.1\n<Feed rec.ffm>\n  File ${disk}/rec.ffm\n${maxSize}</Feed>\n<Feed live.ffm>\n</Feed>\n`,
  );
  const server = spawnServerInMountNamespace(t, port, conf, options.mount(dir, disk));
  return { ...server, disk, recFile: () => feedFileView(server.base, 'rec') };
}

/** The feed file of a feed as the API shows it (the fields the fault tests read). */
export interface FeedFileView {
  sizeBytes: number;
  oldest: string | null;
  newest: string | null;
  durationSeconds: number;
  writeKbps: number;
  writeErrors: number;
  lastError: string | null;
}

/** GET /api/v1/feeds: the feed file of `feed`, asserted to be there. */
export async function feedFileView(base: string, feed: string): Promise<FeedFileView> {
  const { feeds } = (await (await fetch(`${base}/api/v1/feeds`)).json()) as {
    feeds: { key: string; file: FeedFileView | null }[];
  };
  const f = feeds.find((x) => x.key === feed)?.file;
  assert.ok(f !== null && f !== undefined, `the API shows the feed file of ${feed}`);
  return f;
}

/** An HTTP reader of `url` that counts the bytes it receives until the test ends. */
export function byteCounter(t: TestContext, url: string): () => number {
  let bytes = 0;
  const req = request(url, (res) => res.on('data', (d: Buffer) => (bytes += d.length)));
  req.on('error', () => undefined);
  req.end();
  t.after(() => req.destroy());
  return () => bytes;
}

/**
 * HTTP-FLV readers of rec and live (the feeds of spawnRecordingServer); the function returned waits
 * (`what`) until the rec reader got `recBytes` more than when it was called and the live one `liveBytes`.
 */
export function readersOfBothFeeds(
  t: TestContext,
  base: string,
  recBytes: number,
  liveBytes: number,
): (what: string) => Promise<void> {
  const rec = byteCounter(t, `${base}/rec.flv`);
  const live = byteCounter(t, `${base}/live.flv`);
  return async (what) => {
    const [r, l] = [rec(), live()];
    await waitFor(`${what}: both readers keep receiving`, () => rec() > r + recBytes && live() > l + liveBytes, 20_000);
  };
}
