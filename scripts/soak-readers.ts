// The churning readers of the hostile soak (issue 25), in a process of their own: N readers of one
// URL, each from its own loopback address, that connect, read 5-15 s and reconnect until told to stop
// (stdin closes or SIGTERM). Apart from the attack clients, their timing is not delayed by the work
// of building hostile bytes. Writes JSON lines on stdout: {gap: {from, to}} for each gap between data
// over 1 s, {stall: {from, to, cause}} for each stall of this process's own event loop over 200 ms,
// and {summary: {...}} at the end.
//
//   tsx scripts/soak-readers.ts URL COUNT

import { request, type IncomingMessage } from 'node:http';
import { stallCause, watchLoopStalls } from '../src/observability/loop-stall.js';

const [url, countText] = process.argv.slice(2);
if (url === undefined) {
  console.error('usage: tsx scripts/soak-readers.ts URL COUNT');
  process.exit(2);
}
const COUNT = Number(countText ?? '200');
const GAP_MS = 1000;
const STALL_LOG_MS = 200;

let stopping = false;
const summary = { readers: COUNT, sessions: 0, maxGapMs: 0, gapsOver1s: 0, failed: 0 };
const out = (record: unknown): void => {
  process.stdout.write(JSON.stringify(record) + '\n');
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One visit: reads for `seconds`; reports each gap between data after the first byte. False when it got no data. */
function churningRead(from: string, seconds: number): Promise<boolean> {
  return new Promise((resolve) => {
    let last: number | undefined;
    let got = false;
    const req = request(url as string, { localAddress: from }, (res: IncomingMessage) => {
      res.on('data', () => {
        const now = Date.now();
        if (last !== undefined) {
          const gapMs = now - last;
          summary.maxGapMs = Math.max(summary.maxGapMs, gapMs);
          if (gapMs > GAP_MS) {
            summary.gapsOver1s++;
            out({ gap: { from: last, to: now } });
          }
        }
        last = now;
        got = true;
      });
      res.on('end', () => resolve(got));
      res.on('error', () => resolve(got));
    });
    req.on('error', () => resolve(got));
    req.end();
    const timer = setTimeout(() => {
      req.destroy();
      resolve(got);
    }, seconds * 1000);
    req.on('close', () => clearTimeout(timer));
  });
}

const stopWatch = watchLoopStalls(STALL_LOG_MS, (st) => {
  const to = Date.now();
  out({ stall: { from: to - st.wallMs, to, cause: stallCause(st) } });
});
const stop = (): void => {
  stopping = true;
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);

const readers = Array.from({ length: COUNT }, async (_, i) => {
  const from = `127.0.1.${(i % 250) + 1}`;
  await sleep(Math.random() * 5000);
  while (!stopping) {
    summary.sessions++;
    if (!(await churningRead(from, 5 + Math.random() * 10))) summary.failed++;
    await sleep(500);
  }
});
void Promise.all(readers).then(() => {
  stopWatch();
  out({ summary });
  process.exit(0);
});
