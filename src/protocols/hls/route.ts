// The HLS URLs on the HTTP listener (docs/hls.md): `/KEY/index.m3u8` (fMP4, LL-HLS) and
// `/KEY/ts/index.m3u8` (MPEG-TS) for every feed, `/NAME` for each declared `Format hls` stream,
// `/KEY/master.m3u8` and `/KEY/rN/index.m3u8` for a feed with an encoder ladder (one LL-HLS
// rendition per variant), and the init sections, segments and parts under them. The `/KEY/index.m3u8`
// of a feed published with simulcast (WHIP) is a multivariant playlist of its layer feeds (`KEY~RID`).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StreamConfig } from '../../config/config.js';
import type { ConnectionInfo } from '../../access/connections.js';
import type { Feed } from '../../feed/feed.js';
import type { ProtocolContext } from '../protocol-context.js';
import { credentialQuery, credentialsFrom, redactUrl, type AuthDecision, type AuthRequest } from '../../access/auth.js';
import type { HttpRoute } from '../http/route.js';
import { sendRefusal } from '../http/server.js';
import { sendAdmissionRefusal } from '../http/read-gate.js';
import type { Admission, ReadTarget } from '../../access/access.js';
import {
  CORS_HEADERS,
  hlsFileUris,
  LIVE_PLAYLIST_CACHE,
  parseHlsFile,
  PLAYLIST_TYPE,
  sendHls,
  serveFile,
  servePlaylist,
} from './from-feed.js';
import { HlsOutputs, type SegmenterFactory } from './hls-outputs.js';
import { RingSegmentStore } from './dvr-store.js';
import { DEFAULT_SEGMENTER_OPTIONS, RenditionTimeline, Segmenter, type SegmenterOptions } from './segmenter.js';
import type { HlsContainer } from './packager.js';
import { HlsVod } from './vod.js';
import { liveEdgeOf, renderMultivariantPlaylist, type RenditionReport, type VariantStreamInfo } from './playlist.js';
import type { Rendition, TranscoderManager } from '../../transcode/transcoder-manager.js';
import type { ServerConfig } from '../../config/config.js';
import { findFeedConfig } from '../../config/names.js';

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
  /** Opens ladder renditions (none without it). */
  transcoders?: TranscoderManager;
}

/** The HLS settings of a config (HLSSegmentDuration, HLSPartDuration, HLSWindow, HLSPartHoldBack, HLSIdleTimeout). */
export function hlsRouteSettings(config: ServerConfig): Partial<HlsRouteOptions> {
  return {
    segmentTargetMs: config.hls.segmentSeconds * 1000,
    partTargetMs: config.hls.partSeconds * 1000,
    windowSegments: config.hls.window,
    partHoldBackParts: config.hls.partHoldBack,
    idleTimeoutMs: config.hls.idleTimeoutMs,
  };
}

export const DEFAULT_HLS_ROUTE_OPTIONS: HlsRouteOptions = {
  segmentTargetMs: DEFAULT_SEGMENTER_OPTIONS.segmentTargetMs,
  partTargetMs: DEFAULT_SEGMENTER_OPTIONS.partTargetMs,
  windowSegments: DEFAULT_SEGMENTER_OPTIONS.windowSegments,
  partHoldBackParts: DEFAULT_SEGMENTER_OPTIONS.partHoldBackParts,
  idleTimeoutMs: 30_000,
  firstSegmentTimeoutMs: 15_000,
};

/** A ladder rendition a media playlist carries. */
interface RenditionTarget {
  /** The feed whose ladder it is (the key of its RenditionTimeline). */
  group: string;
  /** The variant index (`rN`), undefined for a declared `Format hls` stream. */
  index: number | undefined;
  /** The declared stream opened through the TranscoderManager. */
  stream: StreamConfig;
  /** Variant indexes of the multivariant playlist, for the rendition reports. */
  siblings: readonly number[];
}

/** What an HLS URL names: a media playlist or a file of one output. */
interface MediaTarget {
  kind: 'media';
  /** Key of the output in HlsOutputs. */
  outputKey: string;
  /** The feed named by the URL (for a rendition: the feed the ladder encodes). */
  feed: Feed;
  container: HlsContainer;
  /** Prefix of the URIs in the playlist, relative to the playlist's URL. */
  uriPrefix: string;
  /** undefined: the playlist; else the file name. */
  file: string | undefined;
  /** What the authorisation policy is asked about. */
  auth: { feed: string; stream: string | undefined };
  name: string;
  options: SegmenterOptions;
  rendition: RenditionTarget | undefined;
  factory: SegmenterFactory | undefined;
}

