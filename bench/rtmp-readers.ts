// RTMP play load generator: N players on raw sockets (handshake, connect, createStream, play), each
// counting the bytes it receives. Prints one JSON report on stdout (progress on stderr).
//
//   npx tsx bench/rtmp-readers.ts rtmp://127.0.0.1:PORT/APP/NAME N SECONDS
//
// Per player: kbit/s over the measuring window (after every player has started), and the time to
// its first video message (socket connect -> first video message received). Reported as p50/min
// (bitrate) and p50/p95 (time to first video). Every player closes when the window ends.

import { performance } from 'node:perf_hooks';
import { RtmpType } from '../src/formats/rtmp/messages.js';
import { RtmpTestClient, statusCode } from '../test/helpers/rtmp-client.js';

const USAGE = 'usage: rtmp-readers.ts rtmp://HOST:PORT/APP/NAME N SECONDS';

interface Player {
  client: RtmpTestClient | undefined;
  startedAt: number;
  firstVideoMs: number | undefined;
  bytes: number;
  failed: string | undefined;
}

function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function startPlayer(url: URL, app: string, name: string, player: Player): Promise<void> {
  player.startedAt = performance.now();
  const client = await RtmpTestClient.open(url.hostname, Number(url.port || 1935), {
    onMessage: (m) => {
      if (m.typeId === RtmpType.video && player.firstVideoMs === undefined)
        player.firstVideoMs = performance.now() - player.startedAt;
    },
  });
  player.client = client;
  await client.connect(app, `rtmp://${url.host}/${app}`);
  const status = await client.play(name);
  if (statusCode(status) !== 'NetStream.Play.Reset' && statusCode(status) !== 'NetStream.Play.Start') {
    throw new Error(`play refused: ${statusCode(status)}`);
  }
}

async function main(): Promise<void> {
  const [u, n, s] = process.argv.slice(2);
  if (u === undefined || n === undefined || s === undefined) throw new Error(USAGE);
  const url = new URL(u);
  if (url.protocol !== 'rtmp:') throw new Error(`only rtmp:// URLs, got ${u}`);
  const [app, ...rest] = url.pathname.replace(/^\//, '').split('/');
  const name = rest.join('/') + url.search;
  if (app === undefined || name === '') throw new Error(`URL needs /APP/NAME: ${u}`);
  const count = Math.round(Number(n));
  const seconds = Number(s);
  if (!(count >= 1 && count <= 5000) || !(seconds >= 1 && seconds <= 600))
    throw new Error(`N in 1..5000, SECONDS in 1..600\n${USAGE}`);

  const players: Player[] = Array.from({ length: count }, () => ({
    client: undefined,
    startedAt: 0,
    firstVideoMs: undefined,
    bytes: 0,
    failed: undefined,
  }));
  process.stderr.write(`starting ${count} RTMP players of ${u}\n`);
  // Start in batches of 50 so the handshakes do not all land in one tick.
  for (let i = 0; i < count; i += 50) {
    await Promise.all(
      players.slice(i, i + 50).map((p) =>
        startPlayer(url, app, name, p).catch((err: unknown) => {
          p.failed = err instanceof Error ? err.message : String(err);
        }),
      ),
    );
  }
  // Settle 2 s, then measure.
  await new Promise((r) => setTimeout(r, 2000));
  const startBytes = players.map((p) => p.client?.bytesIn ?? 0);
  const t0 = performance.now();
  process.stderr.write(`measuring ${seconds} s\n`);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  players.forEach((p, i) => (p.bytes = (p.client?.bytesIn ?? 0) - (startBytes[i] ?? 0)));
  for (const p of players) {
    if (p.client?.error !== undefined) p.failed ??= p.client.error.message;
    p.client?.close();
  }

  const ok = players.filter((p) => p.failed === undefined);
  const kbps = ok.map((p) => (p.bytes * 8) / 1000 / elapsed).sort((a, b) => a - b);
  const ttfv = ok.flatMap((p) => (p.firstVideoMs === undefined ? [] : [p.firstVideoMs])).sort((a, b) => a - b);
  const round = (v: number | undefined): number | null => (v === undefined ? null : Math.round(v * 10) / 10);
  const report = {
    url: u,
    players: count,
    failed: players.length - ok.length,
    failures: [...new Set(players.flatMap((p) => (p.failed === undefined ? [] : [p.failed])))].slice(0, 5),
    windowSeconds: Math.round(elapsed * 100) / 100,
    bitrateKbps: { p50: round(percentile(kbps, 50)), min: round(kbps[0]) },
    timeToFirstVideoMs: {
      p50: round(percentile(ttfv, 50)),
      p95: round(percentile(ttfv, 95)),
      withoutVideo: ok.length - ttfv.length,
    },
    totalMbps: Math.round(kbps.reduce((a, b) => a + b, 0) / 10) / 100,
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
