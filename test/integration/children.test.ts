// No orphaned ffmpeg: the server runs as a user runs it (node src/main.ts -f CONF) with a silent
// child (an ffmpeg Source listening on TCP that nobody feeds, so it never hits EPIPE); killing
// the server with SIGKILL, with SIGTERM during start-up, or failing its start-up leaves no ffmpeg.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { alive, childrenNamed } from '../helpers/processes.js';
import { skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { freePorts, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

function listenFree(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address !== null ? address.port : 0 });
    });
  });
}

interface Running {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** Starts `feedcast -f CONF` whose feed `silent` is an always-on ffmpeg waiting on a TCP port. */
async function startFeedcast(t: TestContext, extra = '', rtmpOff = true): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-children-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'server.conf');
  const [httpPort, tcpPort] = await freePorts(2);
  writeFileSync(
    conf,
    `HTTPPort ${httpPort}\nHTTPBindAddress 127.0.0.1\n${extra}\n<Feed silent.ffm>\n  Source tcp://127.0.0.1:${tcpPort}?listen=1\n  OnDemand off\n</Feed>\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '-f', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FEEDCAST_RTSP_PORT: '0', ...(rtmpOff ? { FEEDCAST_RTMP_PORT: '0' } : {}) },
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, exited, output: () => out };
}

/** Polls /proc every 5 ms for an ffmpeg child of `parent` (start-up is fast: no 50 ms steps). */
async function firstFfmpegChild(parent: number, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [pid] = childrenNamed('ffmpeg', parent);
    if (pid !== undefined) return pid;
    if (Date.now() > deadline) throw new Error(`no ffmpeg child of ${parent} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('no ffmpeg is left after the server is SIGKILLed while a silent child runs', { skip, timeout: 60_000 }, async (t) => {
  const server = await startFeedcast(t);
  const serverPid = server.child.pid ?? 0;
  const ffmpeg = await firstFfmpegChild(serverPid);
  await waitFor('the server to be ready', () => /"msg":"ready"/.test(server.output()), 20_000);
  assert.ok(alive(ffmpeg), 'the silent child runs');
  server.child.kill('SIGKILL');
  assert.equal((await server.exited).signal, 'SIGKILL');
  await waitFor(`ffmpeg ${ffmpeg} to be killed by the reaper`, () => !alive(ffmpeg), 10_000);
});

test('no ffmpeg is left after SIGTERM during start-up', { skip, timeout: 60_000 }, async (t) => {
  const server = await startFeedcast(t);
  const ffmpeg = await firstFfmpegChild(server.child.pid ?? 0);
  // The always-on source is spawned before the listener opens: signal at once.
  server.child.kill('SIGTERM');
  const ended = await server.exited;
  assert.ok(ended.signal === 'SIGTERM' || ended.code === 0, `the server ended (${JSON.stringify(ended)})`);
  await waitFor(`ffmpeg ${ffmpeg} to be gone`, () => !alive(ffmpeg), 10_000);
});

test('no ffmpeg is left when start-up fails after the children started (port in use)', { skip, timeout: 60_000 }, async (t) => {
  const busy = await listenFree();
  t.after(() => new Promise((r) => busy.server.close(r)));
  // RTMP on a port that is taken: start-up fails after the always-on source was spawned.
  const server = await startFeedcast(t, `RTMPPort ${busy.port}\nRTMPBindAddress 127.0.0.1`, false);
  const ffmpeg = await firstFfmpegChild(server.child.pid ?? 0).catch(() => undefined);
  const ended = await server.exited;
  assert.equal(ended.code, 1, server.output());
  assert.match(server.output(), /EADDRINUSE|in use/);
  if (ffmpeg !== undefined) await waitFor(`ffmpeg ${ffmpeg} to be gone`, () => !alive(ffmpeg), 10_000);
});
