// The one authorisation policy of every protocol (docs/security.md): feed and stream ACLs (static and
// DynamicACL files), publish secrets, HMAC-signed read URLs, JWTs (HS256 key or RS256 JWKS, RFC 7519/7517),
// the embedding hooks (onPublish/onRead) and the AuthCallback. Decides before any media flows, and
// says when the credentials that let a reader in expire, so that protocols cut it then (cutAtExpiry).

import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  compactVerify,
  createLocalJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { readFile, stat } from 'node:fs/promises';
import type { FeedConfig, ServerConfig, StreamConfig } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { Acl, parseAclRule, resolveAclRules, type AclRuleSpec } from '../config/acl.js';
import { sameSecret } from './secrets.js';
import { findByName, findFeedConfig, layerParentOf } from '../config/names.js';

export type AuthAction = 'publish' | 'read';

/** What a client presented; each protocol fills what it carries (URL query, headers, RTMP stream name). */
export interface AuthCredentials {
  /** `?secret=` or the password of RTSP Basic: the feed's PublishSecret. */
  secret?: string | undefined;
  /** `?token=` with `?expires=`: a signed read URL; or a JWT (three dot-separated parts). */
  token?: string | undefined;
  expires?: string | undefined;
  /** `Authorization: Bearer JWT` or `?jwt=`. */
  jwt?: string | undefined;
}

export interface AuthRequest {
  action: AuthAction;
  /** http, hls, rtmp, rtsp, webrtc ... (passed to hooks and the callback). */
  protocol: string;
  /** The feed key (publishing, or reading the feed itself or a stream of it). */
  feed: string | undefined;
  /** The declared `<Stream>` name being read, if any. */
  stream: string | undefined;
  /** Client address, as the protocols report it (`1.2.3.4`, `::1`). */
  address: string;
  credentials: AuthCredentials;
}

export type AuthDecision =
  /** `expiresAt` (ms since the epoch): the read token or JWT that let a reader in expires then (see cutAtExpiry). */
  | { readonly kind: 'allow'; readonly expiresAt?: number }
  | { readonly kind: 'deny'; readonly status: 401 | 403 | 404 | 503; readonly reason: string }
  | { readonly kind: 'redirect'; readonly location: string };

/** What an embedding program's hook returns; `undefined` or `true` allow, `false` denies with 403. */
export type AuthHookResult = AuthDecision | boolean | undefined;
export type AuthHook = (request: Readonly<AuthRequest>) => AuthHookResult | Promise<AuthHookResult>;

export interface AuthHooks {
  onPublish?: AuthHook | undefined;
  onRead?: AuthHook | undefined;
}

const ALLOW: AuthDecision = Object.freeze({ kind: 'allow' });

type Refusal = Extract<AuthDecision, { kind: 'deny' }>;
/** The credentials passed; `expiresAt` (ms) when the ones that were needed run out. */
interface Admitted {
  readonly kind: 'admitted';
  readonly expiresAt: number | undefined;
}

export function deny(status: 401 | 403 | 404 | 503, reason: string): AuthDecision {
  return refusal(status, reason);
}

function refusal(status: 401 | 403 | 404 | 503, reason: string): Refusal {
  return { kind: 'deny', status, reason };
}

/** The earlier of two expiry times (ms); a value that is not a finite number (a hook's mistake) is none. */
function earliest(a: number | undefined, b: number | undefined): number | undefined {
  const times = [a, b].filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return times.length === 0 ? undefined : Math.min(...times);
}

// ---------------------------------------------------------------------------------------------------------------
// Read tokens: HMAC-SHA256(key, "RESOURCE\nEXPIRES") in base64url, where RESOURCE is the feed key or stream name.

/** The string a read token signs. */
function tokenPayload(resource: string, expires: number): string {
  return `${resource}\n${expires}`;
}

/** Mints a read token for a feed key or stream name, valid until `expires` (UNIX seconds). */
export function mintReadToken(key: string, resource: string, expires: number): string {
  return createHmac('sha256', key).update(tokenPayload(resource, expires)).digest('base64url');
}

/** `?token=...&expires=...` for a resource, valid for `seconds`. */
export function signedQuery(key: string, resource: string, seconds: number, now = Date.now()): string {
  const expires = Math.floor(now / 1000) + Math.round(seconds);
  return `token=${mintReadToken(key, resource, expires)}&expires=${expires}`;
}