/** `/KEY/master.m3u8`: the multivariant playlist of a feed's ladder. */
interface MasterTarget {
  kind: 'master';
  feed: Feed;
  auth: { feed: string; stream: undefined };
  name: string;
  renditions: readonly { rendition: Rendition; stream: StreamConfig }[];
}

/** `/KEY/index.m3u8?start=T&end=T2` (file undefined) and `/KEY/vod/NAME`: a time range of what a feed holds (vod.ts). */
interface VodTarget {
  kind: 'vod';
  feed: Feed;
  auth: { feed: string; stream: undefined };
  name: string;
  file: string | undefined;
}

type HlsTarget = MediaTarget | MasterTarget | VodTarget;

const RENDITION_PATH = /^r(\d{1,3})\/([^/]+)$/;
/**
 * How far apart two simulcast layers' keyframes may be and still be one cut: the publisher is asked
 * for a keyframe of every layer at once, and each arrives at its own pace (pacing, a larger picture).
 */
const LAYER_MATCH_90K = 250 * 90;

export class HlsRoute implements HttpRoute {
  private readonly ctx: ProtocolContext;
  private options: HlsRouteOptions;
  readonly outputs: HlsOutputs;
  /** One per feed with a ladder: its renditions number and date segments alike. */
  private readonly timelines = new Map<string, RenditionTimeline>();
  /** Playlist targets by path, for the config in force (a poller asks for the same path twice a second). */
  private targets = new Map<string, HlsTarget>();
  private targetsConfig: unknown;
  private renditionsByFeed = new Map<string, MasterTarget['renditions']>();
  /** Admitted viewers by address, stream and credentials (viewerKey). */
  private readonly viewers = new Map<string, { touch(): void; end(): void }>();
  private readonly vod: HlsVod;
  /** Feeds with HLSDVRWindow, watched for their publisher (watchDvrFeeds). */
  private readonly dvrWatches = new Map<string, { feed: Feed; off: () => void }>();

  constructor(ctx: ProtocolContext, options: Partial<HlsRouteOptions> = {}) {
    this.ctx = ctx;
    this.vod = new HlsVod(ctx);
    this.options = { ...DEFAULT_HLS_ROUTE_OPTIONS, ...options };
    this.outputs = new HlsOutputs(ctx.log, this.options.idleTimeoutMs);
    this.watchDvrFeeds();
  }

  /** HLSDVRWindow of a feed, in seconds (undefined: none). */
  private dvrWindowSecondsOf(feedKey: string): number | undefined {
    return findFeedConfig(this.ctx.config.feeds, feedKey)?.hlsDvrWindowSeconds;
  }

  /**
   * The feeds with HLSDVRWindow are segmented (fMP4) from the moment a publisher arrives, so their
   * window holds history before the first viewer asks; called at start and after every reload.
   */
  private watchDvrFeeds(config: ServerConfig = this.ctx.config): void {
    const wanted = new Map<string, Feed>();
    for (const fc of config.feeds) {
      const feed = fc.hlsDvrWindowSeconds !== undefined ? this.ctx.feeds.get(fc.key) : undefined;
      if (feed !== undefined) wanted.set(feed.key, feed);
    }
    for (const [key, watch] of [...this.dvrWatches]) {
      if (wanted.get(key) === watch.feed) continue;
      watch.off();
      this.dvrWatches.delete(key);
    }
    for (const [key, feed] of wanted) {
      if (this.dvrWatches.has(key)) continue;
      const off = feed.on('publisher', (info) => {
        const seconds = this.dvrWindowSecondsOf(feed.key);
        if (info !== undefined && seconds !== undefined) this.startDvr(feed, seconds);
      });
      this.dvrWatches.set(key, { feed, off });
      const seconds = findFeedConfig(config.feeds, key)?.hlsDvrWindowSeconds;
      if (feed.publisher !== undefined && seconds !== undefined) this.startDvr(feed, seconds);
    }
  }

  /** Starts (or keeps) the feed's fMP4 segmenter with its DVR window. */
  private startDvr(feed: Feed, seconds: number): void {
    const options = this.segmenterOptions('fmp4', false, false, false, seconds);
    this.outputs.acquire(plainKey(feed.key, 'fmp4'), this.plainFactory(feed, options));
  }

