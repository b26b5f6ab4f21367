// The server configuration model and its loader: reads ffserver.conf syntax (ref §2) through the lexer and the
// directive table, collects every error and warning with file:line, resolves host names, and cross-checks sections.

import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { ConfigError } from '../errors.js';
import { Acl, resolveAclRules, systemResolver, type HostResolver } from './acl.js';
import { lexConfig, SECTION_TAG, type SectionKind } from './lexer.js';
import {
  RECORD_DEFAULT_PATHS,
  type IceServerSpec,
  BadValue,
  FFSERVER_ENCODER_DEFAULTS,
  GLOBAL_DEFAULTS,
  findDirective,
  newFeedDraft,
  newRedirectDraft,
  newStreamDraft,
  suggestDirectives,
  type FeedDraft,
  type GlobalSettings,
  type ParseState,
  type RedirectDraft,
  type ScopeTarget,
  type Site,
  type StreamDraft,
} from './directives.js';
import { knownFormatNames, type FormatInfo } from './formats.js';
import { findByName, findFeedConfig } from './names.js';
import { presetSearchDirs } from './presets.js';
import type { StreamEncoding } from './stream-encoding.js';
import type { HookSpec, HooksConfig } from './hooks.js';

export type { FormatInfo } from './formats.js';
export type { StreamEncoding } from './stream-encoding.js';

export interface ConfigWarning {
  where: string;
  message: string;
}

export interface WebRtcConfig {
  enabled: boolean;
  /** Announced host candidate addresses; undefined = derived from HTTPBindAddress. */
  addresses: readonly string[] | undefined;
  /** Single-port mode: every peer on this UDP port. */
  udpPort: number | undefined;
  portRange: readonly [number, number] | undefined;
  tcp: boolean;
  /** Offered to clients. */
  iceServers: readonly IceServerSpec[];
  /** Used by the server itself (outbound). */
  serverIceServers: readonly IceServerSpec[];
  peerTimeoutMs: number;
  tcpPort: number | undefined;
  bindAddress: string | undefined;
  whipKeyframeIntervalMs: number;
  playoutDelayZero: boolean;
}

export interface ServerConfig {
  source: string;
  http: { port: number; bindAddress: string };
  rtsp: { port: number | undefined; bindAddress: string };
  /** port 0: RTMP is off. */
  rtmp: { port: number; bindAddress: string; chunkSize: number };
  /** port undefined: SRT is off. */
  srt: { port: number | undefined; bindAddress: string; latencyMs: number };
  hls: { segmentSeconds: number; partSeconds: number; window: number; partHoldBack: number; idleTimeoutMs: number };
  transcodeIdleTimeoutMs: number;
  maxHttpConnections: number;
  maxClients: number;
  maxBandwidthKbps: number;
  customLog: string | undefined;
  ffmpegPath: string | undefined;
  publisherTimeoutMs: number;
  publisherGraceMs: number;
  dynamicFeeds: boolean;
  /** `DynamicFeedTimeout`: a dynamic feed with no publisher and no reader for this long is removed. */
  dynamicFeedTimeoutMs: number;
  readerMaxQueueBytes: number;
  readerMaxLagMs: number;
  /** Global UseDefaults/NoDefaults (streams copy it into `encoding.useDefaults`). */
  useDefaults: boolean;
  /** Authentication beyond ACLs and publish secrets (docs/security.md). */
  auth: AuthConfig;
  /** `MaxConnectionsPerAddress`: live connections one client address may hold (default 64); 0 = unlimited. */
  maxConnectionsPerAddress: number;
  /** `RequestHeaderTimeout`: a request head (HTTP, RTSP) must arrive within this. */
  requestHeaderTimeoutMs: number;
  /** `IdleTimeout`: an RTSP/RTMP connection between requests, neither playing nor publishing, is closed after this. */
  idleTimeoutMs: number;
  /** `KeepAliveTimeout`: an HTTP connection idle between requests is closed after this. */
  keepAliveTimeoutMs: number;
  /** HTTPS and RTMPS listeners and their certificate (docs/security.md). */
  tls: {
    httpsPort: number | undefined;
    rtmpsPort: number | undefined;
    certFile: string | undefined;
    keyFile: string | undefined;
  };
  /** `WriteCoalesce`: ms readers on TCP gather chunks into one write; 'off'; undefined = not set (environment, else 10). */
  writeCoalesceMs: number | 'off' | undefined;
  /** `EgressThreads`: worker threads sending HTTP progressive readers' batches (0 = main thread). */
  egressThreads: number;
  /** `Workers`: processes serving the same ports (1: this process alone; `auto` resolved to the CPU count). */
  workers: number;
  /** `RelayIdleTimeout`: also for the relays between the workers of `Workers N` without ClusterRedis. */
  relayIdleTimeoutMs: number;
  /** WHEP/WHIP and ICE (docs/webrtc.md). */
  webrtc: WebRtcConfig;
  /** Lifecycle hooks (docs/hooks.md); feed-level ones are in each FeedConfig. */
  hooks: HooksConfig;
  /** The cluster (docs/cluster.md): undefined without ClusterRedis. */
  cluster: ClusterConfig | undefined;
  feeds: FeedConfig[];
  streams: StreamConfig[];
  redirects: RedirectConfig[];
  /** Who may read the status page, the API and the metrics (`StatusACL`). */
  statusAcl: Acl;
  /** Who may publish to an undeclared feed with `DynamicFeeds on` (`DynamicFeedACL`; default: loopback only). */
  dynamicFeedAcl: Acl;
  /** HTTP peers whose X-Forwarded-For is believed (`TrustedProxy`); undefined: none. */
  trustedProxies: Acl | undefined;
  /** Credentials for the control endpoints (`ControlUser`); undefined: they are refused. */
  control: { user: string; password: string } | undefined;
  warnings: ConfigWarning[];
}

