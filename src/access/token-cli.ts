// `feedcast token`: mints what a reader needs to open a protected feed or stream (docs/security.md):
// a signed read URL (`?token=...&expires=...`, ReadTokenKey) or an HS256 JWT (JWTKey, RFC 7519).

import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { signedQuery, type JwtClaims } from './auth.js';

const USAGE = `Usage:
  feedcast token RESOURCE (--key KEY | --key-file FILE) [--ttl 3600] [--url URL]
      a signed read token for RESOURCE (a feed key such as camera1, or a <Stream> name) with the
      server's ReadTokenKey: prints token=...&expires=..., or URL with it appended
  feedcast token --jwt (--key KEY | --key-file FILE) --feeds a,b [--actions read] [--ttl 3600] [--url URL]
      an HS256 JWT with the server's JWTKey, granting ACTIONS (read, publish or *) on FEEDS
      (feed keys, stream names or *): prints the JWT, or URL with ?jwt=... appended

  --ttl  how long it stays valid: seconds, or a number with s, m, h or d (90m, 12h, 7d)
`;

export interface TokenCliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: TokenCliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** A command line that cannot be run as given (exit code 2). */
function usageError(detail: string): ConfigError {
  return new ConfigError('feedcast token', detail);
}

const LONGEST_TTL_SECONDS = 10 * 366 * 24 * 3600;
const UNIT_SECONDS: Readonly<Record<string, number>> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };

/** `3600`, `90m`, `12h`, `7d` -> seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(text.trim());
  const seconds = m !== null ? Math.round(Number(m[1]) * (UNIT_SECONDS[m[2] ?? ''] ?? 1)) : NaN;
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > LONGEST_TTL_SECONDS) {
    throw usageError(`--ttl ${text}: give a lifetime from 1 second to 10 years, e.g. 3600, 90m, 12h or 7d`);
  }
  return seconds;
}

/** A compact HS256 JWS of `claims` (RFC 7515 §3.1), as verifyJwt accepts it. */
export function mintJwt(key: string, claims: JwtClaims): string {
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signed = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${signed}.${createHmac('sha256', key).update(signed).digest('base64url')}`;
}

interface TokenArgs {
  resource: string | undefined;
  jwt: boolean;
  key: string | undefined;
  keyFile: string | undefined;
  ttl: string;
  url: string | undefined;
  feeds: string | undefined;
  actions: string;
  help: boolean;
}

const VALUED = new Set(['--key', '--key-file', '--ttl', '--url', '--feeds', '--actions']);

function parseArgs(args: readonly string[]): TokenArgs {
  const parsed: TokenArgs = {
    resource: undefined,
    jwt: false,
    key: undefined,
    keyFile: undefined,
    ttl: '3600',
    url: undefined,
    feeds: undefined,
    actions: 'read',
    help: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--help' || arg === '-h') parsed.help = true;
    else if (arg === '--jwt') parsed.jwt = true;
    else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(0, eq) : arg;
      if (!VALUED.has(name)) throw usageError(`unknown option ${name}`);
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined || value === '') throw usageError(`${name} needs a value`);
      if (name === '--key') parsed.key = value;
      else if (name === '--key-file') parsed.keyFile = value;
      else if (name === '--ttl') parsed.ttl = value;
      else if (name === '--url') parsed.url = value;
      else if (name === '--feeds') parsed.feeds = value;
      else parsed.actions = value;
    } else if (parsed.resource === undefined) parsed.resource = arg;
    else throw usageError(`one RESOURCE only (got "${parsed.resource}" and "${arg}")`);
  }
  return parsed;
}

/** The key from --key or --key-file (its content without the trailing newline). */
function keyOf(a: TokenArgs, what: string): string {
  if (a.key !== undefined && a.keyFile !== undefined) throw usageError('give --key or --key-file, not both');
  let key = a.key;
  if (a.keyFile !== undefined) {
    try {
      key = readFileSync(a.keyFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw usageError(`--key-file ${a.keyFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  if (key === undefined) throw usageError(`give the server's ${what} with --key KEY or --key-file FILE`);
  if (key === '') throw usageError(`the ${what} is empty`);
  return key;
}

/** URL with `query` appended (after its own query, if it has one). */
function withQuery(url: string, query: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usageError(`--url ${url} is not a URL (e.g. http://host:8090/camera1.flv)`);
  }
  if (!/^(?:https?|rtmps?|rtsps?):$/.test(parsed.protocol)) {
    throw usageError(`--url ${url}: give an http(s), rtmp(s) or rtsp URL`);
  }
  const hash = url.indexOf('#');
  const base = hash >= 0 ? url.slice(0, hash) : url;
  return `${base}${base.includes('?') ? (base.endsWith('?') || base.endsWith('&') ? '' : '&') : '?'}${query}${hash >= 0 ? url.slice(hash) : ''}`;
}

function listOf(text: string): string[] {
  return text
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/** What `feedcast token ARGS` prints (without the newline); a ConfigError says why it cannot. */
export function tokenOutput(args: readonly string[], now = Date.now()): string {
  const a = parseArgs(args);
  const ttl = parseTtl(a.ttl);
  if (a.jwt) {
    if (a.resource !== undefined) {
      throw usageError(`--jwt takes no RESOURCE ("${a.resource}"): name what it grants with --feeds ${a.resource}`);
    }
    const key = keyOf(a, 'JWTKey');
    const feeds = listOf(a.feeds ?? '');
    if (feeds.length === 0) throw usageError('--jwt needs --feeds: the feed keys or stream names it opens (or *)');
    const actions = listOf(a.actions);
    const bad = actions.find((x) => x !== 'read' && x !== 'publish' && x !== '*');
    if (actions.length === 0 || bad !== undefined) {
      throw usageError(`--actions ${a.actions}: give read, publish or * (comma-separated)`);
    }
    const iat = Math.floor(now / 1000);
    const jwt = mintJwt(key, { feeds, actions, iat, exp: iat + ttl });
    return a.url !== undefined ? withQuery(a.url, `jwt=${jwt}`) : jwt;
  }
  if (a.feeds !== undefined || a.actions !== 'read') throw usageError('--feeds and --actions go with --jwt');
  if (a.resource === undefined) {
    throw usageError('name the RESOURCE the token opens: a feed key (camera1) or a <Stream> name (camera1-small.flv)');
  }
  const query = signedQuery(keyOf(a, 'ReadTokenKey'), a.resource, ttl, now);
  return a.url !== undefined ? withQuery(a.url, query) : query;
}

/** `feedcast token ...`: prints the token; 2 with a clear message for a command line that cannot work. */
export function runTokenCommand(args: readonly string[], io: TokenCliIo = stdio, now = Date.now()): number {
  try {
    if (args.length === 0) {
      io.err(USAGE);
      return 2;
    }
    if (parseArgs(args).help) {
      io.out(USAGE);
      return 0;
    }
    io.out(`${tokenOutput(args, now)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(`${err.message}\n\n${USAGE}`);
    return 2;
  }
}
