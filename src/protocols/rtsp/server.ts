// The RTSP 1.0 listener (RFC 2326; ffserver ref §4): connections, the request framer, the session
// table with timeouts, and method dispatch. Every feed is playable at rtsp://host:port/KEY, declared
// `Format rtp` streams by name; a publisher ANNOUNCEs and RECORDs to rtsp://host:port/KEY. A PLAY
// may start in the past of a feed with a File (range.ts); a reader of a feed whose publisher is an
// on-demand Launch/Source child starts that child and holds it while its session lives.

import { createServer, type Server, type Socket } from 'node:net';
import type { ServerConfig, StreamConfig } from '../../config/config.js';
import type { ConnectionInfo } from '../../access/connections.js';
import { FeedBusyError, FeedcastError, LimitExceededError, MalformedInputError } from '../../errors.js';
import type { Feed } from '../../feed/feed.js';
import type { Logger } from '../../observability/logger.js';
import { rtspRefusalStatus, type Admission, type ReadTarget, type Refusal } from '../../access/access.js';
import { credentialsFrom, redactUrl, type AuthRequest } from '../../access/auth.js';
import { RefusalLog } from '../../observability/refusal-log.js';
import type { ProtocolContext } from '../protocol-context.js';
import { variantFilter } from '../../streams/output-registry.js';
import { describeTarget, PlaySession, type PlayTarget } from './from-feed.js';
import {
  formatResponse,
  parseRtspUrl,
  parseTransport,
  PUBLIC_METHODS,
  RtspStatus,
  sessionIdOf,
  type RtspTarget,
  type TransportSpec,
} from './messages.js';
import { MulticastSender } from './multicast.js';
import { RtspFramer, type RtspRequest } from './request-parser.js';
import { playStartOf, type PlayStart } from './range.js';
import { RtpPacketizers } from './rtp-output.js';
import { newSessionId, RtspError, type ControlConnection, type RtspSession } from './session.js';
import { readAnnouncement, RecordSession, type Announcement } from './to-feed.js';
import { DEFAULT_RTP_PORTS, type PortRange } from './udp.js';
import { findByName } from '../../config/names.js';
import { FORMATS } from '../../config/formats.js';
import type { TranscoderManager } from '../../transcode/transcoder-manager.js';
import { detach } from '../../observability/detach.js';
import { FileFeed } from '../../transcode/file-feed.js';
import { resolveFfmpeg } from '../../transcode/ffmpeg-args.js';
import { nativeUdpSendStatus } from './native-udp-send.js';

export interface RtspServerOptions {
  /** Encodes `Format rtp` streams that have encoder directives (none: such streams answer 503). */
  transcoders?: TranscoderManager;
  /** A UDP session without a request or RTCP for this long is ended (advertised as Session timeout). */
  sessionTimeoutMs?: number;
  /** Ports the server binds for RTP/RTCP over UDP. */
  rtpPorts?: PortRange;
  /** How long DESCRIBE waits for a feed without tracks to get a publisher. */
  describeWaitMs?: number;
  /** How long DESCRIBE (or SETUP) waits for an on-demand Launch/Source feed to get its tracks. */
  sourceStartWaitMs?: number;
  /**
   * A control connection with no session and no request for this long is closed (default IdleTimeout);
   * the first request must come within RequestHeaderTimeout of the connection.
   */
  idleTimeoutMs?: number;
  /** Start the always-on multicast senders of streams with MulticastAddress (default true). */
  multicast?: boolean;
  /** Interface address multicast is sent from (default: the system's choice). */
  multicastInterface?: string;
}

const DEFAULT_SESSION_TIMEOUT_MS = 60_000;
const DEFAULT_SOURCE_START_WAIT_MS = 10_000;
/** Bytes of interleaved data a slow control connection may hold before requests stop being read. */
const MAX_CONTROL_BUFFER = 1024 * 1024;

/** What a method handler answers with; `after` runs once the response is written (PLAY starts sending). */
interface Reply {
  headers: [string, string][];
  body?: string;
  after?: () => void;
}

class Connection implements ControlConnection {
  readonly socket: Socket;
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly info: ConnectionInfo;
  readonly framer = new RtspFramer();
  private readonly channels = new Map<number, (data: Buffer) => void>();
  /** Announcements made on this connection, by name, waiting for SETUP. */
  readonly announcements = new Map<string, Announcement>();
  readonly sessions = new Set<RtspSession>();
  /**
   * On-demand sources started by a DESCRIBE on this connection, by feed key: held until a session
   * of that feed takes over (SETUP) or the connection closes.
   */
  readonly sourceLeases = new Map<string, () => void>();
  /** File-backed streams this connection plays, by stream name: one ffmpeg reading the file each (file-feed.ts). */
  readonly fileFeeds = new Map<string, FileFeed>();
  queue: Promise<void> = Promise.resolve();
  closed = false;
  /** Running while a request is partly received (RequestHeaderTimeout). */
  requestTimer: NodeJS.Timeout | undefined;
  /** When bytes last came in (or the connection opened): the idle sweep's clock. */
  lastInputMs = Date.now();
  /** Whether a whole request has arrived: before that, only RequestHeaderTimeout is allowed. */
  requested = false;
  /** Requests received and not answered yet: a connection waiting for its answer is not idle. */
  inFlight = 0;

