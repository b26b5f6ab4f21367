// `npm run bench:relay`: the delay a cluster relay hop adds, and the first frame on a cold edge (issue 20).
//
//   npm run bench:relay                  a 20 s delay window, 5 cold starts of each kind
//   BENCH_SECONDS=30 BENCH_COLD_RUNS=8 npm run bench:relay
//   BENCH_FEEDCAST_MAIN=/other/tree/src/main.ts npm run bench:relay   (another build: before/after)
//
// What it does (docs/performance.md, "Cluster relays"):
//  1. Starts redis-server (Debian's, no persistence) on a free port of 127.0.0.1 and three Feedcast nodes as
//     child processes, each on its own loopback address: origin (127.0.0.2), mid (127.0.0.3) and leaf
//     (127.0.0.4, `RelayVia mid`), so a leaf reader makes two hops: origin -> mid -> leaf.
//  2. Publishes the bench clip (720p30 H.264 1.9 Mb/s + AAC, bench-util.ts) to the origin with
//     `ffmpeg -re -stream_loop -1 ... -c copy -f mpegts http://origin/cam.ffm`.
//  3. Delay per hop: this process reads /cam.ts of the three nodes at once, demuxes each (Feedcast's
//     TsDemuxer) and notes when each video frame (known by its bytes) is complete on each. mid − origin is
//     what the first hop adds, leaf − mid the second. Same machine, same clock: no clock sync involved. The
//     nodes' own figure (GET /api/v1/cluster, localRelays.delayMs: mark-based, median) is printed beside.
//     The same frames' DTS on mid and leaf minus on the origin shows whether the nodes keep one timeline (0).
//  4. Cold edge: with no relay running and the feed gone from mid and leaf (RelayIdleTimeout and
//     DynamicFeedTimeout 1 s), a reader asks mid (one hop) or leaf (two hops) for /cam.ts; time to its first
//     bytes and to its first video frame (a keyframe, demuxed). Repeated BENCH_COLD_RUNS times each; the
//     first of each node is printed apart (a freshly started node's first relay pays every first run).
//  5. Prints a table, writes .bench-out/relay-<date>.json, stops everything it started (by PID).

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { TsDemuxer } from '../src/formats/mpegts/ts-demuxer.js';
import type { Frame } from '../src/media/frame.js';
import { alive, CLIP, freePort, OUT, prepareClip, round, ROOT, say, sleep, stopChild, track } from './bench-util.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 20);
const COLD_RUNS = Number(process.env['BENCH_COLD_RUNS'] ?? 5);
const MAIN = process.env['BENCH_FEEDCAST_MAIN'] ?? join(ROOT, 'src/main.ts');
const REDIS = process.env['FEEDCAST_REDIS_SERVER'] ?? 'redis-server';

interface Node {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  /** Its JSON log lines since `sinceMs` (wall clock) with one of `msgs`. */
  readonly logSince: (sinceMs: number, msgs: ReadonlySet<string>) => { atMs: number; msg: string }[];
}

/** The steps of a cold start each node logs (cluster/relay.ts, feed/feed-manager.ts, protocols/http/from-feed.ts). */
const STEPS: ReadonlyMap<string, string> = new Map([
  ['feed made for a relay from another node', 'asked'],
  ['relay: serving a node', 'serves'],
  ['relay: relaying', 'response'],
  ['relay: first frame', 'first frame'],
]);

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function startRedis(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = track(
    spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  await waitUntil('redis-server', () => out.includes('Ready to accept connections') || !alive(child), 30_000);
  if (!alive(child)) throw new Error(`redis-server did not start:\n${out}`);
  return { url: `redis://127.0.0.1:${port}/0`, child };
}

async function startNode(dir: string, redisUrl: string, name: string, address: string, extra: string[] = []): Promise<Node> {
  const port = await freePort();
  const url = `http://${address}:${port}`;
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    [
      `HTTPPort ${port}`,
      `HTTPBindAddress ${address}`,
      `ClusterRedis ${redisUrl}`,
      `NodeName ${name}`,
      `NodeURL ${url}`,
      'NodeTTL 3',
      'RelayIdleTimeout 1',
      'DynamicFeeds on',
      'DynamicFeedTimeout 1',
      ...extra,
      '',
    ].join('\n'),
  );
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', MAIN, '-f', conf], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FEEDCAST_LOG_FORMAT: 'json', FEEDCAST_RTMP_PORT: '0', FEEDCAST_RTSP_PORT: '0' },
    }),
  );
  let out = '';
  const lines: { atMs: number; msg: string }[] = [];
  let partial = '';
  const onData = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000);
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (!line.startsWith('{')) continue;
      try {
        const record = JSON.parse(line) as { time?: string; msg?: string };
        if (record.msg !== undefined && STEPS.has(record.msg))
          lines.push({ atMs: Date.parse(record.time ?? ''), msg: record.msg });
      } catch {
        // not a log line
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  await waitUntil(`node ${name}`, () => /"msg":"ready"/.test(out) || !alive(child), 60_000);
  if (!alive(child)) throw new Error(`node ${name} did not start:\n${out}`);
  return { name, url, child, logSince: (sinceMs, msgs) => lines.filter((l) => l.atMs >= sinceMs && msgs.has(l.msg)) };
}

