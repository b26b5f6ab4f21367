// The player page really plays: headless Chromium opens /watch/feed1 for a live H.264 + AAC feed
// published by ffmpeg; video time advances, decoded frames increase, the picture is not blank.
// Also measures glass-to-glass delay (wall clock burnt into the picture at capture) per mode.

import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PlayerPageRoute } from '../../src/control/player-page.js';
import { HlsRoute, type HlsRouteOptions } from '../../src/protocols/hls/route.js';
import { CHROMIUM, CHROMIUM_ARGS, clockBarcodeFilter, readClockBarcode, skipWithoutChromium } from '../helpers/browser.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutChromium();

/** A server with HLS and the player page, fed by ffmpeg (1 s GOP unless `gopFrames`) with the capture clock burnt in. */
async function liveServer(t: TestContext, hls: Partial<HlsRouteOptions> = {}, gopFrames = 25): Promise<TestServer> {
  const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
  const route = new HlsRoute(server.ctx, hls);
  server.http.addRoute(route);
  server.http.addRoute(new PlayerPageRoute(server.ctx));
  t.after(() => route.close());
  const pub = publish(server.url('/feed1.ffm'), {
    codecs: 'h264-aac',
    size: '640x360',
    seconds: 90,
    extra: ['-vf', clockBarcodeFilter(), '-g', String(gopFrames)],
  });
  t.after(() => pub.stop());
  await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
  return server;
}

interface Playback {
  time: number;
  frames: number;
  engine: string;
  error: string;
}

function playback(page: Page): Promise<Playback> {
  return page.evaluate(`(() => {
    const v = document.querySelector('video');
    const p = window.feedcastPlayer;
    return { time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames, engine: p.engine, error: p.error };
  })()`);
}

/** Browser-side expressions (strings: the tests are typechecked without the DOM library). */
const VIDEO_TIME = "document.querySelector('video').currentTime";
const VIDEO_FRAMES = "document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames";
const SHOWN_DELAY = 'window.feedcastPlayer.delayMs()';

/** A 32x18 snapshot of the picture: its mean brightness and a fingerprint to compare two draws. */
function snapshot(page: Page): Promise<{ mean: number; sum: number }> {
  return page.evaluate(`(() => {
    const v = document.querySelector('video');
    const c = document.createElement('canvas');
    c.width = 32;
    c.height = 18;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0, 32, 18);
    const d = g.getImageData(0, 0, 32, 18).data;
    let total = 0;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) {
      const y = d[i] + d[i + 1] + d[i + 2];
      total += y;
      sum = (sum * 31 + y) % 1000003;
    }
    return { mean: total / (3 * 32 * 18), sum };
  })()`);
}

interface DelayFigures {
  medianMs: number;
  minMs: number;
  maxMs: number;
}

/** Glass-to-glass delay over `samples` reads of the barcode, 500 ms apart: median and range. */
async function measureDelayMs(page: Page, samples: number): Promise<DelayFigures> {
  const values: number[] = [];
  while (values.length < samples) {
    const captured = await page.evaluate<number | null>(readClockBarcode);
    if (captured !== null) values.push(Date.now() - captured);
    await page.waitForTimeout(500);
  }
  values.sort((a, b) => a - b);
  return { medianMs: values[Math.floor(values.length / 2)]!, minMs: values[0]!, maxMs: values[values.length - 1]! };
}

/** hls.js's own view, where it plays: its target latency (PART-HOLD-BACK plus 1 s per stall), its latency, the rate. */
const HLS_STATE = `(() => {
  const h = window.feedcastPlayer.hls;
  const v = document.querySelector('video');
  return h ? { target: h.targetLatency, latency: h.latency, rate: v.playbackRate, waiting: window.waitingEvents || 0 } : null;
})()`;

