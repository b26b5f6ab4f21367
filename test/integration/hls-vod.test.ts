// HLS VOD over a time range (issue 21, part 3): `/FEED/index.m3u8?start=T&end=T2` from the fMP4
// recordings and from the FeedFile ring. ffmpeg publishes with the capture clock burnt in; ffprobe
// reads the playlist (first and last timestamps, frame count, the picture's clock at the start);
// hls.js in Chromium plays it and seeks; bad ranges get 400/404/416 with the reason.

import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser } from 'playwright-core';
import { RecordType } from '../../src/feedfile/format.js';
import { parseVodFileName } from '../../src/record/vod-plan.js';
import { clockBarcodeFilter, readClockBarcode, skipWithoutChromium } from '../helpers/browser.js';
import { launchChromium } from '../helpers/chromium.js';
import { tempDir } from '../helpers/feedfile-fixtures.js';
import { FFMPEG, probeVideoPackets, publish, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { recordingsListing } from '../helpers/recordings.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const skipBrowser = skip || skipWithoutChromium();
const GOP_MS = 1000;
const FPS = 25;

/**
 * Media seconds the ring holds from its join point at `fromMs` to the wall time `endMs`: from the
 * last join point before `endMs`, with the wall time the ring recorded for it, as the server maps it.
 */
async function ringMediaSeconds(server: TestServer, fromMs: number, endMs: number): Promise<number> {
  const cursor = server.ctx.feedFiles.of(server.ctx.feeds.get('ring')!)!.cursor();
  const from = await cursor.seek(fromMs);
  assert.ok(from.kind === 'ok' && from.wallMs === fromMs, 'the playlist starts on a join point of the ring');
  let last = { wallMs: from.wallMs, dts90k: from.dts90k };
  for (let r = await cursor.next(); r !== undefined; r = await cursor.next()) {
    if (r.type !== RecordType.tracks || !r.join) continue;
    if (r.wallMs >= endMs) break;
    last = { wallMs: r.wallMs, dts90k: r.dts90k };
  }
  return (last.dts90k - from.dts90k) / 90_000 + (endMs - last.wallMs) / 1000;
}

/**
 * One server, two feeds fed by the same kind of ffmpeg: `rec` records fMP4 files, `ring` keeps a
 * FeedFile. With `clock`, the capture time is burnt in (its timestamps follow the wall clock, so a
 * loaded machine drops frames at the source: only then are frames missing).
 */
async function recordedServer(t: TestContext, clock: boolean): Promise<TestServer> {
  const dir = tempDir(t);
  const server = await startTestServer(
    t,
    `<Feed rec.ffm>\n  Record on\n  RecordSegment 4s\n  RecordPath ${dir}/%feed/%H%M%S.mp4\n</Feed>\n` +
      `<Feed ring.ffm>\n  File ${dir}/ring.ffm\n  FileMaxSize 64M\n</Feed>\n<Feed live.ffm>\n</Feed>\n`,
  );
  const pubs = ['rec', 'ring'].map((feed) =>
    publish(server.url(`/${feed}.ffm`), {
      codecs: 'h264-aac',
      size: '640x360',
      seconds: 14,
      extra: [...(clock ? ['-vf', clockBarcodeFilter()] : []), '-g', String((GOP_MS / 1000) * FPS)],
    }),
  );
  t.after(() => Promise.all(pubs.map((p) => p.stop())));
  for (const p of pubs) assert.equal(await p.exited, 0, p.stderr());
  await waitFor(
    'the recordings to be finished',
    async () =>
      (await recordingsListing(server.url(''), 'rec')).files.every((f) => !f.writing) &&
      (await recordingsListing(server.url(''), 'ring')).spans.length > 0,
    30_000,
  );
  return server;
}

describe('HLS VOD playlists over a time range', { skip }, () => {
  test(
    'from the recordings and from the ring: VOD playlist, keyframe starts, timestamps and frames as asked; bad ranges refused',
    { timeout: 180_000 },
    async (t) => {
      const server = await recordedServer(t, false);
      for (const feed of ['rec', 'ring']) {
        const span = (await recordingsListing(server.url(''), feed)).spans[0]!;
        assert.ok(span.seconds > 11, `${feed} holds ${span.seconds} s`);
        const startMs = span.startMs + 2500;
        const endMs = span.startMs + 9300;
        const playlistUrl = server.url(
          `/${feed}/index.m3u8?start=${new Date(startMs).toISOString()}&end=${(endMs / 1000).toFixed(3)}`,
        );
        const res = await fetch(playlistUrl);
        const text = await res.text();
        assert.equal(res.status, 200, text);
        assert.equal(res.headers.get('content-type'), 'application/vnd.apple.mpegurl');
        assert.match(text, /^#EXTM3U\n/);
        assert.match(text, /#EXT-X-PLAYLIST-TYPE:VOD\n/);
        assert.match(text, /#EXT-X-ENDLIST\n$/);
        assert.match(text, /#EXT-X-MAP:URI="vod\/[a-z]+-[\d.]+-init\.mp4"/);
        assert.doesNotMatch(text, /#EXT-X-PART|PRELOAD-HINT/, 'a VOD playlist has no LL-HLS parts');
        const extinf = [...text.matchAll(/#EXTINF:([\d.]+),\n(\S+)/g)].map((m) => ({ seconds: Number(m[1]), uri: m[2]! }));
        assert.ok(extinf.length >= 3, `${extinf.length} segments`);
        const target = Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(text)?.[1]);
        for (const s of extinf) {
          assert.ok(Math.round(s.seconds) <= target, `EXTINF ${s.seconds} within the target duration ${target}`);
          assert.ok(parseVodFileName(s.uri.slice(4)) !== undefined, `segment name ${s.uri}`);
        }
        const firstWall = Date.parse(res.headers.get('x-feedcast-start')!);
        assert.ok(
          firstWall <= startMs + 1 && firstWall > startMs - GOP_MS - 50,
          `${feed}: starts ${startMs - firstWall} ms before start (GOP 1 s)`,
        );
        // How much media lies between the first keyframe and end. The ring maps a wall time to its
        // media from the join point at or before it, each with the wall time it arrived at; under
        // load ffmpeg -re falls behind its clock, so join points drift from firstWall + media time
        // (81 ms in one CI run at load 13). Map end from the ring's own join point, as the server does.
        const expectedS = feed === 'ring' ? await ringMediaSeconds(server, firstWall, endMs) : (endMs - firstWall) / 1000;
        const total = extinf.reduce((n, s) => n + s.seconds, 0);
        assert.ok(
          Math.abs(total - expectedS) * 1000 <= 1000 / FPS + 1,
          `${feed}: the playlist ends at end (${((total - expectedS) * 1000).toFixed(1)} ms off)`,
        );

        // ffprobe reads it: starts on a keyframe at 0, one frame every 40 ms up to the end, none missing across segments.
        const v = await probeVideoPackets(playlistUrl);
        assert.ok(v.keys[0], `${feed}: the first frame is a keyframe`);
        assert.ok(Math.abs(v.dts[0]!) < 0.001 || Math.abs(v.pts[0]!) < 0.1, `${feed}: first timestamp ${v.dts[0]} s`);
        const lastEnd = v.dts[v.dts.length - 1]! + v.durations[v.durations.length - 1]! - v.dts[0]!;
        assert.ok(Math.abs(lastEnd - expectedS) <= 1 / FPS + 0.002, `${feed}: video ends at ${lastEnd} s, asked ${expectedS} s`);
        for (let i = 1; i < v.dts.length; i++) {
          assert.ok(
            Math.abs(v.dts[i]! - v.dts[i - 1]! - 1 / FPS) < 0.002,
            `${feed}: DTS step at packet ${i}: ${v.dts[i - 1]} -> ${v.dts[i]}`,
          );
        }
        assert.equal(v.dts.length, Math.round(lastEnd * FPS), `${feed}: frame count matches the duration`);
        // Everything decodes, audio too.
        const decode = await run(FFMPEG, ['-v', 'error', '-i', playlistUrl, '-f', 'null', '-'], 60_000);
        assert.equal(decode.code, 0, decode.stderr);
        assert.equal(decode.stderr.trim(), '', `${feed}: decodes without errors`);
        const segment = await fetch(server.url(`/${feed}/${extinf[1]!.uri}`));
        assert.equal(segment.status, 200);
        assert.match(segment.headers.get('cache-control') ?? '', /immutable/, 'segments are named by content: cacheable');
      }

      // Bad ranges: 400, 404 and 416 with the reason.
      const now = Date.now();
      const ask = async (path: string): Promise<{ status: number; text: string }> => {
        const res = await fetch(server.url(path));
        return { status: res.status, text: await res.text() };
      };
      let r = await ask('/rec/index.m3u8?start=yesterday-ish');
      assert.equal(r.status, 400);
      assert.match(r.text, /is not a time/);
      r = await ask('/rec/index.m3u8?end=-1m');
      assert.equal(r.status, 400);
      assert.match(r.text, /start= is missing/);
      r = await ask(`/rec/index.m3u8?start=${now / 1000}&end=${now / 1000 - 5}`);
      assert.equal(r.status, 400);
      assert.match(r.text, /must come after start/);
      r = await ask('/ring/index.m3u8?start=-30h&end=-1m');
      assert.equal(r.status, 400);
      assert.match(r.text, /at most 24 h/);
      r = await ask(
        `/ring/index.m3u8?start=${new Date(now + 3_600_000).toISOString()}&end=${new Date(now + 3_700_000).toISOString()}`,
      );
      assert.equal(r.status, 416);
      assert.match(r.text, /in the future/);
      for (const feed of ['rec', 'ring']) {
        r = await ask(`/${feed}/index.m3u8?start=-20h&end=-19h`);
        assert.equal(r.status, 416, `${feed}: ${r.text}`);
        assert.match(r.text, /is outside what it holds/);
      }
      r = await ask('/live/index.m3u8?start=-1m');
      assert.equal(r.status, 404);
      assert.match(r.text, /keeps no past/);
      r = await ask('/rec/vod/rec-1-0-90000.m4s');
      assert.equal(r.status, 404);
      assert.match(r.text, /no longer holds/);
      r = await ask('/rec/vod/../../etc/passwd');
      assert.equal(r.status, 404);
    },
  );
});

describe('HLS VOD in Chromium', { skip: skipBrowser }, () => {
  let browser: Browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  test(
    'hls.js plays a recorded range and seeks into it: the picture shown is from the time asked (± one GOP)',
    { timeout: 180_000 },
    async (t) => {
      const server = await recordedServer(t, true);
      for (const feed of ['rec', 'ring']) {
        const span = (await recordingsListing(server.url(''), feed)).spans[0]!;
        const startMs = span.startMs + 1000;
        const endMs = span.startMs + 12_000;
        const playlist = server.url(`/${feed}/index.m3u8?start=${startMs / 1000}&end=${endMs / 1000}`);
        const firstWall = Date.parse((await fetch(playlist)).headers.get('x-feedcast-start')!);
        const page = await browser.newPage();
        t.after(() => page.close());
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(server.url('/recordings')); // an HTML page of the server: the player below is same-origin
        await page.setContent(
          `<video muted autoplay playsinline></video><script src="${server.url('/web/vendor/hls.min.js')}"></script>` +
            `<script>const hls = new Hls(); window.hlsErrors = []; hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.hlsErrors.push(d.details); });` +
            `hls.loadSource(${JSON.stringify(playlist)}); hls.attachMedia(document.querySelector('video'));</script>`,
          { waitUntil: 'domcontentloaded' },
        );
        await page
          .waitForFunction("document.querySelector('video').currentTime > 1", undefined, { timeout: 30_000 })
          .catch(async (err: unknown) => {
            throw new Error(`${feed}: no playback; hls.js errors ${JSON.stringify(await page.evaluate('window.hlsErrors'))}`, {
              cause: err,
            });
          });
        const duration = await page.evaluate<number>("document.querySelector('video').duration");
        assert.ok(Math.abs(duration - (endMs - firstWall) / 1000) < 0.2, `${feed}: duration ${duration} s`);
        // Seek 7 s in: the picture shown then was captured 7 s after the first one (± one GOP).
        await page.evaluate("document.querySelector('video').currentTime = 7");
        await page.waitForFunction(
          "(() => { const v = document.querySelector('video'); return !v.seeking && v.currentTime > 7.2; })()",
          undefined,
          {
            timeout: 30_000,
          },
        );
        // Paused, the picture on screen is the one at currentTime.
        const at = await page.evaluate<number>(
          "(() => { const v = document.querySelector('video'); v.pause(); return v.currentTime; })()",
        );
        await page.waitForFunction("document.querySelector('video').paused");
        assert.ok(at < 10, `${feed}: the seek to 7 s landed at ${at} s`);
        const shown = await page.evaluate<number | null>(readClockBarcode);
        assert.ok(shown !== null, 'the picture carries its clock');
        const wanted = firstWall + at * 1000;
        assert.ok(
          Math.abs(shown - wanted) < GOP_MS,
          `${feed}: at ${at.toFixed(2)} s the picture is from ${shown - wanted} ms off the time asked`,
        );
        await page.evaluate("void document.querySelector('video').play()");
        await page.waitForFunction(`document.querySelector('video').currentTime > ${at + 1}`, undefined, { timeout: 30_000 });
        assert.deepEqual(await page.evaluate<string[]>('window.hlsErrors'), []);
        assert.deepEqual(errors, []);
      }
    },
  );
});
