// Side by side: Feedcast, Node-Media-Server and nginx-rtmp under the same load (issue 10).
//
//   npx tsx bench/peers.ts                 loads 1,500,1000 then the ceiling, an 8 s window (~10 min)
//   BENCH_QUICK=1 npx tsx bench/peers.ts   loads 1,500, a 5 s window, no ceiling (~3 min)
//   BENCH_TARGETS=feedcast-flv,nms-flv BENCH_LOADS=1000 BENCH_SECONDS=6 npx tsx bench/peers.ts
//   BENCH_TARGETS=feedcast-srt npx tsx bench/peers.ts   SRT readers alone (BENCH_SRT_LOADS, default 1,20)
//   (BENCH_CEILING=0 skips the ceiling search; BENCH_PIN=1 pins the servers to CPU 0 and the
//   readers to CPU 1 with taskset; FEEDCAST_WRITE_COALESCE_MS goes to Feedcast; BENCH_FEEDCAST=tsx
//   runs Feedcast from the sources instead of a tsc build, =npm-start as `npm start` runs it, =bin as
//   `node bin/feedcast.js` without flags; BENCH_REUSE_BUILD=1 keeps the last build; BENCH_FEEDCAST_NODE_ARGS adds node flags to Feedcast's; BENCH_REPEAT=3 runs the
//   target list three times, interleaved, and gives the ratios as medians of the run pairs;
//   FEEDCAST_NATIVE=off runs Feedcast with Node's socket writes instead of the native fan-out;
//   BENCH_EGRESS_THREADS=1 gives Feedcast `EgressThreads 1`: measure it unpinned, or the thread
//   shares CPU 0 with the main thread)
//
// For each target (server × reader protocol):
//  1. Starts the server on free loopback ports, in a temp dir (nginx: its own nginx.conf,
//     `daemon off`, stopped by PID; installed with apt-get when missing and running as root;
//     Node-Media-Server 4.4.3: the dev dependency, its CLI with a generated config).
//  2. Publishes the same clip as every other bench (bench-util.ts: 720p30 H.264 1.9 Mb/s + AAC),
//     remuxed to FLV, with `ffmpeg -re -stream_loop -1 -i clip.flv -c copy -f flv rtmp://…/live/feed1`
//     (from FLV the audio comes evenly between the video frames, as from a live encoder; from the
//     TS, ffmpeg's demuxer hands each audio frame over just before a video frame), through a
//     TCP tap in this process that walks the publisher's RTMP chunks and notes when each video
//     frame leaves the publisher (its departure lateness = departure wall ms − frame timestamp).
//  3. Runs bench/flv-readers.ts (a separate process: HTTP-FLV, or cheap RTMP or RTSP players, the
//     RTSP ones over TCP-interleaved or UDP: feedcast-rtsp-tcp, feedcast-rtsp-udp) at each load,
//     samples the server's process tree (utime+stime, VmRSS, write system calls) every 500 ms, and
//     computes, over the generator's measuring window: CPU, RSS, writes per reader, bitrate and "every reader at full rate", time to
//     first frame, and the added delay = a reader's mean lateness − the publisher's departure
//     lateness over the same window (the server's share of the delay; ffmpeg → reader direct has
//     no server and, through the same tap, 0 by construction).
//  4. Ceiling: raises the load (1250, 1500, 2000, 2500, 3000) until a reader drops below full rate
//     or the generator falls behind (realtime < 0.97); the last load where all kept up is the ceiling.
//  The feedcast-srt target reads over SRT: each reader is one ffmpeg (libsrt, as players use) that
//  remuxes to FLV with -copyts, read by the same FLV walker, so its delay includes libsrt's receive
//  latency (SRTLatency 120 ms: a packet is handed over 120 ms after it was sent) and ffmpeg's remux;
//  a few readers only (BENCH_SRT_LOADS), no ceiling search.
//  The feedcast-10feeds and feedcast-10feeds-record targets (issue 21's recording bench) publish the
//  clip into ten feeds (feed1 through the tap, feed2-10 directly) and read feed1 over HTTP-FLV; the
//  second records all ten (`Record on`, fMP4, one file a minute, in the run's temp dir). The difference
//  between the two rows is what recording ten 2 Mb/s feeds costs: CPU, and delay added to live readers.
//  Loads BENCH_RECORD_LOADS (default 1,100), no ceiling; the report adds the bytes and files recorded
//  and the frames dropped for a slow disk (from /api/v1/feeds).
//  5. Prints one table per load with the ratios Feedcast / peer (and RTMP, RTSP / Feedcast's
//     HTTP-FLV), the cost curve (CPU, its kernel share, per 1000 readers and per Gb/s), writes
//     .bench-out/peers-<date>.json.

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CLIP_FLV,
  CLK_TCK,
  OUT,
  ROOT,
  alive,
  children,
  freePort,
  freePorts,
  machineTicks,
  mainThreadTicks,
  prepareClip,
  prepareWebRtcClip,
  procRssKB,
  procTicks,
  procUserSys,
  procWriteCalls,
  round,
  runTool,
  say,
  sleep,
  stopChild,
  track,
} from './bench-util.js';
import type { LoadReport, Summary } from './flv-reader-core.js';
import { JANUS, NETNS_ADDRESS, janusConfig, startNetns } from './janus.js';
import { RtmpReader } from './rtmp-reader-core.js';
import { WhepPool, type WhepReport } from './whep-load.js';
import { havePerf, recordPerf, summarizePerf, type PerfSummary } from './perf-profile.js';

// ---------------------------------------------------------------------------------------------
// Settings

const QUICK = process.env['BENCH_QUICK'] === '1';
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? (QUICK ? 5 : 8));
const LOADS = (process.env['BENCH_LOADS'] ?? (QUICK ? '1,500' : '1,500,1000')).split(',').map(Number);
const CEILING = process.env['BENCH_CEILING'] !== undefined ? process.env['BENCH_CEILING'] === '1' : !QUICK;
/** BENCH_CEILING_MAX (default 3000): the highest load the ceiling search tries (Feedcast allows 5000 here). */
const CEILING_MAX = Number(process.env['BENCH_CEILING_MAX'] ?? 3000);
const CEILING_STEPS = [1250, 1500, 2000, 2500, 3000, 3500, 4000, 5000].filter((n) => n <= CEILING_MAX);
/** BENCH_PERF_LOADS (e.g. `1000`): at these loads, a `perf` profile of the server over the window (bench/perf-profile.ts). */
const PERF_LOADS = (process.env['BENCH_PERF_LOADS'] ?? '')
  .split(',')
  .filter((x) => x !== '')
  .map(Number);
const HAVE_PERF = PERF_LOADS.length > 0 && havePerf();
if (PERF_LOADS.length > 0 && !HAVE_PERF)
  process.stderr.write('[bench] BENCH_PERF_LOADS: no `perf` here (linux-perf): no profiles\n');
/** SRT readers are one ffmpeg each: a few (the server's cost per reader shows at 20). */
const SRT_LOADS = (process.env['BENCH_SRT_LOADS'] ?? '1,20').split(',').map(Number);
/** Readers of feed1 while ten feeds are published (and recorded). */
const RECORD_LOADS = (process.env['BENCH_RECORD_LOADS'] ?? '1,100').split(',').map(Number);
const PIN = process.env['BENCH_PIN'] === '1';
/**
 * Runs of the whole target list, interleaved (A B A B …): runs on this shared machine vary by
 * 10-20%, so the ratios are given per run pair and as their median. The ceiling is searched in
 * the first run only.
 */
/** Feedcast's `EgressThreads` (BENCH_EGRESS_THREADS): HTTP-FLV sends on worker threads. Pinned, they share CPU 0. */
const EGRESS_THREADS = Math.max(0, Math.floor(Number(process.env['BENCH_EGRESS_THREADS'] ?? 0)) || 0);
const REPEAT = Math.max(1, Math.floor(Number(process.env['BENCH_REPEAT'] ?? 1)) || 1);
const RAMP = 500;
/**
 * WebRTC viewers (feedcast-whep, janus-whep): each does ICE + DTLS once, then counts RTP headers
 * (bench/whep-load.ts); the viewers stay from one load to the next. The servers are pinned to
 * CPU 0 unless BENCH_PIN=0 (viewers per core is the figure), the viewers run on CPU 1.
 */
const WHEP_LOADS = (process.env['BENCH_WHEP_LOADS'] ?? (QUICK ? '1,50' : '1,50,100,200')).split(',').map(Number);
const WHEP_MAX = Number(process.env['BENCH_WHEP_MAX'] ?? 400);
const WHEP_CEILING_STEPS = [300, 400, 500, 600, 800].filter((n) => n <= WHEP_MAX);
const WHEP_PER_PROCESS = Number(process.env['BENCH_WHEP_PER_PROCESS'] ?? 50);
const WHEP_RAMP = Number(process.env['BENCH_WHEP_RAMP'] ?? 10);
const PIN_WHEP = process.env['BENCH_PIN'] !== '0';
const WARMUP = 2;

