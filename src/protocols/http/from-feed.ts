// HTTP progressive output (HTTP-FLV, MPEG-TS over HTTP): a long response fed by an OutputReader
// that walks the shared muxed chunks of its (stream, format). The body ends when the feed ends.
// Readers are admitted (access/admit: slot, bandwidth, expiry) before they get here.
// A reader asking for the past (`?date=`, `?start=-30`, `?buffer=N`, Preroll) of a feed with a
// File gets its own TimeShiftOutput instead (the file, then live), read by an OutputReader with the
// same policy (docs/feed-file.md, "Time-shift"). A time the ring no longer holds (or a feed with
// recordings and no File) is read from the recordings instead (record/recorded-source.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo } from '../../access/connections.js';
import type { Feed } from '../../feed/feed.js';
import { FeedcastError } from '../../errors.js';
import { isoTime, parseStartRequest, type StartRequest } from '../../feedfile/time-spec.js';
import { TimeShiftSource, type ShiftSource } from '../../feedfile/time-shift.js';
import type { FeedFileWriter } from '../../feedfile/writer.js';
import { describeTrack } from '../../media/track.js';
import type { ProtocolContext } from '../protocol-context.js';
import { OutputReader } from '../../streams/output-reader.js';
import { canCarryAny, variantFilter, type OutputVariant, type PassthroughFormat } from '../../streams/output-registry.js';
import { TimeShiftOutput, timeShiftAheadBytes } from '../../streams/time-shift-output.js';
import { sendText } from './respond.js';
import { findByName } from '../../config/names.js';
import { parseTimePoint } from '../../record/time-point.js';
import { RecordedRangeSource } from '../../record/recorded-source.js';
import type { FeedRecordings } from '../../record/recordings.js';

/** `?end=T`: where a time-shifted read stops (wall-clock ms since the epoch). */
interface RangeEnd {
  wallMs: number;
  asked: string;
}

export interface ReadRequest {
  feed: Feed;
  format: PassthroughFormat;
  variant: OutputVariant;
  /** The URL name the reader asked for, for logs and the status page. */
  name: string;
  /** Stop after this long (ffserver's MaxTime); 0 = no limit. */
  maxTimeSeconds: number;
  /** Another node of the cluster relays the feed (RELAY_HEADER): MPEG-TS with each PES end marked. */
  relay?: boolean;
}

/** Waits until the feed has tracks (a publisher has sent its first frames), or gives up. */
function waitForTracks(feed: Feed, timeoutMs: number, req: IncomingMessage): Promise<boolean> {
  if (feed.tracks.length > 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      off();
      req.off('close', onClose);
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    const off = feed.on('tracks', () => done(true));
    const onClose = (): void => done(false);
    req.on('close', onClose);
  });
}

