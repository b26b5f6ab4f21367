// Faults (issue 11): the FeedFile's disk fills up, or is read-only. Feedcast runs as a user runs it
// (src/main.ts -f CONF) inside a private mount namespace (`unshare -m`, root only) with the feed file
// on a small tmpfs; the test fills it from outside (`nsenter`). Live readers of the recorded feed and
// of another feed keep being served, the writer counts the errors and resumes when space is freed,
// and what was stored before stays readable. (A mounted filesystem cannot be remounted read-only
// while the feed file is open for writing, so the read-only case is the disk being read-only at start.)

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { waitFor } from '../helpers/test-server.js';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;

function canUnshare(): string | false {
  if (process.getuid?.() !== 0) return 'needs root for unshare -m and a tmpfs mount';
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /mnt && umount /mnt'], {
    stdio: 'ignore',
  });
  return probe.status === 0 ? false : 'unshare -m with a tmpfs mount is not permitted here';
}

const skip = skipWithoutFfmpeg() || canUnshare();

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

interface FileView {
  sizeBytes: number;
  oldest: string | null;
  newest: string | null;
  durationSeconds: number;
  writeErrors: number;
  lastError: string | null;
}

function counter(t: TestContext, url: string): () => number {
  let bytes = 0;
  const req = request(url, (res) => res.on('data', (d: Buffer) => (bytes += d.length)));
  req.on('error', () => undefined);
  req.end();
  t.after(() => req.destroy());
  return () => bytes;
}

test(
  'FeedFile disk full: readers are served, errors are counted, writing resumes when space is freed, stored data stays',
  { skip, timeout: 180_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-disk-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const disk = join(dir, 'disk');
    mkdirSync(disk);
    const port = await freePort();
    const conf = join(dir, 'server.conf');
    writeFileSync(
      conf,
      `HTTPPort ${port}\nHTTPBindAddress 127.0.0.1\n<Feed rec.ffm>\n  File ${disk}/rec.ffm\n  FileMaxSize 16M\n</Feed>\n<Feed live.ffm>\n</Feed>\n`,
    );
    const child = spawn(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount -t tmpfs -o size=24m tmpfs ${disk} && exec "${process.execPath}" --import tsx ${MAIN} -f ${conf}`,
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, FEEDCAST_RTSP_PORT: '0', FEEDCAST_RTMP_PORT: '0', FEEDCAST_LOG_FORMAT: 'json' },
      },
    );
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-200_000)));
    child.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-200_000)));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    t.after(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    const base = `http://127.0.0.1:${port}`;
    await waitFor('the server', async () => (await fetch(`${base}/api/v1/health`).catch(() => undefined))?.ok === true, 30_000);
    const nsenter = (...args: string[]): void => {
      execFileSync('nsenter', ['-t', String(child.pid), '-m', ...args], { stdio: 'ignore' });
    };
    const file = async (): Promise<FileView> => {
      const { feeds } = (await (await fetch(`${base}/api/v1/feeds`)).json()) as {
        feeds: { key: string; file: FileView | null }[];
      };
      const f = feeds.find((x) => x.key === 'rec')?.file;
      assert.ok(f !== null && f !== undefined);
      return f;
    };

    const pubs = [publish(`${base}/rec.ffm`, { seconds: 120, bitrateK: 2000 }), publish(`${base}/live.ffm`, { seconds: 120 })];
    t.after(() => Promise.all(pubs.map((p) => p.stop())));
    await waitFor('recording', async () => (await file()).durationSeconds >= 4, 30_000);
    const before = await file();
    assert.equal(before.writeErrors, 0);
    const rec = counter(t, `${base}/rec.flv`);
    const live = counter(t, `${base}/live.flv`);
    const served = async (what: string): Promise<void> => {
      const [r, l] = [rec(), live()];
      await waitFor(`${what}: both readers keep receiving`, () => rec() > r + 50_000 && live() > l + 20_000, 20_000);
    };
    await served('before the faults');

    // 1. The disk fills up (another file takes the rest of the tmpfs).
    spawnSync('nsenter', ['-t', String(child.pid), '-m', 'dd', 'if=/dev/zero', `of=${disk}/filler`, 'bs=64k'], {
      stdio: 'ignore',
    });
    const full = (await file()).writeErrors;
    await waitFor('write errors on the full disk', async () => (await file()).writeErrors > full, 30_000);
    assert.match((await file()).lastError ?? '', /ENOSPC|no space/i);
    await served('while the disk is full');
    nsenter('rm', '-f', `${disk}/filler`);
    const freedAt = Date.now();
    await waitFor(
      'writing to resume after space is freed',
      async () => {
        const newest = (await file()).newest;
        return newest !== null && Date.parse(newest) > freedAt + 1000;
      },
      30_000,
    );

    // 2. What was stored before the faults is still there and readable (time-shift from the oldest).
    const after = await file();
    assert.equal(after.oldest, before.oldest, 'the oldest stored time is unchanged');
    const from = new Date(Date.parse(before.oldest ?? '') + 500).toISOString();
    let refusal = '';
    const old = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/rec.flv?date=${from}`, (res) => {
        let n = 0;
        if (res.statusCode !== 200) {
          res.on('data', (d: Buffer) => (refusal += d.toString()));
          res.on('end', () => resolve(-(res.statusCode ?? 1)));
          return;
        }
        res.on('data', (d: Buffer) => {
          n += d.length;
          if (n > 200_000) {
            req.destroy();
            resolve(n);
          }
        });
        res.on('end', () => resolve(n));
      });
      req.on('error', reject);
      req.end();
    });
    assert.ok(old > 200_000, `the time-shift read from the start gave ${old} ${refusal} ${JSON.stringify({ before, after })}`);
    assert.equal((await fetch(`${base}/api/v1/health`)).status, 200);
    assert.doesNotMatch(log, /"level":"error"/, 'no error-level log line (faults are warnings)');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  },
);

test(
  'a feed file on a read-only disk at start: the server starts and serves every feed live, the recorded one without its file',
  {
    skip,
    timeout: 60_000,
  },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-rodisk-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const disk = join(dir, 'disk');
    mkdirSync(disk);
    const port = await freePort();
    const conf = join(dir, 'server.conf');
    writeFileSync(
      conf,
      `HTTPPort ${port}\nHTTPBindAddress 127.0.0.1\n<Feed rec.ffm>\n  File ${disk}/rec.ffm\n</Feed>\n<Feed live.ffm>\n</Feed>\n`,
    );
    const child = spawn(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount -t tmpfs -o size=1m,ro tmpfs ${disk} && exec "${process.execPath}" --import tsx ${MAIN} -f ${conf}`,
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'ignore'],
        env: { ...process.env, FEEDCAST_RTSP_PORT: '0', FEEDCAST_RTMP_PORT: '0' },
      },
    );
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    t.after(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    const base = `http://127.0.0.1:${port}`;
    const up = await Promise.race([
      waitFor('the server', async () => (await fetch(`${base}/api/v1/health`).catch(() => undefined))?.ok === true, 30_000).then(
        () => true,
      ),
      exited.then(() => false),
    ]);
    assert.ok(up, 'the server started despite the read-only feed file disk');
    const p = publish(`${base}/rec.ffm`, { seconds: 30 });
    t.after(() => p.stop());
    const rec = counter(t, `${base}/rec.flv`);
    await waitFor('the recorded feed to be served live', () => rec() > 50_000, 30_000);
  },
);