export interface ClusterConfig {
  /** `ClusterRedis`, as written (redis:// or rediss://). */
  redisUrl: string;
  /** `NodeName`; undefined: the host name and the HTTP port. */
  nodeName: string | undefined;
  /** `NodeURL` without a trailing slash; undefined: http://HOST:HTTPPort. */
  nodeUrl: string | undefined;
  /** `NodeTTL`: registrations live this long without a heartbeat. */
  nodeTtlMs: number;
  /** `RelayIdleTimeout`: a relay runs this long after its last reader left. */
  relayIdleTimeoutMs: number;
  /** `RelayVia`: the node relays pull through instead of the origin; undefined: from the origin. */
  relayVia: string | undefined;
}

export interface AuthConfig {
  /** `ReadTokenKey`: HMAC key of signed read URLs. */
  readTokenKey: string | undefined;
  /** `JWTKey`: HS256 shared key. */
  jwtKey: string | undefined;
  /** `JWKSFile`: RS256 public keys. */
  jwksFile: string | undefined;
  /** `AuthCallback`: URL asked about every publish and read. */
  callbackUrl: string | undefined;
  callbackTimeoutMs: number;
  /** `TokenExpiryCutsReaders`: running readers are disconnected when their credentials expire. */
  tokenExpiryCutsReaders: boolean;
}

export interface FeedConfig {
  /** As written in `<Feed NAME>`, e.g. `feed1.ffm`. */
  name: string;
  /** NAME without a trailing `.ffm`: publishers POST to `/feed1.ffm` or `/feed1`, readers read `/feed1.flv`. */
  key: string;
  where: string;
  /** Feed file (disk ring); undefined: the feed lives in memory only. */
  file: string | undefined;
  readOnly: boolean;
  fileMaxSizeBytes: number;
  /** `FileSync`: fdatasync interval of the feed file; undefined = never. */
  fileSyncMs: number | undefined;
  truncate: boolean;
  /** `Launch` argv as written (argv[0] is the program as written; see FFmpegPath). */
  launch: string[] | undefined;
  /** `Source URL`: pulled by a supervised ffmpeg into the feed. */
  source: string | undefined;
  /** A file Source starts over at its end (cleared by NoLoop). */
  loop: boolean;
  /** Launch/Source start with the first reader (OnDemand on) or always. */
  onDemand: boolean;
  /** The URL ffserver appended to the Launch arguments: where the launched ffmpeg publishes. */
  launchUrl: string | undefined;
  publishSecret: string | undefined;
  /** `SRTPassphrase`: SRT publishers and readers of the feed encrypt with it. */
  srtPassphrase: string | undefined;
  acl: Acl;
  /** `DynamicACL FILE`: replaces `acl` when the file exists. */
  dynamicAcl: string | undefined;
  /** `RequireReadToken`: reads of the feed need a read token or JWT. */
  requireReadToken: boolean;
  /** `MaxReaders`: 0 = unlimited. */
  maxReaders: number;
  /** OnPublish, OnRead ... written inside this <Feed> (config/hooks.ts). */
  hooks: readonly HookSpec[];
  /** `Record on` and its settings; undefined: not recorded. */
  record: RecordConfig | undefined;
  /** `OfflineSlate`: the picture or clip shown while the feed waits for its publisher ('default': the built-in one); undefined: off. */
  offlineSlate:
    | string
    | undefined; /** `HLSDVRWindow`: seconds of history the feed's live HLS playlists hold; undefined: HLSWindow segments only. */
  hlsDvrWindowSeconds: number | undefined;
}

/** How a feed is recorded (Record, RecordPath, RecordSegment, RecordFormat, RecordRetention). */
export interface RecordConfig {
  /** RecordPath: %feed and strftime fields (src/record/record-path.ts). */
  pathPattern: string;
  segmentSeconds: number;
  format: 'fmp4' | 'ts';
  /** RecordRetention: files older than this go (undefined: no age limit). */
  retentionSeconds: number | undefined;
  /** RecordRetention: the oldest files go while the feed's recordings take more (undefined: no size limit). */
  retentionBytes: number | undefined;
}

export interface MulticastConfig {
  address: string;
  /** undefined: assigned 6000, 6100, … in config order, as ffserver did. */
  port: number | undefined;
  ttl: number;
}

