// Issue 24 items 5 and 6, the player page (/watch/FEED) in Chromium: the reason of a WebRTC fallback
// stayed hidden behind "playing"; HTTP-FLV said "loading…" while playing; WebRTC abandoned an
// audio-only feed (it counted video frames); an MP3-only feed ended at "loading…" in every mode; and
// after a publisher reconnect LL-HLS stayed seconds behind its target latency for good (hls.js
// never played faster than real time to catch up).

import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { skipWithoutChromium } from '../helpers/browser.js';
import { publish, skipWithoutFfmpeg, type Publisher, type SourceCodecs } from '../helpers/media-tools.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';
import { launchWebRtcChromium } from '../helpers/webrtc-browser.js';

const skip = skipWithoutFfmpeg() || skipWithoutChromium();

/** What the page shows and does (strings: the tests are typechecked without the DOM library). */
interface PageState {
  mode: string;
  state: string;
  playing: boolean;
  mediaChecked: boolean;
  error: string;
  fallback: string;
  time: number;
}
const PAGE_STATE = `(() => {
  const p = window.feedcastPlayer;
  return { mode: p.mode, state: document.getElementById('state').textContent, playing: !!p.playing,
    mediaChecked: !!p.mediaChecked, error: p.error, fallback: p.fallback || '', time: document.querySelector('video').currentTime };
})()`;

