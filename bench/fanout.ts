// `npm run bench`: the HTTP-FLV fan-out benchmark. One publisher, N readers of the same feed.
//
//   npm run bench                      readers 1,100,500,1000, a 10 s window each
//   npm run bench -- 1,100 5           readers 1 and 100, a 5 s window
//   BENCH_READERS=1,100 BENCH_SECONDS=5 npm run bench
//   (also BENCH_RAMP=connections/s, default 500; BENCH_WARMUP=s, default 2)
//
// What it does (docs/performance.md has the method and the results):
//  1. Prepares once a 10 s 720p30 H.264 + AAC clip at ~2 Mb/s in .bench-out/ (git-ignored), and the
//     bitrate of that clip remuxed to FLV (the reference for "full rate").
//  2. Starts the server (`node --import tsx src/main.ts -f <generated conf>`) on a free port, and a
//     publisher: `ffmpeg -re -stream_loop -1 -i clip.ts -c copy -f mpegts http://…/feed1.ffm`.
//  3. Keeps one probe reader connected in this process the whole time. "Lateness" of a video frame
//     = arrival wall-clock ms − its FLV timestamp; its distribution under load is compared with the
//     probe's while idle (4 s just before each run): that difference is the added delay.
//  4. For each N, runs bench/flv-readers.ts in a separate process (N readers, ramp, warm-up,
//     window) and samples every 500 ms the server's CPU (/proc/PID/stat utime+stime), RSS
//     (/proc/PID/status VmRSS), event-loop thread run/wait time (/proc/PID/schedstat) and accept
//     queue (/proc/net/tcp), plus the generator's, the publisher's and the whole machine's CPU.
//  5. Prints a table, writes .bench-out/fanout-<date>.json, and stops everything it started.

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  CLIP,
  CLK_TCK,
  OUT,
  ROOT,
  children,
  alive,
  freePort,
  machineTicks,
  prepareClip,
  procRssKB,
  procTicks,
  procUserSys,
  round,
  say,
  sleep,
  stopChild,
  track,
  type ClipInfo,
} from './bench-util.js';
import { FlvReader, nowMs, summarize, type Summary } from './flv-reader-core.js';

// ---------------------------------------------------------------------------------------------
// Settings

function listArg(): number[] {
  const raw = process.argv[2] ?? process.env['BENCH_READERS'] ?? '1,100,500,1000';
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1 || n > 4000)) {
    throw new Error(`readers must be a comma-separated list of integers in 1..4000, got "${raw}"`);
  }
  return list;
}

function numSetting(name: string, argv: string | undefined, def: number, min: number, max: number): number {
  const raw = argv ?? process.env[name];
  if (raw === undefined || raw === '') return def;
  const x = Number(raw);
  if (!Number.isFinite(x) || x < min || x > max) throw new Error(`${name} must be a number in ${min}..${max}, got "${raw}"`);
  return x;
}

const READERS = listArg();
const SECONDS = numSetting('BENCH_SECONDS', process.argv[3], 10, 1, 120);
const RAMP = numSetting('BENCH_RAMP', undefined, 500, 10, 100000);
const WARMUP = numSetting('BENCH_WARMUP', undefined, 2, 0, 30);
const IDLE_MS = 4000;

// ---------------------------------------------------------------------------------------------
// Server, publisher, and the server's log

/** Server log lines counted by phase, level and message; the first few warnings and errors kept. */
class LogBook {
  phase = 'startup';
  readonly counts: Record<string, Record<string, number>> = {};
  readonly samples: { phase: string; line: string }[] = [];
  stderrTail = '';

