// A `perf` profile of a server's process tree over one measuring window (BENCH_PERF_LOADS in
// bench/peers.ts): where the CPU goes, kernel against user space, and the busiest symbols of each.
// Sampling is by cpu-clock at 499 Hz (perf's own cost stays small; the CPU figures of a profiled
// load include it), with frame-pointer call graphs off: the flat profile is what the summary uses.
// JIT-compiled JavaScript has no symbols here (no --perf-basic-prof): it is one row, "no symbol", with
// the samples of stripped code.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface PerfSummary {
  samples: number;
  /** % of the samples in the kernel ([k]) and in user space. */
  kernelPct: number;
  userPct: number;
  /** The busiest symbols, % of all samples. */
  topKernel: { symbol: string; pct: number }[];
  topUser: { symbol: string; pct: number; object: string }[];
  /** Named groups of symbols (e.g. SRTP's AES-GCM), % of all samples. */
  groups: Record<string, number>;
}

/** Symbol groups worth a line of their own: the regexps match perf's symbol names. */
const GROUPS: Record<string, RegExp> = {
  'SRTP / AES-GCM (OpenSSL in node, native/rtp-send.c)': /aes|gcm|ghash|protect_?datagram|protectDatagrams|srtp/i,
  'socket send path (kernel)': /sendmsg|sendmmsg|tcp_|udp_|ip_|__dev_queue_xmit|loopback|skb|__netif|net_rx|do_softirq/i,
  'copying (kernel)': /copy_user|memcpy|copyout|_copy_from|_copy_to/i,
  'garbage collection (V8)': /Scavenge|MarkCompact|Heap::|Sweeper|Evacuat|Marking/,
};

export function havePerf(): boolean {
  return spawnSync('perf', ['--version']).status === 0;
}

/** Starts `perf record` on these pids for `seconds`; the returned promise resolves when it has written `file`. */
export function recordPerf(
  pids: readonly number[],
  seconds: number,
  file: string,
): { child: ChildProcess; done: Promise<boolean> } {
  const child = spawn(
    'perf',
    ['record', '-q', '-e', 'cpu-clock', '-F', '499', '-p', pids.join(','), '-o', file, '--', 'sleep', String(seconds)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const done = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.on('error', () => resolve(false));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
  return { child, done };
}

/** Reads `perf report`'s flat profile of `file` into a summary. */
export function summarizePerf(file: string, top = 8): PerfSummary | undefined {
  const r = spawnSync(
    'perf',
    ['report', '-i', file, '--stdio', '--no-children', '-n', '--sort', 'dso,sym', '--percent-limit', '0', '-q'],
    { maxBuffer: 64 << 20, encoding: 'utf8', timeout: 120_000 },
  );
  if (r.status !== 0) return undefined;
  // Lines: "    12.34%   1234  [kernel.kallsyms]  [k] copy_user_enhanced_fast_string"
  const rows: { pct: number; object: string; kernel: boolean; symbol: string }[] = [];
  let samples = 0;
  for (const line of r.stdout.split('\n')) {
    // The object may hold spaces ("[JIT] tid 123"); the [k] / [.] mark follows it.
    const m = /^\s*([\d.]+)%\s+(\d+)\s+(.+?)\s+\[(\S)\]\s+(.*)$/.exec(line);
    if (m === null) continue;
    samples += Number(m[2]);
    // C++ template names run to hundreds of characters: their head is enough to tell them apart.
    rows.push({ pct: Number(m[1]), object: m[3] ?? '', kernel: m[4] === 'k', symbol: (m[5] ?? '').trim().slice(0, 80) });
  }
  // Code without symbols (JIT-compiled JavaScript; a stripped library): one row for all of it.
  const jit = rows.filter((x) => !x.kernel && (x.object.startsWith('[JIT]') || x.symbol.startsWith('0x')));
  if (jit.length > 0) {
    const merged = {
      pct: jit.reduce((a, x) => a + x.pct, 0),
      object: 'JIT or stripped',
      kernel: false,
      symbol: 'no symbol (JIT JavaScript, stripped code)',
    };
    rows.splice(0, rows.length, ...rows.filter((x) => !jit.includes(x)), merged);
    rows.sort((a, b) => b.pct - a.pct);
  }
  const sum = (xs: { pct: number }[]): number => Math.round(xs.reduce((a, x) => a + x.pct, 0) * 10) / 10;
  const kernel = rows.filter((x) => x.kernel);
  const user = rows.filter((x) => !x.kernel);
  const groups: Record<string, number> = {};
  for (const [name, re] of Object.entries(GROUPS)) groups[name] = sum(rows.filter((x) => re.test(x.symbol)));
  return {
    samples,
    kernelPct: sum(kernel),
    userPct: sum(user),
    topKernel: kernel.slice(0, top).map((x) => ({ symbol: x.symbol, pct: x.pct })),
    topUser: user.slice(0, top).map((x) => ({ symbol: x.symbol, pct: Math.round(x.pct * 100) / 100, object: x.object })),
    groups,
  };
}
