// WebRTC on the HTTP listener (docs/webrtc.md): WHEP playback at `POST /NAME/whep` and WHIP
// publishing at `POST /NAME/whip` (RFC 9725), each answered with 201, the SDP answer and a
// `Location` (`/NAME/whep/ID`) that takes DELETE (end) and PATCH (trickle ICE candidates).
// NAME is a feed key, or for WHEP a declared passthrough <Stream>.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { RTCPeerConnection } from 'werift';
import type { ConnectionInfo } from '../../access/connections.js';
import { FeedBusyError, MalformedInputError } from '../../errors.js';
import type { Feed, PublisherSession } from '../../feed/feed.js';
import type { SharedClockOrigin } from '../../feed/feed-clock.js';
import type { Logger } from '../../observability/logger.js';
import type { ProtocolContext } from '../protocol-context.js';
import type { HttpRoute } from '../http/route.js';
import type * as WhepViewerModule from './from-feed.js';
import type { WhepViewer } from './from-feed.js';
import {
  DEFAULT_ICE_OPTIONS,
  iceServerLinks,
  keepCandidates,
  muxBindAddresses,
  muxTarget,
  offerForPeer,
  PLAYOUT_DELAY_URI,
  type PeerCodec,
  type PeerCodecs,
  type WebRtcIceOptions,
} from './ice.js';
import type * as PeerModule from './peer.js';
import type * as SrtpGuardModule from './srtp-guard.js';
import type { RejectionCounts, SrtpGuard } from './srtp-guard.js';
import { RtpSourceRegistry, type FeedRtpSource } from './rtp-source.js';
import { resolveFfmpeg } from '../../transcode/ffmpeg-args.js';
import { whepRefusalStatus, type ReadTarget, type Refusal } from '../../access/access.js';
import { credentialsFrom, type AuthDecision } from '../../access/auth.js';
import {
  addFmtpParameter,
  chooseAv1,
  chooseH264,
  chooseH265,
  chooseOpus,
  chooseVp8,
  chooseVp9,
  isWebRtcVideoCodec,
  MAX_OFFER_BYTES,
  parseSdpOffer,
  trimOffer,
  type H264ProfileHint,
  type OfferCodec,
  type OfferMedia,
  type SdpOffer,
  type WebRtcVideoCodec,
} from './sdp-offer.js';
import { WhipIngest } from './to-feed.js';
import { UdpMux } from './udp-mux.js';
import { detach } from '../../observability/detach.js';

export interface WebRtcRouteOptions extends WebRtcIceOptions {
  /** WHIP: ask the browser for a keyframe this often (PLI). Default 2000 ms. */
  whipKeyframeIntervalMs: number;
  /** WHEP: ask browsers to render at once (playout-delay extension 0/0). Default true. */
  playoutDelayZero: boolean;
  /** WHIP simulcast: the bandwidth estimate the browser starts with (x-google-start-bitrate), kbit/s. Default 2500. */
  whipSimulcastStartKbps: number;
  /** Bound on gathering the server's candidates before answering. Default 3000 ms. */
  gatherTimeoutMs: number;
  /** WHEP of a feed made by an on-demand Launch/Source: bound on waiting for its tracks. Default 10 000 ms. */
  sourceStartTimeoutMs: number;
}

export const DEFAULT_WEBRTC_OPTIONS: WebRtcRouteOptions = {
  ...DEFAULT_ICE_OPTIONS,
  whipKeyframeIntervalMs: 2000,
  whipSimulcastStartKbps: 2500,
  playoutDelayZero: true,
  gatherTimeoutMs: 3000,
  sourceStartTimeoutMs: 10_000,
};

interface WeriftParts {
  peer: typeof PeerModule;
  viewer: typeof WhepViewerModule;
  guard: typeof SrtpGuardModule;
}

const CORS_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, PATCH, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, Authorization, If-Match',
  'Access-Control-Expose-Headers': 'Location, Link, ETag, Accept-Patch, X-Feedcast-Note',
};

