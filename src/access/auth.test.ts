// The authorisation policy alone (the protocols' use of it: test/integration/trust-auth.test.ts):
// read tokens, JWTs (HS256, RS256 from a JWKS file), ACL and DynamicACL, the hook, the callback
// failing closed, credentials from queries and headers.

import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseConfigText } from '../config/config.js';
import { silentLogger } from '../observability/logger.js';
import type { AccessDeps } from './access.js';
import {
  AuthPolicy,
  checkReadToken,
  cutAtExpiry,
  credentialQuery,
  credentialsFrom,
  jwtGrants,
  mintReadToken,
  redactUrl,
  signedQuery,
  rsaKeySet,
  verifyJwt,
  type AuthRequest,
} from './auth.js';
import type { ConnectionInfo } from './connections.js';
import type { Feed } from '../feed/feed.js';
import { addressLimitReason, ReaderLimits } from './limits.js';

const KEY = 'test-read-key';
/** The refusal reason of verifyJwt, or 'accepted'. */
const why = (r: unknown): string => (typeof r === 'string' ? r : 'accepted');
const b64url = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

function hs256(claims: Record<string, unknown>, key: string): string {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
}

async function contextFor(text: string): Promise<AccessDeps> {
  const config = await parseConfigText(text, 'test.conf', { resolveHost: () => Promise.resolve(['127.0.0.1']) });
  const connections: { remoteAddress: string }[] = [];
  return {
    config,
    log: silentLogger,
    connections: { list: () => connections, size: connections.length },
  } as unknown as AccessDeps;
}

const read = (feed: string, credentials: AuthRequest['credentials'] = {}, address = '127.0.0.1'): AuthRequest => ({
  action: 'read',
  protocol: 'http',
  feed,
  stream: undefined,
  address,
  credentials,
});

