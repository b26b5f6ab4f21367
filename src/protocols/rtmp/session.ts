// One RTMP connection (Adobe RTMP specification 1.0): the handshake (5.2), the chunk stream (5.3),
// protocol control and user control messages (5.4, 7.1.7), and the NetConnection / NetStream
// commands (7.2) that make it a publisher (to-feed.ts) or a player (from-feed.ts).

import type { Socket } from 'node:net';
import type { ConnectionInfo } from '../../access/connections.js';
import { FeedBusyError, FeedcastError, ProtocolError } from '../../errors.js';
import type { Feed } from '../../feed/feed.js';
import type { Amf0Object, Amf0Value } from '../../formats/amf/amf0.js';
import { ChunkStreamReader } from '../../formats/rtmp/chunk-reader.js';
import { encodeRtmpMessages } from '../../formats/rtmp/chunk-writer.js';
import { RTMP_C0C1_SIZE, RTMP_HANDSHAKE_SIZE, makeS0S1S2, parseC0C1 } from '../../formats/rtmp/handshake.js';
import {
  RtmpType,
  UserControlEvent,
  ackMessage,
  commandMessage,
  dataMessage,
  onStatusMessage,
  parseCommand,
  parseU32Control,
  parseUserControl,
  rtmpTypeName,
  setChunkSizeMessage,
  setPeerBandwidthMessage,
  userControlMessage,
  windowAckSizeMessage,
  type RtmpCommand,
  type RtmpMessage,
} from '../../formats/rtmp/messages.js';
import { RTMP_PLAY_STREAM_ID } from '../../formats/rtmp/rtmp-muxer.js';
import { describeTrack } from '../../media/track.js';
import type { Logger } from '../../observability/logger.js';
import { rtmpPlayRefusal, type Admission, type ReadTarget, type Refusal } from '../../access/access.js';
import { credentialsFrom, type AuthDecision } from '../../access/auth.js';
import type { ProtocolContext } from '../protocol-context.js';
import { canCarryAny, plainVariant, type OutputVariant } from '../../streams/output-registry.js';
import { RtmpFromFeed, SOURCE_START_TIMEOUT_MS, waitForTracks } from './from-feed.js';
import { parseRtmpStreamName, rtmpAppName } from './stream-name.js';
import { RtmpToFeed } from './to-feed.js';
import { enhancedConnectResult, parseEnhancedConnect } from './enhanced-connect.js';
import { socketBytesWritten } from '../../streams/native-fanout.js';
import { findFeedConfig } from '../../config/names.js';

export interface RtmpSessionOptions {
  /** Outgoing chunk size (RTMPChunkSize). */
  chunkSize: number;
  /** Largest incoming message. */
  maxMessageBytes: number;
  /** Handshake and connect must be done within this. */
  handshakeTimeoutMs: number;
  /** After connect, a connection neither publishing nor playing is closed after this long without input. */
  idleTimeoutMs: number;
}

/** The window Feedcast announces (Window Acknowledgement Size, Set Peer Bandwidth), as FMS does. */
const WINDOW_BYTES = 2_500_000;
/** How long a refused client gets to read its error status before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

/** Commands some clients send that need no answer. */
const IGNORED_COMMANDS = new Set([
  '_checkbw',
  '_result',
  '_error',
  'onStatus',
  'onBWDone',
  'FCSubscribe',
  'FCUnsubscribe',
  'receiveAudio',
  'receiveVideo',
  'setPeerInfo',
  'pause',
  'seek',
]);

type Phase = 'c0c1' | 'c2' | 'chunks' | 'closed';