export async function handleRead(
  ctx: ProtocolContext,
  req: IncomingMessage,
  res: ServerResponse,
  read: ReadRequest,
  conn: ConnectionInfo,
): Promise<void> {
  const { feed, format } = read;
  conn.role = 'reader';
  conn.target = read.name;

  const preroll = findByName(ctx.config.streams, read.name)?.prerollSeconds ?? 0;
  // With a feed file Preroll is a time-shift (below); without one, a start in the output's memory.
  const prerollSeconds = ctx.feedFiles.of(feed) === undefined ? preroll : 0;
  let start: StartRequest;
  let end: RangeEnd | undefined;
  try {
    const query = new URL(req.url ?? '/', 'http://feedcast.invalid').searchParams;
    start = parseStartRequest(query, ctx.feedFiles.of(feed) !== undefined ? preroll : 0);
    const endText = query.get('end');
    if (endText !== null) end = { wallMs: parseTimePoint(endText), asked: `end=${endText.slice(0, 64)}` };
  } catch (err) {
    if (!(err instanceof FeedcastError)) throw err;
    sendText(res, 400, `${read.name}: ${err.message}`);
    return;
  }
  if (end !== undefined && start.kind !== 'at') {
    sendText(
      res,
      400,
      `${read.name}: ${end.asked} needs a start in the past (start=-N, start=T or date=T); a live read has no end.`,
    );
    return;
  }
  if (end !== undefined && start.kind === 'at' && end.wallMs <= start.wallMs) {
    sendText(
      res,
      400,
      `${read.name}: ${end.asked} (${isoTime(end.wallMs)}) must come after ${start.asked} (${isoTime(start.wallMs)}).`,
    );
    return;
  }
  if (start.kind === 'at') {
    const file = ctx.feedFiles.of(feed);
    const recordings = ctx.recordings.of(feed.key);
    if (file === undefined && recordings === undefined) {
      sendText(
        res,
        404,
        `Feed ${feed.key} keeps no feed file (File in its <Feed> section) and no recordings (Record on), so it cannot start in the past (${start.asked}). Without a time, /${read.name} starts live.`,
      );
      return;
    }
    await handleShiftedRead(ctx, req, res, read, conn, { file, recordings }, start, end);
    return;
  }

  if (feed.tracks.length === 0) {
    conn.state = 'WAIT_FEED';
    const waitMs = ctx.config.publisherGraceMs;
    const ok = await waitForTracks(feed, waitMs, req);
    if (req.destroyed || res.destroyed) return;
    if (!ok) {
      sendText(res, 404, `Feed ${feed.key} has no publisher: nothing was published to it within ${Math.round(waitMs / 1000)} s.`);
      return;
    }
  }

  if (!canCarryAny(format, feed.tracks)) {
    const carried = feed.tracks.map(describeTrack).join(', ');
    sendText(
      res,
      406,
      `${read.name}: ${format.toUpperCase()} cannot carry this feed's tracks (${carried}). Read /${feed.key}.ts (MPEG-TS) instead.`,
    );
    return;
  }

  const output = ctx.outputs.get(feed, read.relay === true && format === 'mpegts' ? 'mpegts-relay' : format, read.variant);
  res.removeHeader('Transfer-Encoding');
  res.removeHeader('Content-Length');
  // No length and no chunked encoding: the body runs until the stream ends (ffserver's way).
  res.writeHead(200, {
    'Content-Type': output.contentType ?? 'application/octet-stream',
    'Cache-Control': 'no-cache, no-store',
    Pragma: 'no-cache',
    'Access-Control-Allow-Origin': '*',
    Connection: 'close',
  });
  if (req.method === 'HEAD') {
    res.end();
    if (output.readers === 0) output.dispose();
    return;
  }
  res.flushHeaders();
  conn.state = 'SEND_DATA';
  // Another node starts relaying this feed (docs/cluster.md): the origin's side of that node's cold start.
  if (read.relay === true) ctx.log.info('relay: serving a node', { feed: feed.key, to: conn.remoteAddress });
  let served = ctx.counters.served.get(read.name);
  if (served === undefined) {
    served = { conns: 0, bytes: 0 };
    ctx.counters.served.set(read.name, served);
  }
  served.conns++;
  const servedEntry = served;

  // The head is on the socket now (flushHeaders), and the body has no framing (no chunked
  // encoding, no length): with write coalescing on, the body goes straight to the socket, which
  // skips ServerResponse's per-write work. res.socket is null only while an earlier pipelined
  // response on the connection is still going: then the reader writes through `res`.
  const coalesceMs = ctx.outputs.writeCoalesceMs;
  const sink = coalesceMs !== undefined && res.socket !== null ? res.socket : res;
  const reader = new OutputReader(output, sink, {
    maxQueueBytes: ctx.config.readerMaxQueueBytes,
    maxLagMs: ctx.config.readerMaxLagMs,
    // Once the headers are out, nothing but this reader writes to the socket: an egress thread may send.
    ...(sink === res || coalesceMs === undefined ? {} : { coalesceMs, egress: ctx.outputs.egress }),
  });
  // Made when the reader ends, not per reader up front: a child logger is ~0.5 KB of closures.
  const log = () => ctx.log.child({ reader: conn.remoteAddress, stream: read.name });
  let maxTimer: NodeJS.Timeout | undefined;
  let lastBytes = 0;
  const stats = setInterval(() => {
    conn.counters['actualKbps'] = ((reader.stats.bytesSent - lastBytes) * 8) / 1000;
    lastBytes = reader.stats.bytesSent;
    conn.bytesOut = reader.stats.bytesSent;
    conn.counters['chunksDropped'] = reader.stats.chunksDropped;
    conn.counters['skips'] = reader.stats.skips;
  }, 1000);
  stats.unref();

  reader.on('end', (reason, error) => {
    clearInterval(stats);
    if (maxTimer !== undefined) clearTimeout(maxTimer);
    conn.bytesOut = reader.stats.bytesSent;
    servedEntry.bytes += reader.stats.bytesSent;
    conn.state = 'SEND_DATA_TRAILER';
    if (error !== undefined) {
      log().warn('reader closed', { reason, err: error, dropped: reader.stats.chunksDropped });
      res.destroy();
    } else {
      log().debug('reader ended', { reason });
      res.end();
    }
  });
  res.on('close', () => reader.close('client left'));
  conn.kick = (reason) => reader.close(reason, new Error(reason));
  if (read.maxTimeSeconds > 0) {
    maxTimer = setTimeout(() => reader.close('MaxTime reached'), read.maxTimeSeconds * 1000);
  }
  // Preroll of a stream whose feed keeps no file: from what the shared output has kept. ffmpeg's
  // tools get a backlog of MPEG-TS (lavfTsBacklogSeconds).
  const backlogSeconds = prerollSeconds > 0 ? prerollSeconds : lavfTsBacklogSeconds(format, req);
  reader.start(backlogSeconds > 0 ? output.prerollJoinSeq(backlogSeconds) : undefined);
}

