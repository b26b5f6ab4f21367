// Time-range playback over HTTP: `/FEED.mp4?start=T&end=T2` is a progressive MP4 (moov first,
// seekable, byte ranges served) made from the feed's fMP4 recordings (src/record) or, when they
// hold none of the range, its TS recordings or its FeedFile ring (record/frames-mp4.ts).
// Readers are admitted like every other (admitHttp: policy, MaxReaders, bandwidth).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { open } from 'node:fs/promises';
import type { ConnectionInfo } from '../../access/connections.js';
import { LimitExceededError, MalformedInputError } from '../../errors.js';
import type { Feed } from '../../feed/feed.js';
import type { FeedFiles } from '../../feedfile/feed-files.js';
import { framesMp4, type Mp4Download } from '../../record/frames-mp4.js';
import { filesOver, RecordedRangeSource } from '../../record/recorded-source.js';
import { RingRangeReader } from '../../record/ring-range.js';
import { isoTime } from '../../feedfile/time-spec.js';
import { planMp4Range, type RangePlan } from '../../record/range-mp4.js';
import { parseTimePoint } from '../../record/time-point.js';
import type { Admission, Access, ReadTarget } from '../../access/access.js';
import type { FeedRecordings, Recordings } from '../../record/recordings.js';
import { sendText } from './respond.js';
import type { HttpRoute } from './route.js';

/** Longest range one request may ask for: a day. */
const MAX_RANGE_MS = 24 * 3600 * 1000;
const READ_BYTES = 1024 * 1024;

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range) within `total`; undefined: the whole body; 'bad': 416. */
export function parseByteRange(header: string | undefined, total: number): { from: number; to: number } | 'bad' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === '' && m[2] === '')) return header.includes(',') ? undefined : 'bad';
  if (m[1] === '') {
    const n = Number(m[2]);
    return n === 0 ? 'bad' : { from: Math.max(0, total - n), to: total - 1 };
  }
  const from = Number(m[1]);
  const to = m[2] === '' ? total - 1 : Math.min(Number(m[2]), total - 1);
  return from > to || from >= total ? 'bad' : { from, to };
}

/** The bytes [from, to] of a plan: the header, then the pieces read from their files. */
async function* bytesOf(plan: RangePlan, from: number, to: number): AsyncGenerator<Buffer> {
  let at = 0;
  const header = plan.header;
  if (from < header.length) yield header.subarray(from, Math.min(header.length, to + 1));
  at = header.length;
  for (const piece of plan.pieces) {
    const start = Math.max(from, at);
    const end = Math.min(to + 1, at + piece.length);
    if (start < end) {
      const fh = await open(piece.path, 'r');
      try {
        for (let pos = start; pos < end;) {
          const n = Math.min(READ_BYTES, end - pos);
          const buf = Buffer.allocUnsafe(n);
          const { bytesRead } = await fh.read(buf, 0, n, piece.position + (pos - at));
          if (bytesRead === 0) throw new Error(`record: ${piece.path} ended early (deleted or cut while read)`);
          yield buf.subarray(0, bytesRead);
          pos += bytesRead;
        }
      } finally {
        await fh.close();
      }
    }
    at += piece.length;
    if (at > to) return;
  }
}

/** What the route needs of the server: names, recordings, and HTTP's admission (read-gate.ts admitHttp). */
export interface RecordingRouteDeps {
  readonly access: Access;
  readonly recordings: Recordings;
  readonly feedFiles: FeedFiles;
  admit(
    req: IncomingMessage,
    res: ServerResponse,
    conn: ConnectionInfo,
    target: ReadTarget,
    url: URL,
    serve: (admission: Admission) => Promise<void>,
  ): void;
}

export class RecordingRoute implements HttpRoute {
  private readonly deps: RecordingRouteDeps;

