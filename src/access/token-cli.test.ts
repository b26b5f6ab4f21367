// `feedcast token`: what it prints opens the resource with the server's own checks (checkReadToken,
// verifyJwt + jwtGrants), and every command line that cannot work exits 2 with a message saying why.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkReadToken, jwtGrants, verifyJwt } from './auth.js';
import { parseTtl, runTokenCommand } from './token-cli.js';

const NOW = 1_700_000_000_000;

/** Runs the command; returns its exit code and what it wrote. */
function run(...args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runTokenCommand(args, { out: (t) => (out += t), err: (t) => (err += t) }, NOW);
  return { code, out, err };
}

test('a read token: the query string passes checkReadToken for its resource until it expires, and no other', () => {
  const r = run('camera1', '--key', 'k1', '--ttl', '3600');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^token=[A-Za-z0-9_-]+&expires=\d+\n$/);
  const q = new URLSearchParams(r.out.trim());
  const token = q.get('token') ?? '';
  const expires = q.get('expires') ?? '';
  assert.equal(Number(expires), NOW / 1000 + 3600);
  assert.equal(checkReadToken('k1', 'camera1', token, expires, NOW), undefined);
  assert.match(checkReadToken('k1', 'camera1', token, expires, NOW + 3601_000) ?? '', /expired/);
  assert.match(checkReadToken('k1', 'camera2', token, expires, NOW) ?? '', /not valid/);
  assert.match(checkReadToken('k2', 'camera1', token, expires, NOW) ?? '', /not valid/);
});

test('a read token from --key-file (trailing newline dropped), as a full URL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-token-'));
  try {
    const file = join(dir, 'key');
    writeFileSync(file, 'file-key\n');
    const r = run('small.flv', `--key-file=${file}`, '--ttl', '90m', '--url', 'http://host:8090/small.flv');
    assert.equal(r.code, 0, r.err);
    const url = new URL(r.out.trim());
    assert.equal(url.pathname, '/small.flv');
    assert.equal(url.searchParams.get('expires'), String(NOW / 1000 + 5400));
    assert.equal(
      checkReadToken('file-key', 'small.flv', url.searchParams.get('token') ?? '', url.searchParams.get('expires') ?? '', NOW),
      undefined,
    );
    // A URL with a query of its own keeps it.
    const hls = run('camera1', '--key', 'k', '--url', 'http://h/camera1/index.m3u8?_HLS_msn=3');
    assert.match(hls.out, /^http:\/\/h\/camera1\/index\.m3u8\?_HLS_msn=3&token=[^&]+&expires=\d+\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a JWT: verifyJwt accepts it with the key, it grants the actions on the feeds, and it expires', async () => {
  const r = run('--jwt', '--key', 'jwt-key', '--feeds', 'a, b', '--actions', 'read,publish', '--ttl', '2h');
  assert.equal(r.code, 0, r.err);
  const jwt = r.out.trim();
  const claims = await verifyJwt(jwt, { hs256: 'jwt-key', rs256: undefined }, NOW);
  assert.ok(typeof claims === 'object', typeof claims === 'string' ? claims : 'claims');
  assert.deepEqual(claims.feeds, ['a', 'b']);
  assert.equal(claims.exp, NOW / 1000 + 7200);
  assert.ok(jwtGrants(claims, 'read', ['b']) && jwtGrants(claims, 'publish', ['a']));
  assert.ok(!jwtGrants(claims, 'read', ['c']));
  assert.equal(await verifyJwt(jwt, { hs256: 'jwt-key', rs256: undefined }, NOW + 7201_000), 'the JWT has expired');
  assert.equal(await verifyJwt(jwt, { hs256: 'other', rs256: undefined }, NOW), 'the JWT signature is wrong');
  const readOnly = await verifyJwt(run('--jwt', '--key', 'k', '--feeds', 'a').out.trim(), { hs256: 'k', rs256: undefined }, NOW);
  assert.ok(typeof readOnly === 'object' && jwtGrants(readOnly, 'read', ['a']) && !jwtGrants(readOnly, 'publish', ['a']));
  const url = run('--jwt', '--key', 'k', '--feeds', '*', '--url', 'rtmp://h/live/a');
  assert.match(url.out, /^rtmp:\/\/h\/live\/a\?jwt=[\w-]+\.[\w-]+\.[\w-]+\n$/);
});

test('command lines that cannot work: exit code 2 and a message naming the problem', () => {
  const cases: [string[], RegExp][] = [
    [['camera1'], /--key KEY or --key-file FILE/],
    [['--key', 'k'], /name the RESOURCE/],
    [['camera1', '--key', 'k', '--ttl', '0'], /--ttl 0/],
    [['camera1', '--key', 'k', '--ttl', 'soon'], /--ttl soon/],
    [['camera1', '--key', 'k', '--ttl', '11000d'], /10 years/],
    [['camera1', '--key', 'k', '--key-file', '/x'], /not both/],
    [['camera1', '--key-file', '/nonexistent/key'], /ENOENT/],
    [['camera1', '--key', ''], /--key needs a value/],
    [['camera1', '--key'], /--key needs a value/],
    [['camera1', '--key', 'k', '--url', 'not a url'], /not a URL/],
    [['camera1', '--key', 'k', '--url', 'file:///etc/passwd'], /http\(s\), rtmp\(s\) or rtsp/],
    [['camera1', 'camera2', '--key', 'k'], /one RESOURCE only/],
    [['camera1', '--key', 'k', '--feeds', 'a'], /go with --jwt/],
    [['camera1', '--key', 'k', '--bogus'], /unknown option --bogus/],
    [['--jwt', '--key', 'k'], /needs --feeds/],
    [['--jwt', '--key', 'k', '--feeds', 'a', '--actions', 'watch'], /--actions watch/],
    [['--jwt', 'camera1', '--key', 'k', '--feeds', 'a'], /takes no RESOURCE/],
    [[], /Usage/],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.code, 2, `${args.join(' ')} exits 2`);
    assert.equal(r.out, '', `${args.join(' ')} prints nothing on stdout`);
    assert.match(r.err, message, `${args.join(' ')}: ${r.err}`);
  }
  const help = run('--help');
  assert.equal(help.code, 0);
  assert.match(help.out, /feedcast token RESOURCE/);
});

test('--ttl units', () => {
  assert.deepEqual(['1', '45s', '90m', '12h', '7d', '1.5h'].map(parseTtl), [1, 45, 5400, 43_200, 604_800, 5400]);
});
