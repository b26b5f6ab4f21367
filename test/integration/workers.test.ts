// Issue 20 part 4 (`Workers N`, docs/cluster.md "Workers"): real processes. A Feedcast started with Workers 2 is
// a primary and two workers on the same ports; ffmpeg publishes over RTMP (to whichever worker accepts it),
// ffprobe reads over HTTP-FLV, HLS, RTMP and RTSP whichever worker accepts the reader, both workers serve
// readers, WHEP is answered through the worker that does not own WebRTC; SIGHUP reaches every worker; a killed
// worker is started again; SIGTERM stops them all.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { makeClip } from '../helpers/on-demand-source.js';
import { alive } from '../helpers/processes.js';
import { probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { RtmpTestClient, statusCode, statusDescription } from '../helpers/rtmp-client.js';
import { RawRtspClient } from '../helpers/rtsp-tools.js';
import { freePorts, postBytes, waitFor } from '../helpers/test-server.js';
import { loopbackPeer, negotiate } from '../helpers/werift-peer.js';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;
const WHEP_CLIENT = new URL('../helpers/whep-client-child.ts', import.meta.url).pathname;

interface LogLine {
  msg?: string;
  worker?: number;
  pids?: number[];
  [field: string]: unknown;
}

interface Workers {
  readonly child: ChildProcess;
  readonly base: string;
  readonly conf: string;
  readonly ports: { http: number; rtmp: number; rtsp: number };
  readonly lines: () => LogLine[];
  readonly exited: Promise<unknown>;
}

/** Which workers a summed answer (/api/v1/feeds, connections, server) holds. */
interface WorkersAnswered {
  count: number;
  answered: number[];
  missing: { worker: number; reason: string }[];
}

interface ClusterView {
  registry: string;
  node: { name: string; url: string };
  nodes: { name: string; url: string }[];
  feeds: { feed: string; node: string }[];
  localRelays: { feed: string; from: string; state: string }[];
}

/** Starts `feedcast -f CONF` with Workers 2 (JSON logs); resolves once the primary logs that every worker serves. */
async function startWorkers(t: TestContext, extra = ''): Promise<Workers> {
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-workers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [http, rtmp, rtsp] = (await freePorts(3)) as [number, number, number];
  const conf = join(dir, 'server.conf');
  writeFileSync(
    conf,
    [
      `HTTPPort ${http}`,
      'HTTPBindAddress 127.0.0.1',
      `RTMPPort ${rtmp}`,
      'RTMPBindAddress 127.0.0.1',
      `RTSPPort ${rtsp}`,
      'RTSPBindAddress 127.0.0.1',
      'Workers 2',
      'DynamicFeeds on',
      'PublisherGracePeriod 3',
      extra,
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '-f', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FEEDCAST_LOG_FORMAT: 'json', FEEDCAST_EXIT_ON_UNHANDLED: '1' },
  });
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const lines = (): LogLine[] =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as LogLine];
        } catch {
          return [];
        }
      });
  await waitFor('both workers to serve', () => lines().some((l) => l.msg === 'workers ready') || child.exitCode !== null, 90_000);
  if (child.exitCode !== null) throw new Error(`feedcast exited before its workers were ready:\n${output}`);
  return { child, base: `http://127.0.0.1:${http}`, conf, ports: { http, rtmp, rtsp }, lines, exited };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = await res.text();
  assert.equal(res.status, 200, `${url}: ${body}`);
  return JSON.parse(body) as T;
}

/** Every worker's internal URL (each serves its own API there), once the map any worker answers with lists both. */
async function workerUrls(base: string): Promise<Map<string, string>> {
  let nodes: ClusterView['nodes'] = [];
  await waitFor(
    'both workers in the map',
    async () => {
      nodes = (await getJson<ClusterView>(`${base}/api/v1/cluster`)).nodes;
      return nodes.length === 2;
    },
    30_000,
  );
  return new Map(nodes.map((n) => [n.name, n.url]));
}