export class RtmpSession {
  private readonly ctx: ProtocolContext;
  private readonly socket: Socket;
  private readonly conn: ConnectionInfo;
  private readonly options: RtmpSessionOptions;
  private readonly log: Logger;
  private phase: Phase = 'c0c1';
  private handshake: Buffer[] = [];
  private handshakeBytes = 0;
  private windowSizesSent = false;
  private readonly reader: ChunkStreamReader;
  private connected = false;
  private app = '';
  private tcUrl = '';
  private streamsCreated = 0;
  private publisher: RtmpToFeed | undefined;
  private player: RtmpFromFeed | undefined;
  private playStarting = false;
  /** publish was asked and the authorisation policy has not answered yet: media is dropped meanwhile. */
  private publishStarting = false;
  /** A player's admission (slot, bandwidth, source, expiry cut), released when the connection ends. */
  private admission: Admission | undefined;
  /** The peer's Window Acknowledgement Size: we acknowledge every this many bytes (5.4.4). */
  private peerWindow = 0;
  private ackedBytes = 0;
  /** Our chunk size: 128 until connect announces the configured one. */
  private chunkSizeOut = 128;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(ctx: ProtocolContext, socket: Socket, conn: ConnectionInfo, options: RtmpSessionOptions) {
    this.ctx = ctx;
    this.socket = socket;
    this.conn = conn;
    this.options = options;
    this.log = ctx.log.child({ rtmp: conn.remoteAddress, conn: conn.id });
    conn.state = 'RTMP_HANDSHAKE';
    this.reader = new ChunkStreamReader((m) => this.onMessage(m), {
      maxMessageBytes: options.maxMessageBytes,
      budget: ctx.ingestBudgets.rtmp,
    });
    this.handshakeTimer = setTimeout(() => {
      if (!this.connected)
        this.fail(new ProtocolError('rtmp', `no handshake and connect within ${options.handshakeTimeoutMs} ms`));
    }, options.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('timeout', () => this.onIdle());
    socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('connection closed'));
  }

  // --- input -----------------------------------------------------------------------------------

  private onData(data: Buffer): void {
    if (this.phase === 'closed') return;
    this.conn.bytesIn += data.length;
    try {
      if (this.phase === 'chunks') {
        this.reader.push(data);
        this.maybeAck();
        return;
      }
      this.onHandshakeData(data);
    } catch (err) {
      if (err instanceof FeedcastError) {
        this.fail(err);
        return;
      }
      throw err;
    }
  }

  /** 5.2: C0+C1 -> S0+S1+S2; then C2 (read and not checked: clients differ), then chunks. */
  private onHandshakeData(data: Buffer): void {
    this.handshake.push(data);
    this.handshakeBytes += data.length;
    const need = this.phase === 'c0c1' ? RTMP_C0C1_SIZE : RTMP_HANDSHAKE_SIZE;
    if (this.handshakeBytes < need) return;
    const all = Buffer.concat(this.handshake, this.handshakeBytes);
    this.handshake = [];
    this.handshakeBytes = 0;
    const rest = all.subarray(need);
    if (this.phase === 'c0c1') {
      const c1 = parseC0C1(all.subarray(0, need));
      this.log.debug('handshake', { digest: c1.digest !== undefined, clientVersion: c1.clientVersion.toString(16) });
      this.write(makeS0S1S2(c1));
      this.phase = 'c2';
    } else {
      this.phase = 'chunks';
      this.conn.state = 'RTMP_CONNECT';
      // The window sizes go out now rather than after connect: a client with Nagle on (ffmpeg,
      // librtmp) holds its connect until C2 is acknowledged, and this carries the ACK at once
      // instead of after the kernel's delayed-ACK wait (~40 ms).
      if (rest.length === 0) this.sendWindowSizes();
    }
    if (rest.length > 0) this.onData0(rest);
  }

  /** Re-enters input handling for bytes that followed a handshake record (no double counting). */
  private onData0(rest: Buffer): void {
    if (this.phase === 'chunks') {
      this.reader.push(rest);
      this.maybeAck();
    } else {
      this.onHandshakeData(rest);
    }
  }

  private maybeAck(): void {
    if (this.peerWindow <= 0) return;
    const total = this.reader.bytesIn;
    if (total - this.ackedBytes >= this.peerWindow) {
      this.ackedBytes = total;
      this.send([ackMessage(total)]);
    }
  }

