// Event-loop stall watch (issue 25, the hostile soak): a 100 ms heartbeat that logs every tick that
// came late by more than a threshold, with where the main thread's time went meanwhile (Linux
// /proc/thread-self/schedstat): on a CPU (`busy`: Feedcast's own work blocked the loop), waiting in
// the run queue for a core (`waiting`: a loaded machine), or neither (`blocked`: asleep in a system
// call, e.g. a synchronous write to a full pipe, or a page fault). Where schedstat cannot be read,
// the process's CPU time tells busy from the rest. Off unless FEEDCAST_STALL_LOG_MS is set.

import { readFileSync } from 'node:fs';
import type { Logger } from './logger.js';

const BEAT_MS = 100;

export interface LoopStall {
  /** How much later than due the heartbeat ran. */
  lateMs: number;
  /** Wall time since the previous heartbeat. */
  wallMs: number;
  /** Time the main thread ran on a CPU over that wall time (the whole process's CPU time without schedstat). */
  cpuMs: number;
  /** Time the main thread waited in the run queue for a core; undefined without schedstat. */
  runQueueMs: number | undefined;
}

export type StallCause = 'busy' | 'waiting' | 'blocked';

/** What took most of a stall: running, waiting for a core, or sleeping in the kernel. */
export function stallCause(s: LoopStall): StallCause {
  const other = s.wallMs - s.cpuMs - (s.runQueueMs ?? 0);
  if (s.cpuMs >= (s.runQueueMs ?? 0) && s.cpuMs >= other) return 'busy';
  if (s.runQueueMs === undefined) return 'waiting';
  return s.runQueueMs >= other ? 'waiting' : 'blocked';
}

/** The main thread's [on-CPU ns, run-queue ns] (only the main thread calls this), or undefined off Linux. */
function schedstat(): [number, number] | undefined {
  try {
    const [cpu, wait] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
    const a = Number(cpu);
    const b = Number(wait);
    return Number.isFinite(a) && Number.isFinite(b) ? [a, b] : undefined;
  } catch {
    return undefined;
  }
}

function processCpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** Starts the watch; the returned function stops it. `thresholdMs` is how late a beat must be to count. */
export function watchLoopStalls(thresholdMs: number, onStall: (s: LoopStall) => void): () => void {
  const useSchedstat = schedstat() !== undefined;
  const sample = (): [number, number | undefined] => {
    const s = useSchedstat ? schedstat() : undefined;
    return s !== undefined ? s : [processCpuNs(), undefined];
  };
  let last = performance.now();
  let lastSample = sample();
  const timer = setInterval(() => {
    const now = performance.now();
    const current = sample();
    const wallMs = now - last;
    const lateMs = wallMs - BEAT_MS;
    if (lateMs > thresholdMs) {
      const cpuMs = (current[0] - lastSample[0]) / 1e6;
      const runQueueMs =
        current[1] !== undefined && lastSample[1] !== undefined ? Math.round((current[1] - lastSample[1]) / 1e6) : undefined;
      onStall({ lateMs: Math.round(lateMs), wallMs: Math.round(wallMs), cpuMs: Math.round(cpuMs), runQueueMs });
    }
    last = now;
    lastSample = current;
  }, BEAT_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** FEEDCAST_STALL_LOG_MS=N: logs each stall over N ms (info, 'event loop stalled'). */
export function watchLoopStallsFromEnv(log: Logger): (() => void) | undefined {
  const raw = process.env['FEEDCAST_STALL_LOG_MS'];
  if (raw === undefined || raw === '') return undefined;
  const threshold = Number(raw);
  if (!Number.isFinite(threshold) || threshold <= 0) {
    log.warn('FEEDCAST_STALL_LOG_MS is not a positive number of milliseconds; the stall watch is off', { value: raw });
    return undefined;
  }
  return watchLoopStalls(threshold, (s) => log.info('event loop stalled', { ...s, cause: stallCause(s) }));
}
