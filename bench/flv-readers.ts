// HTTP-FLV load generator: opens N readers of one URL, lets them settle, then measures each one over
// a window, and prints one JSON report on stdout (progress goes to stderr).
//
//   npx tsx bench/flv-readers.ts URL N SECONDS   (URL: http://…/feed1.flv, or rtmp://HOST:PORT/APP/NAME for RTMP players,
//   or srt://HOST:PORT?streamid=read:feed1 for SRT readers: one ffmpeg each, remuxing to FLV with -copyts,
//   or rtsp://HOST:PORT/NAME for RTSP players, bench/rtsp-reader-core.ts)
//   [--ref-kbps K] [--ramp PER_SEC] [--warmup S] [--first-frame-timeout S] [--rtsp-transport tcp|udp]
//
// Per reader it measures the bytes delivered over the window (→ kbit/s), the time to first frame
// (connect call → first byte of the first video frame tag), how far the media timestamps advanced
// over the window (media seconds per wall second: 1.0 = real time), and the "lateness" of each
// video frame (arrival wall-clock ms − FLV timestamp ms; only its changes mean something, since the
// feed's timeline starts at an arbitrary wall time — bench/fanout.ts subtracts a baseline).
//
// A reader is "at full rate" when it received at least 90% of the feed's bitrate: --ref-kbps when
// given (bench/fanout.ts passes the bitrate of the source remuxed to FLV), else the feed's bitrate
// as the readers see it (median over readers of window bytes / media seconds advanced).

import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { FlvReader, nowMs, summarize } from './flv-reader-core.js';
import { RtmpReader } from './rtmp-reader-core.js';
import { RtspReader, type RtspLower } from './rtsp-reader-core.js';
import { udpReceivePath } from './udp-head-receiver.js';

interface Args {
  url: URL;
  readers: number;
  seconds: number;
  refKbps: number | undefined;
  rampPerSec: number;
  warmupSec: number;
  firstFrameTimeoutSec: number;
  rtspTransport: RtspLower;
}

const USAGE =
  'usage: flv-readers.ts URL N SECONDS [--ref-kbps K] [--ramp PER_SEC] [--warmup S] [--first-frame-timeout S] [--rtsp-transport tcp|udp]';

function parseArgs(argv: readonly string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      flags.set(a.slice(2), v);
    } else positional.push(a);
  }
  const [u, n, s] = positional;
  if (u === undefined || n === undefined || s === undefined) throw new Error(USAGE);
  const url = new URL(u);
  if (!['http:', 'rtmp:', 'srt:', 'rtsp:'].includes(url.protocol))
    throw new Error(`only http://, rtmp://, srt:// and rtsp:// URLs, got ${u}`);
  const num = (name: string, v: string | undefined, min: number, max: number): number => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < min || x > max) throw new Error(`${name} must be a number in ${min}..${max}, got ${v}`);
    return x;
  };
  const ref = flags.get('ref-kbps');
  const lower = flags.get('rtsp-transport') ?? 'tcp';
  if (lower !== 'tcp' && lower !== 'udp') throw new Error(`--rtsp-transport is tcp or udp, got ${lower}`);
  return {
    url,
    readers: Math.round(num('N', n, 1, 10000)),
    seconds: num('SECONDS', s, 1, 600),
    refKbps: ref === undefined ? undefined : num('--ref-kbps', ref, 1, 1e7),
    rampPerSec: num('--ramp', flags.get('ramp') ?? '500', 1, 1e6),
    warmupSec: num('--warmup', flags.get('warmup') ?? '2', 0, 60),
    firstFrameTimeoutSec: num('--first-frame-timeout', flags.get('first-frame-timeout') ?? '10', 1, 120),
    rtspTransport: lower,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 1): number => Number(x.toFixed(d));

