// HTTP progressive output (HTTP-FLV, MPEG-TS over HTTP): a long response fed by an OutputReader
// that walks the shared muxed chunks of its (stream, format). The body ends when the feed ends.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo } from '../../control/connections.js';
import type { Feed } from '../../feed/feed.js';
import { describeTrack } from '../../media/track.js';
import type { ServerContext } from '../../server-context.js';
import { OutputReader } from '../../streams/output-reader.js';
import { canCarryAny, type OutputVariant, type PassthroughFormat } from '../../streams/output-registry.js';
import { sendText } from './respond.js';

export interface ReadRequest {
  feed: Feed;
  format: PassthroughFormat;
  variant: OutputVariant;
  /** The URL name the reader asked for, for logs and the status page. */
  name: string;
  /** Stop after this long (ffserver's MaxTime); 0 = no limit. */
  maxTimeSeconds: number;
  /** kbit/s this reader counts against MaxBandwidth. */
  bandwidthKbps: number;
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
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  read: ReadRequest,
  conn: ConnectionInfo,
): Promise<void> {
  const { feed, format } = read;
  conn.role = 'reader';
  conn.target = read.name;

  const maxKbps = ctx.config.maxBandwidthKbps;
  if (ctx.bandwidthInUseKbps + read.bandwidthKbps > maxKbps) {
    sendText(
      res,
      503,
      `Server too busy: serving this stream would bring the bandwidth in use to ${Math.ceil(ctx.bandwidthInUseKbps + read.bandwidthKbps)} kbit/s, over the limit of ${maxKbps} kbit/s (MaxBandwidth).`,
      { 'Retry-After': '10' },
    );
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

  const output = ctx.outputs.get(feed, format, read.variant);
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
  ctx.bandwidthInUseKbps += read.bandwidthKbps;
  let served = ctx.counters.served.get(read.name);
  if (served === undefined) {
    served = { conns: 0, bytes: 0 };
    ctx.counters.served.set(read.name, served);
  }
  served.conns++;
  const servedEntry = served;

  const reader = new OutputReader(output, res, {
    maxQueueBytes: ctx.config.readerMaxQueueBytes,
    maxLagMs: ctx.config.readerMaxLagMs,
  });
  const log = ctx.log.child({ reader: conn.remoteAddress, stream: read.name });
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
    ctx.bandwidthInUseKbps -= read.bandwidthKbps;
    conn.bytesOut = reader.stats.bytesSent;
    servedEntry.bytes += reader.stats.bytesSent;
    conn.state = 'SEND_DATA_TRAILER';
    if (error !== undefined) {
      log.warn('reader closed', { reason, err: error, dropped: reader.stats.chunksDropped });
      res.destroy();
    } else {
      log.debug('reader ended', { reason });
      res.end();
    }
  });
  res.on('close', () => reader.close('client left'));
  conn.kick = (reason) => reader.close(reason, new Error(reason));
  conn.targetKbps = read.bandwidthKbps;
  if (read.maxTimeSeconds > 0) {
    maxTimer = setTimeout(() => reader.close('MaxTime reached'), read.maxTimeSeconds * 1000);
  }
  reader.start();
}
