// Faults (issue 11): the FeedFile's disk fills up, or is read-only. Feedcast runs as a user runs it
// (src/main.ts -f CONF) inside a private mount namespace (`unshare -m`, root only) with the feed file
// on a small tmpfs; the test fills it from outside (`nsenter`). Live readers of the recorded feed and
// of another feed keep being served, the writer counts the errors and resumes when space is freed,
// and what was stored before stays readable. (A mounted filesystem cannot be remounted read-only
// while the feed file is open for writing, so the read-only case is the disk being read-only at start.)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { test } from 'node:test';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { byteCounter, readersOfBothFeeds, skipWithoutTmpfsNamespace, spawnRecordingServer } from '../helpers/server-process.js';
import { waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutTmpfsNamespace();

test(
  'FeedFile disk full: readers are served, errors are counted, writing resumes when space is freed, stored data stays',
  { skip, timeout: 180_000 },
  async (t) => {
    const server = await spawnRecordingServer(t, {
      prefix: 'feedcast-disk-',
      fileMaxSize: '16M',
      mount: (_, disk) => `mount -t tmpfs -o size=24m tmpfs ${disk}`,
    });
    const { child, base, exited, disk, recFile: file } = server;
    assert.ok(await server.up(), `the server started\n${server.output().slice(-2000)}`);

    const pubs = [publish(`${base}/rec.ffm`, { seconds: 120, bitrateK: 2000 }), publish(`${base}/live.ffm`, { seconds: 120 })];
    t.after(() => Promise.all(pubs.map((p) => p.stop())));
    await waitFor('recording', async () => (await file()).durationSeconds >= 4, 30_000);
    const before = await file();
    assert.equal(before.writeErrors, 0);
    const served = readersOfBothFeeds(t, base, 50_000, 20_000);
    await served('before the faults');

    // 1. The disk fills up (another file takes the rest of the tmpfs).
    spawnSync('nsenter', ['-t', String(child.pid), '-m', 'dd', 'if=/dev/zero', `of=${disk}/filler`, 'bs=64k'], {
      stdio: 'ignore',
    });
    const full = (await file()).writeErrors;
    await waitFor('write errors on the full disk', async () => (await file()).writeErrors > full, 30_000);
    assert.match((await file()).lastError ?? '', /ENOSPC|no space/i);
    await served('while the disk is full');
    server.nsenter('rm', '-f', `${disk}/filler`);
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
    assert.doesNotMatch(server.output(), /"level":"error"/, 'no error-level log line (faults are warnings)');
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
    const server = await spawnRecordingServer(t, {
      prefix: 'feedcast-rodisk-',
      mount: (_, disk) => `mount -t tmpfs -o size=1m,ro tmpfs ${disk}`,
    });
    const base = server.base;
    const up = await server.up();
    assert.ok(up, 'the server started despite the read-only feed file disk');
    const p = publish(`${base}/rec.ffm`, { seconds: 30 });
    t.after(() => p.stop());
    const rec = byteCounter(t, `${base}/rec.flv`);
    await waitFor('the recorded feed to be served live', () => rec() > 50_000, 30_000);
  },
);