  close(): void {
    for (const watch of this.dvrWatches.values()) watch.off();
    this.dvrWatches.clear();
    for (const viewer of [...this.viewers.values()]) viewer.end();
    this.outputs.close();
  }

  /** The settings in force (tests). */
  get settings(): Readonly<HlsRouteOptions> {
    return this.options;
  }

  private transcoders(): TranscoderManager | undefined {
    return this.options.transcoders;
  }

  /**
   * HLSSegmentDuration, HLSPartDuration, HLSWindow and HLSPartHoldBack apply to the playlists
   * started after a reload (a running playlist keeps its target duration, RFC 8216 4.4.3.1);
   * HLSIdleTimeout applies at once.
   */
  applyConfig(next: ServerConfig): void {
    this.options = { ...this.options, ...hlsRouteSettings(next) };
    this.outputs.setIdleTimeout(this.options.idleTimeoutMs);
    this.watchDvrFeeds(next);
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL, conn: ConnectionInfo): boolean {
    const target = this.vodTarget(path, url) ?? this.target(path);
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
    const failed = (err: unknown): void => {
      this.ctx.log.error('HLS request failed', { url: redactUrl(req.url), err });
      if (!res.headersSent) res.destroy();
    };
    const serve = (): void => this.serve(req, res, path, url, conn, target, credentialQuery(request.credentials), request);
    // A viewer is admitted once per session (its first playlist or file request), not per request: the
    // session holds its reader slot and bandwidth until no request came for idleTimeoutMs.
    const key = target.kind !== 'master' ? viewerKey(request) : undefined;
    const viewer = key !== undefined ? this.viewers.get(key) : undefined;
    if (key === undefined || viewer !== undefined) {
      void this.ctx.access
        .authorize(request)
        .then((decision) => {
          if (res.destroyed || res.headersSent) return;
          if (decision.kind !== 'allow') {
            res.setHeader('Access-Control-Allow-Origin', '*');
            return sendRefusal(this.ctx, res, request, decision);
          }
          viewer?.touch();
          serve();
        })
        .catch(failed);
      return true;
    }
    const readTarget: ReadTarget = {
      name: target.auth.stream ?? target.feed.key,
      feed: target.feed,
      stream: target.auth.stream !== undefined ? this.ctx.access.resolve(target.auth.stream)?.stream : undefined,
    };
    void this.ctx.access
      .admit({ protocol: 'hls', target: readTarget, address: conn.remoteAddress, credentials: request.credentials })
      .then((admission) => {
        if (admission.kind === 'refused') {
          if (!res.destroyed && !res.headersSent) sendAdmissionRefusal(res, admission, { 'Access-Control-Allow-Origin': '*' });
          return;
        }
        this.openViewer(key, admission);
        if (res.destroyed || res.headersSent) return;
        serve();
      })
      .catch(failed);
    return true;
  }

