// Trust (issue 11), "read-only while recording": the disk of a FeedFile turns read-only under a running
// server (an ext4 image on a loop device, aborted with `mount -o remount,abort`, which is what the
// kernel does to a filesystem on disk errors: every later write fails). A tmpfs cannot be remounted
// read-only while the feed file is open for writing, and chmod does not stop root, hence the image.
// The server runs as a user runs it (src/main.ts -f CONF) in a private mount namespace (root only).
// Live readers of the recorded feed and of another feed keep receiving; recording stops with the
// error counted and shown by the API and the status page; no crash, and a clean exit on SIGTERM.

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { freePort, waitFor } from '../helpers/test-server.js';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;

/** Why this machine cannot run the test (not root, no mount namespace, no loop device or mkfs.ext4), or false. */
function cannotMountImage(): string | false {
  if (process.getuid?.() !== 0) return 'needs root: unshare -m and a loop-mounted ext4 image';
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-loop-probe-'));
  try {
    const probe = spawnSync(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `truncate -s 4M ${dir}/img && mkfs.ext4 -q -F ${dir}/img && mkdir ${dir}/m && mount -o loop ${dir}/img ${dir}/m && umount ${dir}/m`,
      ],
      { stdio: 'ignore', timeout: 30_000 },
    );
    return probe.status === 0 ? false : 'cannot loop-mount an ext4 image here (no loop device, mkfs.ext4 or mount namespace)';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const skip = skipWithoutFfmpeg() || cannotMountImage();

interface FileView {
  durationSeconds: number;
  writeKbps: number;
  writeErrors: number;
  lastError: string | null;
  newest: string | null;
}

function counter(t: TestContext, url: string): () => number {
  let bytes = 0;
  const req = request(url, (res) => res.on('data', (d: Buffer) => (bytes += d.length)));
  req.on('error', () => undefined);
  req.end();
  t.after(() => req.destroy());
  return () => bytes;
}

interface JsonLine {
  level?: string;
  msg?: string;
  [field: string]: unknown;
}

test(
  'the feed file disk turns read-only while recording: live readers go on, the failure is counted and shown, no crash',
  { skip, timeout: 150_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-rodisk-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const image = join(dir, 'disk.img');
    const disk = join(dir, 'disk');
    mkdirSync(disk);
    execFileSync('truncate', ['-s', '24M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image]);
    const port = await freePort();
    const conf = join(dir, 'server.conf');
    writeFileSync(
      conf,
      `HTTPPort ${port}\nHTTPBindAddress 127.0.0.1\n<Feed rec.ffm>\n  File ${disk}/rec.ffm\n  FileMaxSize 8M\n</Feed>\n<Feed live.ffm>\n</Feed>\n`,
    );
    const child = spawn(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount -o loop ${image} ${disk} && exec "${process.execPath}" --import tsx ${MAIN} -f ${conf}`,
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, FEEDCAST_RTSP_PORT: '0', FEEDCAST_RTMP_PORT: '0', FEEDCAST_LOG_FORMAT: 'json' },
      },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    t.after(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    const logLines = (): JsonLine[] =>
      output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as JsonLine);
    const base = `http://127.0.0.1:${port}`;
    await waitFor('the server', async () => (await fetch(`${base}/api/v1/health`).catch(() => undefined))?.ok === true, 30_000);
    const file = async (): Promise<FileView> => {
      const { feeds } = (await (await fetch(`${base}/api/v1/feeds`)).json()) as {
        feeds: { key: string; file: FileView | null }[];
      };
      const f = feeds.find((x) => x.key === 'rec')?.file;
      assert.ok(f !== null && f !== undefined, 'the API shows the feed file of rec');
      return f;
    };

    const pubs = [publish(`${base}/rec.ffm`, { seconds: 120 }), publish(`${base}/live.ffm`, { seconds: 120 })];
    t.after(() => Promise.all(pubs.map((p) => p.stop())));
    await waitFor('recording', async () => (await file()).durationSeconds >= 2, 30_000);
    assert.equal((await file()).writeErrors, 0);
    const rec = counter(t, `${base}/rec.flv`);
    const live = counter(t, `${base}/live.flv`);
    const served = async (what: string): Promise<void> => {
      const [r, l] = [rec(), live()];
      await waitFor(`${what}: both readers keep receiving`, () => rec() > r + 20_000 && live() > l + 20_000, 20_000);
    };
    await served('before the fault');

    // The disk turns read-only under the open feed file.
    execFileSync('nsenter', ['-t', String(child.pid), '-m', 'mount', '-o', 'remount,abort', disk], { stdio: 'ignore' });
    await waitFor('the write failures to be counted', async () => (await file()).writeErrors > 0, 30_000);
    const failing = await file();
    assert.match(failing.lastError ?? '', /EIO|EROFS|read-only|i\/o error/i);
    await served('after the disk turned read-only');
    await served('a while later');

    // Recording has stopped: nothing more reaches the disk while the feed stays live.
    await waitFor('the write rate to fall to 0', async () => (await file()).writeKbps === 0, 30_000);
    await served('while not recording');
    assert.equal((await file()).writeKbps, 0, 'nothing more is recorded');
    assert.ok((await file()).writeErrors >= failing.writeErrors);

    // Shown: the API (above) and the status page.
    const stat = await (await fetch(`${base}/stat.html`)).text();
    assert.match(stat, /last error: [^<]*(EIO|EROFS|read-only|i\/o error)/i);

    // Logged as warnings naming the error, never more than one line per failed write (retried each second).
    const failures = logLines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('feed file') && /fail/.test(l.msg));
    const errors = (await file()).writeErrors;
    assert.ok(failures.length >= 1 && failures.length <= errors, `${failures.length} lines for ${errors} errors`);
    assert.ok(failures.every((l) => l.level === 'warn'));
    assert.match(JSON.stringify(failures[0]), /EIO|EROFS|read-only|i\/o error/i);
    assert.equal(logLines().filter((l) => l.level === 'error').length, 0, 'no error-level line: the live path is not affected');
    assert.equal(failures.length, 1, `the lasting failure is logged once, not once per retry: ${failures.length} lines`);

    assert.equal((await fetch(`${base}/api/v1/health`)).status, 200);
    assert.equal(child.exitCode, null, 'the server is still running');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, `clean exit\n${output.slice(-2000)}`);
  },
);
