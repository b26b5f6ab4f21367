// Issue 20, part 5: LL-HLS and HLS behind a real nginx cache. The committed example
// (docs/nginx-hls-cache.conf) runs in front of a live Feedcast fed by real ffmpeg; 200 LL-HLS
// pollers follow the live edge through it (blocking reload for the next part, then the part), and
// nginx's own log shows how many of their requests reached Feedcast: about one per object.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Agent, get as httpGet } from 'node:http';
import { HlsRoute } from '../../src/protocols/hls/route.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { skipWithoutNginx, startNginx } from '../helpers/nginx.js';
import { freePort, startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutNginx();
const EXAMPLE = new URL('../../docs/nginx-hls-cache.conf', import.meta.url);
const POLLERS = 200;
const PARTS = 6;

/** The example config with its three marked lines pointed at this test's ports and folder. */
function exampleSite(originPort: number, port: number, cacheDir: string): string {
  const text = readFileSync(EXAMPLE, 'utf8');
  const replaced = text
    .replace(/proxy_cache_path \/var\/cache\/nginx\/feedcast /, `proxy_cache_path ${cacheDir} `)
    .replace(/server 127\.0\.0\.1:8090;/, `server 127.0.0.1:${originPort};`)
    .replace(/listen 8080;/, `listen 127.0.0.1:${port};`);
  for (const [what, re] of [
    ['cache path', /proxy_cache_path \/var/],
    ['upstream', /:8090;/],
    ['listen', /listen 8080;/],
  ] as const)
    assert.doesNotMatch(replaced, re, `the example's ${what} line was not found to change: keep the test in step with it`);
  return replaced;
}

const partOf = (hintOrUri: string): { msn: number; part: number } | undefined => {
  const m = /-(\d+)\.(\d+)\.m4s$/.exec(hintOrUri);
  return m === null ? undefined : { msn: Number(m[1]), part: Number(m[2]) };
};
const preloadHint = (playlist: string): string | undefined => /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/.exec(playlist)?.[1];

describe('HLS behind nginx proxy_cache (docs/nginx-hls-cache.conf)', { skip }, () => {
  test('200 LL-HLS pollers cost Feedcast about one request per playlist update and part', async (t) => {
    // As docs/nginx-hls-cache.conf asks: nginx (on 127.0.0.1) is a trusted proxy.
    const server = await startTestServer(t, 'TrustedProxy 127.0.0.1\n<Feed feed1.ffm>\n</Feed>\n');
    const route = new HlsRoute(server.ctx, { partTargetMs: 500, segmentTargetMs: 1000 });
    server.http.addRoute(route);
    t.after(() => route.close());
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 120 });
    t.after(() => pub.stop());
    await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2, 30_000);

    const port = await freePort();
    const nginx = await startNginx(t, exampleSite(server.httpPort, port, '__PREFIX__/cache'), port);
    // The cache folder lives in nginx's own temporary prefix.
    const base = `http://127.0.0.1:${port}/feed1/`;
    // One keep-alive connection per poller, as players have.
    const agent = new Agent({ keepAlive: true, maxSockets: POLLERS + 10 });
    t.after(() => agent.destroy());
    const get = (url: string): Promise<{ status: number; body: Buffer; cache: string }> =>
      new Promise((resolve, reject) => {
        const req = httpGet(url, { agent, timeout: 30_000 }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks),
              cache: String(res.headers['x-cache-status'] ?? ''),
            }),
          );
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`no answer to ${url} within 30 s`)));
        req.on('error', reject);
      });

    // The first request starts the segmenter; it answers once a segment is complete.
    let first = await get(base + 'index.m3u8');
    await waitFor('the live playlist through nginx', async () => (first = await get(base + 'index.m3u8')).status === 200, 30_000);
    const hint = preloadHint(first.body.toString());
    const start = hint === undefined ? undefined : partOf(hint);
    assert.ok(hint !== undefined && start !== undefined, `a preload hint in:\n${first.body.toString()}`);
    const sid = /^([a-z0-9]+)-/.exec(hint)?.[1] ?? '';
    const before = nginx.log().length;

    // Every poller follows the live edge as an LL-HLS player does, from the same part on.
    const partBytes = new Map<string, Set<string>>();
    // When the first and the last poller had each part: what waiting on nginx's lock costs (reported, not asserted).
    const partTimes = new Map<string, { first: number; last: number }>();
    const poller = async (): Promise<number> => {
      let next = start;
      let done = 0;
      for (let i = 0; i < PARTS; i++) {
        const playlist = await get(`${base}index.m3u8?_HLS_msn=${next.msn}&_HLS_part=${next.part}`);
        assert.equal(playlist.status, 200, `blocking reload ${next.msn}.${next.part}: ${playlist.body.toString()}`);
        const text = playlist.body.toString();
        const uri = `${sid}-${next.msn}.${next.part}.m4s`;
        assert.ok(text.includes(`URI="${uri}"`), `the reload for ${uri} lists it:\n${text}`);
        const part = await get(base + uri);
        assert.equal(part.status, 200, uri);
        assert.equal(part.body.subarray(4, 8).toString('latin1'), 'moof', `${uri} is a fragment`);
        const at = performance.now();
        const seen = partTimes.get(uri) ?? { first: at, last: at };
        partTimes.set(uri, { first: Math.min(seen.first, at), last: Math.max(seen.last, at) });
        const digests = partBytes.get(uri) ?? new Set<string>();
        digests.add(createHash('sha1').update(part.body).digest('hex'));
        partBytes.set(uri, digests);
        const following = preloadHint(text);
        next = (following !== undefined ? partOf(following) : undefined) ?? { msn: next.msn, part: next.part + 1 };
        done++;
      }
      return done;
    };
    const results = await Promise.all(Array.from({ length: POLLERS }, poller));
    assert.equal(
      results.reduce((a, b) => a + b, 0),
      POLLERS * PARTS,
      'every poller followed every part',
    );
    for (const [uri, digests] of partBytes) assert.equal(digests.size, 1, `${uri}: every poller got the same bytes`);

    const entries = nginx.log().slice(before);
    const followed = entries.filter((e) => e.uri.includes('_HLS_msn=') || /\.\d+\.m4s$/.test(e.uri));
    assert.equal(followed.length, POLLERS * PARTS * 2, 'nginx logged every request of the pollers');
    assert.ok(
      followed.every((e) => e.status === 200),
      'all answered 200',
    );
    const upstreamByUri = new Map<string, number>();
    for (const e of followed) upstreamByUri.set(e.uri, (upstreamByUri.get(e.uri) ?? 0) + (e.wentUpstream ? 1 : 0));
    const objects = upstreamByUri.size;
    const toOrigin = [...upstreamByUri.values()].reduce((a, b) => a + b, 0);
    const spreads = [...partTimes.values()].map((p) => p.last - p.first).sort((a, b) => a - b);
    t.diagnostic(
      `${followed.length} requests for ${objects} objects; ${toOrigin} reached Feedcast; ` +
        `spread between the first and last poller per part: median ${spreads[spreads.length >> 1]?.toFixed(0)} ms, max ${spreads.at(-1)?.toFixed(0)} ms`,
    );
    assert.ok(objects >= PARTS * 2, `${objects} distinct playlist updates and parts`);
    assert.ok(
      [...upstreamByUri.values()].every((n) => n >= 1),
      'each object came from Feedcast once at least',
    );
    // Without the cache lock it would be POLLERS per object; a lock that timed out under a heavy
    // load may let a few more through.
    assert.ok(toOrigin <= Math.ceil(objects * 1.5), `${toOrigin} origin requests for ${objects} objects`);

    // Plain reloads (players without LL-HLS): a burst of 200 costs a few origin requests (max-age=1).
    const plainBefore = nginx.log().length;
    const plain = await Promise.all(Array.from({ length: POLLERS }, () => get(base + 'index.m3u8')));
    assert.ok(
      plain.every((r) => r.status === 200),
      `statuses: ${plain.map((r) => r.status).join()}`,
    );
    const fromCache = plain.filter((r) => ['HIT', 'STALE', 'UPDATING'].includes(r.cache)).length;
    assert.ok(fromCache >= POLLERS - 5, `${fromCache} of ${POLLERS} answered from nginx's cache (X-Cache-Status)`);
    const plainToOrigin = nginx
      .log()
      .slice(plainBefore)
      .filter((e) => e.wentUpstream).length;
    t.diagnostic(`${POLLERS} plain reloads: ${plainToOrigin} reached Feedcast`);
    assert.ok(plainToOrigin <= 5, `${plainToOrigin} origin requests for ${POLLERS} plain reloads`);
  });
});