/** An HTTP reader on its own connection, reading until the test ends; resolves once bytes came. */
async function holdReader(t: TestContext, url: string): Promise<void> {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  const body = res.body?.getReader();
  assert.ok(body !== undefined);
  await body.read();
  let reading = true;
  const drained = (async () => {
    while (reading && !(await body.read()).done);
  })().catch(() => undefined);
  t.after(async () => {
    reading = false;
    await body.cancel().catch(() => undefined);
    await drained;
  });
}

const skip = skipWithoutFfmpeg();

describe('Workers 2: one machine, two processes, the same ports', { skip, timeout: 900_000 }, () => {
  test('a feed published over RTMP on one worker decodes over HTTP-FLV, HLS, RTMP and RTSP from both; WHEP is forwarded to worker 1', async (t) => {
    const server = await startWorkers(t);
    const publisher = publish(`rtmp://127.0.0.1:${server.ports.rtmp}/live/cam1`, { format: 'flv', seconds: 240 });
    t.after(() => publisher.stop());
    await waitFor(
      'cam1 in the local registry',
      async () => (await getJson<ClusterView>(`${server.base}/api/v1/cluster`)).feeds.some((f) => f.feed === 'cam1'),
      60_000,
    );
    const urls = await workerUrls(server.base);
    assert.deepEqual([...urls.keys()].sort(), ['worker-1', 'worker-2']);
    const view = await getJson<ClusterView>(`${server.base}/api/v1/cluster`);
    assert.equal(view.registry, 'workers');
    const origin = view.feeds.find((f) => f.feed === 'cam1')?.node;
    assert.ok(origin === 'worker-1' || origin === 'worker-2', `cam1 is published on a worker (${String(origin)})`);

    // HTTP-FLV readers, each on its own connection: the primary hands them to the workers in turn.
    // Any worker lists every worker's connections, each with its worker (the summed view).
    const readersOn = async (worker: string): Promise<number> => {
      const { connections } = await getJson<{ connections: { role: string; target: string; worker: number }[] }>(
        `${server.base}/api/v1/connections`,
      );
      return connections.filter((c) => c.role === 'reader' && c.target === 'cam1.flv' && `worker-${c.worker}` === worker).length;
    };
    for (let i = 0; i < 10; i++) {
      await holdReader(t, `${server.base}/cam1.flv`);
      if ((await readersOn('worker-1')) > 0 && (await readersOn('worker-2')) > 0) break;
    }
    const [r1, r2] = [await readersOn('worker-1'), await readersOn('worker-2')];
    assert.ok(r1 > 0 && r2 > 0, `both workers serve HTTP-FLV readers (worker 1: ${r1}, worker 2: ${r2})`);

    // One view of the whole server, whichever worker answers (issue 20 part 4, gap 2: each answered for itself):
    // both workers' connections, the feed's viewers summed (the relay between workers not counted), /metrics
    // with both workers' series labelled by worker.
    for (const at of [server.base, urls.get('worker-1') ?? '', urls.get('worker-2') ?? '']) {
      const connections = await getJson<{ connections: { worker: number }[]; workers: WorkersAnswered }>(
        `${at}/api/v1/connections`,
      );
      assert.deepEqual(connections.workers, { count: 2, answered: [1, 2], missing: [] }, at);
      assert.deepEqual([...new Set(connections.connections.map((c) => c.worker))].sort(), [1, 2], at);
      const { feeds } = await getJson<{ feeds: { key: string; worker: number | null; readers: number }[] }>(`${at}/api/v1/feeds`);
      const cam1 = feeds.find((f) => f.key === 'cam1');
      assert.equal(cam1?.worker, Number(origin.slice('worker-'.length)), `${at}: cam1's origin worker`);
      assert.equal(cam1?.readers, r1 + r2, `${at}: cam1's viewers on both workers`);
      const server1 = await getJson<{ connections: number; workers: WorkersAnswered }>(`${at}/api/v1/server`);
      assert.ok(server1.connections >= r1 + r2, `${at}: the server's connections are both workers'`);
      const metrics = parsePrometheusTextFormat(await (await fetch(`${at}/metrics`)).text());
      const series = (name: string): { labels?: Record<string, string>; value?: string }[] =>
        metrics.find((f) => f.name === name)?.metrics ?? [];
      assert.deepEqual(
        series('feedcast_worker_up').map((m) => [m.labels?.['worker'], m.value]),
        [
          ['1', '1'],
          ['2', '1'],
        ],
      );
      for (const [worker, readers] of [
        ['1', r1],
        ['2', r2],
      ] as const) {
        const httpReaders = series('feedcast_connections').find(
          (m) => m.labels?.['worker'] === worker && m.labels['protocol'] === 'HTTP' && m.labels['role'] === 'reader',
        );
        assert.ok(Number(httpReaders?.value ?? 0) >= readers, `${at}: worker ${worker}'s HTTP readers in /metrics`);
      }
      const page = await (await fetch(`${at}/stat.html`)).text();
      assert.ok(
        page.includes('<section id="worker-1">') && page.includes('<section id="worker-2">'),
        `${at}: both workers on /stat.html`,
      );
    }
    // The other worker relays cam1 from its origin once, for all its readers.
    const other = origin === 'worker-1' ? 'worker-2' : 'worker-1';
    const relays = (await getJson<ClusterView>(`${urls.get(other) ?? ''}/api/v1/cluster`)).localRelays;
    assert.deepEqual(
      relays.map((r) => [r.feed, r.from]),
      [['cam1', origin]],
    );

    // Each protocol twice, on new connections: the two land on different workers unless others came between.
    const reads = [
      `${server.base}/cam1.flv`,
      `${server.base}/cam1.ts`,
      `${server.base}/cam1/index.m3u8`,
      `rtmp://127.0.0.1:${server.ports.rtmp}/live/cam1`,
      `rtsp://127.0.0.1:${server.ports.rtsp}/cam1`,
    ];
    for (const url of reads) {
      for (let i = 0; i < 2; i++) {
        const probe = await probePackets(url, 2, 90_000);
        assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], url);
        assert.ok(probe.packets.filter((p) => p.codec_type === 'video').length >= 10, `${url}: video decoded`);
      }
    }

    // WHEP through worker 2's own port: worker 2 does not run WebRTC, so it forwards the offer to worker 1.
    const whep = spawnSync(process.execPath, ['--import', 'tsx', WHEP_CLIENT, `${urls.get('worker-2') ?? ''}/cam1/whep`, '1'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const answer = JSON.parse(whep.stdout.trim().split('\n').at(-1) ?? '{}') as { status?: number };
    // Worker 2 runs no WebRTC (WebRTC is off in its config): a 201 with an SDP answer came from worker 1.
    assert.equal(answer.status, 201, `WHEP answered through worker 2: ${whep.stdout} ${whep.stderr}`);
  });

  test('a feed with File published on worker 2 is written to its ring once, by worker 1, which relays it', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-workers-ring-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const server = await startWorkers(t, `<Feed rec.ffm>\n  File ${dir}/rec.ffm\n  FileMaxSize 8M\n</Feed>`);
    const urls = await workerUrls(server.base);
    // Straight to worker 2's own port: the publisher is on worker 2 for sure.
    const publisher = publish(`${urls.get('worker-2') ?? ''}/rec.ffm`, { seconds: 120 });
    t.after(() => publisher.stop());
    type FeedsView = {
      feeds: { key: string; file: { sizeBytes: number } | null; onWorkers: Record<string, { file: boolean } | undefined> }[];
    };
    const rec = async (): Promise<FeedsView['feeds'][number] | undefined> =>
      (await getJson<FeedsView>(`${server.base}/api/v1/feeds`)).feeds.find((f) => f.key === 'rec');
    await waitFor(
      'worker 1 writes the ring of rec',
      async () => {
        const view = await rec();
        return (view?.file?.sizeBytes ?? 0) > 100_000 && view?.onWorkers['1']?.file === true;
      },
      60_000,
    ).catch((err: unknown) => {
      const log = server.lines().filter((l) => l['level'] !== 'debug');
      throw new Error(`${String(err)}; publisher: ${publisher.stderr()}; server: ${JSON.stringify(log.slice(-30))}`);
    });
    assert.equal((await rec())?.onWorkers['2']?.file, false, 'worker 2 has no feed file: it would write the same file');
    const relays = (await getJson<ClusterView>(`${urls.get('worker-1') ?? ''}/api/v1/cluster`)).localRelays;
    assert.deepEqual(
      relays.map((r) => [r.feed, r.from]),
      [['rec', 'worker-2']],
    );
  });

  test('SIGHUP reaches every worker, a Source feed it adds plays on worker 2 and its relay stops after RelayIdleTimeout; a killed worker is started again; SIGTERM stops them all', async (t) => {
    const server = await startWorkers(t, 'RelayIdleTimeout 1\nTranscodeIdleTimeout 1');
    const pids = server.lines().find((l) => l.msg === 'workers ready')?.pids ?? [];
    assert.equal(pids.length, 2);

    // A feed added to the file appears on both workers after SIGHUP; so does a Source feed, whose child runs on
    // worker 1 alone (issue 20 part 4, gap 3: one added by a reload was not registered to worker 1, so worker 2's
    // readers had nothing to relay).
    const clip = await makeClip(t, 'feedcast-workers-clip-');
    writeFileSync(
      server.conf,
      readFileSync(server.conf, 'utf8') + `<Feed added.ffm>\n</Feed>\n<Feed pulled.ffm>\n  Source ${clip}\n</Feed>\n`,
    );
    server.child.kill('SIGHUP');
    await waitFor(
      'both workers reloaded',
      () =>
        new Set(
          server
            .lines()
            .filter((l) => l.msg === 'config reloaded')
            .map((l) => l.worker),
        ).size === 2,
      60_000,
    );
    const urls = await workerUrls(server.base);
    for (const [name, url] of urls) {
      const { feeds } = await getJson<{ feeds: { key: string }[] }>(`${url}/api/v1/feeds`);
      assert.ok(
        feeds.some((f) => f.key === 'added'),
        `${name} has the feed added by the reload`,
      );
    }
    const w2 = urls.get('worker-2') ?? '';
    const pulled = await probePackets(`${w2}/pulled.ts`, 2, 90_000);
    assert.ok(pulled.packets.filter((p) => p.codec_type === 'video').length >= 5, 'worker 2 plays the Source feed of worker 1');
    // RelayIdleTimeout 1 between workers too (it was a fixed 10 s): worker 2's relay ends soon after its reader.
    await waitFor(
      "worker 2's relay of pulled to stop (RelayIdleTimeout 1, not 10 s)",
      async () => (await getJson<ClusterView>(`${w2}/api/v1/cluster`)).localRelays.length === 0,
      8000,
    );

    // kill -9 worker 2: the primary says so and starts it again, and it serves.
    const killed = pids[1] ?? 0;
    process.kill(killed, 'SIGKILL');
    // Until it serves again, the summed view names it as missing rather than leaving it out.
    await waitFor(
      'worker 2 named missing in the summed view',
      async () => {
        const view = await getJson<{ workers: WorkersAnswered }>(`${urls.get('worker-1') ?? ''}/api/v1/connections`);
        return view.workers.answered.join() === '1' && view.workers.missing.some((m) => m.worker === 2);
      },
      20_000,
    );
    await waitFor('worker 2 started again', () => server.lines().some((l) => l.msg === 'workers: worker 2 serves again'), 60_000);
    assert.ok(
      server.lines().some((l) => l.msg === 'workers: worker 2 died; starting it again' && l['signal'] === 'SIGKILL'),
      'the primary logs the death',
    );
    const after = await workerUrls(server.base);
    assert.notEqual(after.get('worker-2'), urls.get('worker-2'), 'the new worker 2 has a new internal port');
    const res = await fetch(`${after.get('worker-2') ?? ''}/api/v1/health`);
    assert.equal(res.status, 200);
    await res.text();

    // SIGTERM to the primary: every worker stops, then the primary, with status 0.
    const now = (await getJson<{ nodes: unknown[] }>(`${server.base}/api/v1/cluster`)).nodes.length;
    assert.equal(now, 2);
    const workersNow = server.lines().filter((l) => l.msg === 'ready').length;
    assert.ok(workersNow >= 3, 'three workers were ready in all (1, 2, and 2 again)');
    server.child.kill('SIGTERM');
    const [code] = (await server.exited) as [number | null];
    assert.equal(code, 0);
    assert.equal(alive(pids[0] ?? 0), false, 'worker 1 stopped');
    assert.equal(alive(killed), false);
    assert.equal(
      server.lines().filter((l) => l.msg === 'stopped' && l.worker !== undefined).length,
      2,
      'both workers stopped cleanly',
    );
  });

  test('one publisher per feed across the workers: the second is refused as on one process (HTTP, RTMP, RTSP, WHIP); the slot is freed when it leaves or its worker dies', async (t) => {
    // Issue 20 part 4, gap 1: two publishers of one feed on two workers were both let in (the last one
    // registered became the origin). Now the primary arbitrates: first claim wins, the rest get the usual refusal.
    const server = await startWorkers(t);
    const urls = await workerUrls(server.base);
    const w1 = urls.get('worker-1') ?? '';
    const w2 = urls.get('worker-2') ?? '';
    // The holder: an HTTP publisher on worker 2 (its own port: certainly there).
    const holder = publish(`${w2}/cam.ffm`, { seconds: 240 });
    t.after(() => holder.stop());
    await waitFor(
      'cam published on worker 2',
      async () =>
        (await getJson<ClusterView>(`${server.base}/api/v1/cluster`)).feeds.some(
          (f) => f.feed === 'cam' && f.node === 'worker-2',
        ),
      60_000,
    );
    const ts = Buffer.alloc(188 * 10, 0x47);

    // HTTP POST: on worker 2 the feed itself refuses; on worker 1 the primary does, in the same words.
    const local = await postBytes(`${w2}/cam.ffm`, ts);
    const remote = await postBytes(`${w1}/cam.ffm`, ts);
    assert.equal(local.status, 409, local.body);
    assert.match(local.body, /^feed cam is busy: already published by http since \d{4}-\d\d-\d\dT[\d:.]+Z\.\nOnly one publisher/);
    assert.deepEqual(remote, local, 'worker 1 refuses with the status and text of worker 2');
    const refusedBy = (msg: string): Set<unknown> =>
      new Set(
        server
          .lines()
          .filter((l) => l.msg === msg)
          .map((l) => l.worker),
      );
    await waitFor('each refusal logged by its worker', () => refusedBy('second publisher refused').size === 2);
    assert.equal(
      server.lines().filter((l) => l.msg === 'second publisher refused').length,
      2,
      'each refusal logged once (the primary does not log it again)',
    );
    const busyText = local.body.split('\n')[0]?.replace(/\.$/, '') ?? '';

    // RTMP publish on the shared port, until both workers have refused one (connections go to them in turn).
    for (let i = 0; i < 6 && refusedBy('rtmp request refused').size < 2; i++) {
      const client = await RtmpTestClient.open('127.0.0.1', server.ports.rtmp);
      t.after(() => client.close());
      await client.connect('live', `rtmp://127.0.0.1:${server.ports.rtmp}/live`);
      const { status } = await client.publish('cam');
      assert.equal(statusCode(status), 'NetStream.Publish.BadName');
      assert.equal(statusDescription(status), `${busyText}. Only one publisher may send to a feed.`);
      await waitFor('the refusal in the log', () => server.lines().filter((l) => l.msg === 'rtmp request refused').length > i);
    }
    assert.deepEqual([...refusedBy('rtmp request refused')].sort(), [1, 2], 'RTMP refused on both workers');

    // RTSP ANNOUNCE, SETUP, RECORD on the shared port: 455 at RECORD, on both workers.
    const recordRefusals = (): Set<unknown> =>
      new Set(
        server
          .lines()
          .filter((l) => l.msg === 'RTSP request refused' && l['method'] === 'RECORD')
          .map((l) => l.worker),
      );
    const rtspUrl = `rtsp://127.0.0.1:${server.ports.rtsp}/cam`;
    for (let i = 0; i < 6 && recordRefusals().size < 2; i++) {
      const c = new RawRtspClient(server.ports.rtsp);
      t.after(() => c.close());
      const sdp = (await c.request('DESCRIBE', rtspUrl)).body;
      assert.equal((await c.request('ANNOUNCE', rtspUrl, { 'Content-Type': 'application/sdp' }, sdp)).status, 200);
      const setup = await c.request('SETUP', `${rtspUrl}/streamid=0`, {
        Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1;mode=record',
      });
      assert.equal(setup.status, 200, setup.body);
      const record = await c.request('RECORD', rtspUrl, { Session: setup.headers.get('session')?.split(';')[0] ?? '' });
      assert.equal(record.status, 455, record.body);
      assert.equal(
        record.body,
        `rtsp: ${busyText}. Only one publisher may send to a feed; retry after 5 s of silence (PublisherTimeout).\n`,
      );
    }
    assert.deepEqual([...recordRefusals()].sort(), [1, 2], 'RTSP RECORD refused on both workers');

    // WHIP runs on worker 1 alone: the primary refuses it there (409, the text WHIP gives on one process).
    const pc = loopbackPeer();
    t.after(() => pc.close());
    pc.addTransceiver('video', { direction: 'sendonly' });
    const whip = await negotiate(pc, `${w1}/cam/whip`);
    assert.equal(whip.status, 409, whip.text);
    assert.match(whip.text, new RegExp(`${busyText.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.`));

    // Worker 2 dies with its publisher: no 'unclaim' comes from it, the primary frees the slot at its death.
    const pid2 = server.lines().find((l) => l.msg === 'workers ready')?.pids?.[1] ?? 0;
    process.kill(pid2, 'SIGKILL');
    await waitFor('worker 2 to be gone', () => !alive(pid2), 30_000);
    const second = publish(`${w1}/cam.ffm`, { seconds: 240 });
    t.after(() => second.stop());
    await waitFor(
      'cam published on worker 1 after worker 2 died',
      async () =>
        (await getJson<ClusterView>(`${w1}/api/v1/cluster`)).feeds.some((f) => f.feed === 'cam' && f.node === 'worker-1'),
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; publisher: ${second.stderr()}`);
    });

    // Its publisher leaves worker 1: the slot is free for worker 2 (started again).
    await second.stop();
    await waitFor('worker 2 started again', () => server.lines().some((l) => l.msg === 'workers: worker 2 serves again'), 60_000);
    const after = await workerUrls(server.base);
    const third = publish(`${after.get('worker-2') ?? ''}/cam.ffm`, { seconds: 240 });
    t.after(() => third.stop());
    await waitFor(
      'cam published on worker 2 again',
      async () =>
        (await getJson<ClusterView>(`${server.base}/api/v1/cluster`)).feeds.some(
          (f) => f.feed === 'cam' && f.node === 'worker-2',
        ),
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; publisher: ${third.stderr()}`);
    });
  });
});
