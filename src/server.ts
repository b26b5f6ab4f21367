// Builds and wires the parts of a running Feedcast from a config: feeds, outputs, the protocol
// listeners, the demo publisher. Holds no protocol logic.

import { loadConfigFile, type ServerConfig } from './config/config.js';
import { ApiRoute } from './control/api.js';
import { MetricsRoute } from './control/metrics.js';
import { EventsRoute } from './control/events-route.js';
import { HookRunner } from './control/hooks.js';
import { LifecycleEvents } from './control/lifecycle-events.js';
import { applyConfig, type ConfigOwner } from './control/reload.js';
import { AccessLog } from './observability/access-log.js';
import { Access } from './access/access.js';
import type { AuthHook } from './access/auth.js';
import { CertificateStore } from './protocols/tls.js';
import { ConnectionRegistry } from './access/connections.js';
import { DemoSource, loadDemoClip } from './demo/demo-source.js';
import { FeedManager } from './feed/feed-manager.js';
import { FeedFiles } from './feedfile/feed-files.js';
import { Recordings } from './record/recordings.js';
import { createLogger, type Logger } from './observability/logger.js';
import { RecordingsPageRoute } from './control/recordings-page.js';
import { PlayerPageRoute } from './control/player-page.js';
import { renderIndexPage } from './control/index-page.js';
import { renderStatusPage } from './control/status-page.js';
import { HlsRoute, hlsRouteSettings } from './protocols/hls/route.js';
import { webRtcOptions } from './protocols/webrtc/options.js';
import { WebRtcRoute } from './protocols/webrtc/route.js';
import { HttpServer } from './protocols/http/server.js';
import { RtmpServer } from './protocols/rtmp/server.js';
import { RtspServer } from './protocols/rtsp/server.js';
import { nativeSrt } from './protocols/srt/native-srt.js';
import { SrtServer } from './protocols/srt/server.js';
import { SourceManager } from './transcode/launch.js';
import { TranscodeRoute } from './protocols/http/transcode-route.js';
import { RecordingRoute } from './protocols/http/recording-route.js';
import { admitHttp } from './protocols/http/read-gate.js';
import { TranscoderManager } from './transcode/transcoder-manager.js';
import { OfflineSlates } from './transcode/offline-slate.js';
import type { ReloadSummary } from './control/control-context.js';
import type { ServerContext } from './server-context.js';
import { OutputRegistry } from './streams/output-registry.js';
import { VERSION } from './version.js';
import { EgressThreads } from './streams/egress-threads.js';
import { createIngestBudgets, type IngestBudgets } from './media/ingest-budgets.js';
import type { Cluster } from './cluster/cluster.js';
import type { NodeRecord, Registry } from './cluster/registry.js';
import type { FirstWorkerCopies, WorkerIdentity } from './cluster/worker-node.js';
import type { WorkerRegistry } from './cluster/worker-registry.js';
import type { WorkerClaims } from './cluster/worker-claims.js';
import type { Forwarder } from './cluster/forward.js';

export interface StartOptions {
  log?: Logger;
  /** Feed keys the built-in demo clip is published into (the no-argument demo uses ['demo']). */
  demoFeeds?: readonly string[];
  /** The config file, so that SIGHUP and POST /api/v1/reload can re-read it. */
  configPath?: string;
  /** Embedding programs: asked before any publish / read is served, after ACLs and credentials (docs/security.md). */
  onPublish?: AuthHook;
  onRead?: AuthHook;
  /** The server-wide caps on unfinished ingest (tests give small ones); media/ingest-budgets.ts by default. */
  ingestBudgets?: IngestBudgets;
  /** This process is worker `index` of `Workers N` (main.ts, docs/cluster.md "Workers"); undefined: the only one. */
  worker?: WorkerIdentity;
}

