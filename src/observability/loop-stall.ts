// Event-loop stall watch (issue 25, the hostile soak): a 50 ms heartbeat that logs every tick that came
// late by more than a threshold, with the CPU time the process used meanwhile. A stall with about as
// much CPU time as wall time is the server's own work blocking the loop; one with little CPU time is
// the process waiting for a core (a loaded machine). Off unless FEEDCAST_STALL_LOG_MS is set.

import type { Logger } from './logger.js';

const BEAT_MS = 50;

export interface LoopStall {
  /** How much later than due the heartbeat ran. */
  lateMs: number;
  /** Wall time since the previous heartbeat. */
  wallMs: number;
  /** User + system CPU time of the whole process (every thread) over that wall time. */
  cpuMs: number;
}

/** Classifies a stall: 'busy' when the process used at least half of the wall time on a CPU. */
export function stallCause(s: LoopStall): 'busy' | 'waiting' {
  return s.cpuMs >= s.wallMs / 2 ? 'busy' : 'waiting';
}

/** Starts the watch; the returned function stops it. `thresholdMs` is how late a beat must be to count. */
export function watchLoopStalls(thresholdMs: number, onStall: (s: LoopStall) => void): () => void {
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  const timer = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage();
    const wallMs = now - last;
    const lateMs = wallMs - BEAT_MS;
    if (lateMs > thresholdMs) {
      const cpuMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
      onStall({ lateMs: Math.round(lateMs), wallMs: Math.round(wallMs), cpuMs: Math.round(cpuMs) });
    }
    last = now;
    lastCpu = cpu;
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
