// The fixed cost of one feed (issue 26), A/B: several Feedcast servers run side by side, each with
// the bench clip published over RTMP (ffmpeg -re -stream_loop -1 -c copy, as bench/peers.ts does)
// and its own count of RTMP readers (bench/flv-readers.ts), and the CPU of each server (utime and
// stime from /proc) is taken over the same window. Side by side, the servers share one machine
// state, so on a shared machine their ratio means something where an absolute figure does not.
//
//   npx tsx bench/fixed-cost.ts VARIANT [VARIANT ...] [--readers N] [--seconds S] [--rounds R]
//     [--warmup S] [--node-args "FLAGS"]
//
// VARIANT is DIR[@harness][:READERS]. DIR holds a compiled Feedcast laid out as bench/peers.ts lays
// out .bench-out (DIR/dist/main.js, and DIR/package.json, web, assets, build as links or copies),
// inside the checkout so that node_modules resolves. Without @harness the server gets the config
// bench/peers.ts writes (HTTP, RTMP, RTSP and SRT listening, feed1 declared); with @harness the
// shared harness's (HTTP and RTMP only, DynamicFeeds). READERS overrides --readers (default 1).
// --warmup is the time between the readers' start and the window (default 5 s): the JIT keeps
// warming for minutes at these rates (docs/performance.md, "The fixed cost of a feed"), so compare
// variants at the same age. --node-args adds node flags to every server (e.g. --cpu-prof
// --cpu-prof-dir=DIR: the servers then stop with SIGINT so that they write their profiles).

import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { CLIP_FLV, CLK_TCK, freePorts, prepareClip, procUserSys, ROOT, say, track } from './bench-util.js';

const USAGE =
  'usage: fixed-cost.ts DIR[@harness][:READERS] [...] [--readers N] [--seconds S] [--rounds R] [--warmup S] [--node-args "FLAGS"]';

interface Variant {
  /** As given on the command line: the name in the report. */
  label: string;
  dir: string;
  harnessConfig: boolean;
  readers: number | undefined;
}

interface Args {
  variants: Variant[];
  readers: number;
  seconds: number;
  rounds: number;
  warmupSec: number;
  nodeArgs: string[];
}

function parseVariant(spec: string): Variant {
  const m = /^([^@:]+)(@harness)?(?::(\d+))?$/.exec(spec);
  if (m === null) throw new Error(`${USAGE}\nnot a variant: ${spec}`);
  return {
    label: spec,
    dir: resolve(m[1] ?? ''),
    harnessConfig: m[2] !== undefined,
    readers: m[3] !== undefined ? Number(m[3]) : undefined,
  };
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { variants: [], readers: 1, seconds: 15, rounds: 3, warmupSec: 5, nodeArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i] ?? '';
    const next = (): string => argv[++i] ?? '';
    if (v === '--readers') a.readers = Number(next());
    else if (v === '--seconds') a.seconds = Number(next());
    else if (v === '--rounds') a.rounds = Number(next());
    else if (v === '--warmup') a.warmupSec = Number(next());
    else if (v === '--node-args')
      a.nodeArgs = next()
        .split(/\s+/)
        .filter((s) => s !== '');
    else a.variants.push(parseVariant(v));
  }
  if (a.variants.length === 0) throw new Error(USAGE);
  return a;
}

/** The flags on bin/feedcast.js's first line, which bench/peers.ts passes too. */
function productNodeArgs(): string[] {
  const first = readFileSync(join(ROOT, 'bin/feedcast.js'), 'utf8').split('\n', 1)[0] ?? '';
  return (/^#!.*\bnode((?:\s+--\S+)*)\s*$/.exec(first)?.[1] ?? '').split(/\s+/).filter((s) => s !== '');
}

interface Running {
  variant: Variant;
  server: ChildProcess;
  others: ChildProcess[];
  tmp: string;
}

async function waitPort(port: number, server: ChildProcess): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (server.exitCode !== null) throw new Error(`the server exited (${server.exitCode}) before listening on ${port}`);
    const open = await new Promise<boolean>((done) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        done(true);
      });
      s.once('error', () => done(false));
    });
    if (open) return;
    await delay(50);
  }
  throw new Error(`port ${port} never opened`);
}