  private onMessage(m: RtmpMessage): void {
    if (this.phase === 'closed') return;
    switch (m.typeId) {
      case RtmpType.setChunkSize:
      case RtmpType.abort:
      case RtmpType.ack:
      case RtmpType.setPeerBandwidth:
        return; // chunk size and abort are applied by the reader; the rest needs nothing from us
      case RtmpType.windowAckSize:
        this.peerWindow = parseU32Control(m.payload, 'window acknowledgement size');
        return;
      case RtmpType.userControl: {
        const uc = parseUserControl(m.payload);
        if (uc.event === UserControlEvent.pingRequest) {
          this.send([userControlMessage(UserControlEvent.pingResponse, uc.value ?? 0)]);
        }
        return;
      }
      case RtmpType.commandAmf0:
      case RtmpType.commandAmf3:
        this.onCommand(parseCommand(m.payload, m.typeId), m);
        return;
      case RtmpType.audio:
      case RtmpType.video:
      case RtmpType.dataAmf0:
      case RtmpType.dataAmf3:
      case RtmpType.aggregate:
        this.onStreamMessage(m);
        return;
      default:
        this.log.debug('message ignored', { type: rtmpTypeName(m.typeId), bytes: m.payload.length });
        return;
    }
  }

  private onStreamMessage(m: RtmpMessage): void {
    const publisher = this.publisher;
    if (publisher !== undefined) {
      if (m.streamId === RTMP_PLAY_STREAM_ID || m.typeId === RtmpType.dataAmf0 || m.typeId === RtmpType.dataAmf3) {
        publisher.push(m, m.payload.length);
        this.conn.counters['messagesIn'] = publisher.messagesIn;
      }
      return;
    }
    if (m.typeId === RtmpType.dataAmf0 || m.typeId === RtmpType.dataAmf3) return; // e.g. a player's onStatus data
    if (this.publishStarting) return; // sent before Publish.Start: nothing flows before the policy allows it
    throw new ProtocolError('rtmp', `${rtmpTypeName(m.typeId)} message on stream ${m.streamId}, which is not publishing`);
  }

  // --- commands (7.2) --------------------------------------------------------------------------

  private onCommand(cmd: RtmpCommand, m: RtmpMessage): void {
    if (!this.connected && cmd.name !== 'connect') {
      throw new ProtocolError('rtmp', `"${cmd.name}" before connect`);
    }
    switch (cmd.name) {
      case 'connect':
        this.onConnect(cmd);
        return;
      case 'createStream':
        if (++this.streamsCreated > 16) throw new ProtocolError('rtmp', 'more than 16 createStream calls');
        this.reply(cmd, null, RTMP_PLAY_STREAM_ID);
        return;
      case 'releaseStream':
      case 'FCPublish':
      case 'FCUnpublish':
        if (cmd.name === 'FCUnpublish') this.stopPublishing('FCUnpublish');
        if (cmd.transactionId !== 0) this.reply(cmd, null);
        return;
      case 'getStreamLength':
        this.reply(cmd, null, 0);
        return;
      case 'publish':
        void this.onPublish(cmd, m).catch((err: unknown) =>
          this.fail(err instanceof Error ? err : new ProtocolError('rtmp', String(err))),
        );
        return;
      case 'play':
        void this.onPlay(cmd, m).catch((err: unknown) =>
          this.fail(err instanceof Error ? err : new ProtocolError('rtmp', String(err))),
        );
        return;
      case 'deleteStream':
      case 'closeStream':
        this.stopPublishing(cmd.name);
        this.player?.close(cmd.name);
        return;
      default:
        if (IGNORED_COMMANDS.has(cmd.name)) {
          this.log.debug('command ignored', { command: cmd.name });
          return;
        }
        if (cmd.transactionId !== 0) {
          this.send([
            commandMessage(m.streamId, '_error', cmd.transactionId, null, {
              level: 'error',
              code: 'NetConnection.Call.Failed',
              description: `Unknown command "${cmd.name}"`,
            }),
          ]);
        }
        throw new ProtocolError('rtmp', `unknown command "${cmd.name.slice(0, 64)}"`);
    }
  }

