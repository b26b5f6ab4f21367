// Issue 23, part 3: lifecycle hooks. OnPublish/OnUnpublish/OnRead/OnReadEnd run a program (with the event in its
// environment) or POST JSON to a URL (retried), never blocking the feed; /api/v1/events streams the same events.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { LifecycleEvent } from '../../src/control/lifecycle-events.js';
import { probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { recordingLogger, type LogLine } from '../helpers/recording-logger.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

/** A local HTTP server that records each POSTed event; answers 503 to the first `failFirst` requests. */
async function hookReceiver(
  t: TestContext,
  failFirst = 0,
): Promise<{ url: string; events: LifecycleEvent[]; requests: () => number }> {
  const events: LifecycleEvent[] = [];
  let requests = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      requests++;
      if (requests <= failFirst) {
        res.writeHead(503).end();
        return;
      }
      assert.equal(req.headers['content-type'], 'application/json');
      events.push(JSON.parse(body) as LifecycleEvent);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, events, requests: () => requests };
}

/** Reads /api/v1/events as a dashboard would; returns the events parsed so far. */
function sse(
  t: TestContext,
  url: string,
): { events: { id: string; type: string; data: LifecycleEvent }[]; status: Promise<number> } {
  const events: { id: string; type: string; data: LifecycleEvent }[] = [];
  const status = new Promise<number>((resolve, reject) => {
    const req = request(url, (res: IncomingMessage) => {
      resolve(res.statusCode ?? 0);
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const field = (name: string): string | undefined =>
            block
              .split('\n')
              .find((l) => l.startsWith(`${name}: `))
              ?.slice(name.length + 2);
          const data = field('data');
          if (data !== undefined)
            events.push({ id: field('id') ?? '', type: field('event') ?? '', data: JSON.parse(data) as LifecycleEvent });
        }
      });
    });
    req.on('error', reject);
    req.end();
    t.after(() => req.destroy());
  });
  return { events, status };
}