describe('read tokens and JWTs', () => {
  test('a token opens its resource until it expires, and nothing else', () => {
    const now = 1_700_000_000_000;
    const expires = now / 1000 + 60;
    const token = mintReadToken(KEY, 'feed1', expires);
    assert.equal(checkReadToken(KEY, 'feed1', token, String(expires), now), undefined);
    assert.match(checkReadToken(KEY, 'feed2', token, String(expires), now) ?? '', /not valid/);
    assert.match(checkReadToken(KEY, 'feed1', token, String(expires + 1), now) ?? '', /not valid/);
    assert.match(checkReadToken(KEY, 'feed1', token, String(expires), now + 61_000) ?? '', /expired/);
    assert.match(checkReadToken('other', 'feed1', token, String(expires), now) ?? '', /not valid/);
    assert.match(checkReadToken(KEY, 'feed1', token, undefined, now) ?? '', /expires/);
    assert.match(checkReadToken(KEY, 'feed1', token, '1e9', now) ?? '', /expires/);
    assert.match(signedQuery(KEY, 'feed1', 60, now), /^token=[\w-]{43}&expires=\d+$/);
  });

  test('the documented openssl recipe mints the same token', () => {
    // printf 'feed1\n1700000060' | openssl dgst -sha256 -hmac KEY -binary | base64 | tr '+/' '-_' | tr -d '='
    const expected = createHmac('sha256', KEY)
      .update('feed1\n1700000060')
      .digest('base64')
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
    assert.equal(mintReadToken(KEY, 'feed1', 1_700_000_060), expected);
  });

  test('JWT: HS256 and RS256 verify; tampering, expiry, not-yet-valid and alg none are refused', async () => {
    const keys = { hs256: 'k', rs256: undefined };
    const good = hs256({ feeds: ['feed1'], actions: ['read'], exp: Date.now() / 1000 + 60 }, 'k');
    assert.equal(typeof (await verifyJwt(good, keys)), 'object');
    assert.match(why(await verifyJwt(good, { ...keys, hs256: 'other' })), /signature/);
    const [h, , s] = good.split('.');
    assert.match(why(await verifyJwt(`${h}.${b64url({ feeds: '*', actions: '*' })}.${s}`, keys)), /signature/);
    assert.match(why(await verifyJwt(hs256({ exp: 1 }, 'k'), keys)), /expired/);
    assert.match(why(await verifyJwt(hs256({ nbf: Date.now() / 1000 + 3600 }, 'k'), keys)), /not valid yet/);
    assert.match(why(await verifyJwt(hs256({ exp: 'soon' }, 'k'), keys)), /expired/);
    assert.match(
      why(await verifyJwt(`${b64url({ alg: 'none' })}.${b64url({ feeds: '*', actions: '*' })}.`, keys)),
      /not accepted/,
    );
    assert.match(why(await verifyJwt('a.b', keys)), /three/);
    assert.match(why(await verifyJwt('!!.??.##', keys)), /base64url JSON|objects/);
    assert.match(why(await verifyJwt('x'.repeat(9000), keys)), /too long/);
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const head = `${b64url({ alg: 'RS256', kid: 'a' })}.${b64url({ feeds: 'feed1', actions: 'read' })}`;
    const rs = `${head}.${sign('RSA-SHA256', Buffer.from(head), privateKey).toString('base64url')}`;
    assert.equal(
      typeof (await verifyJwt(rs, {
        hs256: undefined,
        rs256: rsaKeySet({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'a' }] }),
      })),
      'object',
    );
    assert.match(why(await verifyJwt(rs, { hs256: undefined, rs256: undefined })), /no JWKS key/);
    // An RS256 token is not accepted by an HS256 key holder who has the public key as "secret".
    assert.match(why(await verifyJwt(rs, { hs256: 'k', rs256: undefined })), /no JWKS key/);
  });

  test('claims: feeds and actions as lists, strings or *', () => {
    assert.equal(jwtGrants({ feeds: ['a', 'b'], actions: ['read'] }, 'read', ['b']), true);
    assert.equal(jwtGrants({ feeds: 'a b', actions: 'read publish' }, 'publish', ['a']), true);
    assert.equal(jwtGrants({ feeds: '*', actions: ['read'] }, 'publish', ['a']), false);
    assert.equal(jwtGrants({ feeds: ['a'], actions: '*' }, 'publish', ['c']), false);
    assert.equal(jwtGrants({}, 'read', ['a']), false);
  });

  test('credentials from the query and Authorization (Bearer secret or JWT, Basic password)', () => {
    const q = new URLSearchParams('secret=s&token=t&expires=9&jwt=a.b.c');
    assert.deepEqual(credentialsFrom(q, undefined), { secret: 's', token: 't', expires: '9', jwt: 'a.b.c' });
    assert.deepEqual(credentialsFrom(new URLSearchParams(), 'Bearer x.y.z'), { jwt: 'x.y.z' });
    assert.deepEqual(credentialsFrom(new URLSearchParams(), 'Bearer plain'), { secret: 'plain' });
    assert.deepEqual(credentialsFrom(new URLSearchParams(), `Basic ${Buffer.from('u:p:w').toString('base64')}`), {
      secret: 'p:w',
    });
    assert.equal(credentialQuery({ token: 't', expires: '9', secret: 'never' }), 'token=t&expires=9');
  });

  test('hostile input: verifyJwt, checkReadToken and credentialsFrom never throw', async () => {
    const keys = { hs256: 'k', rs256: undefined };
    const part = fc.oneof(
      fc.base64String(),
      fc.string(),
      fc.constant(b64url({ alg: 'HS256' })),
      fc.constant(b64url({ alg: 'RS256', kid: 1 })),
    );
    await fc.assert(
      fc.asyncProperty(part, part, part, fc.string(), fc.string(), async (a, b, c, header, query) => {
        const r = await verifyJwt(`${a}.${b}.${c}`, keys);
        assert.ok(typeof r === 'string' || typeof r === 'object');
        assert.equal(typeof (checkReadToken(KEY, a, b, c) ?? ''), 'string');
        credentialsFrom(new URLSearchParams(query), header);
      }),
      { numRuns: 2000 },
    );
  });

  test('URLs in logs lose their secrets, tokens and JWTs', () => {
    assert.equal(redactUrl('/f.ffm?secret=abc&x=1'), '/f.ffm?secret=***&x=1');
    assert.equal(redactUrl('rtsp://h/f?token=t&expires=9&JWT=a.b.c'), 'rtsp://h/f?token=***&expires=9&JWT=***');
    assert.equal(redactUrl('/f.flv'), '/f.flv');
    assert.equal(redactUrl(undefined), '-');
  });
});

