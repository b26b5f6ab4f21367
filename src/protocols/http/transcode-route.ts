// HTTP route for streams with their own encoding (declared <Stream>s that need ffmpeg or a
// published variant), reads of Launch/Source feeds (started on demand), and the publish
// handshake: `GET /feed1.ffm?config` and `GET /api/v1/feeds/feed1/encodings` (JSON).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StreamConfig } from '../../config/config.js';
import type { ConnectionInfo } from '../../access/connections.js';
import type { Feed } from '../../feed/feed.js';
import { feedKeyOf } from '../../feed/feed-manager.js';
import { handleRead } from './from-feed.js';
import { admitHttp } from './read-gate.js';
import { sendText } from './respond.js';
import type { HttpRoute } from './route.js';
import type { ProtocolContext } from '../protocol-context.js';
import { OutputReader, type ByteSink } from '../../streams/output-reader.js';
import { plainVariant, type PassthroughFormat } from '../../streams/output-registry.js';
import type { RawOutput } from '../../streams/raw-output.js';
import { encodingsDocument } from '../../transcode/encodings.js';
import { needsEncoding, profileOf } from '../../transcode/ffmpeg-args.js';
import type { SourceManager } from '../../transcode/launch.js';
import type { TranscoderManager } from '../../transcode/transcoder-manager.js';
import { findFeedConfig } from '../../config/names.js';

/** How long a reader waits for an on-demand source or transcoder to produce its first bytes. */
const START_TIMEOUT_MS = 20_000;
const ICY_METAINT = 16_000;
const API_PREFIX = 'api/v1/feeds/';

export class TranscodeRoute implements HttpRoute {
  private readonly ctx: ProtocolContext;
  private readonly transcoders: TranscoderManager;
  private readonly sources: SourceManager | undefined;

