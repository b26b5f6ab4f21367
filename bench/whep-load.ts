// The WebRTC rows' load generator in bench/peers.ts: a pool of bench/whep-viewers.ts children (at
// most `perChild` viewers each, so the generator's own CPU is spread and measured per process)
// that grows from one load to the next, and one measuring window for all of them at once.

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { ROOT, alive, say, stopChild, track } from './bench-util.js';
import { summarize, type LoadReport, type Summary } from './flv-reader-core.js';
import type { WindowFigures } from './rtp-counter.js';

export interface WhepPoolOptions {
  kind: 'feedcast' | 'janus';
  /** Feedcast's WHEP endpoint, or Janus's HTTP API base. */
  url: string;
  /** The address the viewers' host candidates use. */
  host: string;
  perChild: number;
  rampPerSec: number;
  /** Wraps a command (pinning, network namespace). */
  wrap: (cmd: string, args: string[]) => [string, string[]];
}

interface ChildReport {
  viewers: number;
  connected: number;
  errors: Record<string, number>;
  wallSec: number;
  figures: (WindowFigures | null)[];
  ttfpMs: (number | null)[];
  connectMs: (number | null)[];
  malformed: number;
  cpuPct: number;
  eventLoopDelayP99Ms: number;
}

/** The reader reports' shape (LoadReport), plus what only WebRTC viewers have. */
export interface WhepReport extends LoadReport {
  generator: LoadReport['generator'] & { processes: number; maxProcessCpuPct: number };
  whep: {
    packetsPerSec: Summary;
    sentPacketsPerSec: Summary;
    lossPct: Summary;
    connectMs: Summary;
    setupSec: number;
    setupGeneratorCpuSec: number;
  };
}

class ViewerProcess {
  readonly child: ChildProcess;
  viewers = 0;
  connected = 0;
  private readonly waiting: ((line: string) => void)[] = [];
  private stderr = '';

  constructor(opts: WhepPoolOptions) {
    // prettier-ignore
    const [cmd, args] = opts.wrap(process.execPath, [
      '--import', 'tsx', join(ROOT, 'bench/whep-viewers.ts'), opts.kind, opts.url,
      '--host', opts.host,
    ]);
    this.child = track(spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.waiting.shift()?.(line));
    this.child.on('exit', () => {
      for (const w of this.waiting.splice(0)) w('EXIT');
    });
  }

  /** Sends a command and resolves with the next line that starts with `answer` (bounded by `timeoutMs`). */
  ask(command: string, answer: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`viewer process ${this.child.pid}: no ${answer} within ${timeoutMs} ms:\n${this.stderr}`));
      }, timeoutMs);
      this.waiting.push((line) => {
        clearTimeout(timer);
        if (line.startsWith(`${answer} `)) resolve(line.slice(answer.length + 1));
        else reject(new Error(`viewer process ${this.child.pid}: ${line.slice(0, 200)}\n${this.stderr}`));
      });
      this.child.stdin?.write(`${command}\n`);
    });
  }
}

export class WhepPool {
  private readonly procs: ViewerProcess[] = [];
  private setupSec = 0;
  private setupCpuSec = 0;

  constructor(private readonly opts: WhepPoolOptions) {}

  get pids(): number[] {
    return this.procs.flatMap((p) => (p.child.pid !== undefined && alive(p.child) ? [p.child.pid] : []));
  }

  get size(): number {
    return this.procs.reduce((a, p) => a + p.viewers, 0);
  }