/** When a valid read token's `expires=` value ends its validity, in ms since the epoch. */
export function readTokenExpiresAt(expiresText: string): number {
  return Number(expiresText) * 1000;
}

/** Why a read token does not open `resource`, or undefined when it does. */
export function checkReadToken(
  key: string,
  resource: string,
  token: string,
  expiresText: string | undefined,
  now = Date.now(),
): string | undefined {
  if (expiresText === undefined || !/^\d{1,12}$/.test(expiresText)) return 'the read token has no valid expires= value';
  const expires = Number(expiresText);
  if (expires * 1000 < now) return 'the read token has expired';
  const expected = Buffer.from(mintReadToken(key, resource, expires));
  const given = Buffer.from(token);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'the read token is not valid for this URL';
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// JWT (RFC 7519) with HS256 (shared key) or RS256 (JWKS, RFC 7517). Claims: exp/nbf, `feeds` (names or '*'),
// `actions` ('read', 'publish').

export interface JwtClaims {
  exp?: number;
  nbf?: number;
  feeds?: string[] | string;
  actions?: string[] | string;
  [claim: string]: unknown;
}

export interface JwtKeys {
  hs256: string | undefined;
  /** RS256 public keys (a JWKS, RFC 7517), or none. */
  rs256: RsaKeySet | undefined;
}

/** The RS256 keys of a JWKS, as jose selects among them (by `kid`, or the one key that fits). */
export interface RsaKeySet {
  readonly size: number;
  readonly getKey: JWTVerifyGetKey;
}

/** The RSA signing keys (kty RSA, alg RS256 or none, use sig or none) of a JWKS document. */
export function rsaKeySet(jwks: { keys?: unknown }, where = 'JWKS'): RsaKeySet {
  if (!Array.isArray(jwks.keys)) throw new Error(`${where}: not a JWKS (no "keys" array)`);
  const keys = (jwks.keys as Record<string, unknown>[]).filter(
    (k) =>
      typeof k === 'object' &&
      k !== null &&
      k['kty'] === 'RSA' &&
      (k['alg'] === undefined || k['alg'] === 'RS256') &&
      (k['use'] === undefined || k['use'] === 'sig'),
  ) as unknown as JWK[];
  return { size: keys.length, getKey: createLocalJWKSet({ keys }) };
}

const JWT_ALGORITHMS = new Set(['HS256', 'RS256']);

/**
 * Verifies a compact JWS (jose: signature, algorithm, key selection) and its time claims (`exp` exactly,
 * `nbf` with 60 s for clock skew); returns the claims or why it is refused. Never throws.
 */
export async function verifyJwt(token: string, keys: JwtKeys, now = Date.now()): Promise<JwtClaims | string> {
  if (token.length > 8192) return 'the JWT is too long';
  if (token.split('.').length !== 3) return 'the JWT is not three dot-separated parts';
  let alg: unknown;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch {
    return 'the JWT is not base64url JSON';
  }
  if (typeof alg !== 'string' || !JWT_ALGORITHMS.has(alg)) {
    return `JWT algorithm ${typeof alg === 'string' ? alg.slice(0, 20) : '?'} is not accepted (HS256 or RS256)`;
  }
  let payload: Uint8Array;
  try {
    if (alg === 'HS256') {
      if (keys.hs256 === undefined) return 'HS256 JWTs are not accepted (no JWTKey)';
      ({ payload } = await compactVerify(token, new TextEncoder().encode(keys.hs256), { algorithms: ['HS256'] }));
    } else {
      if (keys.rs256 === undefined || keys.rs256.size === 0) return 'no JWKS key matches the JWT (kid)';
      ({ payload } = await compactVerify(token, keys.rs256.getKey, { algorithms: ['RS256'] }));
    }
  } catch (err) {
    if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no JWKS key matches the JWT (kid)';
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'the JWT signature is wrong';
    return `the JWT is not a valid JWS (${err instanceof joseErrors.JOSEError ? err.code : 'unreadable'})`;
  }
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return 'the JWT is not base64url JSON';
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return 'the JWT claims are not objects';
  const c = claims as JwtClaims;
  const nowSeconds = now / 1000;
  if (c.exp !== undefined && (typeof c.exp !== 'number' || c.exp < nowSeconds)) return 'the JWT has expired';
  if (c.nbf !== undefined && (typeof c.nbf !== 'number' || c.nbf > nowSeconds + 60)) return 'the JWT is not valid yet';
  return c;
}

function listClaim(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/[\s,]+/).filter((x) => x !== '');
  if (Array.isArray(value)) return value.filter((x): x is string => typeof x === 'string');
  return [];
}

