// Shared by the benchmarks (bench/fanout.ts, bench/peers.ts): the source clip, child processes
// that are always stopped, free ports, and /proc sampling.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const OUT = join(ROOT, '.bench-out');
export const CLIP = join(OUT, 'src-720p30-2m-10s.ts');
export const CLIP_FLV = join(OUT, 'src-720p30-2m-10s.flv');
export const CLIP_INFO = join(OUT, 'src-720p30-2m-10s.json');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const round = (x: number, d = 1): number => Number(x.toFixed(d));
export const say = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and stopped on exit, error or signal.

export const children = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

export function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

export async function stopChild(child: ChildProcess, graceMs = 4000): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = sleep(graceMs).then(() => 'timeout' as const);
  if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout' && alive(child)) {
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(1000)]);
  }
}

process.on('exit', () => {
  for (const c of children) if (alive(c)) c.kill('SIGKILL');
});

/** Runs a command to completion, bounded in time; rejects with its stderr tail on failure. */
export function runTool(cmd: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${err}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Source clip

export interface ClipInfo {
  /** The ffmpeg arguments it was made with: a change re-encodes it. */
  recipe: string;
  tsBytes: number;
  durationSec: number;
  flvBytes: number;
  /** Bitrate of the clip remuxed to FLV, over the loop period (the TS duration). */
  refKbps: number;
}

// The clip's audio goes one AAC frame per PES (-pes_payload_size 0): with ffmpeg's default of
// ~180 ms of audio per PES, `ffmpeg -re` sends the feed in bursts every ~160 ms (video waits in the
// interleaving queue for the next audio packet), which blurs the delay measurement.
// prettier-ignore
export const ENCODE_ARGS = [
  '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
  '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
  '-t', '10',
  '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
  '-b:v', '1900k', '-maxrate', '1900k', '-bufsize', '1900k', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
  '-c:a', 'aac', '-b:a', '128k', '-ac', '2',
  '-f', 'mpegts', '-pes_payload_size', '0',
];

export async function prepareClip(): Promise<ClipInfo> {
  mkdirSync(OUT, { recursive: true });
  const recipe = ENCODE_ARGS.join(' ');
  if (existsSync(CLIP_INFO) && existsSync(CLIP)) {
    const info = JSON.parse(readFileSync(CLIP_INFO, 'utf8')) as ClipInfo;
    if (statSync(CLIP).size === info.tsBytes && info.recipe === recipe) return info;
  }
  say('encoding the source clip once (10 s of 720p30 H.264 1.9 Mb/s + AAC 128 kb/s)…');
  // The clip is encoded to a temporary name first, so that an interrupted run leaves no half clip.
  const tmp = `${CLIP}.part.ts`;
  await runTool('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...ENCODE_ARGS, tmp], 180_000);
  await runTool(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-i', tmp, '-c', 'copy', '-f', 'flv', CLIP_FLV],
    60_000,
  );
  const probe = await runTool('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', tmp], 30_000);
  const durationSec = Number(probe.trim());
  if (!(durationSec > 0)) throw new Error(`ffprobe gave no duration for ${tmp}: "${probe.trim()}"`);
  renameSync(tmp, CLIP);
  const flvBytes = statSync(CLIP_FLV).size;
  const info: ClipInfo = {
    recipe,
    tsBytes: statSync(CLIP).size,
    durationSec,
    flvBytes,
    refKbps: round((flvBytes * 8) / durationSec / 1000),
  };
  writeFileSync(CLIP_INFO, JSON.stringify(info, null, 2) + '\n');
  return info;
}

/**
 * The WebRTC rows' source (bench/whep-load.ts): the same picture and video settings without
 * B-frames (browsers decode no reordered H.264 over RTP, and Feedcast would re-encode a source
 * that has them) and without audio, so both servers relay one H.264 track of ~1.9 Mb/s as is.
 */
export const WEBRTC_CLIP = join(OUT, 'src-720p30-2m-10s-nobf.ts');

export async function prepareWebRtcClip(): Promise<{ path: string; kbps: number }> {
  mkdirSync(OUT, { recursive: true });
  const video = ENCODE_ARGS.slice(0, 4).concat(ENCODE_ARGS.slice(ENCODE_ARGS.indexOf('-t'), ENCODE_ARGS.indexOf('-c:a')));
  const args = [...video, '-bf', '0', '-an', '-f', 'mpegts'];
  const recipeFile = `${WEBRTC_CLIP}.recipe`;
  const recipe = args.join(' ');
  if (!existsSync(WEBRTC_CLIP) || !existsSync(recipeFile) || readFileSync(recipeFile, 'utf8') !== recipe) {
    say('encoding the WebRTC source clip once (10 s of 720p30 H.264 1.9 Mb/s, no B-frames, no audio)…');
    const tmp = `${WEBRTC_CLIP}.part.ts`;
    await runTool('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...args, tmp], 180_000);
    renameSync(tmp, WEBRTC_CLIP);
    writeFileSync(recipeFile, recipe);
  }
  const probe = await runTool(
    'ffprobe',
    ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', WEBRTC_CLIP],
    30_000,
  );
  return { path: WEBRTC_CLIP, kbps: round((statSync(WEBRTC_CLIP).size * 8) / Number(probe.trim()) / 1000) };
}

// ---------------------------------------------------------------------------------------------
// Ports and /proc

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * `n` distinct free loopback ports: every listener stays open until all are known (freePort()
 * called in a row can give the same port twice, and the server then refuses its config).
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          srv.on('error', reject);
          srv.listen(0, '127.0.0.1', () => {
            const addr = srv.address();
            resolve(typeof addr === 'object' && addr !== null ? addr.port : 0);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  }
}

export const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime and stime of a process, in clock ticks; undefined when it is gone. */
export function procUserSys(pid: number | undefined, statPath = `/proc/${pid}/stat`): { user: number; sys: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(statPath, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]), sys: Number(f[12]) }; // fields 14 and 15 of the whole line
  } catch {
    return undefined;
  }
}

/** utime + stime of a process, in clock ticks; undefined when it is gone. */
export function procTicks(pid: number | undefined): number | undefined {
  const t = procUserSys(pid);
  return t === undefined ? undefined : t.user + t.sys;
}

/** utime + stime of a process's main thread (the one whose id is the pid), in clock ticks. */
export function mainThreadTicks(pid: number | undefined): number | undefined {
  const t = procUserSys(pid, `/proc/${pid}/task/${pid}/stat`);
  return t === undefined ? undefined : t.user + t.sys;
}

export function procRssKB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * Write system calls the process made (`syscw` of /proc/PID/io: write, writev, sendmsg ...): the
 * cost that grows with readers, counted exactly whatever else the machine is doing.
 */
export function procWriteCalls(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /syscw:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'latin1'));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Whole machine: busy, interrupt (irq + softirq: much of loopback TCP) and total ticks, all CPUs. */
export function machineTicks(): { busy: number; irq: number; total: number } {
  const line = readFileSync('/proc/stat', 'latin1').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { busy: total - idle, irq: (v[5] ?? 0) + (v[6] ?? 0), total };
}

/** utime + stime of every process, by pid, with its command name. */