export interface RunningServer {
  readonly ctx: ServerContext;
  /** The port the HTTP listener got (useful with HTTPPort 0 in tests). */
  readonly httpPort: number;
  readonly http: HttpServer;
  /** The port the RTMP listener got, undefined when RTMP is off. */
  readonly rtmpPort: number | undefined;
  /** The port the RTSP listener got, undefined when RTSP is off. */
  readonly rtspPort: number | undefined;
  /** The UDP port the SRT listener got, undefined when SRT is off (no SRTPort, or no SRT module: `srtStatus` says). */
  readonly srtPort: number | undefined;
  /** "on (libsrt 1.5.1)", "off (no SRTPort)", or why the SRT module is missing. */
  readonly srtStatus: string;
  /** The ports of the HTTPS and RTMPS listeners, undefined when off. */
  readonly httpsPort: number | undefined;
  readonly rtmpsPort: number | undefined;
  /** Lifecycle events (publish, read ...): the recorder reports finished files here (OnRecordSegment). */
  readonly lifecycle: LifecycleEvents;
  /** The parts server.ts built (status, tests); a reload calls applyConfig on them in turn. */
  readonly owners: ServerOwners;
  /** Re-reads SSLCertificate/SSLCertificateKey (SIGHUP); false when the new pair is bad (the old one stays). */
  reloadCertificates(): Promise<boolean>;
  /** Re-reads the config file and applies it; rejects (keeping the running config) when it is bad. */
  reload(): Promise<ReloadSummary>;
  close(): Promise<void>;
}

export interface ServerOwners {
  readonly feeds: FeedManager;
  readonly feedFiles: FeedFiles;
  readonly recordings: Recordings;
  readonly outputs: OutputRegistry;
  readonly sources: SourceManager;
  readonly transcoders: TranscoderManager;
  readonly hls: HlsRoute;
  readonly http: HttpServer;
  readonly rtmp: RtmpServer | undefined;
  readonly rtmps: RtmpServer | undefined;
  readonly rtsp: RtspServer | undefined;
  readonly hooks: HookRunner;
  readonly slates: OfflineSlates;
  readonly srt: SrtServer | undefined;
}

