// The HTTP listener: connection limits (MaxClients, MaxHTTPConnections), request routing to
// publishing (to-feed), progressive outputs (from-feed), pages, redirects; the access log.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { ServerConfig, StreamConfig } from '../../config/config.js';
import type { ConnectionInfo } from '../../access/connections.js';
import { credentialQuery, credentialsFrom, redactUrl, type AuthRequest } from '../../access/auth.js';
import type { CertificateStore } from '../tls.js';
import type { Feed } from '../../feed/feed.js';
import type { ProtocolContext } from '../protocol-context.js';
import { plainVariant, type PassthroughFormat } from '../../streams/output-registry.js';
import { handleRead } from './from-feed.js';
import { admitHttp, authorizeHttp } from './read-gate.js';
import { sendHtml, sendRedirect, sendText, tooBusyResponse } from './respond.js';
import type { HttpPages, HttpRoute } from './route.js';
import { answerFfmHandshake, handlePublish } from './to-feed.js';
import { socketBytesWritten } from '../../streams/native-fanout.js';
import { findByName } from '../../config/names.js';
import { RefusalLog } from '../../observability/refusal-log.js';
import { detach } from '../../observability/detach.js';
import { serveFileStream } from './file-stream.js';
import { forwardedClient, type ForwardedClient } from '../../access/forwarded.js';
import { RELAY_HEADER } from '../../cluster/relay-header.js';
import { FORWARD_HEADERS } from '../../cluster/worker-messages.js';

// Refusals are answered by the read gate; HLS and other routes import sendRefusal from here too.
export { sendRefusal } from './read-gate.js';

/** URL suffix -> passthrough format, for the outputs every feed has without declaring them. */
const FEED_OUTPUT_SUFFIXES: Readonly<Record<string, PassthroughFormat>> = { '.flv': 'flv', '.ts': 'mpegts' };