/** Whether the claims allow `action` on one of `resources` (feed key, stream name). */
export function jwtGrants(claims: JwtClaims, action: AuthAction, resources: readonly string[]): boolean {
  const actions = listClaim(claims.actions);
  const feeds = listClaim(claims.feeds);
  if (!actions.includes(action) && !actions.includes('*')) return false;
  return feeds.includes('*') || resources.some((r) => feeds.includes(r));
}

/** Reads a JWKS file: its RSA keys usable for RS256. */
export async function loadJwks(path: string): Promise<RsaKeySet> {
  return rsaKeySet(JSON.parse(await readFile(path, 'utf8')) as { keys?: unknown }, path);
}

// ---------------------------------------------------------------------------------------------------------------
// Files re-read when they change: DynamicACL and the JWKS.

interface Watched<T> {
  signature: string;
  value: T;
}

/** Caches the parse of a file, re-reading it when its mtime, size or inode change (checked on every use). */
class FileCache<T> {
  private readonly entries = new Map<string, Watched<T> | Promise<Watched<T>>>();
  private readonly parse: (path: string) => Promise<T>;
  private readonly missing: T;

  constructor(parse: (path: string) => Promise<T>, missing: T) {
    this.parse = parse;
    this.missing = missing;
  }

  async get(path: string): Promise<T> {
    let signature: string;
    try {
      const st = await stat(path);
      signature = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.missing;
      throw err;
    }
    const cached = await this.entries.get(path);
    if (cached !== undefined && cached.signature === signature) return cached.value;
    const loading = this.parse(path).then((value) => ({ signature, value }));
    this.entries.set(path, loading);
    try {
      const entry = await loading;
      this.entries.set(path, entry);
      return entry.value;
    } catch (err) {
      this.entries.delete(path);
      throw err;
    }
  }
}

/** Parses a DynamicACL file: `ACL allow|deny ...` lines (the `ACL` word is optional), `#` comments. */
export async function parseAclFile(path: string): Promise<Acl> {
  const text = await readFile(path, 'utf8');
  const specs: AclRuleSpec[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const words = line.split(/\s+/);
    if (words[0]?.toUpperCase() === 'ACL') words.shift();
    specs.push(parseAclRule(words, `${path}:${i + 1}`));
  });
  const { rules, errors } = await resolveAclRules(specs);
  if (errors[0] !== undefined) throw errors[0];
  return Acl.fromRules(rules);
}

// ---------------------------------------------------------------------------------------------------------------
// The policy.

/** What the policy reads: the config in force (replaced by a reload) and the log. */
export interface PolicyContext {
  readonly config: ServerConfig;
  readonly log: Logger;
}

export interface AuthPolicyOptions {
  /** fetch, replaceable in tests. */
  fetch?: typeof fetch;
}

export class AuthPolicy {
  private readonly ctx: PolicyContext;
  private hooks: AuthHooks = {};
  private readonly acls = new FileCache<Acl | undefined>(parseAclFile, undefined);
  private readonly jwks = new FileCache<RsaKeySet | undefined>(loadJwks, undefined);
  private readonly fetchFn: typeof fetch;
  /** Files whose last read failed, logged once per failure. */
  private readonly badFiles = new Set<string>();

  constructor(ctx: PolicyContext, options: AuthPolicyOptions = {}) {
    this.ctx = ctx;
    this.fetchFn = options.fetch ?? fetch;
  }

  /** Sets the embedding program's hooks (replacing earlier ones). */
  setHooks(hooks: AuthHooks): void {
    this.hooks = { ...hooks };
  }

  authorizePublish(request: Omit<AuthRequest, 'action' | 'stream'>): Promise<AuthDecision> {
    return this.authorize({ ...request, action: 'publish', stream: undefined });
  }