/** An HTTP error with its status and the message the client gets. */
/** Turns a refusal of the auth policy into the HTTP answer WHEP/WHIP clients get. */
function refuseUnlessAllowed(decision: AuthDecision): void {
  if (decision.kind === 'allow') return;
  if (decision.kind === 'redirect')
    throw new HttpError(307, `Redirected to ${decision.location}.`, { Location: decision.location });
  throw new HttpError(decision.status, decision.reason, decision.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
}

/** A refused WHEP viewer (access/admit): 401/403, 404, 503 with Retry-After for MaxReaders and MaxBandwidth, 307. */
function whepRefusal(refusal: Refusal): HttpError {
  if (refusal.cause === 'redirect') {
    const location = refusal.location ?? '/';
    return new HttpError(307, `Redirected to ${location}.`, { Location: location });
  }
  const headers: Record<string, string> =
    refusal.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : refusal.status === 503 ? { 'Retry-After': '5' } : {};
  return new HttpError(whepRefusalStatus(refusal), refusal.reason, headers);
}

class HttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

export interface WebRtcSessionStatus {
  id: string;
  kind: 'whep' | 'whip';
  name: string;
  feed: string;
  remoteAddress: string;
  state: string;
  packetsSent: number;
  framesIn: number;
  keyframeReplays: number;
  /** The feed's video has B-frames and this viewer gets it re-encoded without them. */
  videoReencoded: boolean;
  /** WHEP of a simulcast feed: the layer (rid) sent now, and how often the viewer was moved. */
  simulcastLayer: string | null;
  layerSwitches: number;
  /** WHEP: the browser's last bandwidth estimate (REMB), kbit/s; null before the first. */
  bandwidthEstimateKbps: number | null;
  /** WHEP: how packets leave ("srtp AEAD_AES_128_GCM by native via sendmmsg", or "werift"); null before DTLS or for WHIP. */
  sendPath: string | null;
  /** WHEP, direct path: packets sent again for the viewer's NACKs. */
  retransmits: number;
  /** Inbound SRTP/SRTCP that authenticated and was new (srtp-guard.ts), and what was dropped, by reason. */
  srtpVerified: number;
  srtpRejected: RejectionCounts | null;
  /** The SRTP protection profile DTLS chose; null before. */
  srtpProfile: string | null;
  openedAt: string;
}

interface Session {
  readonly id: string;
  readonly kind: 'whep' | 'whip';
  readonly name: string;
  readonly feed: Feed;
  readonly pc: RTCPeerConnection;
  readonly conn: ConnectionInfo;
  readonly openedAt: Date;
  viewer: WhepViewer | undefined;
  ingest: WhipIngest | undefined;
  source: FeedRtpSource | undefined;
  /** WHEP of a simulcast feed: the sources of its layer feeds. */
  layerSources: readonly FeedRtpSource[];
  publisher: PublisherSession | undefined;
  /** WHIP simulcast: the sessions of the layer feeds. */
  layerPublishers: readonly PublisherSession[];
  stopWatch: (() => void) | undefined;
  /** Removes the peer from the UDP mux (single-port mode). */
  leaveMux: (() => void) | undefined;
  /** The server's ICE ufrag of a peer behind the mux: its ICE-TCP backlog is asked by it. */
  muxUfrag: string | undefined;
  /** Releases the feed's on-demand Launch/Source child (WHEP). */
  releaseFeedSource: (() => void) | undefined;
  /** Checks the peer's SRTP/SRTCP before werift reads it (from negotiation on). */
  srtpGuard: SrtpGuard | undefined;
  /** The first dropped packet was logged; the rest are counted. */
  srtpWarned: boolean;
  closed: boolean;
}

interface Target {
  kind: 'whep' | 'whip';
  /** The NAME part of the URL. */
  name: string;
  /** undefined: the endpoint itself; else a session resource. */
  sessionId: string | undefined;
}

export class WebRtcRoute implements HttpRoute {
  private readonly ctx: ProtocolContext;
  private readonly options: WebRtcRouteOptions;
  private readonly log: Logger;
  private readonly sessions = new Map<string, Session>();
  readonly sources: RtpSourceRegistry;
  private closed = false;
  /** werift (about 20 MB of heap) is loaded at the first offer, not at start-up: most servers never use it. */
  private werift: WeriftParts | undefined;
  private weriftLoading: Promise<WeriftParts> | undefined;
  private mux: UdpMux | undefined;
  private muxOpening: Promise<UdpMux> | undefined;

  constructor(ctx: ProtocolContext, options: Partial<WebRtcRouteOptions> = {}) {
    this.ctx = ctx;
    this.options = { ...DEFAULT_WEBRTC_OPTIONS, ...options };
    this.log = ctx.log.child({ part: 'webrtc' });
    // AAC/MP3/MP2 audio reaches browsers as Opus made by ffmpeg; without ffmpeg, viewers get video only.
    const ffmpeg = resolveFfmpeg(ctx.config.ffmpegPath);
    if (!ffmpeg.ok) this.log.warn('WebRTC viewers of AAC feeds will get no audio', { reason: ffmpeg.reason });
    this.sources = new RtpSourceRegistry(ctx.log, ffmpeg.ok ? { ffmpegPath: ffmpeg.path } : undefined);
  }

  /** Sessions for the status page and API. */
  status(): WebRtcSessionStatus[] {
    return [...this.sessions.values()].map((s) => ({
      id: s.id,
      kind: s.kind,
      name: s.name,
      feed: s.feed.key,
      remoteAddress: s.conn.remoteAddress,
      state: s.pc.connectionState,
      packetsSent: s.viewer?.packetsSent ?? 0,
      framesIn: s.ingest?.framesIn ?? 0,
      keyframeReplays: s.viewer?.replays ?? 0,
      videoReencoded: s.kind === 'whep' && (s.source?.reencoding ?? false),
      simulcastLayer: s.viewer?.layerRid ?? null,
      layerSwitches: s.viewer?.layerSwitches ?? 0,
      bandwidthEstimateKbps: s.viewer?.bandwidthEstimate !== undefined ? Math.round(s.viewer.bandwidthEstimate / 1000) : null,
      sendPath: s.viewer?.started === true ? s.viewer.sendPath : null,
      retransmits: s.viewer?.retransmits ?? 0,
      srtpVerified: s.srtpGuard?.verified ?? 0,
      srtpRejected: s.srtpGuard?.rejected ?? null,
      srtpProfile: s.srtpGuard?.profileName ?? null,
      openedAt: s.openedAt.toISOString(),
    }));
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The single-port socket, once open (udpMuxPort set). */
  get udpMux(): UdpMux | undefined {
    return this.mux;
  }

  /**
   * Opens the single-port socket now (udpMuxPort set), so a port in use fails at start-up rather
   * than at the first offer. Otherwise it opens with the first session.
   */
  async ready(): Promise<void> {
    await this.openMux();
  }

  private async openMux(): Promise<UdpMux | undefined> {
    const { udpMuxPort, tcp, tcpPort } = this.options;
    if (udpMuxPort === undefined && !tcp) return undefined;
    if (this.mux !== undefined) return this.mux;
    this.muxOpening ??= UdpMux.open({
      udpPort: udpMuxPort,
      tcpPort: tcp ? (tcpPort ?? udpMuxPort ?? 0) : undefined,
      bindAddresses: muxBindAddresses(this.options),
      idleTimeoutMs: this.options.peerTimeoutMs,
      log: this.log.child({ part: 'webrtc-udp-mux' }),
    }).then(
      (mux) => {
        if (this.closed) mux.close();
        else
          this.log.info('WebRTC ICE mux', {
            udpPort: mux.port,
            tcpPort: mux.tcpPort,
            bind: muxBindAddresses(this.options).join(' '),
          });
        this.mux = mux;
        return mux;
      },
      (err: unknown) => {
        this.muxOpening = undefined;
        throw err;
      },
    );
    return this.muxOpening;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.sessions.values()].map((s) => this.closeSession(s, 'server stopping')));
    this.sources.closeAll();
    this.mux?.close();
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, _url: URL, conn: ConnectionInfo): boolean {
    const target = parseTarget(path);
    if (target === undefined) return false;
    conn.target = path;
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      res.writeHead(204, {
        ...CORS_HEADERS,
        'Access-Control-Max-Age': '86400',
        ...(target.sessionId === undefined
          ? { 'Accept-Post': 'application/sdp' }
          : { 'Accept-Patch': 'application/trickle-ice-sdpfrag' }),
        ...linkHeader(this.options),
        'Content-Length': '0',
      });
      res.end();
      return true;
    }
    this.serve(req, res, target, method, conn).catch((err: unknown) => {
      if (err instanceof HttpError) {
        if (err.status >= 500 || err.status === 403 || err.status === 401 || err.status === 409) {
          this.log.warn(`${target.kind.toUpperCase()} refused`, {
            name: target.name,
            status: err.status,
            reason: err.message,
            from: conn.remoteAddress,
          });
        } else {
          this.log.info(`${target.kind.toUpperCase()} refused`, {
            name: target.name,
            status: err.status,
            reason: err.message,
            from: conn.remoteAddress,
          });
        }
        sendPlain(res, err.status, err.message, err.headers);
        return;
      }
      this.log.error('WebRTC request failed', { url: req.url, err });
      sendPlain(res, 500, 'Internal error; the server log has the details.');
    });
    return true;
  }

  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    target: Target,
    method: string,
    conn: ConnectionInfo,
  ): Promise<void> {
    if (target.sessionId !== undefined) {
      const session = this.sessions.get(target.sessionId);
      if (session === undefined || session.name !== target.name || session.kind !== target.kind) {
        throw new HttpError(
          404,
          `No ${target.kind.toUpperCase()} session ${target.sessionId} here (it ended, or never existed).`,
        );
      }
      if (method === 'DELETE') {
        await this.closeSession(session, 'ended by the client (DELETE)');
        sendPlain(res, 200, `Session ${session.id} ended.`);
        return;
      }
      if (method === 'PATCH') {
        await this.trickle(req, res, session);
        return;
      }
      throw new HttpError(405, `/${target.name}/${target.kind}/${target.sessionId} accepts DELETE, PATCH and OPTIONS.`, {
        Allow: 'DELETE, PATCH, OPTIONS',
      });
    }
    if (method !== 'POST') {
      throw new HttpError(405, `/${target.name}/${target.kind} accepts POST (an SDP offer) and OPTIONS.`, {
        Allow: 'POST, OPTIONS',
      });
    }
    if (this.closed) throw new HttpError(503, 'The server is stopping.');
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/sdp') {
      throw new HttpError(
        415,
        `POST /${target.name}/${target.kind} takes an SDP offer with Content-Type: application/sdp (got ${type === '' ? 'none' : type}).`,
      );
    }
    if (this.ctx.connections.size >= this.ctx.config.maxClients) {
      this.ctx.counters.refusedConnections++;
      throw new HttpError(
        503,
        `Server too busy: ${this.ctx.connections.size} connections are open, the limit is MaxClients ${this.ctx.config.maxClients}.`,
        {
          'Retry-After': '5',
        },
      );
    }
    if (target.kind === 'whep') await this.startWhep(req, res, target, conn);
    else await this.startWhip(req, res, target, conn);
  }

  private async loadWerift(): Promise<WeriftParts> {
    this.weriftLoading ??= Promise.all([
      import('./peer.js'),
      import('./from-feed.js'),
      import('./native-rtp-send.js'),
      import('./srtp-guard.js'),
    ]).then(([peer, viewer, native, guard]) => {
      this.log.info('WHEP send path', {
        send: process.env['FEEDCAST_WHEP_SEND'] === 'werift' ? 'werift (FEEDCAST_WHEP_SEND=werift)' : 'direct SRTP',
        protect: native.nativeRtpSendStatus,
      });
      return { peer, viewer, guard };
    });
    this.werift = await this.weriftLoading;
    return this.werift;
  }

  /** The werift parts; only called after loadWerift() (every offer starts with it). */
  private get loaded(): WeriftParts {
    if (this.werift === undefined) throw new Error('webrtc: werift used before it was loaded');
    return this.werift;
  }

  private async startWhep(req: IncomingMessage, res: ServerResponse, target: Target, httpConn: ConnectionInfo): Promise<void> {
    await this.loadWerift();
    const resolved = this.readTarget(target.name);
    // The same admission as every other protocol: ACL, read token / JWT, hooks, callback, MaxReaders,
    // MaxBandwidth, the feed's on-demand source.
    const admission = await this.ctx.access.admit({
      protocol: 'webrtc',
      target: resolved.target,
      address: httpConn.remoteAddress,
      credentials: credentialsFrom(new URL(req.url ?? '/', 'http://feedcast.invalid').searchParams, req.headers.authorization),
    });
    if (admission.kind === 'refused') throw whepRefusal(admission);
    const feed = resolved.feed;
    let source: FeedRtpSource | undefined;
    let session: Session | undefined;
    const layerSources: FeedRtpSource[] = [];
    try {
      const text = await readBody(req);
      const offer = parseOffer(text);
      if (admission.sourced) await this.waitFeedSource(feed);
      const layers = this.simulcastLayers(req, resolved.target.stream === undefined ? feed : undefined);
      const rtpSource = this.sources.acquire(feed);
      source = rtpSource;
      for (const layer of layers?.feeds ?? []) layerSources.push(this.sources.acquire(layer));
      const sendable = source.tracks;
      const feedHasTracks = feed.tracks.length > 0;
      const videoTrack = resolved.noVideo ? undefined : sendable.video;
      const audioTrack = resolved.noAudio ? undefined : sendable.audio;
      const notes = [...sendable.notes];
      const keep = new Map<number, number>();
      const codecs: PeerCodecs = { video: undefined, audio: undefined };
      const hint =
        source.videoProfileHint ??
        (videoTrack?.config !== undefined && videoTrack.config.length >= 4
          ? { profileIdc: videoTrack.config[1] as number, constraintFlags: videoTrack.config[2] as number }
          : undefined);
      const whyNot: string[] = [];
      offer.media.forEach((m, index) => {
        if (m.port === 0 || !receives(m)) return;
        if (m.kind === 'video' && codecs.video === undefined && (videoTrack !== undefined || !feedHasTracks)) {
          // The feed's codec, or H.264 when its H.264/H.265 with B-frames is re-encoded.
          const sent = videoTrack !== undefined ? source?.videoCodec : undefined;
          const codec = sent !== undefined && isWebRtcVideoCodec(sent) ? sent : 'h264';
          const c = WEBRTC_VIDEO[codec].choose(m, hint);
          if (c === undefined) {
            whyNot.push(
              codec === 'h264'
                ? 'the offer has no H.264 with packetization-mode=1 for video'
                : `the offer has no ${codec.toUpperCase()} for video`,
            );
          } else {
            keep.set(index, c.payloadType);
            codecs.video = peerCodec(c, WEBRTC_VIDEO[codec].peer);
          }
        } else if (m.kind === 'audio' && codecs.audio === undefined && (audioTrack !== undefined || !feedHasTracks)) {
          const c = chooseOpus(m);
          if (c === undefined) whyNot.push('the offer has no Opus for audio');
          else {
            keep.set(index, c.payloadType);
            codecs.audio = peerCodec(c, OPUS);
          }
        }
      });
      if (codecs.video === undefined && codecs.audio === undefined) {
        const has = feed.tracks.map((t) => t.codec).join(', ') || 'no tracks yet';
        throw new HttpError(
          406,
          `No codec in common: ${resolved.what} sends H.264 video and Opus audio over WebRTC (it has ${has}); ${[...whyNot, ...notes].join('; ') || 'the offer asks to receive neither'}.`,
        );
      }
      if (codecs.audio === undefined && !resolved.noAudio && feed.tracks.some((t) => t.kind === 'audio')) {
        notes.push('audio is not sent');
      }
      if (codecs.video === undefined && videoTrack !== undefined) {
        // An H.265 or AV1 feed and a browser that cannot take it: audio only, and why.
        notes.push(`video is not sent: ${whyNot.join('; ')}`);
      }
      const sending = { video: codecs.video !== undefined, audio: codecs.audio !== undefined };
      fillUnusedSections(offer, keep, codecs);
      const { pc, conn, id } = this.newPeer('whep', target.name, httpConn, codecs);
      session = this.register(id, 'whep', target.name, feed, pc, conn);
      session.source = source;
      session.layerSources = layerSources.splice(0);
      session.releaseFeedSource = admission.release;
      // Sending transceivers exist before the offer is applied, so werift matches them to its sections.
      if (sending.video) pc.addTransceiver('video', { direction: 'sendonly' });
      if (sending.audio) pc.addTransceiver('audio', { direction: 'sendonly' });
      const answer = await this.negotiate(session, trimOffer(text, keep));
      const videoT = pc.getTransceivers().find((t) => t.kind === 'video');
      const playoutId = this.options.playoutDelayZero
        ? videoT?.headerExtensions.find((e) => e.uri === PLAYOUT_DELAY_URI)?.id
        : undefined;
      const live = session;
      const mux = this.mux;
      const muxUfrag = session.muxUfrag;
      if (layers !== undefined) {
        notes.push(
          `simulcast layer ${layers.rids[layers.start] ?? '?'} of ${layers.rids.join(', ')}${layers.adaptive ? ', following the loss this viewer reports' : ''}`,
        );
      }
      const viewer = new this.loaded.viewer.WhepViewer(pc, source, conn, this.log.child({ session: id }), {
        playoutDelayExtensionId: playoutId,
        // FEEDCAST_WHEP_SEND=werift keeps werift's RTP sender (docs/webrtc.md: for comparison and diagnosis).
        directSend: process.env['FEEDCAST_WHEP_SEND'] !== 'werift',
        video: sending.video,
        audio: sending.audio,
        ...(layers !== undefined
          ? {
              layers: {
                rids: layers.rids,
                sources: live.layerSources,
                start: layers.start,
                adaptive: layers.adaptive,
                requestKeyframe: (rid: string) => this.publisherKeyframe(feed, rid),
              },
            }
          : {}),
        // Packets queue only on ICE-TCP connections (through the mux): their backlog is how far behind the viewer is.
        ...(mux?.tcpPort !== undefined && muxUfrag !== undefined
          ? {
              slow: {
                limits: {
                  maxQueueBytes: Math.min(this.ctx.config.readerMaxQueueBytes, this.loaded.viewer.WHEP_MAX_BACKLOG_BYTES),
                  maxLagMs: this.ctx.config.readerMaxLagMs,
                },
                backlog: () => mux.backlogOf(muxUfrag),
                onTooSlow: (err: Error) => {
                  this.log.warn('WHEP viewer closed', { id, reason: 'reader too slow', err, skips: viewer.skips });
                  this.endSession(live, 'reader too slow');
                },
              },
            }
          : {}),
      });
      session.viewer = viewer;
      const started = pc.connectionStateChange.subscribe((state) => {
        if (state === 'connected') {
          // The status page's connection list says when this viewer gets the re-encoded video.
          conn.state = rtpSource.reencoding ? 'SEND_DATA (video re-encoded: B-frames)' : 'SEND_DATA';
          viewer.start();
          started.unSubscribe();
        }
      });
      const offSource = source.on('close', (reason) => this.endSession(live, reason));
      // An expiring read token or JWT ends the peer (closeSession releases the admission, which disarms this).
      admission.cutAtExpiry(() => this.endSession(live, 'read token expired'));
      const viewerStop = viewer.stop.bind(viewer);
      viewer.stop = () => {
        offSource();
        viewerStop();
      };
      this.respondCreated(res, target, id, answer, notes);
      this.log.info('WHEP session', {
        id,
        name: target.name,
        from: conn.remoteAddress,
        video: codecs.video?.payloadType,
        audio: codecs.audio?.payloadType,
        notes: notes.join('; '),
      });
    } catch (err) {
      for (const layer of layerSources) this.sources.release(layer);
      if (session !== undefined) await this.closeSession(session, 'negotiation failed');
      else {
        if (source !== undefined) this.sources.release(source);
        admission.release();
      }
      throw err;
    }
  }

  /**
   * A WHEP viewer of a simulcast feed (docs/webrtc.md, Simulcast): its layer feeds, largest first,
   * the one to start with (`?layer=RID` or `X-Feedcast-Layer: RID`, which also holds the viewer
   * there; else the largest, adapting to the viewer's loss). undefined for other feeds.
   */
  private simulcastLayers(
    req: IncomingMessage,
    feed: Feed | undefined,
  ): { feeds: Feed[]; rids: string[]; start: number; adaptive: boolean } | undefined {
    const asked =
      new URL(req.url ?? '/', 'http://feedcast.invalid').searchParams.get('layer') ??
      (typeof req.headers['x-feedcast-layer'] === 'string' ? req.headers['x-feedcast-layer'] : undefined);
    const area = (f: Feed): number => {
      const v = f.tracks.find((t) => t.kind === 'video');
      return (v?.width ?? 0) * (v?.height ?? 0);
    };
    const feeds = feed !== undefined ? this.ctx.feeds.layersOf(feed).sort((a, b) => area(b) - area(a)) : [];
    if (feeds.length === 0 || feed === undefined) {
      if (asked !== undefined && asked !== '') {
        throw new HttpError(400, `layer=${asked.slice(0, 20)}: ${feed?.key ?? 'this stream'} is not published with simulcast.`);
      }
      return undefined;
    }
    const rids = feeds.map((f) => f.key.slice(feed.key.length + 1));
    if (asked === undefined || asked === '') return { feeds, rids, start: 0, adaptive: true };
    const start = rids.findIndex((r) => r.toLowerCase() === asked.toLowerCase());
    if (start < 0) {
      throw new HttpError(400, `No simulcast layer "${asked.slice(0, 20)}" in feed ${feed.key}: it has ${rids.join(', ')}.`);
    }
    return { feeds, rids, start, adaptive: false };
  }

  /** Asks the WHIP publisher of `feed` for a keyframe of simulcast layer `rid` (a viewer switches to it). */
  private publisherKeyframe(feed: Feed, rid: string): void {
    for (const s of this.sessions.values()) {
      if (s.kind === 'whip' && s.feed === feed) s.ingest?.requestKeyframe(rid);
    }
  }

  private async startWhip(req: IncomingMessage, res: ServerResponse, target: Target, httpConn: ConnectionInfo): Promise<void> {
    await this.loadWerift();
    const feed = this.ctx.feeds.forPublisher(target.name);
    if (feed === undefined) {
      throw new HttpError(
        404,
        `No feed named "${target.name}". Declare it with <Feed ${target.name}.ffm>, or enable DynamicFeeds.`,
      );
    }
    // ACL, publish secret (?secret= or "Authorization: Bearer SECRET"), JWT, hooks, callback.
    const decision = await this.ctx.access.policy.authorizePublish({
      protocol: 'webrtc',
      feed: feed.key,
      address: httpConn.remoteAddress,
      credentials: credentialsFrom(new URL(req.url ?? '/', 'http://feedcast.invalid').searchParams, req.headers.authorization),
    });
    refuseUnlessAllowed(decision);
    const text = await readBody(req);
    const offer = parseOffer(text);
    const keep = new Map<number, number>();
    const codecs: PeerCodecs = { video: undefined, audio: undefined };
    let videoCodec: WebRtcVideoCodec = 'h264';
    let rids: readonly string[] = [];
    const whyNot: string[] = [];
    offer.media.forEach((m, index) => {
      if (m.port === 0 || !sends(m)) return;
      if (m.kind === 'video' && codecs.video === undefined) {
        rids = m.simulcastSend;
        // H.264 first (every output carries it); then the others in WHIP_VIDEO_ORDER.
        const found = WHIP_VIDEO_ORDER.map((codec) => ({ codec, c: WEBRTC_VIDEO[codec].choose(m) })).find(
          (x) => x.c !== undefined,
        );
        if (found?.c === undefined) {
          whyNot.push(`the video section offers none of ${WHIP_VIDEO_NAMES}`);
        } else {
          keep.set(index, found.c.payloadType);
          videoCodec = found.codec;
          codecs.video = peerCodec(found.c, WEBRTC_VIDEO[found.codec].peer);
        }
      } else if (m.kind === 'audio' && codecs.audio === undefined) {
        const c = chooseOpus(m);
        if (c === undefined) whyNot.push('the audio section offers no Opus');
        else {
          keep.set(index, c.payloadType);
          codecs.audio = peerCodec(c, OPUS);
        }
      }
    });
    if (codecs.video === undefined && codecs.audio === undefined) {
      throw new HttpError(
        406,
        `No codec in common: WHIP takes ${WHIP_VIDEO_NAMES} video and Opus audio; ${whyNot.join('; ') || 'the offer sends no media'}.`,
      );
    }
    const accepting = { video: codecs.video !== undefined, audio: codecs.audio !== undefined };
    fillUnusedSections(offer, keep, codecs);
    let publisher: PublisherSession;
    // Simulcast: the feed and its layer feeds keep one timeline (HLS switches between the layers).
    const clockOrigin: SharedClockOrigin | undefined = rids.length > 0 ? {} : undefined;
    try {
      // Workers N: another worker's publisher of this feed is refused here too (FeedManager.claimPublisher).
      await this.ctx.feeds.claimPublisher(feed, 'webrtc');
      publisher = feed.attachPublisher(
        { protocol: 'webrtc', remoteAddress: httpConn.remoteAddress, startedAt: new Date() },
        Date.now(),
        clockOrigin,
      );
    } catch (err) {
      if (err instanceof FeedBusyError) throw new HttpError(409, `${err.message}.`);
      throw err;
    }
    // Simulcast: each layer gets its feed (FEED~RID), published by this session too.
    const layers: { rid: string; session: PublisherSession }[] = [];
    try {
      this.ctx.feeds.setLayers(feed, rids, publisher.info).forEach((layerFeed, i) => {
        layers.push({ rid: rids[i] as string, session: layerFeed.attachPublisher(publisher.info, Date.now(), clockOrigin) });
      });
    } catch (err) {
      for (const layer of layers) layer.session.end('simulcast layer refused');
      publisher.end('simulcast layer refused');
      if (err instanceof FeedBusyError) throw new HttpError(409, `${err.message}.`);
      throw err;
    }
    const { pc, conn, id } = this.newPeer('whip', target.name, httpConn, codecs);
    const session = this.register(id, 'whip', target.name, feed, pc, conn);
    session.publisher = publisher;
    session.layerPublishers = layers.map((l) => l.session);
    conn.role = 'publisher';
    conn.state = 'RECEIVE_DATA';
    publisher.on('end', (reason) => this.endSession(session, `publisher ended: ${reason}`));
    try {
      session.ingest = new WhipIngest(pc, publisher, conn, this.log.child({ session: id, feed: feed.key }), {
        keyframeIntervalMs: this.options.whipKeyframeIntervalMs,
        video: accepting.video,
        videoCodec,
        audio: accepting.audio,
        layers,
      });
      const negotiated = await this.negotiate(session, trimOffer(text, keep));
      // A browser's bandwidth estimate starts near 300 kbit/s and, with loss reports only (werift
      // sends no congestion feedback), climbs for many seconds before its larger layers are sent.
      const answer =
        rids.length > 0 && codecs.video !== undefined
          ? addFmtpParameter(
              negotiated,
              codecs.video.payloadType,
              'x-google-start-bitrate',
              String(this.options.whipSimulcastStartKbps),
            )
          : negotiated;
      this.respondCreated(res, target, id, answer, whyNot);
      this.log.info('WHIP session', {
        id,
        feed: feed.key,
        from: conn.remoteAddress,
        video: codecs.video !== undefined,
        audio: codecs.audio !== undefined,
        ...(rids.length > 0 ? { simulcast: rids.join(';') } : {}),
      });
    } catch (err) {
      await this.closeSession(session, 'negotiation failed');
      throw err;
    }
  }

  private newPeer(
    kind: 'whep' | 'whip',
    name: string,
    httpConn: ConnectionInfo,
    codecs: PeerCodecs,
  ): { pc: RTCPeerConnection; conn: ConnectionInfo; id: string } {
    const id = randomUUID();
    const pc = this.loaded.peer.createPeer(this.options, codecs, {
      sendPlayoutDelay: kind === 'whep' && this.options.playoutDelayZero,
      receiving: kind === 'whip',
    });
    const conn = this.ctx.connections.open('WebRTC', httpConn.remoteAddress);
    conn.role = kind === 'whep' ? 'reader' : 'publisher';
    conn.target = `${name}/${kind}`;
    conn.state = 'WAIT_CONNECT';
    return { pc, conn, id };
  }

  private register(
    id: string,
    kind: 'whep' | 'whip',
    name: string,
    feed: Feed,
    pc: RTCPeerConnection,
    conn: ConnectionInfo,
  ): Session {
    const session: Session = {
      id,
      kind,
      name,
      feed,
      pc,
      conn,
      openedAt: new Date(),
      viewer: undefined,
      ingest: undefined,
      source: undefined,
      layerSources: [],
      publisher: undefined,
      layerPublishers: [],
      stopWatch: undefined,
      leaveMux: undefined,
      muxUfrag: undefined,
      releaseFeedSource: undefined,
      srtpGuard: undefined,
      srtpWarned: false,
      closed: false,
    };
    this.sessions.set(id, session);
    conn.kick = (reason) => this.endSession(session, reason);
    return session;
  }

  /**
   * Applies the (trimmed) offer and returns the answer with the server's candidates. In single-port
   * or ICE-TCP mode the peer joins the mux: its UDP candidates carry the mux port, and/or a passive
   * TCP candidate on the mux's TCP port is added.
   */
  private async negotiate(session: Session, offerText: string): Promise<string> {
    const pc = session.pc;
    const mux = await this.openMux();
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: offerForPeer(offerText, this.options) });
    } catch (err) {
      throw new HttpError(400, `The SDP offer could not be applied: ${err instanceof Error ? err.message : String(err)}.`);
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.guardSrtp(session);
    await this.loaded.peer.gatheringComplete(pc, this.options.gatherTimeoutMs);
    const sdp = pc.localDescription?.sdp;
    if (sdp === undefined) throw new Error('werift produced no local description');
    if (mux === undefined) return keepCandidates(sdp, this.options.hostAddresses);
    const target = muxTarget(sdp, this.options);
    const serverUfrag = /^a=ice-ufrag:(\S+)/m.exec(sdp)?.[1];
    const serverPassword = /^a=ice-pwd:(\S+)/m.exec(sdp)?.[1];
    const clientUfrag = /^a=ice-ufrag:(\S+)/m.exec(offerText)?.[1];
    if (target === undefined || serverUfrag === undefined || serverPassword === undefined || clientUfrag === undefined) {
      throw new Error('werift answer has no UDP host candidate or ICE credentials for the UDP mux');
    }
    if (session.closed) throw new HttpError(503, 'The session ended while it was being set up.');
    session.leaveMux = mux.addPeer({ serverUfrag, serverPassword, clientUfrag, target });
    session.muxUfrag = serverUfrag;
    return keepCandidates(sdp, this.options.hostAddresses, { udp: mux.port, tcp: mux.tcpPort });
  }

  /**
   * Verifies every SRTP/SRTCP packet of the peer before werift reads it (srtp-guard.ts): werift
   * checks neither tags nor replays. A werift whose internals moved gets no peer at all: a 500 and
   * an error in the log, rather than media taken unauthenticated.
   */
  private guardSrtp(session: Session): void {
    const guard = this.loaded.guard.SrtpGuard.install(session.pc, {
      rejected: (kind, reason, detail) => {
        const totals = (this.ctx.counters.webrtcInboundRejected[kind] ??= {});
        totals[reason] = (totals[reason] ?? 0) + 1;
        const counter = kind === 'srtp' ? 'srtpRejected' : 'srtcpRejected';
        session.conn.counters[counter] = (session.conn.counters[counter] ?? 0) + 1;
        if (session.srtpWarned) return;
        session.srtpWarned = true;
        this.log.warn(
          `${session.kind.toUpperCase()} dropped an inbound ${kind.toUpperCase()} packet (${reason}); more are counted, not logged`,
          {
            id: session.id,
            name: session.name,
            remoteAddress: session.conn.remoteAddress,
            detail,
          },
        );
      },
      broken: (detail) => {
        this.log.error('inbound SRTP cannot be verified: werift has changed (srtp-guard.ts); its media is dropped', {
          id: session.id,
          detail,
        });
      },
    });
    if (typeof guard === 'string') {
      this.log.error('inbound SRTP cannot be verified: werift has changed (srtp-guard.ts)', { id: session.id, detail: guard });
      throw new HttpError(500, `WebRTC is unavailable: inbound SRTP cannot be verified (${guard}).`);
    }
    session.conn.counters['srtpRejected'] = 0;
    session.conn.counters['srtcpRejected'] = 0;
    session.srtpGuard = guard;
  }

  /** Waits, bounded, for the tracks of a feed whose on-demand Launch/Source child the admission started. */
  private async waitFeedSource(feed: Feed): Promise<void> {
    if (feed.tracks.length > 0) return;
    const timeoutMs = this.options.sourceStartTimeoutMs;
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const off = feed.on('tracks', (tracks) => {
        if (tracks.length > 0) done(true);
      });
      function done(result: boolean): void {
        clearTimeout(timer);
        off();
        resolve(result);
      }
    });
    if (!ok) {
      throw new HttpError(
        503,
        `Feed ${feed.key} is made by ffmpeg on demand and had no tracks after ${timeoutMs} ms; the server log says why.`,
        { 'Retry-After': '5' },
      );
    }
  }

  private respondCreated(res: ServerResponse, target: Target, id: string, answer: string, notes: readonly string[]): void {
    const session = this.sessions.get(id);
    if (session !== undefined) {
      session.stopWatch = this.loaded.peer.watchPeer(session.pc, this.options.peerTimeoutMs, (reason) =>
        this.endSession(session, reason),
      );
    }
    const headers: Record<string, string | string[]> = {
      ...CORS_HEADERS,
      'Content-Type': 'application/sdp',
      'Content-Length': String(Buffer.byteLength(answer)),
      Location: `/${encodeURIComponent(target.name)}/${target.kind}/${id}`,
      ETag: `"${id}"`,
      'Accept-Patch': 'application/trickle-ice-sdpfrag',
      'Cache-Control': 'no-cache',
      ...linkHeader(this.options),
    };
    if (notes.length > 0) headers['X-Feedcast-Note'] = notes.join('; ').replace(/[^\x20-\x7e]/g, '?');
    res.writeHead(201, headers);
    res.end(answer);
  }

  /** PATCH with application/trickle-ice-sdpfrag (RFC 8840): the client's late candidates. */
  private async trickle(req: IncomingMessage, res: ServerResponse, session: Session): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/trickle-ice-sdpfrag') {
      throw new HttpError(415, 'PATCH takes Content-Type: application/trickle-ice-sdpfrag (RFC 8840) with a=candidate lines.', {
        'Accept-Patch': 'application/trickle-ice-sdpfrag',
      });
    }
    const text = await readBody(req);
    const ufrag = /^a=ice-ufrag:(\S+)/m.exec(text)?.[1];
    const remoteUfrag = session.pc.remoteDescription?.sdp.match(/^a=ice-ufrag:(\S+)/m)?.[1];
    if (ufrag !== undefined && remoteUfrag !== undefined && ufrag !== remoteUfrag) {
      throw new HttpError(405, 'ICE restarts are not supported: start a new session (POST a new offer).', {
        Allow: 'DELETE, PATCH, OPTIONS',
      });
    }
    let mid: string | undefined;
    let added = 0;
    // Single-port and ICE-TCP modes keep the client's candidates from werift (offerForPeer): the
    // mux relays the client's checks instead, and the server never connects out over TCP.
    const lines = offerForPeer(text, this.options).split(/\r?\n/);
    for (const line of lines) {
      if (line.startsWith('a=mid:')) mid = line.slice(6);
      if (!line.startsWith('a=candidate:')) continue;
      if (line.length > 512) throw new HttpError(400, 'A candidate line is over 512 characters.');
      try {
        await session.pc.addIceCandidate({ candidate: line.slice(2), sdpMid: mid ?? '0', sdpMLineIndex: 0 });
        added++;
      } catch (err) {
        throw new HttpError(400, `Candidate not accepted: ${err instanceof Error ? err.message : String(err)}.`);
      }
    }
    res.writeHead(204, { ...CORS_HEADERS, 'Cache-Control': 'no-cache' });
    res.end();
    this.log.debug('trickle candidates', { session: session.id, added });
  }

  /** closeSession for callers that do not wait (events, timers, kicks): a failure is logged. */
  private endSession(session: Session, reason: string): void {
    detach(this.closeSession(session, reason), this.log, 'WebRTC session close', { session: session.id });
  }

  private async closeSession(session: Session, reason: string): Promise<void> {
    if (session.closed) return;
    session.closed = true;
    this.sessions.delete(session.id);
    session.stopWatch?.();
    session.leaveMux?.();
    session.releaseFeedSource?.();
    session.viewer?.stop();
    session.ingest?.stop();
    session.publisher?.end(reason);
    for (const layer of session.layerPublishers) layer.end(reason);
    if (session.source !== undefined) this.sources.release(session.source);
    for (const layer of session.layerSources) this.sources.release(layer);
    this.ctx.connections.close(session.conn);
    const guard = session.srtpGuard;
    this.log.info(`${session.kind.toUpperCase()} session closed`, {
      id: session.id,
      name: session.name,
      reason,
      ...(session.srtpWarned && guard !== undefined ? { srtpRejected: guard.rejected } : {}),
    });
    const bypassed = guard?.bypassed() ?? 0;
    if (bypassed > 0) {
      this.log.error('werift read SRTP/SRTCP packets that were never verified: its receive path has moved (srtp-guard.ts)', {
        id: session.id,
        packets: bypassed,
      });
    }
    try {
      await session.pc.close();
    } catch (err) {
      this.log.debug('peer close failed', { err });
    }
  }

  /** A WHEP NAME: a feed key, or a declared <Stream> of a feed (passthrough). */
  private readTarget(name: string): {
    feed: Feed;
    what: string;
    noAudio: boolean;
    noVideo: boolean;
    /** What access/admit is asked for. */
    target: ReadTarget;
  } {
    const resolved = this.ctx.access.resolve(name);
    const stream = resolved?.stream;
    if (stream !== undefined) {
      const feed = resolved?.feed;
      if (feed === undefined) throw new HttpError(404, `/${name} has no live feed to play over WebRTC.`);
      if (stream.needsTranscode) {
        throw new HttpError(501, `/${name} is an encoded stream; WebRTC plays feeds as published: use /${feed.key}/whep.`);
      }
      return {
        feed,
        what: `stream ${stream.name}`,
        noAudio: stream.noAudio,
        noVideo: stream.noVideo,
        target: { name: stream.name, feed, stream },
      };
    }
    const feed = resolved?.feed;
    if (feed === undefined) throw new HttpError(404, `No feed or stream named "${name}". The list is at /.`);
    return {
      feed,
      what: `feed ${feed.key}`,
      noAudio: false,
      noVideo: false,
      target: { name: feed.key, feed, stream: undefined },
    };
  }
}

