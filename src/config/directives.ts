// The one table of config directives (ffserver.conf, ref §2.2–2.6, plus Feedcast's own): for each one, where it is
// allowed, its arguments and their validation, its default, how it applies, and its doc text. Parser, defaults and docs use it.

import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseAclRule, parseAddress, type AclRuleSpec, type HostResolver } from './acl.js';
import { HOOK_DEFAULTS, parseHookAction, type HookEvent, type HookSpec } from './hooks.js';
import { guessFormatFromName, knownFormatNames, lookupFormat, type FormatInfo } from './formats.js';
import type { StreamEncoding } from './stream-encoding.js';
import type { SectionKind } from './lexer.js';
import { feedKeyOf, findByName, findFeedConfig, sameName } from './names.js';
import { loadPreset } from './presets.js';

// ---------------------------------------------------------------------------------------------------------------
// Parse state: what the directives write into while the file is read.

/** Global settings, flat. config.ts shapes them into ServerConfig. */
export interface GlobalSettings {
  httpPort: number;
  httpBindAddress: string;
  rtspPort: number | undefined;
  rtspBindAddress: string;
  rtmpPort: number;
  rtmpBindAddress: string;
  rtmpChunkSize: number;
  /** undefined: SRT off. */
  srtPort: number | undefined;
  srtBindAddress: string;
  srtLatencyMs: number;
  hlsSegmentSeconds: number;
  hlsPartSeconds: number;
  hlsWindow: number;
  hlsPartHoldBack: number;
  hlsIdleTimeoutMs: number;
  transcodeIdleTimeoutMs: number;
  maxHttpConnections: number;
  maxClients: number;
  maxBandwidthKbps: number;
  customLog: string | undefined;
  ffmpegPath: string | undefined;
  publisherTimeoutMs: number;
  publisherGraceMs: number;
  dynamicFeeds: boolean;
  dynamicFeedTimeoutMs: number;
  readerMaxQueueBytes: number;
  readerMaxLagMs: number;
  useDefaults: boolean;
  readTokenKey: string | undefined;
  jwtKey: string | undefined;
  jwksFile: string | undefined;
  authCallbackUrl: string | undefined;
  authCallbackTimeoutMs: number;
  maxConnectionsPerAddress: number;
  requestHeaderTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  httpsPort: number | undefined;
  rtmpsPort: number | undefined;
  sslCertificate: string | undefined;
  sslCertificateKey: string | undefined;
  /** ms; 'off' = one write per chunk; undefined = FEEDCAST_WRITE_COALESCE_MS, else 10. */
  writeCoalesceMs: number | 'off' | undefined;
  /** Worker threads that send HTTP progressive readers' batches; 0 = the main thread does. */
  egressThreads: number;
  /** `Workers`: processes serving the same ports (docs/cluster.md, "Workers"); 'auto': one per CPU. */
  workers: number | 'auto';
  webrtc: boolean;
  webrtcAddresses: readonly string[] | undefined;
  webrtcUdpPort: number | undefined;
  webrtcPortRange: readonly [number, number] | undefined;
  webrtcTcp: boolean;
  webrtcIceServers: readonly IceServerSpec[];
  webrtcServerIceServers: readonly IceServerSpec[];
  webrtcPeerTimeoutMs: number;
  webrtcTcpPort: number | undefined;
  webrtcBindAddress: string | undefined;
  whipKeyframeIntervalMs: number;
  webrtcPlayoutDelayZero: boolean;
  tokenExpiryCutsReaders: boolean;
  /** Lifecycle hooks written outside any section (config/hooks.ts). */
  hooks: readonly HookSpec[];
  /** `OfflineSlate` outside any section: the default of every feed ('off', 'on' or a picture/clip path). */
  offlineSlate: string;
  hookTimeoutMs: number;
  hookConcurrency: number;
  hookRetries: number;
  /** `ClusterRedis`: the registry of a cluster (docs/cluster.md); undefined: a single node. */
  clusterRedis: string | undefined;
  nodeName: string | undefined;
  nodeUrl: string | undefined;
  nodeTtlMs: number;
  relayIdleTimeoutMs: number;
  relayVia: string | undefined;
}

/** A STUN or TURN server (WebRTCIceServer, WebRTCServerIceServer). */
export interface IceServerSpec {
  urls: string;
  username?: string;
  credential?: string;
}

/** Every global default in one place (docs/config.md explains the ones that differ from ffserver). */
export const GLOBAL_DEFAULTS: Readonly<GlobalSettings> = Object.freeze({
  httpPort: 8090, // ffserver: no default (no HTTP listener)
  httpBindAddress: '0.0.0.0',
  rtspPort: 5454, // ffserver: off unless RTSPPort was given; 5454 is its sample's port
  rtspBindAddress: '0.0.0.0',
  rtmpPort: 1935,
  rtmpBindAddress: '0.0.0.0',
  rtmpChunkSize: 4096,
  srtPort: 8890, // off in a config file without SRTPort or SRTBindAddress; the demo listens on 8890
  srtBindAddress: '0.0.0.0',
  srtLatencyMs: 120, // libsrt's default for live mode
  hlsSegmentSeconds: 2,
  hlsPartSeconds: 0.5,
  hlsWindow: 12,
  hlsPartHoldBack: 3,
  hlsIdleTimeoutMs: 30_000,
  transcodeIdleTimeoutMs: 10_000,
  maxHttpConnections: 2000,
  maxClients: 1000, // ffserver: 5
  maxBandwidthKbps: 10_000_000, // ffserver: 1000
  customLog: undefined,
  ffmpegPath: undefined,
  publisherTimeoutMs: 5_000,
  publisherGraceMs: 30_000,
  dynamicFeeds: false,
  dynamicFeedTimeoutMs: 300_000,
  readerMaxQueueBytes: 8 * 1024 * 1024,
  readerMaxLagMs: 10_000,
  useDefaults: true,
  readTokenKey: undefined,
  jwtKey: undefined,
  jwksFile: undefined,
  authCallbackUrl: undefined,
  authCallbackTimeoutMs: 2_000,
  maxConnectionsPerAddress: 64, // issue 25: unlimited let one address take every MaxClients slot
  requestHeaderTimeoutMs: 15_000,
  idleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  httpsPort: undefined,
  rtmpsPort: undefined,
  sslCertificate: undefined,
  sslCertificateKey: undefined,
  writeCoalesceMs: undefined,
  egressThreads: 0,
  workers: 1,
  webrtc: true,
  webrtcAddresses: undefined,
  webrtcUdpPort: undefined,
  webrtcPortRange: undefined,
  webrtcTcp: false,
  webrtcIceServers: [],
  webrtcServerIceServers: [],
  webrtcPeerTimeoutMs: 15_000,
  webrtcTcpPort: undefined,
  webrtcBindAddress: undefined,
  whipKeyframeIntervalMs: 2000,
  webrtcPlayoutDelayZero: true,
  tokenExpiryCutsReaders: true,
  hooks: [],
  offlineSlate: 'off',
  hookTimeoutMs: HOOK_DEFAULTS.timeoutMs,
  hookConcurrency: HOOK_DEFAULTS.concurrency,
  hookRetries: HOOK_DEFAULTS.retries,
  clusterRedis: undefined,
  nodeName: undefined,
  nodeUrl: undefined,
  nodeTtlMs: 10_000,
  relayIdleTimeoutMs: 10_000,
  relayVia: undefined,
});

export const FEED_DEFAULT_MAX_SIZE_BYTES = 5 * 1024 * 1024;
/** FileSync default: the feed file reaches the disk at least every second. */
export const FEED_DEFAULT_SYNC_MS = 1000;
export const FEED_MIN_MAX_SIZE_BYTES = 16384;
/** RecordSegment default: one file an hour. */
export const RECORD_DEFAULT_SEGMENT_SECONDS = 3600;
/** RecordPath default, per RecordFormat: %feed and strftime fields (src/record/record-path.ts). */
export const RECORD_DEFAULT_PATHS = {
  fmp4: 'recordings/%feed/%Y-%m-%d/%H-%M-%S.mp4',
  ts: 'recordings/%feed/%Y-%m-%d/%H-%M-%S.ts',
} as const;

/** The encoder values ffserver filled in under UseDefaults (ref §2.6), for the transcoder. */
export const FFSERVER_ENCODER_DEFAULTS = Object.freeze({
  audioBitRateKbps: 64,
  audioSampleRate: 22050,
  audioChannels: 1,
  videoBitRateKbps: 64,
  frameRate: 5,
  videoSize: Object.freeze({ width: 160, height: 128 }),
});

export interface FeedDraft {
  name: string;
  key: string;
  line: number;
  where: string;
  file: string | undefined;
  readOnly: boolean;
  fileMaxSizeBytes: number;
  fileMaxSizeLine: number | undefined;
  fileSyncMs: number | undefined;
  truncate: boolean;
  truncateLine: number | undefined;
  launch: string[] | undefined;
  source: string | undefined;
  loop: boolean;
  onDemand: boolean;
  publishSecret: string | undefined;
  srtPassphrase: string | undefined;
  aclSpecs: AclRuleSpec[];
  dynamicAcl: string | undefined;
  requireReadToken: boolean;
  maxReaders: number;
  /** Lifecycle hooks of this feed only (config/hooks.ts). */
  hooks: HookSpec[];
  /** `Record on` and its settings (undefined: RecordPath's default for RecordFormat). */
  record: boolean;
  recordPath: string | undefined;
  recordSegmentSeconds: number;
  recordFormat: 'fmp4' | 'ts';
  recordRetentionSeconds: number | undefined;
  recordRetentionBytes: number | undefined;
  /** `OfflineSlate` in this <Feed>: 'off', 'on', a path, or undefined (the global setting). */
  offlineSlate: string | undefined;
  /** `HLSDVRWindow` in this <Feed>: seconds of history its live HLS playlists hold (undefined: HLSWindow only). */
  hlsDvrWindowSeconds: number | undefined;
}

export interface StreamDraft {
  name: string;
  line: number;
  where: string;
  feed: string | undefined;
  feedLine: number | undefined;
  file: string | undefined;
  format: FormatInfo | undefined;
  formatExplicit: boolean;
  formatLine: number | undefined;
  inputFormat: string | undefined;
  prerollSeconds: number;
  startSendOnKey: boolean;
  maxTimeSeconds: number;
  metadata: Record<string, string>;
  noAudio: boolean;
  noVideo: boolean;
  aclSpecs: AclRuleSpec[];
  dynamicAcl: string | undefined;
  requireReadToken: boolean;
  maxReaders: number;
  rtspOption: string | undefined;
  multicastAddress: string | undefined;
  multicastPort: number | undefined;
  multicastTtl: number | undefined;
  multicastLine: number | undefined;
  loop: boolean;
  alwaysOn: boolean;
  faviconUrl: string | undefined;
  useDefaultsSeen: boolean;
  encoding: StreamEncoding;
  /** Encoder directives used, in order, with their lines. */
  encoderDirectives: { name: string; line: number }[];
  /** ffserver's per-stream AVOption dictionaries, to reject a key set twice (ref §2.6). */
  avKeys: { audio: Map<string, string>; video: Map<string, string> };
}

export interface RedirectDraft {
  name: string;
  line: number;
  where: string;
  url: string | undefined;
}

export interface ParseState {
  readonly source: string;
  readonly globals: GlobalSettings;
  /** Globals given explicitly, with the line that set them last. */
  readonly explicit: Map<keyof GlobalSettings, number>;
  readonly feeds: FeedDraft[];
  readonly streams: StreamDraft[];
  readonly redirects: RedirectDraft[];
  /** Every <Feed> in the file with its line, to tell "defined below" from "not defined". */
  readonly allFeeds: ReadonlyMap<string, number>;
  /** Async work run after the text is read (host name resolution, path checks). */
  readonly deferred: (() => Promise<void>)[];
  /** Whether paths (File, ReadOnlyFile, CustomLog) are checked on disk. */
  readonly checkPaths: boolean;
  /** Where AVPresetVideo/AVPresetAudio files are looked for, in order (presets.ts). */
  readonly presetDirs: readonly string[];
  readonly resolveHost: HostResolver;
  /** `StatusACL` rules: who may read the status page, the API and the metrics. */
  readonly statusAclSpecs: AclRuleSpec[];
  /** `DynamicFeedACL` rules: who may publish to a feed the config does not declare. */
  readonly dynamicFeedAclSpecs: AclRuleSpec[];
  /** `TrustedProxy` addresses: HTTP peers whose X-Forwarded-For names the real client. */
  readonly trustedProxySpecs: AclRuleSpec[];
  /** `ControlUser NAME PASSWORD`: the credentials the control endpoints (kick, reload) ask for. */
  control: { user: string; password: string } | undefined;
}

/** Where a directive is being applied, with its reporting hooks. */
export interface Site {
  readonly line: number;
  readonly where: string;
  /** Canonical directive name, e.g. `HTTPPort`. */
  readonly name: string;
  readonly state: ParseState;
  readonly error: (message: string) => void;
  readonly warn: (message: string) => void;
}

// ---------------------------------------------------------------------------------------------------------------
// Value types: each parses a directive's arguments or throws BadValue with a message that says how to fix it.

export class BadValue extends Error {}

function bad(message: string): never {
  throw new BadValue(message);
}

export interface ValueSpec<T> {
  /** How the arguments are written, for docs and "needs a value" errors. */
  readonly syntax: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  /** Throws BadValue, or ConfigError (already located at `where`). */
  parse(args: readonly string[], name: string, where: string): T;
}

function first(args: readonly string[]): string {
  return args[0] ?? '';
}

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function toInt(text: string): number | undefined {
  if (INT.test(text)) return Number(text);
  if (/^0x[0-9a-f]+$/i.test(text)) return Number.parseInt(text.slice(2), 16);
  return undefined;
}

function toFloat(text: string): number | undefined {
  return FLOAT.test(text) ? Number(text) : undefined;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** `90`, `1.5h`, `30m`, `7d`, `2w` in seconds; undefined when it is not a duration. */
function parseDurationSeconds(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw]?)$/i.exec(text);
  if (m === null) return undefined;
  const n = Number(m[1]) * (DURATION_UNITS[(m[2] ?? '').toLowerCase()] ?? 1);
  return Number.isFinite(n) ? n : undefined;
}

/** `10G`, `500M`, `1.5T` in bytes (powers of 1024, B optional); undefined when it is not a size with a unit. */
function parseSizeWithUnit(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT])(?:i?B)?$/i.exec(text);
  if (m === null) return undefined;
  const bytes = Math.floor(Number(m[1]) * 1024 ** ('KMGT'.indexOf((m[2] ?? 'K').toUpperCase()) + 1));
  return Number.isFinite(bytes) && bytes <= Number.MAX_SAFE_INTEGER ? bytes : undefined;
}