  /** An admitted HLS viewer: released when no request came for idleTimeoutMs, or its credentials expire. */
  private openViewer(key: string, admission: Admission): void {
    const existing = this.viewers.get(key);
    if (existing !== undefined) {
      // Two first requests raced: one admission is enough.
      admission.release();
      existing.touch();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const end = (): void => {
      clearTimeout(timer);
      admission.release();
      if (this.viewers.get(key) === viewer) this.viewers.delete(key);
    };
    const viewer = {
      touch: (): void => {
        clearTimeout(timer);
        timer = setTimeout(end, this.options.idleTimeoutMs);
        timer.unref();
      },
      end,
    };
    this.viewers.set(key, viewer);
    viewer.touch();
    admission.cutAtExpiry(end);
  }

  /** Serves an authorised HLS request; `authQuery` is appended to the URIs of a playlist (read tokens). */
  private serve(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    url: URL,
    conn: ConnectionInfo,
    target: HlsTarget,
    authQuery: string,
    request: AuthRequest,
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
    if (target.kind === 'master') {
      done(this.serveMaster(req, res, conn, target, authQuery, request));
      return;
    }
    if (target.kind === 'vod') {
      done(this.serveVod(res, url, conn, target, authQuery));
      return;
    }
    if (target.file === undefined && target.outputKey === plainKey(target.feed.key, 'fmp4')) {
      const layers = this.ctx.feeds.layersOf(target.feed);
      if (layers.length > 0) {
        done(this.serveLayers(req, res, conn, target.feed, layers, authQuery));
        return;
      }
    }
    if (target.file === undefined) {
      const acquired = this.acquire(target);
      if ('status' in acquired) {
        sendHls(res, acquired.status, acquired.message, 'text/plain; charset=utf-8', 'no-cache', conn);
        return;
      }
      const segmenter = acquired;
      const rendition = target.rendition;
      // The renditions of a ladder run together while one is watched: their rendition reports are
      // real, and a player switching finds the other playlist ready.
      const timeline = segmenter.timeline;
      if (
        rendition !== undefined &&
        timeline !== undefined &&
        Date.now() - timeline.siblingsTouchedAtMs > Math.min(1000, this.options.idleTimeoutMs / 4)
      ) {
        timeline.siblingsTouchedAtMs = Date.now();
        for (const j of rendition.siblings) if (j !== rendition.index) this.acquireSibling(target.feed, j);
      }
      done(
        servePlaylist(
          req,
          res,
          url,
          {
            segmenter,
            uris: () => withQuery(hlsFileUris(segmenter.sid, target.container, target.uriPrefix), authQuery),
            formKey: authQuery,
            ...(rendition !== undefined && rendition.siblings.length > 1
              ? { renditionReports: () => this.renditionReports(target.feed, rendition) }
              : {}),
            lowLatency: target.container === 'fmp4',
            firstSegmentTimeoutMs: this.options.firstSegmentTimeoutMs,
            whyEmpty: () => this.whyEmpty(target, segmenter),
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

  private async serveVod(
    res: ServerResponse,
    url: URL,
    conn: ConnectionInfo,
    target: VodTarget,
    authQuery: string,
  ): Promise<void> {
    conn.state = 'WAIT_FEED';
    const answer =
      target.file === undefined
        ? await this.vod.playlist(target.feed, url, this.options.segmentTargetMs, authQuery)
        : await this.vod.file(target.feed, target.file);
    conn.state = 'SEND_DATA';
    const body = typeof answer.body === 'string' ? answer.body : [answer.body];
    sendHls(res, answer.status, body, answer.contentType, answer.cacheControl, conn, answer.headers ?? {});
  }

  /** A VOD playlist (`KEY/index.m3u8` with `start` or `end`) or one of its files (`KEY/vod/NAME`) of a feed. */
  private vodTarget(path: string, url: URL): VodTarget | undefined {
    const m = /^([^/]+)\/(index\.m3u8|vod\/([^/]+))$/.exec(path);
    if (m === null) return undefined;
    const isPlaylist = m[2] === 'index.m3u8';
    if (isPlaylist && !url.searchParams.has('start') && !url.searchParams.has('end')) return undefined;
    const feed = this.ctx.feeds.get(m[1] ?? '');
    if (feed === undefined) return undefined;
    return {
      kind: 'vod',
      feed,
      auth: { feed: feed.key, stream: undefined },
      name: `feed ${feed.key}`,
      file: isPlaylist ? undefined : m[3],
    };
  }

  private whyEmpty(target: MediaTarget, segmenter: Segmenter): { status: number; message: string } {
    if (target.feed.publisher === undefined) {
      return { status: 404, message: `Feed ${target.feed.key} has no publisher: nothing to play yet.` };
    }
    if (target.rendition !== undefined && segmenter.tracks.length === 0) {
      const t = this.transcoders()
        ?.status()
        .find((s) => s.feed === target.feed.key);
      const tail = t?.stderrTail.slice(-3).join(' | ') ?? '';
      return {
        status: 504,
        message: `${target.name}: the encoder ladder produced nothing yet${tail !== '' ? ` (ffmpeg: ${tail})` : ''}.`,
      };
    }
    if (segmenter.tracks.length === 0) {
      return {
        status: 406,
        message: `${target.name}: HLS here carries H.264, H.265 and AAC (${target.container === 'ts' ? 'and MP3/MPEG in TS' : 'and AV1, VP8, VP9 in fMP4'}); this feed has ${target.feed.tracks.map((t) => t.codec).join(', ') || 'no tracks'}. Read /${target.feed.key}.ts instead.`,
      };
    }
    return { status: 503, message: `${target.name}: the first segment is not ready yet (no keyframe so far).` };
  }

  /** The target's running segmenter, or a new one (a rendition opens its ladder first: that may fail). */
  private acquire(target: MediaTarget): Segmenter | { status: number; message: string } {
    if (target.factory !== undefined) return this.outputs.acquire(target.outputKey, target.factory);
    const rendition = target.rendition;
    if (rendition === undefined) throw new Error(`HLS target ${target.outputKey} has neither factory nor rendition`);
    const running = this.outputs.peek(target.outputKey);
    if (running !== undefined && !(running.ended && this.canRestart(target.feed))) {
      return this.outputs.acquire(target.outputKey, { create: () => running, restartEnded: () => false });
    }
    const manager = this.transcoders();
    if (manager === undefined) return { status: 503, message: `${target.name}: no transcoder manager runs in this server.` };
    const served = manager.open(rendition.stream);
    if (served.kind === 'error') return { status: served.status, message: served.message };
    if (served.kind !== 'feed') {
      served.release();
      return { status: 501, message: `${target.name}: this encoding cannot be segmented for HLS.` };
    }
    const { carrier } = served;
    let used = false;
    const segmenter = this.outputs.acquire(target.outputKey, {
      restartEnded: () => true,
      create: () => {
        used = true;
        const s = new Segmenter(carrier.feed, target.options, this.ctx.log, {
          pickTracks: carrier.pick,
          timeline: this.timeline(rendition.group),
        });
        s.holdUntilDisposed(served.release);
        const releaseSource = this.ctx.children?.acquireSource(target.feed.key);
        if (releaseSource !== undefined) s.holdUntilDisposed(releaseSource);
        s.start();
        return s;
      },
    });
    if (!used) served.release();
    return segmenter;
  }

  private acquireSibling(feed: Feed, index: number): void {
    const target = this.target(`${feed.key}/r${index}/index.m3u8`);
    if (target?.kind !== 'media') return;
    const acquired = this.acquire(target);
    if ('status' in acquired)
      this.ctx.log.debug('HLS rendition cannot start', { output: target.outputKey, reason: acquired.message });
  }

  private renditionReports(feed: Feed, rendition: RenditionTarget): RenditionReport[] {
    const reports: RenditionReport[] = [];
    for (const j of rendition.siblings) {
      if (j === rendition.index) continue;
      const s = this.outputs.peek(renditionKey(feed.key, j));
      const edge = s === undefined || s.ended ? undefined : liveEdgeOf(s.segments);
      if (edge !== undefined) reports.push({ uri: `../r${j}/index.m3u8`, ...edge });
    }
    return reports;
  }

  private timeline(group: string, matchWithin90k = 0): RenditionTimeline {
    let t = this.timelines.get(group);
    if (t === undefined) {
      t = new RenditionTimeline(matchWithin90k);
      this.timelines.set(group, t);
    }
    return t;
  }

  private canRestart(feed: Feed): boolean {
    if (feed.publisher !== undefined) return true;
    const fc = findFeedConfig(this.ctx.config.feeds, feed.key);
    return fc !== undefined && (fc.launch !== undefined || fc.source !== undefined);
  }

  /**
   * `/KEY/master.m3u8`: the renditions this reader may read (each is checked as its stream), whose
   * segmenters it starts (they stop when no request comes).
   */
  private async serveMaster(
    req: IncomingMessage,
    res: ServerResponse,
    conn: ConnectionInfo,
    target: MasterTarget,
    authQuery: string,
    request: AuthRequest,
  ): Promise<void> {
    const allowed: MasterTarget['renditions'][number][] = [];
    let denied: { request: AuthRequest; decision: Exclude<AuthDecision, { kind: 'allow' }> } | undefined;
    for (const entry of target.renditions) {
      const asStream = { ...request, stream: entry.stream.name };
      const decision = await this.ctx.access.authorize(asStream);
      if (decision.kind === 'allow') allowed.push(entry);
      else denied ??= { request: asStream, decision };
    }
    if (res.destroyed) return;
    if (allowed.length === 0 && denied !== undefined) {
      res.setHeader('Access-Control-Allow-Origin', '*');
      return sendRefusal(this.ctx, res, denied.request, denied.decision);
    }
    const running: { rendition: Rendition; segmenter: Segmenter }[] = [];
    let refusal: { status: number; message: string } | undefined;
    for (const { rendition } of allowed) {
      const media = this.target(`${target.feed.key}/r${rendition.index}/index.m3u8`);
      if (media?.kind !== 'media') continue;
      const acquired = this.acquire(media);
      if ('status' in acquired) refusal ??= acquired;
      else running.push({ rendition, segmenter: acquired });
    }
    if (running.length === 0) {
      const why = refusal ?? { status: 404, message: `Feed ${target.feed.key} has no H.264 renditions.` };
      sendHls(res, why.status, why.message, 'text/plain; charset=utf-8', 'no-cache', conn);
      return;
    }
    // CODECS come from the encoder's real SPS and AudioSpecificConfig: wait for its first output.
    conn.state = 'WAIT_FEED';
    await Promise.all(
      running.map(({ segmenter }) =>
        segmenter.waitUntil(() => segmenter.codecs !== undefined || segmenter.ended, this.options.firstSegmentTimeoutMs),
      ),
    );
    if (req.destroyed || res.destroyed) return;
    const ready = running.filter(({ segmenter }) => segmenter.codecs !== undefined);
    if (ready.length === 0) {
      const first = running[0];
      const media = first !== undefined ? this.target(`${target.feed.key}/r${first.rendition.index}/index.m3u8`) : undefined;
      const why =
        first !== undefined && media?.kind === 'media'
          ? this.whyEmpty(media, first.segmenter)
          : { status: 503, message: 'not ready' };
      sendHls(
        res,
        why.status,
        why.message,
        'text/plain; charset=utf-8',
        'no-cache',
        conn,
        why.status === 503 ? { 'Retry-After': '2' } : {},
      );
      return;
    }
    const query = authQuery === '' ? '' : `?${authQuery}`;
    const variants: VariantStreamInfo[] = ready.map(({ rendition, segmenter }) => {
      const video = segmenter.tracks.find((t) => t.kind === 'video');
      const measured = measuredBitRates(segmenter);
      return {
        uri: `r${rendition.index}/index.m3u8${query}`,
        bandwidthBps: Math.max(rendition.bandwidthBps, measured?.peakBps ?? 0),
        averageBandwidthBps: measured?.averageBps ?? (rendition.bandwidthBps > 0 ? rendition.bandwidthBps : undefined),
        width: video?.width ?? rendition.width,
        height: video?.height ?? rendition.height,
        frameRate: rendition.frameRate,
        codecs: segmenter.codecs,
      };
    });
    conn.state = 'SEND_DATA';
    sendHls(res, 200, renderMultivariantPlaylist(variants), PLAYLIST_TYPE, LIVE_PLAYLIST_CACHE, conn);
  }

  /**
   * `/KEY/index.m3u8` of a simulcast feed: one variant per layer feed (`../KEY~RID/index.m3u8`), its
   * BANDWIDTH, RESOLUTION and CODECS from the layer's first segment (bit rate) and SPS; the largest first.
   */
  private async serveLayers(
    req: IncomingMessage,
    res: ServerResponse,
    conn: ConnectionInfo,
    feed: Feed,
    layers: readonly Feed[],
    authQuery: string,
  ): Promise<void> {
    const running: { layer: Feed; segmenter: Segmenter }[] = [];
    for (const layer of layers) {
      const media = this.target(`${layer.key}/index.m3u8`);
      if (media?.kind !== 'media') continue;
      const acquired = this.acquire(media);
      if (!('status' in acquired)) running.push({ layer, segmenter: acquired });
    }
    conn.state = 'WAIT_FEED';
    const measured = (s: Segmenter): boolean => s.segments.some((seg) => seg.complete);
    await Promise.all(
      running.map(({ segmenter }) =>
        segmenter.waitUntil(
          () => (segmenter.codecs !== undefined && measured(segmenter)) || segmenter.ended,
          this.options.firstSegmentTimeoutMs,
        ),
      ),
    );
    if (req.destroyed || res.destroyed) return;
    const ready = running.filter(({ segmenter }) => segmenter.codecs !== undefined);
    if (ready.length === 0) {
      const message =
        feed.publisher === undefined
          ? `Feed ${feed.key} has no publisher: nothing to play yet.`
          : `Feed ${feed.key}: no simulcast layer has a segment yet (no keyframe so far).`;
      const status = feed.publisher === undefined ? 404 : 503;
      sendHls(res, status, message, 'text/plain; charset=utf-8', 'no-cache', conn, status === 503 ? { 'Retry-After': '2' } : {});
      return;
    }
    const query = authQuery === '' ? '' : `?${authQuery}`;
    const variants: VariantStreamInfo[] = ready.map(({ layer, segmenter }) => {
      const video = segmenter.tracks.find((t) => t.kind === 'video');
      const rates = measuredBitRates(segmenter);
      return {
        uri: `../${encodeURIComponent(layer.key)}/index.m3u8${query}`,
        bandwidthBps: Math.max(rates?.peakBps ?? 0, layer.inputRate.bitsPerSecond()),
        averageBandwidthBps: rates?.averageBps,
        width: video?.width,
        height: video?.height,
        frameRate: undefined,
        codecs: segmenter.codecs,
      };
    });
    variants.sort(
      (a, b) => (b.width ?? 0) * (b.height ?? 0) - (a.width ?? 0) * (a.height ?? 0) || b.bandwidthBps - a.bandwidthBps,
    );
    conn.state = 'SEND_DATA';
    sendHls(res, 200, renderMultivariantPlaylist(variants), PLAYLIST_TYPE, LIVE_PLAYLIST_CACHE, conn);
  }

  private segmenterOptions(
    container: HlsContainer,
    noAudio: boolean,
    noVideo: boolean,
    ladder: boolean,
    dvrWindowSeconds?: number,
  ): SegmenterOptions {
    return {
      ...(dvrWindowSeconds !== undefined ? { dvrWindowMs: dvrWindowSeconds * 1000 } : {}),
      container,
      segmentTargetMs: this.options.segmentTargetMs,
      partTargetMs: this.options.partTargetMs,
      windowSegments: this.options.windowSegments,
      partHoldBackParts: Math.min(3, Math.max(2, this.options.partHoldBackParts)),
      noAudio,
      noVideo,
      ...(ladder ? { cutAtEveryKeyframe: true } : {}),
    };
  }

  /** The target of a path, from the cache when it is a playlist of the config and feeds in force. */
  private target(path: string): HlsTarget | undefined {
    if (this.targetsConfig !== this.ctx.config) {
      this.targets = new Map();
      this.renditionsByFeed = new Map();
      this.targetsConfig = this.ctx.config;
    }
    const cached = this.targets.get(path);
    if (cached !== undefined && this.ctx.feeds.get(cached.feed.key) === cached.feed) return cached;
    const target = this.match(path);
    // Only playlists are kept: file names are many and change with every segment.
    if (target !== undefined && (target.kind === 'master' || target.file === undefined)) {
      if (this.targets.size >= 1000) this.targets.clear();
      this.targets.set(path, target);
    }
    return target;
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
    const auth = { feed: feed.key, stream: undefined };
    const name = `feed ${feed.key}`;
    const plain = (container: HlsContainer, file: string | undefined): MediaTarget => {
      const outputKey = plainKey(feed.key, container);
      const options = this.segmenterOptions(container, false, false, false, this.dvrWindowSecondsOf(feed.key));
      return {
        kind: 'media',
        outputKey,
        feed,
        container,
        uriPrefix: '',
        file,
        auth,
        name,
        options,
        rendition: undefined,
        factory: this.plainFactory(feed, options),
      };
    };
    if (rest === 'index.m3u8') return plain('fmp4', undefined);
    if (rest === 'ts/index.m3u8') return plain('ts', undefined);
    if (rest.startsWith('ts/') && !rest.slice(3).includes('/')) return plain('ts', rest.slice(3));
    if (!rest.includes('/') && /\.(m4s|mp4)$/.test(rest)) return plain('fmp4', rest);
    if (rest === 'master.m3u8') {
      const renditions = this.renditionsOf(feed.key);
      if (renditions.length === 0) return undefined;
      return { kind: 'master', feed, auth, name, renditions };
    }
    const m = RENDITION_PATH.exec(rest);
    if (m === null) return undefined;
    const index = Number(m[1]);
    const file = m[2] === 'index.m3u8' ? undefined : m[2];
    const renditions = this.renditionsOf(feed.key);
    const entry = renditions.find((r) => r.rendition.index === index);
    if (entry === undefined) return undefined;
    return {
      kind: 'media',
      outputKey: renditionKey(feed.key, index),
      feed,
      container: 'fmp4',
      uriPrefix: '',
      file,
      // A rendition is read as its (first) declared stream: that stream's ACL and tokens apply.
      auth: { feed: feed.key, stream: entry.stream.name },
      name: `rendition ${index} of feed ${feed.key} (${entry.stream.name})`,
      options: this.segmenterOptions('fmp4', false, false, true),
      rendition: { group: feed.key, index, stream: entry.stream, siblings: renditions.map((r) => r.rendition.index) },
      factory: undefined,
    };
  }

  /** The H.264/H.265 renditions of a feed's ladder, each with the declared stream it is opened as. */
  private renditionsOf(feedKey: string): MasterTarget['renditions'] {
    let list = this.renditionsByFeed.get(feedKey);
    if (list === undefined) {
      list = (this.options.transcoders?.listRenditions(feedKey) ?? []).flatMap((rendition) => {
        if (rendition.codec !== 'h264' && rendition.codec !== 'h265') return [];
        const stream = this.ctx.config.streams.find((s) => rendition.streams.includes(s.name));
        return stream === undefined ? [] : [{ rendition, stream }];
      });
      this.renditionsByFeed.set(feedKey, list);
    }
    return list;
  }

  /** A passthrough segmenter of `feed`; it keeps the feed's on-demand Launch/Source running. */
  private plainFactory(feed: Feed, options: SegmenterOptions): SegmenterFactory {
    return {
      restartEnded: () => this.canRestart(feed),
      create: () => {
        // A simulcast layer's segments line up with the other layers' (one timeline per publisher).
        const parent = this.ctx.feeds.parentOfLayer(feed);
        // A DVR window holds its older segments in the feed file, when the feed has one (not in memory).
        const store = (options.dvrWindowMs ?? 0) > 0 ? new RingSegmentStore(() => this.ctx.feedFiles.of(feed)) : undefined;
        const s = new Segmenter(feed, options, this.ctx.log, {
          ...(parent === undefined
            ? {}
            : { timeline: this.timeline(`${parent.key}~layers.${options.container}`, LAYER_MATCH_90K) }),
          ...(store !== undefined ? { store } : {}),
        });
        const releaseSource = this.ctx.children?.acquireSource(feed.key);
        if (releaseSource !== undefined) s.holdUntilDisposed(releaseSource);
        s.start();
        return s;
      },
    };
  }

  private streamTarget(stream: StreamConfig, file: string | undefined): HlsTarget | undefined {
    const feed = stream.feed !== undefined ? this.ctx.feeds.get(stream.feed) : undefined;
    if (feed === undefined) return undefined;
    const encoded = stream.needsTranscode;
    const options = this.segmenterOptions(
      'fmp4',
      stream.noAudio,
      stream.noVideo,
      encoded,
      encoded ? undefined : this.dvrWindowSecondsOf(feed.key),
    );
    return {
      kind: 'media',
      outputKey: `stream:${stream.name}`,
      feed,
      container: 'fmp4',
      // The playlist is /NAME, so its files (/NAME/...) are named relative to the root.
      uriPrefix: encodeURIComponent(stream.name) + '/',
      file,
      auth: { feed: feed.key, stream: stream.name },
      name: `stream ${stream.name}`,
      options,
      // A stream with encoder directives is segmented from the feed's ladder, as a rendition.
      rendition: encoded ? { group: feed.key, index: undefined, stream, siblings: [] } : undefined,
      factory: encoded ? undefined : this.plainFactory(feed, options),
    };
  }
}

/** The HLS output of a feed as published (`/KEY/index.m3u8`, `/KEY/ts/index.m3u8`). */
function plainKey(feedKey: string, container: HlsContainer): string {
  return `feed:${feedKey}:${container}`;
}

function renditionKey(feedKey: string, index: number): string {
  return `rendition:${feedKey}:${index}`;
}

/** Peak and average bit rate of the complete segments in the window (BANDWIDTH, AVERAGE-BANDWIDTH). */
function measuredBitRates(segmenter: Segmenter): { peakBps: number; averageBps: number } | undefined {
  let bits = 0;
  let duration90k = 0;
  let peakBps = 0;
  for (const s of segmenter.segments) {
    if (!s.complete || s.duration90k <= 0) continue;
    const bytes = s.bytes;
    bits += bytes * 8;
    duration90k += s.duration90k;
    peakBps = Math.max(peakBps, (bytes * 8 * 90_000) / s.duration90k);
  }
  return duration90k === 0 ? undefined : { peakBps, averageBps: (bits * 90_000) / duration90k };
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

/** One HLS viewer: its address, what it reads and the credentials it reads with (players send no id of their own). */
function viewerKey(request: AuthRequest): string {
  return [request.address, request.feed ?? '', request.stream ?? '', credentialQuery(request.credentials)].join('\n');
}