describe('player page in Chromium', { skip }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
  });

  async function open(t: TestContext, url: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage();
    t.after(() => page.close());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(url);
    return { page, errors };
  }

  test('/watch/feed1 plays LL-HLS with hls.js: time advances, frames decode, the picture is not blank', async (t) => {
    const server = await liveServer(t);
    const probePage = await browser.newPage();
    const support = await probePage.evaluate<{ h264aac: boolean; hevc: boolean }>(`({
      h264aac: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f,mp4a.40.2"'),
      hevc: MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"'),
    })`);
    await probePage.close();
    t.diagnostic(`Chromium MSE: H.264+AAC ${support.h264aac}, HEVC ${support.hevc}`);
    assert.equal(support.h264aac, true);

    const { page, errors } = await open(t, server.url('/watch/feed1'));
    await page.waitForFunction(`${VIDEO_TIME} > 2`, undefined, { timeout: 30_000 });
    const a = await playback(page);
    assert.match(a.engine, /^hls\.js /, 'hls.js is used where MediaSource exists');
    const s1 = await snapshot(page);
    await page.waitForFunction(`${VIDEO_FRAMES} > ${a.frames + 25}`, undefined, { timeout: 15_000 });
    const b = await playback(page);
    assert.ok(b.time > a.time, `currentTime advanced ${a.time} -> ${b.time}`);
    assert.ok(b.frames > a.frames, `decoded frames ${a.frames} -> ${b.frames}`);
    const s2 = await snapshot(page);
    assert.ok(s1.mean > 20 && s2.mean > 20, `picture not black (mean ${s1.mean.toFixed(0)}, ${s2.mean.toFixed(0)})`);
    assert.notEqual(s1.sum, s2.sum, 'the picture changes between two draws');
    const delay = await page.evaluate<number>(SHOWN_DELAY);
    assert.ok(Number.isFinite(delay), 'the page shows a delay behind live');
    assert.equal(b.error, '');
    assert.deepEqual(errors, []);
  });

  test('/watch/feed1?src=flv plays HTTP-FLV with mpegts.js', async (t) => {
    const server = await liveServer(t);
    const { page, errors } = await open(t, server.url('/watch/feed1?src=flv'));
    await page.waitForFunction(`${VIDEO_TIME} > 1`, undefined, { timeout: 30_000 });
    const a = await playback(page);
    assert.equal(a.engine, 'mpegts.js');
    await page.waitForFunction(`${VIDEO_FRAMES} > ${a.frames + 10}`, undefined, { timeout: 15_000 });
    assert.ok((await snapshot(page)).mean > 20);
    assert.deepEqual(errors, []);
  });

  // A measurement, not a behaviour check: it takes minutes, so it runs on demand (npm run measure:delay).
  const measure =
    process.env['FEEDCAST_MEASURE_DELAY'] !== undefined ? false : 'delay measurement: run it with npm run measure:delay';
  test('glass-to-glass delay by mode (reported, not asserted)', { timeout: 400_000, skip: measure }, async (t) => {
    const cases: { name: string; hls: Partial<HlsRouteOptions>; src: string; gopFrames?: number }[] = [
      { name: 'LL-HLS, 0.5 s parts, 2 s segments', hls: { partTargetMs: 500 }, src: 'll' },
      { name: 'LL-HLS, 0.5 s parts, 2 s GOP (-g 50)', hls: { partTargetMs: 500 }, src: 'll', gopFrames: 50 },
      { name: 'LL-HLS, 0.5 s parts, 4 s GOP (-g 100)', hls: { partTargetMs: 500 }, src: 'll', gopFrames: 100 },
      { name: 'LL-HLS, 1 s parts, 2 s segments', hls: { partTargetMs: 1000 }, src: 'll' },
      { name: 'LL-HLS, 1 s parts, PART-HOLD-BACK 2 parts', hls: { partTargetMs: 1000, partHoldBackParts: 2 }, src: 'll' },
      { name: 'LL-HLS, 0.5 s parts, PART-HOLD-BACK 2 parts', hls: { partTargetMs: 500, partHoldBackParts: 2 }, src: 'll' },
      { name: 'LL-HLS, 0.32 s parts, 1 s segments', hls: { partTargetMs: 320, segmentTargetMs: 1000 }, src: 'll' },
      { name: 'HLS (fMP4, 2 s segments)', hls: {}, src: 'hls' },
      { name: 'HLS (MPEG-TS, 2 s segments)', hls: {}, src: 'ts' },
      { name: 'HTTP-FLV (mpegts.js)', hls: {}, src: 'flv' },
    ];
    // FEEDCAST_MEASURE_ONLY=text measures only the cases whose name contains it.
    const only = process.env['FEEDCAST_MEASURE_ONLY'];
    const results: string[] = [];
    for (const c of cases.filter((k) => only === undefined || k.name.includes(only))) {
      await t.test(c.name, async (tt) => {
        const server = await liveServer(tt, c.hls, c.gopFrames);
        // Warm the segmenter so the player joins a full window, as a viewer of a running stream would.
        const playlist = c.src === 'ts' ? '/feed1/ts/index.m3u8' : '/feed1/index.m3u8';
        if (c.src !== 'flv') {
          await waitFor(
            '4 segments',
            async () => ((await (await fetch(server.url(playlist))).text()).match(/#EXTINF/g) ?? []).length >= 4,
            30_000,
          );
        }
        const { page } = await open(tt, server.url(`/watch/feed1?src=${c.src}`));
        await page.evaluate(
          "window.waitingEvents = 0; document.querySelector('video').addEventListener('waiting', () => window.waitingEvents++)",
        );
        await page.waitForFunction(`${VIDEO_TIME} > 3`, undefined, { timeout: 40_000 });
        await page.waitForTimeout(3000); // let the player settle at its live distance
        const d = await measureDelayMs(page, 40);
        const shown = await page.evaluate<number>(SHOWN_DELAY);
        const h = await page.evaluate<{ target: number; latency: number; rate: number; waiting: number } | null>(HLS_STATE);
        const s = (ms: number): string => (ms / 1000).toFixed(2);
        results.push(
          `${c.name}: glass-to-glass ${s(d.medianMs)} s (${s(d.minMs)}–${s(d.maxMs)} over 20 s); page readout ${s(shown)} s` +
            (h === null
              ? ''
              : `; hls.js target ${h.target.toFixed(2)} s, latency ${h.latency.toFixed(2)} s, rate ${h.rate}, ${h.waiting} waiting events`),
        );
        assert.ok(d.medianMs > 0 && d.medianMs < 60_000, `a plausible delay (${d.medianMs} ms): the barcode decodes`);
      });
    }
    for (const r of results) t.diagnostic(r);
  });
});