export interface StreamConfig {
  name: string;
  where: string;
  /** Feed NAME (as in `<Feed NAME>`), for feed-backed streams. */
  feed: string | undefined;
  /** Media file, for file-backed streams. */
  file: string | undefined;
  format: FormatInfo;
  inputFormat: string | undefined;
  prerollSeconds: number;
  startSendOnKey: boolean;
  maxTimeSeconds: number;
  metadata: Record<string, string>;
  noAudio: boolean;
  noVideo: boolean;
  acl: Acl;
  dynamicAcl: string | undefined;
  requireReadToken: boolean;
  maxReaders: number;
  rtspOption: string | undefined;
  multicast: MulticastConfig | undefined;
  loop: boolean;
  /** Keep the transcoder running without readers (`AlwaysOn`). */
  alwaysOn: boolean;
  faviconUrl: string | undefined;
  encoding: StreamEncoding;
  /** Any encoder directive was given: the stream is not a passthrough of its feed. */
  needsTranscode: boolean;
  /** The encoder directives given, in order (for `feedcast check` and the status page). */
  encoderDirectives: string[];
  /** Configured kbit/s, counted against MaxBandwidth as ffserver did (sum of audio and video bitrates). */
  bandwidthKbps: number;
}

export interface RedirectConfig {
  name: string;
  url: string;
  where: string;
}

export interface ParseOptions {
  /**
   * Check on disk that feed Files and CustomLog can be written and stream Files read (default: on for
   * loadConfigFile, i.e. `feedcast check` and start-up; off for config text).
   */
  checkPaths?: boolean;
  /** Host name resolution (ACL, bind and multicast addresses); defaults to the system resolver. */
  resolveHost?: HostResolver;
  /** Where AVPreset files are looked for; defaults to ffmpeg's own places (config/presets.ts). */
  presetDirs?: readonly string[];
}

/** Every error of a config file, reported together. `message` has one `file:line: what is wrong` line each. */
export class ConfigErrors extends ConfigError {
  readonly errors: readonly ConfigError[];
  constructor(source: string, errors: readonly ConfigError[]) {
    super(source, `${errors.length} error${errors.length === 1 ? '' : 's'}`);
    this.errors = errors;
    this.message = errors.map((e) => e.message).join('\n');
  }
}

type GlobalFields = Omit<
  ServerConfig,
  'source' | 'feeds' | 'streams' | 'redirects' | 'statusAcl' | 'dynamicFeedAcl' | 'trustedProxies' | 'control' | 'warnings'
>;

/** The ServerConfig fields that come straight from the global settings. */
function globalFields(g: Readonly<GlobalSettings>): GlobalFields {
  return {
    http: { port: g.httpPort, bindAddress: g.httpBindAddress },
    rtsp: { port: g.rtspPort, bindAddress: g.rtspBindAddress },
    rtmp: { port: g.rtmpPort, bindAddress: g.rtmpBindAddress, chunkSize: g.rtmpChunkSize },
    srt: { port: g.srtPort, bindAddress: g.srtBindAddress, latencyMs: g.srtLatencyMs },
    hls: {
      segmentSeconds: g.hlsSegmentSeconds,
      partSeconds: g.hlsPartSeconds,
      window: g.hlsWindow,
      partHoldBack: g.hlsPartHoldBack,
      idleTimeoutMs: g.hlsIdleTimeoutMs,
    },
    transcodeIdleTimeoutMs: g.transcodeIdleTimeoutMs,
    maxHttpConnections: g.maxHttpConnections,
    maxClients: g.maxClients,
    maxBandwidthKbps: g.maxBandwidthKbps,
    customLog: g.customLog,
    ffmpegPath: g.ffmpegPath,
    publisherTimeoutMs: g.publisherTimeoutMs,
    publisherGraceMs: g.publisherGraceMs,
    dynamicFeeds: g.dynamicFeeds,
    dynamicFeedTimeoutMs: g.dynamicFeedTimeoutMs,
    readerMaxQueueBytes: g.readerMaxQueueBytes,
    readerMaxLagMs: g.readerMaxLagMs,
    useDefaults: g.useDefaults,
    auth: {
      readTokenKey: g.readTokenKey,
      jwtKey: g.jwtKey,
      jwksFile: g.jwksFile,
      callbackUrl: g.authCallbackUrl,
      callbackTimeoutMs: g.authCallbackTimeoutMs,
      tokenExpiryCutsReaders: g.tokenExpiryCutsReaders,
    },
    maxConnectionsPerAddress: g.maxConnectionsPerAddress,
    requestHeaderTimeoutMs: g.requestHeaderTimeoutMs,
    idleTimeoutMs: g.idleTimeoutMs,
    keepAliveTimeoutMs: g.keepAliveTimeoutMs,
    tls: { httpsPort: g.httpsPort, rtmpsPort: g.rtmpsPort, certFile: g.sslCertificate, keyFile: g.sslCertificateKey },
    writeCoalesceMs: g.writeCoalesceMs,
    egressThreads: g.egressThreads,
    workers: g.workers === 'auto' ? availableParallelism() : g.workers,
    relayIdleTimeoutMs: g.relayIdleTimeoutMs,
    webrtc: {
      enabled: g.webrtc,
      addresses: g.webrtcAddresses,
      udpPort: g.webrtcUdpPort,
      portRange: g.webrtcPortRange,
      tcp: g.webrtcTcp,
      iceServers: g.webrtcIceServers,
      serverIceServers: g.webrtcServerIceServers,
      peerTimeoutMs: g.webrtcPeerTimeoutMs,
      tcpPort: g.webrtcTcpPort,
      bindAddress: g.webrtcBindAddress,
      whipKeyframeIntervalMs: g.whipKeyframeIntervalMs,
      playoutDelayZero: g.webrtcPlayoutDelayZero,
    },
    hooks: { global: g.hooks, timeoutMs: g.hookTimeoutMs, concurrency: g.hookConcurrency, retries: g.hookRetries },
    cluster: clusterOf(g),
  };
}