function range(min: number, max: number): string {
  return max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `${min}–${max}`;
}

function checkRange(name: string, v: number, min: number, max: number, unit = ''): number {
  if (v < min || v > max) {
    bad(
      `${name} ${v}${unit} is out of range; it must be ${max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`}${unit}`,
    );
  }
  return v;
}

/** `redis://[USER:PASSWORD@]HOST[:PORT][/DB]` or `rediss://` (TLS), checked; returned as written. */
function parseRedisUrl(text: string, name: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad(`${name} "${text.slice(0, 100)}" is not a URL; write e.g. ${name} redis://127.0.0.1:6379/0`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    bad(`${name} "${text.slice(0, 100)}" must start with redis:// (or rediss:// for TLS)`);
  }
  if (url.hostname === '') bad(`${name} "${text.slice(0, 100)}" names no host; write e.g. ${name} redis://127.0.0.1:6379/0`);
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,5}$/.test(db)) bad(`${name}: database "${db.slice(0, 20)}" is not a number; write e.g. /0`);
  if (url.search !== '' || url.hash !== '') bad(`${name} "${text.slice(0, 100)}" takes no query or fragment`);
  return text;
}

const v = {
  none(): ValueSpec<true> {
    return { syntax: '', minArgs: 0, maxArgs: 0, parse: () => true };
  },
  int(min: number, max: number, what = 'INTEGER', example = String(min)): ValueSpec<number> {
    return {
      syntax: `${what} (${range(min, max)})`,
      minArgs: 1,
      maxArgs: 1,
      parse(args, name) {
        const n = toInt(first(args));
        if (n === undefined) bad(`${name} "${first(args)}" is not a whole number; write e.g. ${name} ${example}`);
        return checkRange(name, n, min, max);
      },
    };
  },
  float(min: number, max: number, what = 'NUMBER', example = String(min)): ValueSpec<number> {
    return {
      syntax: `${what} (${range(min, max)})`,
      minArgs: 1,
      maxArgs: 1,
      parse(args, name) {
        const n = toFloat(first(args));
        if (n === undefined || !Number.isFinite(n))
          bad(`${name} "${first(args)}" is not a number; write e.g. ${name} ${example}`);
        return checkRange(name, n, min, max);
      },
    };
  },
  port(min = 1): ValueSpec<number> {
    return { ...v.int(min, 65535, 'PORT', '8090'), syntax: `PORT (${min}–65535)` };
  },
  /** Byte size with K/M/G suffix (powers of 1024, fractions allowed); a bare number is bytes. */
  size(min: number, bareWarning: boolean): ValueSpec<{ bytes: number; bare: boolean }> {
    return {
      syntax: 'SIZE (bytes, or with K/M/G suffix: 200K, 0.5M, 1G)',
      minArgs: 1,
      maxArgs: 1,
      parse(args, name) {
        const m = /^((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(?:([KMG])(?:i?B)?|B)?$/i.exec(first(args));
        if (m === null) bad(`${name} "${first(args)}" is not a size; write e.g. 200K, 5M or 1G`);
        const unit = m[2]?.toUpperCase();
        const factor = unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1;
        const bytes = Math.floor(Number(m[1]) * factor);
        if (!Number.isFinite(bytes) || bytes > Number.MAX_SAFE_INTEGER) bad(`${name} "${first(args)}" is too large`);
        if (bytes < min) bad(`${name} ${first(args)} is too small; it must be at least ${min} bytes (${min / 1024}K)`);
        return { bytes, bare: bareWarning && unit === undefined && !/B$/i.test(first(args)) };
      },
    };
  },
  /** A duration in seconds: a number with an optional unit s, m, h, d or w (`90`, `30m`, `1h`, `7d`). */
  duration(min: number, max: number, example: string): ValueSpec<number> {
    return {
      syntax: `DURATION (seconds, or with s/m/h/d/w: 30m, 1h, 7d)`,
      minArgs: 1,
      maxArgs: 1,
      parse(args, name) {
        const seconds = parseDurationSeconds(first(args));
        if (seconds === undefined) bad(`${name} "${first(args)}" is not a duration; write e.g. ${name} ${example}`);
        return checkRange(name, seconds, min, max, ' s');
      },
    };
  },
  seconds(min: number, max: number, example: string): ValueSpec<number> {
    return { ...v.float(min, max, 'SECONDS', example), syntax: `SECONDS (${range(min, max)})` };
  },
  bool(): ValueSpec<boolean> {
    return {
      syntax: 'on|off',
      minArgs: 1,
      maxArgs: 1,
      parse(args, name) {
        const t = first(args).toLowerCase();
        if (['on', 'yes', 'true', '1'].includes(t)) return true;
        if (['off', 'no', 'false', '0'].includes(t)) return false;
        return bad(`${name} "${first(args)}" must be on or off`);
      },
    };
  },
  string(syntax: string, pattern?: { re: RegExp; what: string }): ValueSpec<string> {
    return {
      syntax,
      minArgs: 1,
      maxArgs: 1,
      parse(args, name) {
        const s = first(args);
        if (s === '') bad(`${name} needs a non-empty ${syntax}`);
        if (pattern !== undefined && !pattern.re.test(s)) bad(`${name} "${s}" is not ${pattern.what}`);
        return s;
      },
    };
  },
  /** `spec`, or `fallback` when the directive is written without a value. */
  optional<T>(spec: ValueSpec<T>, fallback: T): ValueSpec<T> {
    return {
      ...spec,
      syntax: `[${spec.syntax}]`,
      minArgs: 0,
      parse: (args, name, where) => (args.length === 0 ? fallback : spec.parse(args, name, where)),
    };
  },
  words(syntax: string, minArgs: number, maxArgs: number): ValueSpec<readonly string[]> {
    return { syntax, minArgs, maxArgs, parse: (args) => args };
  },
  host(): ValueSpec<string> {
    return v.string('ADDRESS (IPv4, IPv6 or host name)', {
      re: /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?|[0-9A-Fa-f:.]+(?:%[\w.-]+)?)$/,
      what: 'an IP address or host name; write e.g. 0.0.0.0, :: or localhost',
    });
  },
  codec(kind: 'audio' | 'video'): ValueSpec<string> {
    return {
      syntax: `ENCODER (an ffmpeg ${kind} encoder name, e.g. ${kind === 'audio' ? 'aac' : 'libx264'})`,
      minArgs: 1,
      maxArgs: 1,
      parse(args, name) {
        const s = first(args);
        if (!/^[A-Za-z0-9_.-]+$/.test(s))
          bad(`${name} "${s}" is not an encoder name; write e.g. ${name} ${kind === 'audio' ? 'aac' : 'libx264'}`);
        const lower = s.toLowerCase();
        if (kind === 'audio' && VIDEO_CODECS.has(lower)) bad(`${name} ${s}: ${s} is a video encoder; use VideoCodec ${s}`);
        if (kind === 'video' && AUDIO_CODECS.has(lower)) bad(`${name} ${s}: ${s} is an audio encoder; use AudioCodec ${s}`);
        return s;
      },
    };
  },
};

const AUDIO_CODECS = new Set(
  (
    'aac libfdk_aac mp2 mp2fixed mp3 libmp3lame libtwolame ac3 ac3_fixed eac3 vorbis libvorbis opus libopus flac alac ' +
    'pcm_s16le pcm_s16be pcm_u8 pcm_mulaw pcm_alaw wmav1 wmav2 adpcm_swf adpcm_ima_wav g722 g726 speex libspeex ' +
    'libopencore_amrnb libvo_amrwbenc real_144 nellymoser truehd dts dca'
  ).split(' '),
);
const VIDEO_CODECS = new Set(
  (
    'mpeg1video mpeg2video mpeg4 libxvid msmpeg4 msmpeg4v2 msmpeg4v3 wmv1 wmv2 h261 h263 h263p flv flv1 h264 libx264 ' +
    'libx264rgb libopenh264 h264_nvenc h264_vaapi h264_qsv h264_v4l2m2m h264_omx hevc libx265 hevc_nvenc hevc_vaapi ' +
    'hevc_qsv libvpx libvpx-vp9 vp8 vp9 vp8_vaapi vp9_vaapi libaom-av1 libsvtav1 librav1e av1 mjpeg ljpeg libtheora theora ' +
    'rv10 rv20 png gif rawvideo huffyuv ffv1 prores dnxhd snow'
  ).split(' '),
);

/** ffmpeg's video size abbreviations (libavutil/parseutils.c). */
export const VIDEO_SIZE_ABBREVIATIONS: Readonly<Record<string, readonly [number, number]>> = {
  ntsc: [720, 480],
  pal: [720, 576],
  qntsc: [352, 240],
  qpal: [352, 288],
  sntsc: [640, 480],
  spal: [768, 576],
  film: [352, 240],
  'ntsc-film': [352, 240],
  sqcif: [128, 96],
  qcif: [176, 144],
  cif: [352, 288],
  '4cif': [704, 576],
  '16cif': [1408, 1152],
  qqvga: [160, 120],
  qvga: [320, 240],
  vga: [640, 480],
  svga: [800, 600],
  xga: [1024, 768],
  uxga: [1600, 1200],
  qxga: [2048, 1536],
  sxga: [1280, 1024],
  qsxga: [2560, 2048],
  hsxga: [5120, 4096],
  wvga: [852, 480],
  wxga: [1366, 768],
  wsxga: [1600, 1024],
  wuxga: [1920, 1200],
  woxga: [2560, 1600],
  wqhd: [2560, 1440],
  wqsxga: [3200, 2048],
  wquxga: [3840, 2400],
  whsxga: [6400, 4096],
  whuxga: [7680, 4800],
  cga: [320, 200],
  ega: [640, 350],
  hd480: [852, 480],
  hd720: [1280, 720],
  hd1080: [1920, 1080],
  quadhd: [2560, 1440],
  '2k': [2048, 1080],
  '2kdci': [2048, 1080],
  '2kflat': [1998, 1080],
  '2kscope': [2048, 858],
  '4k': [4096, 2160],
  '4kdci': [4096, 2160],
  '4kflat': [3996, 2160],
  '4kscope': [4096, 1716],
  nhd: [640, 360],
  hqvga: [240, 160],
  wqvga: [400, 240],
  fwqvga: [432, 240],
  hvga: [480, 320],
  qhd: [960, 540],
  uhd2160: [3840, 2160],
  uhd4320: [7680, 4320],
};

const videoSize: ValueSpec<{ width: number; height: number }> = {
  syntax: 'WIDTHxHEIGHT or an abbreviation (qcif, cif, 4cif, vga, svga, hd480, hd720, hd1080, …)',
  minArgs: 1,
  maxArgs: 1,
  parse(args, name) {
    const s = first(args);
    const abbr = Object.hasOwn(VIDEO_SIZE_ABBREVIATIONS, s.toLowerCase()) ? VIDEO_SIZE_ABBREVIATIONS[s.toLowerCase()] : undefined;
    if (abbr !== undefined) return { width: abbr[0], height: abbr[1] };
    const m = /^(\d+)x(\d+)$/i.exec(s);
    if (m === null)
      bad(`${name} "${s}" is not a video size; write WIDTHxHEIGHT (e.g. 640x360) or an abbreviation such as vga or hd720`);
    const width = Number(m[1]);
    const height = Number(m[2]);
    if (width < 1 || height < 1 || width > 16384 || height > 16384)
      bad(`${name} ${s} is out of range; width and height must be 1–16384`);
    return { width, height };
  },
};

const frameRate: ValueSpec<number> = {
  syntax: 'FPS (a number, or a fraction like 30000/1001)',
  minArgs: 1,
  maxArgs: 1,
  parse(args, name) {
    const s = first(args);
    const frac = /^(\d+)\/(\d+)$/.exec(s);
    const fps = frac !== null ? Number(frac[1]) / Number(frac[2]) : toFloat(s);
    if (fps === undefined || !Number.isFinite(fps))
      bad(`${name} "${s}" is not a frame rate; write e.g. ${name} 25 or ${name} 30000/1001`);
    if (fps <= 0 || fps > 1000) bad(`${name} ${s} is out of range; it must be above 0 and at most 1000 frames per second`);
    return fps;
  },
};

const bitRateRange: ValueSpec<{ min: number; max: number }> = {
  syntax: 'MIN-MAX (kbit/s)',
  minArgs: 1,
  maxArgs: 1,
  parse(args, name) {
    const m = /^(\d+)-(\d+)$/.exec(first(args));
    if (m === null) bad(`${name} "${first(args)}" must be MIN-MAX in kbit/s, e.g. ${name} 200-800`);
    const min = Number(m[1]);
    const max = Number(m[2]);
    if (max > 2_000_000) bad(`${name} ${first(args)} is out of range; the maximum is 2000000 kbit/s`);
    if (min > max) bad(`${name} ${first(args)}: the minimum is above the maximum; swap them`);
    return { min, max };
  },
};

const strictValue: ValueSpec<string> = {
  syntax: 'LEVEL (-2…2, or very, strict, normal, unofficial, experimental)',
  minArgs: 1,
  maxArgs: 1,
  parse(args, name) {
    const s = first(args);
    const n = toInt(s);
    if (n !== undefined) return String(checkRange(name, n, -2, 2));
    if (['very', 'strict', 'normal', 'unofficial', 'experimental'].includes(s.toLowerCase())) return s.toLowerCase();
    return bad(
      `${name} "${s}" is not a strictness level; write a number from -2 to 2 or very, strict, normal, unofficial, experimental`,
    );
  },
};

// ---------------------------------------------------------------------------------------------------------------
// Directive definitions.

export type Scope = 'global' | SectionKind;
export type DirectiveGroup = 'global' | 'feed' | 'stream' | 'encoder' | 'redirect';

interface DirectiveDef<T> {
  readonly name: string;
  /** Section of the docs it is listed in. */
  readonly group: DirectiveGroup;
  readonly origin: 'ffserver' | 'feedcast';
  readonly value: ValueSpec<T>;
  readonly default?: string;
  readonly doc: string;
  /** What Feedcast does differently from ffserver 3.4. */
  readonly differs?: string;
  /** Arguments that are accepted, e.g. `8090` (docs, and the accept-test of every directive). */
  readonly example: string;
  /** Warning on every use; names the replacement. */
  readonly deprecated?: string;
  /** Accepted but does nothing: warning. */
  readonly obsolete?: string;
  /** Always an error. */
  readonly removed?: string;
  readonly global?: (value: T, site: Site) => void;
  readonly feed?: (value: T, feed: FeedDraft, site: Site) => void;
  readonly stream?: (value: T, stream: StreamDraft, site: Site) => void;
  readonly redirect?: (value: T, redirect: RedirectDraft, site: Site) => void;
}

export type ScopeTarget =
  | { readonly scope: 'global' }
  | { readonly scope: 'feed'; readonly feed: FeedDraft }
  | { readonly scope: 'stream'; readonly stream: StreamDraft }
  | { readonly scope: 'redirect'; readonly redirect: RedirectDraft };

/** A directive with its value type erased, as the parser and docs see it. */
export interface Directive {
  readonly name: string;
  readonly group: DirectiveGroup;
  readonly origin: 'ffserver' | 'feedcast';
  readonly scopes: readonly Scope[];
  readonly syntax: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly default: string | undefined;
  readonly doc: string;
  readonly differs: string | undefined;
  readonly example: string;
  readonly deprecated: string | undefined;
  readonly obsolete: string | undefined;
  readonly removed: string | undefined;
  /** Parses the arguments and applies them. Throws BadValue when a value is wrong. */
  run(target: ScopeTarget, args: readonly string[], site: Site): void;
}

function def<T>(d: DirectiveDef<T>): Directive {
  const scopes: Scope[] = [];
  if (d.global) scopes.push('global');
  if (d.feed) scopes.push('feed');
  if (d.stream) scopes.push('stream');
  if (d.redirect) scopes.push('redirect');
  return {
    name: d.name,
    group: d.group,
    origin: d.origin,
    scopes,
    syntax: d.value.syntax,
    minArgs: d.value.minArgs,
    maxArgs: d.value.maxArgs,
    default: d.default,
    doc: d.doc,
    differs: d.differs,
    example: d.example,
    deprecated: d.deprecated,
    obsolete: d.obsolete,
    removed: d.removed,
    run(target, args, site) {
      const value = d.value.parse(args, d.name, site.where);
      switch (target.scope) {
        case 'global':
          d.global?.(value, site);
          break;
        case 'feed':
          d.feed?.(value, target.feed, site);
          break;
        case 'stream':
          d.stream?.(value, target.stream, site);
          break;
        case 'redirect':
          d.redirect?.(value, target.redirect, site);
          break;
      }
    },
  };
}

/** A global setting: parses into GlobalSettings[key] and records that it was given. */
function setting<K extends keyof GlobalSettings>(
  key: K,
  d: Omit<DirectiveDef<GlobalSettings[K]>, 'group' | 'global' | 'default'> & { default?: string },
  after?: (value: GlobalSettings[K], site: Site) => void,
): Directive {
  const fallback = GLOBAL_DEFAULTS[key];
  return def<GlobalSettings[K]>({
    ...d,
    group: 'global',
    default:
      d.default ??
      (fallback === undefined ? 'unset' : typeof fallback === 'object' ? JSON.stringify(fallback) : String(fallback)),
    global(value, site) {
      site.state.globals[key] = value;
      site.state.explicit.set(key, site.line);
      after?.(value, site);
    },
  });
}

/** A repeatable STUN/TURN server directive: `NAME URL [USERNAME CREDENTIAL]`. */
function iceServer(key: 'webrtcIceServers' | 'webrtcServerIceServers', name: string, doc: string): Directive {
  return def<IceServerSpec>({
    name,
    group: 'global',
    origin: 'feedcast',
    value: {
      syntax: 'URL [USERNAME CREDENTIAL] (stun:, turn: or turns: URL)',
      minArgs: 1,
      maxArgs: 3,
      parse(args, n) {
        const [urls = '', username, credential] = args;
        if (!/^(stun|stuns|turn|turns):[^\s]+$/i.test(urls))
          bad(`${n} "${urls}" is not a stun:, turn: or turns: URL; write e.g. ${n} stun:stun.example.org:3478`);
        if (args.length === 2) bad(`${n} needs both a USERNAME and a CREDENTIAL, or neither`);
        if (/^turns?:/i.test(urls) && username === undefined) bad(`${n} ${urls}: a TURN server needs USERNAME CREDENTIAL`);
        return { urls, ...(username !== undefined ? { username } : {}), ...(credential !== undefined ? { credential } : {}) };
      },
    },
    default: 'none',
    doc,
    example: 'stun:stun.example.org:3478',
    global(value, site) {
      site.state.globals[key] = [...site.state.globals[key], value];
      site.state.explicit.set(key, site.line);
    },
  });
}

/**
 * Checks a path on disk once the whole file is read (issue 18: a CustomLog or feed File in a missing directory
 * crashed the server after it said ready), so `feedcast check` and start-up report it with file:line before
 * anything listens.
 */
function deferPathCheck(
  site: Site,
  path: string,
  want: 'writable-file' | 'readable-file',
  /** A feed File whose directory exists but cannot be written: the feed is served live without it, so a warning. */
  unwritable: 'error' | 'warn' = 'error',
): void {
  if (!site.state.checkPaths) return;
  site.state.deferred.push(async () => {
    const full = resolve(path);
    if (want === 'readable-file') {
      try {
        const s = await stat(full);
        if (!s.isFile()) site.error(`${site.name} ${path} is not a regular file`);
        else await access(full, constants.R_OK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        site.error(
          code === 'ENOENT'
            ? `${site.name} ${path} does not exist; put the media file there or fix the path`
            : `${site.name} ${path} cannot be read (${code ?? String(err)}); check its permissions`,
        );
      }
      return;
    }
    const dir = dirname(full);
    try {
      const s = await stat(dir);
      if (!s.isDirectory()) {
        site.error(`${site.name} ${path}: ${dir} is not a directory`);
        return;
      }
      await access(dir, constants.W_OK).catch(async (dirErr: unknown) => {
        // A file that exists and is writable is enough; else the directory must let us create it
        // (and its error, EROFS or EACCES, is the one to report: the file's would be ENOENT).
        await access(full, constants.W_OK).catch(() => {
          throw dirErr;
        });
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        site.error(
          `${site.name} ${path}: the directory ${dir} does not exist; create it (mkdir -p ${dir}) or change ${site.name}`,
        );
      } else if (unwritable === 'warn') {
        // A read-only or full disk must not take the live feed down (docs/reliability.md): it is served without its file.
        site.warn(
          `${site.name} ${path}: ${dir} is not writable (${code ?? String(err)}); the feed is served live without its file until that is fixed`,
        );
      } else {
        site.error(
          `${site.name} ${path}: ${dir} is not writable by this user (${code ?? String(err)}); fix its permissions or change ${site.name}`,
        );
      }
    }
  });
}

/** Resolves a host name later; IP literals are kept as written. */
function deferResolve(site: Site, host: string, what: string, set: (address: string) => void): void {
  if (parseAddress(host) !== undefined) {
    set(host);
    return;
  }
  site.state.deferred.push(async () => {
    try {
      const addresses = await site.state.resolveHost(host);
      const chosen = addresses.find((a) => parseAddress(a)?.family === 4) ?? addresses[0];
      if (chosen === undefined) site.error(`${site.name} '${host}' has no addresses; use an IP address`);
      else set(chosen);
    } catch {
      site.error(`${site.name} '${host}' cannot be resolved; ${what}`);
    }
  });
}

function bindAddress(
  key: 'httpBindAddress' | 'rtspBindAddress' | 'rtmpBindAddress' | 'srtBindAddress',
  name: string,
  listener: string,
  extra: Partial<DirectiveDef<string>> = {},
): Directive {
  return def<string>({
    name,
    group: 'global',
    origin: name === 'RTMPBindAddress' || name === 'SRTBindAddress' ? 'feedcast' : 'ffserver',
    value: v.host(),
    default: key === 'httpBindAddress' ? GLOBAL_DEFAULTS[key] : 'HTTPBindAddress',
    doc: `Address the ${listener} listener binds to. A host name is resolved at load (IPv4 preferred).`,
    differs: 'IPv6 addresses are accepted too.',
    example: '0.0.0.0',
    ...extra,
    global(value, site) {
      site.state.explicit.set(key, site.line);
      deferResolve(site, value, 'use an IP address such as 0.0.0.0 or ::', (a) => {
        site.state.globals[key] = a;
      });
    },
  });
}

const metadataFrom = (key: string): Directive =>
  def<string>({
    name: key.charAt(0).toUpperCase() + key.slice(1),
    group: 'stream',
    origin: 'ffserver',
    value: { ...v.string('VALUE'), parse: (args) => first(args) },
    doc: `Sets the \`${key}\` metadata of the stream (as \`Metadata ${key}\`).`,
    example: '"Some text"',
    deprecated: `${key.charAt(0).toUpperCase() + key.slice(1)} is deprecated; write Metadata ${key} VALUE instead`,
    stream(value, stream) {
      stream.metadata[key] = value;
    },
  });

// ---------------------------------------------------------------------------------------------------------------
// Encoder directives (ref §2.6): typed values in stream.encoding, plus ffserver's "same option twice" check.

type Media = 'audio' | 'video';
type AvKey = readonly [media: Media, key: string, value: string];

/** Records the AVOptions a directive sets; a key set twice is an error unless the new value is a +/- flag. */
function claimAvKeys(stream: StreamDraft, site: Site, keys: readonly AvKey[]): boolean {
  for (const [media, key, value] of keys) {
    const previous = stream.avKeys[media].get(key);
    if (previous !== undefined && !(value.startsWith('+') || value.startsWith('-'))) {
      site.error(`${site.name} sets the ${media} option '${key}', which ${previous} already set; remove one of them`);
      return false;
    }
  }
  for (const [media, key] of keys) {
    if (!stream.avKeys[media].has(key)) stream.avKeys[media].set(key, `${site.name} (line ${site.line})`);
  }
  return true;
}

function enc<T>(
  name: string,
  value: ValueSpec<T>,
  keys: (value: T) => readonly AvKey[],
  apply: (value: T, encoding: StreamEncoding, site: Site) => void,
  doc: string,
  example: string,
  extra: Partial<Pick<DirectiveDef<T>, 'differs' | 'default'>> = {},
): Directive {
  return def<T>({
    name,
    group: 'encoder',
    origin: 'ffserver',
    value,
    doc,
    example,
    ...extra,
    stream(val, stream, site) {
      stream.encoderDirectives.push({ name, line: site.line });
      if (claimAvKeys(stream, site, keys(val))) apply(val, stream.encoding, site);
    },
  });
}

const flagDirective = (
  name: string,
  keys: readonly AvKey[],
  field: 'intraOnly' | 'highQuality' | 'fourMotionVector' | 'bitExact' | 'dctFastint' | 'idctSimple',
  doc: string,
): Directive =>
  enc(
    name,
    v.none(),
    () => keys,
    (_, e) => void (e[field] = true),
    doc,
    '',
  );

/** Sets an AVOption of the stream; a +/- flag value adds to an earlier one. */
function setAvOption(e: StreamEncoding, media: Media, key: string, value: string): void {
  const map = media === 'audio' ? e.audioAvOptions : e.videoAvOptions;
  const previous = map[key];
  map[key] = previous !== undefined && (value.startsWith('+') || value.startsWith('-')) ? previous + value : value;
}

const avOption = (name: string, media: Media): Directive =>
  enc<readonly string[]>(
    name,
    v.words('[CODEC:]OPTION VALUE', 2, 2),
    ([key = '', value = '']) => [[media, key, value]],
    ([key = '', value = ''], e) => setAvOption(e, media, key, value),
    `Any ffmpeg ${media} encoder option, passed to the encoder as is; prefix a private option with its codec (libx264:preset). Flag values starting with + or - add to earlier ones.`,
    'flags +global_header',
  );

/**
 * AVPresetVideo/AVPresetAudio NAME: ffmpeg's NAME.ffpreset or CODEC-NAME.ffpreset, read when the config is (as
 * ffserver did): a `vcodec`/`acodec` line switches the encoder, every other line is an AVOption of the stream, with
 * the same "set twice" rule as AVOptionVideo. ffmpeg's old libx264 preset names are built in (presets.ts).
 */
const avPreset = (name: string, media: Media, example: string): Directive =>
  def<string>({
    name,
    group: 'encoder',
    origin: 'ffserver',
    value: v.string('PRESET'),
    doc:
      `An ffmpeg ${media} preset file (\`-${media === 'video' ? 'v' : 'a'}pre\`): NAME.ffpreset or CODEC-NAME.ffpreset in ` +
      '$FFMPEG_DATADIR, ~/.ffmpeg or /usr/share/ffmpeg, read at load; its `key=value` lines become encoder options, ' +
      `\`${media === 'video' ? 'v' : 'a'}codec=\` picks the encoder.`,
    example,
    differs:
      "ffmpeg's former libx264 presets are built in when no file is found (`default`: the encoder's defaults; " +
      'x264 preset names such as `veryfast` and profiles such as `baseline`: for libx264 only).',
    stream(preset, stream, site) {
      stream.encoderDirectives.push({ name, line: site.line });
      const e = stream.encoding;
      const found = loadPreset(preset, media, media === 'video' ? e.videoCodec : e.audioCodec, site.state.presetDirs);
      if (!found.ok) {
        site.error(`${name} ${preset}: ${found.message}`);
        return;
      }
      const { codec, options } = found.preset;
      if (
        !claimAvKeys(
          stream,
          site,
          options.map(([k, val]) => [media, k, val] as const),
        )
      )
        return;
      if (codec !== undefined) {
        if (media === 'video') e.videoCodec = codec;
        else e.audioCodec = codec;
      }
      for (const [k, val] of options) setAvOption(e, media, k, val);
      (media === 'video' ? e.videoPresets : e.audioPresets).push(preset);
    },
  });

// ---------------------------------------------------------------------------------------------------------------
// The table.

const SIZE_HINT = 'ffserver 3.4 required a K, M or G suffix';

/** The value of every ACL-like directive (`ACL`, `StatusACL`, `DynamicFeedACL`): one rule a line. */
const ACL_RULE: ValueSpec<AclRuleSpec> = {
  syntax: 'allow|deny ADDRESS [LAST_ADDRESS] (IPv4, IPv6, host name or CIDR block)',
  minArgs: 2,
  maxArgs: 3,
  parse: (args, _name, where) => parseAclRule(args, where),
};

/** `TrustedProxy ADDRESS [LAST_ADDRESS]`: an ACL `allow` rule without the action word. */
const TRUSTED_PROXY_RULE: ValueSpec<AclRuleSpec> = {
  syntax: 'ADDRESS [LAST_ADDRESS] (IPv4, IPv6, host name or CIDR block)',
  minArgs: 1,
  maxArgs: 2,
  parse: (args, _name, where) => parseAclRule(['allow', ...args], where),
};

/** `on`, `off` (any case) or a picture/clip that must exist. */
function offlineSlateValue(value: string, site: Site): string {
  const lower = value.toLowerCase();
  if (lower === 'on' || lower === 'off') return lower;
  deferPathCheck(site, value, 'readable-file');
  return resolve(value);
}

/** OnPublish, OnUnpublish, ...: repeatable, server-wide or in a <Feed>; a URL is POSTed to, anything else is run. */
function hookDirective(name: string, event: HookEvent, when: string): Directive {
  const add = (args: readonly string[], site: Site): HookSpec => {
    const action = parseHookAction(args);
    const program = action.kind === 'command' ? action.argv[0] : undefined;
    if (program?.includes('/') === true && site.state.checkPaths) {
      // `feedcast check` and start-up say so, rather than a warning at the first event.
      site.state.deferred.push(async () => {
        try {
          await access(resolve(program), constants.X_OK);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          site.error(
            code === 'ENOENT'
              ? `${site.name} ${program} does not exist; give the program's full path`
              : `${site.name} ${program} cannot be run by this user (${code ?? String(err)}); chmod +x it or fix the path`,
          );
        }
      });
    }
    return { event, action, where: site.where };
  };
  return def<readonly string[]>({
    name,
    group: 'global',
    origin: 'feedcast',
    value: v.words('URL | PROGRAM [ARGS…]', 1, 64),
    default: 'none',
    doc: `${when}: POSTs the event as JSON to an http(s) URL (retried on errors), or runs a program (no shell) with FEEDCAST_EVENT, FEEDCAST_FEED, FEEDCAST_PROTOCOL, FEEDCAST_REMOTE_ADDR, FEEDCAST_NAME and FEEDCAST_TIME in its environment. Repeat for several; in a <Feed>, for that feed only. Reports only, never delays or refuses (AuthCallback decides). See docs/hooks.md.`,
    example: '/usr/local/bin/notify --quiet',
    global(args, site) {
      site.state.globals.hooks = [...site.state.globals.hooks, add(args, site)];
      site.state.explicit.set('hooks', site.line);
    },
    feed(args, feed, site) {
      feed.hooks.push(add(args, site));
    },
  });
}

export const DIRECTIVES: readonly Directive[] = [
  // --- Global: listeners -------------------------------------------------------------------------------------
  setting(
    'httpPort',
    {
      name: 'HTTPPort',
      origin: 'ffserver',
      value: v.port(),
      default: '8090',
      doc: 'TCP port of the HTTP listener (publishing by POST, progressive reads, HLS, status page, API).',
      differs: 'ffserver had no default (no HTTP at all); Feedcast listens on 8090 when no HTTPPort is given.',
      example: '8090',
    },
    (port, site) => {
      if (port < 1024) site.warn(`HTTPPort ${port} is a system port (below 1024); it needs privileges to bind`);
    },
  ),
  setting('httpPort', {
    name: 'Port',
    origin: 'ffserver',
    value: v.port(),
    default: '—',
    doc: 'Old name of HTTPPort.',
    example: '8090',
    deprecated: 'Port is deprecated; use HTTPPort instead',
  }),
  bindAddress('httpBindAddress', 'HTTPBindAddress', 'HTTP'),
  bindAddress('httpBindAddress', 'BindAddress', 'HTTP', {
    doc: 'Old name of HTTPBindAddress.',
    default: '—',
    deprecated: 'BindAddress is deprecated; use HTTPBindAddress instead',
  }),
  setting(
    'rtspPort',
    {
      name: 'RTSPPort',
      origin: 'ffserver',
      value: v.port(0),
      doc: 'TCP port of the RTSP listener (`rtsp://HOST:PORT/FEED`). 0 turns RTSP off.',
      differs:
        'As in ffserver, a config file without RTSPPort (or RTSPBindAddress, which alone means 5454) has no RTSP; the built-in demo (no config file) listens on 5454.',
      example: '5454',
    },
    (port, site) => {
      if (port === 0) site.state.globals.rtspPort = undefined;
    },
  ),
  bindAddress('rtspBindAddress', 'RTSPBindAddress', 'RTSP'),
  setting('rtmpPort', {
    name: 'RTMPPort',
    origin: 'feedcast',
    value: v.port(0),
    doc: 'TCP port of the RTMP listener (publish and play, `rtmp://HOST:PORT/live/FEED`). 0 turns RTMP off.',
    example: '1935',
  }),
  bindAddress('rtmpBindAddress', 'RTMPBindAddress', 'RTMP'),
  setting('rtmpChunkSize', {
    name: 'RTMPChunkSize',
    origin: 'feedcast',
    value: v.int(128, 65536, 'BYTES', '4096'),
    doc: 'Chunk size of what the RTMP server sends. Every player gets the same, so the chunked bytes are made once and shared.',
    example: '4096',
  }),
  setting(
    'srtPort',
    {
      name: 'SRTPort',
      origin: 'feedcast',
      value: v.port(0),
      doc: 'UDP port of the SRT listener (publish and read MPEG-TS, `srt://HOST:PORT?streamid=publish:FEED`, docs/srt.md). 0 turns SRT off. Needs the SRT module (built at install against libsrt).',
      differs:
        'A config file without SRTPort (or SRTBindAddress, which alone means 8890) has no SRT; the built-in demo (no config file) listens on 8890.',
      example: '8890',
    },
    (port, site) => {
      if (port === 0) site.state.globals.srtPort = undefined;
    },
  ),
  bindAddress('srtBindAddress', 'SRTBindAddress', 'SRT'),
  setting('srtLatencyMs', {
    name: 'SRTLatency',
    origin: 'feedcast',
    value: v.int(20, 60_000, 'MS', '120'),
    doc: "SRT latency in milliseconds (libsrt's SRTO_LATENCY): how long a receiver holds packets to recover the lost ones. Each side uses the larger of its own and its peer's. About 4 times the round trip on a lossy network.",
    example: '200',
  }),
  setting('hlsSegmentSeconds', {
    name: 'HLSSegmentDuration',
    origin: 'feedcast',
    value: v.seconds(0.5, 60, '2'),
    doc: 'HLS target segment length in seconds; segments are cut at the first keyframe after it.',
    example: '2',
  }),
  setting('hlsPartSeconds', {
    name: 'HLSPartDuration',
    origin: 'feedcast',
    value: v.seconds(0.1, 5, '0.5'),
    doc: 'LL-HLS part length (PART-TARGET) in seconds. Smaller parts mean less delay and more requests.',
    example: '0.5',
  }),
  setting('hlsWindow', {
    name: 'HLSWindow',
    origin: 'feedcast',
    value: v.int(3, 1000, 'SEGMENTS', '12'),
    doc: 'Complete HLS segments kept in memory and listed in the playlist.',
    example: '12',
  }),
  setting('hlsPartHoldBack', {
    name: 'HLSPartHoldBack',
    origin: 'feedcast',
    value: v.float(2, 10, 'PARTS', '3'),
    doc: 'PART-HOLD-BACK, in parts (the spec asks for at least 2): how far behind the live edge LL-HLS players stay.',
    example: '3',
  }),
  setting('hlsIdleTimeoutMs', {
    name: 'HLSIdleTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(1, 86400, '30'),
      parse: (args, name, where) => Math.round(v.seconds(1, 86400, '30').parse(args, name, where) * 1000),
    },
    default: '30',
    doc: 'Seconds without an HLS request after which a feed stops being segmented.',
    example: '30',
  }),
  setting('transcodeIdleTimeoutMs', {
    name: 'TranscodeIdleTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(0.1, 86400, '10'),
      parse: (args, name, where) => Math.round(v.seconds(0.1, 86400, '10').parse(args, name, where) * 1000),
    },
    default: '10',
    doc: 'Seconds a transcoder or an on-demand Launch/Source keeps running after its last reader left.',
    example: '10',
  }),
  // --- Global: limits ----------------------------------------------------------------------------------------
  setting('maxHttpConnections', {
    name: 'MaxHTTPConnections',
    origin: 'ffserver',
    value: v.int(1, 65535, 'COUNT', '2000'),
    doc: 'Upper bound for MaxClients. It is an error for MaxClients to be higher.',
    differs: 'The check against MaxClients is made once the whole file is read, so the two may come in any order.',
    example: '2000',
  }),
  setting('maxClients', {
    name: 'MaxClients',
    origin: 'ffserver',
    value: v.int(1, 65535, 'COUNT', '1000'),
    doc: 'Cap on all live connections (HTTP, RTSP, RTMP, publishers included); past it clients get 503.',
    differs:
      'Default 1000, not 5: ffserver\'s 5 gave "503 Server too busy" with a handful of viewers. Without MaxClients, the default is lowered to MaxHTTPConnections if that is smaller.',
    example: '1000',
  }),
  setting('maxBandwidthKbps', {
    name: 'MaxBandwidth',
    origin: 'ffserver',
    value: v.int(10, 10_000_000, 'KBITS', '100000'),
    doc: 'Cap in kbit/s on the sum of the configured bitrates of the streams being served; a request over it gets 503.',
    differs:
      "Default 10000000 (10 Gbit/s, more than a machine serves), not 1000: ffserver's default refused any real stream. An explicit value is honoured.",
    example: '100000',
  }),
  // --- Global: logs, processes ---------------------------------------------------------------------------------
  setting(
    'customLog',
    {
      name: 'CustomLog',
      origin: 'ffserver',
      value: v.string('FILE (or - for stdout)'),
      doc: 'Apache-style access log. `-` writes to stdout, anything else is appended to that file (its directory must exist and be writable: checked at load).',
      example: '-',
    },
    (value, site) => {
      if (value !== undefined && value !== '-') deferPathCheck(site, value, 'writable-file');
    },
  ),
  def<AclRuleSpec>({
    name: 'StatusACL',
    group: 'global',
    origin: 'feedcast',
    value: ACL_RULE,
    default: 'allow 127.0.0.0/8 and ::1 (this host only)',
    doc: 'Who may read /stat.html, the JSON API (`/api/v1`, except `/api/v1/health`) and `/metrics`, which show every client and publisher address; same rules as `ACL`. Private by default; `StatusACL allow 192.168.1.0/24` opens them to that network. A `<Stream>` with `Format status` keeps its own ACL.',
    global(spec, site) {
      site.state.statusAclSpecs.push(spec);
    },
    example: 'allow 127.0.0.1',
  }),
  def<AclRuleSpec>({
    name: 'DynamicFeedACL',
    group: 'global',
    origin: 'feedcast',
    value: ACL_RULE,
    default: 'allow 127.0.0.0/8 and ::1 (this host only)',
    doc: 'With `DynamicFeeds on`: who may publish to a feed the config does not declare (creating it); same rules as `ACL`. Reading stays open. Declared feeds use their own `ACL`.',
    global(spec, site) {
      site.state.dynamicFeedAclSpecs.push(spec);
    },
    example: 'allow 192.168.0.0/16',
  }),
  def<AclRuleSpec>({
    name: 'TrustedProxy',
    group: 'global',
    origin: 'feedcast',
    value: TRUSTED_PROXY_RULE,
    default: 'none: every HTTP peer is the client',
    doc: 'A reverse proxy or cache in front of the HTTP port (nginx, a CDN edge); repeat for several. A request from one of these addresses is taken to come from the client its `X-Forwarded-For` header names (the nearest address in it that is not itself a trusted proxy), so ACLs, StatusACL, read tokens bound to an address, MaxConnectionsPerAddress, logs and the status page see the viewer, not the proxy; the proxy itself is exempt from MaxConnectionsPerAddress. A malformed header from a trusted proxy is 400. Without this directive `X-Forwarded-For` is ignored (anyone could write it).',
    global(spec, site) {
      site.state.trustedProxySpecs.push(spec);
    },
    example: '127.0.0.1',
  }),
  def<readonly string[]>({
    name: 'ControlUser',
    group: 'global',
    origin: 'feedcast',
    value: v.words('NAME PASSWORD', 2, 2),
    default: 'unset: control endpoints (kick, reload) are refused',
    doc: 'HTTP Basic credentials for the control endpoints of the API (`POST /api/v1/reload`, `DELETE /api/v1/connections/ID`), checked before anything else. Without it they answer 403. After 5 failed logins an address gets 429 for 1 s, then 2 s, 4 s ... up to 5 min per further failure.',
    global(words, site) {
      const [user, password] = words;
      if (user === undefined || password === undefined || user.includes(':')) {
        site.error('ControlUser needs a name (without ":") and a password, e.g. ControlUser admin s3cret');
        return;
      }
      site.state.control = { user, password };
    },
    example: 'admin s3cret',
  }),
  setting('ffmpegPath', {
    name: 'FFmpegPath',
    origin: 'feedcast',
    value: v.string('PATH'),
    default: 'unset: the environment, then ffmpeg on PATH',
    doc: 'The ffmpeg program used for transcoding and `Launch`.',
    example: '/usr/bin/ffmpeg',
  }),
  def<true>({
    name: 'NoDaemon',
    group: 'global',
    origin: 'ffserver',
    value: v.none(),
    doc: 'Accepted and ignored.',
    example: '',
    obsolete: 'NoDaemon has no effect (Feedcast never daemonizes; run it under a service manager); remove it',
    global: () => undefined,
  }),
  def<readonly string[]>({
    name: 'LoadModule',
    group: 'global',
    origin: 'ffserver',
    value: v.words('MODULE', 0, Number.MAX_SAFE_INTEGER),
    doc: 'Always an error, as in ffserver.',
    example: 'mod.so',
    removed: 'LoadModule: loadable modules are no longer supported; remove this line',
    global: () => undefined,
  }),
  def<true>({
    name: 'UseDefaults',
    group: 'global',
    origin: 'ffserver',
    value: v.none(),
    default: 'on',
    doc: "Encoder values a transcoded stream leaves unset get ffserver's defaults (audio 64 kbit/s 22050 Hz mono, video 64 kbit/s 160x128 at 5 fps). Global: the default for the streams below; in a <Stream>: that stream only.",
    example: '',
    global(_, site) {
      site.state.globals.useDefaults = true;
    },
    stream(_, stream, site) {
      if (stream.useDefaultsSeen) site.warn('more than one UseDefaults/NoDefaults in this stream; the last one wins');
      stream.useDefaultsSeen = true;
      stream.encoding.useDefaults = true;
    },
  }),
  def<true>({
    name: 'NoDefaults',
    group: 'global',
    origin: 'ffserver',
    value: v.none(),
    doc: 'Opposite of UseDefaults: a transcoded stream must set its audio bitrate and sample rate and its video size.',
    example: '',
    global(_, site) {
      site.state.globals.useDefaults = false;
    },
    stream(_, stream, site) {
      if (stream.useDefaultsSeen) site.warn('more than one UseDefaults/NoDefaults in this stream; the last one wins');
      stream.useDefaultsSeen = true;
      stream.encoding.useDefaults = false;
    },
  }),
  // --- Global: Feedcast publishers and readers ------------------------------------------------------------------
  setting('publisherTimeoutMs', {
    name: 'PublisherTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(0.1, 3600, '5'),
      parse: (args, name, where) => Math.round(v.seconds(0.1, 3600, '5').parse(args, name, where) * 1000),
    },
    default: '5',
    doc: 'Seconds a publisher may stay silent before a new publisher of the same feed may replace it.',
    example: '5',
  }),
  setting('publisherGraceMs', {
    name: 'PublisherGracePeriod',
    origin: 'feedcast',
    value: {
      ...v.seconds(0, 86400, '30'),
      parse: (args, name, where) => Math.round(v.seconds(0, 86400, '30').parse(args, name, where) * 1000),
    },
    default: '30',
    doc: 'Seconds readers stay connected, waiting, after the publisher leaves.',
    example: '30',
  }),
  setting('dynamicFeeds', {
    name: 'DynamicFeeds',
    origin: 'feedcast',
    value: v.bool(),
    default: 'off',
    doc: 'Whether publishing to an undeclared feed name creates that feed.',
    example: 'on',
  }),
  setting('dynamicFeedTimeoutMs', {
    name: 'DynamicFeedTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(1, 86400, '300'),
      parse: (args, name, where) => Math.round(v.seconds(1, 86400, '300').parse(args, name, where) * 1000),
    },
    default: '300',
    doc: 'Seconds a feed created by DynamicFeeds is kept once it has neither a publisher nor a reader; then it is removed (a later publish creates it again).',
    example: '300',
  }),
  setting('readerMaxQueueBytes', {
    name: 'ReaderMaxQueue',
    origin: 'feedcast',
    value: { ...v.size(64 * 1024, false), parse: (args, name, where) => v.size(64 * 1024, false).parse(args, name, where).bytes },
    default: '8M',
    doc: 'Bytes a slow reader may lag behind before it skips to the newest keyframe.',
    example: '8M',
  }),
  setting('readerMaxLagMs', {
    name: 'ReaderMaxLag',
    origin: 'feedcast',
    value: {
      ...v.seconds(0.1, 3600, '10'),
      parse: (args, name, where) => Math.round(v.seconds(0.1, 3600, '10').parse(args, name, where) * 1000),
    },
    default: '10',
    doc: 'Seconds a reader may stay behind the live edge before it is closed.',
    example: '10',
  }),

  // --- Global: authentication and abuse limits (docs/security.md) -------------------------------------------------
  setting('readTokenKey', {
    name: 'ReadTokenKey',
    origin: 'feedcast',
    value: v.string('SECRET'),
    default: 'unset: read tokens are not accepted',
    doc: 'HMAC-SHA256 key of signed read URLs (`?token=...&expires=UNIX_SECONDS`, see docs/security.md). Needed by RequireReadToken.',
    example: 'a-long-random-string',
  }),
  setting('jwtKey', {
    name: 'JWTKey',
    origin: 'feedcast',
    value: v.string('SECRET'),
    default: 'unset',
    doc: 'Shared key of HS256 JSON Web Tokens; a valid token whose `feeds` claim names the feed (or `*`) and whose `actions` claim has `read` or `publish` stands in for a read token or a publish secret.',
    example: 'another-long-random-string',
  }),
  setting('jwksFile', {
    name: 'JWKSFile',
    origin: 'feedcast',
    value: v.string('FILE'),
    default: 'unset',
    doc: 'A JSON Web Key Set file (RS256 public keys, selected by `kid`); re-read when it changes. Tokens signed by these keys are accepted as with JWTKey.',
    example: '/etc/feedcast/jwks.json',
  }),
  setting('authCallbackUrl', {
    name: 'AuthCallback',
    origin: 'feedcast',
    value: v.string('URL', { re: /^https?:\/\/\S+$/, what: 'an http:// or https:// URL' }),
    default: 'unset: no callback',
    doc: 'Every publish and read that passed the ACL and credential checks is POSTed here as JSON; a 2xx answer allows it (a JSON body may deny or redirect), anything else, an error or a timeout denies it (fail closed). See docs/security.md.',
    example: 'http://127.0.0.1:9000/auth',
  }),
  setting('authCallbackTimeoutMs', {
    name: 'AuthCallbackTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(0.1, 60, '2'),
      parse: (args, name, where) => Math.round(v.seconds(0.1, 60, '2').parse(args, name, where) * 1000),
    },
    default: '2',
    doc: 'Seconds the AuthCallback may take before the request is refused (503).',
    example: '2',
  }),
  setting('tokenExpiryCutsReaders', {
    name: 'TokenExpiryCutsReaders',
    origin: 'feedcast',
    value: v.bool(),
    default: 'on',
    doc: 'Disconnect a running reader (HTTP, RTMP, RTSP, WebRTC) when the read token or JWT that let it in expires. Off: credentials are checked when a reader starts only (HLS requests are always checked).',
    example: 'off',
  }),
  setting('maxConnectionsPerAddress', {
    name: 'MaxConnectionsPerAddress',
    origin: 'feedcast',
    value: v.int(0, 65535, 'COUNT', '50'),
    default: '64',
    doc: 'Cap on the live connections (all protocols) from one client address; past it the connection is refused at once and closed (HTTP 503, RTSP 503, RTMP closed) and not counted. 0 = unlimited. Refusals are logged once per address every 10 s, with the count.',
    example: '50',
  }),
  setting('requestHeaderTimeoutMs', {
    name: 'RequestHeaderTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(0.5, 300, '15'),
      parse: (args, name, where) => Math.round(v.seconds(0.5, 300, '15').parse(args, name, where) * 1000),
    },
    default: '15',
    doc: 'Seconds a client has to send a whole HTTP request head or RTSP request (slowloris defence), counted from the connection for the first one; the connection is closed after it.',
    example: '15',
  }),
  setting('idleTimeoutMs', {
    name: 'IdleTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(1, 86400, '60'),
      parse: (args, name, where) => Math.round(v.seconds(1, 86400, '60').parse(args, name, where) * 1000),
    },
    default: '60',
    doc: 'Seconds an RTSP or RTMP connection may stay between requests with nothing playing or publishing before it is closed (HTTP keep-alive connections: KeepAliveTimeout).',
    example: '60',
  }),
  setting('keepAliveTimeoutMs', {
    name: 'KeepAliveTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(0.5, 300, '5'),
      parse: (args, name, where) => Math.round(v.seconds(0.5, 300, '5').parse(args, name, where) * 1000),
    },
    default: '5',
    doc: 'Seconds an HTTP or HTTPS connection may stay idle between requests (keep-alive) before it is closed; each such connection holds a MaxClients slot meanwhile.',
    example: '5',
  }),

  // --- Global: lifecycle hooks (docs/hooks.md) ------------------------------------------------------------------
  hookDirective('OnPublish', 'publish', 'When a publisher starts sending a feed'),
  hookDirective('OnUnpublish', 'unpublish', 'When a publisher of a feed leaves'),
  hookDirective('OnRead', 'read', 'When a reader is let in (any protocol; one HLS session counts once)'),
  hookDirective('OnReadEnd', 'read-end', 'When a reader leaves'),
  hookDirective('OnRecordSegment', 'record-segment', 'When a recording file is finished'),
  setting('hookTimeoutMs', {
    name: 'HookTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(0.1, 600, '10'),
      parse: (args, name, where) => Math.round(v.seconds(0.1, 600, '10').parse(args, name, where) * 1000),
    },
    default: '10',
    doc: 'Seconds a hook may run: a program is then killed (SIGTERM, then SIGKILL), a POST aborted (and retried).',
    example: '10',
  }),
  setting('hookConcurrency', {
    name: 'HookConcurrency',
    origin: 'feedcast',
    value: v.int(1, 256, 'COUNT', '4'),
    default: String(HOOK_DEFAULTS.concurrency),
    doc: 'Hooks running at once; later ones wait in a queue of 1000, past which they are dropped and counted.',
    example: '4',
  }),
  setting('hookRetries', {
    name: 'HookRetries',
    origin: 'feedcast',
    value: v.int(0, 10, 'COUNT', '3'),
    default: String(HOOK_DEFAULTS.retries),
    doc: 'Further attempts of a hook POST that failed (network error, timeout or 5xx), 0.5 s apart and doubling. Programs are not retried.',
    example: '3',
  }),

  // --- Global: TLS (docs/security.md) --------------------------------------------------------------------------
  setting('httpsPort', {
    name: 'HTTPSPort',
    origin: 'feedcast',
    value: v.port(),
    default: 'unset: no HTTPS',
    doc: 'TCP port of the HTTPS listener (on HTTPBindAddress): every HTTP URL, also over TLS (so WHEP/WHIP and HLS work from https:// pages). Needs SSLCertificate and SSLCertificateKey.',
    example: '8443',
  }),
  setting('rtmpsPort', {
    name: 'RTMPSPort',
    origin: 'feedcast',
    value: v.port(),
    default: 'unset: no RTMPS',
    doc: 'TCP port of the RTMPS listener (RTMP over TLS, on RTMPBindAddress), for publishers and players alike. Needs SSLCertificate and SSLCertificateKey.',
    example: '1936',
  }),
  setting('sslCertificate', {
    name: 'SSLCertificate',
    origin: 'feedcast',
    value: v.string('FILE (PEM: the certificate, then its chain)'),
    default: 'unset',
    doc: 'Certificate of HTTPSPort and RTMPSPort. Re-read without a restart when it changes (checked every 2 s) or on SIGHUP; a bad new file is logged and the running certificate kept.',
    example: '/etc/feedcast/fullchain.pem',
  }),
  setting('sslCertificateKey', {
    name: 'SSLCertificateKey',
    origin: 'feedcast',
    value: v.string('FILE (PEM private key)'),
    default: 'unset',
    doc: 'Private key of SSLCertificate; reloaded with it.',
    example: '/etc/feedcast/privkey.pem',
  }),

  // --- Global: output writing (docs/performance.md) ------------------------------------------------------------
  setting('writeCoalesceMs', {
    name: 'WriteCoalesce',
    origin: 'feedcast',
    value: {
      syntax: 'MILLISECONDS (0–1000) | off',
      minArgs: 1,
      maxArgs: 1,
      parse(args, name) {
        const text = first(args).toLowerCase();
        if (text === 'off') return 'off';
        const ms = toInt(text);
        if (ms === undefined)
          bad(`${name} "${first(args)}" is not a whole number of milliseconds; write e.g. ${name} 10, or ${name} off`);
        return checkRange(name, ms, 0, 1000, ' ms');
      },
    },
    default: '10 (or the FEEDCAST_WRITE_COALESCE_MS environment variable)',
    doc: 'Readers on TCP sockets (HTTP progressive, RTMP) get one write per video frame: a video frame goes out at once (at most one batch per this interval) and carries the audio that waited for it; audio waits for the next video frame up to about one video frame interval (at most 50 ms), and at least this long. Fewer system calls per reader means more readers per core. `off` writes every chunk at once. See docs/performance.md.',
    example: '10',
  }),

  setting('egressThreads', {
    name: 'EgressThreads',
    origin: 'feedcast',
    value: v.int(0, 16, 'COUNT', '1'),
    default: '0',
    doc: 'Worker threads that send the video and audio to HTTP progressive readers (the `send()` system calls of the fan-out, most of the CPU of serving many viewers), so that egress uses more than one core. 0: the main thread sends. Needs the native fan-out module (built by `npm ci` with a C compiler; the server refuses to start without it). RTMP readers stay on the main thread. See docs/performance.md ("Both cores").',
    example: '1',
  }),

  setting('workers', {
    name: 'Workers',
    origin: 'feedcast',
    value: {
      syntax: 'COUNT (1–64) | auto',
      minArgs: 1,
      maxArgs: 1,
      parse(args, name): number | 'auto' {
        if (first(args).toLowerCase() === 'auto') return 'auto';
        const n = toInt(first(args));
        if (n === undefined) bad(`${name} "${first(args)}" is not a whole number or auto; write e.g. ${name} 2`);
        return checkRange(name, n, 1, 64);
      },
    },
    default: '1',
    doc: 'Feedcast processes serving the same ports on this machine, so that more than one core serves readers: a primary process hands each TCP connection (HTTP, RTMP, RTSP, HTTPS) to one of them in turn, and they form a local cluster (a reader on one worker of a feed published on another relays it from there once). `auto`: one per CPU. 1: one process, as without it. WebRTC, SRT, HLS, time-shift and recordings are served by the first worker; see [cluster.md](cluster.md) ("Workers"). Needs a restart.',
    example: '2',
  }),

  // --- Global: cluster (docs/cluster.md) ------------------------------------------------------------------------
  setting('clusterRedis', {
    name: 'ClusterRedis',
    origin: 'feedcast',
    value: {
      syntax: 'URL (redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss:// for TLS)',
      minArgs: 1,
      maxArgs: 1,
      parse: (args, name) => parseRedisUrl(first(args), name),
    },
    default: 'unset: a single node, no cluster',
    doc: "The Redis server that holds the cluster's registry: which nodes are up and which feed is published on which node. A reader on one node of a feed published on another makes this node relay it from there (see [cluster.md](cluster.md)). Unset: nothing of the cluster runs and no Redis client is loaded. Needs a restart.",
    example: 'redis://127.0.0.1:6379/0',
  }),
  setting('nodeName', {
    name: 'NodeName',
    origin: 'feedcast',
    value: v.string('NAME (letters, digits, . _ : -; at most 64)', {
      re: /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/,
      what: 'a node name (letters, digits, . _ : -); write e.g. NodeName edge-1',
    }),
    default: 'unset: the host name and the HTTP port',
    doc: "This node's name in the cluster (ClusterRedis); unique per node. Needs a restart.",
    example: 'edge-1',
  }),
  setting('nodeUrl', {
    name: 'NodeURL',
    origin: 'feedcast',
    value: v.string('URL (http:// or https://, no path)', {
      re: /^https?:\/\/(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?\/?$/,
      what: 'an http:// or https:// URL without a path; write e.g. NodeURL http://10.0.0.2:8090',
    }),
    default: 'unset: http://HOST:HTTPPort (the host name)',
    doc: "How the other nodes of the cluster reach this node's HTTP port: they relay its feeds from `NodeURL/FEED.ts`. Needs a restart.",
    example: 'http://10.0.0.2:8090',
  }),
  setting('nodeTtlMs', {
    name: 'NodeTTL',
    origin: 'feedcast',
    value: {
      ...v.seconds(1, 3600, '10'),
      parse: (args, name, where) => Math.round(v.seconds(1, 3600, '10').parse(args, name, where) * 1000),
    },
    default: '10',
    doc: "Seconds a node and its feeds stay in the cluster's registry without a heartbeat (sent three times per NodeTTL): a node that dies drops out after this. Needs a restart.",
    example: '10',
  }),
  setting('relayIdleTimeoutMs', {
    name: 'RelayIdleTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(0, 86400, '10'),
      parse: (args, name, where) => Math.round(v.seconds(0, 86400, '10').parse(args, name, where) * 1000),
    },
    default: '10',
    doc: 'Seconds this node keeps relaying a feed from another node after its last reader of it left; with Workers N, also a worker relaying a feed from another worker. Needs a restart.',
    example: '10',
  }),

  setting('relayVia', {
    name: 'RelayVia',
    origin: 'feedcast',
    value: v.string('NODENAME (another node of the cluster)', {
      re: /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/,
      what: 'a node name (letters, digits, . _ : -); write e.g. RelayVia edge-1',
    }),
    default: "unset: relays pull from the feed's origin",
    doc: "The node this node relays feeds through (its parent) instead of the feed's origin, so that relays form a tree: the parent pulls from the origin once and serves its children. Used while that node is registered and is neither this node nor the origin; the nodes named must not form a loop. Needs a restart.",
    example: 'edge-1',
  }),
  // --- Global: WebRTC (docs/webrtc.md) -------------------------------------------------------------------------
  setting('webrtc', {
    name: 'WebRTC',
    origin: 'feedcast',
    value: v.bool(),
    default: 'on',
    doc: 'Whether WHEP playback and WHIP publishing (`/NAME/whep`, `/NAME/whip`) are served.',
    example: 'off',
  }),
  setting('webrtcAddresses', {
    name: 'WebRTCAddress',
    origin: 'feedcast',
    value: {
      syntax: 'ADDRESS [ADDRESS ...] (IP addresses announced as ICE host candidates)',
      minArgs: 1,
      maxArgs: 16,
      parse(args, name) {
        for (const a of args) {
          if (parseAddress(a) === undefined) bad(`${name} "${a}" is not an IP address; write e.g. ${name} 192.0.2.10`);
        }
        return [...args];
      },
    },
    default: 'HTTPBindAddress; when that is 0.0.0.0 or ::, every address of the machine (loopback included)',
    doc: 'Addresses browsers are told to reach the server at for WebRTC media (ICE host candidates). Give the public address when the server is behind a 1:1 NAT.',
    example: '192.0.2.10 127.0.0.1',
  }),
  setting('webrtcUdpPort', {
    name: 'WebRTCUDPPort',
    origin: 'feedcast',
    value: v.port(),
    default: 'unset: one UDP port per peer',
    doc: 'Single-port mode: every WebRTC peer is multiplexed on this one UDP port (told apart by their ICE user names), so a firewall needs only this port open.',
    example: '8189',
  }),
  def<readonly [number, number]>({
    name: 'WebRTCPortRange',
    group: 'global',
    origin: 'feedcast',
    value: {
      syntax: 'MIN MAX (UDP ports, 1024–65535)',
      minArgs: 2,
      maxArgs: 2,
      parse(args, name) {
        const [lo, hi] = args.map((a) => toInt(a));
        if (lo === undefined || hi === undefined) bad(`${name} needs two port numbers; write e.g. ${name} 40000 40999`);
        checkRange(name, lo, 1024, 65535);
        checkRange(name, hi, 1024, 65535);
        if (lo > hi) bad(`${name} ${lo} ${hi}: the first port must not be above the second`);
        return [lo, hi] as const;
      },
    },
    default: 'unset: any free port',
    doc: 'UDP ports WebRTC peers get their sockets from (one per peer) when WebRTCUDPPort is not set.',
    example: '40000 40999',
    global(value, site) {
      site.state.globals.webrtcPortRange = value;
      site.state.explicit.set('webrtcPortRange', site.line);
    },
  }),
  setting('webrtcTcp', {
    name: 'WebRTCTCP',
    origin: 'feedcast',
    value: v.bool(),
    default: 'off',
    doc: 'Also offer ICE-TCP candidates (RFC 6544, passive) on one TCP port (WebRTCTCPPort, else the WebRTCUDPPort number, else a free port), relayed in-process, for viewers whose network blocks UDP.',
    example: 'on',
  }),
  iceServer(
    'webrtcIceServers',
    'WebRTCIceServer',
    'Offered to browsers (WHEP/WHIP `Link: rel="ice-server"` headers and the player page) for their own candidates; the server itself does not contact it. Repeat for several.',
  ),
  iceServer(
    'webrtcServerIceServers',
    'WebRTCServerIceServer',
    'Used by the server itself to gather server-reflexive or relay candidates: the only outbound WebRTC traffic, and only when set. Repeat for several.',
  ),
  setting('webrtcTcpPort', {
    name: 'WebRTCTCPPort',
    origin: 'feedcast',
    value: v.port(),
    default: 'the WebRTCUDPPort number, else a free port',
    doc: 'TCP port of the ICE-TCP candidates (with WebRTCTCP on).',
    example: '8189',
  }),
  setting('webrtcBindAddress', {
    name: 'WebRTCBindAddress',
    origin: 'feedcast',
    value: v.string('ADDRESS (an IP address)', {
      re: /^[0-9A-Fa-f:.]+$/,
      what: 'an IP address; write e.g. 10.0.0.5 or 0.0.0.0',
    }),
    default: 'the one WebRTCAddress, else the wildcard',
    doc: 'Where the WebRTC sockets bind when that differs from the announced addresses (e.g. the private address behind a 1:1 NAT that WebRTCAddress names publicly).',
    example: '10.0.0.5',
  }),
  setting('whipKeyframeIntervalMs', {
    name: 'WHIPKeyframeInterval',
    origin: 'feedcast',
    value: {
      ...v.seconds(0.2, 60, '2'),
      parse: (args, name, where) => Math.round(v.seconds(0.2, 60, '2').parse(args, name, where) * 1000),
    },
    default: '2',
    doc: 'How often a WHIP publisher (a browser) is asked for a keyframe (RTCP PLI), which bounds how long a new viewer of its feed waits for a picture.',
    example: '2',
  }),
  setting('webrtcPlayoutDelayZero', {
    name: 'WebRTCPlayoutDelayZero',
    origin: 'feedcast',
    value: v.bool(),
    default: 'on',
    doc: 'Ask WHEP viewers to render frames at once (the playout-delay RTP header extension, 0/0): the lowest delay, at the price of smoothness on a jittery network.',
    example: 'off',
  }),
  setting('webrtcPeerTimeoutMs', {
    name: 'WebRTCPeerTimeout',
    origin: 'feedcast',
    value: {
      ...v.seconds(1, 3600, '15'),
      parse: (args, name, where) => Math.round(v.seconds(1, 3600, '15').parse(args, name, where) * 1000),
    },
    default: '15',
    doc: 'Seconds after which a WebRTC peer that sent nothing (media, RTCP or ICE consent checks) is closed.',
    example: '15',
  }),

  // --- <Feed> ---------------------------------------------------------------------------------------------------
  def<string>({
    name: 'File',
    group: 'feed',
    origin: 'ffserver',
    value: v.string('PATH'),
    default: 'none (no feed file)',
    doc: 'In <Feed>: the feed file, a ring on disk used for time-shift (`?date=`) and to survive restarts. In <Stream>: makes a file-backed stream that serves this media file.',
    differs: 'ffserver defaulted every feed to /tmp/NAME.ffm; Feedcast keeps a feed file only when File is given.',
    example: '/var/lib/feedcast/feed1.ffm',
    feed(value, feed, site) {
      feed.file = value;
      feed.readOnly = false;
      deferPathCheck(site, value, 'writable-file', 'warn');
    },
    stream(value, stream, site) {
      stream.file = value;
      deferPathCheck(site, value, 'readable-file');
    },
  }),
  def<string>({
    name: 'ReadOnlyFile',
    group: 'feed',
    origin: 'ffserver',
    value: v.string('PATH'),
    doc: 'Like File, but the file is only read: never truncated, recreated or published to.',
    example: '/saved/specialvideo.ffm',
    feed(value, feed, site) {
      feed.file = value;
      feed.readOnly = true;
      deferPathCheck(site, value, 'readable-file');
    },
    stream(value, stream, site) {
      stream.file = value;
      deferPathCheck(site, value, 'readable-file');
    },
  }),
  def<{ bytes: number; bare: boolean }>({
    name: 'FileMaxSize',
    group: 'feed',
    origin: 'ffserver',
    value: v.size(FEED_MIN_MAX_SIZE_BYTES, true),
    default: '5M',
    doc: 'Size of the feed file ring; once full, writing wraps and overwrites the oldest data. Minimum 16K.',
    differs: 'A bare number is taken as bytes (with a warning); ffserver 3.4 rejected it.',
    example: '200K',
    feed(value, feed, site) {
      if (value.bare)
        site.warn(
          `FileMaxSize ${value.bytes} is taken as bytes; ${SIZE_HINT}, write e.g. ${Math.max(16, Math.round(value.bytes / 1024))}K`,
        );
      feed.fileMaxSizeBytes = value.bytes;
      feed.fileMaxSizeLine = site.line;
    },
  }),
  def<number | undefined>({
    name: 'FileSync',
    group: 'feed',
    origin: 'feedcast',
    value: {
      syntax: 'SECONDS (0.1–3600) | off',
      minArgs: 1,
      maxArgs: 1,
      parse(args, name, where) {
        if (first(args).toLowerCase() === 'off') return undefined;
        return Math.round(v.seconds(0.1, 3600, '1').parse(args, name, where) * 1000);
      },
    },
    default: '1',
    doc: 'How often the feed file is forced to the disk (fdatasync) while it is written: a power cut loses at most about this much of the recording. `off` leaves it to the operating system (a crash of Feedcast alone loses nothing either way).',
    example: '5',
    feed(value, feed) {
      feed.fileSyncMs = value;
    },
  }),
  def<readonly string[]>({
    name: 'Truncate',
    group: 'feed',
    origin: 'ffserver',
    value: v.words('(no argument)', 0, 1),
    default: 'off',
    doc: 'Each new publisher starts with an empty feed file (old data is dropped).',
    example: '',
    feed(args, feed, site) {
      const [arg] = args;
      if (arg === undefined || arg === '') {
        feed.truncate = true;
      } else {
        site.warn('Truncate N is deprecated; write Truncate alone (no argument)');
        const n = Number.parseFloat(arg);
        feed.truncate = Number.isFinite(n) && n !== 0;
      }
      feed.truncateLine = site.line;
    },
  }),
  def<readonly string[]>({
    name: 'Launch',
    group: 'feed',
    origin: 'ffserver',
    value: v.words('PROGRAM ARGS…', 1, Number.MAX_SAFE_INTEGER),
    doc: "Runs ffmpeg with these arguments (the first word is ignored) as this feed's publisher, restarting it when it exits. Where ffserver appended the feed URL, Feedcast appends `-f mpegts pipe:1` and reads the child's stdout: the line's options apply to that output.",
    differs:
      "The program run is FFmpegPath (or $FEEDCAST_FFMPEG, or ffmpeg on PATH), not the ffmpeg next to the server binary; the output is the child's stdout (MPEG-TS), not the appended feed URL (today's ffmpeg has no FFM muxer).",
    example: 'ffmpeg -re -f lavfi -i testsrc2',
    feed(args, feed, site) {
      if (feed.launch !== undefined) site.warn('a second Launch replaces the first one');
      feed.launch = [...args];
    },
  }),
  def<string>({
    name: 'Source',
    group: 'feed',
    origin: 'feedcast',
    value: v.string('URL (rtsp://, rtmp://, http(s)://, srt://, udp://, a /dev/video* device or a file)'),
    doc: 'Pulls the feed from this URL with a supervised ffmpeg (stream copy): a camera, another server, a file (looped unless NoLoop).',
    example: 'rtsp://camera.local/stream1',
    feed(url, feed, site) {
      if (feed.source !== undefined) site.warn('a second Source replaces the first one');
      feed.source = url;
    },
  }),
  def<boolean>({
    name: 'OnDemand',
    group: 'feed',
    origin: 'feedcast',
    value: v.bool(),
    default: 'on',
    doc: 'Whether `Launch`/`Source` start with the first reader and stop when idle (on), or run all the time as ffserver ran Launch (off).',
    example: 'off',
    feed(on, feed) {
      feed.onDemand = on;
    },
  }),
  def<true>({
    name: 'AlwaysOn',
    group: 'stream',
    origin: 'feedcast',
    value: v.none(),
    doc: "Keeps this stream's transcoder running without readers, so the first reader starts at once.",
    example: '',
    stream(_, stream) {
      stream.alwaysOn = true;
    },
  }),
  def<AclRuleSpec>({
    name: 'ACL',
    group: 'feed',
    origin: 'ffserver',
    value: ACL_RULE,
    default: 'allow all',
    doc: 'Who may publish to a feed (in <Feed>) or read a stream (in <Stream>). First match wins; with no match, the inverse of the last rule applies.',
    differs:
      'Ranges compare in host order (ffserver compared byte-swapped on x86), CIDR and IPv6 are accepted, host names cover all their addresses, and a bad line is an error (ffserver skipped it).',
    feed(spec, feed) {
      feed.aclSpecs.push(spec);
    },
    stream(spec, stream) {
      stream.aclSpecs.push(spec);
    },
    example: 'allow 127.0.0.1',
  }),
  def<true>({
    name: 'RequireReadToken',
    group: 'stream',
    origin: 'feedcast',
    value: v.none(),
    doc: 'Readers must present a signed read token (ReadTokenKey) or a JWT naming this feed or stream, on every protocol. In a <Feed>: reads of the feed itself; in a <Stream>: that stream.',
    example: '',
    feed(_, feed) {
      feed.requireReadToken = true;
    },
    stream(_, stream) {
      stream.requireReadToken = true;
    },
  }),
  def<number>({
    name: 'MaxReaders',
    group: 'stream',
    origin: 'feedcast',
    value: v.int(0, 1_000_000, 'COUNT', '100'),
    default: '0 (unlimited)',
    doc: 'Cap on the simultaneous readers of this feed (in <Feed>) or stream (in <Stream>), over HTTP, RTMP and RTSP; past it readers get 503 (RTMP NetStream.Play.Failed).',
    example: '100',
    feed(value, feed) {
      feed.maxReaders = value;
    },
    stream(value, stream) {
      stream.maxReaders = value;
    },
  }),
  def<string>({
    name: 'OfflineSlate',
    group: 'feed',
    origin: 'feedcast',
    value: v.string('on|off|FILE (a picture or a video clip)'),
    default: 'off',
    doc: "While the feed waits for its publisher (PublisherGracePeriod), every output keeps playing a 'stream offline' picture with silence instead of stalling: encoded once per feed with the feed's codecs, size and frame rate, and replaced by the publisher at its first keyframe, timestamps still moving forward. `on` shows the built-in picture; a FILE shows that picture (PNG, JPEG) or the first seconds of that clip. Outside any section: the default of every feed. Feeds with H.264/H.265 (or MPEG-1/2) video; audio-only feeds get none. See docs/reliability.md.",
    example: 'on',
    global(value, site) {
      site.state.globals.offlineSlate = offlineSlateValue(value, site);
      site.state.explicit.set('offlineSlate', site.line);
    },
    feed(value, feed, site) {
      feed.offlineSlate = offlineSlateValue(value, site);
    },
  }),
  def<number>({
    name: 'HLSDVRWindow',
    group: 'feed',
    origin: 'feedcast',
    value: v.duration(10, 6 * 3600, '30m'),
    default: 'none (HLSWindow segments)',
    doc: "How much history the feed's live HLS playlists hold, so a player (hls.js, Safari) can seek back and return to live; LL-HLS parts stay at the live edge only. The feed is segmented from the moment its publisher arrives (not from the first viewer), and, with a File in the <Feed>, only the last HLSWindow segments are kept in memory, the older ones read back from the feed file on request (size FileMaxSize for the window); without a File the whole window is in memory: the feed's bit rate times the window (30 min at 2 Mb/s: about 450 MB). Older times play as VOD ranges (/FEED/index.m3u8?start=&end=) from recordings or the feed file.",
    example: '30m',
    feed(value, feed) {
      feed.hlsDvrWindowSeconds = value;
    },
  }),
  def<string>({
    name: 'PublishSecret',
    group: 'feed',
    origin: 'feedcast',
    value: v.string('SECRET'),
    doc: 'A publisher must present this secret in addition to passing the ACL (each publish protocol documents how it is sent).',
    example: 's3cr3t-token',
    feed(value, feed) {
      feed.publishSecret = value;
    },
  }),
  def<boolean>({
    name: 'Record',
    group: 'feed',
    origin: 'feedcast',
    value: v.bool(),
    default: 'off',
    doc: 'Records the feed to standard media files (fragmented MP4 or MPEG-TS, see RecordFormat), cut every RecordSegment on a keyframe, kept as RecordRetention says; listed at /api/v1/recordings/FEED and played back by time range (docs/recording.md).',
    example: 'on',
    feed(value, feed) {
      feed.record = value;
    },
  }),
  def<string>({
    name: 'RecordPath',
    group: 'feed',
    origin: 'feedcast',
    value: v.string('PATTERN'),
    default: RECORD_DEFAULT_PATHS.fmp4 + ' (.ts with RecordFormat ts)',
    doc: 'Where recordings go: a path (relative to the working directory) with `%feed` (the feed name) and strftime fields of the segment start in local time (`%Y %m %d %H %M %S`, also `%s` for Unix seconds and `%%`). It must contain `%feed` unless only one feed records, and must name a time down to the second so two segments never share a file.',
    example: '/var/lib/feedcast/rec/%feed/%Y%m%d-%H%M%S.mp4',
    feed(value, feed) {
      const unknown = /%(.?)/.exec(value.replace(/%(feed|[YmdHMSs%])/g, ''));
      if (unknown !== null)
        bad(`RecordPath "${value}" has an unknown field %${unknown[1] ?? ''}; use %feed, %Y, %m, %d, %H, %M, %S, %s or %%`);
      if (!/%[Ss]/.test(value)) bad(`RecordPath "${value}" must contain %S (or %s) so that each segment gets its own file`);
      feed.recordPath = value;
    },
  }),
  def<number>({
    name: 'RecordSegment',
    group: 'feed',
    origin: 'feedcast',
    value: v.duration(1, 7 * 86_400, '1h'),
    default: '1h',
    doc: 'Length of one recording file; a new file starts at the first video keyframe after it (so each file starts with a keyframe).',
    example: '10m',
    feed(value, feed) {
      feed.recordSegmentSeconds = value;
    },
  }),
  def<'fmp4' | 'ts'>({
    name: 'RecordFormat',
    group: 'feed',
    origin: 'feedcast',
    value: {
      syntax: 'fmp4|ts',
      minArgs: 1,
      maxArgs: 1,
      parse(args, name) {
        const f = first(args).toLowerCase();
        if (f === 'fmp4' || f === 'mp4') return 'fmp4';
        if (f === 'ts' || f === 'mpegts') return 'ts';
        return bad(`${name} "${first(args)}" must be fmp4 or ts`);
      },
    },
    default: 'fmp4',
    doc: 'Container of the recordings: fragmented MP4 (H.264/H.265/AAC; one fragment per GOP, so a crash loses at most the last one) or MPEG-TS (any codec the feed carries). Time-range playback (`?start=&end=`) reads fmp4 recordings.',
    example: 'ts',
    feed(value, feed) {
      feed.recordFormat = value;
    },
  }),
  def<{ seconds: number | undefined; bytes: number | undefined }>({
    name: 'RecordRetention',
    group: 'feed',
    origin: 'feedcast',
    value: {
      syntax: 'AGE and/or SIZE (e.g. 7d, 50G, 7d 50G)',
      minArgs: 1,
      maxArgs: 2,
      parse(args, name) {
        let seconds: number | undefined;
        let bytes: number | undefined;
        for (const a of args) {
          const size = parseSizeWithUnit(a);
          const age = size === undefined ? parseDurationSeconds(a) : undefined;
          if (size !== undefined && bytes === undefined) bytes = size;
          else if (age !== undefined && seconds === undefined) seconds = age;
          else bad(`${name} "${a}" is not an age (7d, 12h) or a size (50G, 500M), or gives one twice`);
        }
        if (seconds !== undefined) checkRange(name, seconds, 60, Number.MAX_SAFE_INTEGER, ' s');
        if (bytes !== undefined && bytes < 1024 * 1024) bad(`${name} ${bytes} bytes is too small; it must be at least 1M`);
        return { seconds, bytes };
      },
    },
    default: 'keep everything',
    doc: 'How much of the recordings to keep: files older than AGE and/or, oldest first, beyond SIZE in total are deleted (checked every minute and at each new file; the file being written is never deleted).',
    example: '7d 50G',
    feed(value, feed) {
      feed.recordRetentionSeconds = value.seconds;
      feed.recordRetentionBytes = value.bytes;
    },
  }),
  def<string>({
    name: 'SRTPassphrase',
    group: 'feed',
    origin: 'feedcast',
    value: {
      syntax: 'PASSPHRASE (10 to 79 characters)',
      minArgs: 1,
      maxArgs: 1,
      parse(args, name) {
        const value = first(args);
        if (value.length < 10 || value.length > 79) {
          bad(`${name} must be 10 to 79 characters long (SRT's limits), not ${value.length}`);
        }
        return value;
      },
    },
    doc: "SRT publishers and readers of this feed (and of its streams) must encrypt with this passphrase (AES, libsrt's SRTO_PASSPHRASE); a wrong or missing one is refused in the SRT handshake.",
    example: 'correct-horse-battery',
    feed(value, feed) {
      feed.srtPassphrase = value;
    },
  }),

  // --- <Redirect> -----------------------------------------------------------------------------------------------
  def<string>({
    name: 'URL',
    group: 'redirect',
    origin: 'ffserver',
    value: v.string('URL'),
    doc: 'Target of the redirect (301 with this Location). Required.',
    example: 'http://www.ffmpeg.org/',
    redirect(value, redirect, site) {
      if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(value) && !value.startsWith('/')) {
        site.warn(
          `URL '${value}' is neither an absolute URL nor a path starting with /; clients resolve it relative to the request`,
        );
      }
      redirect.url = value;
    },
  }),

  // --- <Stream>: source, format and serving ---------------------------------------------------------------------
  def<string>({
    name: 'Feed',
    group: 'stream',
    origin: 'ffserver',
    value: v.string('FEED_NAME'),
    doc: 'The feed this stream serves. The <Feed> must be defined above the stream.',
    example: 'feed1.ffm',
    stream(value, stream, site) {
      stream.feedLine = site.line;
      // Names compare in any case (issue 18): `Feed FEED1.ffm` is <Feed feed1.ffm>.
      const found = findByName(site.state.feeds, value);
      if (found !== undefined) {
        stream.feed = found.name;
        return;
      }
      const below = [...site.state.allFeeds].find(([name]) => sameName(name, value))?.[1];
      if (below !== undefined) {
        site.error(
          `Feed '${value}' is defined below this stream (line ${below}); move the <Feed ${value}> section above <Stream ${stream.name}>`,
        );
        return;
      }
      const byKey = findFeedConfig(site.state.feeds, value);
      const hint =
        byKey !== undefined
          ? `; did you mean Feed ${byKey.name}?`
          : site.state.feeds.length > 0
            ? `; defined feeds: ${site.state.feeds.map((f) => f.name).join(', ')}`
            : '; add a <Feed NAME> section above this stream';
      site.error(`Feed '${value}' for stream '${stream.name}' is not defined${hint}`);
    },
  }),
  def<string>({
    name: 'Format',
    group: 'stream',
    origin: 'ffserver',
    value: v.string('FORMAT'),
    default: "from the stream name's extension",
    doc: 'Output format: flv, mpegts, hls, rtp, status, or a transcoded one (mpeg, webm, ogg, mp3, jpeg, mpjpeg, …).',
    differs:
      'Format ffm (ffserver to ffserver) loads with a warning and is not served; asf is plain ASF, without the MMS framing.',
    example: 'flv',
    stream(value, stream, site) {
      const format = lookupFormat(value);
      if (format === undefined) {
        site.error(`Format '${value}' is unknown; known formats: ${knownFormatNames().join(', ')}`);
        return;
      }
      stream.format = format;
      stream.formatExplicit = true;
      stream.formatLine = site.line;
    },
  }),
  def<string>({
    name: 'InputFormat',
    group: 'stream',
    origin: 'ffserver',
    value: v.string('DEMUXER', { re: /^[A-Za-z0-9_,]+$/, what: 'an ffmpeg demuxer name; write e.g. InputFormat mpegts' }),
    default: 'probed',
    doc: 'Forces the demuxer of a File stream.',
    example: 'mpegts',
    stream(value, stream) {
      stream.inputFormat = value;
    },
  }),
  def<number>({
    name: 'Preroll',
    group: 'stream',
    origin: 'ffserver',
    // A bare `Preroll` is 0, as ffserver's atof("") read it (issue 18).
    value: v.optional(v.seconds(0, 86400, '10'), 0),
    default: '0',
    doc: "A new reader starts at the keyframe this many seconds in the past and receives that span at once (filling the player's buffer), then follows live: from the feed File when the feed has one, else from what the stream's shared output keeps in memory (up to ReaderMaxQueue bytes; a stream nobody else is watching has the feed's last 6 s from a keyframe).",
    example: '10',
    stream(value, stream) {
      stream.prerollSeconds = value;
    },
  }),
  def<true>({
    name: 'StartSendOnKey',
    group: 'stream',
    origin: 'ffserver',
    value: v.none(),
    default: 'off',
    doc: 'Start sending to a reader at a keyframe.',
    differs: 'Feedcast always starts readers at a keyframe (from its GOP cache); the flag is kept for the status page.',
    example: '',
    stream(_, stream) {
      stream.startSendOnKey = true;
    },
  }),
  def<number>({
    name: 'MaxTime',
    group: 'stream',
    origin: 'ffserver',
    value: v.seconds(0, 31_536_000, '100'),
    default: '0 (unlimited)',
    doc: 'Wall-clock limit per reader connection, in seconds.',
    example: '100',
    stream(value, stream) {
      stream.maxTimeSeconds = value;
    },
  }),
  def<string>({
    name: 'DynamicACL',
    group: 'stream',
    origin: 'ffserver',
    value: v.string('FILE'),
    doc: 'A file of `ACL` lines (`ACL allow 10.0.0.0/8`), re-read when it changes (its modification time and size are checked on every request); its result replaces the static ACL. A missing file allows all; an unreadable or bad file denies all (and is logged). In a <Feed> it applies to publishers and readers of the feed on every protocol.',
    differs: 'Also allowed in <Feed>. A bad line denies everyone instead of being skipped.',
    example: '/etc/feedcast/stream.acl',
    feed(value, feed) {
      feed.dynamicAcl = value;
    },
    stream(value, stream) {
      stream.dynamicAcl = value;
    },
  }),
  def<string>({
    name: 'RTSPOption',
    group: 'stream',
    origin: 'ffserver',
    value: { ...v.string('STRING'), parse: (args) => first(args) },
    doc: 'Kept but unused, as in ffserver.',
    example: 'tcp',
    stream(value, stream) {
      stream.rtspOption = value;
    },
  }),
  def<string>({
    name: 'MulticastAddress',
    group: 'stream',
    origin: 'ffserver',
    value: v.host(),
    doc: 'Makes the stream an always-on multicast RTP sender to this group (and turns looping on).',
    example: '224.124.0.1',
    stream(value, stream, site) {
      stream.multicastLine = site.line;
      stream.loop = true;
      deferResolve(site, value, 'use a multicast IP address such as 224.124.0.1', (a) => {
        stream.multicastAddress = a;
        const p = parseAddress(a);
        const multicast = p !== undefined && (p.family === 4 ? p.value >> 28n === 0xen : p.value >> 120n === 0xffn);
        if (!multicast) site.warn(`MulticastAddress ${a} is not a multicast address (224.0.0.0/4 or ff00::/8)`);
      });
    },
  }),
  def<number>({
    name: 'MulticastPort',
    group: 'stream',
    origin: 'ffserver',
    value: v.port(),
    default: '6000, 6100, … in config order',
    doc: 'First RTP port of the multicast stream; track i uses PORT+2i.',
    example: '5000',
    stream(value, stream) {
      stream.multicastPort = value;
    },
  }),
  def<number>({
    name: 'MulticastTTL',
    group: 'stream',
    origin: 'ffserver',
    value: v.int(0, 255, 'TTL', '16'),
    default: '16',
    doc: 'TTL of the multicast packets.',
    example: '16',
    stream(value, stream) {
      stream.multicastTtl = value;
    },
  }),
  def<true>({
    name: 'NoLoop',
    group: 'stream',
    origin: 'ffserver',
    value: v.none(),
    doc: "A multicast file stream, or a feed's file `Source`, stops at the end of the file instead of starting over.",
    example: '',
    feed(_, feed) {
      feed.loop = false;
    },
    stream(_, stream) {
      stream.loop = false;
    },
  }),
  def<string>({
    name: 'FaviconURL',
    group: 'stream',
    origin: 'ffserver',
    value: v.string('URL'),
    doc: 'Icon of the status page. Only in a `Format status` stream, after the Format line.',
    example: 'http://example.com/favicon.ico',
    stream(value, stream, site) {
      if (stream.format?.support !== 'status') {
        site.error('FaviconURL is only allowed in a status stream, after its Format status line; move it below Format status');
        return;
      }
      stream.faviconUrl = value;
    },
  }),
  def<readonly string[]>({
    name: 'Metadata',
    group: 'stream',
    origin: 'ffserver',
    value: v.words('KEY VALUE', 2, 2),
    doc:
      'Container metadata for every reader, e.g. `Metadata title "My stream"`: in FLV onMetaData, Ogg comments, ' +
      'WebM/Matroska tags and an MP3 ID3v2 tag. `title` is also the SDP session name and the ICY `icy-name`.',
    example: 'title "Stream title"',
    stream([k = '', value = ''], stream, site) {
      if (k === '') {
        site.error('Metadata needs a key and a value, e.g. Metadata title "My stream"');
        return;
      }
      stream.metadata[k] = value;
    },
  }),
  metadataFrom('author'),
  metadataFrom('comment'),
  metadataFrom('copyright'),
  metadataFrom('title'),
  def<true>({
    name: 'NoAudio',
    group: 'stream',
    origin: 'ffserver',
    value: v.none(),
    doc: 'Leave the audio track out of this stream.',
    example: '',
    stream(_, stream) {
      stream.noAudio = true;
    },
  }),
  def<true>({
    name: 'NoVideo',
    group: 'stream',
    origin: 'ffserver',
    value: v.none(),
    doc: 'Leave the video track out of this stream.',
    example: '',
    stream(_, stream) {
      stream.noVideo = true;
    },
  }),

  // --- <Stream>: encoder directives (ref §2.6) -------------------------------------------------------------------
  enc(
    'AudioCodec',
    v.codec('audio'),
    () => [],
    (c, e) => void (e.audioCodec = c),
    'Audio encoder, e.g. aac, libmp3lame, mp2, libopus.',
    'aac',
  ),
  enc(
    'AudioBitRate',
    v.float(1, 10_000, 'KBITS', '64'),
    (n) => [['audio', 'b', String(n)]],
    (n, e) => void (e.audioBitRateKbps = n),
    'Audio bitrate in kbit/s.',
    '64',
  ),
  enc(
    'AudioChannels',
    v.int(1, 64, 'COUNT', '2'),
    (n) => [['audio', 'ac', String(n)]],
    (n, e) => void (e.audioChannels = n),
    'Number of audio channels.',
    '2',
  ),
  enc(
    'AudioSampleRate',
    v.int(1000, 768_000, 'HZ', '44100'),
    (n) => [['audio', 'ar', String(n)]],
    (n, e) => void (e.audioSampleRate = n),
    'Audio sample rate in Hz.',
    '44100',
  ),
  avOption('AVOptionAudio', 'audio'),
  avPreset('AVPresetAudio', 'audio', 'default'),
  enc(
    'VideoCodec',
    v.codec('video'),
    () => [],
    (c, e) => void (e.videoCodec = c),
    'Video encoder, e.g. libx264, libvpx, mjpeg, mpeg1video.',
    'libx264',
  ),
  enc(
    'VideoBitRate',
    v.int(1, 2_000_000, 'KBITS', '1000'),
    (n) => [['video', 'b', String(n)]],
    (n, e) => void (e.videoBitRateKbps = n),
    'Video bitrate in kbit/s.',
    '1000',
  ),
  enc(
    'VideoBitRateRange',
    bitRateRange,
    (r) => [
      ['video', 'minrate', String(r.min)],
      ['video', 'maxrate', String(r.max)],
    ],
    (r, e) => void (e.videoBitRateRangeKbps = r),
    'Minimum and maximum video bitrate in kbit/s.',
    '200-800',
  ),
  enc(
    'VideoBitRateTolerance',
    v.int(0, 2_000_000, 'KBITS', '100'),
    (n) => [['video', 'bt', String(n)]],
    (n, e) => void (e.videoBitRateToleranceKbps = n),
    'Video bitrate tolerance in kbit/s.',
    '100',
  ),
  enc(
    'VideoBufferSize',
    v.int(0, 262_143, 'KIB', '40'),
    (n) => [['video', 'bufsize', String(n)]],
    (n, e) => void (e.videoBufferSizeKiB = n),
    'Rate-control buffer size in KiB (a smaller buffer lowers latency).',
    '40',
  ),
  enc(
    'VideoFrameRate',
    frameRate,
    (n) => [['video', 'time_base', String(n)]],
    (n, e) => void (e.frameRate = n),
    'Frames per second, kept constant: frames are repeated when the feed has fewer, dropped when it has more.',
    '25',
    {
      differs: 'A fraction like 30000/1001 means that many frames per second (ffserver glued it after `1/`).',
    },
  ),
  enc(
    'VideoSize',
    videoSize,
    (s) => [['video', 'video_size', `${s.width}x${s.height}`]],
    (s, e, site) => {
      if (s.width % 2 !== 0 || s.height % 2 !== 0)
        site.warn(`VideoSize ${s.width}x${s.height} is not a multiple of 2; most encoders need even sizes`);
      e.videoSize = s;
    },
    'Picture size: WIDTHxHEIGHT or an ffmpeg abbreviation (qcif, cif, 4cif, vga, svga, hd480, hd720, hd1080, …).',
    '640x360',
  ),
  enc(
    'PixelFormat',
    v.string('PIX_FMT', { re: /^[a-z0-9_]+$/i, what: 'a pixel format name; write e.g. PixelFormat yuv420p' }),
    (p) => [['video', 'pixel_format', p]],
    (p, e) => void (e.pixelFormat = p),
    'Pixel format of the encoded video, e.g. yuv420p.',
    'yuv420p',
  ),
  enc(
    'VideoGopSize',
    v.int(1, 100_000, 'FRAMES', '50'),
    (n) => [['video', 'g', String(n)]],
    (n, e) => void (e.gop = n),
    'Keyframe interval in frames.',
    '50',
  ),
  flagDirective('VideoIntraOnly', [['video', 'g', '1']], 'intraOnly', 'Every frame is a keyframe (GOP size 1).'),
  flagDirective('VideoHighQuality', [['video', 'mbd', '+bits']], 'highQuality', 'Macroblock decision by bits (`mbd=bits`).'),
  flagDirective(
    'Video4MotionVector',
    [
      ['video', 'mbd', '+bits'],
      ['video', 'flags', '+mv4'],
    ],
    'fourMotionVector',
    'Four motion vectors per macroblock (`flags=+mv4`, MPEG-4 family).',
  ),
  enc(
    'VideoTag',
    v.string('FOURCC', { re: /^.{4}$/s, what: 'a four-character code; write e.g. VideoTag XVID' }),
    (t) => [['video', 'codec_tag', t]],
    (t, e) => void (e.videoTag = t),
    'Codec tag (FourCC) written into the container.',
    'XVID',
    { differs: 'A tag that is not 4 characters is an error (ffserver ignored it silently).' },
  ),
  enc(
    'VideoQMin',
    v.int(-1, 69, 'Q', '3'),
    (n) => [['video', 'qmin', String(n)]],
    (n, e) => void (e.qmin = n),
    'Minimum video quantizer.',
    '3',
  ),
  enc(
    'VideoQMax',
    v.int(-1, 1024, 'Q', '31'),
    (n) => [['video', 'qmax', String(n)]],
    (n, e) => void (e.qmax = n),
    'Maximum video quantizer.',
    '31',
  ),
  enc(
    'VideoQDiff',
    v.int(-1, 1024, 'Q', '3'),
    (n) => [['video', 'qdiff', String(n)]],
    (n, e) => void (e.qdiff = n),
    'Maximum quantizer difference between frames.',
    '3',
  ),
  enc(
    'Qscale',
    v.int(0, 255, 'Q', '10'),
    (n) => [
      ['video', 'flags', '+qscale'],
      ['video', 'global_quality', String(n)],
    ],
    (n, e) => void (e.qscale = n),
    'Constant-quality video at this quantizer.',
    '10',
  ),
  enc(
    'LumiMask',
    v.float(-1e6, 1e6, 'FLOAT', '0.1'),
    (n) => [['video', 'lumi_mask', String(n)]],
    (n, e) => void (e.lumiMask = n),
    'Luminance masking.',
    '0.1',
  ),
  enc(
    'DarkMask',
    v.float(-1e6, 1e6, 'FLOAT', '0.1'),
    (n) => [['video', 'dark_mask', String(n)]],
    (n, e) => void (e.darkMask = n),
    'Darkness masking.',
    '0.1',
  ),
  flagDirective(
    'BitExact',
    [['video', 'flags', '+bitexact']],
    'bitExact',
    'Bit-exact encoding (reproducible output, for tests).',
  ),
  flagDirective('DctFastint', [['video', 'dct', 'fastint']], 'dctFastint', 'Fast integer DCT.'),
  flagDirective('IdctSimple', [['video', 'idct', 'simple']], 'idctSimple', 'Simple IDCT.'),
  enc(
    'Debug',
    v.string('FLAGS', { re: /^[\w+,|-]+$/, what: 'ffmpeg debug flags; write e.g. Debug mb_type' }),
    (d) => [
      ['audio', 'debug', d],
      ['video', 'debug', d],
    ],
    (d, e) => void (e.debug = d),
    'ffmpeg encoder debug flags (audio and video).',
    'mb_type',
  ),
  enc(
    'Strict',
    strictValue,
    (s) => [
      ['audio', 'strict', s],
      ['video', 'strict', s],
    ],
    (s, e) => void (e.strict = s),
    'Standards compliance of the encoders (`-strict`), e.g. -1 or experimental.',
    '-1',
  ),
  avOption('AVOptionVideo', 'video'),
  avPreset('AVPresetVideo', 'video', 'baseline'),
];

