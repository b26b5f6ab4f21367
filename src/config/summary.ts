// What `feedcast check CONFIG` prints: the listeners and limits, every feed with the URLs it is published and read at,
// every stream with its feed, format and encoding, the redirects, and the warnings. Plain text, stable order.

import { describeRestartRules } from './reload-rules.js';
import type { FeedConfig, ServerConfig, StreamConfig, StreamEncoding } from './config.js';

function hostOf(bindAddress: string): string {
  if (bindAddress === '0.0.0.0' || bindAddress === '::' || bindAddress === '') return 'localhost';
  return bindAddress.includes(':') ? `[${bindAddress}]` : bindAddress;
}

function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['G', 1024 ** 3],
    ['M', 1024 ** 2],
    ['K', 1024],
  ] as const) {
    if (bytes >= size && bytes % (size / 1024) === 0) return `${Number((bytes / size).toFixed(2))}${unit}`;
  }
  return `${bytes} bytes`;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** Base URLs of the listeners (undefined when a listener is off). */
export function listenerUrls(config: ServerConfig): {
  http: string;
  rtsp: string | undefined;
  rtmp: string | undefined;
  srt: string | undefined;
} {
  return {
    srt: config.srt.port !== undefined ? `srt://${hostOf(config.srt.bindAddress)}:${config.srt.port}` : undefined,
    http: `http://${hostOf(config.http.bindAddress)}:${config.http.port}`,
    rtsp: config.rtsp.port !== undefined ? `rtsp://${hostOf(config.rtsp.bindAddress)}:${config.rtsp.port}` : undefined,
    rtmp: config.rtmp.port !== 0 ? `rtmp://${hostOf(config.rtmp.bindAddress)}:${config.rtmp.port}` : undefined,
  };
}

/** Where a feed is published and read (docs/DESIGN: every feed is readable in every passthrough format). */
export function feedUrls(config: ServerConfig, feed: FeedConfig): { publish: string[]; read: string[] } {
  const urls = listenerUrls(config);
  const publish = [`${urls.http}/${feed.name}`];
  if (feed.name !== feed.key) publish.push(`${urls.http}/${feed.key}`);
  if (urls.rtmp !== undefined) publish.push(`${urls.rtmp}/live/${feed.key}`);
  if (urls.rtsp !== undefined) publish.push(`${urls.rtsp}/${feed.key}`);
  if (config.webrtc.enabled) publish.push(`${urls.http}/${feed.key}/whip`);
  if (urls.srt !== undefined) publish.push(`${urls.srt}?streamid=publish:${feed.key}`);
  const read = [`${urls.http}/${feed.key}.flv`, `${urls.http}/${feed.key}.ts`, `${urls.http}/${feed.key}/index.m3u8`];
  if (urls.rtsp !== undefined) read.push(`${urls.rtsp}/${feed.key}`);
  if (urls.rtmp !== undefined) read.push(`${urls.rtmp}/live/${feed.key}`);
  if (urls.srt !== undefined) read.push(`${urls.srt}?streamid=read:${feed.key}`);
  return { publish, read };
}

/** One line of the encoder settings that were given, e.g. `video libx264 1000 kbit/s 1280x720 25 fps`. */
export function describeEncoding(e: StreamEncoding): string {
  const audio: string[] = [];
  if (e.audioCodec !== undefined) audio.push(e.audioCodec);
  if (e.audioBitRateKbps !== undefined) audio.push(`${e.audioBitRateKbps} kbit/s`);
  if (e.audioSampleRate !== undefined) audio.push(`${e.audioSampleRate} Hz`);
  if (e.audioChannels !== undefined) audio.push(`${e.audioChannels} ch`);
  for (const [k, val] of Object.entries(e.audioAvOptions)) audio.push(`${k}=${val}`);
  for (const p of e.audioPresets) audio.push(`preset ${p}`);
  const video: string[] = [];
  if (e.videoCodec !== undefined) video.push(e.videoCodec);
  if (e.videoBitRateKbps !== undefined) video.push(`${e.videoBitRateKbps} kbit/s`);
  if (e.videoBitRateRangeKbps !== undefined) video.push(`${e.videoBitRateRangeKbps.min}-${e.videoBitRateRangeKbps.max} kbit/s`);
  if (e.videoSize !== undefined) video.push(`${e.videoSize.width}x${e.videoSize.height}`);
  if (e.frameRate !== undefined) video.push(`${Number(e.frameRate.toFixed(3))} fps`);
  if (e.intraOnly) video.push('intra only');
  else if (e.gop !== undefined) video.push(`gop ${e.gop}`);
  if (e.pixelFormat !== undefined) video.push(e.pixelFormat);
  if (e.videoBufferSizeKiB !== undefined) video.push(`buffer ${e.videoBufferSizeKiB}K`);
  if (e.qscale !== undefined) video.push(`qscale ${e.qscale}`);
  for (const [k, val] of Object.entries(e.videoAvOptions)) video.push(`${k}=${val}`);
  for (const p of e.videoPresets) video.push(`preset ${p}`);
  const parts: string[] = [];
  if (audio.length > 0) parts.push(`audio ${audio.join(' ')}`);
  if (video.length > 0) parts.push(`video ${video.join(' ')}`);
  if (!e.useDefaults) parts.push('NoDefaults');
  return parts.join('; ');
}

