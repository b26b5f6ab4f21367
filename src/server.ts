// Builds and wires the parts of a running Feedcast from a config: feeds, outputs, the protocol
// listeners, the demo publisher. Holds no protocol logic.

import { loadConfigFile, type ServerConfig } from './config/config.js';
import { ApiRoute } from './control/api.js';
import { MetricsRoute } from './control/metrics.js';
import { applyConfig } from './control/reload.js';
import { AccessLog } from './control/access-log.js';
import { authPolicy, type AuthHook } from './access/auth.js';
import { CertificateStore } from './control/tls.js';
import { ConnectionRegistry } from './access/connections.js';
import { DemoSource, loadDemoClip } from './demo/demo-source.js';
import { FeedManager } from './feed/feed-manager.js';
import { FeedFileWriter } from './feedfile/writer.js';
import { createLogger, type Logger } from './observability/logger.js';
import { PlayerPageRoute } from './control/player-page.js';
import { HlsRoute } from './protocols/hls/route.js';
import { webRtcOptions } from './protocols/webrtc/options.js';
import { WebRtcRoute } from './protocols/webrtc/route.js';
import { HttpServer } from './protocols/http/server.js';
import { RtmpServer } from './protocols/rtmp/server.js';
import { RtspServer } from './protocols/rtsp/server.js';
import { SourceManager } from './transcode/launch.js';
import { TranscodeRoute } from './protocols/http/transcode-route.js';
import { setTranscoderManager, TranscoderManager } from './transcode/transcoder-manager.js';
import type { ReloadSummary, ServerContext } from './server-context.js';
import { OutputRegistry } from './streams/output-registry.js';
import { VERSION } from './version.js';
import { EgressThreads, egressThreads, setEgressThreads } from './streams/egress-threads.js';

export interface StartOptions {
  log?: Logger;
  /** Feed keys the built-in demo clip is published into (the no-argument demo uses ['demo']). */
  demoFeeds?: readonly string[];
  /** The config file, so that SIGHUP and POST /api/v1/reload can re-read it. */
  configPath?: string;
  /** Embedding programs: asked before any publish / read is served, after ACLs and credentials (docs/security.md). */
  onPublish?: AuthHook;
  onRead?: AuthHook;
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
  /** The ports of the HTTPS and RTMPS listeners, undefined when off. */
  readonly httpsPort: number | undefined;
  readonly rtmpsPort: number | undefined;
  /** Re-reads SSLCertificate/SSLCertificateKey (SIGHUP); false when the new pair is bad (the old one stays). */
  reloadCertificates(): Promise<boolean>;
  /** Re-reads the config file and applies it; rejects (keeping the running config) when it is bad. */
  reload(): Promise<ReloadSummary>;
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger();
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