const BY_NAME: ReadonlyMap<string, Directive> = new Map(DIRECTIVES.map((d) => [d.name.toLowerCase(), d]));

/** Finds a directive by name, case-insensitively (ffserver matched with strcasecmp). */
export function findDirective(name: string): Directive | undefined {
  return BY_NAME.get(name.toLowerCase());
}

/** Directive names close to a misspelt one, for "did you mean" hints. */
export function suggestDirectives(name: string, scope: Scope): string[] {
  const lower = name.toLowerCase();
  const scored = DIRECTIVES.filter((d) => d.scopes.includes(scope))
    .map((d) => ({ name: d.name, distance: editDistance(lower, d.name.toLowerCase()) }))
    .filter((s) => s.distance <= Math.max(1, Math.floor(lower.length / 4)))
    .sort((a, b) => a.distance - b.distance);
  return scored.slice(0, 3).map((s) => s.name);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Section drafts with their defaults.

export function emptyEncoding(useDefaults: boolean): StreamEncoding {
  return {
    useDefaults,
    audioCodec: undefined,
    audioBitRateKbps: undefined,
    audioChannels: undefined,
    audioSampleRate: undefined,
    audioAvOptions: {},
    audioPresets: [],
    videoCodec: undefined,
    videoBitRateKbps: undefined,
    videoBitRateRangeKbps: undefined,
    videoBitRateToleranceKbps: undefined,
    videoBufferSizeKiB: undefined,
    frameRate: undefined,
    videoSize: undefined,
    pixelFormat: undefined,
    gop: undefined,
    intraOnly: false,
    highQuality: false,
    fourMotionVector: false,
    videoTag: undefined,
    qmin: undefined,
    qmax: undefined,
    qdiff: undefined,
    qscale: undefined,
    lumiMask: undefined,
    darkMask: undefined,
    bitExact: false,
    dctFastint: false,
    idctSimple: false,
    debug: undefined,
    strict: undefined,
    videoAvOptions: {},
    videoPresets: [],
  };
}

/** The name a feed is published and read under: NAME without a trailing `.ffm`. */

export function newFeedDraft(name: string, line: number, where: string): FeedDraft {
  return {
    name,
    key: feedKeyOf(name),
    line,
    where,
    file: undefined,
    readOnly: false,
    fileMaxSizeBytes: FEED_DEFAULT_MAX_SIZE_BYTES,
    fileMaxSizeLine: undefined,
    fileSyncMs: FEED_DEFAULT_SYNC_MS,
    truncate: false,
    truncateLine: undefined,
    launch: undefined,
    source: undefined,
    loop: true,
    onDemand: true,
    publishSecret: undefined,
    srtPassphrase: undefined,
    aclSpecs: [],
    dynamicAcl: undefined,
    requireReadToken: false,
    maxReaders: 0,
    hooks: [],
    record: false,
    recordPath: undefined,
    recordSegmentSeconds: RECORD_DEFAULT_SEGMENT_SECONDS,
    recordFormat: 'fmp4',
    recordRetentionSeconds: undefined,
    recordRetentionBytes: undefined,
    offlineSlate: undefined,
    hlsDvrWindowSeconds: undefined,
  };
}

export function newStreamDraft(name: string, line: number, where: string, useDefaults: boolean): StreamDraft {
  return {
    name,
    line,
    where,
    feed: undefined,
    feedLine: undefined,
    file: undefined,
    format: guessFormatFromName(name),
    formatExplicit: false,
    formatLine: undefined,
    inputFormat: undefined,
    prerollSeconds: 0,
    startSendOnKey: false,
    maxTimeSeconds: 0,
    metadata: {},
    noAudio: false,
    noVideo: false,
    aclSpecs: [],
    dynamicAcl: undefined,
    requireReadToken: false,
    maxReaders: 0,
    rtspOption: undefined,
    multicastAddress: undefined,
    multicastPort: undefined,
    multicastTtl: undefined,
    multicastLine: undefined,
    loop: false,
    alwaysOn: false,
    faviconUrl: undefined,
    useDefaultsSeen: false,
    encoding: emptyEncoding(useDefaults),
    encoderDirectives: [],
    avKeys: { audio: new Map(), video: new Map() },
  };
}

export function newRedirectDraft(name: string, line: number, where: string): RedirectDraft {
  return { name, line, where, url: undefined };
}