  constructor(ctx: ProtocolContext, transcoders: TranscoderManager, sources?: SourceManager) {
    this.ctx = ctx;
    this.transcoders = transcoders;
    this.sources = sources;
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL, conn: ConnectionInfo): boolean {
    const config = this.ctx.config;
    const method = req.method ?? 'GET';
    const isRead = method === 'GET' || method === 'HEAD';

    // The publish handshake (ffserver's first GET of the feed, ref §3.2), as JSON.
    const apiKey =
      path.startsWith(API_PREFIX) && path.endsWith('/encodings')
        ? path.slice(API_PREFIX.length, -'/encodings'.length)
        : undefined;
    const feedConfig =
      findFeedConfig(config.feeds, path) ?? (apiKey !== undefined ? findFeedConfig(config.feeds, apiKey) : undefined);
    if (feedConfig !== undefined && isRead && (apiKey !== undefined || url.searchParams.has('config'))) {
      if (!feedConfig.acl.allows(conn.remoteAddress)) {
        sendText(res, 403, `Your address ${conn.remoteAddress} may not publish to feed ${feedConfig.key} (the feed's ACL).`);
        return true;
      }
      const body = JSON.stringify(encodingsDocument(config, feedConfig.key), null, 2) + '\n';
      res.writeHead(200, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(body)),
        'Cache-Control': 'no-cache',
      });
      res.end(method === 'HEAD' ? undefined : body);
      return true;
    }

    const stream = this.ctx.access.resolve(path)?.stream;
    if (stream !== undefined) {
      const support = stream.format.support;
      if (stream.feed === undefined || support === 'obsolete' || support === 'status' || support === 'rtp') return false;
      const encoded = needsEncoding(stream);
      const sourced = this.sources?.has(feedKeyOf(stream.feed)) ?? false;
      if (!encoded && !sourced) return false;
      if (!isRead) {
        sendText(res, 405, `/${stream.name} accepts GET, HEAD only.`, { Allow: 'GET, HEAD' });
        return true;
      }
      // The same admission as every read: the policy (ACL, DynamicACL, tokens, JWT, hooks, callback), then
      // the stream's reader slot and bandwidth, taken before any ffmpeg child starts for it.
      const feed = this.ctx.feeds.get(stream.feed);
      if (feed === undefined) {
        sendText(res, 404, `/${stream.name}: its feed ${stream.feed} does not exist.`);
        return true;
      }
      admitHttp(this.ctx, req, res, conn, { name: stream.name, feed, stream }, url, () =>
        this.serveStream(req, res, conn, stream, encoded).catch((err: unknown) => this.failed(res, err)),
      );
      return true;
    }

    // /feed1.flv, /feed1.ts of a Launch/Source feed: start its source for this reader.
    const dot = path.lastIndexOf('.');
    const suffix = dot >= 0 ? path.slice(dot) : '';
    const format: PassthroughFormat | undefined = suffix === '.flv' ? 'flv' : suffix === '.ts' ? 'mpegts' : undefined;
    if (format !== undefined && isRead && this.sources?.has(path.slice(0, dot)) === true) {
      const feed = this.ctx.feeds.get(path.slice(0, dot));
      if (feed === undefined) return false;
      admitHttp(this.ctx, req, res, conn, { name: feed.key, feed, stream: undefined }, url, () =>
        this.serveSourceFeed(req, res, conn, feed, format, path).catch((err: unknown) => this.failed(res, err)),
      );
      return true;
    }
    return false;
  }

  private failed(res: ServerResponse, err: unknown): void {
    this.ctx.log.error('transcoded stream failed', { err });
    if (!res.headersSent) sendText(res, 500, 'Internal error; the server log has the details.');
    else res.destroy();
  }

  /** Whether the feed's Launch/Source child can run (the admission holds it); answers 503 when not. */
  private sourceRuns(res: ServerResponse, feedKey: string): boolean {
    const reason = this.sources?.unavailable.get(feedKey);
    if (reason === undefined) return true;
    sendText(res, 503, `Feed ${feedKey} is produced by ffmpeg, which cannot run: ${reason}`);
    return false;
  }

  private async serveSourceFeed(
    req: IncomingMessage,
    res: ServerResponse,
    conn: ConnectionInfo,
    feed: Feed,
    format: PassthroughFormat,
    name: string,
  ): Promise<void> {
    if (!this.sourceRuns(res, feed.key)) return;
    conn.role = 'reader';
    conn.state = 'WAIT_FEED';
    if (!(await waitUntil(() => feed.tracks.length > 0, START_TIMEOUT_MS, req))) {
      if (!res.headersSent && !res.destroyed)
        sendText(res, 504, `Feed ${feed.key}: its source produced nothing within ${START_TIMEOUT_MS / 1000} s.`);
      return;
    }
    await handleRead(this.ctx, req, res, { feed, format, variant: plainVariant, name, maxTimeSeconds: 0 }, conn);
  }

  private async serveStream(
    req: IncomingMessage,
    res: ServerResponse,
    conn: ConnectionInfo,
    stream: StreamConfig,
    encoded: boolean,
  ): Promise<void> {
    const feedKey = feedKeyOf(stream.feed ?? '');
    const source = this.ctx.feeds.get(feedKey);
    if (source === undefined) {
      sendText(res, 404, `/${stream.name}: its feed ${stream.feed ?? '?'} does not exist.`);
      return;
    }
    if (!this.sourceRuns(res, feedKey)) return;
    const releases: (() => void)[] = [];
    res.once('close', () => {
      for (const r of releases.splice(0)) r();
    });
    conn.role = 'reader';
    conn.target = stream.name;
    conn.state = 'WAIT_FEED';
    if (!(await waitUntil(() => source.tracks.length > 0, START_TIMEOUT_MS, req))) {
      if (!res.destroyed)
        sendText(res, 404, `Feed ${feedKey} has no publisher: nothing was published to it within ${START_TIMEOUT_MS / 1000} s.`);
      return;
    }
    if (res.destroyed) return;
    if (!encoded) {
      await handleRead(
        this.ctx,
        req,
        res,
        {
          feed: source,
          format: stream.format.name as PassthroughFormat,
          variant: { noAudio: stream.noAudio, noVideo: stream.noVideo, metadata: stream.metadata },
          name: stream.name,
          maxTimeSeconds: stream.maxTimeSeconds,
        },
        conn,
      );
      return;
    }
    const served = this.transcoders.open(stream);
    if (served.kind === 'error') {
      this.ctx.log.warn('transcoded stream refused', { stream: stream.name, status: served.status, reason: served.message });
      sendText(res, served.status, served.message);
      return;
    }
    releases.push(served.release);
    if (served.kind === 'feed') {
      const feed = served.feed;
      if (!(await waitUntil(() => feed.tracks.length > 0, START_TIMEOUT_MS, req))) {
        if (!res.destroyed) sendText(res, 504, this.noOutputMessage(stream));
        return;
      }
      if (res.destroyed) return;
      await handleRead(
        this.ctx,
        req,
        res,
        {
          feed,
          format: stream.format.name as PassthroughFormat,
          variant: { noAudio: false, noVideo: false, metadata: stream.metadata },
          name: stream.name,
          maxTimeSeconds: stream.maxTimeSeconds,
        },
        conn,
      );
      return;
    }
    const transcoder = served.transcoder;
    const ready = await waitUntil(() => transcoder.output()?.ready === true, START_TIMEOUT_MS, req);
    const output = transcoder.output();
    if (!ready || output === undefined) {
      if (!res.destroyed) sendText(res, 504, this.noOutputMessage(stream));
      return;
    }
    if (res.destroyed) return;
    this.serveRaw(req, res, conn, stream, output);
  }

  private noOutputMessage(stream: StreamConfig): string {
    const t = this.transcoders.status().find((s) => s.feed === feedKeyOf(stream.feed ?? ''));
    const tail = t?.stderrTail.slice(-3).join(' | ');
    return `/${stream.name}: ffmpeg produced nothing within ${START_TIMEOUT_MS / 1000} s${tail !== undefined && tail !== '' ? ` (ffmpeg: ${tail})` : ''}.`;
  }

  private serveRaw(
    req: IncomingMessage,
    res: ServerResponse,
    conn: ConnectionInfo,
    stream: StreamConfig,
    output: RawOutput,
  ): void {
    const headers: Record<string, string> = {
      'Cache-Control': 'no-cache, no-store',
      Pragma: 'no-cache',
      'Access-Control-Allow-Origin': '*',
      Connection: 'close',
    };
    if (stream.format.singleFrame) {
      // Format jpeg (ffserver's singlejpeg): the newest complete picture, then the connection closes.
      const jpeg = output.latestPiece() ?? Buffer.alloc(0);
      res.writeHead(200, { ...headers, 'Content-Type': 'image/jpeg', 'Content-Length': String(jpeg.length) });
      res.end(req.method === 'HEAD' ? undefined : jpeg);
      return;
    }
    const profile = profileOf(stream);
    const icy = profile.video === undefined && req.headers['icy-metadata'] === '1';
    const title = stream.metadata['title'] ?? stream.name;
    if (icy) {
      headers['icy-metaint'] = String(ICY_METAINT);
      headers['icy-name'] = title;
    }
    res.removeHeader('Transfer-Encoding');
    res.writeHead(200, { ...headers, 'Content-Type': output.contentType });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.flushHeaders();
    conn.state = 'SEND_DATA';
    const sink: ByteSink = icy ? new IcySink(res, ICY_METAINT, title) : res;
    const reader = new OutputReader(output, sink, {
      maxQueueBytes: this.ctx.config.readerMaxQueueBytes,
      maxLagMs: this.ctx.config.readerMaxLagMs,
    });
    const log = this.ctx.log.child({ reader: conn.remoteAddress, stream: stream.name });
    const stats = setInterval(() => {
      conn.bytesOut = reader.stats.bytesSent;
    }, 1000);
    stats.unref();
    let maxTimer: NodeJS.Timeout | undefined;
    reader.on('end', (reason, error) => {
      clearInterval(stats);
      if (maxTimer !== undefined) clearTimeout(maxTimer);
      conn.bytesOut = reader.stats.bytesSent;
      conn.state = 'SEND_DATA_TRAILER';
      if (error !== undefined) {
        log.warn('reader closed', { reason, err: error });
        res.destroy();
      } else {
        res.end();
      }
    });
    res.on('close', () => reader.close('client left'));
    conn.kick = (reason) => reader.close(reason, new Error(reason));
    if (stream.maxTimeSeconds > 0) maxTimer = setTimeout(() => reader.close('MaxTime reached'), stream.maxTimeSeconds * 1000);
    // Preroll: start that many seconds back, from what the output keeps; always on a join point
    // (which is what StartSendOnKey asks, so that needs nothing more here).
    reader.start(stream.prerollSeconds > 0 ? output.prerollJoinSeq(stream.prerollSeconds) : undefined);
  }
}

