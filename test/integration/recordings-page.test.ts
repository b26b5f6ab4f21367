// The recordings page (issue 21, part 4): headless Chromium with JavaScript off follows the links
// from the index page to /recordings, finds the span a live feed's recording holds, and its
// download link gives an MP4 that ffprobe plays from a keyframe for the span's length.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import type { RecordingsListing } from '../../src/record/listing.js';
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js';
import { tempDir } from '../helpers/feedfile-fixtures.js';
import { FFPROBE, publish, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutChromium();

describe('the recordings page', { skip }, () => {
  let browser: Browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser.close();
  });

  test(
    'lists a recorded span with links that work without JavaScript; the download is a playable MP4',
    { timeout: 120_000 },
    async (t) => {
      const dir = tempDir(t);
      const server = await startTestServer(
        t,
        `<Feed cam.ffm>\n  Record on\n  RecordSegment 2s\n  RecordPath ${dir}/%feed/%H%M%S.mp4\n</Feed>\n<Feed live.ffm>\n</Feed>\n`,
      );
      const pub = publish(server.url('/cam.ffm'), { seconds: 5 });
      t.after(() => pub.stop());
      assert.equal(await pub.exited, 0, pub.stderr());
      await waitFor('the files to be finished', async () => {
        const l = (await (await fetch(server.url('/api/v1/recordings/cam'))).json()) as RecordingsListing;
        return l.files.length >= 2 && l.files.every((f) => !f.writing);
      });
      const listing = (await (await fetch(server.url('/api/v1/recordings/cam'))).json()) as RecordingsListing;
      assert.equal(listing.spans.length, 1);
      const span = listing.spans[0]!;
      const [start, end] = [new Date(span.startMs).toISOString(), new Date(span.endMs).toISOString()];
      const shown = (iso: string): string => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

      const context = await browser.newContext({ javaScriptEnabled: false });
      t.after(() => context.close());
      const page = await context.newPage();
      await page.goto(server.url('/'));
      await page.click('text=Recordings');
      assert.equal(new URL(page.url()).pathname, '/recordings');
      const sections = await page.locator('h2').allTextContents();
      assert.deepEqual(sections, ['cam'], 'the recorded feed is listed, the feed that is not recorded is not');
      const cells = await page.locator('table tr:nth-child(2) td').allTextContents();
      assert.equal(cells[0], shown(start), 'the span starts where the listing says');
      assert.equal(cells[1], shown(end));
      const play = await page.locator('a', { hasText: 'Play' }).getAttribute('href');
      assert.equal(play, `/watch/cam?start=${start}&end=${end}`);
      const download = await page.locator('a', { hasText: 'Download MP4' }).getAttribute('href');
      assert.equal(download, `/cam.mp4?start=${start}&end=${end}`);

      // The status page links to the feed's recordings; the page of one feed shows the same span.
      await page.goto(server.url('/stat.html'));
      await page.click('a[href="/recordings/cam"]');
      assert.equal(await page.locator('a', { hasText: 'Download MP4' }).getAttribute('href'), download);

      const res = await fetch(server.url(download));
      assert.equal(res.status, 200, await res.clone().text());
      const path = join(dir, 'download.mp4');
      writeFileSync(path, Buffer.from(await res.arrayBuffer()));
      const { code, stdout, stderr } = await run(
        FFPROBE,
        [
          '-v',
          'error',
          '-count_frames',
          '-select_streams',
          'v:0',
          '-show_entries',
          'stream=codec_name,width,height,nb_read_frames:format=duration',
          '-of',
          'json',
          path,
        ],
        60_000,
      );
      assert.equal(code, 0, stderr);
      assert.equal(stderr.trim(), '', 'the MP4 decodes without a complaint');
      const probe = JSON.parse(stdout) as {
        streams: { codec_name: string; nb_read_frames: string }[];
        format: { duration: string };
      };
      assert.equal(probe.streams[0]?.codec_name, 'h264');
      const frames = Number(probe.streams[0]?.nb_read_frames);
      assert.ok(Math.abs(frames - span.seconds * 25) <= 2, `${frames} frames decoded for a ${span.seconds} s span at 25 fps`);
      assert.ok(Math.abs(Number(probe.format.duration) - span.seconds) < 0.2, `lasts ${probe.format.duration} s`);
    },
  );
});
