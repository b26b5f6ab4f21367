// The HTTP listener: connection limits (MaxClients, MaxHTTPConnections), request routing to
// publishing (to-feed), progressive outputs (from-feed), pages, redirects; the access log.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { StreamConfig } from '../../config/config.js';
import type { ConnectionInfo } from '../../control/connections.js';
import { sameSecret } from '../../control/secrets.js';
import { renderIndexPage } from '../../control/index-page.js';
import { renderStatusPage } from '../../control/status-page.js';
import type { Feed } from '../../feed/feed.js';
import type { ServerContext } from '../../server-context.js';
import { plainVariant, type PassthroughFormat } from '../../streams/output-registry.js';
import { handleRead } from './from-feed.js';
import { sendHtml, sendRedirect, sendText, tooBusyResponse } from './respond.js';
import type { HttpRoute } from './route.js';
import { handlePublish } from './to-feed.js';

/** URL suffix -> passthrough format, for the outputs every feed has without declaring them. */
const FEED_OUTPUT_SUFFIXES: Readonly<Record<string, PassthroughFormat>> = { '.flv': 'flv', '.ts': 'mpegts' };

/** Node reports IPv4 clients of a dual-stack socket as ::ffff:a.b.c.d; show them as a.b.c.d. */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class HttpServer {
  private readonly ctx: ServerContext;
  private readonly server: Server;
  private readonly connBySocket = new WeakMap<Socket, ConnectionInfo>();
  private httpSockets = 0;
  private readonly routes: HttpRoute[] = [];

  constructor(ctx: ServerContext) {
    this.ctx = ctx;
    this.server = createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => this.onRequest(req, res));
    // Long requests are the point (publishers, readers): no total-request timeout. A request head
    // must arrive within 15 s, as in ffserver.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 15_000;
    this.server.keepAliveTimeout = 5_000;
    this.server.on('connection', (socket: Socket) => this.onConnection(socket));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') {
        const message =
          err.code === 'HPE_HEADER_OVERFLOW'
            ? 'Request header too large (limit 16 KiB).'
            : 'Bad request: the request could not be parsed.';
        socket.end(
          `HTTP/1.1 ${err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${message}\n`,
        );
      } else {
        socket.destroy();
      }
    });
  }

  /**
   * Adds URLs served by another part. Routes are asked after redirects and before declared
   * streams and feeds; the route added last is asked first, so a test or an embedding program
   * can override a built-in one.
   */
  addRoute(route: HttpRoute): void {
    this.routes.unshift(route);
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private onConnection(socket: Socket): void {
    const { connections, config } = this.ctx;
    const remote = plainAddress(socket.remoteAddress);
    if (connections.size >= config.maxClients || this.httpSockets >= config.maxHttpConnections) {
      const limit =
        connections.size >= config.maxClients
          ? `MaxClients ${config.maxClients}`
          : `MaxHTTPConnections ${config.maxHttpConnections}`;
      this.ctx.counters.refusedConnections++;
      this.ctx.log.warn('connection refused: server full', { from: remote, limit });
      socket.end(
        tooBusyResponse(`Server too busy: ${connections.size} connections are open, the limit is ${limit}. Try again later.`),
      );
      return;
    }
    const conn = connections.open(`HTTP`, remote);
    this.httpSockets++;
    this.connBySocket.set(socket, conn);
    socket.once('close', () => {
      this.httpSockets--;
      connections.close(conn);
    });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const conn = this.connBySocket.get(req.socket);
    if (conn === undefined) {
      res.destroy();
      return;
    }
    conn.state = 'HTTP_SEND_HEADER';
    this.logAccess(req, res, conn);
    try {
      this.route(req, res, conn);
    } catch (err) {
      this.ctx.log.error('request failed', { url: req.url, err });
      if (!res.headersSent) sendText(res, 500, 'Internal error; the server log has the details.');
      else res.destroy();
    }
  }

  private logAccess(req: IncomingMessage, res: ServerResponse, conn: ConnectionInfo): void {
    const accessLog = this.ctx.accessLog;
    if (accessLog === undefined) return;
    let bytesAtStart = req.socket.bytesWritten;
    const at = new Date();
    res.once('close', () => {
      accessLog.write({
        remoteAddress: conn.remoteAddress,
        method: req.method ?? '-',
        url: req.url ?? '-',
        httpVersion: req.httpVersion,
        status: res.statusCode,
        bytes: Math.max(0, req.socket.bytesWritten - bytesAtStart),
        at,
      });
      bytesAtStart = req.socket.bytesWritten;
    });
  }

  private route(req: IncomingMessage, res: ServerResponse, conn: ConnectionInfo): void {
    const method = req.method ?? 'GET';
    let name: string;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://feedcast.invalid');
      name = decodeURIComponent(url.pathname).replace(/^\/+/, '');
    } catch {
      sendText(res, 400, `Bad request: "${String(req.url).slice(0, 200)}" is not a valid URL path.`);
      return;
    }
    conn.target = name;
    const config = this.ctx.config;

    if (name === '' || name === 'index.html') {
      const redirect = config.redirects.find((r) => r.name === (name === '' ? 'index.html' : name));
      if (redirect !== undefined && name !== '') return sendRedirect(res, redirect.url);
      if (!isRead(method)) return this.methodNotAllowed(res, name, 'GET, HEAD');
      return sendHtml(res, 200, renderIndexPage(this.ctx, req.headers.host));
    }

    const redirect = config.redirects.find((r) => r.name === name);
    if (redirect !== undefined) return sendRedirect(res, redirect.url);

    // Other parts (HLS, the player, transcoded streams, the API) claim their URLs first.
    for (const route of this.routes) {
      if (route.handle(req, res, name, url, conn)) return;
    }
    const stream = config.streams.find((s) => s.name === name);
    if (stream !== undefined) return this.routeStream(req, res, conn, stream);
    if (name === 'stat.html') {
      if (!isRead(method)) return this.methodNotAllowed(res, name, 'GET, HEAD');
      if (!config.statusAcl.allows(conn.remoteAddress)) {
        return sendText(res, 403, `Your address ${conn.remoteAddress} may not read the status page (StatusACL).`);
      }
      return sendHtml(res, 200, renderStatusPage(this.ctx));
    }
    if (method === 'POST' || method === 'PUT') {
      const feed = this.ctx.feeds.forPublisher(name);
      if (feed === undefined) {
        return sendText(
          res,
          404,
          `No feed named "${name}". Declare it in the config with <Feed ${name.endsWith('.ffm') ? name : name + '.ffm'}>, or enable DynamicFeeds.`,
        );
      }
      if (!this.allowedToFeed(res, feed, conn, 'publish to')) return;
      const secret = config.feeds.find((f) => f.key === feed.key)?.publishSecret;
      if (secret !== undefined && !sameSecret(url.searchParams.get('secret') ?? undefined, secret)) {
        this.ctx.log.warn('publisher refused: publish secret', { feed: feed.key, from: conn.remoteAddress });
        const given = url.searchParams.has('secret');
        return sendText(
          res,
          403,
          given
            ? `Wrong publish secret for feed ${feed.key}.`
            : `Feed ${feed.key} needs its publish secret: POST to /${name}?secret=...`,
        );
      }
      return handlePublish(this.ctx, req, res, feed, conn);
    }

    const dot = name.lastIndexOf('.');
    const suffix = dot >= 0 ? name.slice(dot) : '';
    const format = FEED_OUTPUT_SUFFIXES[suffix];
    const feed = this.ctx.feeds.get(format !== undefined ? name.slice(0, dot) : name);
    if (feed !== undefined && format !== undefined) {
      if (!isRead(method)) return this.methodNotAllowed(res, name, 'GET, HEAD');
      if (!this.allowedToFeed(res, feed, conn, 'read')) return;
      void handleRead(
        this.ctx,
        req,
        res,
        { feed, format, variant: plainVariant, name, maxTimeSeconds: 0, bandwidthKbps: feedBandwidthKbps(feed) },
        conn,
      );
      return;
    }
    if (feed !== undefined) {
      return sendText(
        res,
        405,
        `/${name} is where publishers send feed ${feed.key} (POST or PUT). To watch it, GET /${feed.key}.flv or /${feed.key}.ts.`,
        { Allow: 'POST, PUT' },
      );
    }
    sendText(res, 404, `Not found: /${name}. The list of feeds and streams is at /.`);
  }

  private routeStream(req: IncomingMessage, res: ServerResponse, conn: ConnectionInfo, stream: StreamConfig): void {
    const method = req.method ?? 'GET';
    if (!isRead(method)) return this.methodNotAllowed(res, stream.name, 'GET, HEAD');
    if (!stream.acl.allows(conn.remoteAddress)) {
      this.ctx.log.warn('read refused by ACL', { stream: stream.name, from: conn.remoteAddress });
      return sendText(res, 403, `Your address ${conn.remoteAddress} may not read /${stream.name} (ACL of the stream).`);
    }
    const format = stream.format;
    if (format.support === 'status') return sendHtml(res, 200, renderStatusPage(this.ctx));
    if (format.support === 'obsolete') {
      return sendText(res, 501, `/${stream.name} uses Format ${format.name}: ${format.alternative ?? 'not served by Feedcast'}.`);
    }
    if (stream.feed === undefined) {
      return sendText(
        res,
        501,
        `/${stream.name} is a file-backed stream (File ${stream.file ?? '?'}), which Feedcast does not serve yet.`,
      );
    }
    const feed = this.ctx.feeds.get(stream.feed);
    if (feed === undefined) return sendText(res, 404, `/${stream.name}: its feed ${stream.feed} does not exist.`);
    if (format.support !== 'passthrough' || stream.needsTranscode || (format.name !== 'flv' && format.name !== 'mpegts')) {
      return sendText(
        res,
        501,
        `/${stream.name} needs encoding (Format ${format.name}${stream.needsTranscode ? ' with its own codec settings' : ''}), which this Feedcast version does not do yet. ` +
          `Read the feed as published at /${feed.key}.flv or /${feed.key}.ts.`,
      );
    }
    void handleRead(
      this.ctx,
      req,
      res,
      {
        feed,
        format: format.name,
        variant: { noAudio: stream.noAudio, noVideo: stream.noVideo, metadata: stream.metadata },
        name: stream.name,
        maxTimeSeconds: stream.maxTimeSeconds,
        bandwidthKbps: stream.bandwidthKbps > 0 ? stream.bandwidthKbps : feedBandwidthKbps(feed),
      },
      conn,
    );
  }

  private allowedToFeed(res: ServerResponse, feed: Feed, conn: ConnectionInfo, action: string): boolean {
    const feedConfig = this.ctx.config.feeds.find((f) => f.key === feed.key);
    if (feedConfig === undefined || feedConfig.acl.allows(conn.remoteAddress)) return true;
    this.ctx.log.warn('refused by ACL', { feed: feed.key, action, from: conn.remoteAddress });
    sendText(res, 403, `Your address ${conn.remoteAddress} may not ${action} feed ${feed.key} (the feed's ACL).`);
    return false;
  }

  private methodNotAllowed(res: ServerResponse, name: string, allow: string): void {
    sendText(res, 405, `/${name} accepts ${allow} only.`, { Allow: allow });
  }
}

function isRead(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/** What a reader of a feed costs against MaxBandwidth: the feed's measured input rate. */
function feedBandwidthKbps(feed: Feed): number {
  return feed.inputRate.bitsPerSecond() / 1000;
}