/** The cluster settings (NodeName and NodeURL default, once the HTTP port is known, in cluster/). */
function clusterOf(g: Readonly<GlobalSettings>): ClusterConfig | undefined {
  if (g.clusterRedis === undefined) return undefined;
  return {
    redisUrl: g.clusterRedis,
    nodeName: g.nodeName,
    nodeUrl: g.nodeUrl?.replace(/\/$/, ''),
    nodeTtlMs: g.nodeTtlMs,
    relayIdleTimeoutMs: g.relayIdleTimeoutMs,
    relayVia: g.relayVia,
  };
}

/** 'on' is the built-in picture, 'off' none, anything else a resolved path. */
function slateOf(value: string): string | undefined {
  return value === 'off' ? undefined : value === 'on' ? 'default' : value;
}

/** A ServerConfig with every default and no sections (the built-in demo starts from it). */
export function defaultConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  const g = GLOBAL_DEFAULTS;
  const base: ServerConfig = {
    source: '(defaults)',
    ...globalFields(g),
    feeds: [],
    streams: [],
    redirects: [],
    statusAcl: Acl.loopbackOnly(),
    dynamicFeedAcl: Acl.loopbackOnly(),
    trustedProxies: undefined,
    control: undefined,
    warnings: [],
  };
  return { ...base, ...overrides };
}

/** Reads and parses a config file. Throws ConfigErrors (also when the file cannot be read). */
export async function loadConfigFile(path: string, options: ParseOptions = {}): Promise<ServerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : String(err);
    throw new ConfigErrors(path, [
      new ConfigError(path, `cannot read the config file (${reason}); check the path given with -f`),
    ]);
  }
  return parseConfigText(text, path, { checkPaths: true, ...options });
}

type OpenSection =
  { kind: 'feed'; draft: FeedDraft } | { kind: 'stream'; draft: StreamDraft } | { kind: 'redirect'; draft: RedirectDraft };

interface Problem {
  line: number;
  message: string;
}

interface Reporter {
  readonly error: (line: number, message: string) => void;
  readonly warn: (line: number, message: string) => void;
}

/**
 * Parses config text. `source` names the file in messages (`source:line`). Throws ConfigErrors with every error found;
 * warnings are returned in `config.warnings`.
 */