  constructor(deps: RecordingRouteDeps) {
    this.deps = deps;
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL, conn: ConnectionInfo): boolean {
    const m = /^(.+)\.mp4$/i.exec(path);
    if (m === null || (!url.searchParams.has('start') && !url.searchParams.has('end'))) return false;
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      sendText(res, 405, 'A recording is read with GET or HEAD.', { Allow: 'GET, HEAD' });
      return true;
    }
    const name = m[1] ?? '';
    const target = this.deps.access.resolve(name);
    const feed = target?.feed;
    if (target === undefined || feed === undefined) {
      sendText(res, 404, `No feed named "${name.slice(0, 100)}".`);
      return true;
    }
    const recordings = this.deps.recordings.of(feed.key);
    if (recordings === undefined && this.deps.feedFiles.of(feed) === undefined) {
      sendText(
        res,
        404,
        `${feed.key} keeps no past: add Record on (docs/recording.md) or a File (docs/feed-file.md) to its <Feed>.`,
      );
      return true;
    }
    let startMs: number;
    let endMs: number;
    try {
      const now = Date.now();
      const start = url.searchParams.get('start');
      const end = url.searchParams.get('end');
      if (start === null)
        throw new MalformedInputError('time', 0, 'start= is missing: say where the range begins (e.g. start=-10m)');
      startMs = parseTimePoint(start, now);
      endMs = end === null ? now : parseTimePoint(end, now);
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
      sendText(res, 400, err.message);
      return true;
    }
    if (endMs <= startMs) {
      sendText(res, 400, `end (${isoTime(endMs)}) must come after start (${isoTime(startMs)}).`);
      return true;
    }
    if (endMs - startMs > MAX_RANGE_MS) {
      sendText(res, 400, `A range may span at most 24 h; ${isoTime(startMs)} to ${isoTime(endMs)} is longer.`);
      return true;
    }
    this.deps.admit(req, res, conn, target, url, async () => {
      let download: Mp4Download | undefined;
      try {
        download = await this.download(feed, recordings, startMs, endMs);
      } catch (err) {
        if (!(err instanceof LimitExceededError)) throw err;
        sendText(res, 413, `${feed.key}: ${err.message}.`);
        return;
      }
      if (download === undefined) {
        sendText(
          res,
          404,
          `Nothing of ${feed.key} is held between ${isoTime(startMs)} and ${isoTime(endMs)}; GET /api/v1/recordings/${feed.key} lists what is.`,
        );
        return;
      }
      await this.send(req, res, download, `${feed.key}-${isoTime(download.startWallMs).replace(/[:.]/g, '-')}.mp4`);
    });
    return true;
  }

  /**
   * The MP4 of [startMs, endMs): from the fMP4 recordings (their samples, by file ranges), else from
   * the TS recordings, else from the FeedFile ring (frames read again at each request).
   */
  private async download(
    feed: Feed,
    recordings: FeedRecordings | undefined,
    startMs: number,
    endMs: number,
  ): Promise<Mp4Download | undefined> {
    if (recordings !== undefined) {
      const plan = await planMp4Range(recordings.entries, startMs, endMs);
      if (plan !== undefined) return { ...plan, bytes: (from, to) => bytesOf(plan, from, to) };
      const ts = filesOver(recordings.entries, startMs, endMs).filter((e) => e.format === 'ts');
      if (ts.length > 0) {
        const fromTs = await framesMp4(async () => {
          const o = await RecordedRangeSource.open({ entries: ts, tsIndexes: recordings.tsIndexes }, startMs, {
            endWallMs: endMs,
          });
          return o.kind === 'ok' ? { reader: o.source, startWallMs: o.startWallMs } : undefined;
        });
        if (fromTs !== undefined) return fromTs;
      }
    }
    const ring = this.deps.feedFiles.of(feed);
    if (ring === undefined) return undefined;
    const untilMs = Math.min(endMs, Date.now());
    return framesMp4(async () => {
      const o = await RingRangeReader.open(ring, startMs, untilMs);
      return o.kind === 'ok' ? { reader: o.reader, startWallMs: o.startWallMs } : undefined;
    });
  }

  private async send(req: IncomingMessage, res: ServerResponse, plan: Mp4Download, filename: string): Promise<void> {
    const total = plan.totalBytes;
    const range = parseByteRange(req.headers.range, total);
    const headers: Record<string, string> = {
      'Content-Type': 'video/mp4',
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-cache',
      'Content-Disposition': `inline; filename="${filename}"`,
      'X-Recording-Start': isoTime(plan.startWallMs),
      'X-Recording-End': isoTime(plan.endWallMs),
    };
    if (range === 'bad') {
      sendText(res, 416, `The byte range ${String(req.headers.range)} is outside the ${total} bytes of this recording.`, {
        'Content-Range': `bytes */${total}`,
      });
      return;
    }
    const from = range?.from ?? 0;
    const to = range?.to ?? total - 1;
    res.writeHead(range !== undefined ? 206 : 200, {
      ...headers,
      'Content-Length': String(to - from + 1),
      ...(range !== undefined ? { 'Content-Range': `bytes ${from}-${to}/${total}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    try {
      for await (const chunk of plan.bytes(from, to)) {
        if (res.destroyed) return;
        if (!res.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.on('drain', done);
            res.on('close', done);
          });
        }
      }
    } catch {
      // The stored media changed under the download (ring overwritten, file deleted): the body is
      // cut short rather than completed with other bytes; the client sees an incomplete response.
      res.destroy();
      return;
    }
    res.end();
  }
}