/** Node reports IPv4 clients of a dual-stack socket as ::ffff:a.b.c.d; show them as a.b.c.d. */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class HttpServer {
  private readonly ctx: ProtocolContext;
  private readonly pages: HttpPages;
  private readonly server: Server;
  /** The HTTPS listener (HTTPSPort): same routes and limits. */
  private tlsServer: HttpsServer | undefined;
  /** `Workers N`: this worker's own port (not shared), where the other workers relay and forward (docs/cluster.md). */
  private internalServer: Server | undefined;
  /** The workers' shared secret: a request on the internal port that carries it stands for the client it names. */
  private internalSecret: Buffer | undefined;
  private readonly internalSockets = new WeakSet<Socket>();
  private offCertificateChange: (() => void) | undefined;
  private readonly connBySocket = new WeakMap<Socket, ConnectionInfo>();
  private httpSockets = 0;
  private readonly routes: HttpRoute[] = [];
  private readonly refusals: RefusalLog;

  constructor(ctx: ProtocolContext, pages: HttpPages) {
    this.ctx = ctx;
    this.pages = pages;
    this.refusals = new RefusalLog(ctx.log);
    // A request head must arrive within RequestHeaderTimeout (15 s, as in ffserver): slowloris
    // connections are checked every second and closed with 408.
    const headersTimeoutMs = ctx.config.requestHeaderTimeoutMs;
    this.server = createServer(
      { maxHeaderSize: 16 * 1024, connectionsCheckingInterval: Math.min(1000, headersTimeoutMs) },
      (req, res) => this.onRequest(req, res),
    );
    // Long requests are the point (publishers, readers): no total-request timeout.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = headersTimeoutMs;
    this.server.keepAliveTimeout = ctx.config.keepAliveTimeoutMs;
    this.server.on('connection', (socket: Socket) => this.onConnection(socket));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
  }

  /** Unparseable, oversized (431) or too slow (408, slowloris) request heads: answered and closed. */
  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (socket.writable && err.code !== 'ECONNRESET') {
      const [status, message] =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? ['431 Request Header Fields Too Large', 'Request header too large (limit 16 KiB).']
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? ['408 Request Timeout', `The request head did not arrive within ${this.server.headersTimeout / 1000} s.`]
            : ['400 Bad Request', 'Bad request: the request could not be parsed.'];
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        this.ctx.log.debug('request head too slow: connection closed', { from: plainAddress(socket.remoteAddress) });
      }
      socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${message}\n`);
    } else {
      socket.destroy();
    }
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
      // backlog: Node's default of 511 overflows when a thousand viewers arrive at once (docs/performance.md).
      this.server.listen({ port, host, backlog: 4096 }, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  /** The request-head timeout in force (tests). */
  get headersTimeoutMs(): number {
    return this.server.headersTimeout;
  }

  /** The keep-alive idle timeout in force (KeepAliveTimeout). */
  get keepAliveTimeoutMs(): number {
    return this.server.keepAliveTimeout;
  }

  /** `RequestHeaderTimeout` and `KeepAliveTimeout` apply to the next request heads and idle waits (the other settings are read per request). */
  applyConfig(next: ServerConfig): void {
    for (const server of this.tlsServer !== undefined ? [this.server, this.tlsServer] : [this.server]) {
      server.headersTimeout = next.requestHeaderTimeoutMs;
      server.keepAliveTimeout = next.keepAliveTimeoutMs;
    }
  }

  /**
   * Starts the HTTPS listener (HTTPSPort): the same routes, limits and timeouts as HTTP, with the
   * certificates of `store`, swapped in without a restart when they change.
   */
  listenTls(port: number, host: string, store: CertificateStore): Promise<number> {
    const headersTimeoutMs = this.ctx.config.requestHeaderTimeoutMs;
    const server = createHttpsServer(
      {
        ...store.options,
        maxHeaderSize: 16 * 1024,
        connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
        handshakeTimeout: Math.min(10_000, headersTimeoutMs),
      },
      (req, res) => this.onRequest(req, res),
    );
    server.requestTimeout = 0;
    server.headersTimeout = headersTimeoutMs;
    server.keepAliveTimeout = this.ctx.config.keepAliveTimeoutMs;
    // Requests arrive on the TLS socket: that is the connection counted and limited.
    server.on('secureConnection', (socket: Socket) => this.onConnection(socket));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
    server.on('tlsClientError', (err: Error, socket: Socket) => {
      this.ctx.log.debug('TLS handshake failed', { from: plainAddress(socket.remoteAddress), reason: err.message });
      socket.destroy();
    });
    this.offCertificateChange = store.onChange((options) => server.setSecureContext(options));
    this.tlsServer = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  /**
   * `Workers N`: listens on a port of this worker alone (`exclusive`: node:cluster does not share it), same
   * routes and limits. A request there carrying the workers' `secret` (cluster/forward.ts) stands for the
   * client it names, as through a TrustedProxy; the others (relays from the other workers) are local readers.
   */
  listenInternal(host: string, secret: string): Promise<number> {
    const server = createServer({ maxHeaderSize: 16 * 1024, connectionsCheckingInterval: 1000 }, (req, res) =>
      this.onRequest(req, res),
    );
    server.requestTimeout = 0;
    server.headersTimeout = this.server.headersTimeout;
    server.keepAliveTimeout = this.server.keepAliveTimeout;
    server.on('connection', (socket: Socket) => {
      this.internalSockets.add(socket);
      this.onConnection(socket);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
    this.internalServer = server;
    this.internalSecret = Buffer.from(secret);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host, exclusive: true, backlog: 4096 }, () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });
  }

  close(): Promise<void> {
    this.offCertificateChange?.();
    const closeOne = (server: Server | HttpsServer): Promise<void> =>
      new Promise((resolve) => {
        if (!server.listening) {
          server.closeAllConnections();
          resolve();
          return;
        }
        server.close(() => resolve());
        server.closeAllConnections();
      });
    const servers: (Server | HttpsServer)[] = [this.server];
    if (this.tlsServer !== undefined) servers.push(this.tlsServer);
    if (this.internalServer !== undefined) servers.push(this.internalServer);
    return Promise.all(servers.map(closeOne)).then(() => undefined);
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
      this.refusals.warn(remote, 'connection refused: server full', { protocol: 'http', limit });
      refuseSocket(
        socket,
        tooBusyResponse(`Server too busy: ${connections.size} connections are open, the limit is ${limit}. Try again later.`),
      );
      return;
    }
    // A trusted proxy carries many clients on its connections: they are counted per request instead.
    // So do the other workers (Workers N): their forwarded requests are counted per client, as through a proxy.
    const fromProxy = config.trustedProxies?.allows(remote) === true || this.internalSockets.has(socket);
    const perAddress = fromProxy ? undefined : this.ctx.access.addressLimitReason(remote);
    if (perAddress !== undefined) {
      this.ctx.counters.refusedConnections++;
      this.refusals.warn(remote, 'connection refused: too many from one address', { protocol: 'http' });
      refuseSocket(socket, tooBusyResponse(perAddress));
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
    this.logAccess(req, res, conn); // first: its close listener logs the client before it is reset
    const refusal = this.takeForwardedClient(req, res, conn);
    if (refusal !== undefined) {
      sendText(res, refusal.status, refusal.message);
      return;
    }
    try {
      this.route(req, res, conn);
    } catch (err) {
      this.ctx.log.error('request failed', { url: redactUrl(req.url), err });
      if (!res.headersSent) sendText(res, 500, 'Internal error; the server log has the details.');
      else res.destroy();
    }
  }

  /**
   * For a request from a TrustedProxy: the connection stands for the client X-Forwarded-For names
   * until the response ends (keep-alive connections carry other clients' requests next), and that
   * client's MaxConnectionsPerAddress applies. Returns why the request is refused, if it is.
   */
  private takeForwardedClient(
    req: IncomingMessage,
    res: ServerResponse,
    conn: ConnectionInfo,
  ): { status: number; message: string } | undefined {
    const trusted = this.ctx.config.trustedProxies;
    const proxy = plainAddress(req.socket.remoteAddress);
    const fromWorker = this.forwardedByWorker(req);
    const header = req.headers['x-forwarded-for'];
    let client: ForwardedClient;
    if (fromWorker !== undefined) client = { address: fromWorker };
    else if (trusted !== undefined && trusted.allows(proxy))
      client = forwardedClient(Array.isArray(header) ? header.join(', ') : header, proxy, trusted);
    else return undefined;
    if ('error' in client) {
      return { status: 400, message: `Bad request from proxy ${proxy}: ${client.error}.` };
    }
    conn.remoteAddress = client.address;
    conn.proxyAddress = proxy;
    res.once('close', () => {
      conn.remoteAddress = proxy;
      conn.proxyAddress = undefined;
    });
    if (client.address === proxy) return undefined;
    const perAddress = this.ctx.access.addressLimitReason(client.address, conn);
    if (perAddress === undefined) return undefined;
    this.ctx.counters.refusedConnections++;
    this.refusals.warn(client.address, 'request refused: too many from one address', { protocol: 'http', proxy });
    return { status: 503, message: perAddress };
  }

  /** The client a request forwarded by another worker stands for (its secret checked), else undefined. */
  private forwardedByWorker(req: IncomingMessage): string | undefined {
    const secret = this.internalSecret;
    if (secret === undefined || !this.internalSockets.has(req.socket)) return undefined;
    const given = req.headers[FORWARD_HEADERS.secret];
    const client = req.headers[FORWARD_HEADERS.client];
    if (typeof given !== 'string' || typeof client !== 'string' || isIP(client) === 0) return undefined;
    const bytes = Buffer.from(given);
    return bytes.length === secret.length && timingSafeEqual(bytes, secret) ? client : undefined;
  }

  private logAccess(req: IncomingMessage, res: ServerResponse, conn: ConnectionInfo): void {
    const accessLog = this.ctx.accessLog;
    if (accessLog === undefined) return;
    let bytesAtStart = socketBytesWritten(req.socket);
    const at = new Date();
    res.once('close', () => {
      accessLog.write({
        remoteAddress: conn.remoteAddress,
        method: req.method ?? '-',
        url: redactUrl(req.url),
        httpVersion: req.httpVersion,
        status: res.statusCode,
        bytes: Math.max(0, socketBytesWritten(req.socket) - bytesAtStart),
        at,
      });
      bytesAtStart = socketBytesWritten(req.socket);
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
      const redirect = findByName(config.redirects, name === '' ? 'index.html' : name);
      if (redirect !== undefined && name !== '') return sendRedirect(res, redirect.url);
      if (!isRead(method)) return this.methodNotAllowed(res, name, 'GET, HEAD');
      return sendHtml(
        res,
        200,
        this.pages.index(req.headers.host, credentialQuery(credentialsFrom(url.searchParams, undefined))),
      );
    }

    const redirect = findByName(config.redirects, name);
    if (redirect !== undefined) return sendRedirect(res, redirect.url);

    // Other parts (HLS, the player, transcoded streams, the API) claim their URLs first.
    for (const route of this.routes) {
      if (route.handle(req, res, name, url, conn)) return;
    }
    const stream = this.ctx.access.resolve(name)?.stream;
    if (stream !== undefined) return this.routeStream(req, res, conn, stream, url);
    if (name === 'stat.html') {
      if (!isRead(method)) return this.methodNotAllowed(res, name, 'GET, HEAD');
      if (!config.statusAcl.allows(conn.remoteAddress)) {
        return sendText(res, 403, `Your address ${conn.remoteAddress} may not read the status page (StatusACL).`);
      }
      return sendHtml(res, 200, this.pages.status());
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
      this.authorizeThen(req, res, conn, { action: 'publish', feed: feed.key, stream: undefined }, url, () =>
        detach(handlePublish(this.ctx, req, res, feed, conn, this.ctx.ingestBudgets.pes), this.ctx.log, 'HTTP publish', {
          feed: feed.key,
        }),
      );
      return;
    }

    const dot = name.lastIndexOf('.');
    const suffix = dot >= 0 ? name.slice(dot) : '';
    const format = FEED_OUTPUT_SUFFIXES[suffix];
    const feed = this.ctx.feeds.get(format !== undefined ? name.slice(0, dot) : name);
    if (feed !== undefined && format !== undefined) {
      if (!isRead(method)) return this.methodNotAllowed(res, name, 'GET, HEAD');
      const target = { name: feed.key, feed, stream: undefined };
      const relayFrom = req.headers[RELAY_HEADER];
      const relay = typeof relayFrom === 'string' && format === 'mpegts';
      const loop = relay ? this.ctx.cluster?.relayLoop(feed.key, relayFrom) : undefined;
      if (loop !== undefined) return sendText(res, 508, loop);
      admitHttp(this.ctx, req, res, conn, target, url, () =>
        handleRead(this.ctx, req, res, { feed, format, variant: plainVariant, name, maxTimeSeconds: 0, relay }, conn),
      );
      return;
    }
    if (feed !== undefined && isRead(method) && /\.ffm$/i.test(name)) {
      // ffmpeg <= 3.4 publishing to /feed1.ffm asks first which streams to encode (ref §3.2).
      this.authorizeThen(req, res, conn, { action: 'publish', feed: feed.key, stream: undefined }, url, () =>
        answerFfmHandshake(this.ctx, req, res, feed),
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

  /** A `Format rtp` stream is played over RTSP: 404 with its rtsp:// URL. */
  private rtspOnly(res: ServerResponse, stream: StreamConfig): void {
    const port = this.ctx.config.rtsp.port;
    sendText(
      res,
      404,
      `/${stream.name} is a Format rtp stream: play it over RTSP${port !== undefined ? ` at rtsp://HOST:${port}/${stream.name}` : ' (RTSP is off: set RTSPPort)'}.`,
    );
  }

  private routeStream(req: IncomingMessage, res: ServerResponse, conn: ConnectionInfo, stream: StreamConfig, url: URL): void {
    const method = req.method ?? 'GET';
    if (!isRead(method)) return this.methodNotAllowed(res, stream.name, 'GET, HEAD');
    if (stream.format.support === 'status') {
      // ffserver's status stream: its ACL guards the page.
      this.authorizeThen(req, res, conn, { action: 'read', feed: undefined, stream: stream.name }, url, () =>
        sendHtml(res, 200, this.pages.status()),
      );
      return;
    }
    if (stream.feed === undefined && stream.file !== undefined && stream.format.support === 'rtp') {
      // ffserver's test1-rtsp.mpg: a file played over RTSP (rtsp/server.ts, transcode/file-feed.ts).
      this.rtspOnly(res, stream);
      return;
    }
    if (stream.feed === undefined && stream.file !== undefined && stream.format.support !== 'obsolete') {
      // ffserver's file streams: each viewer from the file's start, at its pace (file-stream.ts).
      this.authorizeThen(req, res, conn, { action: 'read', feed: undefined, stream: stream.name }, url, () =>
        serveFileStream(req, res, stream, this.ctx.config.ffmpegPath, this.ctx.log),
      );
      return;
    }
    const feed = stream.feed !== undefined ? this.ctx.feeds.get(stream.feed) : undefined;
    if (feed === undefined || this.notServed(res, stream) !== undefined) return;
    admitHttp(this.ctx, req, res, conn, { name: stream.name, feed, stream }, url, () =>
      this.serveStream(req, res, conn, stream, feed),
    );
  }

  /** Answers a stream this listener does not serve (status pages, obsolete formats, file or encoded streams). */
  private notServed(res: ServerResponse, stream: StreamConfig): true | undefined {
    const format = stream.format;
    if (format.support === 'status') return (sendHtml(res, 200, this.pages.status()), true);
    if (format.support === 'obsolete') {
      sendText(res, 501, `/${stream.name} uses Format ${format.name}: ${format.alternative ?? 'not served by Feedcast'}.`);
      return true;
    }
    if (stream.feed === undefined) {
      sendText(
        res,
        501,
        `/${stream.name} is a file-backed stream (File ${stream.file ?? '?'}), which Feedcast does not serve yet.`,
      );
      return true;
    }
    const feed = this.ctx.feeds.get(stream.feed);
    if (feed === undefined) {
      sendText(res, 404, `/${stream.name}: its feed ${stream.feed} does not exist.`);
      return true;
    }
    if (format.support === 'rtp') {
      this.rtspOnly(res, stream);
      return true;
    }
    if (format.support !== 'passthrough' || stream.needsTranscode || (format.name !== 'flv' && format.name !== 'mpegts')) {
      sendText(
        res,
        501,
        `/${stream.name} needs encoding (Format ${format.name}${stream.needsTranscode ? ' with its own codec settings' : ''}), which this Feedcast version does not do yet. ` +
          `Read the feed as published at /${feed.key}.flv or /${feed.key}.ts.`,
      );
      return true;
    }
    return undefined;
  }

  private serveStream(
    req: IncomingMessage,
    res: ServerResponse,
    conn: ConnectionInfo,
    stream: StreamConfig,
    feed: Feed,
  ): Promise<void> {
    return handleRead(
      this.ctx,
      req,
      res,
      {
        feed,
        format: stream.format.name as PassthroughFormat,
        variant: { noAudio: stream.noAudio, noVideo: stream.noVideo, metadata: stream.metadata },
        name: stream.name,
        maxTimeSeconds: stream.maxTimeSeconds,
      },
      conn,
    );
  }

  /**
   * Runs the authorisation policy (ACL, secrets, tokens, hooks, callback) for a publish or read, then
   * `serve` when allowed; else answers 401/403/503 or redirects, with one log line (read-gate.ts).
   */
  private authorizeThen(
    req: IncomingMessage,
    res: ServerResponse,
    conn: ConnectionInfo,
    what: Pick<AuthRequest, 'action' | 'feed' | 'stream'>,
    url: URL,
    serve: () => void,
  ): void {
    authorizeHttp(this.ctx, req, res, conn, what, url, serve);
  }

  private methodNotAllowed(res: ServerResponse, name: string, allow: string): void {
    sendText(res, 405, `/${name} accepts ${allow} only.`, { Allow: allow });
  }
}

function isRead(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/**
 * Answers a connection refused before its first request and closes it at once (issue 25): the
 * listener is half-open, so a peer that never closes its side would otherwise keep the socket.
 */
function refuseSocket(socket: Socket, answer: string): void {
  socket.on('error', () => undefined);
  socket.end(answer);
  setTimeout(() => socket.destroy(), 1000).unref();
}