/** `NAME/whep`, `NAME/whip`, `NAME/whep/ID`, `NAME/whip/ID`. */
export function parseTarget(path: string): Target | undefined {
  const m = /^(.+)\/(whep|whip)(?:\/([0-9a-f-]{36}))?$/.exec(path);
  if (m === null) return undefined;
  return { name: m[1] as string, kind: m[2] as 'whep' | 'whip', sessionId: m[3] };
}

function parseOffer(text: string): SdpOffer {
  try {
    return parseSdpOffer(text);
  } catch (err) {
    if (err instanceof MalformedInputError) throw new HttpError(400, `Malformed SDP offer: ${err.message}.`);
    throw err;
  }
}

/** Codecs only there to answer a section Feedcast does not use (werift cannot reject a section). */
const NOT_MEDIA = new Set(['rtx', 'red', 'ulpfec', 'flexfec-03', 'cn', 'telephone-event']);

/**
 * werift fails a negotiation with a section none of its codecs matches, and cannot reject one
 * (port 0), so an unused audio or video section is answered with its own first codec and nothing
 * is sent or taken on it.
 */
function fillUnusedSections(offer: SdpOffer, keep: Map<number, number>, codecs: PeerCodecs): void {
  offer.media.forEach((m, index) => {
    if (keep.has(index) || m.port === 0 || (m.kind !== 'video' && m.kind !== 'audio')) return;
    const kind = m.kind;
    const existing = codecs[kind];
    const same = existing !== undefined ? m.codecs.find((c) => c.payloadType === existing.payloadType) : undefined;
    const filler = same ?? m.codecs.find((c) => !NOT_MEDIA.has(c.name.toLowerCase()));
    if (filler === undefined) return;
    keep.set(index, filler.payloadType);
    codecs[kind] ??= {
      payloadType: filler.payloadType,
      mimeType: `${kind}/${filler.name}`,
      parameters: fmtpText(filler.fmtp),
      clockRate: filler.clockRate,
      channels: filler.channels,
    };
  });
}

