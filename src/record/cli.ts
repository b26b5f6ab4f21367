// `feedcast recordings list URL` (what a running server holds of a feed's past: spans, gaps,
// files) and `feedcast recordings export URL --from T [--to T2] OUT.mp4` (that range as one MP4),
// both through the server's HTTP API, so they obey its StatusACL and read admission.

import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConfigError, FeedcastError, MalformedInputError } from '../errors.js';
import type { RecordingsListing } from './listing.js';
import { answerUsage, type CliIo } from '../feedfile/cli.js';
import { parseTimePoint } from './time-point.js';

const USAGE = `Usage:
  feedcast recordings list http://HOST:8090/FEED
      the spans of time the server holds of FEED (recordings and feed file), the gaps, the files
  feedcast recordings export http://HOST:8090/FEED --from T [--to T2] OUT.mp4
      that range as one MP4 (from the keyframe at or before T). T: ISO 8601
      (2026-12-07T04:00:00Z), a Unix time, or back from now (-30s, -5m, -1h); --to defaults to now.
      Read credentials go in the URL's query (?token=...&expires=... or ?jwt=...).
`;

export type RecordingsCliIo = CliIo;

const stdio: RecordingsCliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** A command line that does not say what to do: exit status 2. */
class UsageError extends ConfigError {
  constructor(detail: string) {
    super('usage', detail);
  }
}

/** The server's base URL, the feed and the query (credentials) of `http://HOST:PORT/FEED?…`. */
function splitFeedUrl(text: string): { base: string; feed: string; query: URLSearchParams } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`"${text}" is not a URL; write http://HOST:8090/FEED`);
  }
  const feed = decodeURIComponent(url.pathname.replace(/^\/+|\/+$/g, ''));
  if (feed === '' || feed.includes('/')) throw new UsageError(`"${text}" does not name one feed; write http://HOST:8090/FEED`);
  return { base: `${url.protocol}//${url.host}`, feed, query: url.searchParams };
}

export async function runRecordingsCommand(args: readonly string[], io: RecordingsCliIo = stdio): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === 'list' && rest.length === 1 && rest[0] !== undefined) return await list(rest[0], io);
    if (command === 'export') return await exportRange(rest, io);
    return answerUsage(io, 'recordings', command, USAGE);
  } catch (err) {
    if (err instanceof FeedcastError) {
      io.err(`feedcast recordings: ${err.message}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
    if (err instanceof TypeError) {
      io.err(`feedcast recordings: the server cannot be reached (${err.message})\n`);
      return 1;
    }
    throw err;
  }
}

async function list(target: string, io: RecordingsCliIo): Promise<number> {
  const { base, feed } = splitFeedUrl(target);
  const res = await fetch(`${base}/api/v1/recordings/${encodeURIComponent(feed)}`);
  if (!res.ok) {
    io.err(`feedcast recordings: ${res.status} ${(await res.text()).trim()}\n`);
    return 1;
  }
  const l = (await res.json()) as RecordingsListing;
  const lines = [`feed ${l.feed}: ${l.spans.length} span(s), ${l.gaps.length} gap(s), ${l.bytes} bytes`];
  for (const s of l.spans)
    lines.push(`  held  ${s.start} .. ${s.end}  ${s.seconds.toFixed(1)} s  ${s.bytes} bytes  (${s.sources.join(', ')})`);
  for (const g of l.gaps) lines.push(`  gap   ${g.start} .. ${g.end}  ${g.seconds.toFixed(1)} s`);
  if (l.recording !== null) {
    const r = l.recording;
    lines.push(
      `recording: ${r.state}${r.lastError !== undefined && r.lastError !== null ? ` (last error: ${r.lastError})` : ''}, ${r.files} file(s)`,
    );
  }
  for (const f of l.files)
    lines.push(`  ${f.writing ? 'writing' : 'file   '} ${f.path}  ${f.start} .. ${f.end}  ${f.bytes} bytes`);
  if (l.ring !== null) lines.push(`feed file ring: ${l.ring.start} .. ${l.ring.end}  ${l.ring.seconds.toFixed(1)} s`);
  io.out(lines.join('\n') + '\n');
  return 0;
}

async function exportRange(args: readonly string[], io: RecordingsCliIo): Promise<number> {
  let from: string | undefined;
  let to: string | undefined;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--from' || a === '--to') {
      const value = args[++i];
      if (value === undefined) throw new UsageError(`${a} needs a time`);
      if (a === '--from') from = value;
      else to = value;
    } else positional.push(a);
  }
  const [target, out] = positional;
  if (target === undefined || out === undefined || positional.length > 2)
    throw new UsageError(`export takes a feed URL and an output file\n\n${USAGE}`);
  if (from === undefined) throw new UsageError('export needs --from T (where the range begins)');
  const now = Date.now();
  // Relative times are resolved here, so the range does not move while the request travels.
  const startMs = parseTimePoint(from, now);
  const endMs = to !== undefined ? parseTimePoint(to, now) : now;
  if (endMs <= startMs) throw new MalformedInputError('time', 0, '--to must come after --from');
  const { base, feed, query } = splitFeedUrl(target);
  query.set('start', (startMs / 1000).toFixed(3));
  query.set('end', (endMs / 1000).toFixed(3));
  const res = await fetch(`${base}/${encodeURIComponent(feed)}.mp4?${query.toString()}`);
  if (!res.ok || res.body === null) {
    io.err(`feedcast recordings: ${res.status} ${(await res.text()).trim()}\n`);
    return 1;
  }
  await pipeline(Readable.fromWeb(res.body), createWriteStream(out));
  io.out(
    `${out}: ${res.headers.get('x-recording-start') ?? '?'} .. ${res.headers.get('x-recording-end') ?? '?'} (${res.headers.get('content-length') ?? '?'} bytes)\n`,
  );
  return 0;
}