  line(text: string): void {
    let level = 'text';
    let msg = text.slice(0, 80);
    try {
      const rec = JSON.parse(text) as { level?: unknown; msg?: unknown };
      if (typeof rec.level === 'string') level = rec.level;
      if (typeof rec.msg === 'string') msg = rec.msg;
    } catch {
      // not JSON: counted as text
    }
    const key = `${level}: ${msg}`;
    const c = (this.counts[this.phase] ??= {});
    c[key] = (c[key] ?? 0) + 1;
    if (
      (level === 'warn' || level === 'error' || level === 'text') &&
      this.samples.filter((s) => s.line.includes(msg)).length < 3
    ) {
      this.samples.push({ phase: this.phase, line: text.slice(0, 400) });
    }
  }
}

async function startServer(port: number, maxClients: number, book: LogBook): Promise<ChildProcess> {
  const conf = join(OUT, 'fanout.conf');
  // RTMP and RTSP are on by default (1935, 5454): give them free loopback ports, so the bench
  // neither clashes with another server on the machine nor exposes anything.
  const rtmpPort = await freePort();
  const rtspPort = await freePort();
  writeFileSync(
    conf,
    [
      '# Written by bench/fanout.ts',
      `HTTPPort ${port}`,
      'HTTPBindAddress 127.0.0.1',
      `RTMPPort ${rtmpPort}`,
      'RTMPBindAddress 127.0.0.1',
      `RTSPPort ${rtspPort}`,
      'RTSPBindAddress 127.0.0.1',
      `MaxClients ${maxClients}`,
      `MaxHTTPConnections ${maxClients}`,
      '# Every reader comes from 127.0.0.1: no per-address cap (default 64).',
      'MaxConnectionsPerAddress 0',
      '# Default is 1 Gbit/s: 1000 readers of a 2 Mbit/s feed need more.',
      'MaxBandwidth 10000000',
      '<Feed feed1.ffm>',
      '</Feed>',
      '',
    ].join('\n'),
  );
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '-f', conf], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FEEDCAST_LOG_FORMAT: 'json', FEEDCAST_LOG_LEVEL: 'info' },
    }),
  );
  child.stderr?.on('data', (d: Buffer) => (book.stderrTail = (book.stderrTail + d.toString()).slice(-4000)));
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not log "ready" within 60 s\n${book.stderrTail}`)), 60_000);
    lines.on('line', (text) => {
      book.line(text);
      if (text.includes('"msg":"ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited before it was ready (${signal ?? `exit ${code}`}):\n${book.stderrTail}`));
    });
  });
  await ready;
  return child;
}

function startPublisher(port: number): { child: ChildProcess; stderr: () => string } {
  let err = '';
  // prettier-ignore
  const child = track(spawn('ffmpeg', [
    '-hide_banner', '-loglevel', 'warning', '-nostdin', '-nostats',
    '-re', '-stream_loop', '-1', '-i', CLIP,
    '-c', 'copy', '-f', 'mpegts', '-pes_payload_size', '0', '-flush_packets', '1',
    `http://127.0.0.1:${port}/feed1.ffm`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] }));
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return { child, stderr: () => err };
}

// ---------------------------------------------------------------------------------------------
// /proc sampling

function allProcTicks(): Map<number, { comm: string; ticks: number }> {
  const out = new Map<number, { comm: string; ticks: number }>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const d of pids) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      const close = stat.lastIndexOf(')');
      const f = stat.slice(close + 2).split(' ');
      out.set(Number(d), { comm: stat.slice(stat.indexOf('(') + 1, close), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const TCP_COUNTERS = ['ListenOverflows', 'ListenDrops', 'TCPSynRetrans', 'TCPTimeouts', 'TCPReqQFullDrop'] as const;

/** A few TCP counters of this network namespace (/proc/net/netstat), to see accept-queue overflows. */
function tcpCounters(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    const lines = readFileSync('/proc/net/netstat', 'latin1').split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const keys = lines[i]!.split(/\s+/);
      const values = lines[i + 1]!.split(/\s+/);
      if (keys[0] !== 'TcpExt:') continue;
      keys.forEach((k, j) => {
        if ((TCP_COUNTERS as readonly string[]).includes(k)) out[k] = Number(values[j]);
      });
    }
  } catch {
    // not Linux, or no /proc/net: no counters
  }
  return out;
}

