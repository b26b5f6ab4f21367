// Transcoding benchmark (docs/transcoding.md, "Cost"): what serving an H.264 ladder through
// Feedcast costs next to the same ffmpeg command alone, and how long a reader of an on-demand
// transcoded stream waits for its first frame.
//
//   node --import tsx bench/transcode.ts            15 s CPU windows, 3 first-frame runs
//   BENCH_SECONDS=30 BENCH_RUNS=5 node --import tsx bench/transcode.ts
//
//  1. Makes once a 10 s 1280x720 25 fps H.264 + AAC clip in .bench-out/ (git-ignored).
//  2. "Alone": `ffmpeg -re -stream_loop -1 -i clip -c copy -f mpegts - | ffmpeg <ladder argv>`, the
//     exact argv Feedcast builds (ladderArgs) for a 720p (2500k) + 360p (800k) ladder, output
//     discarded; CPU of the ladder process over the window (/proc/PID/stat).
//  3. "Feedcast": the server in this process, the clip published over HTTP, one reader of each
//     rendition; CPU of the ladder child and of the server process over the same window.
//  4. First frame: with the publisher on and the ladder stopped (on demand, idle), a new reader of
//     the 360p rendition; time to the first video frame in the FLV bytes, and to the first frame
//     ffmpeg decodes; the feed's passthrough /feed1.flv as the baseline.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../src/config/config.js';
import { createLogger, silentLogger } from '../src/observability/logger.js';
import { startServer, type RunningServer } from '../src/server.js';
import { variantsOf } from '../src/transcode/encodings.js';
import { ladderArgs } from '../src/transcode/ffmpeg-args.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, '.bench-out');
const CLIP = join(OUT, 'transcode-src-720p25-10s.ts');
const FFMPEG = process.env['FEEDCAST_FFMPEG'] ?? 'ffmpeg';
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? '15');
const RUNS = Number(process.env['BENCH_RUNS'] ?? '3');
const WARMUP_MS = 3000;
const TICK = 100; // getconf CLK_TCK on Linux

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const say = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);

const CONFIG = `
TranscodeIdleTimeout 1
<Feed feed1.ffm>
</Feed>
<Stream r720.flv>
  Feed feed1.ffm
  Format flv
  VideoSize 1280x720
  VideoFrameRate 25
  VideoBitRate 2500
  AudioCodec aac
  AudioBitRate 96
  AudioSampleRate 48000
  AudioChannels 2
</Stream>
<Stream r360.flv>
  Feed feed1.ffm
  Format flv
  VideoSize 640x360
  VideoFrameRate 25
  VideoBitRate 800
  AudioCodec aac
  AudioBitRate 96
  AudioSampleRate 48000
  AudioChannels 2
</Stream>
`;