  /** ACL → credentials → hook → callback; the first refusal wins. Never throws. */
  async authorize(asked: AuthRequest): Promise<AuthDecision> {
    // A simulcast layer (`cam~h`) is read as its feed: the feed's ACL, tokens, hooks and callback.
    const parent = asked.feed !== undefined ? layerParentOf(asked.feed) : undefined;
    const request = parent !== undefined ? { ...asked, feed: parent } : asked;
    try {
      const config = this.ctx.config;
      const feed = request.feed !== undefined ? findFeedConfig(config.feeds, request.feed) : undefined;
      const stream = request.stream !== undefined ? findByName(config.streams, request.stream) : undefined;
      const acl = await this.aclCheck(request, feed, stream);
      if (acl !== undefined) return acl;
      const creds = await this.credentialCheck(config, request, feed, stream);
      if (creds.kind !== 'admitted') return creds;
      // Only a read the credentials were needed for ends with them (a reader of an open feed keeps playing).
      let expiresAt = request.action === 'read' ? creds.expiresAt : undefined;
      const hook = request.action === 'publish' ? this.hooks.onPublish : this.hooks.onRead;
      if (hook !== undefined) {
        const decision = normalise(await hook(request), 'refused by the server');
        if (decision.kind !== 'allow') return decision;
        expiresAt = earliest(expiresAt, decision.expiresAt);
      }
      const decision = config.auth.callbackUrl !== undefined ? await this.callback(config, request) : ALLOW;
      if (decision.kind !== 'allow') return decision;
      expiresAt = earliest(expiresAt, decision.expiresAt);
      return expiresAt !== undefined ? { kind: 'allow', expiresAt } : ALLOW;
    } catch (err) {
      this.ctx.log.error('authorisation failed', { action: request.action, from: request.address, err });
      return deny(503, 'the authorisation check failed; the server log has the details');
    }
  }

  private async aclCheck(
    request: AuthRequest,
    feed: FeedConfig | undefined,
    stream: StreamConfig | undefined,
  ): Promise<AuthDecision | undefined> {
    const verb = request.action === 'publish' ? 'publish to' : 'read';
    const checks: { acl: Acl; dynamic: string | undefined; what: string }[] = [];
    if (stream !== undefined)
      checks.push({ acl: stream.acl, dynamic: stream.dynamicAcl, what: `${stream.name} (ACL of the stream)` });
    else if (feed !== undefined)
      checks.push({ acl: feed.acl, dynamic: feed.dynamicAcl, what: `feed ${feed.key} (the feed's ACL)` });
    else if (request.action === 'publish')
      checks.push({
        acl: this.ctx.config.dynamicFeedAcl,
        dynamic: undefined,
        what: `feed ${request.feed ?? '?'} (it is not declared: DynamicFeedACL says who may publish to such feeds)`,
      });
    for (const c of checks) {
      let acl = c.acl;
      if (c.dynamic !== undefined) {
        try {
          acl = (await this.acls.get(c.dynamic)) ?? Acl.allowAll();
          this.badFiles.delete(c.dynamic);
        } catch (err) {
          if (!this.badFiles.has(c.dynamic)) {
            this.badFiles.add(c.dynamic);
            this.ctx.log.error('DynamicACL file unreadable: denying everyone until it is fixed', { file: c.dynamic, err });
          }
          return deny(403, `access to ${c.what.replace(/ \(.*\)$/, '')} is closed: its DynamicACL file is unreadable`);
        }
      }
      if (!acl.allows(request.address)) return deny(403, `Your address ${request.address} may not ${verb} ${c.what}.`);
    }
    return undefined;
  }

  /** A grant (with the JWT's `exp` in ms, if it has one), why the JWT does not grant, or undefined when none was given. */
  private async jwtFor(
    config: ServerConfig,
    request: AuthRequest,
    resources: string[],
  ): Promise<{ expiresAt: number | undefined } | string | undefined> {
    const c = request.credentials;
    const jwt = c.jwt ?? (c.token !== undefined && c.token.split('.').length === 3 ? c.token : undefined);
    if (jwt === undefined) return undefined;
    const rs256 = config.auth.jwksFile !== undefined ? await this.jwks.get(config.auth.jwksFile) : undefined;
    if (config.auth.jwtKey === undefined && (rs256?.size ?? 0) === 0) return 'JWTs are not accepted here (no JWTKey or JWKSFile)';
    const claims = await verifyJwt(jwt, { hs256: config.auth.jwtKey, rs256 });
    if (typeof claims === 'string') return claims;
    return jwtGrants(claims, request.action, resources)
      ? { expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : undefined }
      : `the JWT does not grant ${request.action} on ${resources.join(' or ')}`;
  }

