// HTTP publishing: `ffmpeg ... -f mpegts|flv http://host:8090/feed1.ffm` (POST or PUT, chunked
// or with a length), and the FFM2 stream of an ffmpeg <= 3.4 (`ffmpeg ... http://host:8090/feed1.ffm`,
// ffserver-reference.md §3.2). The body's format is recognised from its first bytes and demuxed
// in-process into the feed.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo } from '../../access/connections.js';
import { FeedBusyError, FeedcastError, UnsupportedError } from '../../errors.js';
import type { Feed, PublisherSession } from '../../feed/feed.js';
import { FfmDemuxer } from '../../formats/ffm/ffm-demuxer.js';
import { FlvDemuxer } from '../../formats/flv/flv-demuxer.js';
import { encodeFfmHeader } from '../../formats/ffm/ffm-header.js';
import { TsDemuxer } from '../../formats/mpegts/ts-demuxer.js';
import type { ByteBudget } from '../../media/byte-budget.js';
import type { Demuxer, DemuxerSink } from '../../media/demuxer.js';
import { throttledWarner } from '../../observability/throttled-warn.js';
import type { ProtocolContext } from '../protocol-context.js';
import { ffmHandshakeHeader } from '../../transcode/ffm-handshake.js';
import { sendText } from './respond.js';

/** What the first bytes of a pushed body say it is. */
/** How much of a refused publisher's body is read and dropped before its connection closes. */
const DISCARD_LIMIT_BYTES = 1024 * 1024;
const DISCARD_LIMIT_MS = 2000;

export type IngestFormat = 'mpegts' | 'flv' | 'ffm' | 'unknown';

export function sniffIngestFormat(head: Buffer): IngestFormat | undefined {
  if (head.length === 0) return undefined;
  if (head[0] === 0x47) return 'mpegts';
  if (head.length < 3) {
    const prefixOf = (magic: string): boolean => head.equals(Buffer.from(magic).subarray(0, head.length));
    return prefixOf('FLV') || prefixOf('FFM') ? undefined : 'unknown';
  }
  if (head.subarray(0, 3).toString('latin1') === 'FLV') return 'flv';
  if (head.length < 4) return undefined;
  if (head.subarray(0, 3).toString('latin1') === 'FFM') return 'ffm';
  return 'unknown';
}

function makeDemuxer(format: 'mpegts' | 'flv' | 'ffm', sink: DemuxerSink, pesBudget: ByteBudget | undefined): Demuxer {
  if (format === 'ffm') return new FfmDemuxer(sink);
  return format === 'flv' ? new FlvDemuxer(sink) : new TsDemuxer(sink, pesBudget !== undefined ? { pesBudget } : {});
}