/** Connections waiting in the accept queue of the listening socket on 127.0.0.1:port (/proc/net/tcp). */
function acceptQueue(port: number): number | undefined {
  try {
    const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n')) {
      const f = line.trim().split(/\s+/);
      // f[1] local address, f[3] state (0A = LISTEN), f[4] tx_queue:rx_queue (rx = accept backlog)
      if (f[1] === want && f[3] === '0A') return parseInt(f[4]?.split(':')[1] ?? '0', 16);
    }
  } catch {
    // no /proc/net/tcp
  }
  return undefined;
}

/** The main thread's time on a CPU and waiting for one (ns), from /proc/PID/schedstat. */
function schedstat(pid: number | undefined): { run: number; wait: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'latin1').trim().split(/\s+/).map(Number);
    return run === undefined || wait === undefined ? undefined : { run, wait };
  } catch {
    return undefined;
  }
}

interface Sample {
  t: number;
  serverSched: { run: number; wait: number } | undefined;
  acceptQueue: number | undefined;
  all: Map<number, { comm: string; ticks: number }>;
  server: number | undefined;
  serverSys: number | undefined;
  serverRssKB: number | undefined;
  gen: number | undefined;
  genPid: number | undefined;
  pub: number | undefined;
  self: number;
  busy: number;
  irq: number;
}

class Sampler {
  readonly samples: Sample[] = [];
  genPid: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly serverPid: number | undefined,
    private readonly pubPid: number | undefined,
    private readonly port: number,
  ) {}
  start(): void {
    this.take();
    this.timer = setInterval(() => this.take(), 500);
  }
  stop(): void {
    clearInterval(this.timer);
  }
  take(): void {
    const cpu = process.cpuUsage();
    this.samples.push({
      t: nowMs(),
      serverSched: schedstat(this.serverPid),
      acceptQueue: acceptQueue(this.port),
      all: allProcTicks(),
      server: procTicks(this.serverPid),
      serverSys: procUserSys(this.serverPid)?.sys,
      serverRssKB: procRssKB(this.serverPid),
      gen: procTicks(this.genPid),
      genPid: this.genPid,
      pub: procTicks(this.pubPid),
      self: ((cpu.user + cpu.system) / 1e6) * CLK_TCK,
      ...((): { busy: number; irq: number } => {
        const m = machineTicks();
        return { busy: m.busy, irq: m.irq };
      })(),
    });
  }
  /** Samples from the first at/after `start` to the last at/before `end`. */
  between(start: number, end: number): Sample[] {
    return this.samples.filter((s) => s.t >= start && s.t <= end);
  }
}

/** CPU use in % of one core between the first and last sample, for one field. */
function cpuPct(samples: readonly Sample[], pick: (s: Sample) => number | undefined): number | null {
  const a = samples[0];
  const b = samples[samples.length - 1];
  if (a === undefined || b === undefined || b.t - a.t < 500) return null;
  const x = pick(a);
  const y = pick(b);
  if (x === undefined || y === undefined) return null;
  return round(((y - x) / CLK_TCK / ((b.t - a.t) / 1000)) * 100);
}

function schedPct(samples: readonly Sample[], key: 'run' | 'wait'): number | null {
  const a = samples[0];
  const b = samples[samples.length - 1];
  if (a?.serverSched === undefined || b?.serverSched === undefined || b.t - a.t < 500) return null;
  return round(((b.serverSched[key] - a.serverSched[key]) / 1e6 / (b.t - a.t)) * 100);
}