type ServerKind = 'feedcast' | 'nms' | 'nginx' | 'janus';
type Protocol = 'flv' | 'rtmp' | 'hls' | 'srt' | 'whep' | 'rtsp-tcp' | 'rtsp-udp';
interface Target {
  name: string;
  server: ServerKind;
  protocol: Protocol;
  /** Feeds published (feed1…feedN; readers read feed1). Feedcast only; default 1. */
  feeds?: number;
  /** `Record on` in every feed (Feedcast only). */
  record?: boolean;
  /** `Workers N` (Feedcast only): N processes on the same ports (docs/cluster.md, "Workers"). */
  workers?: number;
  /** `EgressThreads N` for this target alone (Feedcast only; BENCH_EGRESS_THREADS sets it for every target). */
  egressThreads?: number;
  /** More environment for the server (Feedcast only): A/B switches. */
  env?: Record<string, string>;
}
const ALL_TARGETS: Target[] = [
  { name: 'feedcast-flv', server: 'feedcast', protocol: 'flv' },
  { name: 'nms-flv', server: 'nms', protocol: 'flv' },
  { name: 'feedcast-rtmp', server: 'feedcast', protocol: 'rtmp' },
  { name: 'nginx-rtmp', server: 'nginx', protocol: 'rtmp' },
  { name: 'nms-rtmp', server: 'nms', protocol: 'rtmp' },
  // RTSP players (bench/rtsp-reader-core.ts): RTP interleaved on the RTSP connection, or over UDP.
  { name: 'feedcast-rtsp-tcp', server: 'feedcast', protocol: 'rtsp-tcp' },
  { name: 'feedcast-rtsp-udp', server: 'feedcast', protocol: 'rtsp-udp' },
  // LL-HLS pollers (bench/hls-pollers.ts): "kbit/s" is playlist updates/s, TTFF the first
  // playlist, "added delay" the skew (first poller to get a part → each other poller).
  { name: 'feedcast-llhls', server: 'feedcast', protocol: 'hls' },
  // SRT readers (ffmpeg's libsrt client, see the header).
  { name: 'feedcast-srt', server: 'feedcast', protocol: 'srt' },
  // Recording's cost (issue 21, see the header): ten feeds published, without and with Record on.
  { name: 'feedcast-10feeds', server: 'feedcast', protocol: 'flv', feeds: 10 },
  { name: 'feedcast-10feeds-record', server: 'feedcast', protocol: 'flv', feeds: 10, record: true },
  // WebRTC viewers of a 2 Mb/s H.264 feed (see WHEP_LOADS): Feedcast's WHEP, Janus's streaming plugin.
  { name: 'feedcast-whep', server: 'feedcast', protocol: 'whep' },
  { name: 'janus-whep', server: 'janus', protocol: 'whep' },
  // Both cores (issue 20 part 4): one process, one process with an egress thread, two worker processes
  // (the publisher lands on one; the other relays the feed from it). Unpinned: each may use both cores.
  //   BENCH_TARGETS=feedcast-flv,feedcast-flv-egress1,feedcast-flv-workers2 BENCH_LOADS=1,1000,1500 npx tsx bench/peers.ts
  { name: 'feedcast-flv-egress1', server: 'feedcast', protocol: 'flv', egressThreads: 1 },
  { name: 'feedcast-flv-workers2', server: 'feedcast', protocol: 'flv', workers: 2 },
  { name: 'feedcast-rtmp-workers2', server: 'feedcast', protocol: 'rtmp', workers: 2 },
  // feedcast-whep with werift's RTP sender instead of the direct SRTP path (docs/webrtc.md, "Send path").
  { name: 'feedcast-whep-werift', server: 'feedcast', protocol: 'whep', env: { FEEDCAST_WHEP_SEND: 'werift' } },
  // feedcast-whep without the inbound SRTP/SRTCP check (srtp-guard.ts), switched off by a bench-only
  // preload: the A/B is what verifying the viewers' SRTCP costs (docs/webrtc.md, "Security").
  {
    name: 'feedcast-whep-unverified',
    server: 'feedcast',
    protocol: 'whep',
    env: {
      NODE_OPTIONS:
        `${process.env['NODE_OPTIONS'] ?? ''} --import=${pathToFileURL(join(ROOT, 'scripts/srtp-verify-off.mjs')).href}`.trim(),
    },
  },
];
const DEFAULT_TARGETS =
  'feedcast-flv,nms-flv,feedcast-rtmp,nginx-rtmp,feedcast-rtsp-tcp,feedcast-rtsp-udp,feedcast-llhls,feedcast-srt,feedcast-10feeds,feedcast-10feeds-record,feedcast-whep,janus-whep';
const TARGETS = (process.env['BENCH_TARGETS'] ?? DEFAULT_TARGETS).split(',').map((n) => {
  const t = ALL_TARGETS.find((x) => x.name === n.trim());
  if (t === undefined) throw new Error(`unknown target ${n}: one of ${ALL_TARGETS.map((x) => x.name).join(', ')}`);
  return t;
});

/**
 * The node flags Feedcast ships with: those on bin/feedcast.js's first line
 * (`#!/usr/bin/env -S node --flag ...`), so that the bench runs the server the way `feedcast` does.
 */
const PRODUCT_NODE_ARGS = ((): string[] => {
  const first = readFileSync(join(ROOT, 'bin/feedcast.js'), 'utf8').split('\n', 1)[0] ?? '';
  const flags = /^#!.*\bnode((?:\s+--\S+)*)\s*$/.exec(first)?.[1] ?? '';
  return flags.split(/\s+/).filter((a) => a !== '');
})();

/** More node flags for Feedcast only (BENCH_FEEDCAST_NODE_ARGS, e.g. `--max-semi-space-size=4`): experiments. */
const FEEDCAST_NODE_ARGS = (process.env['BENCH_FEEDCAST_NODE_ARGS'] ?? '').split(/\s+/).filter((a) => a !== '');

/** `taskset -c CPU cmd args` when pinning (`pin`: BENCH_PIN), else the command itself. */
function pinned(cpu: number, cmd: string, args: readonly string[], pin = PIN): [string, string[]] {
  return pin && os.cpus().length > 1 ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, [...args]];
}

// ---------------------------------------------------------------------------------------------
// Servers

interface RunningServer {
  kind: ServerKind;
  version: string;
  child: ChildProcess;
  rtmpPort: number;
  readUrl(protocol: Protocol): string;
  /** The RTMP publish URL of `feed` (default feed1) on `port` (the server's, or the tap's in front of it). */
  publishUrl(port: number, feed?: string): string;
  /** Recorded bytes, files and dropped fragments, summed over the feeds (Feedcast with Record on). */
  recordingTotals?(): Promise<RecordingTotals>;
  /** Runs a command where the server's readers are (Janus: in its network namespace). */
  wrap?: (cmd: string, args: string[]) => [string, string[]];
  /** The address WebRTC viewers gather their host candidates on. */
  viewerHost?: string;
  cleanup(): void;
}

function waitPort(port: number, child: ChildProcess, what: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (!alive(child)) return reject(new Error(`${what} exited before listening:\n${log()}`));
      if (Date.now() > deadline) return reject(new Error(`${what} did not listen on ${port} within 30 s:\n${log()}`));
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        setTimeout(attempt, 200);
      });
    };
    attempt();
  });
}

function spawnServer(
  cmd: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
  pin = PIN,
): { child: ChildProcess; log: () => string } {
  const [c, a] = pinned(0, cmd, args, pin);
  const child = track(spawn(c, a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env }));
  let tail = '';
  const keep = (d: Buffer): void => void (tail = (tail + d.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, log: () => tail };
}

interface RecordingTotals {
  bytesWritten: number;
  files: number;
  framesDropped: number;
  writeErrors: number;
}

