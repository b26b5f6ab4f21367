// The player page's timeline (issue 21, part 4): /watch/FEED shows what a recorded feed holds; a
// drag back (the slider released at a past time) plays that time, the picture shown is from the
// time asked (capture clock burnt in, ± one GOP) and playback goes on; "Go live" returns to live;
// /watch/FEED?start=T&end=T2 (the recordings page's Play link) starts in that range.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clockBarcodeFilter, readClockBarcode, skipWithoutChromium } from '../helpers/browser.js';
import { launchChromium } from '../helpers/chromium.js';
import { tempDir } from '../helpers/feedfile-fixtures.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutChromium();
const GOP_MS = 1000;
const VIDEO = "document.querySelector('video')";

test(
  'player timeline: shows what is held, a drag back plays that time (± one GOP) and goes on, Go live returns',
  { skip, timeout: 240_000 },
  async (t) => {
    const dir = tempDir(t);
    const server = await startTestServer(
      t,
      `<Feed cam.ffm>\n  Record on\n  RecordSegment 5s\n  RecordPath ${dir}/%feed/%H%M%S.mp4\n</Feed>\n`,
    );
    const pub = publish(server.url('/cam.ffm'), {
      codecs: 'h264-aac',
      size: '640x360',
      seconds: 150,
      extra: ['-vf', clockBarcodeFilter(), '-g', String((GOP_MS / 1000) * 25)],
    });
    t.after(() => pub.stop());
    await waitFor(
      '25 s recorded',
      async () => {
        const res = await fetch(server.url('/api/v1/recordings/cam'));
        const listing = (await res.json()) as { spans: { seconds: number }[] };
        return (listing.spans[0]?.seconds ?? 0) > 25;
      },
      60_000,
    );

    const browser = await launchChromium();
    t.after(() => browser.close());
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url('/watch/cam?src=ll'));
    await page.waitForFunction(`${VIDEO}.currentTime > 1 && window.feedcastPlayer.playing`, undefined, { timeout: 30_000 });
    await page.waitForFunction(
      "!document.getElementById('timeline').hidden && document.querySelectorAll('#held span').length > 0",
      undefined,
      {
        timeout: 30_000,
      },
    );
    const range = await page.evaluate<{ min: number; max: number }>(
      "({ min: Number(document.getElementById('seek').min), max: Number(document.getElementById('seek').max) })",
    );
    assert.ok(range.max - range.min > 20_000, `the timeline spans ${range.max - range.min} ms`);

    /** Pauses, reads the playback position, the picture's capture clock and the date it is shown at. */
    const pausedAt = async (): Promise<{ time: number; clock: number }> => {
      const time = await page.evaluate<number>(`(() => { ${VIDEO}.pause(); return ${VIDEO}.currentTime; })()`);
      await page.waitForFunction(`${VIDEO}.paused`);
      const clock = await page.evaluate<number | null>(readClockBarcode);
      assert.ok(clock !== null, 'the picture carries its clock');
      return { time, clock };
    };

    // Drag back 20 s: the slider released there.
    const asked = Date.now() - 20_000;
    await page.evaluate(
      `(() => { const s = document.getElementById('seek'); s.value = String(${asked}); s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); })()`,
    );
    await page.waitForFunction(`window.feedcastPlayer.vod !== null && ${VIDEO}.currentTime > 0.3`, undefined, {
      timeout: 30_000,
    });
    const landed = await pausedAt();
    // The range starts at the keyframe at or before the time asked: the picture is at most a GOP
    // (plus the capture-to-server delay: ffmpeg's -re publisher falls behind its own clock on a loaded
    // machine, 1.8 s once in CI) before it, and currentTime after it.
    const offset = landed.clock - landed.time * 1000 - asked;
    assert.ok(offset > -GOP_MS - 1500 && offset < 300, `the seek landed ${offset} ms from the time asked`);
    await page.evaluate(`void ${VIDEO}.play()`);
    await page.waitForFunction(`${VIDEO}.currentTime > ${landed.time + 1.5}`, undefined, { timeout: 30_000 });
    const later = await pausedAt();
    assert.ok(later.clock - landed.clock > 1000, 'playback went on from there');
    assert.ok(Date.now() - later.clock > 12_000, 'still in the past');
    await page.evaluate(`void ${VIDEO}.play()`);

    // Go live.
    await page.click('#live');
    await page.waitForFunction(
      `window.feedcastPlayer.vod === null && window.feedcastPlayer.playing && ${VIDEO}.currentTime > 1`,
      undefined,
      {
        timeout: 30_000,
      },
    );
    const live = await pausedAt();
    assert.ok(Date.now() - live.clock < 8000, `back at live: ${Date.now() - live.clock} ms behind the capture`);

    // The recordings page's Play link: /watch/FEED?start=T&end=T2 starts in that range.
    const from = Date.now() - 15_000;
    await page.goto(server.url(`/watch/cam?start=${new Date(from).toISOString()}&end=${new Date(from + 8000).toISOString()}`));
    await page.waitForFunction(`window.feedcastPlayer.vod !== null && ${VIDEO}.currentTime > 0.3`, undefined, {
      timeout: 30_000,
    });
    const linked = await pausedAt();
    const linkedOffset = linked.clock - linked.time * 1000 - from;
    assert.ok(linkedOffset > -GOP_MS - 500 && linkedOffset < 300, `the linked range starts ${linkedOffset} ms from its start`);
    const duration = await page.evaluate<number>(`${VIDEO}.duration`);
    assert.ok(duration > 7 && duration < 9.5, `the range lasts ${duration} s`);
    assert.deepEqual(errors, []);
  },
);
