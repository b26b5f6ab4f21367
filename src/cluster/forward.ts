// With `Workers N` (docs/cluster.md, "Workers"): the requests only worker 1 can serve (WebRTC, HLS, time-shift,
// recordings), forwarded by the other workers to worker 1's internal port, with the client's address.

import { Agent, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from '../observability/logger.js';
import { FORWARD_HEADERS } from './worker-messages.js';

/** Query parameters that make a read come from the past: the feed file or the recordings (worker 1's). */
const PAST_PARAMETERS = ['date', 'start', 'end'];
/** Paths with a '/' that every worker serves itself: the API, the player's assets and pages. */
const LOCAL_PREFIXES = ['api/', 'web/', 'watch/'];

/**
 * Whether worker 1 must serve this request: anything under a feed's path (`FEED/whep`, `FEED/whip` and their
 * sessions, HLS playlists, segments and parts, VOD), the recordings (their page and `/api/v1/recordings`), and
 * reads of the past.
 * `path` is the decoded path without its leading '/'.
 */
export function servedByFirstWorker(path: string, url: URL): boolean {
  if (PAST_PARAMETERS.some((p) => url.searchParams.has(p))) return true;
  if (/^(api\/v1\/)?recordings(\/|$)/.test(path)) return true;
  if (!path.includes('/')) return false;
  return !LOCAL_PREFIXES.some((prefix) => path.startsWith(prefix));
}

/** Hop-by-hop headers (RFC 9110 7.6.1): they describe one connection, not the request. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
]);

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

export interface ForwardTarget {
  readonly host: string;
  readonly port: number;
}

/** Forwards requests to one worker over kept-alive connections (HLS pollers make many small requests). */
export class Forwarder {
  private readonly agent = new Agent({ keepAlive: true, maxFreeSockets: 64 });
  private readonly secret: string;
  private readonly log: Logger;

  constructor(secret: string, log: Logger) {
    this.secret = secret;
    this.log = log;
  }

  /** Sends `req` to `target` as from `clientAddress`, and its answer back; 502 when the target cannot be reached. */
  forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget, clientAddress: string): void {
    const headers = endToEnd(req.headers);
    delete headers[FORWARD_HEADERS.secret];
    headers[FORWARD_HEADERS.secret] = this.secret;
    headers[FORWARD_HEADERS.client] = clientAddress;
    const upstream = request({
      host: target.host,
      port: target.port,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers,
      agent: this.agent,
    });
    upstream.on('response', (answer) => {
      if (res.destroyed) {
        answer.destroy();
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.headers));
      res.flushHeaders();
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) {
        this.log.warn('workers: forwarding to worker 1 failed', { url: req.url?.split('?')[0], err: err.message });
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`Worker 1, which serves this URL, cannot be reached (${err.message}); try again.\n`);
      } else {
        res.destroy();
      }
    });
    // The client left: so does the forwarded request (a blocking playlist reload, a long read).
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  close(): void {
    this.agent.destroy();
  }
}