async function json<T>(url: string): Promise<T> {
  const res = await fetch(url);
  return (await res.json()) as T;
}

interface ClusterView {
  nodes: { name: string }[];
  feeds: { feed: string; node: string }[];
  localRelays: { feed: string; from: string; delayMs?: number }[];
}

/** A reader of `url` in this process: each complete video frame, by its bytes, with the time it was complete. */
interface TsReader {
  readonly startedAt: number;
  firstBytesAt: number | undefined;
  firstFrameAt: number | undefined;
  /** Arrival times of each video frame (by its bytes: the looping clip repeats them every 10 s), and its DTS. */
  readonly videoAt: Map<string, { atMs: number; dts90k: number }[]>;
  stop(): void;
}

function frameId(frame: Frame): string {
  const tail = frame.data.subarray(Math.max(0, frame.data.length - 512));
  return `${frame.data.length}:${createHash('sha1').update(tail).digest('hex')}`;
}

function readTs(url: string, keep: boolean): TsReader {
  let videoId: number | undefined;
  const reader: TsReader = {
    startedAt: performance.now(),
    firstBytesAt: undefined,
    firstFrameAt: undefined,
    videoAt: new Map(),
    stop: () => req.destroy(),
  };
  const demuxer = new TsDemuxer({
    onTracks: (tracks) => (videoId = tracks.find((t) => t.kind === 'video')?.id),
    onFrame: (frame) => {
      if (frame.trackId !== videoId) return;
      const now = performance.now();
      reader.firstFrameAt ??= now;
      if (!keep) return;
      const id = frameId(frame);
      const seen = { atMs: now, dts90k: frame.dts90k };
      const times = reader.videoAt.get(id);
      if (times === undefined) reader.videoAt.set(id, [seen]);
      else times.push(seen);
    },
  });
  const req: ClientRequest = request(url, { agent: false }, (res) => {
    res.on('data', (chunk: Buffer) => {
      reader.firstBytesAt ??= performance.now();
      demuxer.push(chunk);
    });
  });
  req.on('error', () => undefined);
  req.end();
  return reader;
}

function stats(values: number[]): { n: number; p50: number; p95: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { n: s.length, p50: round(at(0.5)), p95: round(at(0.95)), max: round(s.at(-1) ?? NaN) };
}

/**
 * Per frame seen by both readers: when `later` had it complete minus when `earlier` had the same frame (its
 * arrival nearest in time: the clip's copies are 10 s apart), in ms; and the frame's DTS on `later` minus its
 * DTS on `earlier`, in ms (0: the nodes keep one timeline; the 33-bit wrap of TS times is left out).
 */
function hopDelays(earlier: TsReader, later: TsReader): { delays: number[]; timeline: number[] } {
  const delays: number[] = [];
  const timeline: number[] = [];
  for (const [id, times] of later.videoAt) {
    const before = earlier.videoAt.get(id);
    if (before === undefined) continue;
    for (const seen of times) {
      const nearest = before.reduce((best, t) => (Math.abs(seen.atMs - t.atMs) < Math.abs(seen.atMs - best.atMs) ? t : best));
      if (Math.abs(seen.atMs - nearest.atMs) >= 5000) continue;
      delays.push(seen.atMs - nearest.atMs);
      timeline.push((seen.dts90k - nearest.dts90k) / 90);
    }
  }
  return { delays, timeline };
}

