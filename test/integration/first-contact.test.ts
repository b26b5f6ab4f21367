// Issue 24 (first contact), the small ones: what a new user ran into on the index page, the
// favicon, at shutdown and in /metrics. Each test fails on the code before the fix.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { recordingLogger, type LogLine } from '../helpers/recording-logger.js';
import { startLoopbackServer, startTestServer } from '../helpers/test-server.js';

describe('issue 24: first contact', () => {
  // The index page told people to `ffplay http://HOST/demo.flv`, without the port they had used.
  test('the index page hint carries the host and port the browser used', async (t) => {
    const server = await startTestServer(t, '', { demoFeeds: ['demo'] });
    const html = await (await fetch(server.url('/'))).text();
    assert.ok(html.includes(`ffplay http://127.0.0.1:${server.httpPort}/demo.flv`), html);
  });

  // Every browser asks for /favicon.ico; it was 404 (a console error on every page).
  test('/favicon.ico is an icon', async (t) => {
    const server = await startTestServer(t);
    const res = await fetch(server.url('/favicon.ico'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/x-icon');
    const body = Buffer.from(await res.arrayBuffer());
    assert.deepEqual([...body.subarray(0, 4)], [0, 0, 1, 0], 'an ICO header (reserved 0, type 1)');
  });

  // At shutdown the log said the publisher left with graceMs=30000, as if the server waited for it.
  test('at shutdown a leaving publisher is not announced as waited for', async () => {
    const lines: LogLine[] = [];
    const server = await startLoopbackServer('', 'test.conf', { log: recordingLogger(lines), demoFeeds: ['demo'] });
    await server.close();
    const left = lines.filter((l) => l.msg === 'publisher left');
    assert.equal(left.length, 1, JSON.stringify(lines.map((l) => l.msg)));
    assert.equal(left[0]?.fields['graceMs'], undefined, JSON.stringify(left[0]));
  });

  // feedcast_process_cpu_seconds_total started at the first scrape: 15 minutes of work showed 0.01 s.
  test('the process CPU metric counts from process start, not from the first scrape', async (t) => {
    const server = await startTestServer(t);
    const used = process.cpuUsage();
    const text = await (await fetch(server.url('/metrics'))).text();
    const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    const total = value('feedcast_process_cpu_seconds_total');
    assert.ok(
      total >= (used.user + used.system) / 1e6,
      `${total} s, but the process had used ${(used.user + used.system) / 1e6} s`,
    );
    assert.ok(value('feedcast_process_cpu_user_seconds_total') >= used.user / 1e6);
    assert.ok(value('feedcast_process_cpu_system_seconds_total') >= used.system / 1e6);
  });
});