  constructor(socket: Socket, info: ConnectionInfo) {
    this.socket = socket;
    this.remoteAddress = info.remoteAddress;
    this.localAddress = plainAddress(socket.localAddress) ?? '127.0.0.1';
    this.info = info;
  }

  onChannel(channel: number, handler: (data: Buffer) => void): void {
    this.channels.set(channel, handler);
  }
  offChannel(channel: number): void {
    this.channels.delete(channel);
  }
  channel(channel: number): ((data: Buffer) => void) | undefined {
    return this.channels.get(channel);
  }
}

function plainAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class RtspServer {
  private readonly ctx: ProtocolContext;
  private readonly options: Required<Omit<RtspServerOptions, 'multicastInterface' | 'transcoders'>> & {
    multicastInterface: string | undefined;
    transcoders: TranscoderManager | undefined;
  };
  private readonly log: Logger;
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly sessions = new Map<string, RtspSession>();
  readonly rtp: RtpPacketizers;
  private readonly multicast: MulticastSender[] = [];
  private timeoutTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly refusals: RefusalLog;
  /** Refused sockets during their last second (the listener waits for them when it closes). */
  private readonly refusedSockets = new Set<Socket>();
  private port = 0;
  /** Options given to the constructor win over the config (tests). */
  private readonly overrides: RtspServerOptions;

  /** `IdleTimeout` applies to every connection at its next check; PublisherGracePeriod to the next DESCRIBE. */
  applyConfig(next: ServerConfig): void {
    this.options.idleTimeoutMs = this.overrides.idleTimeoutMs ?? next.idleTimeoutMs;
    this.options.describeWaitMs = this.overrides.describeWaitMs ?? Math.min(next.publisherGraceMs, 10_000);
  }

  /** The settings in force (tests). */
  get settings(): Readonly<{ idleTimeoutMs: number; describeWaitMs: number }> {
    return this.options;
  }

  constructor(ctx: ProtocolContext, options: RtspServerOptions = {}) {
    this.ctx = ctx;
    this.overrides = options;
    this.options = {
      sessionTimeoutMs: options.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS,
      rtpPorts: options.rtpPorts ?? DEFAULT_RTP_PORTS,
      describeWaitMs: options.describeWaitMs ?? Math.min(ctx.config.publisherGraceMs, 10_000),
      sourceStartWaitMs: options.sourceStartWaitMs ?? DEFAULT_SOURCE_START_WAIT_MS,
      idleTimeoutMs: options.idleTimeoutMs ?? ctx.config.idleTimeoutMs,
      multicast: options.multicast ?? true,
      multicastInterface: options.multicastInterface,
      transcoders: options.transcoders,
    };
    this.log = ctx.log.child({ protocol: 'rtsp' });
    this.refusals = new RefusalLog(this.log);
    this.rtp = new RtpPacketizers(ctx.outputs, ctx.log);
    this.server = createServer((socket) => this.onConnection(socket));
  }

  /** Sessions now open (for the status page and tests). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      // backlog: Node's default of 511 overflows when a thousand players arrive at once (as HTTP's listener).
      this.server.listen({ port, host, backlog: 4096 }, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        this.port = typeof address === 'object' && address !== null ? address.port : port;
        this.timeoutTimer = setInterval(() => this.expireSessions(), Math.min(5000, this.options.sessionTimeoutMs / 2));
        this.timeoutTimer.unref();
        const sweepMs = Math.max(100, Math.min(1000, this.ctx.config.requestHeaderTimeoutMs / 2, this.options.idleTimeoutMs / 2));
        this.idleTimer = setInterval(() => this.closeIdleConnections(), sweepMs);
        this.idleTimer.unref();
        if (this.options.multicast) this.startMulticast();
        this.log.info('RTSP listening', { rtsp: `${host}:${this.port}`, udpSend: nativeUdpSendStatus });
        resolve(this.port);
      });
    });
  }

  close(): Promise<void> {
    if (this.timeoutTimer !== undefined) clearInterval(this.timeoutTimer);
    if (this.idleTimer !== undefined) clearInterval(this.idleTimer);
    for (const m of this.multicast.splice(0)) m.close();
    for (const s of [...this.sessions.values()]) s.close('server stopping');
    for (const c of this.connections) c.socket.destroy();
    for (const socket of this.refusedSockets) socket.destroy();
    this.rtp.closeAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private startMulticast(): void {
    for (const stream of this.ctx.config.streams) {
      const mc = stream.multicast;
      if (mc === undefined) continue;
      const defaultPort = this.multicastDefaultPort(stream);
      const target = this.streamTarget(stream);
      if (target === undefined) {
        this.log.warn('multicast stream not served: it needs a passthrough feed', { stream: stream.name });
        continue;
      }
      const sender = new MulticastSender(this.ctx, this.rtp, target, mc, {
        defaultPort,
        interfaceAddress: this.options.multicastInterface,
      });
      this.multicast.push(sender);
      detach(sender.start(), this.log, 'multicast sender', { stream: stream.name });
    }
  }

  /** Port of the first track of a multicast stream without MulticastPort (6000, 6100, ... in config order). */
  private multicastDefaultPort(stream: StreamConfig | undefined): number {
    let next = 6000;
    for (const s of this.ctx.config.streams) {
      if (s.multicast === undefined) continue;
      if (s === stream) return next;
      if (s.multicast.port === undefined) next += 100;
    }
    return next;
  }

  private onConnection(socket: Socket): void {
    const remote = plainAddress(socket.remoteAddress) ?? 'unknown';
    // A refused connection gets its 503 at once and is closed: it is never counted and holds no slot.
    const refused =
      this.ctx.connections.size >= this.ctx.config.maxClients
        ? `Server too busy: the limit is MaxClients ${this.ctx.config.maxClients}`
        : this.ctx.access.addressLimitReason(remote);
    if (refused !== undefined) {
      this.ctx.counters.refusedConnections++;
      this.refusals.warn(remote, 'RTSP connection refused', { reason: refused });
      refuseSocket(
        socket,
        formatResponse(RtspStatus.serviceUnavailable, undefined, [['Content-Type', 'text/plain']], `${refused}\n`),
        this.refusedSockets,
      );
      return;
    }
    const info = this.ctx.connections.open('RTSP', remote);
    info.state = 'RTSP_WAIT_REQUEST';
    const conn = new Connection(socket, info);
    this.connections.add(conn);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('error', (err) => this.log.debug('RTSP connection error', { from: remote, err: err.message }));
    socket.on('close', () => {
      if (conn.requestTimer !== undefined) clearTimeout(conn.requestTimer);
      conn.closed = true;
      this.connections.delete(conn);
      for (const s of [...conn.sessions]) s.connectionClosed(conn);
      for (const release of conn.sourceLeases.values()) release();
      conn.sourceLeases.clear();
      for (const file of conn.fileFeeds.values()) file.close();
      conn.fileFeeds.clear();
      this.ctx.connections.close(info);
    });
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn.closed) return;
    conn.info.bytesIn += chunk.length;
    conn.lastInputMs = Date.now();
    let messages;
    try {
      messages = conn.framer.push(chunk);
    } catch (err) {
      if (!(err instanceof FeedcastError)) throw err;
      const status = err instanceof LimitExceededError ? RtspStatus.requestEntityTooLarge : RtspStatus.badRequest;
      this.log.warn('RTSP request unreadable, closing the connection', { from: conn.remoteAddress, status, err: err.message });
      conn.queue = conn.queue.then(() => {
        if (!conn.socket.destroyed)
          conn.socket.end(formatResponse(status, undefined, [['Content-Type', 'text/plain']], `${err.message}\n`));
      });
      conn.closed = true;
      return;
    }
    this.armRequestTimer(conn);
    for (const m of messages) {
      if (m.kind === 'interleaved') {
        conn.channel(m.channel)?.(m.data);
        continue;
      }
      const request = m;
      conn.requested = true;
      conn.inFlight++;
      conn.queue = conn.queue
        .then(() => this.handle(conn, request))
        .catch((err: unknown) => {
          this.log.error('RTSP request handling failed', { method: request.method, err });
          conn.socket.destroy();
        })
        .finally(() => {
          conn.inFlight--;
          conn.lastInputMs = Date.now();
        });
    }
    if (conn.framer.buffered > MAX_CONTROL_BUFFER) conn.socket.destroy();
  }

  /**
   * Slowloris defence: a request that has started must be complete within RequestHeaderTimeout;
   * otherwise the connection is closed (408). Interleaved data is framed at once, so it never waits.
   */
  private armRequestTimer(conn: Connection): void {
    if (conn.framer.buffered === 0) {
      if (conn.requestTimer !== undefined) clearTimeout(conn.requestTimer);
      conn.requestTimer = undefined;
      return;
    }
    if (conn.requestTimer !== undefined) return;
    const ms = this.ctx.config.requestHeaderTimeoutMs;
    conn.requestTimer = setTimeout(() => {
      conn.requestTimer = undefined;
      if (conn.closed || conn.framer.buffered === 0) return;
      this.log.warn('RTSP request incomplete: closing the connection', { from: conn.remoteAddress, timeoutMs: ms });
      conn.closed = true;
      conn.socket.end(
        formatResponse(
          RtspStatus.requestTimeout,
          undefined,
          [['Content-Type', 'text/plain']],
          `the request was not complete within ${ms} ms\n`,
        ),
      );
      setTimeout(() => conn.socket.destroy(), 2000).unref();
    }, ms);
    conn.requestTimer.unref();
  }

  private async handle(conn: Connection, req: RtspRequest): Promise<void> {
    if (conn.socket.destroyed) return;
    const cseq = req.headers.get('cseq');
    conn.info.state = 'RTSP_SEND_REPLY';
    let response: Buffer;
    let closeAfter = false;
    let after: (() => void) | undefined;
    try {
      const result = await this.dispatch(conn, req);
      response = formatResponse(RtspStatus.ok, cseq, result.headers, result.body);
      after = result.after;
    } catch (err) {
      let status: number;
      let message: string;
      let headers: readonly (readonly [string, string])[] = [];
      if (err instanceof RtspError) {
        ({ status, message, headers } = err);
      } else if (err instanceof MalformedInputError) {
        status = RtspStatus.badRequest;
        message = err.message;
      } else {
        status = RtspStatus.internalError;
        message = 'internal error; the server log has the details';
        this.log.error('RTSP request failed', { method: req.method, url: redactUrl(req.url), err });
      }
      this.log.warn('RTSP request refused', {
        from: conn.remoteAddress,
        method: req.method,
        url: redactUrl(req.url.slice(0, 200)),
        status,
        reason: message,
      });
      closeAfter = status === RtspStatus.versionNotSupported;
      response = formatResponse(status, cseq, [...headers, ['Content-Type', 'text/plain']], `${message}\n`);
    }
    if (conn.socket.destroyed) return;
    if (closeAfter) conn.socket.end(response);
    else conn.socket.write(response);
    conn.info.bytesOut += response.length;
    after?.();
    if (conn.sessions.size === 0) conn.info.state = 'RTSP_WAIT_REQUEST';
  }

  private async dispatch(conn: Connection, req: RtspRequest): Promise<Reply> {
    if (req.version !== 'RTSP/1.0') {
      throw new RtspError(RtspStatus.versionNotSupported, `${req.version} is not supported; this server speaks RTSP/1.0`);
    }
    const require = req.headers.get('require');
    if (require !== undefined) {
      throw new RtspError(RtspStatus.optionNotSupported, `no option in "Require: ${require.slice(0, 100)}" is supported`, [
        ['Unsupported', require],
      ]);
    }
    const session = this.lookupSession(req);
    if (session !== undefined) session.lastSeenMs = Date.now();
    switch (req.method) {
      case 'OPTIONS':
        return { headers: [['Public', PUBLIC_METHODS]] };
      case 'DESCRIBE':
        return this.describe(conn, req);
      case 'ANNOUNCE':
        return this.announce(conn, req);
      case 'SETUP':
        return this.setup(conn, req, session);
      case 'PLAY': {
        const s = this.requireSession(req, session, 'play');
        const start = rangeOf(() => playStartOf(req.headers.get('range'), [parseRtspUrl(req.url).query, s.setupQuery]));
        // A file stream's first PLAY reads the file from its first frame (DESCRIBE ran it to learn its tracks).
        const file = conn.fileFeeds.get(s.name);
        if (file !== undefined && s.state !== 'playing' && !s.played) file.rewind();
        const reply = await s.play(start);
        return { after: reply.start, headers: [['Session', this.sessionHeader(s)], ...reply.headers] };
      }
      case 'PAUSE': {
        const s = this.requireSession(req, session, 'play');
        if (s.state !== 'playing') throw new RtspError(RtspStatus.methodNotValidInThisState, 'PAUSE while not playing');
        s.pause();
        return { headers: [['Session', this.sessionHeader(s)]] };
      }
      case 'RECORD': {
        const s = this.requireSession(req, session, 'record');
        try {
          // Workers N: another worker's publisher of this feed is refused here too (FeedManager.claimPublisher).
          await this.ctx.feeds.claimPublisher(s.feed, 'rtsp');
          if (s.isClosed) throw new RtspError(RtspStatus.sessionNotFound, 'the session closed before RECORD');
          s.record();
        } catch (err) {
          if (err instanceof FeedBusyError) {
            // 455: the feed (the resource) is in a state where it cannot be recorded: it already has a
            // publisher. Only after PublisherTimeout of silence may a newcomer take over.
            throw new RtspError(
              RtspStatus.methodNotValidInThisState,
              `${err.message}. Only one publisher may send to a feed; retry after ${Math.ceil(this.ctx.config.publisherTimeoutMs / 1000)} s of silence (PublisherTimeout).`,
            );
          }
          throw err;
        }
        return { headers: [['Session', this.sessionHeader(s)]] };
      }
      case 'TEARDOWN': {
        const s = this.requireSession(req, session, undefined);
        s.close('TEARDOWN');
        return { headers: [['Session', s.id]] };
      }
      case 'GET_PARAMETER':
      case 'SET_PARAMETER': {
        if (req.headers.has('session')) this.requireSession(req, session, undefined);
        return { headers: session !== undefined ? [['Session', this.sessionHeader(session)]] : [] };
      }
      default:
        throw new RtspError(RtspStatus.methodNotAllowed, `method ${req.method} is not supported`, [['Allow', PUBLIC_METHODS]]);
    }
  }

  private sessionHeader(s: RtspSession): string {
    return `${s.id};timeout=${Math.round(this.options.sessionTimeoutMs / 1000)}`;
  }

  private lookupSession(req: RtspRequest): RtspSession | undefined {
    const id = sessionIdOf(req.headers.get('session'));
    return id === undefined ? undefined : this.sessions.get(id);
  }

  private requireSession(req: RtspRequest, session: RtspSession | undefined, mode: 'play'): PlaySession;
  private requireSession(req: RtspRequest, session: RtspSession | undefined, mode: 'record'): RecordSession;
  private requireSession(req: RtspRequest, session: RtspSession | undefined, mode: undefined): RtspSession;
  private requireSession(req: RtspRequest, session: RtspSession | undefined, mode: 'play' | 'record' | undefined): RtspSession {
    const id = sessionIdOf(req.headers.get('session'));
    if (id === undefined) throw new RtspError(RtspStatus.sessionNotFound, `${req.method} needs a Session header`);
    if (session === undefined)
      throw new RtspError(RtspStatus.sessionNotFound, `no session ${id.slice(0, 40)} (ended, timed out or never made)`);
    const target = parseRtspUrl(req.url);
    if (req.url !== '*' && target.name !== '' && target.name !== session.name) {
      throw new RtspError(RtspStatus.sessionNotFound, `session ${id} is about ${session.name}, not ${target.name}`);
    }
    if (mode !== undefined && session.mode !== mode) {
      throw new RtspError(RtspStatus.methodNotValidInThisState, `${req.method} in a ${session.mode} session`);
    }
    if (mode === 'play' && session instanceof PlaySession) return session;
    if (mode === 'record' && session instanceof RecordSession) return session;
    return session;
  }

  /**
   * What a play URL reads, for the policy and the admission (any case; 404 / 501 otherwise): a feed, or a
   * declared stream with the feed it comes from, or a file stream with this connection's private feed of it.
   * Starts nothing (an encoder or a file's ffmpeg starts in playTarget, once allowed).
   */
  private readTargetOf(url: RtspTarget, conn: Connection): ReadTarget & { feed: Feed } {
    const resolved = this.ctx.access.resolve(url.name);
    const stream = resolved?.stream;
    if (stream !== undefined && isFileStream(stream))
      return { name: stream.name, feed: this.fileFeedOf(stream, conn).feed, stream };
    if (stream !== undefined) {
      const source = resolved?.feed;
      const encodable = stream.needsTranscode && stream.format.support === 'rtp' && stream.multicast === undefined;
      if (source === undefined || (!encodable && this.streamTarget(stream) === undefined)) {
        throw new RtspError(
          RtspStatus.notImplemented,
          `${stream.name} needs ${stream.feed === undefined ? 'a file source' : 'encoding'}, which RTSP does not serve yet; play the feed as published at rtsp://HOST:${this.port}/${source?.key ?? 'FEED'}`,
        );
      }
      return { name: stream.name, feed: source, stream };
    }
    const feed = resolved?.feed;
    if (feed === undefined) {
      throw new RtspError(
        RtspStatus.notFound,
        `no feed or stream named "${url.name.slice(0, 100)}"; the list is on the HTTP index page`,
      );
    }
    return { name: feed.key, feed, stream: undefined };
  }

  /** The RTP source of an allowed read: the feed, a passthrough stream of it, or its encoder's output (held by `conn`). */
  private playTarget(read: ReadTarget & { feed: Feed }, conn: Connection): PlayTarget {
    const stream = read.stream;
    if (stream === undefined) {
      return {
        name: read.name,
        feed: read.feed,
        variant: { noAudio: false, noVideo: false },
        stream: undefined,
        multicast: undefined,
      };
    }
    const t = this.streamTarget(stream, conn);
    if (t === undefined) throw new RtspError(RtspStatus.notImplemented, `${stream.name} cannot be sent as RTP`);
    return t;
  }

  /** The authorisation policy alone (DESCRIBE, ANNOUNCE: no reader slot); a refusal becomes 401, 403, 503 or 302. */
  private async authorize(
    conn: Connection,
    req: RtspRequest,
    url: RtspTarget,
    what: Pick<AuthRequest, 'action' | 'feed' | 'stream'>,
  ): Promise<void> {
    const decision = await this.ctx.access.authorize({
      ...what,
      protocol: 'rtsp',
      address: conn.remoteAddress,
      credentials: credentialsFrom(url.query, req.headers.get('authorization')),
    });
    if (decision.kind === 'allow') return;
    if (decision.kind === 'redirect') {
      throw rtspRefusal({ kind: 'refused', cause: 'redirect', status: 302, reason: '', location: decision.location });
    }
    const cause = decision.status === 401 ? 'unauthorized' : decision.status === 403 ? 'forbidden' : 'unavailable';
    throw rtspRefusal({ kind: 'refused', cause, status: decision.status, reason: decision.reason });
  }

  /** SETUP of a new play session: access/admit (policy, MaxReaders, MaxBandwidth, on-demand source). */
  private async admitPlay(conn: Connection, req: RtspRequest, url: RtspTarget, target: ReadTarget): Promise<Admission> {
    const admission = await this.ctx.access.admit({
      protocol: 'rtsp',
      target,
      address: conn.remoteAddress,
      credentials: credentialsFrom(url.query, req.headers.get('authorization')),
    });
    if (admission.kind === 'refused') throw rtspRefusal(admission);
    return admission;
  }

  /**
   * A declared stream served as RTP: any format when it has multicast, else `Format rtp`. A `Format rtp` stream
   * with encoder directives (ffserver's RTSP recipe) is encoded by the transcoder as its FLV twin would be (H.264 +
   * AAC by default): its output feed is the RTP source, held for this connection.
   */
  private streamTarget(stream: StreamConfig, conn?: Connection): PlayTarget | undefined {
    if (isFileStream(stream) && conn !== undefined) {
      const file = this.fileFeedOf(stream, conn);
      file.ensureStarted();
      const variant = { noAudio: stream.noAudio, noVideo: stream.noVideo };
      return { name: stream.name, feed: file.feed, variant, stream, multicast: undefined };
    }
    if (stream.feed === undefined) return undefined;
    if (stream.needsTranscode) {
      if (stream.format.support !== 'rtp' || stream.multicast !== undefined || conn === undefined) return undefined;
      return this.encodedTarget(stream, conn);
    }
    if (stream.format.support !== 'rtp' && stream.multicast === undefined) return undefined;
    const feed = this.ctx.feeds.get(stream.feed);
    if (feed === undefined) return undefined;
    return {
      name: stream.name,
      feed,
      variant: { noAudio: stream.noAudio, noVideo: stream.noVideo },
      stream,
      multicast: stream.multicast,
    };
  }

  /** This connection's reader of a file stream (ffserver's `File`): made at its first request, closed with it. */
  private fileFeedOf(stream: StreamConfig & { file: string }, conn: Connection): FileFeed {
    const existing = conn.fileFeeds.get(stream.name);
    if (existing !== undefined) return existing;
    const ffmpeg = resolveFfmpeg(this.ctx.config.ffmpegPath);
    if (!ffmpeg.ok) {
      throw new RtspError(
        RtspStatus.serviceUnavailable,
        `${stream.name} is read from its file by ffmpeg, which cannot run: ${ffmpeg.reason}`,
      );
    }
    const file = new FileFeed(stream, this.ctx.feeds, ffmpeg.path, this.log);
    conn.fileFeeds.set(stream.name, file);
    return file;
  }

  private encodedTarget(stream: StreamConfig, conn: Connection): PlayTarget {
    const manager = this.options.transcoders;
    const flv = FORMATS['flv'];
    if (manager === undefined || flv === undefined) {
      throw new RtspError(RtspStatus.serviceUnavailable, `${stream.name} needs encoding, and no transcoder runs in this server`);
    }
    const served = manager.open({ ...stream, format: flv });
    if (served.kind === 'error') throw new RtspError(served.status, served.message);
    if (served.kind !== 'feed') {
      served.release();
      throw new RtspError(RtspStatus.notImplemented, `${stream.name}: this encoding cannot be sent as RTP`);
    }
    // One hold per connection on the encoder (DESCRIBE, SETUP and PLAY each ask).
    const lease = `encode:${stream.name}`;
    if (conn.sourceLeases.has(lease)) served.release();
    else conn.sourceLeases.set(lease, served.release);
    return {
      name: stream.name,
      feed: served.feed,
      variant: { noAudio: stream.noAudio, noVideo: stream.noVideo },
      stream,
      multicast: undefined,
    };
  }

  private async describe(conn: Connection, req: RtspRequest): Promise<{ headers: [string, string][]; body: string }> {
    const accept = req.headers.get('accept');
    if (accept !== undefined && !accept.toLowerCase().includes('application/sdp') && !accept.includes('*/*')) {
      throw new RtspError(
        RtspStatus.notAcceptable,
        `DESCRIBE answers application/sdp only, the client accepts "${accept.slice(0, 80)}"`,
      );
    }
    const url = parseRtspUrl(req.url);
    const read = this.readTargetOf(url, conn);
    await this.authorize(conn, req, url, { action: 'read', feed: read.feed.key, stream: read.stream?.name });
    const target = this.playTarget(read, conn);
    const packetizer = this.rtp.packetizerOf(target.feed);
    let sourced = conn.sourceLeases.has(target.feed.key);
    if (!sourced) {
      const release = this.ctx.children?.acquireSource(target.feed.key);
      if (release !== undefined) {
        conn.sourceLeases.set(target.feed.key, release);
        sourced = true;
      }
    }
    await this.awaitTracks(conn, target, sourced);
    const sdp = describeTarget(target, packetizer, conn.localAddress, this.multicastDefaultPort(target.stream));
    const base = req.url.endsWith('/') ? req.url : `${req.url}/`;
    return {
      headers: [
        ['Content-Base', base],
        ['Content-Type', 'application/sdp'],
      ],
      body: sdp,
    };
  }

  /**
   * Waits (bounded) until the target's feed has a track RTP can carry: a publisher may be about to
   * connect, or an on-demand source child to start. 404 when none came.
   */
  private async awaitTracks(conn: Connection, target: PlayTarget, sourced: boolean): Promise<void> {
    const packetizer = this.rtp.packetizerOf(target.feed);
    const hasTracks = (): boolean => packetizer.sendableTracks(variantFilter(target.variant)).length > 0;
    if (hasTracks()) return;
    const waitMs = sourced ? this.options.sourceStartWaitMs : this.options.describeWaitMs;
    conn.info.state = 'WAIT_FEED';
    await waitUntil(target.feed, hasTracks, waitMs, conn.socket);
    if (hasTracks()) return;
    const tracks = target.feed.tracks.map((t) => t.codec).join(', ');
    throw new RtspError(
      RtspStatus.notFound,
      tracks !== ''
        ? `feed ${target.feed.key} has no track RTP can carry (it has ${tracks})`
        : sourced
          ? `feed ${target.feed.key}: its source (Launch/Source) produced nothing within ${Math.round(waitMs / 1000)} s`
          : `feed ${target.feed.key} has no publisher: nothing was published to it within ${Math.round(waitMs / 1000)} s`,
    );
  }

  private async announce(conn: Connection, req: RtspRequest): Promise<{ headers: [string, string][] }> {
    const url = parseRtspUrl(req.url);
    if (findByName(this.ctx.config.streams, url.name) !== undefined) {
      throw new RtspError(RtspStatus.methodNotAllowed, `${url.name} is a stream, publish to its feed instead`, [
        ['Allow', 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN'],
      ]);
    }
    const feed = this.ctx.feeds.forPublisher(url.name);
    if (feed === undefined) {
      throw new RtspError(
        RtspStatus.notFound,
        `no feed named "${url.name.slice(0, 100)}"; declare it with <Feed ${url.name.slice(0, 100)}.ffm> or enable DynamicFeeds`,
      );
    }
    await this.authorize(conn, req, url, { action: 'publish', feed: feed.key, stream: undefined });
    const announcement = readAnnouncement(feed.key, feed, req.headers.get('content-type'), req.body);
    if (conn.announcements.size >= 8 && !conn.announcements.has(url.name)) {
      throw new RtspError(RtspStatus.methodNotValidInThisState, 'more than 8 ANNOUNCEs without SETUP on one connection');
    }
    conn.announcements.set(url.name, announcement);
    this.log.info('ANNOUNCE', {
      from: conn.remoteAddress,
      feed: feed.key,
      tracks: announcement.media.map((m) => m.ingest?.track.codec ?? `unsupported ${m.format.encoding}`).join(','),
    });
    return { headers: [] };
  }

  private async setup(
    conn: Connection,
    req: RtspRequest,
    session: RtspSession | undefined,
  ): Promise<{ headers: [string, string][] }> {
    const url = parseRtspUrl(req.url);
    const transportHeader = req.headers.get('transport');
    if (transportHeader === undefined) throw new RtspError(RtspStatus.unsupportedTransport, 'SETUP needs a Transport header');
    let specs: TransportSpec[];
    try {
      specs = parseTransport(transportHeader);
    } catch (err) {
      if (err instanceof MalformedInputError) throw new RtspError(RtspStatus.unsupportedTransport, err.message);
      throw err;
    }
    if (req.headers.has('session') && session === undefined) {
      throw new RtspError(RtspStatus.sessionNotFound, `no session ${sessionIdOf(req.headers.get('session')) ?? ''}`);
    }
    const record = specs.some((s) => s.mode === 'record') || session?.mode === 'record';
    const announcement = conn.announcements.get(url.name);
    if (
      record ||
      (session === undefined && announcement !== undefined && findByName(this.ctx.config.streams, url.name) === undefined)
    ) {
      let s: RecordSession;
      if (session instanceof RecordSession) s = session;
      else if (session !== undefined)
        throw new RtspError(RtspStatus.methodNotValidInThisState, 'SETUP for record in a play session');
      else {
        if (announcement === undefined)
          throw new RtspError(RtspStatus.methodNotValidInThisState, `SETUP for record of ${url.name} without ANNOUNCE`);
        s = new RecordSession(this.ctx, newSessionId(), announcement, conn, {
          rtpPorts: this.options.rtpPorts,
          onClose: (closed) => this.dropSession(closed, conn),
        });
        conn.announcements.delete(url.name);
        this.addSession(s, conn);
      }
      if (url.name !== s.name)
        throw new RtspError(RtspStatus.sessionNotFound, `session ${s.id} records ${s.name}, not ${url.name}`);
      const index = s.mediaIndexFor(url.lastSegment, url.trackId);
      const transport = await s.setupTrack(index, specs, conn);
      return {
        headers: [
          ['Session', this.sessionHeader(s)],
          ['Transport', transport],
        ],
      };
    }
    let s: PlaySession;
    if (session instanceof PlaySession) {
      s = session;
      if (url.name !== s.name)
        throw new RtspError(RtspStatus.sessionNotFound, `session ${s.id} plays ${s.name}, not ${url.name}`);
    } else if (session !== undefined) {
      throw new RtspError(RtspStatus.methodNotValidInThisState, 'SETUP for play in a record session');
    } else {
      const read = this.readTargetOf(url, conn);
      // The admission holds the feed's on-demand source (if it has one) until the session ends; it
      // takes over from a lease this connection's DESCRIBE holds.
      const admission = await this.admitPlay(conn, req, url, read);
      conn.sourceLeases.get(read.feed.key)?.();
      conn.sourceLeases.delete(read.feed.key);
      let target: PlayTarget;
      try {
        target = this.playTarget(read, conn);
        if (admission.sourced) await this.awaitTracks(conn, target, true); // a SETUP without DESCRIBE
        if (this.ctx.connections.size >= this.ctx.config.maxClients) {
          throw new RtspError(
            RtspStatus.notEnoughBandwidth,
            `server full: MaxClients ${this.ctx.config.maxClients} connections are open`,
          );
        }
        s = new PlaySession(this.ctx, this.rtp, newSessionId(), target, conn, {
          rtpPorts: this.options.rtpPorts,
          multicastDefaultPort: this.multicastDefaultPort(target.stream),
          query: url.query,
          onClose: (closed) => {
            admission.release();
            this.dropSession(closed, conn);
          },
        });
      } catch (err) {
        admission.release();
        throw err;
      }
      this.addSession(s, conn);
      // An expiring read token or JWT ends the session, and the connection when it carries no other.
      const playing = s;
      admission.cutAtExpiry(() => {
        playing.close('read token expired');
        if (conn.sessions.size === 0 && !conn.socket.destroyed) conn.socket.end();
      });
    }
    let trackId = url.trackId;
    if (trackId === undefined) {
      const tracks = this.rtp.packetizerOf(s.target.feed).sendableTracks(variantFilter(s.target.variant));
      if (tracks.length !== 1) {
        if (s.trackIds.length === 0) s.close('aggregate SETUP refused');
        throw new RtspError(
          RtspStatus.aggregateNotAllowed,
          `${url.name} has ${tracks.length} tracks: SETUP each one (${url.name}/streamid=N)`,
        );
      }
      trackId = (tracks[0] as { id: number }).id;
    }
    try {
      const transport = await s.setupTrack(trackId, specs, conn);
      return {
        headers: [
          ['Session', this.sessionHeader(s)],
          ['Transport', transport],
        ],
      };
    } catch (err) {
      if (s.trackIds.length === 0) s.close('SETUP failed');
      throw err;
    }
  }

  private addSession(s: RtspSession, conn: Connection): void {
    this.sessions.set(s.id, s);
    conn.sessions.add(s);
    this.log.info('RTSP session', { session: s.id, mode: s.mode, name: s.name, from: conn.remoteAddress });
  }

  private dropSession(s: RtspSession, conn: Connection): void {
    this.sessions.delete(s.id);
    conn.sessions.delete(s);
  }

  /**
   * Closes connections that hold a slot for nothing (issue 25): no request within RequestHeaderTimeout
   * of connecting, or none within IdleTimeout of the last one while no session uses the connection.
   * A partly received request is the request timer's (408).
   */
  private closeIdleConnections(): void {
    const now = Date.now();
    for (const conn of this.connections) {
      if (conn.closed || conn.sessions.size > 0 || conn.inFlight > 0 || conn.framer.buffered > 0) continue;
      const limitMs = conn.requested ? this.options.idleTimeoutMs : this.ctx.config.requestHeaderTimeoutMs;
      if (now - conn.lastInputMs < limitMs) continue;
      this.log.debug('RTSP connection idle: closing it', {
        from: conn.remoteAddress,
        idleMs: now - conn.lastInputMs,
        firstRequest: !conn.requested,
      });
      conn.closed = true;
      conn.socket.destroy();
    }
  }

  private expireSessions(): void {
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      if (s.expires && now - s.lastSeenMs > this.options.sessionTimeoutMs) {
        this.log.info('RTSP session timed out', { session: s.id, idleMs: now - s.lastSeenMs });
        s.close('session timeout');
      }
    }
  }
}