export async function startServer(givenConfig: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger();
  // Workers N: worker 1 runs what is done once (feed files, recordings, children, UDP); the others leave it out.
  const worker = options.worker;
  const workerNode = worker !== undefined ? await import('./cluster/worker-node.js') : undefined;
  const isFirstWorker = worker === undefined || worker.index === 1;
  const shape = (c: ServerConfig): ServerConfig =>
    worker !== undefined && workerNode !== undefined ? workerNode.configForWorker(c, worker.index) : c;
  const config = shape(givenConfig);
  for (const w of config.warnings) log.warn(w.message, { where: w.where });
  // Egress threads need the native module: say so before anything runs.
  if (config.egressThreads > 0) EgressThreads.check(config.egressThreads);
  // TLS certificates first: a bad pair stops the start before anything runs.
  const tlsOn = config.tls.httpsPort !== undefined || config.tls.rtmpsPort !== undefined;
  const certs =
    tlsOn && config.tls.certFile !== undefined && config.tls.keyFile !== undefined
      ? await CertificateStore.load({ certFile: config.tls.certFile, keyFile: config.tls.keyFile }, log)
      : undefined;
  certs?.watch();

  // What has been started, stopped in the order of the close cascade (docs/ARCHITECTURE.md) when
  // a later step fails or the server closes.
  const parts: Partial<{
    sources: SourceManager;
    transcoders: TranscoderManager;
    webrtc: WebRtcRoute;
    hls: HlsRoute;
    outputs: OutputRegistry;
    rtmp: RtmpServer;
    rtmps: RtmpServer;
    rtsp: RtspServer;
    srt: SrtServer;
    http: HttpServer;
    egress: EgressThreads;
    ctx: ServerContext;
    lifecycle: LifecycleEvents;
    hooks: HookRunner;
    slates: OfflineSlates;
    cluster: Cluster;
    copies: FirstWorkerCopies;
    forwarder: Forwarder;
    claims: WorkerClaims;
    workerRegistry: WorkerRegistry;
  }> = {};
  const demos: DemoSource[] = [];
  const stopAll = async (): Promise<void> => {
    parts.slates?.closeAll();
    feeds.beginStop();
    parts.lifecycle?.close();
    await parts.hooks?.close();
    for (const d of demos) d.stop();
    await parts.transcoders?.closeAll();
    await parts.sources?.closeAll();
    parts.copies?.close();
    parts.claims?.close();
    await parts.cluster?.close();
    parts.forwarder?.close();
    await parts.webrtc?.close();
    parts.hls?.close();
    parts.outputs?.closeAll();
    await recordings.closeAll();
    await feedFiles.closeAll();
    feeds.closeAll();
    await parts.rtmp?.close();
    await parts.rtmps?.close();
    await parts.rtsp?.close();
    await parts.srt?.close();
    certs?.close();
    await parts.http?.close();
    await parts.egress?.stop();
    parts.ctx?.accessLog?.close();
  };

  const feeds = new FeedManager(
    {
      publisherTimeoutMs: config.publisherTimeoutMs,
      publisherGraceMs: config.publisherGraceMs,
      dynamicFeeds: config.dynamicFeeds,
      dynamicFeedTimeoutMs: config.dynamicFeedTimeoutMs,
    },
    log,
  );
  for (const feed of config.feeds) feeds.declare(feed.name);
  if (worker !== undefined) {
    // Workers N: one publisher per feed across the workers, arbitrated by the primary (docs/cluster.md, "Workers").
    const { WorkerClaims } = await import('./cluster/worker-claims.js');
    parts.claims = new WorkerClaims(feeds, log);
  }
  // OfflineSlate: a feed waiting for its publisher keeps playing a picture.
  const slates = new OfflineSlates(config, feeds, log);
  parts.slates = slates;

  // Feeds with a File record to their disk ring; an existing file is recovered (or refused if it is not ours).
  const feedFiles = new FeedFiles(feeds, log);
  // Feeds with Record on write recordings; what they hold is read (and repaired after a crash) first.
  const recordings = new Recordings(feeds, log);
  try {
    await feedFiles.applyConfig(config, true);
    await recordings.applyConfig(config);
  } catch (err) {
    await stopAll();
    throw err;
  }

  // One server per process owns the egress threads (tests start several in turn).
  const egress = config.egressThreads > 0 ? EgressThreads.start(config.egressThreads, log) : undefined;
  if (egress !== undefined) parts.egress = egress;

  const outputs = new OutputRegistry(config.readerMaxQueueBytes, log, config.writeCoalesceMs, egress);
  parts.outputs = outputs;
  const base: Omit<ServerContext, 'access'> = {
    config,
    feeds,
    feedFiles,
    recordings,
    outputs,
    connections: new ConnectionRegistry(),
    log,
    accessLog: config.customLog !== undefined ? new AccessLog(config.customLog) : undefined,
    startedAt: new Date(),
    version: VERSION,
    counters: { refusedConnections: 0, reloads: 0, served: new Map(), webrtcInboundRejected: {} },
    ingestBudgets: options.ingestBudgets ?? createIngestBudgets(),
    reload: undefined,
    children: undefined,
    cluster: undefined,
  };
  // The access service reads the context live (a reload replaces ctx.config, ctx.children is set below).
  const ctx: ServerContext = Object.assign(base, { access: new Access(base) });
  parts.ctx = ctx;
  if (options.onPublish !== undefined || options.onRead !== undefined) {
    ctx.access.policy.setHooks({ onPublish: options.onPublish, onRead: options.onRead });
  }

  const http = new HttpServer(ctx, {
    index: (host, credentials) => renderIndexPage(ctx, host, credentials),
    status: () => renderStatusPage(ctx),
  });
  parts.http = http;

  // Lifecycle events (publish, read ...) for the hooks and /api/v1/events; they only report.
  const lifecycle = new LifecycleEvents({ feeds, access: ctx.access }, log);
  const hooks = new HookRunner(config, log);
  parts.lifecycle = lifecycle;
  parts.hooks = hooks;
  lifecycle.on('event', (event) => hooks.handle(event));
  recordings.onSegmentFinished = (segment) => lifecycle.recordSegment(segment);

  // Workers N: the demo clip is published once, by worker 1; the other workers relay it.
  if (isFirstWorker && options.demoFeeds !== undefined && options.demoFeeds.length > 0) {
    const clip = await loadDemoClip();
    for (const key of options.demoFeeds) {
      const source = new DemoSource(clip, feeds.declare(key), log);
      source.start();
      demos.push(source);
    }
  }

  // Launch/pulled sources and transcoded streams: ffmpeg children, started on demand.
  const sources = new SourceManager(config, feeds, log, { pesBudget: ctx.ingestBudgets.pes });
  // A transcoder holds its feed's source: a Launch/Source child, or in a cluster the relay from another node.
  const transcoders = new TranscoderManager(config, feeds, log, {
    acquireSource: (key) => sources.acquire(key) ?? parts.cluster?.acquireRelay(key),
  });
  parts.sources = sources;
  parts.transcoders = transcoders;
  ctx.children = {
    transcoders: () => transcoders.status(),
    sources: () => sources.status(),
    // A Launch/Source child, or in a cluster a relay of a feed published on another node.
    acquireSource: (key) => sources.acquire(key) ?? parts.cluster?.acquireRelay(key),
  };

  http.addRoute(new ApiRoute(ctx));
  http.addRoute(
    new MetricsRoute(ctx, {
      hooks: () => hooks.status(),
      // Read at each scrape: the SRT server starts below (and may be off: no libsrt).
      ...(config.srt.port !== undefined ? { srt: () => parts.srt?.totals() ?? [] } : {}),
    }),
  );
  http.addRoute(new EventsRoute(lifecycle, () => ctx.config));
  http.addRoute(new TranscodeRoute(ctx, transcoders, sources));
  http.addRoute(
    new RecordingRoute({
      access: ctx.access,
      recordings,
      feedFiles: ctx.feedFiles,
      admit: (req, res, conn, target, url, serve) => admitHttp(ctx, req, res, conn, target, url, serve),
    }),
  );
  const hls = new HlsRoute(ctx, { ...hlsRouteSettings(config), transcoders });
  parts.hls = hls;
  http.addRoute(hls);
  // After HLS: /recordings/index.m3u8 is the playlist of a feed named "recordings".
  http.addRoute(new RecordingsPageRoute(ctx));
  const webrtc = config.webrtc.enabled ? new WebRtcRoute(ctx, webRtcOptions(config)) : undefined;
  if (webrtc !== undefined) {
    parts.webrtc = webrtc;
    http.addRoute(webrtc);
  }
  http.addRoute(new PlayerPageRoute(ctx, { whep: isFirstWorker ? webrtc !== undefined : givenConfig.webrtc.enabled }));
  if (worker !== undefined && !isFirstWorker && workerNode !== undefined) {
    // Added last, so asked first: what worker 1 alone serves goes there (docs/cluster.md, "Workers").
    const { Forwarder, servedByFirstWorker } = await import('./cluster/forward.js');
    const forwarder = new Forwarder(worker.secret, log);
    parts.forwarder = forwarder;
    const firstName = workerNode.workerClusterConfig(config, { ...worker, index: 1 }, 0).nodeName;
    http.addRoute({
      handle: (req, res, path, url, conn) => {
        if (!servedByFirstWorker(path, url)) return false;
        const first = parts.cluster?.registry.nodes().find((n) => n.name === firstName);
        if (first === undefined) {
          res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
          res.end('Worker 1, which serves this URL, is starting; try again in a second.\n');
          return true;
        }
        const target = new URL(first.url);
        forwarder.forward(
          req,
          res,
          { host: target.hostname.replace(/^\[|\]$/g, ''), port: Number(target.port) },
          conn.remoteAddress,
        );
        return true;
      },
    });
  }

  if (worker !== undefined && workerNode !== undefined) {
    // Workers N: the API's feeds, connections and server, /metrics and /stat.html answer for every worker (control/workers-view.ts).
    const { WorkersViewRoute } = await import('./control/workers-view.js');
    const names = Array.from(
      { length: worker.count },
      (_, i) => workerNode.workerClusterConfig(config, { ...worker, index: i + 1 }, 0).nodeName,
    );
    http.addRoute(
      new WorkersViewRoute(ctx, {
        secret: worker.secret,
        targets: () =>
          names.map((name, i) => ({ index: i + 1, url: parts.cluster?.registry.nodes().find((n) => n.name === name)?.url })),
      }),
    );
  }

  let httpPort: number;
  let internalPort: number | undefined;
  let httpsPort: number | undefined;
  let rtmp: RtmpServer | undefined;
  let rtmpPort: number | undefined;
  let rtmps: RtmpServer | undefined;
  let rtmpsPort: number | undefined;
  let rtspPort: number | undefined;
  let srtPort: number | undefined;
  let srtStatus = 'off (no SRTPort)';
  try {
    // Opens the single-port mux (WebRTCUDPPort/WebRTCTCP) now: a port in use fails the start, not the first viewer.
    await webrtc?.ready();
    httpPort = await http.listen(config.http.port, config.http.bindAddress);
    if (worker !== undefined && workerNode !== undefined) {
      internalPort = await http.listenInternal(workerNode.internalHost(config), worker.secret);
    }
    if (certs !== undefined && config.tls.httpsPort !== undefined) {
      httpsPort = await http.listenTls(config.tls.httpsPort, config.http.bindAddress, certs);
    }
    transcoders.startAlwaysOn();
    if (config.rtmp.port !== 0) {
      const server = new RtmpServer(ctx, { chunkSize: config.rtmp.chunkSize });
      rtmp = parts.rtmp = server;
      rtmpPort = await server.listen(config.rtmp.port, config.rtmp.bindAddress);
    }
    if (certs !== undefined && config.tls.rtmpsPort !== undefined) {
      const server = new RtmpServer(ctx, { chunkSize: config.rtmp.chunkSize, tls: certs });
      rtmps = parts.rtmps = server;
      rtmpsPort = await server.listen(config.tls.rtmpsPort, config.rtmp.bindAddress);
    }
    if (config.rtsp.port !== undefined) {
      const server = new RtspServer(ctx, { transcoders });
      parts.rtsp = server;
      rtspPort = await server.listen(config.rtsp.port, config.rtsp.bindAddress);
    }
    if (config.srt.port !== undefined) {
      // Optional: without the SRT module (no libsrt at install) the server runs without SRT and says why.
      const { module: srt, status } = nativeSrt();
      if (srt === undefined) {
        srtStatus = `off (${status})`;
        log.warn('SRT is off', { reason: status, SRTPort: config.srt.port });
      } else {
        const server = new SrtServer(ctx, srt, { pesBudget: ctx.ingestBudgets.pes });
        parts.srt = server;
        srtPort = server.listen(config.srt.port, config.srt.bindAddress, config.srt.latencyMs);
        srtStatus = `on (${status})`;
      }
    }
    if (worker !== undefined && workerNode !== undefined && internalPort !== undefined) {
      // Workers N: each worker is a node of a local cluster (its registry the primary), or of ClusterRedis's.
      const { Cluster } = await import('./cluster/cluster.js');
      let registry: ((node: NodeRecord) => Registry) | undefined;
      if (config.cluster === undefined) {
        const { WorkerRegistry } = await import('./cluster/worker-registry.js');
        registry = (node): WorkerRegistry => {
          const local = new WorkerRegistry(node, log);
          // Worker 1's on-demand Launch/Source feeds: a reader on another worker relays them, which starts them.
          local.pinOnly(workerNode.sourcedFeedKeys(config));
          parts.workerRegistry = local;
          return local;
        };
      }
      const cluster = await Cluster.start(workerNode.workerClusterConfig(config, worker, internalPort), {
        feeds,
        log,
        httpPort: internalPort,
        bindAddress: config.http.bindAddress,
        version: VERSION,
        pesBudget: ctx.ingestBudgets.pes,
        ...(registry !== undefined ? { registry } : {}),
      });
      parts.cluster = cluster;
      ctx.cluster = cluster;
      if (registry === undefined) {
        // ClusterRedis: Redis is the registry; the primary still needs to hear that this worker serves.
        const { announceWorkerNode } = await import('./cluster/worker-registry.js');
        announceWorkerNode(cluster.node);
      }
      if (isFirstWorker) {
        const needsCopy = (key: string): boolean =>
          ctx.config.feeds.some((f) => f.key.toLowerCase() === key && (f.file !== undefined || f.record !== undefined));
        parts.copies = new workerNode.FirstWorkerCopies(cluster, needsCopy);
      }
    } else if (config.cluster !== undefined) {
      // Loaded only in a cluster: a single node loads no Redis client.
      const { Cluster } = await import('./cluster/cluster.js');
      const cluster = await Cluster.start(config.cluster, {
        feeds,
        log,
        httpPort,
        bindAddress: config.http.bindAddress,
        version: VERSION,
        pesBudget: ctx.ingestBudgets.pes,
      });
      parts.cluster = cluster;
      ctx.cluster = cluster;
    }
  } catch (err) {
    await stopAll();
    throw err;
  }

  // A reload is the loop over these owners (control/reload.ts), in this order: feeds first.
  const owners: ConfigOwner[] = [
    {
      applyConfig: (next, diff) => {
        feeds.applyConfig(next, diff);
      },
    },
    { applyConfig: (next) => feedFiles.applyConfig(next) },
    hooks,
    recordings,
    slates,
    outputs,
    sources,
    transcoders,
    hls,
    http,
    ...(rtmp !== undefined ? [rtmp] : []),
    ...(rtmps !== undefined ? [rtmps] : []),
    ...(parts.rtsp !== undefined ? [parts.rtsp] : []),
    ...(parts.srt !== undefined ? [parts.srt] : []),
    // Workers N: Launch/Source feeds a reload adds are registered to worker 1 too (the others' config has none).
    ...(parts.workerRegistry !== undefined && workerNode !== undefined
      ? [{ applyConfig: (next: ServerConfig) => parts.workerRegistry?.pinOnly(workerNode.sourcedFeedKeys(next)) }]
      : []),
  ];
  const configPath = options.configPath;
  if (configPath !== undefined) {
    // A reload parses the whole file first: a bad file is rejected and the running config stays.
    ctx.reload = async (): Promise<ReloadSummary> => {
      const next = shape(await loadConfigFile(configPath));
      const summary = await applyConfig(ctx, next, owners);
      log.info('config reloaded', { ...summary });
      return summary;
    };
  }

  log.info('listening', {
    http: `${config.http.bindAddress}:${httpPort}`,
    rtmp: rtmpPort !== undefined ? `${config.rtmp.bindAddress}:${rtmpPort}` : 'off',
    rtsp: rtspPort !== undefined ? `${config.rtsp.bindAddress}:${rtspPort}` : 'off',
    srt: srtPort !== undefined ? `${config.srt.bindAddress}:${srtPort}` : srtStatus,
    ...(httpsPort !== undefined ? { https: `${config.http.bindAddress}:${httpsPort}` } : {}),
    ...(rtmpsPort !== undefined ? { rtmps: `${config.rtmp.bindAddress}:${rtmpsPort}` } : {}),
    feeds: feeds
      .all()
      .map((f) => f.key)
      .join(','),
  });

  let closing: Promise<void> | undefined;
  return {
    ctx,
    httpPort,
    http,
    rtmpPort,
    rtspPort,
    srtPort,
    srtStatus,
    httpsPort,
    rtmpsPort,
    lifecycle,
    owners: {
      feeds,
      feedFiles,
      recordings,
      outputs,
      sources,
      transcoders,
      hls,
      http,
      rtmp,
      rtmps,
      rtsp: parts.rtsp,
      hooks,
      slates,
      srt: parts.srt,
    },
    reloadCertificates: () => certs?.reload() ?? Promise.resolve(true),
    reload: () => {
      if (ctx.reload === undefined) return Promise.reject(new Error('started without a config file: nothing to reload'));
      return ctx.reload();
    },
    close: () => {
      closing ??= (async () => {
        await stopAll();
        log.info('stopped');
      })();
      return closing;
    },
  };
}
