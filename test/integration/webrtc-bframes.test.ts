// WebRTC and H.264 with B-frames (issue 22): browsers decode no reordered H.264 over RTP, so a
// source with B-frames played at a few frames per second in Chromium with a picture-loss request
// after another. Such a feed's video is now re-encoded without B-frames by one shared ffmpeg for
// its WebRTC viewers, announced in the answer's X-Feedcast-Note, the log and the status.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { REENCODE_NOTE } from '../../src/protocols/webrtc/rtp-source.js';
import { skipWithoutChromium } from '../helpers/browser.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { waitFor } from '../helpers/test-server.js';
import { WHEP_CLIENT } from '../helpers/webrtc-browser.js';
import { sharedWebRtcBrowser, webrtcServer } from '../helpers/webrtc-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutChromium();

interface WhepStats {
  framesDecoded: number;
  framesReceived: number;
  pliCount: number;
  codec: string;
}

function whepStats(page: Page): Promise<WhepStats> {
  return page.evaluate<WhepStats>('window.whepStats()');
}

describe('WebRTC with B-frames in the source', { skip }, () => {
  const browser = sharedWebRtcBrowser();

  test(
    'Chromium decodes every frame it receives: the video is re-encoded without B-frames, once, and says so',
    { timeout: 90_000 },
    async (t) => {
      const { server, webrtc } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n');
      // libx264 with two B-frames between references (Main profile), as most cameras and files have.
      const pub = publish(server.url('/feed1.ffm'), {
        codecs: 'h264-only',
        size: '640x360',
        seconds: 90,
        extra: ['-bf', '2', '-profile:v', 'main'],
      });
      t.after(() => pub.stop());
      const feed = await (async () => {
        await waitFor('the feed to get its track', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 1);
        return server.ctx.feeds.get('feed1')!;
      })();
      // The publisher really sends reordered frames: some frame is shown before the one decoded ahead of it.
      let lastPts = -1;
      let reordered = false;
      const off = feed.on('frame', (f) => {
        if (f.pts90k < lastPts) reordered = true;
        lastPts = f.pts90k;
      });
      await waitFor('a reordered frame from the publisher', () => reordered);
      off();

      const page = await browser().newPage();
      t.after(() => page.close());
      await page.goto(server.url('/'));
      await page.evaluate(WHEP_CLIENT);
      const r = await page.evaluate<{ status: number; text: string }>(
        `window.whepPlay(${JSON.stringify(server.url('/feed1/whep'))})`,
      );
      assert.equal(r.status, 201, r.text);
      assert.match(r.text, /a=fmtp:\d+ .*profile-level-id=42/i, 'the answer names Baseline, what the re-encode sends');

      await waitFor('decoded frames', async () => (await whepStats(page)).framesDecoded > 10, 40_000);
      const first = await whepStats(page);
      await waitFor(
        '75 more decoded frames',
        async () => (await whepStats(page)).framesDecoded >= first.framesDecoded + 75,
        40_000,
      );
      const last = await whepStats(page);
      const received = last.framesReceived - first.framesReceived;
      const decoded = last.framesDecoded - first.framesDecoded;
      // Passed through, Chromium received every frame but decoded only the keyframes and asked for more.
      assert.ok(decoded >= received - 2, `decoded ${decoded} of the ${received} frames received`);
      assert.ok(last.pliCount - first.pliCount <= 1, `${last.pliCount - first.pliCount} picture-loss requests while playing`);
      assert.equal(last.codec, 'video/H264');

      const [status] = webrtc.status();
      assert.equal(status?.videoReencoded, true);
      assert.ok(webrtc.sources.size === 1, 'one shared source (and so one re-encode) for the feed');
      const note = await fetch(server.url('/feed1/whep'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: await page.evaluate<string>('window.whep.pc.localDescription.sdp'),
      });
      assert.equal(note.status, 201);
      assert.ok(
        (note.headers.get('x-feedcast-note') ?? '').includes(REENCODE_NOTE.slice(0, 40)),
        note.headers.get('x-feedcast-note') ?? 'no note',
      );
      const location = note.headers.get('location');
      if (location !== null) await fetch(server.url(location), { method: 'DELETE' });
    },
  );
});