/** Sums the `recording` objects of GET /api/v1/feeds (docs/api.md). */
async function fetchRecordingTotals(httpPort: number): Promise<RecordingTotals> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/feeds`);
  const body = (await res.json()) as { feeds: { recording?: Record<string, unknown> | null }[] };
  const totals: RecordingTotals = { bytesWritten: 0, files: 0, framesDropped: 0, writeErrors: 0 };
  for (const f of body.feeds) {
    const r = f.recording;
    if (r === undefined || r === null) continue;
    for (const k of Object.keys(totals) as (keyof RecordingTotals)[]) totals[k] += Number(r[k] ?? 0) || 0;
  }
  return totals;
}

/** Targets that use more than one core (Workers, EgressThreads): under BENCH_PIN their server is not pinned. */
function multiCore(target: Target): boolean {
  return (target.workers ?? 1) > 1 || (target.egressThreads ?? EGRESS_THREADS) > 0;
}

async function startFeedcast(target: Target): Promise<RunningServer> {
  // Pinned runs keep the load generator on CPU 1; a server made to use both cores gets both (shared with it).
  const pin = target.protocol === 'whep' ? PIN_WHEP : PIN && !multiCore(target);
  const dir = mkdtempSync(join(os.tmpdir(), 'feedcast-bench-'));
  // The SRT port is UDP: a port free for TCP is almost always free for UDP too.
  const [http = 0, rtmp = 0, rtsp = 0, srt = 0] = await freePorts(4);
  const conf = join(dir, 'feedcast.conf');
  writeFileSync(
    conf,
    [
      `HTTPPort ${http}`,
      'HTTPBindAddress 127.0.0.1',
      `RTMPPort ${rtmp}`,
      'RTMPBindAddress 127.0.0.1',
      `RTSPPort ${rtsp}`,
      'RTSPBindAddress 127.0.0.1',
      `SRTPort ${srt}`,
      'SRTBindAddress 127.0.0.1',
      // An RTSP reader holds two slots, its connection and its RTP session (ffserver's count, docs/config.md):
      // 3000 RTSP readers need 6001, and with 5000 the last 501 of them got 503.
      'MaxClients 10000',
      'MaxHTTPConnections 10000',
      '# Every reader comes from 127.0.0.1: no per-address cap (default 64).',
      'MaxConnectionsPerAddress 0',
      'MaxBandwidth 10000000',
      ...((target.egressThreads ?? EGRESS_THREADS) > 0 ? [`EgressThreads ${target.egressThreads ?? EGRESS_THREADS}`] : []),
      ...(target.workers !== undefined ? [`Workers ${target.workers}`] : []),
      ...Array.from({ length: target.feeds ?? 1 }, (_, i) => [
        `<Feed feed${i + 1}.ffm>`,
        ...(target.record === true ? ['Record on', `RecordPath ${join(dir, 'rec')}/%feed/%H-%M-%S.mp4`, 'RecordSegment 60'] : []),
        '</Feed>',
      ]).flat(),
      '',
    ].join('\n'),
  );
  const nodeArgs = [...feedcastCommand(), ...FEEDCAST_NODE_ARGS];
  const { child, log } = spawnServer(
    process.execPath,
    [...nodeArgs, '-f', conf],
    {
      ...process.env,
      FEEDCAST_LOG_FORMAT: 'json',
      FEEDCAST_LOG_LEVEL: 'warn',
      ...target.env,
    },
    pin,
  );
  await waitPort(http, child, 'Feedcast', log);
  await waitPort(rtmp, child, 'Feedcast', log);
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const coalesce = process.env['FEEDCAST_WRITE_COALESCE_MS'];
  return {
    kind: 'feedcast',
    version: `${version} (${[FEEDCAST_BUILD, ...Object.entries(target.env ?? {}).map(([k, v]) => `${k}=${v}`), ...(coalesce !== undefined ? [`write coalesce ${coalesce}`] : []), ...((target.egressThreads ?? EGRESS_THREADS) > 0 ? [`EgressThreads ${target.egressThreads ?? EGRESS_THREADS}`] : []), ...(target.workers !== undefined ? [`Workers ${target.workers}`] : []), ...nodeArgs].join(', ')})`,
    child,
    rtmpPort: rtmp,
    readUrl: (p) =>
      p === 'flv'
        ? `http://127.0.0.1:${http}/feed1.flv`
        : p === 'hls'
          ? `http://127.0.0.1:${http}/feed1/index.m3u8`
          : p === 'srt'
            ? `srt://127.0.0.1:${srt}?streamid=read:feed1`
            : p === 'whep'
              ? `http://127.0.0.1:${http}/feed1/whep`
              : p === 'rtsp-tcp' || p === 'rtsp-udp'
                ? `rtsp://127.0.0.1:${rtsp}/feed1`
                : `rtmp://127.0.0.1:${rtmp}/live/feed1`,
    publishUrl: (port, feed = 'feed1') => `rtmp://127.0.0.1:${port}/live/${feed}`,
    ...(target.record === true ? { recordingTotals: () => fetchRecordingTotals(http) } : {}),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function startNms(): Promise<RunningServer> {
  const app = join(ROOT, 'node_modules/node-media-server/bin/app.js');
  let version: string;
  try {
    version = (JSON.parse(readFileSync(join(ROOT, 'node_modules/node-media-server/package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    throw new SkipTarget('node-media-server is not installed: npm install --save-dev node-media-server@4.4.3');
  }
  const dir = mkdtempSync(join(os.tmpdir(), 'nms-bench-'));
  const [http = 0, rtmp = 0] = await freePorts(2);
  const conf = join(dir, 'config.json');
  writeFileSync(
    conf,
    JSON.stringify({
      bind: '127.0.0.1',
      notify: { url: '' },
      store: { path: join(dir, 'data'), maxHistory: 100 },
      auth: { play: false, publish: false, secret: '' },
      rtmp: { port: rtmp },
      http: { port: http },
      webadmin: { enable: false },
      record: { auto: false, path: join(dir, 'record') },
    }),
  );
  const { child, log } = spawnServer(process.execPath, [app, '-c', conf, '--no-admin']);
  await waitPort(rtmp, child, 'Node-Media-Server', log);
  await waitPort(http, child, 'Node-Media-Server', log);
  return {
    kind: 'nms',
    version,
    child,
    rtmpPort: rtmp,
    readUrl: (p) => (p === 'flv' ? `http://127.0.0.1:${http}/live/feed1.flv` : `rtmp://127.0.0.1:${rtmp}/live/feed1`),
    publishUrl: (port) => `rtmp://127.0.0.1:${port}/live/feed1`,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

class SkipTarget extends Error {}

/** Loads the generator could not finish, by target and load. */
const failures: Record<string, string> = {};

/**
 * How Feedcast runs (BENCH_FEEDCAST), so that each documented way of starting it can be measured:
 * - `dist` (the default): compiled with tsc into .bench-out/dist and run with plain node and the flags
 *   of bin/feedcast.js's first line, as the installed `feedcast` command runs;
 * - `npm-start`: the command of package.json's `start` script, in this checkout (npm's own process,
 *   which waits beside the server, is left out);
 * - `bin`: `node bin/feedcast.js` with no node flag (the first line's flags do not apply then);
 * - `tsx`: `node --import tsx src/main.ts`, the sources through the TypeScript loader (~40 MB more RSS).
 */
const FEEDCAST_MODES = ['dist', 'npm-start', 'bin', 'tsx'] as const;
let FEEDCAST_BUILD: (typeof FEEDCAST_MODES)[number] = ((): (typeof FEEDCAST_MODES)[number] => {
  const mode = process.env['BENCH_FEEDCAST'] ?? 'dist';
  const known = FEEDCAST_MODES.find((m) => m === mode);
  if (known === undefined) throw new Error(`BENCH_FEEDCAST=${mode}: one of ${FEEDCAST_MODES.join(', ')}`);
  return known;
})();

/** node's arguments up to the server's own (`-f CONF` follows), for FEEDCAST_BUILD. */
function feedcastCommand(): string[] {
  switch (FEEDCAST_BUILD) {
    case 'dist':
      return [...PRODUCT_NODE_ARGS, join(OUT, 'dist/main.js')];
    case 'tsx':
      return [...PRODUCT_NODE_ARGS, '--import', 'tsx', join(ROOT, 'src/main.ts')];
    case 'bin':
      return [join(ROOT, 'bin/feedcast.js')];
    case 'npm-start': {
      const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts
        .start;
      const [node, ...args] = start.split(/\s+/);
      if (node !== 'node') throw new Error(`npm start runs ${start}: not a node command this bench can run`);
      return args.map((a) => (a.endsWith('.js') || a.endsWith('.ts') ? join(ROOT, a) : a));
    }
  }
}

/**
 * The native modules as `npm ci` builds them: a checkout updated since its last install may lack a newer
 * one (build/native/rtp-udp.node for RTSP readers over UDP), and Feedcast would quietly run without it.
 */
function buildNativeModules(): void {
  const natives = spawnSync(process.execPath, [join(ROOT, 'scripts/build-native.mjs')], {
    cwd: ROOT,
    timeout: 240_000,
    encoding: 'utf8',
  });
  for (const line of (natives.stdout ?? '').split('\n')) if (line.includes('not built')) say(line);
}

function buildFeedcast(): void {
  if (FEEDCAST_BUILD === 'tsx') return;
  if (FEEDCAST_BUILD === 'bin' || FEEDCAST_BUILD === 'npm-start') {
    buildNativeModules();
    // bin/feedcast.js brings dist/ up to date itself; done here first so that no start waits on it.
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/build-dist.mjs')], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('scripts/build-dist.mjs failed');
    return;
  }
  if (process.env['BENCH_REUSE_BUILD'] === '1' && existsSync(join(OUT, 'dist/main.js'))) return;
  buildNativeModules();
  say('compiling Feedcast into .bench-out/dist (tsc -p tsconfig.build.json)…');
  rmSync(join(OUT, 'dist'), { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', join(OUT, 'dist')], {
    cwd: ROOT,
    timeout: 240_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // main.js reads ../package.json, serves ../web and ../assets and loads ../build/native: the same layout one level down.
  for (const name of ['package.json', 'web', 'assets', 'build']) {
    rmSync(join(OUT, name), { force: true, recursive: false });
    symlinkSync(join('..', name), join(OUT, name));
  }
  if (!existsSync(join(OUT, 'dist/main.js'))) {
    say(`tsc produced no dist/main.js (${r.stdout?.toString().slice(0, 300) ?? ''}): running Feedcast through tsx`);
    FEEDCAST_BUILD = 'tsx';
  } else if (r.status !== 0) {
    say(`tsc reported errors (the build is used anyway): ${r.stdout?.toString().slice(0, 300) ?? ''}`);
  }
}

const RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

function haveNginx(): boolean {
  return spawnSync('nginx', ['-v']).status === 0 && readdirSync('/usr/lib/nginx/modules').includes('ngx_rtmp_module.so');
}

function ensureNginx(): void {
  let ok = false;
  try {
    ok = haveNginx();
  } catch {
    ok = false;
  }
  if (ok) return;
  if (process.getuid?.() !== 0)
    throw new SkipTarget('nginx with libnginx-mod-rtmp is missing (apt-get install -y nginx libnginx-mod-rtmp as root)');
  say('installing nginx and libnginx-mod-rtmp with apt-get…');
  const r = spawnSync('apt-get', ['install', '-y', 'nginx', 'libnginx-mod-rtmp'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 300_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  try {
    ok = haveNginx();
  } catch {
    ok = false;
  }
  if (!ok) throw new SkipTarget(`apt-get install nginx libnginx-mod-rtmp failed: ${r.stderr?.toString().slice(-300) ?? ''}`);
}

async function startNginx(): Promise<RunningServer> {
  ensureNginx();
  const version = spawnSync('nginx', ['-v'])
    .stderr.toString()
    .trim()
    .replace(/^nginx version: /, '');
  const dir = mkdtempSync(join(os.tmpdir(), 'nginx-bench-'));
  const rtmp = await freePort();
  // Our own config on a loopback port, never the machine's default site; one worker like the
  // single event loop of the Node servers.
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      `load_module ${RTMP_MODULE};`,
      'daemon off;',
      'worker_processes 1;',
      'worker_rlimit_nofile 16384;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'events { worker_connections 8192; }',
      'rtmp {',
      '  server {',
      `    listen 127.0.0.1:${rtmp};`,
      '    chunk_size 4096;',
      '    application live { live on; }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const { child, log } = spawnServer('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]);
  await waitPort(rtmp, child, 'nginx', log);
  return {
    kind: 'nginx',
    version: `${version} + libnginx-mod-rtmp`,
    child,
    rtmpPort: rtmp,
    readUrl: () => `rtmp://127.0.0.1:${rtmp}/live/feed1`,
    publishUrl: (port) => `rtmp://127.0.0.1:${port}/live/feed1`,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Janus in a network namespace of its own (bench/janus.ts: it gathers no candidates on loopback),
 * its HTTP API on the namespace's 127.0.0.1:8088 and its mountpoint's RTP on 127.0.0.1:5004; the
 * publisher and the viewers run in the namespace too (`wrap`).
 */
async function startJanus(): Promise<RunningServer> {
  if (!existsSync(JANUS)) throw new SkipTarget(`${JANUS} is missing (apt-get install -y janus)`);
  if (process.getuid?.() !== 0) throw new SkipTarget('the Janus row needs root (a network namespace: unshare -n)');
  const ns = await startNetns();
  const setup = janusConfig(8088, 5004);
  const [cmd, args] = ns.wrap(JANUS, setup.args);
  const { child, log } = spawnServer(cmd, args, process.env, PIN_WHEP);
  const cleanup = (): void => {
    ns.holder.kill('SIGKILL');
    rmSync(setup.dir, { recursive: true, force: true });
  };
  // Its API answers `info` once it is up (asked from inside the namespace).
  const deadline = Date.now() + 30_000;
  const info = ns.wrap('curl', ['-s', '-m', '2', '-X', 'POST', '-d', '{"janus":"info","transaction":"up"}', setup.apiUrl]);
  try {
    while (!(await runTool(info[0], info[1], 5000).catch(() => '')).includes('server_info')) {
      if (!alive(child)) throw new Error(`Janus exited:\n${log()}`);
      if (Date.now() > deadline) throw new Error(`Janus's HTTP API did not answer within 30 s:\n${log()}`);
      await sleep(300);
    }
  } catch (err) {
    await stopChild(child);
    cleanup();
    throw err;
  }
  return {
    kind: 'janus',
    version: setup.version,
    child,
    rtmpPort: 0,
    readUrl: () => setup.apiUrl,
    publishUrl: () => `rtp://127.0.0.1:${setup.rtpPort}`,
    wrap: ns.wrap,
    viewerHost: NETNS_ADDRESS,
    cleanup,
  };
}

function startServer(target: Target): Promise<RunningServer> {
  if (target.server === 'feedcast') return startFeedcast(target);
  if (target.server === 'nms') return startNms();
  if (target.server === 'janus') return startJanus();
  return startNginx();
}

// ---------------------------------------------------------------------------------------------
// The publisher, through a tap that notes when each video frame leaves it

class PublisherTap {
  private readonly server: net.Server;
  port = 0;
  sampling = false;
  latSum = 0;
  latCount = 0;
  frames = 0;
  private readonly sockets = new Set<net.Socket>();

  constructor(upstreamPort: number) {
    this.server = net.createServer((client) => {
      const up = net.connect(upstreamPort, '127.0.0.1');
      this.sockets.add(client).add(up);
      const walker = RtmpReader.tap({
        onVideoFrame: (at, ts) => {
          this.frames++;
          if (!this.sampling) return;
          this.latSum += at - ts;
          this.latCount++;
        },
      });
      client.on('data', (d: Buffer) => walker.feed(d));
      client.pipe(up);
      up.pipe(client);
      const end = (): void => {
        client.destroy();
        up.destroy();
      };
      client.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const a = this.server.address();
    this.port = typeof a === 'object' && a !== null ? a.port : 0;
  }

  reset(): void {
    this.latSum = 0;
    this.latCount = 0;
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

/** ffmpeg sends the clip in real time, in a loop: as RTMP (FLV), or as H.264 RTP (payload type 96) for Janus. */
function startPublisher(
  url: string,
  clip = CLIP_FLV,
  wrap: (cmd: string, args: string[]) => [string, string[]] = (c, a) => [c, a],
): { child: ChildProcess; stderr: () => string } {
  let err = '';
  const rtp = url.startsWith('rtp:');
  // prettier-ignore
  const [cmd, args] = wrap('ffmpeg', [
    '-hide_banner', '-loglevel', 'warning', '-nostdin', '-nostats',
    '-re', '-stream_loop', '-1', '-i', clip,
    '-c', 'copy', ...(rtp ? ['-f', 'rtp', '-payload_type', '96'] : ['-f', 'flv', '-flvflags', 'no_duration_filesize']), url,
  ]);
  const child = track(spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return { child, stderr: () => err };
}

// ---------------------------------------------------------------------------------------------
// Sampling the server's process tree

function treePids(root: number): number[] {
  const parents = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(e), Number(f[1]));
    } catch {
      // gone
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parents) if (ppid === out[i]) out.push(pid);
  return out;
}

/** Busy (all but idle and iowait) and total ticks of CPU 0 and CPU 1, from /proc/stat. */
function perCpuTicks(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = [];
  for (const line of readFileSync('/proc/stat', 'latin1').split('\n')) {
    if (!/^cpu[01] /.test(line)) continue;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((x, y) => x + y, 0);
    out.push({ busy: total - (v[3] ?? 0) - (v[4] ?? 0), total });
  }
  return out;
}

/** RcvbufErrors and SndbufErrors of /proc/PID/net/snmp: the UDP drops of the network namespace PID is in. */
function udpErrors(pid: number): { udpRcvbufErrors: number; udpSndbufErrors: number } {
  try {
    const lines = readFileSync(`/proc/${pid}/net/snmp`, 'latin1')
      .split('\n')
      .filter((l) => l.startsWith('Udp: '));
    const names = (lines[0] ?? '').split(/\s+/);
    const values = (lines[1] ?? '').split(/\s+/).map(Number);
    const at = (name: string): number => values[names.indexOf(name)] ?? 0;
    return { udpRcvbufErrors: at('RcvbufErrors'), udpSndbufErrors: at('SndbufErrors') };
  } catch {
    return { udpRcvbufErrors: 0, udpSndbufErrors: 0 };
  }
}

interface Sample {
  t: number;
  serverTicks: number;
  /** The server's main thread alone (Feedcast with EgressThreads: without its egress threads). */
  serverMainTicks: number | undefined;
  serverRssKB: number;
  serverWrites: number;
  /** UDP datagrams dropped in the server's network namespace: receive buffers full, send buffers full. */
  udpRcvbufErrors: number;
  udpSndbufErrors: number;
  /** Busy and total ticks of CPU 0 and CPU 1 (the pinned server's core and the viewers'), whoever used them. */
  cpus: { busy: number; total: number }[];
  genTicks: number | undefined;
  pubTicks: number | undefined;
  machine: { busy: number; irq: number; total: number };
  /** The server tree's stime alone (kernel time, in the same ticks). */
  serverSysTicks: number;
}

class Sampler {
  readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pids: number[] = [];
  genPids: number[] = [];
  /**
   * The port the readers connect to: every second, the TCP segments the server has sent on its
   * established connections from that port (`ss -ti`, segs_out summed). This is what the
   * kernel's per-packet work follows, whichever system call made the segments; /proc's syscw
   * (writes above) counts only the write() family, not send().
   */
  segPort: number | undefined;
  private readonly segSamples: { t: number; segs: number }[] = [];
  private segTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly root: number,
    private readonly pubPid: number | undefined,
  ) {}

  start(): void {
    this.pids = treePids(this.root);
    this.take();
    this.timer = setInterval(() => this.take(), 500);
    this.segTimer = setInterval(() => this.takeSegments(), 1000);
  }

  stop(): void {
    clearInterval(this.timer);
    clearInterval(this.segTimer);
  }

  private takeSegments(): void {
    const port = this.segPort;
    if (port === undefined) return;
    const t = Date.now();
    // prettier-ignore
    execFile('ss', ['-tinH', 'state', 'established', '(', 'sport', '=', `:${port}`, ')'], { maxBuffer: 64 << 20, timeout: 900 }, (err, out) => {
      if (err !== null || port !== this.segPort) return;
      let segs = 0;
      for (const m of out.matchAll(/\bsegs_out:(\d+)/g)) segs += Number(m[1]);
      this.segSamples.push({ t, segs });
    });
  }

  private take(): void {
    if (this.samples.length % 10 === 0) this.pids = treePids(this.root);
    let ticks = 0;
    let sys = 0;
    let rss = 0;
    let writes = 0;
    for (const p of this.pids) {
      const t = procUserSys(p);
      ticks += t === undefined ? 0 : t.user + t.sys;
      sys += t?.sys ?? 0;
      rss += procRssKB(p) ?? 0;
      writes += procWriteCalls(p) ?? 0;
    }
    this.samples.push({
      t: Date.now(),
      serverTicks: ticks,
      serverSysTicks: sys,
      serverMainTicks: mainThreadTicks(this.root),
      serverRssKB: rss,
      serverWrites: writes,
      ...udpErrors(this.root),
      cpus: perCpuTicks(),
      genTicks: this.genPids.length === 0 ? undefined : this.genPids.reduce((a, p) => a + (procTicks(p) ?? 0), 0),
      pubTicks: procTicks(this.pubPid),
      machine: machineTicks(),
    });
  }

  /** Over [t0, t1]: CPU % of one core of the server, the generator, the publisher, irq and the rest. */
  window(
    t0: number,
    t1: number,
  ):
    | {
        cpu: number;
        sysCpu: number;
        rssMaxMB: number;
        writesPerSec: number;
        udpDrops: { rcvbuf: number; sndbuf: number };
        cpuBusyPct: number[];
        segmentsPerSec: number | null;
        mainCpu: number | null;
        gen: number | null;
        others: number | null;
        irq: number;
      }
    | undefined {
    const inside = this.samples.filter((s) => s.t >= t0 && s.t <= t1);
    const a = inside[0];
    const b = inside[inside.length - 1];
    if (a === undefined || b === undefined || b.t - a.t < 1000) return undefined;
    const sec = (b.t - a.t) / 1000;
    const pct = (ticks: number): number => round((ticks / CLK_TCK / sec) * 100);
    const cpu = pct(b.serverTicks - a.serverTicks);
    const gen = a.genTicks !== undefined && b.genTicks !== undefined ? pct(b.genTicks - a.genTicks) : null;
    const pub = a.pubTicks !== undefined && b.pubTicks !== undefined ? pct(b.pubTicks - a.pubTicks) : 0;
    const busy = pct(b.machine.busy - a.machine.busy);
    const irq = pct(b.machine.irq - a.machine.irq);
    const others = gen === null ? null : round(busy - cpu - gen - pub - irq);
    const writesPerSec = round((b.serverWrites - a.serverWrites) / sec);
    const segs = this.segSamples.filter((s) => s.t >= t0 && s.t <= t1);
    const sa = segs[0];
    const sb = segs[segs.length - 1];
    const segmentsPerSec =
      sa !== undefined && sb !== undefined && sb.t - sa.t >= 1000 ? round((sb.segs - sa.segs) / ((sb.t - sa.t) / 1000)) : null;
    const mainCpu =
      a.serverMainTicks !== undefined && b.serverMainTicks !== undefined ? pct(b.serverMainTicks - a.serverMainTicks) : null;
    return {
      cpu,
      sysCpu: pct(b.serverSysTicks - a.serverSysTicks),
      mainCpu,
      rssMaxMB: round(Math.max(...inside.map((s) => s.serverRssKB)) / 1024),
      writesPerSec,
      udpDrops: { rcvbuf: b.udpRcvbufErrors - a.udpRcvbufErrors, sndbuf: b.udpSndbufErrors - a.udpSndbufErrors },
      cpuBusyPct: b.cpus.map((c, i) => {
        const before = a.cpus[i];
        return before === undefined || c.total === before.total
          ? 0
          : round(((c.busy - before.busy) / (c.total - before.total)) * 100);
      }),
      segmentsPerSec,
      gen,
      others,
      irq,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// One load

type GenReport = LoadReport;

interface LoadResult {
  target: string;
  /** With Record on: what the recorder had written by the end of this load (bytes since the first load). */
  recorded?: RecordingTotals;
  /** Which run of the target list (1 … BENCH_REPEAT). */
  run: number;
  server: string;
  readers: number;
  fullRate: number;
  kbpsP50: number | null;
  kbpsMin: number | null;
  realtimeMin: number | null;
  ttffP50: number | null;
  ttffP95: number | null;
  delayP50: number | null;
  delayMax: number | null;
  cpuPct: number | null;
  /** The part of cpuPct spent in the kernel (the tree's stime). */
  sysCpuPct: number | null;
  /** The server's main thread's CPU (the root process's first thread), % of one core. */
  mainThreadCpuPct: number | null;
  /** The server's write-family system calls per second (all sockets; send() is not counted), over the window. */
  writesPerSec: number | null;
  /** UDP datagrams the kernel dropped over the window in the server's network namespace (all sockets). */
  udpDrops: { rcvbuf: number; sndbuf: number } | null;
  /** How busy CPU 0 and CPU 1 were over the window (%), every process on the machine counted. */
  cpuBusyPct: number[] | null;
  /** TCP segments per second the server sent to the readers (ss segs_out on the read port), over the window. */
  segmentsPerSec: number | null;
  rssMB: number | null;
  rssIdleMB: number | null;
  genCpuPct: number | null;
  othersPct: number | null;
  irqPct: number | null;
  noFirstFrame: number;
  errors: Record<string, number>;
  keptUp: boolean;
  /** BENCH_PERF_LOADS: the server's perf profile over the window. */
  perf?: PerfSummary;
  /** WebRTC rows: packet rates, loss, set-up, and the viewer processes' own load. */
  whep?: WhepReport['whep'] & { genProcesses: number; genMaxProcessCpuPct: number; genLoopDelayP99Ms: number };
}

interface HlsReport {
  readers: number;
  window: { startMs: number; endMs: number; seconds: number };
  errors: Record<string, number>;
  statuses: Record<string, number>;
  updatesPerSec: Summary;
  fullRate: { count: number };
  firstResponseMs: Summary;
  skewMs: Summary;
  generator: { cpuPct: number };
}

/** The HLS pollers' report in the readers' shape (see the feedcast-llhls target). */
function fromHls(h: HlsReport): GenReport {
  return {
    readers: h.readers,
    window: h.window,
    statuses: h.statuses,
    errors: h.errors,
    gotFirstFrame: h.firstResponseMs.n,
    framingErrors: 0,
    kbps: h.updatesPerSec,
    fullRate: { threshold: null, count: h.fullRate.count },
    realtime: { n: 1, min: 1, p50: 1, p95: 1, max: 1, mean: 1 },
    ttffMs: h.firstResponseMs,
    latenessRawMs: { meanPerReader: { ...h.skewMs }, maxPerReader: { ...h.skewMs } },
    generator: { cpuPct: h.generator.cpuPct, eventLoopDelayP99Ms: 0 },
  };
}

function runGenerator(
  url: string,
  n: number,
  refKbps: number,
  sampler: Sampler,
  protocol: Protocol,
  onWindow?: () => void,
): Promise<GenReport> {
  // prettier-ignore
  const [cmd, args] = pinned(1, process.execPath, protocol === 'hls'
    ? ['--import', 'tsx', join(ROOT, 'bench/hls-pollers.ts'), url, String(n), String(SECONDS), '--ramp', String(RAMP)]
    : [
      '--import', 'tsx', join(ROOT, 'bench/flv-readers.ts'), url, String(n), String(SECONDS),
      '--ref-kbps', String(refKbps), '--ramp', String(RAMP), '--warmup', String(WARMUP),
      ...(protocol === 'rtsp-udp' ? ['--rtsp-transport', 'udp'] : []),
    ]);
  const child = track(spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  sampler.genPids = child.pid !== undefined ? [child.pid] : [];
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  let windowSeen = false;
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
    // Both generators say so on stderr when their measuring window starts.
    if (!windowSeen && /window of \d+ s starts/.test(err)) {
      windowSeen = true;
      onWindow?.();
    }
  });
  const boundMs = (n / RAMP + 10 + WARMUP + SECONDS + 30) * 1000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), boundMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      sampler.genPids = [];
      if (code !== 0) return reject(new Error(`load generator failed (${signal ?? `exit ${code}`}):\n${err}`));
      try {
        const parsed = JSON.parse(out) as GenReport | HlsReport;
        resolve(protocol === 'hls' ? fromHls(parsed as HlsReport) : (parsed as GenReport));
      } catch {
        reject(new Error(`load generator printed no report:\n${err}`));
      }
    });
  });
}

/** WebRTC viewers: the pool grows to `n`, then one window over all of them. */
async function runWhepGenerator(pool: WhepPool, n: number, sampler: Sampler, onWindow?: () => void): Promise<WhepReport> {
  await pool.grow(n);
  sampler.genPids = pool.pids;
  // pool.measure's window starts WARMUP seconds from now.
  const windowTimer = onWindow !== undefined ? setTimeout(onWindow, WARMUP * 1000) : undefined;
  try {
    return await pool.measure(WARMUP, SECONDS);
  } finally {
    clearTimeout(windowTimer);
    sampler.genPids = [];
  }
}

async function runLoad(
  target: Target,
  srv: RunningServer,
  tap: PublisherTap | undefined,
  sampler: Sampler,
  n: number,
  refKbps: number,
  rssIdleMB: number,
  run: number,
  pool: WhepPool | undefined,
): Promise<LoadResult> {
  say(`${target.name}: ${n} readers…`);
  // The tap's departure lateness over the same window as the readers'.
  const url = srv.readUrl(target.protocol);
  sampler.segPort = target.protocol === 'whep' ? undefined : Number(new URL(url).port);
  // A perf profile of the server's tree over the window, at the loads BENCH_PERF_LOADS names.
  let perf: Promise<PerfSummary | undefined> | undefined;
  const perfFile = join(OUT, `perf-${target.name}-${n}-run${run}.data`);
  const onWindow =
    HAVE_PERF && PERF_LOADS.includes(n)
      ? (): void => {
          const { done } = recordPerf(treePids(srv.child.pid!), SECONDS, perfFile);
          perf = done.then((ok) => (ok ? summarizePerf(perfFile) : undefined));
        }
      : undefined;
  const gen: Promise<GenReport | WhepReport> =
    pool !== undefined
      ? runWhepGenerator(pool, n, sampler, onWindow)
      : runGenerator(url, n, refKbps, sampler, target.protocol, onWindow);
  tap?.reset();
  if (tap !== undefined) tap.sampling = true;
  let report: GenReport | WhepReport;
  try {
    report = await gen;
  } finally {
    if (tap !== undefined) tap.sampling = false;
  }
  const whep = 'whep' in report ? report : undefined;
  const perfSummary = perf !== undefined ? await perf : undefined;
  if (perfSummary !== undefined) say(`${target.name} N=${n}: ${perfReport(perfSummary)}`);
  // Departure lateness: the publisher is paced by -re, so its mean over the run is its mean over the window.
  const pubLat = tap !== undefined && tap.latCount > 0 ? tap.latSum / tap.latCount : undefined;
  const w = sampler.window(report.window.startMs, report.window.endMs);
  const lat = report.latenessRawMs.meanPerReader;
  const keptUp = report.fullRate.count === n && (report.realtime.min ?? 0) >= 0.97;
  return {
    target: target.name,
    run,
    server: srv.version,
    readers: n,
    fullRate: report.fullRate.count,
    kbpsP50: report.kbps.p50,
    kbpsMin: report.kbps.min,
    realtimeMin: report.realtime.min,
    ttffP50: report.ttffMs.p50,
    ttffP95: report.ttffMs.p95,
    delayP50: target.protocol === 'hls' ? lat.p50 : pubLat === undefined || lat.p50 === null ? null : round(lat.p50 - pubLat),
    delayMax:
      target.protocol === 'hls'
        ? report.latenessRawMs.maxPerReader.max
        : pubLat === undefined || report.latenessRawMs.maxPerReader.max === null
          ? null
          : round(report.latenessRawMs.maxPerReader.max - pubLat),
    cpuPct: w?.cpu ?? null,
    sysCpuPct: w?.sysCpu ?? null,
    mainThreadCpuPct: w?.mainCpu ?? null,
    writesPerSec: w?.writesPerSec ?? null,
    udpDrops: w?.udpDrops ?? null,
    cpuBusyPct: w?.cpuBusyPct ?? null,
    segmentsPerSec: w?.segmentsPerSec ?? null,
    rssMB: w?.rssMaxMB ?? null,
    rssIdleMB,
    genCpuPct: report.generator.cpuPct,
    othersPct: w?.others ?? null,
    irqPct: w?.irq ?? null,
    noFirstFrame: n - report.gotFirstFrame,
    errors: report.errors,
    keptUp,
    ...(perfSummary !== undefined ? { perf: perfSummary } : {}),
    ...(whep !== undefined
      ? {
          whep: {
            ...whep.whep,
            genProcesses: whep.generator.processes,
            genMaxProcessCpuPct: round(whep.generator.maxProcessCpuPct),
            genLoopDelayP99Ms: round(whep.generator.eventLoopDelayP99Ms),
          },
        }
      : {}),
  };
}

async function runTarget(
  target: Target,
  refKbps: number,
  run: number,
): Promise<{ results: LoadResult[]; ceiling: number | null; skipped?: string }> {
  let srv: RunningServer;
  try {
    srv = await startServer(target);
  } catch (err) {
    if (err instanceof SkipTarget) {
      say(`${target.name}: skipped: ${err.message}`);
      return { results: [], ceiling: null, skipped: err.message };
    }
    throw err;
  }
  const whep = target.protocol === 'whep';
  // Janus takes RTP: no RTMP to tap.
  const tap = srv.kind === 'janus' ? undefined : new PublisherTap(srv.rtmpPort);
  await tap?.listen();
  const clip = whep ? (webRtcClip ?? (await prepareWebRtcClip())).path : CLIP_FLV;
  const pub = startPublisher(srv.publishUrl(tap?.port ?? 0), clip, srv.wrap);
  const pool = whep
    ? new WhepPool({
        kind: srv.kind === 'janus' ? 'janus' : 'feedcast',
        url: srv.readUrl('whep'),
        host: srv.viewerHost ?? '127.0.0.1',
        perChild: WHEP_PER_PROCESS,
        rampPerSec: WHEP_RAMP,
        wrap: (cmd, args) => {
          const [c, a] = srv.wrap !== undefined ? srv.wrap(cmd, args) : [cmd, args];
          return pinned(1, c, a, PIN_WHEP);
        },
      })
    : undefined;
  // The other feeds' publishers (feedcast-10feeds*): straight to the server, no tap.
  const others = Array.from({ length: (target.feeds ?? 1) - 1 }, (_, i) =>
    startPublisher(srv.publishUrl(srv.rtmpPort, `feed${i + 2}`)),
  );
  const results: LoadResult[] = [];
  let ceiling: number | null = null;
  try {
    // Let the first GOP in, then note the idle RSS.
    if (tap !== undefined) {
      const deadline = Date.now() + 15_000;
      while (tap.frames < 90 && Date.now() < deadline) await sleep(200);
      if (tap.frames < 90)
        throw new Error(`${target.name}: the publisher sent ${tap.frames} video frames in 15 s:\n${pub.stderr()}`);
    } else {
      await sleep(3000);
      if (!alive(pub.child)) throw new Error(`${target.name}: the publisher exited:\n${pub.stderr()}`);
    }
    await sleep(1000);
    const sampler = new Sampler(srv.child.pid!, pub.child.pid);
    sampler.start();
    await sleep(2000);
    const rssIdleMB = round(Math.max(...sampler.samples.map((x) => x.serverRssKB)) / 1024);
    const loads =
      target.protocol === 'srt'
        ? [...SRT_LOADS]
        : whep
          ? [...WHEP_LOADS]
          : target.feeds !== undefined
            ? [...RECORD_LOADS]
            : [...LOADS];
    const recordedBefore = await srv.recordingTotals?.();
    for (let i = 0; i < loads.length; i++) {
      const n = loads[i]!;
      let r: LoadResult;
      try {
        r = await runLoad(target, srv, tap, sampler, n, refKbps, rssIdleMB, run, pool);
      } catch (err) {
        // A load the generator could not finish (e.g. readers still joining at its deadline)
        // counts as not kept up, and ends this target's ceiling search.
        say(`${target.name} N=${n}: ${err instanceof Error ? err.message : String(err)}`);
        failures[`${target.name} N=${n}`] = err instanceof Error ? err.message.slice(0, 300) : String(err);
        break;
      }
      results.push(r);
      say(
        `${target.name} N=${n}: ${r.fullRate}/${n} at full rate, CPU ${r.cpuPct}% (main thread ${r.mainThreadCpuPct}%), RSS ${r.rssMB} MB, TTFF p95 ${r.ttffP95} ms, delay p50 ${r.delayP50} ms`,
      );
      if (recordedBefore !== undefined && srv.recordingTotals !== undefined) {
        const now = await srv.recordingTotals();
        r.recorded = { ...now, bytesWritten: now.bytesWritten - recordedBefore.bytesWritten };
        say(
          `${target.name} N=${n}: recorded ${round(now.bytesWritten / 1e6)} MB in ${now.files} files so far, ${now.framesDropped} frames dropped, ${now.writeErrors} write errors`,
        );
      }
      if (r.keptUp && target.protocol !== 'srt' && target.feeds === undefined) ceiling = Math.max(ceiling ?? 0, n);
      if (!alive(srv.child)) throw new Error(`${target.name}: the server died during N=${n}`);
      await sleep(2000);
      const searches = target.protocol !== 'hls' && target.protocol !== 'srt' && target.feeds === undefined;
      if (i === loads.length - 1 && CEILING && run === 1 && r.keptUp && searches) {
        const next = (whep ? WHEP_CEILING_STEPS : CEILING_STEPS).find((s) => s > n);
        if (next !== undefined) loads.push(next);
      }
    }
    sampler.stop();
  } finally {
    await pool?.close();
    tap?.close();
    await Promise.all(others.map((o) => stopChild(o.child)));
    await stopChild(pub.child);
    // A profiled Feedcast (--cpu-prof) writes its profile as it exits: give it the time to.
    await stopChild(srv.child, FEEDCAST_NODE_ARGS.some((f) => f.startsWith('--cpu-prof')) ? 60_000 : 4000);
    srv.cleanup();
  }
  return { results, ceiling };
}

// ---------------------------------------------------------------------------------------------
// Report

const fmt = (v: number | null | undefined, d = 1): string => (v === null || v === undefined ? '-' : String(round(v, d)));
function table(all: LoadResult[]): string {
  const head =
    '| target | readers | at full rate | kbit/s p50 (min) | TTFF p50 / p95 ms | added delay p50 / max ms | server CPU % | CPU per 1000 readers % | writes / segments per s per reader | RSS MB (idle) | RSS per reader KB | loadgen CPU % | others % |';
  const rows = all.map((r) => {
    const name = REPEAT > 1 ? `${r.target} #${r.run}` : r.target;
    const per = r.cpuPct === null || r.readers === 0 ? null : (r.cpuPct / r.readers) * 1000;
    const rssPer = r.rssMB === null || r.rssIdleMB === null ? null : ((r.rssMB - r.rssIdleMB) * 1024) / r.readers;
    const writesPer = r.writesPerSec === null || r.readers === 0 ? null : r.writesPerSec / r.readers;
    const segsPer = r.segmentsPerSec === null || r.readers === 0 ? null : r.segmentsPerSec / r.readers;
    return `| ${name} | ${r.readers} | ${r.fullRate}/${r.readers}${r.keptUp ? '' : ' ✗'} | ${fmt(r.kbpsP50)} (${fmt(r.kbpsMin)}) | ${fmt(r.ttffP50)} / ${fmt(r.ttffP95)} | ${fmt(r.delayP50)} / ${fmt(r.delayMax)} | ${fmt(r.cpuPct)} | ${fmt(per)} | ${fmt(writesPer)} / ${fmt(segsPer)} | ${fmt(r.rssMB)} (${fmt(r.rssIdleMB)}) | ${fmt(rssPer)} | ${fmt(r.genCpuPct)} | ${fmt(r.othersPct)} |`;
  });
  return [head, head.replace(/[^|]+/g, '---'), ...rows].join('\n');
}

/** Which side held the load back: the server's pinned core, a viewer process, or neither at its limit. */
function limit(r: LoadResult): string {
  const found: string[] = [];
  const [cpu0, cpu1] = r.cpuBusyPct ?? [];
  if (r.cpuPct !== null && r.cpuPct >= 90) found.push('server CPU');
  else if (PIN_WHEP && cpu0 !== undefined && cpu0 >= 95) found.push(`CPU 0 full (server ${fmt(r.cpuPct)}%, the rest others)`);
  const w = r.whep;
  if (w !== undefined && (w.genMaxProcessCpuPct >= 90 || (PIN_WHEP && (r.genCpuPct ?? 0) >= 90))) found.push('generator CPU');
  else if (PIN_WHEP && cpu1 !== undefined && cpu1 >= 95) found.push(`CPU 1 full (viewers ${fmt(r.genCpuPct)}%, the rest others)`);
  if ((r.udpDrops?.rcvbuf ?? 0) > 0) found.push('UDP receive buffers (viewer sockets)');
  if ((r.udpDrops?.sndbuf ?? 0) > 0) found.push('UDP send buffers (server)');
  return found.length > 0 ? found.join('; ') : r.keptUp ? '-' : 'none found';
}

/** The WebRTC rows: RTP packets counted from their headers, per viewer. */
function whepTable(all: LoadResult[]): string {
  const head =
    '| target | viewers | at full rate | RTP pkt/s p50 (min) / sent | loss % max | kbit/s p50 | connect p50 / p95 ms | server CPU % | viewers per core | RSS MB (idle) | RSS per viewer KB | loadgen CPU % (processes; busiest) | UDP drops rcvbuf / sndbuf | CPU 0 / CPU 1 busy % | limit |';
  const rows = all.map((r) => {
    const w = r.whep;
    const name = REPEAT > 1 ? `${r.target} #${r.run}` : r.target;
    const perCore = r.cpuPct === null || r.cpuPct === 0 ? null : (r.readers * 100) / r.cpuPct;
    const rssPer = r.rssMB === null || r.rssIdleMB === null ? null : ((r.rssMB - r.rssIdleMB) * 1024) / r.readers;
    return `| ${name} | ${r.readers} | ${r.fullRate}/${r.readers}${r.keptUp ? '' : ' ✗'} | ${fmt(w?.packetsPerSec.p50)} (${fmt(w?.packetsPerSec.min)}) / ${fmt(w?.sentPacketsPerSec.p50)} | ${fmt(w?.lossPct.max, 2)} | ${fmt(r.kbpsP50)} | ${fmt(w?.connectMs.p50, 0)} / ${fmt(w?.connectMs.p95, 0)} | ${fmt(r.cpuPct)} | ${fmt(perCore, 0)} | ${fmt(r.rssMB)} (${fmt(r.rssIdleMB)}) | ${fmt(rssPer)} | ${fmt(r.genCpuPct)} (${w?.genProcesses ?? '-'}; ${fmt(w?.genMaxProcessCpuPct)}) | ${r.udpDrops === null ? '-' : `${r.udpDrops.rcvbuf} / ${r.udpDrops.sndbuf}`} | ${r.cpuBusyPct === null ? '-' : r.cpuBusyPct.join(' / ')} | ${limit(r)} |`;
  });
  return [head, head.replace(/[^|]+/g, '---'), ...rows].join('\n');
}

const PAIRS: [string, string][] = [
  ['feedcast-flv', 'nms-flv'],
  ['feedcast-flv', 'nginx-rtmp'],
  ['feedcast-rtmp', 'nginx-rtmp'],
  ['feedcast-rtmp', 'nms-rtmp'],
  // Per-reader cost of the other protocols against Feedcast's own HTTP-FLV (issue 26: within 1.2×).
  ['feedcast-rtmp', 'feedcast-flv'],
  ['feedcast-rtsp-tcp', 'feedcast-flv'],
  ['feedcast-rtsp-udp', 'feedcast-flv'],
  ['feedcast-whep', 'janus-whep'],
  ['feedcast-whep', 'feedcast-whep-werift'],
  ['feedcast-whep', 'feedcast-whep-unverified'],
];

/**
 * The cost curve (issue 26): per target and load, the server's CPU, its kernel share (stime),
 * and the CPU per 1000 readers and per Gb/s delivered, so the limit and each protocol's distance
 * from it show side by side.
 */
function costCurve(all: LoadResult[]): string {
  const head =
    '| target | readers | server CPU % | kernel % (share) | CPU % per 1000 readers | CPU % per Gb/s delivered | delivered Mb/s | RSS MB |';
  const rows = all
    .filter((r) => r.whep === undefined && !r.target.includes('10feeds') && r.cpuPct !== null)
    .map((r) => {
      const name = REPEAT > 1 ? `${r.target} #${r.run}` : r.target;
      // LL-HLS pollers fetch playlists only: their "kbit/s" is playlist updates a second, no media delivered.
      const hls = TARGETS.find((t) => t.name === r.target)?.protocol === 'hls';
      const mbps = r.kbpsP50 === null || hls ? null : (r.kbpsP50 * r.readers) / 1000;
      const share = r.sysCpuPct === null || !r.cpuPct ? null : (r.sysCpuPct / r.cpuPct) * 100;
      return `| ${name} | ${r.readers}${r.keptUp ? '' : ' ✗'} | ${fmt(r.cpuPct)} | ${fmt(r.sysCpuPct)} (${fmt(share, 0)}%) | ${fmt(((r.cpuPct ?? 0) * 1000) / r.readers)} | ${mbps === null || mbps === 0 ? '-' : fmt(((r.cpuPct ?? 0) * 1000) / mbps)} | ${hls ? 'playlists' : fmt(mbps, 0)} | ${fmt(r.rssMB)} |`;
    });
  return [head, head.replace(/[^|]+/g, '---'), ...rows].join('\n');
}

/** One perf profile in a few lines: kernel/user, the named groups, the busiest symbols of each side. */
function perfReport(p: PerfSummary): string {
  const list = (xs: { symbol: string; pct: number }[]): string => xs.map((x) => `${x.symbol} ${x.pct}%`).join(', ');
  return [
    `perf: ${p.samples} samples, kernel ${p.kernelPct}%, user ${p.userPct}%`,
    `  groups: ${Object.entries(p.groups)
      .map(([k, v]) => `${k} ${v}%`)
      .join('; ')}`,
    `  kernel: ${list(p.topKernel)}`,
    `  user: ${list(p.topUser.map((u) => ({ symbol: `${u.symbol} (${u.object})`, pct: u.pct })))}`,
  ].join('\n');
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** a / b per run pair (run k of a with run k of b: adjacent in time), as "median (min-max)" when there are several. */
function pairedRatio(as: LoadResult[], bs: LoadResult[], pick: (r: LoadResult) => number | null): string {
  const values: number[] = [];
  for (const ra of as) {
    const rb = bs.find((r) => r.run === ra.run);
    const x = pick(ra);
    const y = rb === undefined ? null : pick(rb);
    if (x !== null && y !== null && y !== 0) values.push(x / y);
  }
  const m = median(values);
  if (m === null) return '-';
  if (values.length === 1) return `${round(m, 2)}`;
  return `${round(m, 2)} (${round(Math.min(...values), 2)}-${round(Math.max(...values), 2)})`;
}

function ratios(all: LoadResult[]): string {
  const head =
    '| Feedcast / peer | readers | CPU | RSS | RSS above idle | TTFF p50 | TTFF p95 | delay p50 | full rate (Feedcast, peer) |';
  const rows: string[] = [];
  const above = (r: LoadResult): number | null => (r.rssMB === null || r.rssIdleMB === null ? null : r.rssMB - r.rssIdleMB);
  for (const [a, b] of PAIRS) {
    const loads = [...new Set(all.filter((r) => r.target === a && r.readers > 1).map((r) => r.readers))];
    for (const n of loads) {
      const as = all.filter((r) => r.target === a && r.readers === n);
      const bs = all.filter((r) => r.target === b && r.readers === n);
      if (bs.length === 0) continue;
      const kept = (rs: LoadResult[]): string =>
        rs.every((r) => r.keptUp) ? 'yes' : `NO (${rs.filter((r) => !r.keptUp).length} of ${rs.length})`;
      rows.push(
        `| ${a} / ${b} | ${n} | ${pairedRatio(as, bs, (r) => r.cpuPct)} | ${pairedRatio(as, bs, (r) => r.rssMB)} | ${pairedRatio(as, bs, above)} | ${pairedRatio(as, bs, (r) => r.ttffP50)} | ${pairedRatio(as, bs, (r) => r.ttffP95)} | ${pairedRatio(as, bs, (r) => r.delayP50)} | ${kept(as)}, ${kept(bs)} |`,
      );
    }
  }
  return [head, head.replace(/[^|]+/g, '---'), ...rows].join('\n');
}

/** Differences (median over the run pairs) between feedcast-10feeds-record and feedcast-10feeds: what recording costs. */
function recordingCost(all: LoadResult[]): string {
  const without = all.filter((r) => r.target === 'feedcast-10feeds');
  const withRec = all.filter((r) => r.target === 'feedcast-10feeds-record');
  if (without.length === 0 || withRec.length === 0) return '';
  const head =
    '| Recording 10 feeds (record − no record) | readers of feed1 | CPU (points of a core) | delay p50 (ms) | delay max (ms) | recorded | dropped, write errors |';
  const rows: string[] = [];
  const diff = (n: number, pick: (r: LoadResult) => number | null): string => {
    const values: number[] = [];
    for (const a of withRec.filter((r) => r.readers === n)) {
      const b = without.find((r) => r.readers === n && r.run === a.run);
      const x = pick(a);
      const y = b === undefined ? null : pick(b);
      if (x !== null && y !== null) values.push(x - y);
    }
    const m = median(values);
    return m === null
      ? '-'
      : values.length === 1
        ? `${round(m)}`
        : `${round(m)} (${round(Math.min(...values))} to ${round(Math.max(...values))})`;
  };
  for (const n of [...new Set(withRec.map((r) => r.readers))]) {
    const last = withRec.filter((r) => r.readers === n).at(-1)?.recorded;
    rows.push(
      `| | ${n} | ${diff(n, (r) => r.cpuPct)} | ${diff(n, (r) => r.delayP50)} | ${diff(n, (r) => r.delayMax)} | ${last === undefined ? '-' : `${round(last.bytesWritten / 1e6)} MB since the first load, ${last.files} files`} | ${last === undefined ? '-' : `${last.framesDropped}, ${last.writeErrors}`} |`,
    );
  }
  return [head, head.replace(/[^|]+/g, '---'), ...rows].join('\n');
}

/** The WebRTC rows' source (no B-frames, no audio), prepared once per run. */
let webRtcClip: { path: string; kbps: number } | undefined;

async function main(): Promise<void> {
  const clip = await prepareClip();
  if (TARGETS.some((t) => t.protocol === 'whep')) webRtcClip = await prepareWebRtcClip();
  if (TARGETS.some((t) => t.server === 'feedcast')) buildFeedcast();
  const started = new Date();
  say(
    `targets ${TARGETS.map((t) => t.name).join(', ')}; loads ${LOADS.join(', ')}${CEILING ? ' + ceiling' : ''}${TARGETS.some((t) => t.protocol === 'srt') ? ` (SRT: ${SRT_LOADS.join(', ')})` : ''}; window ${SECONDS} s${PIN ? '; pinned: servers CPU 0, readers CPU 1' : ''}${REPEAT > 1 ? `; ${REPEAT} runs, interleaved` : ''}`,
  );
  const all: LoadResult[] = [];
  const ceilings: Record<string, number | null> = {};
  const skipped: Record<string, string> = {};
  for (let run = 1; run <= REPEAT; run++) {
    for (const t of TARGETS) {
      if (skipped[t.name] !== undefined) continue;
      if (REPEAT > 1) say(`run ${run} of ${REPEAT}`);
      const r = await runTarget(t, clip.refKbps, run);
      all.push(...r.results);
      if (run === 1) ceilings[t.name] = r.ceiling;
      if (r.skipped !== undefined) skipped[t.name] = r.skipped;
    }
  }
  const out = [
    `Side by side, ${started.toISOString()}: ${os.cpus().length} CPUs, Node ${process.version}, window ${SECONDS} s, ramp ${RAMP}/s, warm-up ${WARMUP} s${PIN ? ', pinned' : ''}${REPEAT > 1 ? `, ${REPEAT} runs interleaved (ratios: median of the run pairs, and their range)` : ''}; feed ${clip.refKbps} kbit/s (FLV).`,
    '',
    table(all.filter((r) => r.whep === undefined)),
    '',
    ...(all.some((r) => r.whep !== undefined)
      ? [
          `WebRTC viewers (feed: ${webRtcClip?.kbps ?? '-'} kbit/s H.264 as TS, no B-frames, no audio; ICE + DTLS once per viewer, then RTP headers counted; full rate = RTP packets received per second ≥ 95% of the packets sent per media second${PIN_WHEP ? '; servers pinned to CPU 0, viewers to CPU 1' : ''}):`,
          '',
          whepTable(all.filter((r) => r.whep !== undefined)),
          '',
        ]
      : []),
    ratios(all),
    '',
    'Cost curve (server CPU; kernel = stime of its process tree):',
    '',
    costCurve(all),
    '',
    ...(all.some((r) => r.recorded !== undefined) ? [recordingCost(all), ''] : []),
    ...all.filter((r) => r.perf !== undefined).flatMap((r) => [`${r.target} N=${r.readers} ${perfReport(r.perf!)}`, '']),
    `Ceiling (most readers with every one at full rate and realtime ≥ 0.97, loads tried: ${[...LOADS, ...(CEILING ? CEILING_STEPS : [])].join(', ')}; WebRTC ${[...WHEP_LOADS, ...(CEILING ? WHEP_CEILING_STEPS : [])].join(', ')}): ` +
      Object.entries(ceilings)
        .map(([k, v]) => `${k} ${v ?? '-'}`)
        .join(', '),
    ...Object.entries(skipped).map(([k, v]) => `Skipped ${k}: ${v}`),
    ...Object.entries(failures).map(([k, v]) => `Not finished (counted as not kept up): ${k}: ${v.split('\n')[0] ?? ''}`),
  ].join('\n');
  process.stdout.write(`${out}\n`);
  const file = join(OUT, `peers-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      { started, seconds: SECONDS, pinned: PIN, repeat: REPEAT, clip, results: all, ceilings, skipped, failures },
      null,
      2,
    ),
  );
  say(`full report: ${file}`);
}

async function shutdown(code: number): Promise<never> {
  await Promise.all([...children].map((c) => stopChild(c, 2000)));
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));
const guard = setTimeout(
  () => {
    say(`the whole run took over ${20 * REPEAT} minutes: stopping`);
    void shutdown(3);
  },
  20 * REPEAT * 60 * 1000,
);
guard.unref();
main().then(
  () => shutdown(0),
  (err: unknown) => {
    say(`Error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    void shutdown(1);
  },
);