describe('AuthPolicy', () => {
  test('a simulcast layer feed (a~h) is read as its feed: its ACL and read tokens', async () => {
    const ctx = await contextFor(`ReadTokenKey ${KEY}\n<Feed a.ffm>\nRequireReadToken\nACL allow 127.0.0.1\n</Feed>\n`);
    const p = new AuthPolicy(ctx);
    const denied = await p.authorize(read('a~h', {}, '10.0.0.1'));
    assert.ok(
      denied.kind === 'deny' && denied.status === 403 && /may not read feed a /.test(denied.reason),
      JSON.stringify(denied),
    );
    assert.equal((await p.authorize(read('a~l'))).kind, 'deny');
    const [token, expires] = signedQuery(KEY, 'a', 60)
      .split('&')
      .map((kv) => kv.split('=')[1]);
    assert.equal((await p.authorize(read('a~l', { token, expires }))).kind, 'allow');
  });

  test('ACL first, then RequireReadToken (token or JWT), with precise statuses', async () => {
    const ctx = await contextFor(
      `ReadTokenKey ${KEY}\nJWTKey j\n<Feed a.ffm>\nRequireReadToken\nACL allow 127.0.0.1\n</Feed>\n<Feed b.ffm>\n</Feed>\n`,
    );
    const p = new AuthPolicy(ctx);
    assert.deepEqual(await p.authorize(read('b')), { kind: 'allow' });
    assert.equal((await p.authorize(read('a', {}, '10.0.0.1'))).kind, 'deny');
    const deny = await p.authorize(read('a', {}, '10.0.0.1'));
    assert.ok(deny.kind === 'deny' && deny.status === 403 && /may not read feed a/.test(deny.reason));
    const missing = await p.authorize(read('a'));
    assert.ok(missing.kind === 'deny' && missing.status === 401);
    const [token, expires] = signedQuery(KEY, 'a', 60)
      .split('&')
      .map((kv) => kv.split('=')[1]);
    assert.deepEqual(await p.authorize(read('a', { token, expires })), { kind: 'allow', expiresAt: Number(expires) * 1000 });
    const wrongFeed = signedQuery(KEY, 'b', 60)
      .split('&')
      .map((kv) => kv.split('=')[1]);
    const d = await p.authorize(read('a', { token: wrongFeed[0], expires: wrongFeed[1] }));
    assert.ok(d.kind === 'deny' && d.status === 403);
    assert.deepEqual(await p.authorize(read('a', { jwt: hs256({ feeds: 'a', actions: 'read' }, 'j') })), { kind: 'allow' });
    assert.deepEqual(await p.authorize(read('a', { token: hs256({ feeds: 'a', actions: 'read' }, 'j') })), { kind: 'allow' });
  });

  test('publish: secret or a publish JWT; a wrong secret is 403, none is 401', async () => {
    const ctx = await contextFor('JWTKey j\n<Feed a.ffm>\nPublishSecret s3cret\n</Feed>\n');
    const p = new AuthPolicy(ctx);
    const pub = (credentials: AuthRequest['credentials']) =>
      p.authorizePublish({ protocol: 'rtmp', feed: 'a', address: '::1', credentials });
    assert.deepEqual(await pub({ secret: 's3cret' }), { kind: 'allow' });
    const none = await pub({});
    assert.ok(none.kind === 'deny' && none.status === 401);
    const wrong = await pub({ secret: 'x' });
    assert.ok(wrong.kind === 'deny' && wrong.status === 403);
    assert.ok(!JSON.stringify(wrong).includes('s3cret'), 'the refusal does not echo the secret');
    assert.deepEqual(await pub({ jwt: hs256({ feeds: ['a'], actions: ['publish'] }, 'j') }), { kind: 'allow' });
    const readOnly = await pub({ jwt: hs256({ feeds: ['a'], actions: ['read'] }, 'j') });
    assert.ok(readOnly.kind === 'deny' && /does not grant publish/.test(readOnly.reason));
  });

  test('JWKSFile: RS256 tokens by kid, the file re-read when it changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-jwks-'));
    try {
      const one = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const two = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const jwk = (k: typeof one, kid: string) => ({ ...k.publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' });
      const file = join(dir, 'jwks.json');
      writeFileSync(file, JSON.stringify({ keys: [jwk(one, 'one')] }));
      const token = (k: typeof one, kid: string): string => {
        const head = `${b64url({ alg: 'RS256', kid })}.${b64url({ feeds: ['a'], actions: ['read'] })}`;
        return `${head}.${sign('RSA-SHA256', Buffer.from(head), k.privateKey).toString('base64url')}`;
      };
      const ctx = await contextFor(`JWKSFile ${file}\n<Feed a.ffm>\nRequireReadToken\n</Feed>\n`);
      const p = new AuthPolicy(ctx);
      assert.deepEqual(await p.authorize(read('a', { jwt: token(one, 'one') })), { kind: 'allow' });
      assert.equal((await p.authorize(read('a', { jwt: token(two, 'two') }))).kind, 'deny');
      writeFileSync(file, JSON.stringify({ keys: [jwk(one, 'one'), jwk(two, 'two')], extra: 'x'.repeat(10) }));
      assert.deepEqual(await p.authorize(read('a', { jwt: token(two, 'two') })), { kind: 'allow' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('DynamicACL: missing allows all, changes apply at once, a bad file denies all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-dacl-'));
    try {
      const file = join(dir, 'a.acl');
      const ctx = await contextFor(
        `<Feed a.ffm>\nDynamicACL ${file}\n</Feed>\n<Stream s.flv>\nFeed a.ffm\nDynamicACL ${file}\n</Stream>\n`,
      );
      const p = new AuthPolicy(ctx);
      assert.equal((await p.authorize(read('a'))).kind, 'allow');
      writeFileSync(file, 'ACL deny 127.0.0.0/8\n');
      assert.equal((await p.authorize(read('a'))).kind, 'deny');
      assert.equal((await p.authorize({ ...read('a'), stream: 's.flv' })).kind, 'deny');
      assert.equal((await p.authorize(read('a', {}, '::1'))).kind, 'allow');
      writeFileSync(file, '# comment\n\nallow ::1\nACL allow 127.0.0.1\n');
      assert.equal((await p.authorize(read('a'))).kind, 'allow');
      assert.equal((await p.authorize(read('a', {}, '192.0.2.1'))).kind, 'deny');
      writeFileSync(file, 'ACL allow 127.0.0.1 # a trailing comment is an error\n');
      const bad = await p.authorize(read('a'));
      assert.ok(bad.kind === 'deny' && /unreadable/.test(bad.reason));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the hook and the callback: allow, deny, redirect; errors, bad answers and timeouts fail closed', async () => {
    const ctx = await contextFor('AuthCallback http://127.0.0.1:1/auth\nAuthCallbackTimeout 0.2\n<Feed a.ffm>\n</Feed>\n');
    let answer: () => Promise<Response> = () => Promise.resolve(new Response(null, { status: 204 }));
    const p = new AuthPolicy(ctx, { fetch: () => answer() });
    assert.deepEqual(await p.authorize(read('a')), { kind: 'allow' });
    answer = () => Promise.resolve(Response.json({ allow: false, reason: 'banned', status: 401 }));
    assert.deepEqual(await p.authorize(read('a')), { kind: 'deny', status: 401, reason: 'banned' });
    answer = () => Promise.resolve(Response.json({ decision: 'redirect', location: 'https://edge/a.flv' }));
    assert.deepEqual(await p.authorize(read('a')), { kind: 'redirect', location: 'https://edge/a.flv' });
    answer = () => Promise.resolve(Response.json({ redirect: 'javascript:alert(1)' }));
    assert.equal((await p.authorize(read('a'))).kind, 'deny');
    answer = () => Promise.resolve(new Response('nope', { status: 403 }));
    assert.deepEqual(await p.authorize(read('a')), { kind: 'deny', status: 403, reason: 'nope' });
    answer = () => Promise.resolve(new Response('', { status: 500 }));
    assert.equal((await p.authorize(read('a'))).kind, 'deny');
    answer = () => Promise.reject(new Error('ECONNREFUSED'));
    const down = await p.authorize(read('a'));
    assert.ok(down.kind === 'deny' && down.status === 503);
    // The hook runs before the callback and its refusal stands.
    answer = () => Promise.resolve(new Response(null, { status: 204 }));
    p.setHooks({ onRead: (r) => (r.address === '10.9.9.9' ? false : undefined) });
    assert.equal((await p.authorize(read('a', {}, '10.9.9.9'))).kind, 'deny');
    assert.equal((await p.authorize(read('a'))).kind, 'allow');
    p.setHooks({ onRead: () => Promise.reject(new Error('hook bug')) });
    const broken = await p.authorize(read('a'));
    assert.ok(broken.kind === 'deny' && broken.status === 503, 'a throwing hook fails closed');
  });

  test('a real timeout: a callback that never answers is refused after AuthCallbackTimeout', async () => {
    const ctx = await contextFor('AuthCallback http://127.0.0.1:1/auth\nAuthCallbackTimeout 0.2\n<Feed a.ffm>\n</Feed>\n');
    const p = new AuthPolicy(ctx, {
      fetch: (_url, init) =>
        new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(new Error('aborted')))),
    });
    const d = await p.authorize(read('a'));
    assert.ok(d.kind === 'deny' && d.status === 503);
  });
});

