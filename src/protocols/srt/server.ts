// The SRT listener (SRTPort, UDP; default 8890 in the demo): accepts SRT callers through libsrt
// (native/srt.c), reads what each asks for from its stream id (stream-id.ts), lets it in through
// the same policy as every protocol (ACL, PublishSecret, read tokens, JWT, hooks, admission) and
// makes it a publisher (MPEG-TS into the feed: to-feed.ts) or a reader (the feed's shared MPEG-TS
// output: from-feed.ts). A feed's SRTPassphrase is given to libsrt, which refuses a caller with a
// wrong or missing one during the handshake. docs/srt.md.

import type { ConnectionInfo } from '../../access/connections.js';
import { credentialsFrom } from '../../access/auth.js';
import type { ServerConfig } from '../../config/config.js';
import { FeedBusyError, FeedcastError } from '../../errors.js';
import type { ByteBudget } from '../../media/byte-budget.js';
import { RefusalLog } from '../../observability/refusal-log.js';
import type { Access } from '../../access/access.js';
import type { ConnectionRegistry } from '../../access/connections.js';
import type { FeedManager } from '../../feed/feed-manager.js';
import type { Logger } from '../../observability/logger.js';
import type { OutputRegistry } from '../../streams/output-registry.js';
import type { NativeSrt, SrtAccepted, SrtPoller, SrtStats } from './native-srt.js';
import { SrtFromFeed } from './from-feed.js';
import { parseSrtStreamId, srtResourceKey, type SrtStreamId } from './stream-id.js';
import { SrtToFeed } from './to-feed.js';

/** What the SRT server uses of the running server (server.ts gives it the ServerContext). */
export interface SrtDeps {
  /** The config in force (a reload replaces it). */
  readonly config: ServerConfig;
  readonly feeds: FeedManager;
  readonly outputs: OutputRegistry;
  readonly connections: ConnectionRegistry;
  readonly access: Access;
  readonly log: Logger;
  readonly counters: { refusedConnections: number };
}

export interface SrtServerOptions {
  /** Shared by every publisher of the server: what their unfinished MPEG-TS PES may hold together. */
  pesBudget?: ByteBudget | undefined;
}

/** What arrives from a publisher while it is being let in, kept for when it is (then dropped). */
const MAX_EARLY_BYTES = 1024 * 1024;

/** One accepted SRT connection: its socket, its registry entry, and what it became. */
export class SrtConnection {
  readonly sock: number;
  readonly conn: ConnectionInfo;
  readonly streamId: string;
  readonly encrypted: boolean;
  role: SrtToFeed | SrtFromFeed | undefined;
  closed = false;
  /** Bytes that came before the publisher was let in. */
  early: Buffer[] = [];
  earlyBytes = 0;
  lastStats: SrtStats | undefined;
  /** The feed it publishes to or reads from, once let in (the metrics' label). */
  feedKey: string | undefined;

  constructor(accepted: SrtAccepted, conn: ConnectionInfo) {
    this.sock = accepted.sock;
    this.conn = conn;
    this.streamId = accepted.streamId;
    this.encrypted = accepted.encrypted;
  }
}

/** libsrt's totals of the SRT connections of one feed and role, for /metrics. */
export interface SrtTotals {
  readonly feed: string;
  readonly role: 'publisher' | 'reader';
  /** Open connections. */
  connections: number;
  /** Packets lost on the way (received for a publisher, sent for a reader), recovered or not. */
  packetsLost: number;
  packetsRetransmitted: number;
  /** Packets given up on (too late to recover within the latency). */
  packetsDropped: number;
}

export class SrtServer {
  private readonly ctx: SrtDeps;
  private readonly srt: NativeSrt;
  private readonly poller: SrtPoller;
  private readonly options: SrtServerOptions;
  private readonly refusals: RefusalLog;
  private listener: number | undefined;
  private readonly connections = new Map<number, SrtConnection>();
  private readonly statsTimer: NodeJS.Timeout;
  /** Totals of the connections that have closed, by feed and role (kept while the feed exists). */
  private readonly closedTotals = new Map<string, SrtTotals>();
  private closed = false;

  constructor(ctx: SrtDeps, srt: NativeSrt, options: SrtServerOptions = {}) {
    this.ctx = ctx;
    this.srt = srt;
    this.options = options;
    this.refusals = new RefusalLog(ctx.log);
    this.poller = srt.createPoller(() => this.onReady());
    this.statsTimer = setInterval(() => this.updateStats(), 1000);
    this.statsTimer.unref();
  }