export async function parseConfigText(text: string, source: string, options: ParseOptions = {}): Promise<ServerConfig> {
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const where = (line: number): string => `${source}:${line}`;
  const reporter: Reporter = {
    error: (line, message) => void errors.push({ line, message }),
    warn: (line, message) => void warnings.push({ line, message }),
  };
  const { entries, problems } = lexConfig(text);
  for (const p of problems) (p.severity === 'error' ? errors : warnings).push({ line: p.line, message: p.message });

  const allFeeds = new Map<string, number>();
  for (const e of entries) if (e.kind === 'open' && e.section === 'feed' && !allFeeds.has(e.name)) allFeeds.set(e.name, e.line);

  const state: ParseState = {
    source,
    globals: { ...GLOBAL_DEFAULTS },
    explicit: new Map(),
    feeds: [],
    streams: [],
    redirects: [],
    allFeeds,
    deferred: [],
    checkPaths: options.checkPaths ?? false,
    presetDirs: options.presetDirs ?? presetSearchDirs(),
    resolveHost: options.resolveHost ?? systemResolver,
    statusAclSpecs: [],
    dynamicFeedAclSpecs: [],
    trustedProxySpecs: [],
    control: undefined,
  };

  const siteFor = (line: number, name: string): Site => ({
    line,
    where: where(line),
    name,
    state,
    error: (message) => void errors.push({ line, message }),
    warn: (message) => void warnings.push({ line, message }),
  });

  let open: OpenSection | undefined;
  const describeOpen = (s: OpenSection): string => `<${SECTION_TAG[s.kind]} ${s.draft.name}> (line ${s.draft.line})`;

  const close = (section: OpenSection): void => {
    if (section.kind === 'stream') closeStream(section.draft, reporter);
    if (section.kind === 'redirect' && section.draft.url === undefined) {
      errors.push({ line: section.draft.line, message: `<Redirect ${section.draft.name}> has no URL; add a line URL http://…` });
    }
  };

  for (const entry of entries) {
    if (entry.kind === 'open') {
      if (open !== undefined) {
        errors.push({
          line: entry.line,
          message: `<${SECTION_TAG[entry.section]} ${entry.name}> is inside ${describeOpen(open)}: sections cannot be nested; add </${SECTION_TAG[open.kind]}> before this line`,
        });
        close(open);
      }
      open = openSection(entry.section, entry.name, entry.line, state, reporter);
      continue;
    }
    if (entry.kind === 'close') {
      const tag = SECTION_TAG[entry.section];
      if (open === undefined) {
        errors.push({ line: entry.line, message: `</${tag}> has no matching <${tag} NAME>; remove it or add the opening tag` });
      } else {
        if (open.kind !== entry.section) {
          errors.push({
            line: entry.line,
            message: `</${tag}> cannot close ${describeOpen(open)}; write </${SECTION_TAG[open.kind]}>`,
          });
        }
        close(open);
        open = undefined;
      }
      continue;
    }
    const scope = open?.kind ?? 'global';
    const directive = findDirective(entry.name);
    const inside = open !== undefined ? ` inside <${SECTION_TAG[open.kind]}>` : ' at global level';
    if (directive === undefined) {
      const suggestions = suggestDirectives(entry.name, scope);
      const hint =
        suggestions.length > 0 ? `; did you mean ${suggestions.join(' or ')}?` : '; see docs/config.md for the directives';
      errors.push({ line: entry.line, message: `unknown directive '${entry.name}'${inside}${hint}` });
      continue;
    }
    const site = siteFor(entry.line, directive.name);
    if (directive.removed !== undefined) {
      site.error(directive.removed);
      continue;
    }
    if (!directive.scopes.includes(scope)) {
      site.error(`${directive.name} is not allowed${inside}; ${placement(directive.scopes)}`);
      continue;
    }
    if (directive.deprecated !== undefined) site.warn(directive.deprecated);
    if (directive.obsolete !== undefined) site.warn(directive.obsolete);
    const args = entry.args;
    if (args.length < directive.minArgs) {
      site.error(
        `${directive.name} needs ${directive.minArgs === 1 ? 'a value' : `${directive.minArgs} values`}: ${directive.name} ${directive.syntax}`,
      );
      continue;
    }
    let used = args;
    if (args.length > directive.maxArgs) {
      const extra = args.slice(directive.maxArgs).join(' ');
      const comment = directive.maxArgs > 0 ? '; quote a value that contains spaces' : '';
      if (directive.origin === 'ffserver') site.warn(`${directive.name}: extra text '${extra}' is ignored${comment}`);
      else {
        site.error(
          `${directive.name} takes ${directive.maxArgs === 0 ? 'no value' : `at most ${directive.maxArgs} value${directive.maxArgs === 1 ? '' : 's'}`}, got extra '${extra}'${comment}`,
        );
        continue;
      }
      used = args.slice(0, directive.maxArgs);
    }
    const target: ScopeTarget =
      open === undefined
        ? { scope: 'global' }
        : open.kind === 'feed'
          ? { scope: 'feed', feed: open.draft }
          : open.kind === 'stream'
            ? { scope: 'stream', stream: open.draft }
            : { scope: 'redirect', redirect: open.draft };
    try {
      directive.run(target, used, site);
    } catch (err) {
      if (err instanceof BadValue) site.error(err.message);
      else if (err instanceof ConfigError) errors.push({ line: entry.line, message: err.message.slice(site.where.length + 2) });
      else throw err;
    }
  }
  if (open !== undefined) {
    errors.push({
      line: open.draft.line,
      message: `${describeOpen(open)} is never closed; add </${SECTION_TAG[open.kind]}> at its end`,
    });
    close(open);
  }

  // Host names and ACLs: resolve everything at once, collecting failures as errors.
  await Promise.all(state.deferred.map((task) => task()));
  const acls = new Map<FeedDraft | StreamDraft, Acl>();
  await Promise.all(
    [...state.feeds, ...state.streams].map(async (draft) => {
      const { rules, errors: aclErrors } = await resolveAclRules(draft.aclSpecs, state.resolveHost);
      for (const e of aclErrors) errors.push({ line: lineOf(e, source), message: e.message.slice(e.where.length + 2) });
      acls.set(draft, Acl.fromRules(rules));
    }),
  );

  const statusAcl = await resolveAclRules(state.statusAclSpecs, state.resolveHost);
  for (const e of statusAcl.errors) errors.push({ line: lineOf(e, source), message: e.message.slice(e.where.length + 2) });
  const dynamicFeedAcl = await resolveAclRules(state.dynamicFeedAclSpecs, state.resolveHost);
  for (const e of dynamicFeedAcl.errors) errors.push({ line: lineOf(e, source), message: e.message.slice(e.where.length + 2) });
  const trustedProxies = await resolveAclRules(state.trustedProxySpecs, state.resolveHost);
  for (const e of trustedProxies.errors) errors.push({ line: lineOf(e, source), message: e.message.slice(e.where.length + 2) });

  checkGlobals(state, reporter);

  if (errors.length > 0) {
    const sorted = [...errors].sort((a, b) => a.line - b.line);
    throw new ConfigErrors(
      source,
      sorted.map((e) => new ConfigError(where(e.line), e.message)),
    );
  }
  return build(
    state,
    acls,
    state.statusAclSpecs.length > 0 ? Acl.fromRules(statusAcl.rules) : Acl.loopbackOnly(),
    state.dynamicFeedAclSpecs.length > 0 ? Acl.fromRules(dynamicFeedAcl.rules) : Acl.loopbackOnly(),
    state.trustedProxySpecs.length > 0 ? Acl.fromRules(trustedProxies.rules) : undefined,
    [...warnings].sort((a, b) => a.line - b.line).map((w) => ({ where: where(w.line), message: w.message })),
  );
}

function lineOf(err: ConfigError, source: string): number {
  const n = Number(err.where.slice(source.length + 1));
  return Number.isInteger(n) ? n : 0;
}

function placement(scopes: readonly string[]): string {
  const names = scopes.map((s) =>
    s === 'global' ? 'at global level (outside any section)' : `inside <${SECTION_TAG[s as SectionKind]}>`,
  );
  return `it belongs ${names.join(' or ')}`;
}

