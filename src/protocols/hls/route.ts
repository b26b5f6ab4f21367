// The HLS URLs on the HTTP listener (docs/hls.md): `/KEY/index.m3u8` (fMP4, LL-HLS) and
// `/KEY/ts/index.m3u8` (MPEG-TS) for every feed, `/NAME` for each declared `Format hls` stream,
// and the init sections, segments and parts under them.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StreamConfig } from '../../config/config.js';
import type { ConnectionInfo } from '../../control/connections.js';
import type { Feed } from '../../feed/feed.js';
import type { ServerContext } from '../../server-context.js';
import { authPolicy, credentialQuery, credentialsFrom, redactUrl, type AuthRequest } from '../../control/auth.js';
import type { HttpRoute } from '../http/route.js';
import { sendRefusal } from '../http/server.js';
import { CORS_HEADERS, hlsFileUris, parseHlsFile, sendHls, serveFile, servePlaylist } from './from-feed.js';
import { HlsOutputs } from './hls-outputs.js';
import { DEFAULT_SEGMENTER_OPTIONS, type SegmenterOptions } from './segmenter.js';
import type { HlsContainer } from './packager.js';

export interface HlsRouteOptions {
  /** Segment target duration (cut at the first keyframe after it). Default 2000 ms. */
  segmentTargetMs: number;
  /** LL-HLS PART-TARGET. Default 500 ms. */
  partTargetMs: number;
  /** Complete segments kept in memory and listed. Default 12. */
  windowSegments: number;
  /** PART-HOLD-BACK in part targets, 2 to 3. Default 3. */
  partHoldBackParts: number;
  /** A segmenter with no request for this long is stopped. Default 30 000 ms. */
  idleTimeoutMs: number;
  /** The first playlist request waits this long for the first segment. Default 15 000 ms. */
  firstSegmentTimeoutMs: number;
}

export const DEFAULT_HLS_ROUTE_OPTIONS: HlsRouteOptions = {
  segmentTargetMs: DEFAULT_SEGMENTER_OPTIONS.segmentTargetMs,
  partTargetMs: DEFAULT_SEGMENTER_OPTIONS.partTargetMs,
  windowSegments: DEFAULT_SEGMENTER_OPTIONS.windowSegments,
  partHoldBackParts: DEFAULT_SEGMENTER_OPTIONS.partHoldBackParts,
  idleTimeoutMs: 30_000,
  firstSegmentTimeoutMs: 15_000,
};

/** What an HLS URL names: a playlist or a file of one output. */
interface HlsTarget {
  /** Key of the output in HlsOutputs. */
  outputKey: string;
  feed: Feed;
  container: HlsContainer;
  noAudio: boolean;
  noVideo: boolean;
  /** Prefix of the URIs in the playlist, relative to the playlist's URL. */
  uriPrefix: string;
  /** undefined: the playlist; else the file name. */
  file: string | undefined;
  /** What the authorisation policy is asked about. */
  auth: { feed: string; stream: string | undefined };
  name: string;
}

export class HlsRoute implements HttpRoute {
  private readonly ctx: ServerContext;
  private readonly options: HlsRouteOptions;
  readonly outputs: HlsOutputs;

  constructor(ctx: ServerContext, options: Partial<HlsRouteOptions> = {}) {
    this.ctx = ctx;
    this.options = { ...DEFAULT_HLS_ROUTE_OPTIONS, ...options };
    this.outputs = new HlsOutputs(ctx.log, this.options.idleTimeoutMs);
  }