  // Feeds with a File record to their disk ring; an existing file is recovered (or refused if it is not ours).
  const feedFiles: FeedFileWriter[] = [];
  const closeFeedFiles = (): Promise<unknown> => Promise.all(feedFiles.splice(0).map((w) => w.close()));
  try {
    for (const fc of config.feeds) {
      const feed = feeds.get(fc.key);
      if (fc.file === undefined || feed === undefined) continue;
      try {
        feedFiles.push(
          await FeedFileWriter.open(feed, {
            path: fc.file,
            maxSizeBytes: fc.fileMaxSizeBytes,
            syncIntervalMs: fc.fileSyncMs,
            truncate: fc.truncate,
            readOnly: fc.readOnly,
            log,
          }),
        );
      } catch (err) {
        // A disk that cannot be written (read-only, full, gone) costs that feed its recording, not
        // the server: it runs live. A file that is not ours is still refused (FeedcastError).
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM' || code === 'ENOSPC' || code === 'EIO') {
          log.error('feed file unusable: the feed runs live without it', { feed: fc.key, file: fc.file, code });
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    await closeFeedFiles();
    feeds.closeAll();
    throw err;
  }

  const ctx: ServerContext = {
    config,
    feeds,
    outputs: new OutputRegistry(config.readerMaxQueueBytes, log, config.writeCoalesceMs),
    connections: new ConnectionRegistry(),
    log,
    accessLog: config.customLog !== undefined ? new AccessLog(config.customLog) : undefined,
    bandwidthInUseKbps: 0,
    startedAt: new Date(),
    version: VERSION,
    counters: { refusedConnections: 0, reloads: 0, served: new Map() },
    reload: undefined,
    children: undefined,
  };
  if (options.onPublish !== undefined || options.onRead !== undefined) {
    authPolicy(ctx).setHooks({ onPublish: options.onPublish, onRead: options.onRead });
  }
  const configPath = options.configPath;
  if (configPath !== undefined) {
    // A reload parses the whole file first: a bad file is rejected and the running config stays.
    ctx.reload = async (): Promise<ReloadSummary> => {
      const next = await loadConfigFile(configPath);
      const summary = applyConfig(ctx, next);
      log.info('config reloaded', { ...summary });
      return summary;
    };
  }

  const demos: DemoSource[] = [];
  if (options.demoFeeds !== undefined && options.demoFeeds.length > 0) {
    const clip = await loadDemoClip();
    for (const key of options.demoFeeds) {
      const source = new DemoSource(clip, feeds.declare(key), log);
      source.start();
      demos.push(source);
    }
  }

  // Launch/pulled sources and transcoded streams: ffmpeg children, started on demand.
  const sources = new SourceManager(ctx, { idleTimeoutMs: config.transcodeIdleTimeoutMs });
  const transcoders = new TranscoderManager(ctx, {
    idleTimeoutMs: config.transcodeIdleTimeoutMs,
    acquireSource: (key) => sources.acquire(key),
  });
  setTranscoderManager(transcoders);
  ctx.children = {
    transcoders: () => transcoders.status(),
    sources: () => sources.status(),
    acquireSource: (key) => sources.acquire(key),
  };
  const stopChildren = async (): Promise<void> => {
    await transcoders.closeAll();
    await sources.closeAll();
    setTranscoderManager(undefined);
  };

  const http = new HttpServer(ctx);
  http.addRoute(new ApiRoute(ctx));
  http.addRoute(new MetricsRoute(ctx));
  http.addRoute(new TranscodeRoute(ctx, transcoders, sources));
  const hls = new HlsRoute(ctx, {
    segmentTargetMs: config.hls.segmentSeconds * 1000,
    partTargetMs: config.hls.partSeconds * 1000,
    windowSegments: config.hls.window,
    partHoldBackParts: config.hls.partHoldBack,
    idleTimeoutMs: config.hls.idleTimeoutMs,
    transcoders: () => transcoders,
  });
  http.addRoute(hls);
  const webrtc = config.webrtc.enabled ? new WebRtcRoute(ctx, webRtcOptions(config)) : undefined;
  if (webrtc !== undefined) http.addRoute(webrtc);
  // Opens the single-port mux (WebRTCUDPPort/WebRTCTCP) now: a port in use fails the start, not the first viewer.
  await webrtc?.ready();
  http.addRoute(new PlayerPageRoute(ctx, { whep: webrtc !== undefined }));
  let httpPort: number;
  let httpsPort: number | undefined;
  try {
    httpPort = await http.listen(config.http.port, config.http.bindAddress);
    if (certs !== undefined && config.tls.httpsPort !== undefined) {
      httpsPort = await http.listenTls(config.tls.httpsPort, config.http.bindAddress, certs);
    }
  } catch (err) {
    certs?.close();
    await http.close();
    for (const d of demos) d.stop();
    await stopChildren();
    await closeFeedFiles();
    feeds.closeAll();
    throw err;
  }
  transcoders.startAlwaysOn();
  let rtmp: RtmpServer | undefined;
  let rtmpPort: number | undefined;
  if (config.rtmp.port !== 0) {
    rtmp = new RtmpServer(ctx, { chunkSize: config.rtmp.chunkSize });
    try {
      rtmpPort = await rtmp.listen(config.rtmp.port, config.rtmp.bindAddress);
    } catch (err) {
      for (const d of demos) d.stop();
      await stopChildren();
      await closeFeedFiles();
      feeds.closeAll();
      await http.close();
      throw err;
    }
  }
  let rtmps: RtmpServer | undefined;
  let rtmpsPort: number | undefined;
  if (certs !== undefined && config.tls.rtmpsPort !== undefined) {
    rtmps = new RtmpServer(ctx, { chunkSize: config.rtmp.chunkSize, tls: certs });
    try {
      rtmpsPort = await rtmps.listen(config.tls.rtmpsPort, config.rtmp.bindAddress);
    } catch (err) {
      for (const d of demos) d.stop();
      await stopChildren();
      await closeFeedFiles();
      await rtmp?.close();
      feeds.closeAll();
      certs.close();
      await http.close();
      throw err;
    }
  }
  let rtsp: RtspServer | undefined;
  let rtspPort: number | undefined;
  if (config.rtsp.port !== undefined) {
    rtsp = new RtspServer(ctx);
    try {
      rtspPort = await rtsp.listen(config.rtsp.port, config.rtsp.bindAddress);
    } catch (err) {
      for (const d of demos) d.stop();
      await stopChildren();
      await closeFeedFiles();
      await rtmp?.close();
      await rtmps?.close();
      feeds.closeAll();
      certs?.close();
      await http.close();
      throw err;
    }
  }
  // One server per process owns the egress threads (tests start several in turn).
  const egress = config.egressThreads > 0 ? EgressThreads.start(config.egressThreads, log) : undefined;
  if (egress !== undefined) setEgressThreads(egress);
  log.info('listening', {
    http: `${config.http.bindAddress}:${httpPort}`,
    rtmp: rtmpPort !== undefined ? `${config.rtmp.bindAddress}:${rtmpPort}` : 'off',
    rtsp: rtspPort !== undefined ? `${config.rtsp.bindAddress}:${rtspPort}` : 'off',
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
    httpsPort,
    rtmpsPort,
    reloadCertificates: () => certs?.reload() ?? Promise.resolve(true),
    reload: () => {
      if (ctx.reload === undefined) return Promise.reject(new Error('started without a config file: nothing to reload'));
      return ctx.reload();
    },
    close: () => {
      closing ??= (async () => {
        feeds.beginStop();
        for (const d of demos) d.stop();
        await stopChildren();
        await webrtc?.close();
        hls.close();
        ctx.outputs.closeAll();
        await closeFeedFiles();
        feeds.closeAll();
        await rtmp?.close();
        await rtmps?.close();
        await rtsp?.close();
        certs?.close();
        await http.close();
        if (egress !== undefined) {
          if (egressThreads() === egress) setEgressThreads(undefined);
          await egress.stop();
        }
        ctx.accessLog?.close();
        log.info('stopped');
      })();
      return closing;
    },
  };
}
