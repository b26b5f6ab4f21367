// Reads a V8 .cpuprofile (node --cpu-prof) and finds its longest busy stretches: runs of samples with
// no idle sample between them, i.e. the longest times the event loop did not get back to waiting
// for I/O. For each: its length and the functions of src/ (inclusive) and leaf functions (self) that
// took most of it. Used by the soak (SOAK_CPU_PROF=1) to say which work blocks the server's loop.
//
//   npx tsx scripts/cpu-profile.ts FILE.cpuprofile [N]

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface BusyStretch {
  /** Milliseconds from the start of the profile. */
  atMs: number;
  ms: number;
  /** Functions under src/ on the stack, by share of the stretch's samples (inclusive). */
  src: string[];
  /** Functions at the top of the stack (self time), by share. */
  leaves: string[];
}

const frameName = (n: ProfileNode): string => {
  const file = n.callFrame.url.replace(/^.*\/(src|node_modules|scripts)\//, '$1/').replace(/^node:/, '');
  return `${n.callFrame.functionName || '(anonymous)'}${file !== '' ? ` ${file}:${n.callFrame.lineNumber + 1}` : ''}`;
};

function top(counts: Map<string, number>, total: number, n: number): string[] {
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, c]) => `${Math.round((c / total) * 100)}% ${name}`);
}

export function busyStretches(profile: CpuProfile, n: number): BusyStretch[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const stackOf = (id: number): ProfileNode[] => {
    const out: ProfileNode[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at);
      if (node !== undefined) out.push(node);
    }
    return out;
  };
  const stretches: { at: number; ms: number; from: number; to: number }[] = [];
  let t = 0;
  let open: { at: number; ms: number; from: number } | undefined;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = (profile.timeDeltas[i] ?? 0) / 1000;
    t += delta;
    const node = byId.get(profile.samples[i] ?? -1);
    const idle = node === undefined || node.callFrame.functionName === '(idle)';
    if (idle) {
      if (open !== undefined) stretches.push({ ...open, to: i });
      open = undefined;
    } else if (open === undefined) open = { at: t, ms: 0, from: i };
    else open.ms += delta;
  }
  stretches.sort((a, b) => b.ms - a.ms);
  return stretches.slice(0, n).map((s) => {
    const src = new Map<string, number>();
    const leaves = new Map<string, number>();
    for (let i = s.from; i < s.to; i++) {
      const stack = stackOf(profile.samples[i] ?? -1);
      const leaf = stack[0];
      if (leaf !== undefined) leaves.set(frameName(leaf), (leaves.get(frameName(leaf)) ?? 0) + 1);
      for (const name of new Set(stack.filter((f) => f.callFrame.url.includes('/src/')).map(frameName)))
        src.set(name, (src.get(name) ?? 0) + 1);
    }
    const total = Math.max(1, s.to - s.from);
    return { atMs: Math.round(s.at), ms: Math.round(s.ms), src: top(src, total, 8), leaves: top(leaves, total, 5) };
  });
}

if (process.argv[1]?.endsWith('cpu-profile.ts') === true) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: tsx scripts/cpu-profile.ts FILE.cpuprofile [N]');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  console.log(JSON.stringify(busyStretches(profile, Number(process.argv[3] ?? '10')), null, 2));
}