  close(): void {
    this.outputs.close();
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL, conn: ConnectionInfo): boolean {
    const target = this.match(path);
    if (target === undefined) return false;
    conn.target = path;
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      res.writeHead(204, { ...CORS_HEADERS, 'Access-Control-Max-Age': '86400', 'Content-Length': '0' });
      res.end();
      return true;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      sendHls(res, 405, `/${path} accepts GET, HEAD and OPTIONS only.`, 'text/plain; charset=utf-8', 'no-cache', conn, {
        Allow: 'GET, HEAD, OPTIONS',
      });
      return true;
    }
    const request: AuthRequest = {
      action: 'read',
      protocol: 'hls',
      feed: target.auth.feed,
      stream: target.auth.stream,
      address: conn.remoteAddress,
      credentials: credentialsFrom(url.searchParams, req.headers.authorization),
    };
    void authPolicy(this.ctx)
      .authorize(request)
      .then((decision) => {
        if (res.destroyed || res.headersSent) return;
        if (decision.kind !== 'allow') {
          res.setHeader('Access-Control-Allow-Origin', '*');
          return sendRefusal(this.ctx, res, request, decision);
        }
        this.serve(req, res, path, url, conn, target, credentialQuery(request.credentials));
      })
      .catch((err: unknown) => {
        this.ctx.log.error('HLS request failed', { url: redactUrl(req.url), err });
        if (!res.headersSent) res.destroy();
      });
    return true;
  }

  /** Serves an authorised HLS request; `authQuery` is appended to the file URIs of a playlist (read tokens). */
  private serve(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    url: URL,
    conn: ConnectionInfo,
    target: HlsTarget,
    authQuery: string,
  ): void {
    conn.role = 'reader';
    const done = (p: Promise<void>): void => {
      p.catch((err: unknown) => {
        this.ctx.log.error('HLS request failed', { url: redactUrl(req.url), err });
        if (!res.headersSent)
          sendHls(res, 500, 'Internal error; the server log has the details.', 'text/plain; charset=utf-8', 'no-cache', conn);
        else res.destroy();
      });
    };
    if (target.file === undefined) {
      const segmenter = this.outputs.acquire(target.outputKey, target.feed, this.segmenterOptions(target));
      done(
        servePlaylist(
          req,
          res,
          url,
          {
            segmenter,
            uris: withQuery(hlsFileUris(segmenter.sid, target.container, target.uriPrefix), authQuery),
            lowLatency: target.container === 'fmp4',
            firstSegmentTimeoutMs: this.options.firstSegmentTimeoutMs,
            whyEmpty: () => {
              if (target.feed.publisher === undefined) {
                return { status: 404, message: `Feed ${target.feed.key} has no publisher: nothing to play yet.` };
              }
              if (segmenter.tracks.length === 0) {
                return {
                  status: 406,
                  message: `${target.name}: HLS here carries H.264, H.265 and AAC (${target.container === 'ts' ? 'and MP3/MPEG in TS' : 'fMP4'}); this feed has ${target.feed.tracks.map((t) => t.codec).join(', ') || 'no tracks'}. Read /${target.feed.key}.ts instead.`,
                };
              }
              return { status: 503, message: `${target.name}: the first segment is not ready yet (no keyframe so far).` };
            },
          },
          conn,
        ),
      );
      return;
    }
    const file = parseHlsFile(target.file, target.container);
    if (file === undefined) {
      sendHls(
        res,
        404,
        `Not found: /${path} is not an HLS file name of this server.`,
        'text/plain; charset=utf-8',
        'no-cache',
        conn,
      );
      return;
    }
    done(serveFile(req, res, this.outputs.find(target.outputKey), file, conn));
  }

  private segmenterOptions(target: HlsTarget): SegmenterOptions {
    return {
      container: target.container,
      segmentTargetMs: this.options.segmentTargetMs,
      partTargetMs: this.options.partTargetMs,
      windowSegments: this.options.windowSegments,
      partHoldBackParts: Math.min(3, Math.max(2, this.options.partHoldBackParts)),
      noAudio: target.noAudio,
      noVideo: target.noVideo,
    };
  }

  /** Maps a URL path onto an HLS output, or undefined when the path is not an HLS URL. */
  private match(path: string): HlsTarget | undefined {
    for (const stream of this.ctx.config.streams) {
      if (stream.format.name !== 'hls') continue;
      if (path === stream.name) return this.streamTarget(stream, undefined);
      if (path.startsWith(stream.name + '/')) return this.streamTarget(stream, path.slice(stream.name.length + 1));
    }
    const slash = path.indexOf('/');
    if (slash <= 0) return undefined;
    const feed = this.ctx.feeds.get(path.slice(0, slash));
    if (feed === undefined) return undefined;
    const rest = path.slice(slash + 1);
    const base = {
      feed,
      noAudio: false,
      noVideo: false,
      auth: { feed: feed.key, stream: undefined },
      name: `feed ${feed.key}`,
    };
    if (rest === 'index.m3u8')
      return { ...base, outputKey: `feed:${feed.key}:fmp4`, container: 'fmp4', uriPrefix: '', file: undefined };
    if (rest === 'ts/index.m3u8')
      return { ...base, outputKey: `feed:${feed.key}:ts`, container: 'ts', uriPrefix: '', file: undefined };
    if (rest.startsWith('ts/') && !rest.slice(3).includes('/')) {
      return { ...base, outputKey: `feed:${feed.key}:ts`, container: 'ts', uriPrefix: '', file: rest.slice(3) };
    }
    if (!rest.includes('/') && /\.(m4s|mp4)$/.test(rest)) {
      return { ...base, outputKey: `feed:${feed.key}:fmp4`, container: 'fmp4', uriPrefix: '', file: rest };
    }
    return undefined;
  }

  private streamTarget(stream: StreamConfig, file: string | undefined): HlsTarget | undefined {
    const feed = stream.feed !== undefined ? this.ctx.feeds.get(stream.feed) : undefined;
    if (feed === undefined) return undefined;
    return {
      outputKey: `stream:${stream.name}`,
      feed,
      container: 'fmp4',
      noAudio: stream.noAudio,
      noVideo: stream.noVideo,
      // The playlist is /NAME, so its files (/NAME/...) are named relative to the root.
      uriPrefix: encodeURIComponent(stream.name) + '/',
      file,
      auth: { feed: feed.key, stream: stream.name },
      name: `stream ${stream.name}`,
    };
  }
}

/** Appends the reader's credentials to every file URI of a playlist, so that segment requests carry them. */
function withQuery(uris: ReturnType<typeof hlsFileUris>, query: string): ReturnType<typeof hlsFileUris> {
  if (query === '') return uris;
  return {
    init: (v) => `${uris.init(v)}?${query}`,
    segment: (msn) => `${uris.segment(msn)}?${query}`,
    part: (msn, i) => `${uris.part(msn, i)}?${query}`,
  };
}