interface ColdStart {
  firstBytesMs: number;
  firstFrameMs: number;
  /** What each node logged, ms after the request: `leaf asked 3`, `mid response 40` ... */
  steps: string[];
}

/** A cold start of a reader of `node`, with `others` between it and `origin` (whose log is read too). */
async function coldStart(node: Node, others: Node[], origin: Node): Promise<ColdStart> {
  // Cold: no relay of cam and no feed cam on the node read (nor on the nodes between it and the origin).
  for (const n of [node, ...others]) {
    await waitUntil(
      `${n.name} to have no relay and no feed cam`,
      async () => {
        const [cluster, feeds] = await Promise.all([
          json<ClusterView>(`${n.url}/api/v1/cluster`),
          json<{ feeds: { key: string }[] }>(`${n.url}/api/v1/feeds`),
        ]);
        return cluster.localRelays.length === 0 && !feeds.feeds.some((f) => f.key === 'cam');
      },
      60_000,
    );
  }
  const askedAt = Date.now();
  const reader = readTs(`${node.url}/cam.ts`, false);
  await waitUntil(`a first frame from ${node.name}`, () => reader.firstFrameAt !== undefined, 30_000);
  reader.stop();
  const keys = new Set(STEPS.keys());
  const steps = [node, ...others, origin]
    .flatMap((n) => n.logSince(askedAt - 5, keys).map((l) => ({ ...l, node: n.name })))
    .sort((a, b) => a.atMs - b.atMs)
    .map((l) => `${l.node} ${STEPS.get(l.msg) ?? l.msg} ${l.atMs - askedAt}`);
  return {
    firstBytesMs: round((reader.firstBytesAt ?? NaN) - reader.startedAt),
    firstFrameMs: round((reader.firstFrameAt ?? NaN) - reader.startedAt),
    steps,
  };
}

