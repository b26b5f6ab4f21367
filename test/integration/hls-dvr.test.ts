// HLSDVRWindow (issue 21, part 3): the live playlist of a feed holds that much history, from the
// moment its publisher arrived (before any viewer), with LL-HLS parts only at the live edge; hls.js
// in Chromium seeks back into it and lands at the time asked (the capture clock burnt into the
// picture, ± one GOP), plays on from there, and returns to live. The feed has a File: only the
// last HLSWindow segments stay in memory, the older ones are read back from the ring (one
// fragment each instead of their parts), and the seek lands in those.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clockBarcodeFilter, readClockBarcode, skipWithoutChromium } from '../helpers/browser.js';
import { launchChromium } from '../helpers/chromium.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { tempDir } from '../helpers/feedfile-fixtures.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutChromium();
const GOP_MS = 1000;
const BACK_S = 15;

/** Seconds of media the playlist lists (EXTINF), and how many of its segments list parts. */
function window(text: string): { seconds: number; segmentsWithParts: number } {
  const seconds = [...text.matchAll(/#EXTINF:([\d.]+),/g)].reduce((n, m) => n + Number(m[1]), 0);
  const segmentsWithParts = text.split('#EXTINF').filter((chunk) => chunk.includes('#EXT-X-PART:')).length;
  return { seconds, segmentsWithParts };
}

test(
  'HLSDVRWindow: hls.js seeks back into the live window, lands at the time asked, plays on and returns to live',
  { skip, timeout: 240_000 },
  async (t) => {
    const dir = tempDir(t);
    const server = await startTestServer(
      t,
      `HLSWindow 3\n<Feed dvr.ffm>\n  HLSDVRWindow 60s\n  File ${dir}/dvr.ffm\n  FileMaxSize 64M\n</Feed>\n<Feed plain.ffm>\n</Feed>\n`,
    );
    const pub = publish(server.url('/dvr.ffm'), {
      codecs: 'h264-aac',
      size: '640x360',
      seconds: 120,
      extra: ['-vf', clockBarcodeFilter(), '-g', String((GOP_MS / 1000) * 25)],
    });
    t.after(() => pub.stop());
    const plainPub = publish(server.url('/plain.ffm'), { codecs: 'h264-aac', seconds: 120 });
    t.after(() => plainPub.stop());
    // Nobody asks for the playlist yet: the window fills from the publisher's arrival.
    await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('dvr')?.tracks.length ?? 0) === 2, 30_000);
    const started = Date.now();
    await waitFor('25 s of history', () => Date.now() - started > 25_000, 40_000);
    const playlist = server.url('/dvr/index.m3u8');
    const text = await (await fetch(playlist)).text();
    const held = window(text);
    assert.ok(
      held.seconds >= 20,
      `the live playlist holds ${held.seconds} s before its first request (HLSWindow alone: 24 s at most)`,
    );
    assert.ok(held.segmentsWithParts <= 3 && held.segmentsWithParts >= 1, `${held.segmentsWithParts} segments list LL-HLS parts`);
    // The oldest segment comes from the ring (one fragment), the newest complete one from memory (its parts).
    const uris = [...text.matchAll(/#EXTINF:[\d.]+,\n(\S+)/g)].map((m) => m[1]!);
    const moofs = async (uri: string): Promise<number> => {
      const res = await fetch(server.url(`/dvr/${uri}`));
      assert.equal(res.status, 200, uri);
      const body = Buffer.from(await res.arrayBuffer());
      let n = 0;
      for (let at = 0; at + 8 <= body.length; at += body.readUInt32BE(at))
        if (body.toString('latin1', at + 4, at + 8) === 'moof') n++;
      return n;
    };
    assert.equal(await moofs(uris[0]!), 1, 'the oldest segment is read back from the feed file');
    assert.ok((await moofs(uris[uris.length - 1]!)) > 1, 'the newest segment is its parts, from memory');
    // A feed without HLSDVRWindow is segmented from its first request: its playlist starts with the last GOPs.
    const plainRes = await fetch(server.url('/plain/index.m3u8'));
    const plainText = await plainRes.text();
    assert.equal(plainRes.status, 200, plainText);
    const plain = window(plainText);
    assert.ok(plain.seconds > 0 && plain.seconds < 10, `the plain feed's first playlist holds ${plain.seconds} s`);

    const browser = await launchChromium();
    t.after(() => browser.close());
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url('/recordings')); // an HTML page of the server: the player below is same-origin
    await page.setContent(
      `<video muted autoplay playsinline></video><script src="${server.url('/web/vendor/hls.min.js')}"></script>` +
        `<script>const hls = new Hls({ lowLatencyMode: true }); window.hls = hls; window.hlsErrors = [];` +
        `hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.hlsErrors.push(d.details); });` +
        `hls.loadSource(${JSON.stringify(playlist)}); hls.attachMedia(document.querySelector('video'));</script>`,
      { waitUntil: 'domcontentloaded' },
    );
    const video = "document.querySelector('video')";
    await page.waitForFunction(`${video}.currentTime > 1 && !${video}.paused`, undefined, { timeout: 30_000 });
    const seekable = await page.evaluate<{ start: number; end: number }>(
      `({ start: ${video}.seekable.start(0), end: ${video}.seekable.end(0) })`,
    );
    assert.ok(seekable.end - seekable.start >= 20, `hls.js can seek over ${seekable.end - seekable.start} s`);

    /** Pauses, and reads the playback position and the capture clock of the picture on screen. */
    const pausedAt = async (): Promise<{ time: number; clock: number }> => {
      const time = await page.evaluate<number>(`(() => { ${video}.pause(); return ${video}.currentTime; })()`);
      await page.waitForFunction(`${video}.paused`);
      const clock = await page.evaluate<number | null>(readClockBarcode);
      assert.ok(clock !== null, 'the picture carries its clock');
      return { time, clock };
    };
    const live = await pausedAt();
    assert.ok(Date.now() - live.clock < 10_000, `live playback is ${Date.now() - live.clock} ms behind the capture`);

    // Seek back: the picture then is from BACK_S seconds earlier (± one GOP), and playback goes on from there.
    const target = live.time - BACK_S;
    await page.evaluate(`${video}.currentTime = ${target}; void ${video}.play()`);
    await page.waitForFunction(
      `!${video}.seeking && ${video}.currentTime > ${target + 0.5} && ${video}.currentTime < ${target + 5}`,
      undefined,
      {
        timeout: 30_000,
      },
    );
    const back = await pausedAt();
    const expected = live.clock - (live.time - back.time) * 1000;
    assert.ok(
      Math.abs(back.clock - expected) < GOP_MS,
      `after the seek the picture is ${back.clock - expected} ms off the time asked`,
    );
    assert.ok(live.clock - back.clock > (BACK_S - 2) * 1000, `${live.clock - back.clock} ms back`);
    await page.evaluate(`void ${video}.play()`);
    await page.waitForFunction(`${video}.currentTime > ${back.time + 2}`, undefined, { timeout: 30_000 });

    // Go live again.
    await page.evaluate(`${video}.currentTime = window.hls.liveSyncPosition; void ${video}.play()`);
    await page.waitForFunction(`!${video}.seeking && !${video}.paused && ${video}.currentTime > ${live.time}`, undefined, {
      timeout: 30_000,
    });
    const again = await pausedAt();
    assert.ok(Date.now() - again.clock < 10_000, `back at live: ${Date.now() - again.clock} ms behind the capture`);
    assert.ok(again.clock > live.clock, 'live moved on');
    assert.deepEqual(await page.evaluate<string[]>('window.hlsErrors'), []);
    assert.deepEqual(errors, []);
  },
);