function makeClip(): void {
  if (existsSync(CLIP)) return;
  mkdirSync(OUT, { recursive: true });
  say('making the 720p source clip');
  const r = spawnSync(FFMPEG, [
    ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25', '-f', 'lavfi', '-i', 'sine=sample_rate=48000'],
    ...['-t', '10', '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '3000k', '-g', '50', '-c:a', 'aac', '-f', 'mpegts', CLIP],
  ]);
  if (r.status !== 0) throw new Error(`cannot make the clip: ${r.stderr.toString()}`);
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

function feeder(target: string): ChildProcess {
  const args = ['-v', 'error', '-re', '-stream_loop', '-1', '-i', CLIP, '-c', 'copy', '-f', 'mpegts'];
  return target === '-'
    ? spawn(FFMPEG, [...args, '-'], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(FFMPEG, [...args, target], { stdio: ['ignore', 'ignore', 'inherit'] });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function alone(argv: string[]): Promise<number> {
  const feed = feeder('-');
  const ladder = spawn(FFMPEG, argv, { stdio: ['pipe', 'ignore', 'inherit'] });
  feed.stdout?.pipe(ladder.stdin ?? process.stdout);
  ladder.stdin?.on('error', () => undefined);
  try {
    await sleep(WARMUP_MS);
    const pid = ladder.pid ?? 0;
    const start = cpuSeconds(pid);
    await sleep(SECONDS * 1000);
    return (cpuSeconds(pid) - start) / SECONDS;
  } finally {
    await stopChild(feed);
    await stopChild(ladder);
  }
}

/** A GET that reads and discards; resolves the first video frame time (ms) of an FLV body. */
function readFlv(url: string): { firstVideoMs: Promise<number>; close: () => void } {
  const t0 = performance.now();
  let close = (): void => undefined;
  const firstVideoMs = new Promise<number>((resolve, reject) => {
    const req = get(url, (res) => {
      let buf = Buffer.alloc(0);
      let at = 13; // FLV header + PreviousTagSize0
      let found = false;
      res.on('data', (d: Buffer) => {
        if (found) return;
        buf = Buffer.concat([buf, d]);
        while (buf.length >= at + 11) {
          const type = buf[at] ?? 0;
          const size = buf.readUIntBE(at + 1, 3);
          if (buf.length < at + 11 + size) break;
          // A video tag whose AVCPacketType is 1 (NAL units), not the sequence header.
          if (type === 9 && buf[at + 12] === 1) {
            found = true;
            resolve(performance.now() - t0);
            return;
          }
          at += 11 + size + 4;
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    close = () => req.destroy();
  });
  firstVideoMs.catch(() => undefined);
  return { firstVideoMs, close };
}

async function decodeFirstFrameMs(url: string): Promise<number> {
  const t0 = performance.now();
  const r = spawn(FFMPEG, ['-v', 'error', '-i', url, '-frames:v', '1', '-f', 'null', '-'], { stdio: 'ignore' });
  const timer = setTimeout(() => r.kill('SIGKILL'), 30_000);
  const code = await new Promise((resolve) => r.once('exit', resolve));
  clearTimeout(timer);
  return code === 0 ? performance.now() - t0 : NaN; // NaN: no frame within 30 s
}

/** The first video frame time of an FLV reader, or NaN after 30 s. */
async function firstFrameMs(url: string): Promise<number> {
  const r = readFlv(url);
  const timeout = new Promise<number>((resolve) => setTimeout(() => resolve(NaN), 30_000).unref());
  const ms = await Promise.race([r.firstVideoMs, timeout]);
  r.close();
  return ms;
}

function ladderPid(server: RunningServer): number | undefined {
  return server.ctx.children?.transcoders().find((t) => t.running)?.pid;
}

async function waitUntil(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  makeClip();
  const parsed = await parseConfigText(CONFIG, 'bench.conf');
  const config = { ...parsed, http: { port: 0, bindAddress: '127.0.0.1' }, rtmp: { ...parsed.rtmp, port: 0 } };
  const argv = ladderArgs(
    variantsOf(config, 'feed1').map((v) => v.profile),
    { hasVideo: true, hasAudio: true },
  );

  say(`alone: the ladder command on the clip, ${SECONDS} s window`);
  const aloneCores = await alone(argv);

  say(`feedcast: published clip, one reader per rendition, ${SECONDS} s window`);
  const log =
    process.env['BENCH_LOG'] !== undefined
      ? createLogger({ format: 'pretty', write: (l) => process.stderr.write(l + '\n') })
      : silentLogger;
  const server = await startServer(config, { log });
  const url = (p: string): string => `http://127.0.0.1:${server.httpPort}${p}`;
  const pub = feeder(url('/feed1.ffm'));
  let result: Record<string, unknown> = {};
  try {
    await waitUntil('the feed', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) > 0);
    const readers = [readFlv(url('/r720.flv')), readFlv(url('/r360.flv'))];
    for (const r of readers) r.firstVideoMs.catch(() => undefined);
    await waitUntil('the ladder child', () => ladderPid(server) !== undefined);
    await sleep(WARMUP_MS);
    const pid = ladderPid(server) ?? 0;
    const childStart = cpuSeconds(pid);
    const serverStart = process.cpuUsage();
    await sleep(SECONDS * 1000);
    const childCores = (cpuSeconds(pid) - childStart) / SECONDS;
    const su = process.cpuUsage(serverStart);
    const serverCores = (su.user + su.system) / 1e6 / SECONDS;
    for (const r of readers) r.close();

    say(`first frame: ${RUNS} runs each, ladder stopped (idle) before every transcoded run`);
    const toFrameBytes: number[] = [];
    const toDecoded: number[] = [];
    const passBytes: number[] = [];
    const passDecoded: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await waitUntil('the ladder to stop', () => ladderPid(server) === undefined);
      toFrameBytes.push(await firstFrameMs(url('/r360.flv')));
      await waitUntil('the ladder to stop', () => ladderPid(server) === undefined);
      toDecoded.push(await decodeFirstFrameMs(url('/r360.flv')));
      passBytes.push(await firstFrameMs(url('/feed1.flv')));
      passDecoded.push(await decodeFirstFrameMs(url('/feed1.flv')));
    }
    result = {
      window_s: SECONDS,
      ladder_alone_cores: Number(aloneCores.toFixed(3)),
      ladder_child_in_feedcast_cores: Number(childCores.toFixed(3)),
      feedcast_process_cores: Number(serverCores.toFixed(3)),
      overhead_pct: Number((((childCores + serverCores) / aloneCores - 1) * 100).toFixed(1)),
      first_frame_bytes_ms: { median: Math.round(median(toFrameBytes)), runs: toFrameBytes.map(Math.round) },
      first_decoded_frame_ms: { median: Math.round(median(toDecoded)), runs: toDecoded.map(Math.round) },
      // Restarts whose reader got no frame within 30 s (issue #7: was 3 of 8 before the fix).
      restarts_without_a_frame: [...toFrameBytes, ...toDecoded].filter(Number.isNaN).length,
      passthrough_first_frame_bytes_ms: Math.round(median(passBytes)),
      passthrough_first_decoded_frame_ms: Math.round(median(passDecoded)),
    };
  } finally {
    await stopChild(pub);
    await server.close();
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