function describeServing(stream: StreamConfig): string {
  const f = stream.format;
  switch (f.support) {
    case 'passthrough':
      return stream.needsTranscode ? `${f.name}, transcoded by ffmpeg` : `${f.name}, passthrough`;
    case 'needs-encoding':
      return `${f.name}, transcoded by ffmpeg${f.note !== undefined ? ` (note: ${f.note})` : ''}`;
    case 'obsolete':
      return `${f.name}, NOT SERVED: ${f.alternative ?? 'obsolete format'}`;
    case 'status':
      return 'status page';
    case 'hls':
      return stream.needsTranscode ? 'HLS, transcoded by ffmpeg' : 'HLS';
    case 'rtp':
      return stream.needsTranscode ? 'RTP over RTSP, transcoded by ffmpeg' : 'RTP over RTSP';
  }
}

function streamUrl(config: ServerConfig, stream: StreamConfig): string {
  const urls = listenerUrls(config);
  if (stream.format.support === 'rtp') {
    const sdp = stream.multicast !== undefined ? `, SDP ${urls.http}/${stream.name.replace(/\.[^.]*$/, '')}.sdp` : '';
    return `${urls.rtsp !== undefined ? `${urls.rtsp}/${stream.name}` : '(RTSP is off: set RTSPPort)'}${sdp}`;
  }
  if (stream.format.support === 'hls') return `${urls.http}/${stream.name}`;
  return `${urls.http}/${stream.name}`;
}

/** The text `feedcast check` prints for a loaded config. */
export function describeConfig(config: ServerConfig): string {
  const out: string[] = [];
  const urls = listenerUrls(config);
  out.push(`Config ${config.source}`);
  out.push('Listeners');
  // Every address and port that will listen (issue 18 class 5).
  out.push(`  HTTP  ${config.http.bindAddress}:${config.http.port}`);
  if (config.tls.httpsPort !== undefined) out.push(`  HTTPS  ${config.http.bindAddress}:${config.tls.httpsPort}`);
  if (config.trustedProxies !== undefined) {
    out.push(`  HTTP behind proxies  X-Forwarded-For believed from ${config.trustedProxies.describe()}`);
  }
  out.push(`  RTSP  ${config.rtsp.port !== undefined ? `${config.rtsp.bindAddress}:${config.rtsp.port}` : 'off (no RTSPPort)'}`);
  out.push(`  RTMP  ${config.rtmp.port !== 0 ? `${config.rtmp.bindAddress}:${config.rtmp.port}` : 'off (RTMPPort 0)'}`);
  if (config.tls.rtmpsPort !== undefined) out.push(`  RTMPS  ${config.rtmp.bindAddress}:${config.tls.rtmpsPort}`);
  out.push(
    `  SRT  ${config.srt.port !== undefined ? `${config.srt.bindAddress}:${config.srt.port} (UDP, latency ${config.srt.latencyMs} ms)` : 'off (no SRTPort)'}`,
  );
  out.push(`  WebRTC  ${describeWebRtcListeners(config)}`);
  out.push(
    `Limits  MaxClients ${config.maxClients}, MaxHTTPConnections ${config.maxHttpConnections}, MaxBandwidth ${config.maxBandwidthKbps} kbit/s`,
  );
  out.push(
    `Readers  ReaderMaxQueue ${formatBytes(config.readerMaxQueueBytes)}, ReaderMaxLag ${seconds(config.readerMaxLagMs)}; ` +
      `publishers: PublisherTimeout ${seconds(config.publisherTimeoutMs)}, PublisherGracePeriod ${seconds(config.publisherGraceMs)}; ` +
      `DynamicFeeds ${config.dynamicFeeds ? 'on' : 'off'}`,
  );
  out.push(`Access log  ${config.customLog === undefined ? 'none' : config.customLog === '-' ? 'stdout' : config.customLog}`);
  if (config.ffmpegPath !== undefined) out.push(`ffmpeg  ${config.ffmpegPath}`);

  out.push('', 'Need a restart (a reload, SIGHUP or POST /api/v1/reload, applies every other directive)');
  for (const line of describeRestartRules()) out.push(`  ${line}`);

  out.push('', `Feeds (${config.feeds.length})`);
  for (const feed of config.feeds) {
    const { publish, read } = feedUrls(config, feed);
    out.push(`  ${feed.name}  [${feed.where}]`);
    out.push(`    publish  ${publish.join(', ')}`);
    out.push(`    read     ${read.join(', ')}`);
    const file =
      feed.file === undefined
        ? 'none (memory only)'
        : `${feed.file} (${feed.readOnly ? 'read-only' : `ring of ${formatBytes(feed.fileMaxSizeBytes)}${feed.truncate ? ', truncated per publisher' : ''}`})`;
    out.push(`    file     ${file}`);
    out.push(`    acl      ${feed.acl.describe()}`);
    if (feed.publishSecret !== undefined) out.push('    secret   required');
    if (feed.launch !== undefined) out.push(`    launch   ${feed.launch.join(' ')} ${feed.launchUrl ?? ''}`.trimEnd());
  }
  if (config.dynamicFeeds) {
    out.push(`  (any other name is created on publish: ${urls.http}/NAME; DynamicFeedACL ${config.dynamicFeedAcl.describe()})`);
  }

  out.push('', `Streams (${config.streams.length})`);
  for (const stream of config.streams) {
    out.push(`  ${stream.name}  [${stream.where}]`);
    out.push(`    url      ${streamUrl(config, stream)}`);
    if (stream.format.support === 'status') out.push('    serves   status page');
    else {
      const source = stream.feed !== undefined ? `feed ${stream.feed}` : `file ${stream.file ?? '?'}`;
      out.push(`    source   ${source}; ${describeServing(stream)}`);
    }
    if (stream.feed !== undefined && stream.format.support !== 'status') {
      const enc = describeEncoding(stream.encoding);
      const tracks = stream.noAudio
        ? stream.noVideo
          ? ' (no audio, no video)'
          : ' (no audio)'
        : stream.noVideo
          ? ' (no video)'
          : '';
      out.push(`    encoding ${enc === '' ? 'as published' : enc}${tracks}; counts ${stream.bandwidthKbps} kbit/s`);
    }
    if (stream.multicast !== undefined) {
      out.push(
        `    multicast ${stream.multicast.address}:${stream.multicast.port ?? 'auto'} ttl ${stream.multicast.ttl}${stream.loop ? ', loops' : ''}`,
      );
    }
    if (!stream.acl.isEmpty) out.push(`    acl      ${stream.acl.describe()}`);
    if (stream.dynamicAcl !== undefined) out.push(`    dynamic acl ${stream.dynamicAcl}`);
    const extras: string[] = [];
    if (stream.prerollSeconds > 0) extras.push(`preroll ${stream.prerollSeconds} s`);
    if (stream.maxTimeSeconds > 0) extras.push(`max time ${stream.maxTimeSeconds} s`);
    if (stream.startSendOnKey) extras.push('start on keyframe');
    const meta = Object.entries(stream.metadata).map(([k, val]) => `${k}="${val}"`);
    if (meta.length > 0) extras.push(`metadata ${meta.join(' ')}`);
    if (extras.length > 0) out.push(`    options  ${extras.join(', ')}`);
  }

  out.push('', `Redirects (${config.redirects.length})`);
  for (const r of config.redirects) out.push(`  ${urls.http}/${r.name} -> ${r.url}  [${r.where}]`);

  out.push('', `Warnings (${config.warnings.length})`);
  for (const w of config.warnings) out.push(`  ${w.where}: ${w.message}`);
  return out.join('\n') + '\n';
}