describe('expiring credentials', () => {
  test('the decision carries when the read token or JWT that was needed expires; none when nothing was needed', async () => {
    const ctx = await contextFor(
      `ReadTokenKey ${KEY}\nJWTKey j\n<Feed a.ffm>\nRequireReadToken\n</Feed>\n<Feed b.ffm>\n</Feed>\n`,
    );
    const p = new AuthPolicy(ctx);
    const exp = Math.floor(Date.now() / 1000) + 30;
    const token = mintReadToken(KEY, 'a', exp);
    assert.deepEqual(await p.authorize(read('a', { token, expires: String(exp) })), { kind: 'allow', expiresAt: exp * 1000 });
    const jwt = hs256({ feeds: 'a', actions: 'read', exp: exp + 5 }, 'j');
    assert.deepEqual(await p.authorize(read('a', { jwt })), { kind: 'allow', expiresAt: (exp + 5) * 1000 });
    assert.deepEqual(await p.authorize(read('a', { jwt: hs256({ feeds: 'a', actions: 'read' }, 'j') })), { kind: 'allow' });
    // A feed that needs no token: the token given does not bind the reader.
    assert.deepEqual(await p.authorize(read('b', { token, expires: String(exp) })), { kind: 'allow' });
    // A hook may shorten it (the earlier wins), never lengthen it.
    p.setHooks({ onRead: () => ({ kind: 'allow', expiresAt: exp * 1000 - 10_000 }) });
    assert.deepEqual(await p.authorize(read('a', { jwt })), { kind: 'allow', expiresAt: exp * 1000 - 10_000 });
    p.setHooks({ onRead: () => ({ kind: 'allow', expiresAt: exp * 1000 + 99_000 }) });
    assert.deepEqual(await p.authorize(read('a', { jwt })), { kind: 'allow', expiresAt: (exp + 5) * 1000 });
  });

  test('cutAtExpiry cuts once at the expiry with one log line, not after disarm, not when the setting is off', async () => {
    const lines: string[] = [];
    const ctx = await contextFor('');
    Object.assign(ctx, { log: { ...silentLogger, info: (msg: string) => lines.push(msg) } });
    const who = { protocol: 'http', target: 'a', from: '127.0.0.1' };
    let cuts = 0;
    const cut = (): void => {
      cuts++;
    };
    cutAtExpiry(ctx, { kind: 'allow', expiresAt: Date.now() + 50 }, who, cut);
    const disarm = cutAtExpiry(ctx, { kind: 'allow', expiresAt: Date.now() + 50 }, who, cut);
    disarm();
    disarm();
    cutAtExpiry(ctx, { kind: 'allow' }, who, cut);
    // A far expiry (past the longest Node timer) is armed without firing at once.
    const far = cutAtExpiry(ctx, { kind: 'allow', expiresAt: Date.now() + 40 * 24 * 3600 * 1000 }, who, cut);
    await new Promise((r) => setTimeout(r, 300));
    far();
    assert.equal(cuts, 1);
    assert.deepEqual(lines, ['read token expired']);
    Object.assign(ctx.config.auth, { tokenExpiryCutsReaders: false });
    cutAtExpiry(ctx, { kind: 'allow', expiresAt: Date.now() }, who, cut);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(cuts, 1, 'TokenExpiryCutsReaders off: readers keep playing');
  });
});