  /** Adds viewers until there are `n`, filling the last process before starting another. */
  async grow(n: number): Promise<void> {
    const t0 = Date.now();
    const added = n - this.size;
    const plan = new Map<ViewerProcess, number>();
    let missing = n - this.size;
    for (const p of this.procs) {
      const k = Math.min(missing, this.opts.perChild - p.viewers);
      if (k > 0) plan.set(p, k);
      missing -= Math.max(0, k);
    }
    while (missing > 0) {
      const p = new ViewerProcess(this.opts);
      this.procs.push(p);
      const k = Math.min(missing, this.opts.perChild);
      plan.set(p, k);
      missing -= k;
    }
    // Each process ramps its own viewers: the rate is shared out so the whole pool keeps `rampPerSec`.
    const answers = await Promise.all(
      [...plan].map(async ([p, k]) => {
        p.viewers += k;
        const ramp = this.opts.rampPerSec / plan.size;
        const ready = JSON.parse(await p.ask(`ADD ${k} ${ramp}`, 'READY', 180_000 + (k * 1000) / ramp)) as {
          connected: number;
          setupCpuSec: number;
        };
        p.connected = ready.connected;
        return ready;
      }),
    );
    this.setupSec = (Date.now() - t0) / 1000;
    this.setupCpuSec = answers.reduce((a, r) => a + r.setupCpuSec, 0);
    say(
      `${this.opts.kind} viewers: ${this.procs.reduce((a, p) => a + p.connected, 0)}/${n} connected (${this.procs.length} processes); ${added} added in ${this.setupSec.toFixed(1)} s`,
    );
  }

  /** One window of `seconds` after `warmupSec`, over every viewer. */
  async measure(warmupSec: number, seconds: number): Promise<WhepReport> {
    const startMs = Date.now() + warmupSec * 1000;
    const endMs = startMs + seconds * 1000;
    const reports = await Promise.all(
      this.procs.map(
        async (p) => JSON.parse(await p.ask(`WINDOW ${startMs} ${endMs}`, 'REPORT', endMs - Date.now() + 60_000)) as ChildReport,
      ),
    );
    const figures = reports.flatMap((r) => r.figures);
    const ok = figures.filter((f): f is WindowFigures => f !== null);
    const wallSec = Math.max(...reports.map((r) => r.wallSec));
    const errors: Record<string, number> = {};
    for (const r of reports) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    const notCounted = figures.length - ok.length - Object.values(errors).reduce((a, b) => a + b, 0);
    if (notCounted > 0) errors['connected, but no packets in the window'] = notCounted;
    const none = summarize([]);
    return {
      readers: figures.length,
      window: { startMs, endMs, seconds },
      statuses: {},
      errors,
      gotFirstFrame: reports.flatMap((r) => r.ttfpMs).filter((t) => t !== null).length,
      framingErrors: reports.reduce((a, r) => a + r.malformed, 0),
      kbps: summarize(ok.map((f) => (f.bytes * 8) / wallSec / 1000)),
      fullRate: { threshold: 0.95, count: ok.filter((f) => f.fullRate).length },
      realtime: summarize(
        ok.map((f) => f.mediaSec / wallSec),
        3,
      ),
      ttffMs: summarize(reports.flatMap((r) => r.ttfpMs).filter((t): t is number => t !== null)),
      latenessRawMs: { meanPerReader: none, maxPerReader: none },
      generator: {
        cpuPct: reports.reduce((a, r) => a + r.cpuPct, 0),
        eventLoopDelayP99Ms: Math.max(...reports.map((r) => r.eventLoopDelayP99Ms)),
        processes: reports.length,
        maxProcessCpuPct: Math.max(...reports.map((r) => r.cpuPct)),
      },
      whep: {
        packetsPerSec: summarize(ok.map((f) => f.rate)),
        sentPacketsPerSec: summarize(ok.map((f) => f.sentRate)),
        lossPct: summarize(
          ok.map((f) => (f.expected > 0 ? (f.lost / f.expected) * 100 : 0)),
          2,
        ),
        connectMs: summarize(reports.flatMap((r) => r.connectMs).filter((t): t is number => t !== null)),
        setupSec: this.setupSec,
        setupGeneratorCpuSec: this.setupCpuSec,
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(
      this.procs.map(async (p) => {
        p.child.stdin?.write('END\n');
        const exited = new Promise<void>((r) => (alive(p.child) ? p.child.once('exit', () => r()) : r()));
        if ((await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 15_000))])) === false)
          await stopChild(p.child);
      }),
    );
  }
}