  private reply(cmd: RtmpCommand, commandObject: Amf0Value, ...args: Amf0Value[]): void {
    this.send([commandMessage(0, '_result', cmd.transactionId, commandObject, ...args)]);
  }

  /** Window Acknowledgement Size and Set Peer Bandwidth (5.4.4, 5.4.5), once per connection. */
  private sendWindowSizes(): void {
    if (this.windowSizesSent) return;
    this.windowSizesSent = true;
    this.send([windowAckSizeMessage(WINDOW_BYTES), setPeerBandwidthMessage(WINDOW_BYTES, 2)]);
  }

  /**
   * 7.2.1.1 connect: window sizes, our chunk size, then _result(NetConnection.Connect.Success),
   * with Enhanced RTMP v2's fourCcList, [video|audio]FourCcInfoMap and capsEx for an E-RTMP client.
   */
  private onConnect(cmd: RtmpCommand): void {
    if (this.connected) throw new ProtocolError('rtmp', 'a second connect on the same connection');
    const obj = asObject(cmd.commandObject);
    const app = obj['app'];
    const tcUrl = obj['tcUrl'];
    this.app = typeof app === 'string' ? app : '';
    this.tcUrl = typeof tcUrl === 'string' ? tcUrl : '';
    this.connected = true;
    clearTimeout(this.handshakeTimer);
    // Between connect and publish/play (or after either ends) the connection holds a slot for nothing.
    this.socket.setTimeout(this.options.idleTimeoutMs);
    this.conn.state = 'RTMP_CONNECTED';
    this.conn.target = rtmpAppName(this.app);
    this.sendWindowSizes();
    this.send([setChunkSizeMessage(this.options.chunkSize)]);
    this.chunkSizeOut = this.options.chunkSize;
    // Enhanced RTMP: a client that announces its codecs (fourCcList...) is told what Feedcast forwards.
    const enhanced = parseEnhancedConnect(obj);
    this.reply(
      cmd,
      { fmsVer: 'FMS/3,0,1,123', capabilities: 31, ...enhancedConnectResult(enhanced) },
      {
        level: 'status',
        code: 'NetConnection.Connect.Success',
        description: 'Connection succeeded.',
        objectEncoding: 0,
      },
    );
    this.log.debug('connected', {
      app: rtmpAppName(this.app),
      flashVer: typeof obj['flashVer'] === 'string' ? obj['flashVer'] : '',
      ...(enhanced !== undefined ? { fourCcs: enhanced.fourCcs.join(','), capsEx: enhanced.capsEx } : {}),
    });
  }

  /** The feed's config section, if it is declared. */
  private feedConfig(feed: Feed) {
    return findFeedConfig(this.ctx.config.feeds, feed.key);
  }

  /** Refuses with an onStatus error on the stream, then closes the connection (with a log line). */
  private refuse(streamId: number, code: string, description: string): void {
    this.log.warn('rtmp request refused', { code, reason: description, app: rtmpAppName(this.app) });
    this.send([onStatusMessage(streamId, 'error', code, description)]);
    this.closeAfterFlush(`refused: ${code}`);
  }

  /** An onStatus code and description for a refusal of the authorisation policy. */
  /** A refused play (access/admit): NetStream.Play.StreamNotFound or Failed with the reason, or a redirect. */
  private refuseAdmission(streamId: number, refusal: Refusal): void {
    if (refusal.cause === 'redirect') {
      this.refuseDecision(streamId, 'Play', { kind: 'redirect', location: refusal.location ?? '' });
      return;
    }
    const { code, description } = rtmpPlayRefusal(refusal);
    this.refuse(streamId, code, description);
  }

