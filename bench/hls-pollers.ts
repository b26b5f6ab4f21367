// LL-HLS load generator: N pollers of one media playlist, each on its own keep-alive socket, each
// doing what an LL-HLS player does to follow the live edge: a blocking playlist reload for the
// next part (`?_HLS_msn=M&_HLS_part=P`), answered by the server when that part exists. The
// pollers fetch playlists only (not the parts' media). Prints one JSON report on stdout.
//
//   npx tsx bench/hls-pollers.ts http://127.0.0.1:PORT/feed1/index.m3u8 N SECONDS [--ramp PER_SEC] [--warmup S]
//
// Per poller, over the window: playlist updates per second (the part rate, ~2/s with 0.5 s
// parts, is "full rate"); per part, the spread between the first poller that got it and each
// other poller (skew: how long the server took to answer everyone); HTTP statuses and errors.

import net from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { nowMs, summarize } from './flv-reader-core.js';

const USAGE = 'usage: hls-pollers.ts URL N SECONDS [--ramp PER_SEC] [--warmup S]';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 1): number => Number(x.toFixed(d));

/** When each part (msn.part) was first seen by any poller. */
const firstSeen = new Map<string, number>();

class Poller {
  private socket: net.Socket | undefined;
  private buf = '';
  private next: { msn: number; part: number } | undefined;
  private readonly host: string;
  private readonly port: number;
  private readonly path: string;
  connectAt = 0;
  firstResponseAt: number | undefined;
  updates = 0;
  sampling = false;
  readonly skews: number[] = [];
  readonly statuses = new Map<number, number>();
  error: string | undefined;
  closed = false;

  constructor(url: URL) {
    this.host = url.hostname;
    this.port = Number(url.port || 80);
    this.path = url.pathname;
  }

  start(): void {
    this.connectAt = nowMs();
    const s = net.connect(this.port, this.host);
    this.socket = s;
    s.setEncoding('latin1');
    s.on('connect', () => this.request());
    s.on('data', (d: string) => this.onData(d));
    s.on('error', (e: NodeJS.ErrnoException) => (this.error ??= e.code ?? e.message));
    s.on('close', () => (this.closed = true));
  }

  stop(): void {
    this.socket?.destroy();
  }

  private request(): void {
    const q = this.next === undefined ? '' : `?_HLS_msn=${this.next.msn}&_HLS_part=${this.next.part}`;
    this.socket?.write(`GET ${this.path}${q} HTTP/1.1\r\nHost: ${this.host}\r\nUser-Agent: feedcast-bench\r\n\r\n`);
  }

  private onData(d: string): void {
    this.buf += d;
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.slice(0, end);
      const m = /content-length:\s*(\d+)/i.exec(head);
      const len = m?.[1] === undefined ? 0 : Number(m[1]);
      if (this.buf.length < end + 4 + len) return;
      const body = this.buf.slice(end + 4, end + 4 + len);
      this.buf = this.buf.slice(end + 4 + len);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
      this.onPlaylist(status, body);
    }
  }

  private onPlaylist(status: number, body: string): void {
    const at = nowMs();
    this.firstResponseAt ??= at;
    if (status === 200) {
      const seq = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(body)?.[1] ?? 0);
      const skipped = Number(/#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)/.exec(body)?.[1] ?? 0);
      // Complete segments, and the parts of the open segment (after the last #EXTINF).
      const lines = body.split('\n');
      let segments = skipped;
      let partsOpen = 0;
      for (const line of lines) {
        if (line.startsWith('#EXTINF')) {
          segments++;
          partsOpen = 0;
        } else if (line.startsWith('#EXT-X-PART:')) partsOpen++;
      }
      const have = { msn: seq + segments, part: partsOpen }; // the next part to ask for
      const key = `${have.msn}.${have.part - 1}`;
      if (this.next !== undefined) {
        this.updates += this.sampling ? 1 : 0;
        const first = firstSeen.get(key);
        if (first === undefined) firstSeen.set(key, at);
        else if (this.sampling) this.skews.push(at - first);
      }
      this.next = have;
    } else if (status !== 0) {
      // 503/404 after a timeout: ask for the live playlist again.
      this.next = undefined;
    }
    this.request();
  }
}

async function main(): Promise<void> {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) flags.set(a.slice(2), argv[++i] ?? '');
    else positional.push(a);
  }
  const [u, n, s] = positional;
  if (u === undefined || n === undefined || s === undefined) throw new Error(USAGE);
  const url = new URL(u);
  const count = Math.round(Number(n));
  const seconds = Number(s);
  const ramp = Number(flags.get('ramp') ?? 500);
  const warmup = Number(flags.get('warmup') ?? 3);
  if (!(count >= 1 && count <= 10000) || !(seconds >= 1 && seconds <= 600) || !(ramp > 0) || !(warmup >= 0))
    throw new Error(USAGE);
  const guard = setTimeout(
    () => {
      process.stderr.write('[hls-pollers] gave up\n');
      process.exit(3);
    },
    (count / ramp + warmup + seconds + 20) * 1000,
  );
  guard.unref();

  const pollers: Poller[] = [];
  const perTick = Math.max(1, Math.round(ramp / 100));
  while (pollers.length < count) {
    for (let k = 0; k < perTick && pollers.length < count; k++) {
      const p = new Poller(url);
      pollers.push(p);
      p.start();
    }
    await sleep(10);
  }
  await sleep(warmup * 1000);
  process.stderr.write(`[hls-pollers] window of ${seconds} s starts\n`);
  for (const p of pollers) p.sampling = true;
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const cpu0 = process.cpuUsage();
  const t0 = nowMs();
  await sleep(seconds * 1000);
  const t1 = nowMs();
  const cpu = process.cpuUsage(cpu0);
  eld.disable();
  for (const p of pollers) p.sampling = false;
  const closedEarly = pollers.filter((p) => p.closed).length;
  for (const p of pollers) p.stop();

  const win = (t1 - t0) / 1000;
  const rates = pollers.map((p) => p.updates / win);
  const sorted = [...rates].sort((a, b) => a - b);
  const partRate = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const statuses: Record<string, number> = {};
  for (const p of pollers) for (const [k, v] of p.statuses) statuses[k] = (statuses[k] ?? 0) + v;
  const errors: Record<string, number> = {};
  for (const p of pollers) if (p.error !== undefined) errors[p.error] = (errors[p.error] ?? 0) + 1;
  const report = {
    url: url.href,
    readers: count,
    window: { startMs: Math.round(t0), endMs: Math.round(t1), seconds: round(win, 3) },
    statuses,
    errors,
    updatesPerSec: summarize(rates, 2),
    /** Pollers that got at least 90% of the median poller's updates. */
    fullRate: { threshold: round(0.9 * partRate, 2), count: rates.filter((r) => r >= 0.9 * partRate && r > 0).length },
    firstResponseMs: summarize(
      pollers.filter((p) => p.firstResponseAt !== undefined).map((p) => p.firstResponseAt! - p.connectAt),
    ),
    skewMs: summarize(pollers.flatMap((p) => p.skews)),
    closedEarly,
    generator: {
      cpuPct: round(((cpu.user + cpu.system) / 1000 / (t1 - t0)) * 100),
      eventLoopDelayP99Ms: round(eld.percentile(99) / 1e6),
      elu: round(performance.eventLoopUtilization().utilization, 3),
    },
  };
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