function receives(m: OfferMedia): boolean {
  return m.direction === 'recvonly' || m.direction === 'sendrecv';
}

function sends(m: OfferMedia): boolean {
  return m.direction === 'sendonly' || m.direction === 'sendrecv';
}

/** The codecs werift is told to negotiate: the name, clock rate and channels of each. */
const OPUS = { mimeType: 'audio/opus', clockRate: 48_000, channels: 2 } as const;

/** The video codecs sent and taken over WebRTC: how each is picked from an offer's section, and its name for werift. */
const WEBRTC_VIDEO: Record<
  WebRtcVideoCodec,
  {
    choose: (m: OfferMedia, hint?: H264ProfileHint) => OfferCodec | undefined;
    peer: Omit<PeerCodec, 'payloadType' | 'parameters'>;
  }
> = {
  h264: { choose: (m, hint) => chooseH264(m, hint), peer: { mimeType: 'video/H264', clockRate: 90_000, channels: undefined } },
  vp8: { choose: chooseVp8, peer: { mimeType: 'video/VP8', clockRate: 90_000, channels: undefined } },
  vp9: { choose: chooseVp9, peer: { mimeType: 'video/VP9', clockRate: 90_000, channels: undefined } },
  av1: { choose: chooseAv1, peer: { mimeType: 'video/AV1', clockRate: 90_000, channels: undefined } },
  h265: { choose: chooseH265, peer: { mimeType: 'video/H265', clockRate: 90_000, channels: undefined } },
};