  /** Refuses, or admits (with when the credentials that were needed expire). */
  private async credentialCheck(
    config: ServerConfig,
    request: AuthRequest,
    feed: FeedConfig | undefined,
    stream: StreamConfig | undefined,
  ): Promise<Refusal | Admitted> {
    const c = request.credentials;
    const admitted = (expiresAt?: number): Admitted => ({ kind: 'admitted', expiresAt });
    if (request.action === 'publish') {
      const secret = feed?.publishSecret;
      if (secret === undefined) return admitted();
      if (c.secret !== undefined && sameSecret(c.secret, secret)) return admitted();
      const jwt = await this.jwtFor(config, request, [request.feed ?? '']);
      if (typeof jwt === 'object') return admitted(jwt.expiresAt);
      if (c.secret !== undefined) return refusal(403, `Wrong publish secret for feed ${request.feed ?? '?'}.`);
      if (jwt !== undefined) return refusal(403, `Publishing to feed ${request.feed ?? '?'} refused: ${jwt}.`);
      return refusal(401, `Feed ${request.feed ?? '?'} needs its publish secret (?secret=...) or a JWT.`);
    }
    const required = stream !== undefined ? stream.requireReadToken : (feed?.requireReadToken ?? false);
    if (!required) return admitted();
    const resource = stream?.name ?? request.feed ?? '';
    const what = stream !== undefined ? stream.name : `feed ${resource}`;
    const jwt = await this.jwtFor(config, request, [resource]);
    if (typeof jwt === 'object') return admitted(jwt.expiresAt);
    if (c.token !== undefined && c.token.split('.').length !== 3) {
      const key = config.auth.readTokenKey;
      if (key === undefined) return refusal(403, `${what} needs a read token, but the server has no ReadTokenKey.`);
      const why = checkReadToken(key, resource, c.token, c.expires);
      if (why === undefined) return admitted(readTokenExpiresAt(c.expires ?? ''));
      return refusal(403, `Reading ${what} refused: ${why}.`);
    }
    if (jwt !== undefined) return refusal(403, `Reading ${what} refused: ${jwt}.`);
    return refusal(401, `${what} needs a read token: add ?token=...&expires=... (or a JWT) to the URL.`);
  }

  private async callback(config: ServerConfig, request: AuthRequest): Promise<AuthDecision> {
    const url = config.auth.callbackUrl ?? '';
    const body = JSON.stringify({
      action: request.action,
      protocol: request.protocol,
      feed: request.feed ?? null,
      stream: request.stream ?? null,
      address: request.address,
      credentials: request.credentials,
    });
    let response: Response;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error('timeout')), config.auth.callbackTimeoutMs);
    let text = '';
    try {
      response = await this.fetchFn(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        redirect: 'manual',
        signal: abort.signal,
      });
      text = (await response.text()).slice(0, 65536);
    } catch (err) {
      this.ctx.log.warn('AuthCallback did not answer: refusing', { url, err: err instanceof Error ? err.message : String(err) });
      return deny(503, 'the authorisation service did not answer; try again later');
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 401 || response.status === 403) {
      return deny(response.status, reasonOf(text) ?? 'refused by the authorisation service');
    }
    if (response.status < 200 || response.status > 299) {
      this.ctx.log.warn('AuthCallback failed: refusing', { url, status: response.status });
      return deny(503, 'the authorisation service failed; try again later');
    }
    if (text.trim() === '') return ALLOW;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return ALLOW;
    }
    return normalise(callbackDecision(parsed), 'refused by the authorisation service');
  }
}

function reasonOf(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { reason?: unknown };
    if (typeof parsed.reason === 'string') return parsed.reason.slice(0, 300);
  } catch {
    // plain text
  }
  const t = text.trim();
  return t === '' ? undefined : t.slice(0, 300);
}

/** `{allow: true}`, `{allow: false, reason, status}`, `{redirect: URL}` or `{decision: 'allow'|'deny'|'redirect', ...}`. */
function callbackDecision(parsed: unknown): AuthHookResult {
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const o = parsed as Record<string, unknown>;
  const reason = typeof o['reason'] === 'string' ? o['reason'].slice(0, 300) : 'refused by the authorisation service';
  const status = o['status'] === 401 || o['status'] === 404 ? o['status'] : 403;
  if (typeof o['redirect'] === 'string') return { kind: 'redirect', location: o['redirect'] };
  if (o['decision'] === 'redirect' && typeof o['location'] === 'string') return { kind: 'redirect', location: o['location'] };
  if (o['allow'] === false || o['decision'] === 'deny') return deny(status, reason);
  return undefined;
}