/**
 * ffmpeg's tools (ffmpeg, ffprobe, ffplay; User-Agent `Lavf/...`) read 5 s of media of an MPEG-TS
 * input (analyzeduration) before they hand out its first frame, whatever the stream holds: they
 * set the mpegts demuxer's scan_all_pmts, so it never declares its header complete and
 * avformat_find_stream_info reads on to its time limit. Started that far back, they find those
 * seconds at once instead of waiting for them live; the delay to live is the same, since they
 * would have buffered them anyway (docs/performance.md, "Time to the first frame").
 */
export const LAVF_TS_BACKLOG_SECONDS = 5.5;

function lavfTsBacklogSeconds(format: PassthroughFormat, req: IncomingMessage): number {
  const agent = req.headers['user-agent'] ?? '';
  return format === 'mpegts' && agent.startsWith('Lavf/') ? LAVF_TS_BACKLOG_SECONDS : 0;
}

/**
 * A time-shifted reader: its own TimeShiftOutput (the feed file, then live, muxed by the
 * registry's factory of its format) walked by an OutputReader, as a live reader walks a shared
 * output. A time the file does not hold gets 416 with the range it does hold.
 */
async function handleShiftedRead(
  ctx: ProtocolContext,
  req: IncomingMessage,
  res: ServerResponse,
  read: ReadRequest,
  conn: ConnectionInfo,
  past: { file: FeedFileWriter | undefined; recordings: FeedRecordings | undefined },
  start: Extract<StartRequest, { kind: 'at' }>,
  end: RangeEnd | undefined,
): Promise<void> {
  const { feed } = read;
  const log = ctx.log.child({ reader: conn.remoteAddress, stream: read.name, timeShift: start.asked });
  const nowMs = Date.now();
  if (start.wallMs > nowMs + 1000) {
    sendText(
      res,
      416,
      `${read.name}: ${start.asked} is ${isoTime(start.wallMs)}, in the future; the live edge is now (${isoTime(nowMs)}).`,
    );
    return;
  }
  const opened =
    past.file !== undefined
      ? await TimeShiftSource.open(past.file, feed, start.wallMs, {
          maxQueueBytes: ctx.config.readerMaxQueueBytes,
          maxLagMs: ctx.config.readerMaxLagMs,
          ...(end !== undefined ? { endWallMs: end.wallMs } : {}),
        })
      : undefined;
  // Older than the ring (or no ring): the recordings, up to the end asked for or now.
  const recorded =
    past.recordings !== undefined && (opened === undefined || opened.kind !== 'ok')
      ? await RecordedRangeSource.open(past.recordings, start.wallMs, { endWallMs: end?.wallMs ?? nowMs })
      : undefined;
  const chosen: { source: ShiftSource; startWallMs: number } | undefined =
    opened?.kind === 'ok' ? opened : recorded?.kind === 'ok' ? recorded : undefined;
  if (req.destroyed || res.destroyed) {
    chosen?.source.close();
    return;
  }
  if (chosen === undefined) {
    if (opened?.kind === 'out-of-range') {
      const r = opened.range;
      const also = past.recordings !== undefined ? ', and its recordings hold nothing of it' : '';
      sendText(
        res,
        416,
        `${read.name}: ${start.asked} (${isoTime(start.wallMs)}) is outside what the feed file of ${feed.key} holds: ` +
          `from ${isoTime(r.oldestWallMs)} to ${isoTime(r.newestWallMs)} (${Math.round((r.newestWallMs - r.oldestWallMs) / 1000)} s)${also}.`,
        { 'X-Feedcast-Available': `${isoTime(r.oldestWallMs)}/${isoTime(r.newestWallMs)}` },
      );
      return;
    }
    const what =
      past.file !== undefined
        ? `the feed file of ${feed.key} holds nothing yet`
        : `the recordings of ${feed.key} hold nothing of it`;
    sendText(
      res,
      416,
      `${read.name}: ${what}, so ${start.asked} cannot be served; GET /api/v1/recordings/${feed.key} lists what is held.`,
    );
    return;
  }
  const source = chosen.source;
  const startWallMs = chosen.startWallMs;
  // The first item of a join point is its track list: it decides the muxer.
  const first = await source.next();
  if (first === undefined || first.kind !== 'tracks' || req.destroyed || res.destroyed) {
    source.close();
    if (!res.headersSent && !res.destroyed)
      sendText(res, 503, `${read.name}: the feed file could not be read at ${start.asked}; try again.`);
    return;
  }
  const filter = variantFilter(read.variant);
  if (!canCarryAny(read.format, first.tracks.filter(filter))) {
    source.close();
    const carried = first.tracks.map(describeTrack).join(', ');
    sendText(
      res,
      406,
      `${read.name}: ${read.format.toUpperCase()} cannot carry this feed's tracks (${carried}). Read /${feed.key}.ts instead.`,
    );
    return;
  }
  const output = new TimeShiftOutput(
    `${feed.key}.${read.format}@${isoTime(startWallMs)}`,
    source,
    first.tracks,
    ctx.outputs.muxerFactory(feed, read.format, read.variant),
    { settings: ctx.outputs.settings, trackFilter: filter, aheadBytes: timeShiftAheadBytes(ctx.config.readerMaxQueueBytes) },
    ctx.log,
  );
  // Without an end the body runs until the connection closes (ffserver's way); with one it is
  // chunked, so its end is the last chunk.
  if (end === undefined) res.removeHeader('Transfer-Encoding');
  res.removeHeader('Content-Length');
  res.writeHead(200, {
    'Content-Type': output.contentType,
    'Cache-Control': 'no-cache, no-store',
    Pragma: 'no-cache',
    'Access-Control-Allow-Origin': '*',
    Connection: 'close',
    'X-Feedcast-Start': isoTime(startWallMs),
    ...(end !== undefined ? { 'X-Feedcast-End': isoTime(end.wallMs) } : {}),
  });
  if (req.method === 'HEAD') {
    output.close('HEAD');
    res.end();
    return;
  }
  conn.state = 'SEND_DATA';
  log.info('time-shift reader', {
    from: isoTime(startWallMs),
    asked: isoTime(start.wallMs),
    source: recorded?.kind === 'ok' && source === recorded.source ? 'recordings' : 'feed file',
  });

  const reader = new OutputReader(output, res, {
    maxQueueBytes: ctx.config.readerMaxQueueBytes,
    maxLagMs: ctx.config.readerMaxLagMs,
  });
  const stats = setInterval(() => {
    conn.bytesOut = reader.stats.bytesSent;
    conn.counters['chunksDropped'] = reader.stats.chunksDropped;
    conn.counters['skips'] = reader.stats.skips;
  }, 1000);
  stats.unref();
  const maxTimer =
    read.maxTimeSeconds > 0 ? setTimeout(() => reader.close('MaxTime reached'), read.maxTimeSeconds * 1000) : undefined;
  reader.on('end', (reason, readerError) => {
    clearInterval(stats);
    if (maxTimer !== undefined) clearTimeout(maxTimer);
    output.close(reason);
    conn.state = 'SEND_DATA_TRAILER';
    conn.bytesOut = reader.stats.bytesSent;
    conn.counters['chunksDropped'] = reader.stats.chunksDropped;
    conn.counters['skips'] = reader.stats.skips;
    conn.counters['fileFrames'] = output.stats.fileFrames;
    conn.counters['liveFrames'] = output.stats.liveFrames;
    const error = readerError ?? output.failure;
    if (error !== undefined) {
      log.warn('reader closed', { reason, err: error, dropped: reader.stats.chunksDropped });
      res.destroy();
    } else if (!res.destroyed) {
      res.end();
    }
  });
  res.on('close', () => reader.close('client left'));
  conn.kick = (reason) => reader.close(reason, new Error(reason));
  reader.start();
  output.start();
}
