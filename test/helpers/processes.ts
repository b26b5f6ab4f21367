// Process-table helpers for tests of supervised children (Linux /proc): who are the ffmpeg
// children of a process, and is a pid still alive.

import { readdirSync, readFileSync } from 'node:fs';

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(open + 1, close);
    const rest = stat.slice(close + 2).split(' ');
    return { pid, comm, state: rest[0] ?? '?', ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Live (not zombie) processes named `comm` whose parent is `parent`. */
export function childrenNamed(comm: string, parent = process.pid): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = readProc(Number(entry));
    if (info !== undefined && info.ppid === parent && info.comm === comm && info.state !== 'Z') out.push(info.pid);
  }
  return out;
}

/** Every live process named `comm` (any parent). */
export function processesNamed(comm: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = readProc(Number(entry));
    if (info !== undefined && info.comm === comm && info.state !== 'Z') out.push(info.pid);
  }
  return out;
}

export function alive(pid: number): boolean {
  const info = readProc(pid);
  return info !== undefined && info.state !== 'Z';
}