describe('limits', () => {
  test('MaxReaders: slots per feed and per stream, released once', async () => {
    const ctx = await contextFor('<Feed a.ffm>\nMaxReaders 2\n</Feed>\n<Stream s.flv>\nFeed a.ffm\nMaxReaders 1\n</Stream>\n');
    const limits = new ReaderLimits();
    const free = { kbps: 0 };
    const take = (r: { feed?: string; stream?: string }) => limits.acquire(ctx.config, r, free);
    const one = take({ feed: 'a' });
    const two = take({ feed: 'a' });
    assert.ok('release' in one && 'release' in two);
    const third = take({ feed: 'a' });
    assert.ok(!('release' in third) && third.limit === 'readers' && /MaxReaders/.test(third.reason));
    one.release();
    one.release();
    assert.equal(limits.readerCount({ feed: 'a' }), 1);
    assert.ok('release' in take({ feed: 'a' }));
    assert.ok('release' in take({ stream: 's.flv' }));
    assert.ok(!('release' in take({ stream: 's.flv' })));
    assert.ok('release' in take({ feed: 'undeclared' }));
  });

  test('MaxBandwidth: fixed costs and measured feed rates, read when asked, given back once', async () => {
    const ctx = await contextFor('MaxBandwidth 3000\n<Feed a.ffm>\n</Feed>\n');
    const limits = new ReaderLimits();
    let rate = 0;
    const feed = { inputRate: { bitsPerSecond: () => rate } } as unknown as Feed;
    // A reader that joins before the publisher sends costs nothing yet, then its feed's rate.
    const early = limits.acquire(ctx.config, { feed: 'a' }, { feed });
    assert.ok('release' in early);
    rate = 2_000_000;
    assert.equal(limits.bandwidthInUseKbps(), 2000);
    const second = limits.acquire(ctx.config, { feed: 'a' }, { feed });
    assert.ok(!('release' in second) && second.limit === 'bandwidth', 'a second 2 Mb/s reader is over 3000 kbit/s');
    const fixed = limits.acquire(ctx.config, { stream: 's' }, { kbps: 900 });
    assert.ok('release' in fixed);
    assert.equal(limits.bandwidthInUseKbps(), 2900);
    early.release();
    early.release();
    fixed.release();
    assert.equal(limits.bandwidthInUseKbps(), 0);
  });

  test('MaxConnectionsPerAddress counts every protocol by address', async () => {
    const ctx = await contextFor('MaxConnectionsPerAddress 2\n');
    const list = (ctx.connections as unknown as { list(): { remoteAddress: string }[] }).list();
    list.push({ remoteAddress: '10.0.0.1' });
    const reason = (address: string) => addressLimitReason(ctx.config, list as ConnectionInfo[], address);
    assert.equal(reason('10.0.0.1'), undefined);
    list.push({ remoteAddress: '10.0.0.1' }, { remoteAddress: '10.0.0.2' });
    assert.match(reason('10.0.0.1') ?? '', /MaxConnectionsPerAddress 2/);
    assert.equal(reason('10.0.0.2'), undefined);
  });
});