  private refuseDecision(streamId: number, action: 'Publish' | 'Play', decision: Exclude<AuthDecision, { kind: 'allow' }>): void {
    if (decision.kind === 'redirect') {
      // NetConnection.Connect.Rejected with ex.redirect is how FMS/Wowza redirect; players that know it follow it.
      this.log.info('rtmp redirected by the authorisation policy', { location: decision.location });
      this.send([
        onStatusMessage(streamId, 'error', `NetStream.${action}.Failed`, `Redirected to ${decision.location}`, {
          ex: { code: 302, redirect: decision.location },
        }),
      ]);
      this.closeAfterFlush('redirected');
      return;
    }
    const code =
      decision.status === 503
        ? `NetStream.${action}.Failed`
        : action === 'Publish'
          ? 'NetStream.Publish.Unauthorized'
          : 'NetStream.Play.Failed';
    this.refuse(streamId, code, decision.reason);
  }

  /** 7.2.2.6 publish(name, type): NAME -> feed, then the authorisation policy (ACL, secret, hooks), one publisher -> Publish.Start. */
  private async onPublish(cmd: RtmpCommand, m: RtmpMessage): Promise<void> {
    const streamId = m.streamId;
    if (this.publisher !== undefined || this.player !== undefined || this.playStarting || this.publishStarting) {
      throw new ProtocolError('rtmp', 'publish on a connection that already publishes or plays');
    }
    const raw = cmd.args[0];
    if (typeof raw !== 'string' || raw === '') {
      this.refuse(streamId, 'NetStream.Publish.BadName', 'publish needs a stream name: rtmp://host/APP/FEED');
      return;
    }
    const { name, query } = parseRtmpStreamName(raw, this.app, this.tcUrl);
    const feed = this.ctx.feeds.forPublisher(name);
    if (feed === undefined) {
      this.refuse(
        streamId,
        'NetStream.Publish.BadName',
        `No feed named "${name}". Declare it with <Feed ${name}.ffm>, or enable DynamicFeeds.`,
      );
      return;
    }
    this.publishStarting = true;
    const decision = await this.ctx.access.policy.authorizePublish({
      protocol: 'rtmp',
      feed: feed.key,
      address: this.conn.remoteAddress,
      credentials: credentialsFrom(query, undefined),
    });
    this.publishStarting = false;
    if (this.phase === 'closed') return;
    if (decision.kind !== 'allow') {
      this.refuseDecision(streamId, 'Publish', decision);
      return;
    }
    let session;
    try {
      // Workers N: another worker's publisher of this feed is refused here too (FeedManager.claimPublisher).
      this.publishStarting = true;
      await this.ctx.feeds.claimPublisher(feed, 'rtmp');
      this.publishStarting = false;
      if ((this.phase as Phase) === 'closed') return;
      session = feed.attachPublisher({ protocol: 'rtmp', remoteAddress: this.conn.remoteAddress, startedAt: new Date() });
    } catch (err) {
      this.publishStarting = false;
      if (err instanceof FeedBusyError) {
        this.refuse(streamId, 'NetStream.Publish.BadName', `${err.message}. Only one publisher may send to a feed.`);
        return;
      }
      throw err;
    }
    const log = this.log.child({ feed: feed.key });
    this.publisher = new RtmpToFeed(session, log);
    session.on('end', (reason) => {
      if (reason.startsWith('replaced') || reason === 'feed closed') this.close(`publisher session ended: ${reason}`);
    });
    this.conn.role = 'publisher';
    this.conn.state = 'RECEIVE_DATA';
    this.conn.target = feed.name;
    // A dead network leaves no FIN: the idle timeout ends such a publisher (as for HTTP push).
    this.socket.setTimeout(this.publisherIdleMs());
    this.send([
      userControlMessage(UserControlEvent.streamBegin, streamId),
      onStatusMessage(streamId, 'status', 'NetStream.Publish.Start', `${raw.split('?')[0] ?? name} is now published.`, {
        details: name,
      }),
    ]);
    log.info('rtmp publishing', { app: rtmpAppName(this.app), name });
  }