function configFor(variant: Variant, ports: { http: number; rtmp: number; rtsp: number; srt: number }): string {
  const listeners = variant.harnessConfig
    ? ['RTSPPort 0', 'DynamicFeeds on']
    : [`RTSPPort ${ports.rtsp}`, 'RTSPBindAddress 127.0.0.1', `SRTPort ${ports.srt}`, 'SRTBindAddress 127.0.0.1'];
  return [
    `HTTPPort ${ports.http}`,
    'HTTPBindAddress 127.0.0.1',
    `RTMPPort ${ports.rtmp}`,
    'RTMPBindAddress 127.0.0.1',
    ...listeners,
    'MaxClients 5000',
    'MaxHTTPConnections 5000',
    'MaxConnectionsPerAddress 0',
    'MaxBandwidth 10000000',
    ...(variant.harnessConfig ? [] : ['<Feed feed1.ffm>', '</Feed>']),
    '',
  ].join('\n');
}

async function start(variant: Variant, args: Args): Promise<Running> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'feedcast-fixed-'));
  const [http = 0, rtmp = 0, rtsp = 0, srt = 0] = await freePorts(4);
  const conf = join(tmp, 'feedcast.conf');
  writeFileSync(conf, configFor(variant, { http, rtmp, rtsp, srt }));
  const server = track(
    spawn(process.execPath, [...productNodeArgs(), ...args.nodeArgs, join(variant.dir, 'dist/main.js'), '-f', conf], {
      cwd: tmp,
      stdio: 'ignore',
      env: { ...process.env, FEEDCAST_LOG_FORMAT: 'json', FEEDCAST_LOG_LEVEL: 'warn' },
    }),
  );
  const running: Running = { variant, server, others: [], tmp };
  await waitPort(rtmp, server);
  const url = `rtmp://127.0.0.1:${rtmp}/live/feed1`;
  // prettier-ignore
  running.others.push(track(spawn('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-nostats', '-re', '-stream_loop', '-1', '-i', CLIP_FLV,
    '-c', 'copy', '-f', 'flv', '-flvflags', 'no_duration_filesize', url,
  ], { stdio: 'ignore' })));
  await delay(2000); // the feed is up (tracks known) before the readers ask for it
  const readers = variant.readers ?? args.readers;
  if (readers > 0) {
    const lifetimeSec = args.warmupSec + args.seconds + 20;
    running.others.push(
      track(
        spawn(
          process.execPath,
          ['--import', 'tsx', join(ROOT, 'bench/flv-readers.ts'), url, String(readers), String(lifetimeSec)],
          {
            cwd: ROOT,
            stdio: 'ignore',
          },
        ),
      ),
    );
  }
  return running;
}

function stop(r: Running): void {
  for (const c of [...r.others, r.server]) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(r.tmp, { recursive: true, force: true });
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

const pct = (x: number): string => x.toFixed(2);

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  await prepareClip();
  const profiling = args.nodeArgs.some((a) => a.startsWith('--cpu-prof'));
  const results = new Map<string, { cpu: number[]; user: number[]; sys: number[] }>();
  for (let round = 0; round < args.rounds; round++) {
    // The start order alternates, so that no variant always starts first.
    const order = round % 2 === 0 ? args.variants : [...args.variants].reverse();
    const running: Running[] = [];
    try {
      for (const v of order) running.push(await start(v, args));
      await delay(args.warmupSec * 1000);
      const before = running.map((r) => procUserSys(r.server.pid));
      const t0 = performance.now();
      await delay(args.seconds * 1000);
      const seconds = (performance.now() - t0) / 1000;
      running.forEach((r, i) => {
        const a = before[i];
        const b = procUserSys(r.server.pid);
        if (a === undefined || b === undefined) throw new Error(`${r.variant.label}: the server exited during the window`);
        const user = ((b.user - a.user) / CLK_TCK / seconds) * 100;
        const sys = ((b.sys - a.sys) / CLK_TCK / seconds) * 100;
        const e = results.get(r.variant.label) ?? { cpu: [], user: [], sys: [] };
        e.cpu.push(user + sys);
        e.user.push(user);
        e.sys.push(sys);
        results.set(r.variant.label, e);
        console.log(`round ${round + 1} ${r.variant.label}: CPU ${pct(user + sys)}% (user ${pct(user)}, sys ${pct(sys)})`);
      });
      console.log(`  load average ${os.loadavg()[0]?.toFixed(2)}`);
    } finally {
      if (profiling) {
        for (const r of running) r.server.kill('SIGINT');
        await delay(2000);
      }
      for (const r of running) stop(r);
    }
  }
  for (const [label, e] of results) {
    say(
      `${label}: median CPU ${pct(median(e.cpu))}% (user ${pct(median(e.user))}, sys ${pct(median(e.sys))}) of ${e.cpu.map(pct).join(', ')}`,
    );
  }
}

await main();
