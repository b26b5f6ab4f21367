// The control plane: JSON API contract, kick, credentials and StatusACL, Prometheus metrics,
// the access log, config reload with a publisher and a reader attached, and the status page
// as a browser shows it.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js';
import { probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { freePort, startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

interface Json {
  [key: string]: unknown;
}

async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, init);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  return { status: res.status, body: (await res.json()) as Json };
}

function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

describe('control plane', { skip }, () => {
  test('the JSON API describes feeds, streams, outputs, connections and config; errors are JSON', async (t) => {
    const server = await startTestServer(
      t,
      'ControlUser admin s3cret\n<Feed feed1.ffm>\nPublishSecret hush\n</Feed>\n<Stream live.flv>\nFeed feed1.ffm\n</Stream>\n',
    );
    const pub = publish(server.url('/feed1.ffm?secret=hush'), { seconds: 30 });
    t.after(() => pub.stop());
    await waitFor('tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
    const reading = probePackets(server.url('/live.flv'), 3);

    const health = await getJson(server.url('/api/v1/health'));
    assert.equal(health.status, 200);
    assert.equal(health.body['status'], 'ok');

    const feeds = await getJson(server.url('/api/v1/feeds'));
    const list = feeds.body['feeds'] as Json[];
    assert.equal(list.length, 1);
    const feed1 = await getJson(server.url('/api/v1/feeds/feed1'));
    assert.equal(feed1.body['key'], 'feed1');
    assert.equal((feed1.body['publisher'] as Json)['protocol'], 'http');
    assert.deepEqual(
      (feed1.body['tracks'] as Json[]).map((tr) => tr['codec']),
      ['h264', 'aac'],
    );
    assert.ok((feed1.body['bytesIn'] as number) > 0);

    await waitFor('a reader connection', () => server.ctx.connections.list().some((c) => c.role === 'reader'));
    const conns = await getJson(server.url('/api/v1/connections'));
    const roles = (conns.body['connections'] as Json[]).map((c) => c['role']).sort();
    assert.ok(roles.includes('publisher') && roles.includes('reader'), `roles ${roles.join(',')}`);

    const streams = await getJson(server.url('/api/v1/streams'));
    assert.deepEqual(
      (streams.body['streams'] as Json[]).map((s) => s['name']),
      ['live.flv'],
    );
    const config = await getJson(server.url('/api/v1/config'));
    const text = JSON.stringify(config.body);
    assert.ok(!text.includes('s3cret') && !text.includes('hush'), 'no secret in the config view');

    const missing = await getJson(server.url('/api/v1/feeds/nope'));
    assert.equal(missing.status, 404);
    assert.match(String(missing.body['error']), /No feed "nope"/);
    // A request that would change something needs the credentials first (issue 25 item 9), then gets 405.
    const anonymous = await getJson(server.url('/api/v1/feeds'), { method: 'POST' });
    assert.equal(anonymous.status, 401);
    const auth = `Basic ${Buffer.from('admin:s3cret').toString('base64')}`;
    const wrong = await getJson(server.url('/api/v1/feeds'), { method: 'POST', headers: { Authorization: auth } });
    assert.equal(wrong.status, 405);
    await reading;
  });

  test('kick needs ControlUser credentials and closes the connection', async (t) => {
    const server = await startTestServer(t, 'ControlUser admin s3cret\n<Feed feed1.ffm>\n</Feed>\n');
    const pub = publish(server.url('/feed1.ffm'), { seconds: 30 });
    t.after(() => pub.stop());
    await waitFor('tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
    const controller = new AbortController();
    t.after(() => controller.abort());
    const res = await fetch(server.url('/feed1.ts'), { signal: controller.signal });
    const reader = server.ctx.connections.list().find((c) => c.role === 'reader');
    assert.ok(reader !== undefined);

    const anonymous = await getJson(server.url(`/api/v1/connections/${reader.id}`), { method: 'DELETE' });
    assert.equal(anonymous.status, 401);
    const wrongPassword = await getJson(server.url(`/api/v1/connections/${reader.id}`), {
      method: 'DELETE',
      headers: basic('admin', 'nope'),
    });
    assert.equal(wrongPassword.status, 401);
    const kicked = await getJson(server.url(`/api/v1/connections/${reader.id}`), {
      method: 'DELETE',
      headers: basic('admin', 's3cret'),
    });
    assert.equal(kicked.status, 200);
    // The server closes the connection, which ends the (close-delimited) body.
    let bytes = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    assert.ok(bytes > 0);
    await waitFor('the reader to be gone', () => server.ctx.connections.get(reader.id) === undefined);
  });

  test('without ControlUser control endpoints answer 403; StatusACL guards status, API and metrics', async (t) => {
    const open = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const reload = await getJson(open.url('/api/v1/reload'), { method: 'POST' });
    assert.equal(reload.status, 403);
    assert.match(String(reload.body['error']), /ControlUser/);

    const guarded = await startTestServer(t, 'StatusACL allow 10.1.2.3\n<Feed feed1.ffm>\n</Feed>\n');
    assert.equal((await fetch(guarded.url('/api/v1/feeds'))).status, 403);
    assert.equal((await fetch(guarded.url('/metrics'))).status, 403);
    assert.equal((await fetch(guarded.url('/stat.html'))).status, 403);
    assert.equal((await fetch(guarded.url('/api/v1/health'))).status, 200, 'health stays open for load balancers');
  });

  test('/metrics parses as Prometheus text and counts the publisher, bytes and readers', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const pub = publish(server.url('/feed1.ffm'), { seconds: 30 });
    t.after(() => pub.stop());
    await waitFor('tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
    const reading = probePackets(server.url('/feed1.flv'), 3);
    await waitFor('a reader', () => server.ctx.outputs.all().some((o) => o.readers > 0));
    const res = await fetch(server.url('/metrics'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const families = parsePrometheusTextFormat(await res.text());
    const metric = (name: string) => families.find((f) => f.name === name);
    const value = (name: string, labels: Record<string, string>): number => {
      const m = metric(name)?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
      return Number(m?.value ?? NaN);
    };
    assert.equal(value('feedcast_feed_publisher_connected', { feed: 'feed1' }), 1);
    assert.ok(value('feedcast_feed_bytes_in_total', { feed: 'feed1' }) > 10_000);
    assert.ok(value('feedcast_output_readers', { feed: 'feed1' }) >= 1);
    assert.ok(value('feedcast_connections', { protocol: 'HTTP', role: 'publisher' }) === 1);
    assert.ok(metric('feedcast_nodejs_eventloop_lag_seconds') !== undefined, 'event-loop delay is exported');
    await reading;
  });

  test('CustomLog writes Common Log Format lines', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-log-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'access.log');
    const server = await startTestServer(t, `CustomLog ${file}\n<Feed feed1.ffm>\n</Feed>\n`);
    await (await fetch(server.url('/stat.html'))).text();
    await (await fetch(server.url('/nothing?x="y"'))).text();
    await waitFor('two log lines', () => {
      try {
        return readFileSync(file, 'utf8').trim().split('\n').length >= 2;
      } catch {
        return false;
      }
    });
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const clf =
      /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET \S+ HTTP\/1\.1" \d{3} (\d+|-)$/;
    for (const line of lines) assert.match(line, clf);
    assert.match(lines[0] ?? '', /"GET \/stat\.html HTTP\/1\.1" 200 \d+$/);
    assert.match(lines[1] ?? '', /" 404 \d+$/);
  });

  test('SIGHUP reloads the config: readers and publisher of unchanged feeds stay, a bad file is rejected', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-reload-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'server.conf');
    const port = await freePort();
    writeFileSync(file, `HTTPBindAddress 127.0.0.1\n<Feed feed1.ffm>\n</Feed>\n<Stream old.flv>\nFeed feed1.ffm\n</Stream>\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '-f', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        FEEDCAST_HTTP_PORT: String(port),
        FEEDCAST_RTMP_PORT: '0',
        FEEDCAST_RTSP_PORT: '0',
        FEEDCAST_SRT_PORT: '0',
        FEEDCAST_LOG_FORMAT: 'json',
      },
    });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    t.after(() => child.kill('SIGKILL'));
    await waitFor('the server', () => log.includes('"msg":"ready"'));
    const base = `http://127.0.0.1:${port}`;
    const pub = publish(`${base}/feed1.ffm`, { seconds: 30 });
    t.after(() => pub.stop());
    await waitFor('the publisher', async () => {
      const r = await getJson(`${base}/api/v1/feeds/feed1`);
      return r.body['publisher'] !== null && (r.body['tracks'] as unknown[]).length === 2;
    });

    // A reader of the unchanged feed reads 6 s of stream across the reload.
    const reading = probePackets(`${base}/feed1.flv`, 6, 40_000);
    await waitFor('the reader', async () => {
      const r = await getJson(`${base}/api/v1/connections`);
      return (r.body['connections'] as Json[]).some((c) => c['role'] === 'reader');
    });

    writeFileSync(
      file,
      `HTTPBindAddress 127.0.0.1\n<Feed feed1.ffm>\n</Feed>\n<Feed feed2.ffm>\n</Feed>\n<Stream new.flv>\nFeed feed1.ffm\n</Stream>\n`,
    );
    child.kill('SIGHUP');
    await waitFor('feed2 to appear', async () => (await fetch(`${base}/api/v1/feeds/feed2`)).status === 200);
    assert.equal((await fetch(`${base}/old.flv`)).status, 404, 'the removed stream is gone');

    writeFileSync(file, `HTTPBindAddress 127.0.0.1\n<Feed feed1.ffm>\nFileMaxSize lots\n</Feed>\n`);
    child.kill('SIGHUP');
    await waitFor('the rejection in the log', () => log.includes('config reload rejected'));
    assert.match(log, /server\.conf:3: FileMaxSize/);
    assert.equal((await fetch(`${base}/api/v1/feeds/feed2`)).status, 200, 'the running config stays');

    const result = await reading;
    const video = result.packets.filter((p) => p.codec_type === 'video');
    assert.ok(video.length >= 120, `the reader kept reading: ${video.length} video packets`);
    const feed1 = await getJson(`${base}/api/v1/feeds/feed1`);
    assert.equal(feed1.body['publishers'], 1, 'the publisher was never dropped');
  });

  test(
    'the status page in a browser shows a publisher and a reader with growing byte counts, names escaped',
    { skip: skipWithoutChromium() },
    async (t) => {
      // A stream name is one path segment without spaces or slashes: markup is what it can carry.
      const hostile = `<i>x<b>y"&'`;
      const server = await startTestServer(t, `<Feed feed1.ffm>\n</Feed>\n<Stream ${hostile}.flv>\nFeed feed1.ffm\n</Stream>\n`);
      const pub = publish(server.url('/feed1.ffm'), { seconds: 40 });
      t.after(() => pub.stop());
      await waitFor('tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
      const controller = new AbortController();
      t.after(() => controller.abort());
      const res = await fetch(server.url('/feed1.ts'), { signal: controller.signal });
      void (async () => {
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) void chunk;
        } catch {
          // aborted at the end of the test
        }
      })();

      const browser = await launchChromium();
      t.after(() => browser.close());
      const page = await browser.newPage();
      const dialogs: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      const readerBytes = async (): Promise<number> => {
        await page.goto(server.url('/stat.html'));
        const rows = await page.locator('table').last().locator('tr').allInnerTexts();
        const row = rows.find((r) => r.includes('feed1.ts'));
        assert.ok(row !== undefined, `a reader row in ${rows.join(' | ')}`);
        const match = /([\d.]+) (B|kB|MB)/.exec(row);
        assert.ok(match !== null);
        const unit = { B: 1, kB: 1e3, MB: 1e6 }[match[2] as 'B' | 'kB' | 'MB'];
        return Number(match[1]) * unit;
      };
      const first = await readerBytes();
      await waitFor(
        'the counters to refresh',
        () => server.ctx.connections.list().some((c) => c.role === 'reader' && c.bytesOut > first + 50_000),
        20_000,
      );
      const second = await readerBytes();
      assert.ok(second > first, `bytes grow: ${first} then ${second}`);
      const text = await page.locator('body').innerText();
      assert.match(text, /feed1\.ffm \(input\)/, 'the publisher row');
      assert.ok(text.includes(hostile), 'the hostile name is shown as text');
      assert.equal(await page.locator('i, b').count(), 0, 'no element was injected');
      assert.deepEqual(dialogs, []);
    },
  );
});