  private stopPublishing(reason: string): void {
    const publisher = this.publisher;
    if (publisher === undefined) return;
    this.publisher = undefined;
    if (this.phase !== 'closed') this.socket.setTimeout(this.options.idleTimeoutMs);
    publisher.end(`publisher finished (${reason})`);
    this.log.info('rtmp publisher finished', { reason, messages: publisher.messagesIn });
  }

  /** 7.2.2.1 play(name, start, duration, reset): NAME -> feed or declared FLV stream. */
  private async onPlay(cmd: RtmpCommand, m: RtmpMessage): Promise<void> {
    const streamId = m.streamId;
    if (this.publisher !== undefined || this.player !== undefined || this.playStarting) {
      throw new ProtocolError('rtmp', 'play on a connection that already publishes or plays');
    }
    const raw = cmd.args[0];
    if (typeof raw !== 'string' || raw === '') {
      this.refuse(streamId, 'NetStream.Play.StreamNotFound', 'play needs a stream name: rtmp://host/APP/FEED');
      return;
    }
    const { name, query } = parseRtmpStreamName(raw, this.app, this.tcUrl);
    const target = this.resolvePlay(name);
    if (typeof target === 'string') {
      this.refuse(streamId, 'NetStream.Play.StreamNotFound', target);
      return;
    }
    this.conn.role = 'reader';
    this.conn.target = name;
    this.playStarting = true;
    const admission = await this.ctx.access.admit({
      protocol: 'rtmp',
      target,
      address: this.conn.remoteAddress,
      credentials: credentialsFrom(query, undefined),
    });
    if (admission.kind === 'refused') {
      if (this.phase !== 'closed') this.refuseAdmission(streamId, admission);
      return;
    }
    if (this.phase === 'closed') {
      admission.release();
      return;
    }
    this.admission = admission;
    const feed = admission.target.feed;
    // An expiring read token or JWT ends the play: NetStream.Play.Stop, then the connection closes.
    admission.cutAtExpiry(() => {
      if (this.player !== undefined) this.player.close('read token expired');
      else this.close('read token expired');
    });
    if (feed.tracks.length === 0) {
      this.conn.state = 'WAIT_FEED';
      const waitMs = admission.sourced
        ? Math.max(SOURCE_START_TIMEOUT_MS, this.ctx.config.publisherGraceMs)
        : this.ctx.config.publisherGraceMs;
      const ok = await waitForTracks(feed, waitMs, this.socket);
      if ((this.phase as Phase) === 'closed') return;
      if (!ok) {
        this.refuse(
          streamId,
          'NetStream.Play.StreamNotFound',
          `Feed ${feed.key} has no publisher: nothing was published to it within ${Math.round(waitMs / 1000)} s.`,
        );
        return;
      }
    }
    if (!canCarryAny('rtmp', feed.tracks)) {
      this.refuse(
        streamId,
        'NetStream.Play.Failed',
        `RTMP cannot carry this feed's tracks (${feed.tracks.map(describeTrack).join(', ')}). Read /${feed.key}.ts over HTTP instead.`,
      );
      return;
    }
    const stream = admission.target.stream;
    const variant: OutputVariant =
      stream !== undefined ? { noAudio: stream.noAudio, noVideo: stream.noVideo, metadata: stream.metadata } : plainVariant;
    this.send([
      userControlMessage(UserControlEvent.streamBegin, streamId),
      onStatusMessage(streamId, 'status', 'NetStream.Play.Reset', `Playing and resetting ${name}.`, { details: name }),
      onStatusMessage(streamId, 'status', 'NetStream.Play.Start', `Started playing ${name}.`, { details: name }),
      dataMessage(streamId, ['|RtmpSampleAccess', true, true]),
    ]);
    const log = this.log.child({ stream: name });
    this.player = new RtmpFromFeed(
      this.ctx,
      this.socket,
      this.conn,
      { feed, variant, name, chunkSize: this.chunkSizeOut },
      (reason, error) => {
        this.player = undefined;
        if (error !== undefined) {
          log.warn('rtmp player closed', { reason, err: error });
          this.close(reason);
          return;
        }
        log.debug('rtmp player ended', { reason });
        if (this.phase === 'closed') return;
        this.send([onStatusMessage(streamId, 'status', 'NetStream.Play.Stop', `Stopped playing ${name}: ${reason}.`)]);
        this.closeAfterFlush(reason);
      },
    );
    this.playStarting = false;
    this.socket.setTimeout(0);
    this.conn.state = 'SEND_DATA';
    this.player.start();
    log.info('rtmp playing', { app: rtmpAppName(this.app) });
  }

