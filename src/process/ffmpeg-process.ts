// Supervision of one ffmpeg child (STYLE §5 "ffmpeg"): argv spawn (never a shell), stderr kept
// line by line for logs and ProcessError, restart with capped backoff, SIGTERM then SIGKILL,
// idempotent stop; plus the ChildReaper, which kills every child if the server itself dies.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Writable } from 'node:stream';
import { ProcessError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { TypedEmitter } from '../typed-emitter.js';

const STDERR_TAIL_LINES = 20;

/**
 * Kills the children of a server that died without stopping them (SIGKILL, crash). A tiny
 * detached `sh` holds a pipe from us: we write `+PID` / `-PID` lines; when the pipe reaches EOF
 * (we are gone) it sends SIGTERM, then SIGKILL, to each process group still listed. The script is
 * fixed text; PIDs are integers we write. Children also die on their own when they write into
 * the pipe we no longer read (EPIPE); the reaper covers children that are silent at that moment.
 */
const REAPER_SCRIPT = `
pids=""
while IFS= read -r line; do
  case "$line" in
    +*) pids="$pids \${line#+}" ;;
    -*) keep=""; for p in $pids; do [ "$p" = "\${line#-}" ] || keep="$keep $p"; done; pids="$keep" ;;
  esac
done
[ -z "$pids" ] && exit 0
for p in $pids; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done
sleep 2
for p in $pids; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done
`;

export class ChildReaper {
  private static shared: ChildReaper | undefined;
  private child: ChildProcess | undefined;
  private stdin: Writable | undefined;
  private readonly live = new Set<number>();

  /** One reaper per server process. */
  static get(): ChildReaper {
    ChildReaper.shared ??= new ChildReaper();
    return ChildReaper.shared;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the reaper if it is not running: call before spawning, so tracking is one write. */
  prepare(): void {
    this.ensure();
  }

  track(pid: number): void {
    this.ensure();
    this.live.add(pid);
    this.stdin?.write(`+${pid}\n`);
  }

  untrack(pid: number): void {
    if (!this.live.delete(pid)) return;
    this.stdin?.write(`-${pid}\n`);
  }

  private ensure(): void {
    if (this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null) return;
    const child = spawn('/bin/sh', ['-c', REAPER_SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    child.on('error', () => undefined);
    child.stdin?.on('error', () => undefined);
    child.unref();
    // Node must not stay alive for the reaper's pipe.
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    this.child = child;
    this.stdin = child.stdin ?? undefined;
    for (const pid of this.live) this.stdin?.write(`+${pid}\n`);
  }
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** A child that ran at least this long resets the backoff. */
  stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, stableMs: 10_000 };

/** The delay before restart number `failures` (1-based): doubling from initialMs, capped. */
export function backoffDelayMs(failures: number, b: BackoffOptions = DEFAULT_BACKOFF): number {
  return Math.min(b.maxMs, b.initialMs * 2 ** Math.max(0, failures - 1));
}

export interface FfmpegProcessOptions {
  /** For logs and errors, e.g. `transcoder feed1/webm`. */
  name: string;
  command: string;
  /** Arguments for each (re)start: may change between starts. */
  args: () => string[];
  log: Logger;
  /** Wire stdin/stdout (and count bytes) for a freshly spawned child. */
  onSpawn: (child: ChildProcess) => void;
  stdin: 'pipe' | 'ignore';
  backoff?: BackoffOptions;
  /** Grace between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  reaper?: ChildReaper;
  /** Restart after a clean exit (code 0) too; off for sources that are meant to end (NoLoop). */
  restartOnCleanExit?: boolean;
}

export type FfmpegProcessEvents = {
  /** A child is running (its pid). */
  spawn: [number];
  /** A child ended; `willRestart` says whether another will be started. */
  exit: [ProcessError, boolean];
  /** The program cannot be started at all (ENOENT, EACCES): no restart. */
  failed: [ProcessError];
};

export interface FfmpegProcessStatus {
  name: string;
  running: boolean;
  pid: number | undefined;
  starts: number;
  restarts: number;
  lastError: string | undefined;
  stderrTail: readonly string[];
}

export class FfmpegProcess extends TypedEmitter<FfmpegProcessEvents> {
  private readonly opts: FfmpegProcessOptions;
  private readonly log: Logger;
  private child: ChildProcess | undefined;
  private wanted = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private tail: string[] = [];
  private partialLine = '';
  private stopping: Promise<void> | undefined;
  starts = 0;
  lastError: ProcessError | undefined;

  constructor(opts: FfmpegProcessOptions) {
    super(opts.log);
    this.opts = opts;
    this.log = opts.log.child({ child: opts.name });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get stderrTail(): readonly string[] {
    return this.tail;
  }

  status(): FfmpegProcessStatus {
    return {
      name: this.opts.name,
      running: this.running,
      pid: this.pid,
      starts: this.starts,
      restarts: Math.max(0, this.starts - 1),
      lastError: this.lastError?.message,
      stderrTail: [...this.tail],
    };
  }

  /** Starts the child (and keeps restarting it) until stop(). Idempotent. */
  start(): void {
    this.wanted = true;
    if (this.child !== undefined || this.restartTimer !== undefined || this.stopping !== undefined) return;
    this.spawnChild();
  }

  private spawnChild(): void {
    this.restartTimer = undefined;
    if (!this.wanted) return;
    const args = this.opts.args();
    this.tail = [];
    this.partialLine = '';
    const reaper = this.opts.reaper ?? ChildReaper.get();
    reaper.prepare();
    const [command, argv] = withParentDeathSignal(this.opts.command, args);
    let child: ChildProcess;
    try {
      child = spawn(command, argv, {
        stdio: [this.opts.stdin, 'pipe', 'pipe'],
        // Own process group: a terminal's Ctrl-C reaches the server, which stops children itself.
        detached: true,
      });
    } catch (err) {
      this.fail(new ProcessError(`${this.opts.name}: cannot start ${this.opts.command} (${String(err)})`, null, null, []));
      return;
    }
    this.child = child;
    this.starts++;
    this.startedAt = Date.now();
    // Tell the reaper at once, in this synchronous block: if the server dies from here on (even
    // before the 'spawn' event), the child is killed.
    if (child.pid !== undefined) reaper.track(child.pid);
    let spawned = false;
    child.once('spawn', () => {
      spawned = true;
      if (child.pid !== undefined) {
        this.log.info('ffmpeg started', { pid: child.pid, argv: args.join(' ') });
        this.safeEmit('spawn', child.pid);
      }
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (spawned) return; // a kill() error after spawn: 'exit' still follows
      this.child = undefined;
      this.fail(
        new ProcessError(
          `${this.opts.name}: cannot start ${this.opts.command} (${err.code ?? err.message}); set FFmpegPath or FEEDCAST_FFMPEG`,
          null,
          null,
          [],
        ),
      );
    });
    child.stderr?.on('data', (d: Buffer) => this.onStderr(d));
    child.stdin?.on('error', () => undefined); // EPIPE when ffmpeg exits first; 'exit' reports it
    child.stdout?.on('error', () => undefined);
    child.once('exit', (code, signal) => {
      if (child.pid !== undefined) reaper.untrack(child.pid);
      if (!spawned) return;
      if (this.partialLine !== '') this.pushLine(this.partialLine);
      this.child = undefined;
      const error = new ProcessError(this.opts.name, code, signal, [...this.tail]);
      this.lastError = error;
      const ranMs = Date.now() - this.startedAt;
      const backoff = this.opts.backoff ?? DEFAULT_BACKOFF;
      if (ranMs >= backoff.stableMs) this.failures = 0;
      const clean = code === 0 && this.opts.restartOnCleanExit === false;
      const willRestart = this.wanted && !clean;
      if (willRestart) {
        this.failures++;
        const delay = backoffDelayMs(this.failures, backoff);
        this.log.warn('ffmpeg exited, restarting', { code, signal, ranMs, inMs: delay, stderr: this.tail.slice(-3).join(' | ') });
        this.restartTimer = setTimeout(() => this.spawnChild(), delay);
        this.restartTimer.unref();
      } else if (this.wanted) {
        this.wanted = false;
        this.log.info('ffmpeg finished', { code, ranMs });
      } else {
        this.log.info('ffmpeg stopped', { code, signal });
      }
      this.safeEmit('exit', error, willRestart);
    });
    try {
      this.opts.onSpawn(child);
    } catch (err) {
      this.log.error('wiring the ffmpeg child failed', { err });
    }
  }

  private fail(error: ProcessError): void {
    this.wanted = false;
    this.lastError = error;
    this.log.error('ffmpeg cannot start', { err: error });
    this.safeEmit('failed', error);
  }

  private onStderr(d: Buffer): void {
    const text = this.partialLine + d.toString('utf8');
    const lines = text.split(/\r?\n|\r/);
    this.partialLine = (lines.pop() ?? '').slice(-2000);
    for (const line of lines) this.pushLine(line);
  }

  private pushLine(raw: string): void {
    const line = raw.trim().slice(0, 500);
    if (line === '') return;
    this.tail.push(line);
    if (this.tail.length > STDERR_TAIL_LINES) this.tail.shift();
    this.log.debug('ffmpeg', { stderr: line });
  }

  /** Stops the child: closes stdin, SIGTERM, then SIGKILL after the grace period. Idempotent. */
  stop(): Promise<void> {
    this.wanted = false;
    if (this.restartTimer !== undefined) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
    const child = this.child;
    if (child === undefined) return this.stopping ?? Promise.resolve();
    this.stopping ??= new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(killTimer);
        this.stopping = undefined;
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve();
        return;
      }
      child.once('exit', done);
      child.stdin?.end();
      killGroup(child, 'SIGTERM');
      const killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), this.opts.killGraceMs ?? 3000);
      killTimer.unref();
    });
    return this.stopping;
  }
}

let setprivPath: string | null | undefined;

/**
 * `setpriv --pdeathsig KILL -- COMMAND ARGS` when util-linux's setpriv exists and COMMAND is an
 * executable path: the kernel kills the child when the server dies, even in the instant between
 * fork and telling the reaper (setpriv execs COMMAND, so the pid and name stay ffmpeg's). Other
 * commands run directly, so that a missing program still fails with ENOENT.
 */
export function withParentDeathSignal(command: string, args: readonly string[]): [string, string[]] {
  if (setprivPath === undefined) setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find(isExecutable) ?? null;
  if (setprivPath === null || !command.startsWith('/') || !isExecutable(command)) return [command, [...args]];
  return [setprivPath, ['--pdeathsig', 'KILL', '--', command, ...args]];
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}
