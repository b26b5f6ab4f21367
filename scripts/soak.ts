// The soak run (issue 11, docs/reliability.md): Feedcast as a user runs it (`src/main.ts -f CONF`) for
// SOAK_MINUTES (default 10) with a publisher that reconnects every minute (alternating HTTP and RTMP),
// a steady publisher, readers of every protocol joining and leaving, slow readers and hostile clients.
// Samples the server's RSS and open fds, watches a long-lived reader of the steady feed for stalls, and
// counts unexpected error log lines. Prints a JSON summary; exits 1 when a check fails.
//
//   npm run soak                      # 10 minutes
//   SOAK_MINUTES=60 npm run soak      # longer
//   SOAK_NODE_ARGS=--max-old-space-size=64 npm run soak   # a leak makes the server run out of heap
//
// The hostile soak (issue 25): `npm run soak -- --hostile` (or SOAK_HOSTILE=1), 30 minutes unless
// SOAK_MINUTES says otherwise. Adds every attack of issue 25 at once (scripts/soak-hostile.ts: idle
// sockets on every listener, a refused-connection flood, RTMP chunk pinning, 40 unfinished PES,
// NAL-unit bombs, a feed squatter, one-off dynamic feeds), each from its own loopback address,
// beside 200 churning readers of the steady feed, whose largest gap between data is the
// healthy-reader measure (goal: none over 1 s). They run in a process of their own
// (scripts/soak-readers.ts). The server, that process and this one run under `nice -n SOAK_NICE`
// (-10 by default, root only). Every event-loop stall over 200 ms of each is recorded with its
// cause (src/observability/loop-stall.ts: 'busy' = its own work, 'waiting' = no core free,
// 'blocked' = asleep in a system call), and each
// reader gap over 1 s is explained by the stalls it overlaps. SOAK_ATTACKS=idle,flood,... runs some
// attacks only; SOAK_CPU_PROF=1 profiles the server and lists its longest busy stretches.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { connect, createServer } from 'node:net';
import { setPriority, tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { stallCause, watchLoopStalls, type StallCause } from '../src/observability/loop-stall.js';
import { busyStretches, type CpuProfile } from './cpu-profile.js';
import { join } from 'node:path';
import {
  idleSockets,
  nalBomb,
  newHostileCounts,
  oneOffFeeds,
  refusedFlood,
  rtmpChunkPinning,
  squatter,
  tsManyPids,
} from './soak-hostile.js';

const HOSTILE = process.argv.includes('--hostile') || process.env['SOAK_HOSTILE'] === '1';
/** The attacks of the hostile soak to run (comma-separated names of ATTACKS below); all by default. */
const ATTACK_NAMES = (process.env['SOAK_ATTACKS'] ?? 'idle,flood,rtmp,pids,nals,squat,oneoff').split(',').filter((a) => a !== '');
/**
 * The server's niceness (root only): -10 by default, so that on a machine shared with other work the
 * figures say more about Feedcast than about the load. SOAK_NICE=0 runs it as any other process.
 */
const NICE = Number(process.env['SOAK_NICE'] ?? '-10');
/** SOAK_CPU_PROF=1: the server runs with --cpu-prof; the summary names the profile and its longest busy stretches. */
const CPU_PROF = process.env['SOAK_CPU_PROF'] === '1';
const MINUTES = Number(process.env['SOAK_MINUTES'] ?? (HOSTILE ? '30' : '10'));
/** Readers that connect, read 5-15 s and reconnect, in the hostile soak. */
const CHURNING_READERS = Number(process.env['SOAK_READERS'] ?? '200');
const FFMPEG = process.env['FEEDCAST_FFMPEG'] ?? 'ffmpeg';
const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
const READERS = new URL('./soak-readers.ts', import.meta.url).pathname;
const SAMPLE_MS = 10_000;
/** The server and this process log every event-loop stall longer than this (src/observability/loop-stall.ts). */
const STALL_LOG_MS = 200;
/** A gap in the steady reader's data longer than this is a stall. */
const STALL_MS = 5_000;
/** Error log lines that a hostile client is expected to cause are logged as warnings; any error line is unexpected. */
const EXPECTED_ERRORS: RegExp[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

interface Sample {
  atS: number;
  rssMiB: number;
  fds: number;
  connections: number;
  feeds: number;
  /** Largest event-loop delay since the last sample, in the server (its /metrics) and in this process. */
  serverLagMaxMs: number;
  soakLagMaxMs: number;
  /** The server's V8 heap in use (its /metrics): RSS alone does not say whether memory is given back. */
  heapUsedMiB: number;
  /** The machine's 1-minute load average (other work on a shared machine shows here). */
  load1: number;
}

/** An event-loop stall (src/observability/loop-stall.ts), in wall-clock ms. */
interface Stall {
  from: number;
  to: number;
  cause: StallCause;
}

/**
 * With autogroup scheduling (Linux's default, /proc/sys/kernel/sched_autogroup_enabled), CPU time
 * is shared between sessions first, and a process's nice value counts only against the processes of
 * its own session: `nice -n -10` alone does not help the server against other sessions' load. The
 * server and the readers are started in sessions of their own (`detached`), whose autogroups get
 * the niceness too. Returns what /proc says, for the summary.
 */
function niceAutogroup(pid: number | undefined): string | undefined {
  if (pid === undefined) return undefined;
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(NICE));
    return readFileSync(`/proc/${pid}/autogroup`, 'utf8').trim();
  } catch (err) {
    return `not set: ${String(err)}`;
  }
}