  /** The feed or FLV passthrough stream a play name reads (any case), or why it cannot be played. */
  private resolvePlay(name: string): ReadTarget | string {
    // ffmpeg drops a '.flv' extension from the play path: `/live/live.flv` asks for 'live'.
    const target = this.ctx.access.resolve(name) ?? this.ctx.access.resolve(`${name}.flv`);
    if (target === undefined) return `No feed or stream named "${name}".`;
    const stream = target.stream;
    if (stream === undefined) return target;
    if (target.feed === undefined) return `${stream.name} is not fed by a live feed.`;
    if (stream.format.name !== 'flv' || stream.format.support !== 'passthrough' || stream.needsTranscode) {
      return `${stream.name} is not an FLV passthrough stream (Format ${stream.format.name}); play feed ${target.feed.key} instead.`;
    }
    return target;
  }

  // --- output and close ------------------------------------------------------------------------

  private send(messages: RtmpMessage[]): void {
    this.write(encodeRtmpMessages(messages, this.chunkSizeOut));
  }

  private write(buf: Buffer): void {
    if (this.phase === 'closed' || this.socket.destroyed) return;
    this.socket.write(buf);
    this.conn.bytesOut = socketBytesWritten(this.socket);
  }

  private publisherIdleMs(): number {
    return Math.max(30_000, this.ctx.config.publisherTimeoutMs * 2);
  }

  /** The socket's idle timeout: a publisher that sends nothing, or a client doing nothing, is closed. */
  private onIdle(): void {
    if (this.phase === 'closed' || this.player !== undefined || this.playStarting) return;
    if (this.publisher !== undefined) {
      // A dead network leaves no FIN: the idle timeout ends such a publisher (as for HTTP push).
      this.fail(new ProtocolError('rtmp', `publisher sent nothing for ${this.publisherIdleMs()} ms`));
      return;
    }
    if (this.publishStarting) return;
    this.fail(
      new ProtocolError(
        'rtmp',
        `connection idle for ${this.options.idleTimeoutMs} ms, neither publishing nor playing (IdleTimeout)`,
      ),
    );
  }

  /** Closes for a fault, with one log line saying what was wrong. */
  private fail(err: Error): void {
    if (this.phase === 'closed') return;
    this.log.warn('rtmp connection closed', {
      reason: err.message,
      code: (err as Partial<FeedcastError>).code,
      state: this.conn.state,
    });
    this.close(err.message);
  }

  private closeAfterFlush(reason: string): void {
    if (this.phase === 'closed') return;
    this.stopPublishing(reason);
    this.player?.close(reason);
    this.admission?.release();
    this.reader.release();
    this.phase = 'closed';
    clearTimeout(this.handshakeTimer);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Ends whatever the connection was doing and destroys the socket. Idempotent. */
  close(reason: string): void {
    clearTimeout(this.handshakeTimer);
    this.stopPublishing(reason);
    this.player?.close(reason);
    this.admission?.release();
    this.reader.release();
    this.phase = 'closed';
    if (!this.socket.destroyed) this.socket.destroy();
  }
}

function asObject(v: Amf0Value): Amf0Object {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) ? v : {};
}