/** The processes, other than the bench's own, that used the most CPU between the first and last sample. */
function busiestOthers(samples: readonly Sample[], ours: ReadonlySet<number | undefined>): string[] {
  const a = samples[0];
  const b = samples[samples.length - 1];
  if (a === undefined || b === undefined || b.t <= a.t) return [];
  const sec = (b.t - a.t) / 1000;
  const rows: [string, number][] = [];
  for (const [pid, end] of b.all) {
    if (ours.has(pid)) continue;
    const start = a.all.get(pid)?.ticks ?? 0;
    const pct = ((end.ticks - start) / CLK_TCK / sec) * 100;
    if (pct >= 5) rows.push([`${end.comm}(${pid}) ${round(pct)}%`, pct]);
  }
  return rows
    .sort((x, y) => y[1] - x[1])
    .slice(0, 5)
    .map((r) => r[0]);
}

// ---------------------------------------------------------------------------------------------
// The probe reader: one reader in this process, connected for the whole bench

class Probe {
  readonly lat: { t: number; v: number }[] = [];
  reconnects = 0;
  private reader: FlvReader | undefined;
  private stopped = false;
  private readonly buf = Buffer.allocUnsafe(64 * 1024);
  constructor(private readonly port: number) {}

  start(): void {
    this.reader = new FlvReader({
      host: '127.0.0.1',
      port: this.port,
      path: '/feed1.flv',
      readBuffer: this.buf,
      onVideoFrame: (at, ts) => {
        if (this.lat.length < 200_000) this.lat.push({ t: at, v: at - ts });
      },
      onClose: (r) => {
        if (this.stopped) return;
        say(`probe reader closed (${r.error ?? 'by the server'}); reconnecting`);
        this.reconnects++;
        setTimeout(() => this.start(), 500);
      },
    });
    this.reader.start();
  }

  get live(): boolean {
    return this.reader?.firstFrameAt !== undefined;
  }

  stop(): void {
    this.stopped = true;
    this.reader?.stop();
  }

  between(start: number, end: number): number[] {
    return this.lat.filter((s) => s.t >= start && s.t <= end).map((s) => s.v);
  }
}

// ---------------------------------------------------------------------------------------------
// One run: N readers

interface GenReport {
  readers: number;
  window: { startMs: number; endMs: number; seconds: number };
  statuses: Record<string, number>;
  errors: Record<string, number>;
  gotFirstFrame: number;
  firstFrameWasKeyframe: number;
  openAtWindowStart: number;
  openAtWindowEnd: number;
  closedDuringWindow: number;
  framingErrors: number;
  kbps: Summary;
  refKbps: number | null;
  feedKbpsSeen: number | null;
  fullRate: { threshold: number | null; count: number };
  realtime: Summary;
  tcpConnected?: number;
  ttffMs: Summary;
  ttffHistogramMs: Record<string, number>;
  responseHeadMs: Summary;
  latenessRawMs: { meanPerReader: Summary; maxPerReader: Summary };
  generator: {
    cpuPct: number;
    eventLoopUtilization: number;
    eventLoopDelayP99Ms: number;
    eventLoopDelayMaxMs: number;
    rssMB: number;
  };
}

interface RunResult {
  readers: number;
  generator: GenReport;
  server: {
    /** utime + stime over the window, in % of one core. */
    cpuPct: number | null;
    /** The stime part (the kernel: socket writes, loopback TCP). */
    sysPct: number | null;
    /**
     * The main thread (the event loop) from /proc/PID/schedstat, in % of the window: on a CPU, and
     * runnable but waiting for one. Together near 100% = the event loop never idled (saturated).
     */
    mainThreadRunPct: number | null;
    mainThreadWaitPct: number | null;
    rssMaxMB: number | null;
    rssIdleBeforeMB: number | null;
    rssAfterMB: number | null;
  };
  publisherCpuPct: number | null;
  machine: {
    busyPctOfAllCores: number | null;
    /** irq + softirq time, in % of one core (not charged to any process). */
    irqCpuPct: number | null;
    /** Machine busy time minus irq/softirq and the server, generator, publisher and this process, in % of one core. */
    othersCpuPct: number | null;
    busiestOthers: string[];
  };
  /**
   * Lateness = arrival wall-clock ms − FLV timestamp ms of each video frame. Added delay compares its
   * distribution under load with the probe's while idle (just before the run): a reader's mean with
   * the idle mean, a reader's max with the idle max, the probe's p50/p95/max with the idle ones.
   */
  addedDelayMs: {
    idle: Summary;
    probe: { p50: number | null; p95: number | null; max: number | null };
    /** The probe from the generator's start to the window's: while the N readers connect. */
    probeWhileJoining: { p50: number | null; max: number | null };
    readers: { meanP50: number | null; meanMax: number | null; maxP95: number | null; maxMax: number | null };
    generatorEventLoopDelayP99Ms: number;
  };
  serverLog: Record<string, number>;
  /** Change of TCP counters of the namespace over the run (the whole machine's loopback traffic). */
  tcpCounters: Record<string, number>;
  /** Most connections seen waiting in the server's accept queue during the run (sampled every 500 ms). */
  acceptQueueMax: number;
}