/** WHIP's preference when an offer has several: H.264 first (every output carries it). */
const WHIP_VIDEO_ORDER: readonly WebRtcVideoCodec[] = ['h264', 'vp8', 'vp9', 'av1', 'h265'];
const WHIP_VIDEO_NAMES = 'H.264 (packetization-mode=1), VP8, VP9, AV1 or H.265';

/** The PeerCodec for a codec chosen from the offer (its payload type and fmtp kept). */
function peerCodec(c: OfferCodec, codec: Omit<PeerCodec, 'payloadType' | 'parameters'>): PeerCodec {
  return { payloadType: c.payloadType, parameters: fmtpText(c.fmtp), ...codec };
}

function fmtpText(fmtp: ReadonlyMap<string, string>): string | undefined {
  if (fmtp.size === 0) return undefined;
  return [...fmtp].map(([k, v]) => `${k}=${v}`).join(';');
}

function linkHeader(options: WebRtcIceOptions): Record<string, string[]> {
  const links = iceServerLinks(options.clientIceServers);
  return links.length > 0 ? { Link: links } : {};
}

async function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > MAX_OFFER_BYTES) {
    req.resume();
    throw new HttpError(413, `The body is ${declared} bytes; the limit is ${MAX_OFFER_BYTES}.`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_OFFER_BYTES) {
      req.resume();
      throw new HttpError(413, `The body is over ${MAX_OFFER_BYTES} bytes.`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendPlain(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = message.endsWith('\n') ? message : message + '\n';
  res.writeHead(status, {
    ...CORS_HEADERS,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-cache',
    ...headers,
  });
  res.end(body);
}