describe('player page modes in Chromium (issue 24)', { skip }, () => {
  let browser: Browser;
  before(async () => {
    browser = await launchWebRtcChromium();
  });
  after(async () => {
    await browser?.close();
  });

  async function server(t: TestContext, feeds: Record<string, SourceCodecs>): Promise<TestServer> {
    const names = Object.keys(feeds);
    const s = await startTestServer(t, names.map((n) => `<Feed ${n}.ffm>\n</Feed>\n`).join(''));
    for (const name of names) {
      const pub = publish(s.url(`/${name}.ffm`), { codecs: feeds[name] ?? 'h264-aac', size: '320x180', seconds: 120 });
      t.after(() => pub.stop());
    }
    await waitFor('every feed to get its tracks', () => names.every((n) => (s.ctx.feeds.get(n)?.tracks.length ?? 0) > 0), 60_000);
    return s;
  }

  async function open(t: TestContext, url: string, setup?: (page: Page) => Promise<unknown>): Promise<Page> {
    const page = await browser.newPage();
    t.after(() => page.close());
    await setup?.(page);
    // Not 'load': a <video> delays the load event until its first frame, which an audio-only stream never has.
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    return page;
  }

  const state = (page: Page) => page.evaluate<PageState>(PAGE_STATE);

  test('a WebRTC fallback keeps its reason in view while LL-HLS plays', { timeout: 120_000 }, async (t) => {
    const s = await server(t, { feed1: 'h264-aac' });
    const page = await open(t, s.url('/watch/feed1'), (p) =>
      p.route('**/feed1/whep', (route) => route.fulfill({ status: 503, contentType: 'text/plain', body: 'test: WHEP refused' })),
    );
    await page.waitForFunction("document.querySelector('video').currentTime > 1", undefined, { timeout: 60_000 });
    const shown = await state(page);
    assert.equal(shown.mode, 'll');
    assert.match(shown.state, /WebRTC: test: WHEP refused; playing LL-HLS instead/, JSON.stringify(shown));
  });

  test('HTTP-FLV says playing once the video plays', { timeout: 120_000 }, async (t) => {
    const s = await server(t, { feed1: 'h264-aac' });
    const page = await open(t, s.url('/watch/feed1?src=flv'));
    await page.waitForFunction("document.querySelector('video').currentTime > 2", undefined, { timeout: 60_000 });
    const shown = await state(page);
    assert.equal(shown.mode, 'flv');
    assert.equal(shown.state, 'playing', JSON.stringify(shown));
  });

  test('WebRTC keeps an audio-only feed (it has no video frames to count)', { timeout: 120_000 }, async (t) => {
    const s = await server(t, { tone: 'aac-only' });
    const page = await open(t, s.url('/watch/tone'));
    // The page's own check concludes (media arrived) or gives up (falls back): wait for either.
    await page.waitForFunction('window.feedcastPlayer.mediaChecked || window.feedcastPlayer.mode !== "webrtc"', undefined, {
      timeout: 60_000,
    });
    await page.waitForFunction("document.querySelector('video').currentTime > 1", undefined, { timeout: 60_000 });
    const shown = await state(page);
    assert.equal(shown.mode, 'webrtc', JSON.stringify(shown));
    assert.equal(shown.fallback, '');
    assert.equal(shown.state, 'playing');
  });

  test('an MP3-only feed plays in every mode, saying so where another mode stands in', { timeout: 300_000 }, async (t) => {
    const s = await server(t, { radio: 'mp3-only' });
    for (const mode of ['webrtc', 'll', 'hls', 'ts', 'flv']) {
      const page = await open(t, s.url(`/watch/radio?src=${mode}`));
      await page.waitForFunction('window.feedcastPlayer.playing || window.feedcastPlayer.error !== ""', undefined, {
        timeout: 60_000,
      });
      const shown = await state(page);
      t.diagnostic(`${mode}: ${JSON.stringify(shown)}`);
      assert.equal(shown.error, '', `${mode}: ${JSON.stringify(shown)}`);
      assert.notEqual(shown.state, 'loading…');
      if (mode === 'll' || mode === 'hls') {
        assert.equal(shown.mode, 'ts', `${mode} stands aside for HLS with MPEG-TS segments`);
        assert.match(shown.state, /mp3.*Playing HLS \(MPEG-TS\) instead/);
      } else {
        assert.equal(shown.mode, mode);
      }
      await page.close();
    }
  });

  test('LL-HLS returns to its target latency after a publisher reconnect and a stall', { timeout: 400_000 }, async (t) => {
    const s = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    let pub: Publisher = publish(s.url('/feed1.ffm'), { codecs: 'h264-aac', size: '320x180', seconds: 300 });
    t.after(() => pub.stop());
    await waitFor('tracks', () => (s.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2, 60_000);
    const page = await open(t, s.url('/watch/feed1?src=ll'));
    type Latency = { latency: number; target: number; delayMs: number | undefined; rate: number };
    const LATENCY = `(() => {
      const h = window.feedcastPlayer.hls;
      if (!h || !(h.latency > 0)) return null;
      return { latency: h.latency, target: h.targetLatency, delayMs: window.feedcastPlayer.delayMs(), rate: document.querySelector('video').playbackRate };
    })()`;
    const NEAR_TARGET = `(() => { const l = ${LATENCY}; return l !== null && l.latency < l.target + 1; })()`;
    const latency = () => page.evaluate<Latency | null>(LATENCY);
    await page.waitForFunction("document.querySelector('video').currentTime > 3", undefined, { timeout: 60_000 });

    // The publisher goes away until the player has run dry, and comes back.
    await pub.stop();
    await waitFor('the publisher to leave', () => s.ctx.feeds.get('feed1')?.publisher === undefined);
    await page.waitForFunction("document.querySelector('video').readyState < 3", undefined, { timeout: 60_000 });
    pub = publish(s.url('/feed1.ffm'), { codecs: 'h264-aac', size: '320x180', seconds: 300 });
    await waitFor('the publisher to return', () => s.ctx.feeds.get('feed1')?.publisher !== undefined, 60_000);
    await page.waitForFunction(NEAR_TARGET, undefined, { timeout: 120_000, polling: 250 });
    t.diagnostic(`after the reconnect: ${JSON.stringify(await latency())}`);

    // A stall (the element waits, as while the publisher was away) leaves the player 3 s past its
    // target; hls.js plays faster until it is back (at rate 1 it would stay behind for good).
    await page.evaluate("document.querySelector('video').pause()");
    await page.waitForFunction(`(() => { const l = ${LATENCY}; return l !== null && l.latency > l.target + 3; })()`, undefined, {
      timeout: 60_000,
      polling: 250,
    });
    t.diagnostic(`stalled: ${JSON.stringify(await latency())}`);
    await page.evaluate("document.querySelector('video').play()");
    await page.waitForFunction("document.querySelector('video').playbackRate > 1", undefined, { timeout: 60_000, polling: 100 });
    await page.waitForFunction(NEAR_TARGET, undefined, { timeout: 60_000, polling: 250 });
    t.diagnostic(`caught up: ${JSON.stringify(await latency())}`);
  });
});