function runGenerator(port: number, n: number, refKbps: number, sampler: Sampler): Promise<GenReport> {
  const args = [
    '--import',
    'tsx',
    join(ROOT, 'bench/flv-readers.ts'),
    `http://127.0.0.1:${port}/feed1.flv`,
    String(n),
    String(SECONDS),
    '--ref-kbps',
    String(refKbps),
    '--ramp',
    String(RAMP),
    '--warmup',
    String(WARMUP),
  ];
  const child = track(spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  sampler.genPid = child.pid;
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    const s = d.toString();
    err = (err + s).slice(-4000);
    process.stderr.write(s);
  });
  const boundMs = (n / RAMP + SECONDS + WARMUP + 30) * 1000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      say(`the load generator for N=${n} ran over ${Math.round(boundMs / 1000)} s: killing it`);
      child.kill('SIGKILL');
    }, boundMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      sampler.genPid = undefined;
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as GenReport);
      else reject(new Error(`load generator for N=${n} failed (${signal ?? `exit ${code}`}):\n${err}`));
    });
  });
}

async function runOne(
  n: number,
  ctx: {
    port: number;
    clip: ClipInfo;
    sampler: Sampler;
    probe: Probe;
    book: LogBook;
    serverPid: number | undefined;
    pubPid: number | undefined;
  },
): Promise<RunResult> {
  const { sampler, probe, book } = ctx;
  book.phase = `N=${n}`;
  // Idle period: the probe's lateness baseline and the server's idle RSS.
  const idleStart = nowMs();
  await sleep(IDLE_MS);
  const idle = summarize(probe.between(idleStart + 500, nowMs()));
  const rssIdle = procRssKB(ctx.serverPid);

  say(`N=${n}: starting the readers`);
  const tcp0 = tcpCounters();
  const genStart = nowMs();
  const gen = await runGenerator(ctx.port, n, ctx.clip.refKbps, sampler);
  const tcp1 = tcpCounters();
  const acceptQueueMax = Math.max(0, ...sampler.between(genStart, nowMs()).map((s) => s.acceptQueue ?? 0));
  const tcp: Record<string, number> = {};
  for (const k of Object.keys(tcp1)) tcp[k] = (tcp1[k] ?? 0) - (tcp0[k] ?? 0);
  const { startMs, endMs } = gen.window;
  const win = sampler.between(startMs, endMs);
  const ncpu = os.cpus().length;
  const busy = cpuPct(win, (s) => s.busy);
  const known = [cpuPct(win, (s) => s.server), cpuPct(win, (s) => s.gen), cpuPct(win, (s) => s.pub), cpuPct(win, (s) => s.self)];
  const irq = cpuPct(win, (s) => s.irq) ?? 0;
  const others =
    busy === null || known.some((k) => k === null)
      ? null
      : round(Math.max(0, busy - irq - known.reduce<number>((a, b) => a + (b ?? 0), 0)));
  const topOthers = busiestOthers(win, new Set([ctx.serverPid, win[0]?.genPid, ctx.pubPid, process.pid]));
  const rssValues = win.map((s) => s.serverRssKB).filter((x): x is number => x !== undefined);

  const diff = (x: number | null | undefined, base: number | null): number | null =>
    x === null || x === undefined || base === null ? null : round(x - base);
  const probeLat = summarize(probe.between(startMs, endMs));
  const probeJoin = summarize(probe.between(genStart, startMs));
  const lat = gen.latenessRawMs;

  await sleep(2000); // let the readers' connections close before the "after" RSS
  const rssAfter = procRssKB(ctx.serverPid);
  return {
    readers: n,
    generator: gen,
    server: {
      cpuPct: cpuPct(win, (s) => s.server),
      sysPct: cpuPct(win, (s) => s.serverSys),
      mainThreadRunPct: schedPct(win, 'run'),
      mainThreadWaitPct: schedPct(win, 'wait'),
      rssMaxMB: rssValues.length === 0 ? null : round(Math.max(...rssValues) / 1024),
      rssIdleBeforeMB: rssIdle === undefined ? null : round(rssIdle / 1024),
      rssAfterMB: rssAfter === undefined ? null : round(rssAfter / 1024),
    },
    publisherCpuPct: cpuPct(win, (s) => s.pub),
    machine: {
      busyPctOfAllCores: busy === null ? null : round(busy / ncpu),
      irqCpuPct: irq,
      othersCpuPct: others,
      busiestOthers: topOthers,
    },
    addedDelayMs: {
      idle,
      probe: { p50: diff(probeLat.p50, idle.p50), p95: diff(probeLat.p95, idle.p95), max: diff(probeLat.max, idle.max) },
      probeWhileJoining: { p50: diff(probeJoin.p50, idle.p50), max: diff(probeJoin.max, idle.max) },
      readers: {
        meanP50: diff(lat.meanPerReader.p50, idle.mean),
        meanMax: diff(lat.meanPerReader.max, idle.mean),
        maxP95: diff(lat.maxPerReader.p95, idle.max),
        maxMax: diff(lat.maxPerReader.max, idle.max),
      },
      generatorEventLoopDelayP99Ms: gen.generator.eventLoopDelayP99Ms,
    },
    serverLog: book.counts[book.phase] ?? {},
    tcpCounters: tcp,
    acceptQueueMax,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

function table(results: readonly RunResult[]): string {
  const head = [
    'readers',
    'kbit/s p50',
    'kbit/s min',
    'at full rate',
    'TTFF p50 ms',
    'TTFF p95 ms',
    'server CPU %',
    'server RSS MB',
    'added delay p50/max ms',
    'loadgen CPU %',
  ];
  const f = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : String(x));
  const rows = results.map((r) => {
    const g = r.generator;
    return [
      String(r.readers),
      f(g.kbps.p50),
      f(g.kbps.min),
      `${g.fullRate.count}/${r.readers}`,
      f(g.ttffMs.p50),
      f(g.ttffMs.p95),
      f(r.server.cpuPct),
      f(r.server.rssMaxMB),
      `${f(r.addedDelayMs.readers.meanP50)}/${f(r.addedDelayMs.readers.maxMax)}`,
      f(g.generator.cpuPct),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 1) + ':').join('|')}|`, ...rows.map(line)].join('\n');
}

function notes(results: readonly RunResult[], extra: readonly string[]): string[] {
  const out = [...extra];
  for (const r of results) {
    const g = r.generator;
    const tag = `N=${r.readers}:`;
    if (g.fullRate.count < r.readers) out.push(`${tag} ${r.readers - g.fullRate.count} readers below 90% of ${g.refKbps} kbit/s`);
    if (g.gotFirstFrame < r.readers) out.push(`${tag} ${r.readers - g.gotFirstFrame} readers never got a first frame`);
    if (g.firstFrameWasKeyframe < g.gotFirstFrame)
      out.push(`${tag} ${g.gotFirstFrame - g.firstFrameWasKeyframe} readers' first frame was not a keyframe`);
    if (Object.keys(g.errors).length > 0) out.push(`${tag} reader errors ${JSON.stringify(g.errors)}`);
    if (g.statuses['200'] !== r.readers) out.push(`${tag} HTTP statuses ${JSON.stringify(g.statuses)}`);
    const tcpConnected = g.tcpConnected ?? r.readers;
    if (tcpConnected > (g.statuses['200'] ?? 0) + Object.values(g.errors).reduce((a, b) => a + b, 0)) {
      out.push(
        `${tag} ${tcpConnected - (g.statuses['200'] ?? 0)} readers connected (TCP) but got no HTTP response; up to ${r.acceptQueueMax} connections waited in the server's accept queue`,
      );
    } else if (r.acceptQueueMax > 50) {
      out.push(`${tag} up to ${r.acceptQueueMax} connections waited in the server's accept queue`);
    }
    const overflows = r.tcpCounters['ListenOverflows'] ?? 0;
    if (overflows > 0) {
      out.push(
        `${tag} ${overflows} listen-queue overflows (connections dropped by a full accept queue; ${r.tcpCounters['TCPSynRetrans'] ?? 0} SYN retransmits): TTFF histogram ${JSON.stringify(g.ttffHistogramMs)}`,
      );
    }
    const joinMax = r.addedDelayMs.probeWhileJoining.max;
    if (joinMax !== null && joinMax > 200)
      out.push(`${tag} while the readers joined, the probe's frames came up to ${joinMax} ms late`);
    const run = r.server.mainThreadRunPct;
    const wait = r.server.mainThreadWaitPct;
    if (run !== null && wait !== null && run + wait > 90) {
      out.push(
        `${tag} the server's event loop thread was on a CPU ${run}% and waiting for one ${wait}% of the window: saturated`,
      );
    }
    const added = r.addedDelayMs.readers.meanP50;
    if (added !== null && added > 100) {
      out.push(
        `${tag} during the window, frames reached the readers ${added} ms later than while idle (median of the readers' means)`,
      );
    }
    const rt = g.realtime.p50;
    if (rt !== null && (rt < 0.97 || rt > 1.03)) {
      out.push(
        `${tag} media time advanced ${rt}× as fast as wall time over the window (1 = steady; >1 = catching up, <1 = falling behind)`,
      );
    }
    if (g.closedDuringWindow > 0) out.push(`${tag} ${g.closedDuringWindow} readers were closed during the window`);
    if (g.framingErrors > 0) out.push(`${tag} ${g.framingErrors} FLV framing errors (PreviousTagSize mismatch)`);
    if (g.generator.eventLoopUtilization > 0.8) {
      out.push(
        `${tag} the load generator was busy (event loop utilization ${g.generator.eventLoopUtilization}): it may be a bottleneck`,
      );
    }
    if (r.machine.othersCpuPct !== null && r.machine.othersCpuPct > 20) {
      out.push(
        `${tag} other processes used ${r.machine.othersCpuPct}% of a core during the window (busiest: ${r.machine.busiestOthers.join(', ') || 'none seen: kernel time?'})`,
      );
    }
    const warn = Object.entries(r.serverLog).filter(([k]) => !k.startsWith('info:'));
    if (warn.length > 0) out.push(`${tag} server logged ${warn.map(([k, v]) => `${v}× "${k}"`).join(', ')}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = new Date();
  const maxN = Math.max(...READERS);
  const budgetMs = 300_000 + READERS.reduce((s, n) => s + (IDLE_MS + 2000) / 1000 + n / RAMP + SECONDS + WARMUP + 35, 0) * 1000;
  const deadline = setTimeout(() => {
    say(`the bench ran over its ${Math.round(budgetMs / 1000)} s budget: stopping`);
    void shutdown(1);
  }, budgetMs);
  deadline.unref();

  const clip = await prepareClip();
  say(`source clip ${CLIP} (${clip.durationSec} s); remuxed to FLV it is ${clip.refKbps} kbit/s`);
  const port = Number(process.env['BENCH_PORT'] ?? 0) || (await freePort());
  const book = new LogBook();
  const server = await startServer(port, Math.max(5000, maxN + 100), book);
  say(`server pid ${server.pid} listening on 127.0.0.1:${port}`);
  const pub = startPublisher(port);
  const extra: string[] = [];
  pub.child.on('exit', (code, signal) => {
    if (!stopping) extra.push(`the publisher exited (${signal ?? `exit ${code}`}): ${pub.stderr().trim().slice(-500)}`);
  });
  server.on('exit', (code, signal) => {
    if (!stopping) extra.push(`the server exited (${signal ?? `exit ${code}`}): ${book.stderrTail.trim().slice(-1000)}`);
  });

  const probe = new Probe(port);
  probes.push(probe);
  probe.start();
  const liveBy = nowMs() + 30_000;
  while (!probe.live && nowMs() < liveBy) await sleep(100);
  if (!probe.live)
    throw new Error(`the feed did not go live within 30 s.\npublisher: ${pub.stderr()}\nserver: ${book.stderrTail}`);
  say('feed is live; probe reader connected');
  await sleep(2000); // the probe's GOP burst is over

  const sampler = new Sampler(server.pid, pub.child.pid, port);
  samplers.push(sampler);
  sampler.start();
  const results: RunResult[] = [];
  for (const n of READERS) {
    if (!alive(server) || !alive(pub.child)) break;
    const r = await runOne(n, { port, clip, sampler, probe, book, serverPid: server.pid, pubPid: pub.child.pid });
    results.push(r);
    say(
      `N=${n}: p50 ${r.generator.kbps.p50} kbit/s, full rate ${r.generator.fullRate.count}/${n}, TTFF p95 ${r.generator.ttffMs.p95} ms, server CPU ${r.server.cpuPct}%, RSS ${r.server.rssMaxMB} MB`,
    );
  }
  if (probe.reconnects > 0) extra.push(`the probe reader was disconnected ${probe.reconnects} times`);

  const report = {
    date: started.toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    settings: { readers: READERS, seconds: SECONDS, rampPerSec: RAMP, warmupSec: WARMUP, idleMs: IDLE_MS },
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model ?? '?',
      memGB: round(os.totalmem() / 2 ** 30),
      node: process.version,
      kernel: os.release(),
    },
    clip,
    serverPort: port,
    results,
    notes: notes(results, extra),
    serverLogByPhase: book.counts,
    serverLogSamples: book.samples,
  };
  const file = join(OUT, `fanout-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');

  process.stdout.write(`\nFeedcast HTTP-FLV fan-out, ${report.date}, ${report.machine.cpus} CPUs, window ${SECONDS} s per N\n\n`);
  process.stdout.write(table(results) + '\n\n');
  if (report.notes.length > 0) process.stdout.write('Notes:\n' + report.notes.map((n) => `- ${n}`).join('\n') + '\n\n');
  process.stdout.write(`Full report: ${file}\n`);
  await shutdown(results.length === READERS.length ? 0 : 1);
}

// ---------------------------------------------------------------------------------------------
// Shutdown

let stopping = false;
const probes: Probe[] = [];
const samplers: Sampler[] = [];

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const s of samplers) s.stop();
    for (const p of probes) p.stop();
    // Readers first, then the publisher, the server last.
    const order = [...children].reverse();
    for (const c of order) await stopChild(c);
  }
  process.exit(code);
}

process.on('SIGINT', () => {
  say('interrupted: stopping what the bench started');
  void shutdown(130);
});
process.on('SIGTERM', () => void shutdown(143));

main().catch((err: unknown) => {
  if (stopping) return; // a child failed because shutdown() stopped it: already on the way out
  say(err instanceof Error ? (err.stack ?? err.message) : String(err));
  void shutdown(1);
});
