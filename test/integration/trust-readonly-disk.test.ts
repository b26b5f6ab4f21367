// Trust (issue 11), "read-only while recording": the disk of a FeedFile turns read-only under a running
// server (an ext4 image on a loop device, aborted with `mount -o remount,abort`, which is what the
// kernel does to a filesystem on disk errors: every later write fails). A tmpfs cannot be remounted
// read-only while the feed file is open for writing, and chmod does not stop root, hence the image.
// The server runs as a user runs it (src/main.ts -f CONF) in a private mount namespace (root only).
// Live readers of the recorded feed and of another feed keep receiving; recording stops with the
// error counted and shown by the API and the status page; no crash, and a clean exit on SIGTERM.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { readersOfBothFeeds, skipWithoutExt4ImageNamespace, spawnRecordingServer } from '../helpers/server-process.js';
import { waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutExt4ImageNamespace();

test(
  'the feed file disk turns read-only while recording: live readers go on, the failure is counted and shown, no crash',
  { skip, timeout: 150_000 },
  async (t) => {
    const server = await spawnRecordingServer(t, {
      prefix: 'feedcast-rodisk-',
      fileMaxSize: '8M',
      mount: (dir, disk) =>
        `truncate -s 24M ${dir}/disk.img && mkfs.ext4 -q -F ${dir}/disk.img && mount -o loop ${dir}/disk.img ${disk}`,
    });
    const { child, base, exited, logLines, disk, recFile: file } = server;
    assert.ok(await server.up(), `the server started\n${server.output().slice(-2000)}`);

    const pubs = [publish(`${base}/rec.ffm`, { seconds: 120 }), publish(`${base}/live.ffm`, { seconds: 120 })];
    t.after(() => Promise.all(pubs.map((p) => p.stop())));
    await waitFor('recording', async () => (await file()).durationSeconds >= 2, 30_000);
    assert.equal((await file()).writeErrors, 0);
    const served = readersOfBothFeeds(t, base, 20_000, 20_000);
    await served('before the fault');

    // The disk turns read-only under the open feed file.
    server.nsenter('mount', '-o', 'remount,abort', disk);
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
    assert.equal(await exited, 0, `clean exit\n${server.output().slice(-2000)}`);
  },
);