  /** Opens the listener; the port it got (port 0: a free one). Throws with libsrt's reason. */
  listen(port: number, host: string, latencyMs: number): number {
    let sock: number;
    let bound: number;
    try {
      [sock, bound] = this.srt.listen(this.poller, host, port, latencyMs);
    } catch (err) {
      const e = new Error(`SRT cannot listen on ${host}:${port} (UDP): ${(err as Error).message}`) as Error & {
        code?: string;
        port?: number;
      };
      if (/in use/i.test((err as Error).message)) e.code = 'EADDRINUSE';
      e.port = port;
      throw e;
    }
    this.listener = sock;
    this.applyConfig(this.ctx.config);
    this.ctx.log.info('listening', { srt: `${host}:${bound}`, latencyMs });
    return bound;
  }

  /** SRTPassphrase applies to the next callers: libsrt gets the table of names that need one. */
  applyConfig(next: ServerConfig): void {
    if (this.listener === undefined) return;
    const names: string[] = [];
    const passphrases: string[] = [];
    const byFeed = new Map<string, string>();
    for (const feed of next.feeds) {
      if (feed.srtPassphrase === undefined) continue;
      byFeed.set(srtResourceKey(feed.key), feed.srtPassphrase);
      names.push(srtResourceKey(feed.key));
      passphrases.push(feed.srtPassphrase);
    }
    // A declared stream is read with its feed's passphrase.
    for (const stream of next.streams) {
      const pass = stream.feed !== undefined ? byFeed.get(srtResourceKey(stream.feed)) : undefined;
      if (pass === undefined) continue;
      names.push(srtResourceKey(stream.name));
      passphrases.push(pass);
    }
    this.srt.setPassphrases(this.poller, this.listener, names, passphrases);
  }

  /** The open SRT connections (status, tests). */
  list(): SrtConnection[] {
    return [...this.connections.values()];
  }

  /**
   * libsrt's counters summed by feed and role: the open connections (read now) plus those that
   * have closed, so the sums only grow. A feed that is gone takes its closed totals with it.
   */
  totals(): SrtTotals[] {
    for (const [key, t] of this.closedTotals) if (this.ctx.feeds.get(t.feed) === undefined) this.closedTotals.delete(key);
    const sums = new Map<string, SrtTotals>();
    for (const [key, t] of this.closedTotals) sums.set(key, { ...t, connections: 0 });
    for (const c of this.connections.values()) {
      if (c.feedKey === undefined || c.role === undefined) continue;
      this.readStats(c);
      const t = SrtServer.addTotals(sums, c);
      t.connections++;
    }
    return [...sums.values()];
  }

  /** Adds the connection's counters to its feed and role's entry of `sums`; the entry. */
  private static addTotals(sums: Map<string, SrtTotals>, c: SrtConnection): SrtTotals {
    const role = c.role instanceof SrtFromFeed ? 'reader' : 'publisher';
    const feed = c.feedKey ?? '';
    const key = `${role} ${feed}`;
    let t = sums.get(key);
    if (t === undefined) {
      t = { feed, role, connections: 0, packetsLost: 0, packetsRetransmitted: 0, packetsDropped: 0 };
      sums.set(key, t);
    }
    const counters = c.conn.counters;
    t.packetsLost += counters['srtPacketsLost'] ?? 0;
    t.packetsRetransmitted += counters['srtPacketsRetransmitted'] ?? 0;
    t.packetsDropped += counters['srtPacketsDropped'] ?? 0;
    return t;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    clearInterval(this.statsTimer);
    for (const c of [...this.connections.values()]) this.closeConnection(c, 'server stopping');
    this.srt.stopPoller(this.poller);
    return Promise.resolve();
  }

  // ---- events from libsrt (on the main thread) -------------------------------------------------

  /** The waiter thread saw something ready: handle all of it, then let it wait again. */
  private onReady(): void {
    if (this.closed) return;
    try {
      const ready = this.srt.poll(this.poller);
      for (let i = 0; i + 1 < ready.length; i += 2) {
        const sock = ready[i] ?? -1;
        const events = ready[i + 1] ?? 0;
        if (sock === this.listener) this.acceptAll();
        else this.onSocketEvents(sock, events);
      }
    } catch (err) {
      this.ctx.log.error('srt event handling failed', { err });
    } finally {
      if (!this.closed) this.srt.resume(this.poller);
    }
  }

  private acceptAll(): void {
    if (this.listener === undefined) return;
    for (;;) {
      const accepted = this.srt.accept(this.poller, this.listener);
      if (accepted === null) return;
      this.onAccepted(accepted);
    }
  }