function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

const children = new Set<ChildProcess>();
let stopping = false;

function ffmpeg(args: string[]): ChildProcess {
  const child = spawn(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args], { stdio: 'ignore' });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function lavfi(seconds: number): string[] {
  return [
    '-re',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=640x360:rate=25',
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=44100',
    '-t',
    String(seconds),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-tune',
    'zerolatency',
    '-g',
    '50',
    '-b:v',
    '600k',
    '-c:a',
    'aac',
    '-b:a',
    '64k',
  ];
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** Reads an HTTP URL for `seconds` (or until stopped); `bytesPerSecond` throttles it (a slow reader). */
function httpReader(url: string, seconds: number, onData?: (n: number) => void, bytesPerSecond?: number): Promise<number> {
  return new Promise((resolve) => {
    let total = 0;
    const req = request(url, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        res.on('end', () => resolve(-(res.statusCode ?? 1)));
        return;
      }
      let windowStart = Date.now();
      let windowBytes = 0;
      res.on('data', (d: Buffer) => {
        total += d.length;
        onData?.(d.length);
        if (bytesPerSecond !== undefined) {
          windowBytes += d.length;
          const due = (windowBytes / bytesPerSecond) * 1000 - (Date.now() - windowStart);
          if (due > 0) {
            res.pause();
            setTimeout(() => {
              windowStart = Date.now();
              windowBytes = 0;
              res.resume();
            }, due);
          }
        }
      });
      res.on('end', () => resolve(total));
      res.on('error', () => resolve(total));
    });
    req.on('error', () => resolve(total));
    req.end();
    setTimeout(() => {
      req.destroy();
      resolve(total);
    }, seconds * 1000);
  });
}

async function hlsReader(base: string, seconds: number): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let segments = 0;
  const seen = new Set<string>();
  while (Date.now() < end && !stopping) {
    try {
      const res = await fetch(`${base}/steady/ts/index.m3u8`);
      const text = await res.text();
      for (const line of text.split('\n')) {
        if (line === '' || line.startsWith('#') || seen.has(line)) continue;
        seen.add(line);
        const seg = await fetch(`${base}/steady/ts/${line}`);
        if (seg.ok) {
          await seg.arrayBuffer();
          segments++;
        }
      }
    } catch {
      // the server may be busy; the next poll retries
    }
    await sleep(1000);
  }
  return segments;
}