export async function handlePublish(
  ctx: ProtocolContext,
  req: IncomingMessage,
  res: ServerResponse,
  feed: Feed,
  conn: ConnectionInfo,
  /** Shared by every publisher of the server: what their unfinished MPEG-TS PES may hold together. */
  pesBudget?: ByteBudget,
): Promise<void> {
  const remote = conn.remoteAddress;
  const log = ctx.log.child({ feed: feed.key, publisher: remote });
  let session: PublisherSession;
  try {
    // Workers N: another worker's publisher of this feed is refused here too (FeedManager.claimPublisher).
    await ctx.feeds.claimPublisher(feed, 'http');
    // The client left while the primary answered: nothing to attach (the claim goes back unused).
    if (req.destroyed) return;
    session = feed.attachPublisher({ protocol: 'http', remoteAddress: remote, startedAt: new Date() });
  } catch (err) {
    if (err instanceof FeedBusyError) {
      log.warn('second publisher refused', { reason: err.message });
      sendText(
        res,
        409,
        `${err.message}.\nOnly one publisher may send to a feed. If that publisher is gone, retry after ${Math.ceil(
          ctx.config.publisherTimeoutMs / 1000,
        )} s of silence (PublisherTimeout).`,
        { Connection: 'close' },
      );
      req.resume();
      return;
    }
    throw err;
  }
  conn.role = 'publisher';
  conn.state = 'RECEIVE_DATA';
  conn.target = feed.name;
  conn.kick = (reason) => {
    log.info('publisher kicked', { reason });
    session.end(reason);
    req.destroy();
  };

  // A dead network leaves no FIN: the idle timeout ends such a publisher, and PublisherTimeout
  // lets a newcomer take its place before that.
  const idleMs = Math.max(30_000, ctx.config.publisherTimeoutMs * 2);
  req.socket.setTimeout(idleMs, () => {
    log.warn('publisher idle, closing', { idleMs });
    req.destroy();
  });

  const warn = throttledWarner(log);
  const sink: DemuxerSink = {
    onTracks: (tracks) => session.setTracks(tracks),
    onFrame: (frame) => session.write(frame),
    onWarning: warn,
  };
  let demuxer: Demuxer | undefined;
  let head: Buffer = Buffer.alloc(0);
  let failed = false;

  const fail = (status: number, message: string): void => {
    if (failed) return;
    failed = true;
    log.warn('publisher refused', { status, reason: message });
    session.end(message);
    sendText(res, status, message, { Connection: 'close' });
    // Read and drop the rest of the body for a moment, so the client gets the answer before the
    // connection closes (closing with unread input sends a reset that can swallow the answer).
    let discarded = 0;
    req.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > DISCARD_LIMIT_BYTES) req.destroy();
    });
    setTimeout(() => req.destroy(), DISCARD_LIMIT_MS).unref();
  };

  session.on('end', (reason) => {
    if (!failed && !res.headersSent && reason.startsWith('replaced')) {
      req.destroy();
    }
  });

  req.on('data', (received: Buffer) => {
    if (failed || session.isEnded) return;
    let chunk: Buffer = received;
    conn.bytesIn += chunk.length;
    session.touch(chunk.length);
    try {
      if (demuxer === undefined) {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        const format = sniffIngestFormat(head);
        if (format === undefined) return;
        if (format === 'unknown') {
          fail(
            415,
            `The body is neither MPEG-TS nor FLV, nor the FFM of ffmpeg 3.4 or older (first bytes ${head.subarray(0, 8).toString('hex')}). Publish with ffmpeg "-f mpegts" or "-f flv".`,
          );
          return;
        }
        log.info('publishing', { format });
        demuxer = makeDemuxer(format, sink, pesBudget);
        chunk = head;
      }
      demuxer.push(chunk);
    } catch (err) {
      if (err instanceof FeedcastError) {
        fail(err instanceof UnsupportedError ? 415 : 400, `Cannot follow the published stream: ${err.message}`);
        return;
      }
      throw err;
    }
  });

  req.on('end', () => {
    if (failed) return;
    try {
      demuxer?.end();
    } catch (err) {
      if (!(err instanceof FeedcastError)) throw err;
      log.warn('stream ended with an incomplete frame', { err });
    }
    session.end('publisher finished');
    log.info('publisher finished', { bytes: conn.bytesIn, frames: session.framesIn });
    if (!res.headersSent) {
      res.writeHead(204, { Connection: 'close' });
      res.end();
    }
  });

  req.on('close', () => {
    demuxer?.close?.();
    if (!session.isEnded) session.end('connection closed');
  });
}

/**
 * ffmpeg <= 3.4's first connection to `http://host:8090/feed1.ffm` (ffserver-reference.md §3.2): a
 * GET whose answer is an FFM2 header block listing the streams to encode and their settings. A feed
 * that is being published refuses it (409), as ffserver did, so the second publisher learns it
 * before it starts encoding.
 */
export function answerFfmHandshake(ctx: ProtocolContext, req: IncomingMessage, res: ServerResponse, feed: Feed): void {
  const busy = feed.busyReason();
  if (busy !== undefined) {
    sendText(res, 409, `Feed ${feed.key} is busy: ${busy}. Only one publisher may send to a feed.`, { Connection: 'close' });
    return;
  }
  let body: Buffer;
  try {
    body = encodeFfmHeader(ffmHandshakeHeader(ctx.config, feed.key));
  } catch (err) {
    if (!(err instanceof FeedcastError)) throw err;
    sendText(res, 500, `Cannot describe feed ${feed.key} to an FFM publisher: ${err.message}`);
    return;
  }
  ctx.log.info('FFM handshake: stream layout sent', { feed: feed.key, publisher: req.socket.remoteAddress });
  res.writeHead(200, {
    'Content-Type': 'application/x-octet-stream',
    'Content-Length': String(body.length),
    Pragma: 'no-cache',
    Connection: 'close',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