function envFile(path: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('FEEDCAST_'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

describe('lifecycle hooks', { skip }, () => {
  test('a publish, a read and the publisher leaving run the programs, POST the events and stream them', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-hooks-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // The first POST fails (503): the hook retries it.
    const receiver = await hookReceiver(t, 1);
    const writeEnv = (name: string): string => `/bin/sh -c 'env > "$0.tmp"; mv "$0.tmp" "$0"' ${join(dir, name)}`;
    const server = await startTestServer(
      t,
      [
        `OnRead ${receiver.url}   # dashboards`,
        `OnReadEnd ${receiver.url}`,
        `OnPublish ${writeEnv('publish-global.env')}`,
        '<Feed cam.ffm>',
        `  OnPublish ${writeEnv('publish-cam.env')}`,
        `  OnUnpublish ${writeEnv('unpublish-cam.env')}`,
        '</Feed>',
        '<Feed other.ffm>',
        '</Feed>',
        '',
      ].join('\n'),
    );
    const stream = sse(t, server.url('/api/v1/events?feed=cam'));
    assert.equal(await stream.status, 200);

    const pub = publish(server.url('/cam.ffm'), { seconds: 60 });
    t.after(() => pub.stop());
    await waitFor(
      'the OnPublish programs',
      () => existsSync(join(dir, 'publish-cam.env')) && existsSync(join(dir, 'publish-global.env')),
      30_000,
    );
    const published = envFile(join(dir, 'publish-cam.env'));
    assert.equal(published['FEEDCAST_EVENT'], 'publish');
    assert.equal(published['FEEDCAST_FEED'], 'cam');
    assert.equal(published['FEEDCAST_PROTOCOL'], 'http');
    assert.equal(published['FEEDCAST_REMOTE_ADDR'], '127.0.0.1');
    assert.equal(envFile(join(dir, 'publish-global.env'))['FEEDCAST_FEED'], 'cam', 'a server-wide hook follows every feed');

    // A reader: OnRead, then OnReadEnd with how long it stayed.
    const probe = await probePackets(server.url('/cam.ts'), 1);
    assert.ok(probe.packets.length > 0, 'the reader was served');
    await waitFor('OnRead and OnReadEnd POSTs', () => receiver.events.some((e) => e.type === 'read-end'));
    const read = receiver.events.find((e) => e.type === 'read');
    const readEnd = receiver.events.find((e) => e.type === 'read-end');
    assert.equal(read?.feed, 'cam');
    assert.equal(read?.protocol, 'http');
    assert.equal(read?.remoteAddress, '127.0.0.1');
    assert.ok((readEnd?.durationMs ?? -1) >= 0, JSON.stringify(readEnd));
    assert.ok(receiver.requests() >= 3, 'the POST answered 503 was sent again');

    // The publisher leaves: OnUnpublish of that feed only, with the reason.
    await pub.stop();
    await waitFor('the OnUnpublish program', () => existsSync(join(dir, 'unpublish-cam.env')));
    const unpublished = envFile(join(dir, 'unpublish-cam.env'));
    assert.equal(unpublished['FEEDCAST_EVENT'], 'unpublish');
    assert.ok((unpublished['FEEDCAST_REASON'] ?? '') !== '', 'the reason is given');

    // The dashboard saw the same story, in order, for its feed only.
    await waitFor('the events on /api/v1/events', () => stream.events.some((e) => e.type === 'unpublish'));
    const types = stream.events.map((e) => e.type);
    assert.deepEqual(
      types.filter((ty) => ty !== 'read' && ty !== 'read-end'),
      ['publish', 'unpublish'],
      types.join(','),
    );
    assert.ok(
      types.indexOf('read') > types.indexOf('publish') && types.indexOf('read-end') < types.indexOf('unpublish'),
      types.join(','),
    );
    const ids = stream.events.map((e) => Number(e.id));
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      'ids increase',
    );

    // A dashboard that reconnects with Last-Event-ID gets what it missed.
    const firstId = ids[0] ?? 0;
    const replay = sse(t, server.url(`/api/v1/events?feed=cam&since=${firstId}`));
    assert.equal(await replay.status, 200);
    await waitFor('the replayed events', () => replay.events.some((e) => e.type === 'unpublish'));
    assert.ok(!replay.events.some((e) => Number(e.id) <= firstId), 'only events after Last-Event-ID');
  });

  test('a hook that hangs is killed at HookTimeout, one that cannot start is reported; the feed is not held up', async (t) => {
    const lines: LogLine[] = [];
    const server = await startTestServer(
      t,
      'HookTimeout 0.3\nOnPublish /bin/sleep 30\nOnPublish no-such-program-feedcast\n<Feed cam.ffm>\n</Feed>\n',
      { log: recordingLogger(lines) },
    );
    const pub = publish(server.url('/cam.ffm'), { seconds: 60 });
    t.after(() => pub.stop());
    // The feed serves while its hooks hang.
    const probe = await probePackets(server.url('/cam.ts'), 1);
    assert.ok(probe.packets.length > 0);
    await waitFor('both hooks to fail', () => lines.filter((l) => /publish hook failed/.test(l.msg)).length === 2);
    const messages = lines.filter((l) => /publish hook failed/.test(l.msg)).map((l) => l.msg);
    assert.ok(
      messages.some((m) => /killed after HookTimeout \(300 ms\)/.test(m)),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => /could not start no-such-program-feedcast/.test(m)),
      messages.join('\n'),
    );
    const metrics = await (await fetch(server.url('/metrics'))).text();
    assert.match(metrics, /feedcast_hooks_total\{result="failed"\} 2/);
  });

  test('/api/v1/events refuses unknown event types and other methods with a precise answer', async (t) => {
    const server = await startTestServer(t, '<Feed cam.ffm>\n</Feed>\n');
    const bad = await fetch(server.url('/api/v1/events?type=publish,explode'));
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /unknown event type "explode": use publish, unpublish/);
    const post = await fetch(server.url('/api/v1/events'), { method: 'POST' });
    assert.equal(post.status, 405);
  });
});