function openSection(kind: SectionKind, name: string, line: number, state: ParseState, report: Reporter): OpenSection {
  const error = report.error;
  const where = (l: number): string => `${state.source}:${l}`;
  if (kind === 'feed') {
    const draft = newFeedDraft(name, line, where(line));
    const dup = findByName(state.feeds, name);
    const sameKey = findFeedConfig(state.feeds, draft.key);
    if (dup !== undefined) error(line, `feed '${name}' is already defined at line ${dup.line}; feed names must be unique`);
    else if (sameKey !== undefined)
      error(
        line,
        `feed '${name}' has the same URL name '${draft.key}' as feed '${sameKey.name}' (line ${sameKey.line}); rename one of them`,
      );
    else if (draft.key === '') error(line, `feed '${name}' needs a name before .ffm`);
    else state.feeds.push(draft);
    return { kind, draft };
  }
  if (kind === 'stream') {
    const draft = newStreamDraft(name, line, where(line), state.globals.useDefaults);
    const dup = findByName(state.streams, name);
    if (dup !== undefined)
      error(
        line,
        `stream '${name}' is already defined at line ${dup.line}; stream names must be unique (in any case: they are URLs)`,
      );
    else {
      const feed = findByName(state.feeds, name);
      if (feed !== undefined)
        error(line, `stream '${name}' has the same name as the feed defined at line ${feed.line}; rename the stream`);
      else state.streams.push(draft);
    }
    return { kind, draft };
  }
  const draft = newRedirectDraft(name, line, where(line));
  const shadow = findByName([...state.feeds, ...state.streams, ...state.redirects], name);
  if (shadow !== undefined)
    report.warn(line, `redirect '${name}' has the same name as the section at line ${shadow.line}; that one is served instead`);
  state.redirects.push(draft);
  return { kind, draft };
}

/** Checks a stream when its section closes (ref §2.5–2.6). */
function closeStream(stream: StreamDraft, report: Reporter): void {
  const error = (message: string, line = stream.line): void => report.error(line, message);
  const warn = (message: string, line = stream.line): void => report.warn(line, message);
  const format = stream.format;
  if (format === undefined) {
    const html = /\.html?$/i.test(stream.name) || /stat/i.test(stream.name);
    error(
      html
        ? `stream '${stream.name}' looks like a status page but has no Format; add Format status`
        : `cannot tell the format of stream '${stream.name}' from its name; add a Format line (known formats: ${knownFormatNames().join(', ')})`,
    );
    return;
  }
  if (format.support === 'obsolete' && format.alternative !== undefined) {
    warn(
      `stream '${stream.name}': ${format.alternative}${stream.formatExplicit ? '' : ` (format guessed from the name '${stream.name}')`}`,
      stream.formatLine,
    );
  }
  if (format.support === 'status') {
    if (stream.feed !== undefined) warn(`Feed is ignored in the status stream '${stream.name}'`, stream.feedLine);
    if (stream.encoderDirectives[0] !== undefined)
      warn(`encoder directives are ignored in the status stream '${stream.name}'`, stream.encoderDirectives[0].line);
    return;
  }
  if (stream.feed === undefined && stream.file === undefined) {
    if (stream.feedLine === undefined)
      error(`stream '${stream.name}' has neither Feed nor File; add Feed NAME (a <Feed> defined above) or File PATH`);
    return;
  }
  if (stream.feed !== undefined && stream.file !== undefined) {
    error(`stream '${stream.name}' has both Feed and File; keep one of them`);
    return;
  }
  if (stream.file !== undefined && stream.encoderDirectives[0] !== undefined) {
    warn(
      `encoder directives are ignored for the file stream '${stream.name}' (its file is served as is)`,
      stream.encoderDirectives[0].line,
    );
  }
  if (stream.multicastLine === undefined && (stream.multicastPort !== undefined || stream.multicastTtl !== undefined)) {
    warn(`stream '${stream.name}': MulticastPort/MulticastTTL have no effect without MulticastAddress`);
  }
  const e = stream.encoding;
  if (e.qmin !== undefined && e.qmax !== undefined && e.qmin > e.qmax) {
    error(`stream '${stream.name}': VideoQMin ${e.qmin} is above VideoQMax ${e.qmax}`);
  }
  if (stream.feed !== undefined && stream.noAudio && stream.noVideo) {
    warn(`stream '${stream.name}' has both NoAudio and NoVideo: it carries nothing`);
  }
  // NoDefaults: ffserver required these for every encoded track (ref §2.6).
  if (
    stream.feed !== undefined &&
    !e.useDefaults &&
    (stream.encoderDirectives.length > 0 || format.support === 'needs-encoding')
  ) {
    if (hasAudio(stream, format)) {
      if (e.audioBitRateKbps === undefined)
        error(`stream '${stream.name}' uses NoDefaults but sets no AudioBitRate; add one or NoAudio`);
      if (e.audioSampleRate === undefined)
        error(`stream '${stream.name}' uses NoDefaults but sets no AudioSampleRate; add one or NoAudio`);
    }
    if (hasVideo(stream, format) && e.videoSize === undefined) {
      error(`stream '${stream.name}' uses NoDefaults but sets no VideoSize; add one or NoVideo`);
    }
  }
}

function hasAudio(stream: StreamDraft, format: FormatInfo): boolean {
  return !stream.noAudio && (stream.encoding.audioCodec ?? format.defaultAudioCodec) !== undefined;
}