  private onSocketEvents(sock: number, events: number): void {
    const c = this.connections.get(sock);
    if (c === undefined) {
      this.srt.close(this.poller, sock);
      return;
    }
    if ((events & this.srt.EPOLL_IN) !== 0) this.readFrom(c);
    if (!c.closed && (events & this.srt.EPOLL_OUT) !== 0 && c.role instanceof SrtFromFeed) c.role.onWritable();
    if (!c.closed && (events & this.srt.EPOLL_ERR) !== 0) this.closeConnection(c, 'connection closed');
  }

  private readFrom(c: SrtConnection): void {
    const data = this.srt.recv(this.poller, c.sock);
    if (typeof data === 'number') {
      this.closeConnection(c, data === 2001 ? 'connection closed' : `srt error ${data}`);
      return;
    }
    if (data.length === 0) return;
    c.conn.bytesIn += data.length;
    const role = c.role;
    if (role instanceof SrtToFeed) {
      try {
        role.push(data);
      } catch (err) {
        if (!(err instanceof FeedcastError)) throw err;
        this.ctx.log.warn('srt publisher refused', { feed: role.feedKey, from: c.conn.remoteAddress, reason: err.message });
        this.closeConnection(c, `cannot follow the published stream: ${err.message}`);
      }
    } else if (role === undefined && c.earlyBytes + data.length <= MAX_EARLY_BYTES) {
      c.early.push(data);
      c.earlyBytes += data.length;
    }
    // A reader's bytes (a caller that reads sends nothing but SRT control packets) are dropped.
  }

  // ---- a new caller ------------------------------------------------------------------------------

  private onAccepted(accepted: SrtAccepted): void {
    const { connections, config } = this.ctx;
    const refused =
      connections.size >= config.maxClients
        ? `MaxClients ${config.maxClients}`
        : this.ctx.access.addressLimitReason(accepted.address);
    if (refused !== undefined) {
      this.ctx.counters.refusedConnections++;
      this.refusals.warn(accepted.address, 'srt connection refused', { reason: refused });
      this.srt.close(this.poller, accepted.sock);
      return;
    }
    const conn = connections.open('SRT', accepted.address);
    const c = new SrtConnection(accepted, conn);
    this.connections.set(c.sock, c);
    conn.kick = (reason) => this.closeConnection(c, reason);
    let id: SrtStreamId;
    try {
      id = parseSrtStreamId(accepted.streamId);
    } catch (err) {
      if (!(err instanceof FeedcastError)) throw err;
      this.refuse(c, err.message);
      return;
    }
    conn.target = id.name;
    const started = id.mode === 'publish' ? this.startPublisher(c, id) : this.startReader(c, id);
    started.catch((err: unknown) => {
      this.ctx.log.error('srt connection failed', { err, from: conn.remoteAddress });
      this.closeConnection(c, 'internal error');
    });
  }

  /** The caller may not do what it asked: one log line (as RTMP's refusals), and the connection closes. */
  private refuse(c: SrtConnection, reason: string): void {
    this.ctx.log.warn('srt caller refused', { streamId: c.streamId.slice(0, 100), reason, from: c.conn.remoteAddress });
    this.closeConnection(c, reason);
  }

  /** Whether the feed wants a passphrase this connection did not agree (libsrt checks it; this is the second lock). */
  private missingPassphrase(c: SrtConnection, feedKey: string): boolean {
    const feed = this.ctx.config.feeds.find((f) => srtResourceKey(f.key) === srtResourceKey(feedKey));
    return feed?.srtPassphrase !== undefined && !c.encrypted;
  }