/** Sends garbage, slowloris heads and bad publishes at every listener. */
async function hostile(ports: { http: number; rtmp: number; rtsp: number }): Promise<void> {
  const garbage = (port: number, bytes: Buffer): Promise<void> =>
    new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.end(bytes));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.setTimeout(20_000, () => s.destroy());
      s.resume();
    });
  const random = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(Math.random() * 256)));
  await Promise.all([
    garbage(ports.http, random(2000)),
    garbage(ports.http, Buffer.from(`GET /${'a'.repeat(30_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)),
    garbage(
      ports.http,
      Buffer.concat([Buffer.from('POST /hostile HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n'), random(5000)]),
    ),
    garbage(
      ports.http,
      Buffer.concat([Buffer.from('POST /moving HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n'), random(5000)]),
    ),
    garbage(ports.rtmp, Buffer.concat([Buffer.from([3]), random(1536 * 2 + 500)])),
    garbage(ports.rtmp, random(100)),
    garbage(ports.rtsp, Buffer.from(`DESCRIBE rtsp://127.0.0.1/steady RTSP/1.0\r\nCSeq: x\r\nContent-Length: -5\r\n\r\n`)),
    garbage(ports.rtsp, random(3000)),
  ]);
  // One slowloris per round: it must be closed by the server (RequestHeaderTimeout).
  const s = connect(ports.http, '127.0.0.1');
  s.on('error', () => undefined);
  const t = setInterval(() => s.write('X'), 1000);
  s.on('close', () => clearInterval(t));
  setTimeout(() => {
    clearInterval(t);
    s.destroy();
  }, 30_000).unref();
}

function slope(samples: Sample[], key: 'rssMiB' | 'fds' | 'heapUsedMiB'): number {
  // Least squares, in units per minute.
  const n = samples.length;
  if (n < 2) return 0;
  const xs = samples.map((s) => s.atS / 60);
  const ys = samples.map((s) => s[key]);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] ?? 0) - mx) * ((ys[i] ?? 0) - my);
    den += ((xs[i] ?? 0) - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-soak-'));
  const [http, rtmp, rtsp] = [await freePort(), await freePort(), await freePort()];
  const conf = join(dir, 'soak.conf');
  writeFileSync(
    conf,
    [
      `HTTPPort ${http}`,
      'HTTPBindAddress 127.0.0.1',
      `RTMPPort ${rtmp}`,
      'RTMPBindAddress 127.0.0.1',
      `RTSPPort ${rtsp}`,
      'RTSPBindAddress 127.0.0.1',
      'RequestHeaderTimeout 5',
      'PublisherGracePeriod 10',
      ...(HOSTILE ? ['DynamicFeeds on', 'DynamicFeedTimeout 10', 'PublisherTimeout 2'] : []),
      '<Feed steady.ffm>',
      `  File ${join(dir, 'steady.ffm')}`,
      '  FileMaxSize 20M',
      '</Feed>',
      '<Feed moving.ffm>',
      '  PublishSecret soak-secret',
      '</Feed>',
      '',
    ].join('\n'),
  );
  const logFile = join(dir, 'server.log');
  const logLines: string[] = [];
  // SOAK_NODE_ARGS, e.g. --max-old-space-size=64: a leak then ends the run instead of growing RSS.
  const nodeArgs = (process.env['SOAK_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  if (CPU_PROF) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  const serverArgv = [process.execPath, ...nodeArgs, '--import', 'tsx', MAIN, '-f', conf];
  const niced = NICE !== 0 && process.getuid?.() === 0;
  // `nice` execs the server, so the child's pid is the server's.
  const server = spawn(niced ? 'nice' : process.execPath, niced ? ['-n', String(NICE), ...serverArgv] : serverArgv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FEEDCAST_LOG_FORMAT: 'json', FEEDCAST_STALL_LOG_MS: String(STALL_LOG_MS) },
    // A session of its own, hence a scheduler autogroup of its own, niced below.
    detached: niced,
  });
  const serverAutogroup = niced ? niceAutogroup(server.pid) : undefined;
  const loadAtStart = loadAverage();
  // This process (the attacks, the other readers) runs at the server's niceness too.
  if (niced) setPriority(NICE);
  let partial = '';
  const onOut = (d: Buffer): void => {
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    logLines.push(...lines);
  };
  server.stdout.on('data', onOut);
  server.stderr.on('data', onOut);
  const base = `http://127.0.0.1:${http}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${base}/api/v1/health`)).ok) break;
    } catch {
      // not up yet
    }
    await sleep(200);
  }
  const pid = server.pid ?? 0;
  const startedAt = Date.now();
  const endAt = startedAt + MINUTES * 60_000;
  console.error(`soak: ${MINUTES} min, server pid ${pid}, http ${http}, rtmp ${rtmp}, rtsp ${rtsp}, dir ${dir}`);

  // The steady feed: one publisher for the whole run (what the stall watch reads).
  const steady = ffmpeg([...lavfi(MINUTES * 60 + 30), '-f', 'mpegts', `${base}/steady.ffm`]);
  await sleep(3000);

  // The long-lived reader of the steady feed: its largest gap between data is the stall measure.
  let lastData = Date.now();
  let maxGapMs = 0;
  let steadyBytes = 0;
  const steadyReader = httpReader(`${base}/steady.flv`, MINUTES * 60, (n) => {
    const now = Date.now();
    maxGapMs = Math.max(maxGapMs, now - lastData);
    lastData = now;
    steadyBytes += n;
  });

  const samples: Sample[] = [];
  const counts = { publisherRuns: 0, readers: 0, readerErrors: 0, hlsSegments: 0, hostileRounds: 0, slowReaders: 0 };
  const tasks: Promise<unknown>[] = [];

  // The moving publisher: reconnects every minute, HTTP and RTMP in turn.
  tasks.push(
    (async () => {
      while (Date.now() < endAt - 5000 && !stopping) {
        const rtmpTurn = counts.publisherRuns % 2 === 1;
        const url = rtmpTurn
          ? `rtmp://127.0.0.1:${rtmp}/live/moving?secret=soak-secret`
          : `${base}/moving.ffm?secret=soak-secret`;
        const seconds = Math.min(58, Math.max(1, (endAt - Date.now()) / 1000 - 3));
        const p = ffmpeg([...lavfi(seconds), '-f', rtmpTurn ? 'flv' : 'mpegts', url]);
        counts.publisherRuns++;
        await exited(p);
        await sleep(2000);
      }
    })(),
  );

  // Readers of every protocol joining and leaving.
  const readerLoop = async (name: string, run: () => Promise<number>): Promise<void> => {
    while (Date.now() < endAt - 25_000 && !stopping) {
      const n = await run();
      counts.readers++;
      if (n <= 0) {
        counts.readerErrors++;
        console.error(`soak: reader ${name} got ${n}`);
      }
      await sleep(2000 + Math.random() * 3000);
    }
  };
  const ffmpegRead = (args: string[]): Promise<number> =>
    new Promise((resolve) => {
      const c = ffmpeg([...args, '-t', '15', '-f', 'null', '-']);
      c.on('exit', (code) => resolve(code === 0 ? 1 : 0));
    });
  tasks.push(readerLoop('flv', () => httpReader(`${base}/steady.flv`, 10 + Math.random() * 10)));
  tasks.push(readerLoop('ts', () => httpReader(`${base}/moving.ts`, 10 + Math.random() * 10).then((n) => (n < 0 ? 1 : n))));
  tasks.push(
    readerLoop('hls', async () => {
      const n = await hlsReader(base, 20);
      counts.hlsSegments += n;
      return n;
    }),
  );
  tasks.push(readerLoop('rtmp', () => ffmpegRead(['-i', `rtmp://127.0.0.1:${rtmp}/live/steady`])));
  tasks.push(readerLoop('rtsp', () => ffmpegRead(['-rtsp_transport', 'tcp', '-i', `rtsp://127.0.0.1:${rtsp}/steady`])));
  // Slow readers: 20 kB/s of a ~700 kbit/s feed; the server skips or closes them, never waits for them.
  tasks.push(
    readerLoop('slow', async () => {
      counts.slowReaders++;
      await httpReader(`${base}/steady.flv`, 30, undefined, 20_000);
      return 1;
    }),
  );
  // The hostile soak: every attack of issue 25 at once, and 200 churning readers.
  const hostileCounts = newHostileCounts();
  /** Each churning reader's gap over 1 s, in wall-clock ms: explained afterwards by the stalls beside it. */
  const gaps: { from: number; to: number }[] = [];
  /** This process's own stalls (the attack clients' lag), as the server logs its own (FEEDCAST_STALL_LOG_MS). */
  const soakStalls: Stall[] = [];
  const stopSoakWatch = watchLoopStalls(STALL_LOG_MS, (st) => {
    const to = Date.now();
    soakStalls.push({ from: to - st.wallMs, to, cause: stallCause(st) });
  });
  const churn = { readers: CHURNING_READERS, sessions: 0, maxGapMs: 0, gapsOver1s: 0, failed: 0 };
  /** The churning readers' process's own stalls (the measuring client's lag). */
  const readerStalls: Stall[] = [];
  if (HOSTILE) {
    const until = (): boolean => Date.now() < endAt - 10_000 && !stopping;
    const attacks: Record<string, () => Promise<void>> = {
      idle: () => idleSockets([http, rtmp, rtsp], '127.0.2.1', until, hostileCounts),
      flood: () => refusedFlood(rtsp, '127.0.2.2', until, hostileCounts),
      rtmp: () => rtmpChunkPinning(rtmp, '127.0.2.3', until, hostileCounts),
      pids: () => tsManyPids(http, '127.0.2.4', until, hostileCounts),
      nals: () => nalBomb(http, '127.0.2.5', until, hostileCounts),
      squat: () => squatter(http, '127.0.2.6', '127.0.2.7', until, hostileCounts),
      oneoff: () => oneOffFeeds(http, '127.0.2.8', until, hostileCounts),
    };
    for (const name of ATTACK_NAMES) {
      const attack = attacks[name];
      if (attack === undefined) throw new Error(`SOAK_ATTACKS: no attack named ${name} (${Object.keys(attacks).join(', ')})`);
      tasks.push(attack());
    }
    // The churning readers run in a process of their own (scripts/soak-readers.ts) at the server's
    // niceness: building hostile bytes here does not delay their clocks.
    const readersArgv = [process.execPath, '--import', 'tsx', READERS, `${base}/steady.flv`, String(CHURNING_READERS)];
    const readers = spawn(
      niced ? 'nice' : process.execPath,
      niced ? ['-n', String(NICE), ...readersArgv] : readersArgv.slice(1),
      {
        stdio: ['pipe', 'pipe', 'inherit'],
        detached: niced,
      },
    );
    children.add(readers);
    if (niced) niceAutogroup(readers.pid);
    let readersPartial = '';
    readers.stdout.on('data', (d: Buffer) => {
      readersPartial += d.toString();
      const lines = readersPartial.split('\n');
      readersPartial = lines.pop() ?? '';
      for (const line of lines) {
        const r = JSON.parse(line) as {
          gap?: { from: number; to: number };
          stall?: Stall;
          summary?: typeof churn;
        };
        if (r.gap !== undefined) gaps.push(r.gap);
        if (r.stall !== undefined) readerStalls.push(r.stall);
        if (r.summary !== undefined) Object.assign(churn, r.summary);
      }
    });
    tasks.push(
      (async () => {
        while (until()) await sleep(1000);
        readers.stdin.end();
        await exited(readers);
      })(),
    );
  }

  // Hostile clients every 10 s.
  tasks.push(
    (async () => {
      while (Date.now() < endAt - 10_000 && !stopping) {
        await hostile({ http, rtmp, rtsp });
        counts.hostileRounds++;
        await sleep(10_000);
      }
    })(),
  );

  // Samples. A reader's gap is only the server's fault if neither event loop was busy at the time:
  // the largest event-loop delay of each is sampled beside it.
  const soakLag = monitorEventLoopDelay({ resolution: 20 });
  soakLag.enable();
  while (Date.now() < endAt) {
    await sleep(SAMPLE_MS);
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const fds = readdirSync(`/proc/${pid}/fd`).length;
      let connections = -1;
      let feeds = -1;
      let serverLagMaxMs = -1;
      let heapUsedMiB = -1;
      try {
        const info = (await (await fetch(`${base}/api/v1/server`)).json()) as { connections?: number };
        connections = info.connections ?? -1;
        const health = (await (await fetch(`${base}/api/v1/health`)).json()) as { feeds?: number };
        feeds = health.feeds ?? -1;
        const metrics = await (await fetch(`${base}/metrics`)).text();
        const lag = /^feedcast_nodejs_eventloop_lag_max_seconds (\S+)/m.exec(metrics)?.[1];
        if (lag !== undefined) serverLagMaxMs = Math.round(Number(lag) * 1000);
        const heap = /^feedcast_nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)?.[1];
        if (heap !== undefined) heapUsedMiB = Math.round(Number(heap) / 104857.6) / 10;
      } catch {
        // the API is optional for the sample
      }
      samples.push({
        atS: Math.round((Date.now() - startedAt) / 1000),
        rssMiB: Math.round(rssKiB / 102.4) / 10,
        fds,
        connections,
        feeds,
        serverLagMaxMs,
        soakLagMaxMs: Math.round(soakLag.max / 1e6),
        heapUsedMiB,
        load1: Number(loadAverage().split(' ')[0]),
      });
      soakLag.reset();
      console.error(`soak: ${JSON.stringify(samples[samples.length - 1])}`);
    } catch (err) {
      console.error(`soak: server gone? ${String(err)}`);
      break;
    }
  }
  stopping = true;
  await steadyReader;
  await Promise.race([Promise.all(tasks), sleep(30_000)]);
  for (const c of children) c.kill('SIGKILL');
  steady.kill('SIGTERM');
  server.kill('SIGTERM');
  await exited(server);
  writeFileSync(logFile, logLines.join('\n'));

  const parsed = logLines.flatMap((l) => {
    try {
      return [JSON.parse(l) as { level?: string; msg?: string }];
    } catch {
      return [];
    }
  });
  stopSoakWatch();
  // The server's stalls (its log), and each churning-reader gap explained by the stalls that overlap it:
  // the server busy (its own work blocked the loop), waiting for a core (machine load) or blocked in
  // a system call, the readers' process stalled (the client's lag), or none of them.
  const serverStalls = parsed.flatMap((l) => {
    const r = l as { msg?: string; time?: string; wallMs?: number; cause?: string };
    if (r.msg !== 'event loop stalled' || r.time === undefined || r.wallMs === undefined) return [];
    const to = Date.parse(r.time);
    return [{ from: to - r.wallMs, to, cause: r.cause as StallCause }];
  });
  const overlap = (g: { from: number; to: number }, list: Stall[], cause?: StallCause): number =>
    list
      .filter((x) => cause === undefined || x.cause === cause)
      .reduce((sum, x) => sum + Math.max(0, Math.min(g.to, x.to) - Math.max(g.from, x.from)), 0);
  const gapCauses = { serverBusy: 0, serverWaiting: 0, serverBlocked: 0, readersStalled: 0, unexplained: 0 };
  for (const g of gaps) {
    const by = {
      serverBusy: overlap(g, serverStalls, 'busy'),
      serverWaiting: overlap(g, serverStalls, 'waiting'),
      serverBlocked: overlap(g, serverStalls, 'blocked'),
      readersStalled: overlap(g, readerStalls),
    };
    const [cause, ms] = Object.entries(by).sort((a, b) => b[1] - a[1])[0] ?? ['unexplained', 0];
    gapCauses[ms > 0 ? (cause as keyof typeof gapCauses) : 'unexplained']++;
  }
  const stallSummary = (list: Stall[]): Record<string, { count: number; maxMs: number; totalMs: number }> =>
    Object.fromEntries(
      (['busy', 'waiting', 'blocked'] as const).map((cause) => {
        const of = list.filter((x) => x.cause === cause).map((x) => x.to - x.from);
        return [cause, { count: of.length, maxMs: Math.max(0, ...of), totalMs: of.reduce((a, b) => a + b, 0) }];
      }),
    );
  const profile = CPU_PROF ? readdirSync(dir).find((f) => f.endsWith('.cpuprofile')) : undefined;
  const errors = parsed.filter((l) => l.level === 'error' && !EXPECTED_ERRORS.some((re) => re.test(l.msg ?? '')));
  const warnings = new Map<string, number>();
  for (const l of parsed) if (l.level === 'warn') warnings.set(l.msg ?? '', (warnings.get(l.msg ?? '') ?? 0) + 1);
  // Warm-up (the first minute: JIT, first outputs, HLS segmenters) is left out of the slopes.
  const steadyState = samples.filter((s) => s.atS >= 60);
  const summary = {
    minutes: MINUTES,
    samples: samples.length,
    rssMiB: {
      first: samples[0]?.rssMiB,
      last: samples[samples.length - 1]?.rssMiB,
      max: Math.max(...samples.map((s) => s.rssMiB)),
    },
    rssSlopeMiBPerMin: Math.round(slope(steadyState, 'rssMiB') * 100) / 100,
    heapUsedSlopeMiBPerMin: Math.round(slope(steadyState, 'heapUsedMiB') * 100) / 100,
    rssSlopeSecondHalfMiBPerMin: Math.round(slope(samples.slice(Math.floor(samples.length / 2)), 'rssMiB') * 100) / 100,
    fds: { first: samples[0]?.fds, last: samples[samples.length - 1]?.fds, max: Math.max(...samples.map((s) => s.fds)) },
    fdSlopePerMin: Math.round(slope(steadyState, 'fds') * 100) / 100,
    steadyReader: { bytes: steadyBytes, maxGapMs },
    ...counts,
    ...(HOSTILE
      ? {
          hostile: hostileCounts,
          churningReaders: churn,
          feeds: { max: Math.max(...samples.map((s) => s.feeds)), last: samples[samples.length - 1]?.feeds },
          stallsOver200Ms: {
            server: stallSummary(serverStalls),
            readers: stallSummary(readerStalls),
            attackers: stallSummary(soakStalls),
          },
          gapsOver1sBy: gapCauses,
          eventLoopLagMaxMs: {
            server: Math.max(...samples.map((s) => s.serverLagMaxMs)),
            soak: Math.max(...samples.map((s) => s.soakLagMaxMs)),
          },
        }
      : {}),
    server: { nice: niced ? NICE : 0, autogroup: serverAutogroup, attacks: HOSTILE ? ATTACK_NAMES : [] },
    loadAverage: { start: loadAtStart, end: loadAverage() },
    ...(profile !== undefined
      ? {
          cpuProfile: join(dir, profile),
          busiestStretches: busyStretches(JSON.parse(readFileSync(join(dir, profile), 'utf8')) as CpuProfile, 10),
        }
      : {}),
    errorLines: errors.length,
    errorSamples: errors.slice(0, 5),
    warnings: Object.fromEntries(warnings),
    serverExit: server.exitCode,
    log: logFile,
  };
  console.log(JSON.stringify(summary, null, 2));
  const failures: string[] = [];
  if (maxGapMs > STALL_MS) failures.push(`the steady reader stalled for ${maxGapMs} ms`);
  if (steadyBytes === 0) failures.push('the steady reader got nothing');
  if (HOSTILE && churn.gapsOver1s > 0)
    failures.push(`${churn.gapsOver1s} healthy-reader gaps over 1 s (largest ${churn.maxGapMs} ms)`);
  if (errors.length > 0) failures.push(`${errors.length} unexpected error log lines`);
  if (server.exitCode !== 0) failures.push(`the server exited with ${server.exitCode}`);
  for (const f of failures) console.error(`soak: FAIL: ${f}`);
  if (failures.length === 0 && process.env['SOAK_KEEP'] === undefined && !CPU_PROF) rmSync(dir, { recursive: true, force: true });
  return failures.length === 0 ? 0 : 1;
}

process.on('SIGINT', () => {
  stopping = true;
  for (const c of children) c.kill('SIGKILL');
  process.exit(130);
});

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  },
);
