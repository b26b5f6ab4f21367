// How much memory an HLS DVR window costs (issue 21): a feed with `HLSDVRWindow` is fed MINUTES of
// a MBPS clip (encoded once, then published with -c copy at READRATE times real time), and the
// server's RSS and Buffer memory are read once the window holds it all, with and without a `File`
// (with one, only the last HLSWindow segments stay in memory; the older ones are read back from
// the ring, and one is fetched to show it). Prints one line of figures.
//
//   node --import tsx --expose-gc scripts/dvr-memory.ts [--file] [--minutes 10] [--mbps 4] [--readrate 8]

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { silentLogger } from '../src/observability/logger.js';
import { startLoopbackServer } from '../test/helpers/test-server.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    mbps: { type: 'string', default: '4' },
    readrate: { type: 'string', default: '8' },
    file: { type: 'boolean', default: false },
  },
});
const minutes = Number(values.minutes);
const mbps = Number(values.mbps);
const readrate = Number(values.readrate);
const CLIP_S = 60;

function ffmpeg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited with ${String(code)}`))));
  });
}

async function clip(): Promise<string> {
  const dir = join(tmpdir(), 'feedcast-dvr-memory');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `clip-${mbps}m.ts`);
  if (existsSync(path)) return path;
  await ffmpeg([
    ...['-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=25`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
    ...['-t', String(CLIP_S), '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '50', '-b:v', `${mbps}M`],
    ...['-maxrate', `${mbps}M`, '-bufsize', `${mbps}M`, '-x264-params', 'nal-hrd=cbr', '-c:a', 'aac', '-f', 'mpegts', path],
  ]);
  return path;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(0);
}

async function run(withFile: boolean, source: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-dvr-'));
  const ringBytes = Math.ceil(((mbps * 1.2 + 0.2) * 1e6 * minutes * 60) / 8);
  const file = withFile ? `  File ${dir}/dvr.ffm\n  FileMaxSize ${ringBytes}\n` : '';
  const server = await startLoopbackServer(`<Feed dvr.ffm>\n  HLSDVRWindow 2h\n${file}</Feed>\n`, 'dvr.conf', {
    log: silentLogger,
  });
  try {
    const base = `http://127.0.0.1:${server.httpPort}`;
    globalThis.gc?.();
    const before = process.memoryUsage();
    const loops = Math.ceil((minutes * 60) / CLIP_S);
    await ffmpeg([
      '-readrate',
      String(readrate),
      '-stream_loop',
      String(loops - 1),
      '-i',
      source,
      '-c',
      'copy',
      '-f',
      'mpegts',
      `${base}/dvr.ffm`,
    ]);
    globalThis.gc?.();
    const after = process.memoryUsage();
    const playlist = await (await fetch(`${base}/dvr/index.m3u8`)).text();
    const seconds = [...playlist.matchAll(/#EXTINF:([\d.]+),/g)].reduce((n, m) => n + Number(m[1]), 0);
    const first = /#EXTINF:[\d.]+,\n(\S+)/.exec(playlist)?.[1];
    const res = first !== undefined ? await fetch(`${base}/dvr/${first}`) : undefined;
    const firstBytes = res !== undefined ? (await res.arrayBuffer()).byteLength : 0;
    console.log(
      `${withFile ? 'File (ring)' : 'memory only'}: window ${seconds.toFixed(0)} s of ${mbps} Mb/s; ` +
        `RSS ${mib(before.rss)} -> ${mib(after.rss)} MiB (+${mib(after.rss - before.rss)}), ` +
        `Buffers ${mib(before.arrayBuffers)} -> ${mib(after.arrayBuffers)} MiB; ` +
        `oldest segment: HTTP ${res?.status ?? '-'}, ${firstBytes} bytes`,
    );
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// One run per process: RSS does not go back down after a run, so two in one process would mix.
await run(values.file === true, await clip());