describe('DynamicFeedACL (issue 24 item 2)', () => {
  const publish = (feed: string, address: string): AuthRequest => ({
    ...read(feed, {}, address),
    action: 'publish',
    stream: undefined,
  });

  test('by default only loopback publishes to an undeclared feed; anyone reads it; declared feeds keep their ACL', async () => {
    const policy = new AuthPolicy(await contextFor('DynamicFeeds on\n<Feed open.ffm>\n</Feed>\n'));
    for (const address of ['127.0.0.1', '127.4.5.6', '::1', '::ffff:127.0.0.1']) {
      assert.equal((await policy.authorize(publish('new', address))).kind, 'allow', address);
    }
    const refused = await policy.authorize(publish('new', '192.168.1.20'));
    assert.equal(refused.kind, 'deny');
    assert.match(refused.kind === 'deny' ? refused.reason : '', /192\.168\.1\.20 may not publish to feed new .*DynamicFeedACL/);
    assert.equal((await policy.authorize(read('new', {}, '192.168.1.20'))).kind, 'allow');
    assert.equal((await policy.authorize(publish('open', '192.168.1.20'))).kind, 'allow');
  });

  test('DynamicFeedACL lines replace the loopback default', async () => {
    const policy = new AuthPolicy(await contextFor('DynamicFeeds on\nDynamicFeedACL allow 192.168.0.0/16\n'));
    assert.equal((await policy.authorize(publish('new', '192.168.1.20'))).kind, 'allow');
    assert.equal((await policy.authorize(publish('new', '10.0.0.1'))).kind, 'deny');
    assert.equal((await policy.authorize(publish('new', '127.0.0.1'))).kind, 'deny');
  });
});
