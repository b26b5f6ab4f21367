// FeedFile benchmark: CPU cost of recording per Mb/s of feed (hot path and total), time to open
// (recover) a 1 GiB file and to seek in it. Run: npx tsx bench/feedfile.ts [--size-mib 1024].
// Uses a temp directory that is removed at the end (the 1 GiB file included).

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Feed } from '../src/feed/feed.js';
import { FeedFileCursor, FileBlockSource } from '../src/feedfile/cursor.js';
import { openFeedFile } from '../src/feedfile/recovery.js';
import { FeedFileWriter } from '../src/feedfile/writer.js';
import type { Track } from '../src/media/track.js';
import { silentLogger } from '../src/observability/logger.js';

const VIDEO: Track = { id: 0, kind: 'video', codec: 'h264', config: Buffer.alloc(40, 1), width: 1280, height: 720 };
const AUDIO: Track = { id: 1, kind: 'audio', codec: 'aac', config: Buffer.from([0x11, 0x90]), sampleRate: 48000, channels: 2 };
const sizeArg = process.argv.indexOf('--size-mib');
const BIG_MIB = sizeArg > 0 ? Number(process.argv[sizeArg + 1]) : 1024;

interface Recorder {
  writer: FeedFileWriter;
  /** Writes `seconds` of media at `mbps`; returns the ms spent in the synchronous hot path. */
  run(seconds: number): number;
  wall(): number;
}

async function recorder(path: string, maxSizeBytes: number, mbps: number, syncIntervalMs?: number): Promise<Recorder> {
  const feed = new Feed('b.ffm', 'b', { publisherTimeoutMs: 1e9, publisherGraceMs: 1e9 }, silentLogger);
  const writer = await FeedFileWriter.open(feed, {
    path,
    maxSizeBytes,
    log: silentLogger,
    maxQueueBytes: 256 * 1024 * 1024,
    syncIntervalMs,
  });
  const start = 1_700_000_000_000;
  const session = feed.attachPublisher({ protocol: 'bench', remoteAddress: '-', startedAt: new Date(start) }, start);
  session.setTracks([VIDEO, AUDIO]);
  const perFrame = Math.round((mbps * 1e6) / 8 / 25);
  const key = Buffer.alloc(perFrame * 4, 7);
  const inter = Buffer.alloc(Math.max(100, Math.round((perFrame * 21) / 24)), 9);
  const audio = Buffer.alloc(256, 3);
  let v = 0;
  let a = 0;
  const wall = (): number => start + v * 40;
  return {
    writer,
    wall,
    run(seconds) {
      const t0 = performance.now();
      const end = v + seconds * 25;
      while (v < end) {
        while (a * 1920 < v * 3600) {
          session.write({ trackId: 1, dts90k: a * 1920, pts90k: a * 1920, keyframe: true, data: audio }, start + (a * 1920) / 90);
          a++;
        }
        const keyframe = v % 50 === 0;
        session.write({ trackId: 0, dts90k: v * 3600, pts90k: v * 3600, keyframe, data: keyframe ? key : inter }, wall());
        v++;
      }
      return performance.now() - t0;
    },
  };
}

async function writeCost(dir: string): Promise<void> {
  console.log('\nWrite cost (20 s of 25 fps H.264-like frames + AAC, 2 s GOP, 64 MiB ring, flushed every second of media)');
  console.log(
    'feed Mb/s | FileSync | hot path ms per s of media | total CPU ms per s of media | CPU ms per s per Mb/s | wall ms per s',
  );
  for (const [mbps, sync] of [1, 4, 16, 64].flatMap((m) => [[m, false] as const, [m, true] as const])) {
    const path = join(dir, `cost-${mbps}.ffm`);
    // FileSync 1 in real time = one fdatasync per second of media here (the bench runs faster than real time).
    const r = await recorder(path, 64 * 1024 * 1024, mbps, sync ? 0 : undefined);
    const wall0 = performance.now();
    const cpu0 = process.cpuUsage();
    let hot = 0;
    for (let s = 0; s < 20; s++) {
      hot += r.run(1);
      await r.writer.flush();
    }
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - wall0;
    await r.writer.close();
    const totalMs = (cpu.user + cpu.system) / 1000;
    console.log(
      `${String(mbps).padStart(9)} | ${(sync ? '1' : 'off').padStart(8)} | ${(hot / 20).toFixed(2).padStart(26)} | ${(totalMs / 20).toFixed(2).padStart(27)} | ${(totalMs / 20 / mbps).toFixed(2).padStart(21)} | ${(wallMs / 20).toFixed(1).padStart(13)}`,
    );
    rmSync(path, { force: true });
  }
}

async function bigFile(dir: string): Promise<void> {
  const path = join(dir, 'big.ffm');
  const bytes = BIG_MIB * 1024 * 1024;
  const r = await recorder(path, bytes, 64);
  const t0 = performance.now();
  // Fill the ring and go round once more by ~10 %, so the file is full and wrapped.
  const seconds = Math.ceil(((bytes / ((64 * 1e6) / 8)) * 1.1) / 10) * 10;
  for (let s = 0; s < seconds; s += 10) {
    r.run(10);
    await r.writer.flush();
  }
  await r.writer.close();
  const fillMs = performance.now() - t0;
  console.log(
    `\n${BIG_MIB} MiB file: ${statSync(path).size} bytes, ${seconds} s of 64 Mb/s media written in ${(fillMs / 1000).toFixed(1)} s`,
  );

  // Open after a clean stop (the checkpoint is current) and as recovery would (read mode: same scan).
  const opens: number[] = [];
  let scanned = 0;
  for (let i = 0; i < 5; i++) {
    const o0 = performance.now();
    const f = await openFeedFile(path, { mode: 'read' });
    opens.push(performance.now() - o0);
    scanned = f.report.blocksScanned;
    await f.fh.close();
  }
  console.log(`open + find newest block: median ${median(opens).toFixed(2)} ms (${scanned} blocks scanned), page cache warm`);

  const f = await openFeedFile(path, { mode: 'read' });
  const source = new FileBlockSource(f.fh, f.geometry, f.header.fileId, { oldestSeq: f.oldestSeq, newestSeq: f.newest!.seq });
  const range = (await new FeedFileCursor(source).timeRange())!;
  const seeks: number[] = [];
  const reads: number[] = [];
  for (let i = 0; i < 200; i++) {
    const at = range.oldestWallMs + Math.random() * (range.newestWallMs - range.oldestWallMs);
    const cursor = new FeedFileCursor(source);
    const s0 = performance.now();
    const found = await cursor.seek(at);
    await cursor.next(); // the join point's first record
    seeks.push(performance.now() - s0);
    reads.push(cursor.stats.blocksRead);
    if (found.kind !== 'ok') throw new Error(`seek to ${at} gave ${found.kind}`);
  }
  await f.fh.close();
  console.log(
    `seek (binary search + keyframe + first record), 200 random times over ${((range.newestWallMs - range.oldestWallMs) / 1000).toFixed(0)} s: ` +
      `median ${median(seeks).toFixed(2)} ms, max ${Math.max(...seeks).toFixed(2)} ms, median ${median(reads)} block reads`,
  );
  rmSync(path, { force: true });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

const dir = mkdtempSync(join(tmpdir(), 'feedcast-bench-ff-'));
try {
  await writeCost(dir);
  await bigFile(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