/**
 * What sets `port` in a config, for "address in use" messages (issue 18: a busy RTMP port said "change
 * HTTPPort"): the directive, whether it was a default, and the environment variable that overrides it.
 */
export function portSetting(config: ServerConfig, port: number): string | undefined {
  const candidates: [number | undefined, string][] = [
    [config.http.port, 'HTTPPort (environment: FEEDCAST_HTTP_PORT)'],
    [
      config.rtmp.port !== 0 ? config.rtmp.port : undefined,
      'RTMPPort (default 1935; RTMPPort 0 turns RTMP off; environment: FEEDCAST_RTMP_PORT)',
    ],
    [config.rtsp.port, 'RTSPPort (environment: FEEDCAST_RTSP_PORT; without RTSPPort RTSP is off)'],
    [config.srt.port, 'SRTPort (UDP; environment: FEEDCAST_SRT_PORT; without SRTPort SRT is off)'],
    [config.tls.httpsPort, 'HTTPSPort'],
    [config.tls.rtmpsPort, 'RTMPSPort'],
    [config.webrtc.enabled ? config.webrtc.udpPort : undefined, 'WebRTCUDPPort'],
    [config.webrtc.enabled ? config.webrtc.tcpPort : undefined, 'WebRTCTCPPort'],
  ];
  return candidates.find(([p]) => p === port)?.[1];
}

/** Where WebRTC media listens: signalling is on HTTP; media on UDP (one port, a range or ephemeral) and TCP. */
function describeWebRtcListeners(config: ServerConfig): string {
  const w = config.webrtc;
  if (!w.enabled) return 'off (WebRTC off)';
  const bind = w.bindAddress ?? config.http.bindAddress;
  const udp =
    w.udpPort !== undefined
      ? `UDP ${bind}:${w.udpPort}`
      : w.portRange !== undefined
        ? `UDP ${bind}:${w.portRange[0]}-${w.portRange[1]}`
        : `UDP ${bind}, a free port per peer`;
  const tcp = w.tcp ? `, TCP ${bind}:${w.tcpPort ?? 'a free port'}` : '';
  return `${udp}${tcp}; offers and answers on HTTP`;
}