function hasVideo(stream: StreamDraft, format: FormatInfo): boolean {
  return !stream.noVideo && (stream.encoding.videoCodec ?? format.defaultVideoCodec) !== undefined;
}

function checkGlobals(state: ParseState, report: Reporter): void {
  const { error, warn } = report;
  const g = state.globals;
  // Issue 18 class 5: a config file opens only the listeners it asks for, where it asks. RTSP listens only
  // with RTSPPort or RTSPBindAddress, as in ffserver (the demo, without a config, keeps it on); every listener
  // without a bind address of its own binds to HTTPBindAddress (HTTPBindAddress 127.0.0.1 left RTMP and RTSP
  // open on 0.0.0.0).
  if (!state.explicit.has('rtspPort') && !state.explicit.has('rtspBindAddress')) g.rtspPort = undefined;
  if (!state.explicit.has('rtspBindAddress')) g.rtspBindAddress = g.httpBindAddress;
  if (!state.explicit.has('rtmpBindAddress')) g.rtmpBindAddress = g.httpBindAddress;
  if (!state.explicit.has('srtPort') && !state.explicit.has('srtBindAddress')) g.srtPort = undefined;
  if (!state.explicit.has('srtBindAddress')) g.srtBindAddress = g.httpBindAddress;
  const wildcard = g.httpBindAddress === '0.0.0.0' || g.httpBindAddress === '::';
  if (!state.explicit.has('webrtcBindAddress') && !wildcard) g.webrtcBindAddress = g.httpBindAddress;
  const clientsLine = state.explicit.get('maxClients');
  if (clientsLine === undefined) {
    g.maxClients = Math.min(g.maxClients, g.maxHttpConnections);
  } else if (g.maxClients > g.maxHttpConnections) {
    error(
      clientsLine,
      `MaxClients (${g.maxClients}) is higher than MaxHTTPConnections (${g.maxHttpConnections}); raise MaxHTTPConnections or lower MaxClients`,
    );
  }
  // RTMP is on by default; an old config that already uses 1935 for something else keeps working without it.
  if (!state.explicit.has('rtmpPort') && (g.httpPort === g.rtmpPort || g.rtspPort === g.rtmpPort)) {
    const line = state.explicit.get(g.httpPort === g.rtmpPort ? 'httpPort' : 'rtspPort') ?? 0;
    warn(
      line,
      `RTMP is off: its default port ${g.rtmpPort} is taken by ${g.httpPort === g.rtmpPort ? 'HTTPPort' : 'RTSPPort'}; set RTMPPort to turn it on`,
    );
    g.rtmpPort = 0;
  }
  // Likewise RTSP on its default port, when an old config gives 5454 to another listener.
  if (!state.explicit.has('rtspPort') && g.rtspPort !== undefined && (g.httpPort === g.rtspPort || g.rtmpPort === g.rtspPort)) {
    const line = state.explicit.get(g.httpPort === g.rtspPort ? 'httpPort' : 'rtmpPort') ?? 0;
    warn(
      line,
      `RTSP is off: its default port ${g.rtspPort} is taken by ${g.httpPort === g.rtspPort ? 'HTTPPort' : 'RTMPPort'}; set RTSPPort to turn it on`,
    );
    g.rtspPort = undefined;
  }
  for (const key of ['httpsPort', 'rtmpsPort'] as const) {
    const line = state.explicit.get(key);
    if (line === undefined || g[key] === undefined) continue;
    if (g.sslCertificate === undefined || g.sslCertificateKey === undefined) {
      warn(
        line,
        `${key === 'httpsPort' ? 'HTTPS' : 'RTMPS'} is off: ${key === 'httpsPort' ? 'HTTPSPort' : 'RTMPSPort'} needs SSLCertificate FILE and SSLCertificateKey FILE`,
      );
      g[key] = undefined;
    }
  }
  const listeners: { name: string; port: number; line: number }[] = [
    ...(g.httpsPort !== undefined ? [{ name: 'HTTPSPort', port: g.httpsPort, line: state.explicit.get('httpsPort') ?? 0 }] : []),
    ...(g.rtmpsPort !== undefined ? [{ name: 'RTMPSPort', port: g.rtmpsPort, line: state.explicit.get('rtmpsPort') ?? 0 }] : []),
    { name: 'HTTPPort', port: g.httpPort, line: state.explicit.get('httpPort') ?? 0 },
    ...(g.rtspPort !== undefined ? [{ name: 'RTSPPort', port: g.rtspPort, line: state.explicit.get('rtspPort') ?? 0 }] : []),
    ...(g.rtmpPort !== 0 ? [{ name: 'RTMPPort', port: g.rtmpPort, line: state.explicit.get('rtmpPort') ?? 0 }] : []),
  ];
  for (let i = 0; i < listeners.length; i++) {
    for (let j = i + 1; j < listeners.length; j++) {
      const a = listeners[i];
      const b = listeners[j];
      if (a !== undefined && b !== undefined && a.port === b.port) {
        error(Math.max(a.line, b.line), `${a.name} and ${b.name} are both ${a.port}; give each listener its own port`);
      }
    }
  }
  for (const s of state.streams) {
    if (s.format?.support === 'rtp' && g.rtspPort === undefined && s.multicastLine === undefined) {
      warn(s.line, `stream '${s.name}' uses Format rtp, which is served over RTSP, but RTSP is off (RTSPPort 0)`);
    }
  }
  for (const f of state.feeds) {
    if (f.file === undefined) {
      if (f.fileMaxSizeLine !== undefined) {
        warn(
          f.fileMaxSizeLine,
          `FileMaxSize has no effect: feed '${f.name}' has no File (ffserver defaulted to /tmp/${f.name}.ffm; Feedcast keeps a feed file only when File is given)`,
        );
      }
      if (f.truncateLine !== undefined) warn(f.truncateLine, `Truncate has no effect: feed '${f.name}' has no File`);
    } else if (f.readOnly && f.truncate && f.truncateLine !== undefined) {
      warn(f.truncateLine, `Truncate has no effect on the ReadOnlyFile of feed '${f.name}'`);
    }
  }
}