async function main(): Promise<void> {
  await prepareClip();
  const dir = mkdtempSync(join(os.tmpdir(), 'feedcast-bench-relay-'));
  const started: ChildProcess[] = [];
  try {
    const redis = await startRedis();
    started.push(redis.child);
    const origin = await startNode(dir, redis.url, 'origin', '127.0.0.2');
    const mid = await startNode(dir, redis.url, 'mid', '127.0.0.3');
    const leaf = await startNode(dir, redis.url, 'leaf', '127.0.0.4', ['RelayVia mid']);
    started.push(origin.child, mid.child, leaf.child);
    const publisher = track(
      spawn(
        'ffmpeg',
        ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-stream_loop', '-1', '-i', CLIP, '-c', 'copy'].concat([
          '-f',
          'mpegts',
          `${origin.url}/cam.ffm`,
        ]),
        { stdio: ['ignore', 'ignore', 'pipe'] },
      ),
    );
    started.push(publisher);
    await waitUntil(
      'the leaf to know the three nodes and cam',
      async () => {
        const view = await json<ClusterView>(`${leaf.url}/api/v1/cluster`);
        return view.nodes.length === 3 && view.feeds.some((f) => f.feed === 'cam');
      },
      60_000,
    );

    // Cold starts first (nothing relayed yet), alternating one hop (mid) and two (leaf).
    const cold: { oneHop: ColdStart[]; twoHops: ColdStart[] } = { oneHop: [], twoHops: [] };
    for (let i = 0; i < COLD_RUNS; i++) {
      cold.oneHop.push(await coldStart(mid, [], origin));
      cold.twoHops.push(await coldStart(leaf, [mid], origin));
      say(`cold start ${i + 1}/${COLD_RUNS}: mid ${JSON.stringify(cold.oneHop.at(-1))}`);
      say(`cold start ${i + 1}/${COLD_RUNS}: leaf ${JSON.stringify(cold.twoHops.at(-1))}`);
    }

    // Delay per hop: three readers at once, SECONDS of frames after a warm-up of 3 s.
    const readers = [origin, mid, leaf].map((n) => readTs(`${n.url}/cam.ts`, true));
    await sleep(3000);
    for (const r of readers) r.videoAt.clear();
    await sleep(SECONDS * 1000);
    const reported = {
      mid: (await json<ClusterView>(`${mid.url}/api/v1/cluster`)).localRelays.find((r) => r.feed === 'cam')?.delayMs,
      leaf: (await json<ClusterView>(`${leaf.url}/api/v1/cluster`)).localRelays.find((r) => r.feed === 'cam')?.delayMs,
    };
    for (const r of readers) r.stop();
    const [atOrigin, atMid, atLeaf] = readers as [TsReader, TsReader, TsReader];
    const [hops1, hops2, hopsBoth] = [hopDelays(atOrigin, atMid), hopDelays(atMid, atLeaf), hopDelays(atOrigin, atLeaf)];
    const hop1 = stats(hops1.delays);
    const hop2 = stats(hops2.delays);
    const both = stats(hopsBoth.delays);
    const timeline = { mid: stats(hops1.timeline), leaf: stats(hopsBoth.timeline) };
    // The first cold start of a freshly started node apart (it pays every first run), the others together.
    const [firstMid, ...laterMid] = cold.oneHop;
    const [firstLeaf, ...laterLeaf] = cold.twoHops;
    const coldMid = {
      bytes: stats(laterMid.map((c) => c.firstBytesMs)),
      frame: stats(laterMid.map((c) => c.firstFrameMs)),
    };
    const coldLeaf = {
      bytes: stats(laterLeaf.map((c) => c.firstBytesMs)),
      frame: stats(laterLeaf.map((c) => c.firstFrameMs)),
    };

    const load = os.loadavg().map((l) => round(l, 2));
    const lines = [
      `Relay bench (${new Date().toISOString()}, load ${load.join(' ')}, ${MAIN})`,
      '',
      '| what | frames / runs | p50 ms | p95 ms | max ms | node reports (median) |',
      '|---|---:|---:|---:|---:|---:|',
      `| delay added, hop 1 (origin -> mid) | ${hop1.n} | ${hop1.p50} | ${hop1.p95} | ${hop1.max} | ${reported.mid ?? '-'} |`,
      `| delay added, hop 2 (mid -> leaf) | ${hop2.n} | ${hop2.p50} | ${hop2.p95} | ${hop2.max} | ${reported.leaf ?? '-'} |`,
      `| delay added, both hops (origin -> leaf) | ${both.n} | ${both.p50} | ${both.p95} | ${both.max} | |`,
      `| timeline: a frame's DTS on mid - on origin | ${timeline.mid.n} | ${timeline.mid.p50} | ${timeline.mid.p95} | ${timeline.mid.max} | |`,
      `| timeline: a frame's DTS on leaf - on origin | ${timeline.leaf.n} | ${timeline.leaf.p50} | ${timeline.leaf.p95} | ${timeline.leaf.max} | |`,
      `| first cold start of a fresh node, 1 hop: first bytes / frame | 1 | ${firstMid?.firstBytesMs ?? '-'} / ${firstMid?.firstFrameMs ?? '-'} | | | |`,
      `| first cold start of a fresh node, 2 hops: first bytes / frame | 1 | ${firstLeaf?.firstBytesMs ?? '-'} / ${firstLeaf?.firstFrameMs ?? '-'} | | | |`,
      `| cold edge, 1 hop: first bytes | ${coldMid.bytes.n} | ${coldMid.bytes.p50} | ${coldMid.bytes.p95} | ${coldMid.bytes.max} | |`,
      `| cold edge, 1 hop: first frame | ${coldMid.frame.n} | ${coldMid.frame.p50} | ${coldMid.frame.p95} | ${coldMid.frame.max} | |`,
      `| cold edge, 2 hops: first bytes | ${coldLeaf.bytes.n} | ${coldLeaf.bytes.p50} | ${coldLeaf.bytes.p95} | ${coldLeaf.bytes.max} | |`,
      `| cold edge, 2 hops: first frame | ${coldLeaf.frame.n} | ${coldLeaf.frame.p50} | ${coldLeaf.frame.p95} | ${coldLeaf.frame.max} | |`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    mkdirSync(OUT, { recursive: true });
    const file = join(OUT, `relay-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ load, main: MAIN, hop1, hop2, both, timeline, reported, cold }, null, 2) + '\n');
    say(`wrote ${file}`);
  } finally {
    for (const child of started.reverse()) await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench relay failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