  private async startPublisher(c: SrtConnection, id: SrtStreamId): Promise<void> {
    const feed = this.ctx.feeds.forPublisher(id.name);
    if (feed === undefined) {
      this.refuse(c, `no feed named "${id.name}": declare it with <Feed ${id.name}.ffm>, or enable DynamicFeeds`);
      return;
    }
    if (this.missingPassphrase(c, feed.key)) {
      this.refuse(c, `feed ${feed.key} needs its SRTPassphrase`);
      return;
    }
    const decision = await this.ctx.access.policy.authorizePublish({
      protocol: 'srt',
      feed: feed.key,
      address: c.conn.remoteAddress,
      credentials: credentialsFrom(id.query, undefined),
    });
    if (c.closed) return;
    if (decision.kind === 'deny') {
      this.refuse(c, decision.reason);
      return;
    }
    if (decision.kind === 'redirect') {
      this.refuse(c, `the authorisation policy redirects to ${decision.location}, which SRT cannot follow`);
      return;
    }
    let session;
    try {
      // Workers N: another worker's publisher of this feed is refused here too (FeedManager.claimPublisher).
      await this.ctx.feeds.claimPublisher(feed, 'srt');
      if (c.closed) return;
      session = feed.attachPublisher({ protocol: 'srt', remoteAddress: c.conn.remoteAddress, startedAt: new Date() });
    } catch (err) {
      if (err instanceof FeedBusyError) {
        this.refuse(c, `${err.message}. Only one publisher may send to a feed.`);
        return;
      }
      throw err;
    }
    const log = this.ctx.log.child({ feed: feed.key, publisher: c.conn.remoteAddress });
    c.conn.role = 'publisher';
    c.conn.state = 'RECEIVE_DATA';
    c.conn.target = feed.name;
    c.feedKey = feed.key;
    const publisher = new SrtToFeed(feed.key, session, log, this.options.pesBudget);
    c.role = publisher;
    session.on('end', (reason) => {
      if (reason.startsWith('replaced') || reason === 'feed closed')
        this.closeConnection(c, `publisher session ended: ${reason}`);
    });
    log.info('srt publishing', { encrypted: c.encrypted });
    const early = c.early;
    c.early = [];
    c.earlyBytes = 0;
    try {
      for (const data of early) publisher.push(data);
    } catch (err) {
      if (!(err instanceof FeedcastError)) throw err;
      this.closeConnection(c, `cannot follow the published stream: ${err.message}`);
    }
  }

  private async startReader(c: SrtConnection, id: SrtStreamId): Promise<void> {
    const target = this.ctx.access.resolve(id.name);
    if (target?.feed !== undefined && this.missingPassphrase(c, target.feed.key)) {
      this.refuse(c, `feed ${target.feed.key} needs its SRTPassphrase`);
      return;
    }
    c.conn.role = 'reader';
    const admission = await this.ctx.access.admit({
      protocol: 'srt',
      target: target ?? id.name,
      address: c.conn.remoteAddress,
      credentials: credentialsFrom(id.query, undefined),
    });
    if (admission.kind === 'refused') {
      this.closeConnection(c, admission.reason);
      return;
    }
    if (c.closed) {
      admission.release();
      return;
    }
    c.early = [];
    c.feedKey = admission.target.feed.key;
    const reader = new SrtFromFeed(this.ctx, this.srt, this.poller, c.sock, c.conn, admission, (reason) =>
      this.closeConnection(c, reason),
    );
    c.role = reader;
    await reader.start();
  }

  // ---- counters and close -----------------------------------------------------------------------

  private updateStats(): void {
    for (const c of this.connections.values()) this.readStats(c);
  }

  private readStats(c: SrtConnection): void {
    const s = this.srt.stats(this.poller, c.sock);
    if (s === null) return;
    c.lastStats = s;
    const counters = c.conn.counters;
    counters['srtPacketsLost'] = c.role instanceof SrtFromFeed ? s.packetsSentLost : s.packetsReceivedLost;
    counters['srtPacketsRetransmitted'] = s.packetsRetransmitted;
    counters['srtPacketsDropped'] = c.role instanceof SrtFromFeed ? s.packetsSentDropped : s.packetsReceivedDropped;
    counters['srtRttMs'] = s.rttMs;
    counters['srtEncrypted'] = c.encrypted ? 1 : 0;
    if (c.role instanceof SrtFromFeed) c.role.updateStats();
  }

  private closeConnection(c: SrtConnection, reason: string): void {
    if (c.closed) return;
    c.closed = true;
    this.readStats(c);
    this.connections.delete(c.sock);
    if (c.feedKey !== undefined && c.role !== undefined) SrtServer.addTotals(this.closedTotals, c);
    const role = c.role;
    c.role = undefined;
    if (role instanceof SrtToFeed) {
      role.end(`publisher finished (${reason})`);
      this.ctx.log.info('srt publisher finished', {
        feed: role.feedKey,
        reason,
        bytes: c.conn.bytesIn,
        lost: c.conn.counters['srtPacketsLost'] ?? 0,
        dropped: c.conn.counters['srtPacketsDropped'] ?? 0,
      });
    } else if (role instanceof SrtFromFeed) {
      role.close(reason);
      this.ctx.log.info('srt reader finished', {
        target: c.conn.target,
        from: c.conn.remoteAddress,
        reason,
        bytes: c.conn.bytesOut,
        lost: c.conn.counters['srtPacketsLost'] ?? 0,
        retransmitted: c.conn.counters['srtPacketsRetransmitted'] ?? 0,
        dropped: c.conn.counters['srtPacketsDropped'] ?? 0,
      });
    }
    this.srt.close(this.poller, c.sock);
    this.ctx.connections.close(c.conn);
  }
}