function bandwidthOf(stream: StreamDraft, format: FormatInfo): number {
  if (stream.feed === undefined || format.support === 'status') return 0;
  const e = stream.encoding;
  const fallback = e.useDefaults ? FFSERVER_ENCODER_DEFAULTS.audioBitRateKbps : 0;
  const audio = hasAudio(stream, format) ? (e.audioBitRateKbps ?? fallback) : 0;
  const video = hasVideo(stream, format)
    ? (e.videoBitRateKbps ?? (e.useDefaults ? FFSERVER_ENCODER_DEFAULTS.videoBitRateKbps : 0))
    : 0;
  return Math.round(audio + video);
}

function build(
  state: ParseState,
  acls: ReadonlyMap<FeedDraft | StreamDraft, Acl>,
  statusAcl: Acl,
  dynamicFeedAcl: Acl,
  trustedProxies: Acl | undefined,
  warnings: ConfigWarning[],
): ServerConfig {
  const g: GlobalSettings = state.globals;
  const launchHost = g.httpBindAddress === '0.0.0.0' || g.httpBindAddress === '::' ? '127.0.0.1' : g.httpBindAddress;
  const hostPart = launchHost.includes(':') ? `[${launchHost}]` : launchHost;
  const feeds: FeedConfig[] = state.feeds.map((f) => ({
    name: f.name,
    key: f.key,
    where: f.where,
    file: f.file,
    readOnly: f.readOnly,
    fileMaxSizeBytes: f.fileMaxSizeBytes,
    fileSyncMs: f.fileSyncMs,
    truncate: f.truncate,
    launch: f.launch,
    source: f.source,
    loop: f.loop,
    onDemand: f.onDemand,
    launchUrl: f.launch !== undefined ? `http://${hostPart}:${g.httpPort}/${f.name}` : undefined,
    publishSecret: f.publishSecret,
    srtPassphrase: f.srtPassphrase,
    acl: acls.get(f) ?? Acl.allowAll(),
    dynamicAcl: f.dynamicAcl,
    requireReadToken: f.requireReadToken,
    maxReaders: f.maxReaders,
    hooks: f.hooks,
    record: f.record
      ? {
          pathPattern: f.recordPath ?? RECORD_DEFAULT_PATHS[f.recordFormat],
          segmentSeconds: f.recordSegmentSeconds,
          format: f.recordFormat,
          retentionSeconds: f.recordRetentionSeconds,
          retentionBytes: f.recordRetentionBytes,
        }
      : undefined,
    offlineSlate: slateOf(f.offlineSlate ?? g.offlineSlate),
    hlsDvrWindowSeconds: f.hlsDvrWindowSeconds,
  }));
  const streams: StreamConfig[] = [];
  for (const s of state.streams) {
    if (s.format === undefined) continue;
    const transcoding = s.feed !== undefined && s.format.support !== 'status';
    streams.push({
      name: s.name,
      where: s.where,
      feed: s.format.support === 'status' ? undefined : s.feed,
      file: s.file,
      format: s.format,
      inputFormat: s.inputFormat,
      prerollSeconds: s.prerollSeconds,
      startSendOnKey: s.startSendOnKey,
      maxTimeSeconds: s.maxTimeSeconds,
      metadata: s.metadata,
      noAudio: s.noAudio,
      noVideo: s.noVideo,
      acl: acls.get(s) ?? Acl.allowAll(),
      dynamicAcl: s.dynamicAcl,
      requireReadToken: s.requireReadToken,
      maxReaders: s.maxReaders,
      rtspOption: s.rtspOption,
      multicast:
        s.multicastAddress !== undefined
          ? { address: s.multicastAddress, port: s.multicastPort, ttl: s.multicastTtl ?? 16 }
          : undefined,
      loop: s.loop,
      alwaysOn: s.alwaysOn,
      faviconUrl: s.faviconUrl,
      encoding: s.encoding,
      needsTranscode: transcoding && s.encoderDirectives.length > 0,
      encoderDirectives: [...new Set(s.encoderDirectives.map((d) => d.name))],
      bandwidthKbps: bandwidthOf(s, s.format),
    });
  }
  return {
    source: state.source,
    ...globalFields(g),
    feeds,
    streams,
    statusAcl,
    dynamicFeedAcl,
    trustedProxies,
    control: state.control,
    redirects: state.redirects
      .filter((r): r is RedirectDraft & { url: string } => r.url !== undefined)
      .map((r) => ({ name: r.name, url: r.url, where: r.where })),
    warnings,
  };
}