function normalise(result: AuthHookResult, reason: string): AuthDecision {
  if (result === undefined || result === true) return ALLOW;
  if (result === false) return deny(403, reason);
  if (result.kind === 'redirect' && !/^(?:[a-z][a-z0-9+.-]*:\/\/|\/)/i.test(result.location)) {
    return deny(503, 'the authorisation redirect is not a URL');
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Expiring credentials end running readers: a reader let in by a read token or a JWT with `exp` is disconnected
// when it expires (TokenExpiryCutsReaders, on by default), as an HLS viewer is stopped by the next request.

/** The longest delay a Node timer takes (about 24.8 days); a later expiry re-arms the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** TokenExpiryCutsReaders: whether readers are disconnected when their read token or JWT expires (default on). */
export function tokenExpiryCutsReaders(config: ServerConfig): boolean {
  return config.auth.tokenExpiryCutsReaders;
}

export interface ExpiringReader {
  /** http, rtmp, rtsp, webrtc ... */
  protocol: string;
  /** The feed or stream name read. */
  target: string;
  /** The client address. */
  from: string;
}

/**
 * Calls `cut` when the credentials that admitted a reader expire (`decision.expiresAt`), with one log line
 * `read token expired`; nothing when they do not expire or TokenExpiryCutsReaders is off. Returns the
 * function that disarms it, to call when the reader goes first (idempotent). The timer never keeps the
 * process alive.
 */
export function cutAtExpiry(ctx: PolicyContext, decision: AuthDecision, reader: ExpiringReader, cut: () => void): () => void {
  if (decision.kind !== 'allow' || decision.expiresAt === undefined || !tokenExpiryCutsReaders(ctx.config)) {
    return () => undefined;
  }
  const expiresAt = decision.expiresAt;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = expiresAt - Date.now();
    if (left > MAX_TIMER_MS) {
      timer = setTimeout(arm, MAX_TIMER_MS);
    } else {
      timer = setTimeout(
        () => {
          timer = undefined;
          ctx.log.info('read token expired', { ...reader, expiredAt: new Date(expiresAt).toISOString() });
          cut();
        },
        Math.max(0, left),
      );
    }
    timer.unref();
  };
  arm();
  return () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
}

/** Credentials from a URL query and HTTP-style headers (Authorization: Bearer / Basic password). */
export function credentialsFrom(query: URLSearchParams, authorization: string | undefined): AuthCredentials {
  const creds: AuthCredentials = {};
  const secret = query.get('secret');
  const token = query.get('token');
  const expires = query.get('expires');
  const jwt = query.get('jwt');
  if (secret !== null) creds.secret = secret;
  if (token !== null) creds.token = token;
  if (expires !== null) creds.expires = expires;
  if (jwt !== null) creds.jwt = jwt;
  if (authorization !== undefined) {
    const [scheme = '', value = ''] = authorization.trim().split(/\s+/, 2);
    if (scheme.toLowerCase() === 'bearer' && value !== '') {
      if (value.split('.').length === 3) creds.jwt ??= value;
      else creds.secret ??= value;
    } else if (scheme.toLowerCase() === 'basic' && value !== '') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0) creds.secret ??= decoded.slice(colon + 1);
    }
  }
  return creds;
}

/** Query string to append to URLs a reader is given (HLS segments), so that they carry its read credentials. */
export function credentialQuery(creds: AuthCredentials): string {
  const q = new URLSearchParams();
  if (creds.token !== undefined) q.set('token', creds.token);
  if (creds.expires !== undefined) q.set('expires', creds.expires);
  if (creds.jwt !== undefined) q.set('jwt', creds.jwt);
  return q.toString();
}

const CREDENTIAL_PARAM = /([?&](?:secret|token|jwt)=)[^&#\s]*/gi;

/** A URL (or path) fit for logs: the values of secret=, token= and jwt= are replaced by ***. */
export function redactUrl(url: string | undefined): string {
  if (url === undefined) return '-';
  return url.replace(CREDENTIAL_PARAM, '$1***');
}