/** Counts per bucket: "<50" … "<16000", ">=16000". */
function histogram(values: readonly number[], bounds: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of bounds) out[`<${b}`] = 0;
  out[`>=${bounds[bounds.length - 1]}`] = 0;
  for (const v of values) {
    const b = bounds.find((x) => v < x);
    const key = b === undefined ? `>=${bounds[bounds.length - 1]}` : `<${b}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/**
 * An SRT reader: ffmpeg's libsrt client reading the URL, remuxed without decoding to FLV on stdout.
 * -copyts keeps the server's timestamps (FLV ms = the TS DTS / 90), so lateness compares with the
 * publisher's FLV timestamps like the other readers'; it includes libsrt's receive latency (TSBPD).
 */
function srtReaderCommand(url: URL): [string, string[]] {
  // prettier-ignore
  return ['ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-nostats', '-copyts',
    '-i', url.href, '-map', '0', '-c', 'copy', '-flush_packets', '1',
    '-f', 'flv', '-flvflags', 'no_duration_filesize', 'pipe:1',
  ]];
}

async function run(args: Args): Promise<object> {
  const readBuffer = Buffer.allocUnsafe(64 * 1024);
  const host = args.url.hostname;
  const rtmp = args.url.protocol === 'rtmp:';
  const srt = args.url.protocol === 'srt:';
  const rtsp = args.url.protocol === 'rtsp:';
  const port = Number(args.url.port || (rtmp ? 1935 : rtsp ? 554 : 80));
  const path = args.url.pathname + args.url.search;
  // rtmp://HOST:PORT/APP/NAME: the app is the first path segment, the stream name the rest.
  const [app = '', ...nameParts] = args.url.pathname.replace(/^\//, '').split('/');
  const name = nameParts.join('/') + args.url.search;
  const readers: (FlvReader | RtmpReader | RtspReader)[] = [];
  const log = (msg: string): void => void process.stderr.write(`[flv-readers] ${msg}\n`);

  // Ramp up: a batch every 10 ms.
  const rampStart = nowMs();
  const perTick = Math.max(1, Math.round(args.rampPerSec / 100));
  while (readers.length < args.readers) {
    for (let k = 0; k < perTick && readers.length < args.readers; k++) {
      const r = rtmp
        ? new RtmpReader({ host, port, app, name, readBuffer })
        : rtsp
          ? new RtspReader({ host, port, path: args.url.pathname, transport: args.rtspTransport, readBuffer })
          : new FlvReader({ host, port, path, readBuffer, ...(srt ? { command: srtReaderCommand(args.url) } : {}) });
      readers.push(r);
      r.start();
    }
    await sleep(10);
  }
  const rampEnd = nowMs();

  // Wait for every reader's first frame (or its failure), bounded.
  const settled = (): boolean =>
    readers.every((r) => r.firstFrameAt !== undefined || r.closedAt !== undefined || r.error !== undefined);
  const ffDeadline = rampEnd + args.firstFrameTimeoutSec * 1000;
  while (!settled() && nowMs() < ffDeadline) await sleep(50);
  const withFrame = readers.filter((r) => r.firstFrameAt !== undefined).length;
  log(
    `${args.readers} readers opened in ${Math.round(rampEnd - rampStart)} ms; ${withFrame} have a first frame after ${Math.round(nowMs() - rampStart)} ms`,
  );
  await sleep(args.warmupSec * 1000);

  // The measuring window.
  const b0 = readers.map((r) => r.bytes);
  const ts0 = readers.map((r) => r.lastVideoTs);
  const open0 = readers.map((r) => r.isOpen && r.error === undefined);
  for (const r of readers) {
    r.resetLateness();
    r.sampling = true;
  }
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = nowMs();
  log(`window of ${args.seconds} s starts`);
  await sleep(args.seconds * 1000);
  const t1 = nowMs();
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  eld.disable();
  for (const r of readers) r.sampling = false;
  const b1 = readers.map((r) => r.bytes);
  const ts1 = readers.map((r) => r.lastVideoTs);
  const openAtEnd = readers.filter((r) => r.isOpen && r.error === undefined).length;
  const closedInWindow = readers.filter((r, i) => open0[i] && r.closedAt !== undefined && r.closedAt <= t1).length;
  for (const r of readers) r.stop();

  const winSec = (t1 - t0) / 1000;
  const kbps = readers.map((_, i) => ((b1[i]! - b0[i]!) * 8) / winSec / 1000);
  const realtime: number[] = [];
  const density: number[] = [];
  readers.forEach((_, i) => {
    const a = ts0[i];
    const b = ts1[i];
    if (a === undefined || b === undefined || b <= a) return;
    realtime.push((b - a) / 1000 / winSec);
    density.push(((b1[i]! - b0[i]!) * 8) / (b - a)); // bits per media ms = kbit per media s
  });
  const densitySorted = [...density].sort((x, y) => x - y);
  const feedKbpsSeen = densitySorted.length === 0 ? undefined : densitySorted[Math.floor(densitySorted.length / 2)];
  const refKbps = args.refKbps ?? feedKbpsSeen;
  const fullRate = refKbps === undefined ? 0 : kbps.filter((k) => k >= 0.9 * refKbps).length;
  const ttff = readers.map((r) => r.ttffMs).filter((x): x is number => x !== undefined);
  const headMs = readers.filter((r) => r.headAt !== undefined).map((r) => r.headAt! - r.connectAt);
  const latMean = readers.filter((r) => r.latCount > 0).map((r) => r.latSum / r.latCount);
  const latMax = readers.filter((r) => r.latCount > 0).map((r) => r.latMax);
  const errors: Record<string, number> = {};
  for (const r of readers) if (r.error !== undefined) errors[r.error.slice(0, 100)] = (errors[r.error.slice(0, 100)] ?? 0) + 1;
  const statuses: Record<string, number> = {};
  for (const r of readers) statuses[String(r.status ?? 'none')] = (statuses[String(r.status ?? 'none')] ?? 0) + 1;

  return {
    url: args.url.href,
    readers: args.readers,
    rampMs: Math.round(rampEnd - rampStart),
    window: { startMs: Math.round(t0), endMs: Math.round(t1), seconds: round(winSec, 3) },
    statuses,
    errors,
    tcpConnected: readers.filter((r) => r.connectedAt !== undefined).length,
    connectMs: summarize(readers.filter((r) => r.connectedAt !== undefined).map((r) => r.connectedAt! - r.connectAt)),
    gotFirstFrame: ttff.length,
    firstFrameWasKeyframe: readers.filter((r) => r.firstFrameKeyframe === true).length,
    openAtWindowStart: open0.filter(Boolean).length,
    openAtWindowEnd: openAtEnd,
    closedDuringWindow: closedInWindow,
    framingErrors: readers.reduce((s, r) => s + r.framingErrors, 0),
    kbps: summarize(kbps),
    refKbps: refKbps === undefined ? null : round(refKbps),
    refSource: args.refKbps !== undefined ? 'argument' : 'media timestamps',
    feedKbpsSeen: feedKbpsSeen === undefined ? null : round(feedKbpsSeen),
    fullRate: { threshold: refKbps === undefined ? null : round(0.9 * refKbps), count: fullRate },
    realtime: summarize(realtime, 3),
    ttffMs: summarize(ttff),
    ttffHistogramMs: histogram(ttff, [50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000]),
    responseHeadMs: summarize(headMs),
    /** Raw arrival − timestamp (ms) per reader, over the window: mean per reader, and max per reader. */
    latenessRawMs: { meanPerReader: summarize(latMean), maxPerReader: summarize(latMax) },
    generator: {
      ...(rtsp && args.rtspTransport === 'udp' ? { udpReceive: udpReceivePath } : {}),
      cpuPct: round(((cpu.user + cpu.system) / 1000 / (t1 - t0)) * 100),
      eventLoopUtilization: round(elu.utilization, 3),
      eventLoopDelayP99Ms: round(eld.percentile(99) / 1e6),
      eventLoopDelayMaxMs: round(eld.max / 1e6),
      rssMB: round(process.memoryUsage.rss() / 1048576),
    },
  };
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  // Never outlive the planned run by much.
  const boundMs = (args.readers / args.rampPerSec + args.firstFrameTimeoutSec + args.warmupSec + args.seconds + 10) * 1000;
  const guard = setTimeout(() => {
    process.stderr.write(`[flv-readers] gave up after ${Math.round(boundMs / 1000)} s\n`);
    process.exit(3);
  }, boundMs);
  guard.unref();
  const report = await run(args);
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0));
}

void main();
