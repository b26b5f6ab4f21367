// Trust (issue 11): a signed player page plays a feed that needs a read token. The page at
// `/watch/feed1?token=...&expires=...` passes its own credentials to every media URL it loads
// (HTTP-FLV, LL-HLS playlists and parts, the WHEP POST); headless Chromium decodes frames. Without
// the token the page loads but its media requests get 401 and nothing plays. The index page's links
// carry the page's credentials too. What broke: the page loaded its media URLs bare (401).

import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { credentialQuery, signedQuery } from '../../src/access/auth.js';
import { renderIndexPage } from '../../src/control/index-page.js';
import { mintJwt } from '../../src/access/token-cli.js';
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutChromium();
const KEY = 'player-read-key';
const VIDEO_FRAMES = "document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames";

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  status: number;
}

async function protectedFeed(t: TestContext): Promise<TestServer> {
  const server = await startTestServer(t, `ReadTokenKey ${KEY}\nJWTKey jwt-key\n<Feed feed1.ffm>\nRequireReadToken\n</Feed>\n`);
  const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 120 });
  t.after(() => pub.stop());
  await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2, 20_000);
  return server;
}

describe('trust: the player page carries its read token to its media', { skip }, () => {
  let browser: Browser | undefined;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  /** Opens a page and records every response to a media URL of feed1 (not the page, not its scripts). */
  async function open(t: TestContext, url: string): Promise<{ page: Page; seen: Seen[] }> {
    assert.ok(browser !== undefined);
    const page = await browser.newPage();
    t.after(() => page.close());
    const seen: Seen[] = [];
    page.on('response', (r) => {
      const u = new URL(r.url());
      if (!u.pathname.startsWith('/feed1')) return;
      seen.push({ method: r.request().method(), path: u.pathname, query: u.searchParams, status: r.status() });
    });
    await page.goto(url);
    return { page, seen };
  }

  const frames = (page: Page): Promise<number> => page.evaluate<number>(VIDEO_FRAMES);

  test(
    'with ?token=&expires=: HTTP-FLV and LL-HLS play, the WHEP offer is accepted; every media request carries the token',
    { timeout: 120_000 },
    async (t) => {
      const server = await protectedFeed(t);
      const q = signedQuery(KEY, 'feed1', 600);
      const token = new URLSearchParams(q).get('token');

      const flv = await open(t, server.url(`/watch/feed1?src=flv&${q}`));
      await flv.page.waitForFunction(`${VIDEO_FRAMES} > 15`, undefined, { timeout: 30_000 });
      const flvGet = flv.seen.find((s) => s.path === '/feed1.flv');
      assert.equal(flvGet?.status, 200);
      assert.equal(flvGet.query.get('token'), token);

      const ll = await open(t, server.url(`/watch/feed1?src=ll&${q}`));
      await ll.page.waitForFunction(`${VIDEO_FRAMES} > 15`, undefined, { timeout: 40_000 });
      assert.ok(ll.seen.some((s) => s.path === '/feed1/index.m3u8' && s.status === 200));
      assert.ok(ll.seen.length > 2, 'playlist, init and media parts were loaded');
      for (const s of ll.seen) {
        assert.equal(s.status, 200, `${s.path} answered ${s.status}`);
        assert.equal(s.query.get('token'), token, `${s.path} carries the token`);
      }

      // WHEP: the offer is POSTed with the token and accepted (201); whether the peer then connects on this
      // machine's loopback or the page falls back to LL-HLS, frames are decoded.
      const rtc = await open(t, server.url(`/watch/feed1?src=webrtc&${q}`));
      await waitFor('the WHEP POST', () => rtc.seen.some((s) => s.method === 'POST' && s.path === '/feed1/whep'), 20_000);
      const post = rtc.seen.find((s) => s.method === 'POST' && s.path === '/feed1/whep');
      assert.equal(post?.status, 201);
      assert.equal(post.query.get('token'), token);
      await rtc.page.waitForFunction(`${VIDEO_FRAMES} > 5`, undefined, { timeout: 40_000 });
    },
  );

  test(
    'a JWT page (?jwt=) plays too; without credentials the media requests get 401 and nothing plays',
    { timeout: 90_000 },
    async (t) => {
      const server = await protectedFeed(t);
      const jwt = mintJwt('jwt-key', { feeds: ['feed1'], actions: ['read'], exp: Math.floor(Date.now() / 1000) + 600 });
      const withJwt = await open(t, server.url(`/watch/feed1?src=flv&jwt=${jwt}`));
      await withJwt.page.waitForFunction(`${VIDEO_FRAMES} > 15`, undefined, { timeout: 30_000 });
      assert.equal(withJwt.seen.find((s) => s.path === '/feed1.flv')?.query.get('jwt'), jwt);

      const bare = await open(t, server.url('/watch/feed1?src=flv'));
      await waitFor('the FLV request', () => bare.seen.some((s) => s.path === '/feed1.flv'), 20_000);
      assert.equal(bare.seen.find((s) => s.path === '/feed1.flv')?.status, 401);
      const bareLl = await open(t, server.url('/watch/feed1?src=ll'));
      await waitFor('the playlist request', () => bareLl.seen.some((s) => s.path === '/feed1/index.m3u8'), 20_000);
      assert.ok(bareLl.seen.filter((s) => s.path === '/feed1/index.m3u8').every((s) => s.status === 401));
      const bareRtc = await open(t, server.url('/watch/feed1?src=webrtc'));
      await waitFor('the WHEP POST', () => bareRtc.seen.some((s) => s.path === '/feed1/whep'), 20_000);
      assert.equal(bareRtc.seen.find((s) => s.path === '/feed1/whep')?.status, 401);
      // Give the bare pages time to have played something if they could.
      await bareLl.page.waitForTimeout(3000);
      assert.deepEqual(await Promise.all([frames(bare.page), frames(bareLl.page)]), [0, 0]);
    },
  );
});

test('the index page links carry the page credentials (token, expires, jwt; never a secret)', async (t) => {
  const server = await startTestServer(t, `ReadTokenKey ${KEY}\n<Feed feed1.ffm>\nRequireReadToken\n</Feed>\n`);
  const q = signedQuery(KEY, 'feed1', 60);
  const creds = { ...Object.fromEntries(new URLSearchParams(q)), secret: 'never-shown' };
  const html = renderIndexPage(server.ctx, 'example.org:8090', credentialQuery(creds));
  const escaped = q.replace(/&/g, '&#38;');
  for (const path of ['/watch/feed1', '/feed1/index.m3u8', '/feed1.flv', '/feed1.ts']) {
    assert.ok(html.includes(`href="${path}?${escaped}"`), `${path} carries the token`);
  }
  assert.ok(!html.includes('never-shown'));
  assert.ok(renderIndexPage(server.ctx, 'example.org').includes('href="/feed1.flv"'), 'no credentials: plain links');
});