/** Polls `condition` every 50 ms until it holds, the request goes away, or `timeoutMs` passes. */
function waitUntil(condition: () => boolean, timeoutMs: number, req: IncomingMessage): Promise<boolean> {
  if (condition()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const timer = setInterval(() => {
      if (condition()) finish(true);
      else if (req.destroyed || Date.now() > deadline) finish(false);
    }, 50);
    const finish = (ok: boolean): void => {
      clearInterval(timer);
      resolve(ok);
    };
  });
}

/**
 * ICY (SHOUTcast/Icecast) metadata for players that send `Icy-MetaData: 1`: after every `metaint`
 * bytes of audio, one length byte (×16) and `StreamTitle='...';` padded with zeros.
 */
export class IcySink implements ByteSink {
  private readonly target: ByteSink;
  private readonly metaint: number;
  private readonly block: Buffer;
  private untilMeta: number;

  constructor(target: ByteSink, metaint: number, title: string) {
    this.target = target;
    this.metaint = metaint;
    this.untilMeta = metaint;
    this.block = icyMetadataBlock(`StreamTitle='${title.replace(/'/g, '')}';`);
  }

  write(chunk: Buffer): boolean {
    let ok = true;
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(this.untilMeta, chunk.length - at);
      ok = this.target.write(chunk.subarray(at, at + n)) && ok;
      at += n;
      this.untilMeta -= n;
      if (this.untilMeta === 0) {
        ok = this.target.write(this.block) && ok;
        this.untilMeta = this.metaint;
      }
    }
    return ok;
  }
  cork(): void {
    this.target.cork();
  }
  uncork(): void {
    this.target.uncork();
  }
  once(event: 'drain', listener: () => void): unknown {
    return this.target.once(event, listener);
  }
  removeListener(event: 'drain', listener: () => void): unknown {
    return this.target.removeListener(event, listener);
  }
}

export function icyMetadataBlock(text: string): Buffer {
  const bytes = Buffer.from(text.slice(0, 16 * 255 - 1), 'utf8');
  const blocks = Math.ceil(bytes.length / 16);
  const out = Buffer.alloc(1 + blocks * 16);
  out[0] = blocks;
  bytes.copy(out, 1);
  return out;
}