/** Answers a connection refused before its first request and closes it: the peer gets `answer` if it reads. */
function refuseSocket(socket: Socket, answer: Buffer, refused: Set<Socket>): void {
  refused.add(socket);
  socket.on('error', () => undefined);
  socket.once('close', () => refused.delete(socket));
  socket.end(answer);
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** Resolves when `ok()` holds after a feed event, or after `timeoutMs`, or when the socket closes. */
function waitUntil(feed: Feed, ok: () => boolean, timeoutMs: number, socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      offTracks();
      offFrame();
      socket.off('close', done);
      resolve();
    };
    const check = (): void => {
      if (ok()) done();
    };
    const timer = setTimeout(done, timeoutMs);
    const offTracks = feed.on('tracks', check);
    const offFrame = feed.on('frame', check);
    socket.once('close', done);
  });
}

/** A refused read as RTSP answers it: 401 with a Basic challenge, 403, 404, 453 (bandwidth), 503, or 302. */
function rtspRefusal(refusal: Refusal): RtspError {
  if (refusal.cause === 'redirect') {
    const location = refusal.location ?? '';
    return new RtspError(RtspStatus.movedTemporarily, `redirected to ${location}`, [['Location', location]]);
  }
  const challenge: [string, string][] = refusal.status === 401 ? [['WWW-Authenticate', 'Basic realm="feedcast"']] : [];
  return new RtspError(rtspRefusalStatus(refusal), refusal.reason, challenge);
}

/** ffserver's file streams: a `File` and no `Feed` (obsolete formats are not served). */
function isFileStream(stream: StreamConfig): stream is StreamConfig & { file: string } {
  return stream.feed === undefined && stream.file !== undefined && stream.format.support !== 'obsolete';
}

/** A range that does not parse, or ends before it starts, is 457 Invalid Range with the reason (RFC 2326 11.3.13). */
function rangeOf(parse: () => PlayStart): PlayStart {
  try {
    return parse();
  } catch (err) {
    if (err instanceof MalformedInputError) throw new RtspError(RtspStatus.invalidRange, err.message);
    throw err;
  }
}
