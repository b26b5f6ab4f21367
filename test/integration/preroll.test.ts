// Preroll (ffserver ref §3.4) on a stream whose feed keeps no file: a reader starts at the join point
// that many seconds back in what the shared output has kept, not at the newest keyframe.

import assert from 'node:assert/strict';
import { get, type IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { publish } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

/** Reads FLV tags from an HTTP response and records the video frames' timestamps (ms). */
function flvVideoTimes(url: string): { times: number[]; close: () => void; ready: Promise<IncomingMessage> } {
  const times: number[] = [];
  let buffered = Buffer.alloc(0);
  let headerDone = false;
  let req: ReturnType<typeof get> | undefined;
  const ready = new Promise<IncomingMessage>((resolve, reject) => {
    req = get(url, (res) => {
      resolve(res);
      res.on('data', (d: Buffer) => {
        buffered = Buffer.concat([buffered, d]);
        if (!headerDone) {
          if (buffered.length < 13) return;
          buffered = buffered.subarray(13); // FLV header (9) + PreviousTagSize0 (4)
          headerDone = true;
        }
        while (buffered.length >= 11) {
          const size = buffered.readUIntBE(1, 3);
          if (buffered.length < 11 + size + 4) break;
          const type = buffered[0];
          const ts = buffered.readUIntBE(4, 3) | ((buffered[7] ?? 0) << 24);
          // Video tags, not the AVC sequence header (AVCPacketType 0, sent first with timestamp 0).
          if (type === 9 && buffered[12] === 1) times.push(ts);
          buffered = buffered.subarray(11 + size + 4);
        }
      });
    });
    req.on('error', reject);
  });
  return { times, close: () => req?.destroy(), ready };
}

test('Preroll 3 on a file-less feed starts about 3 s back; a plain reader starts at the newest keyframe', async (t) => {
  const server = await startTestServer(
    t,
    '<Feed feed1.ffm>\n</Feed>\n' +
      '<Stream pre.flv>\nFeed feed1.ffm\nFormat flv\nPreroll 3\n</Stream>\n' +
      '<Stream live.flv>\nFeed feed1.ffm\nFormat flv\n</Stream>\n',
  );
  const pub = publish(server.url('/feed1.ffm'), { seconds: 40 });
  t.after(() => pub.stop());
  await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2, 20_000);

  // A first reader keeps the shared FLV output running, so it accumulates the recent past.
  const first = flvVideoTimes(server.url('/live.flv'));
  t.after(first.close);
  await first.ready;
  await waitFor(
    '6 s of media through the shared output',
    () => (first.times.at(-1) ?? 0) - (first.times[0] ?? 0) >= 6000,
    30_000,
  );

  const pre = flvVideoTimes(server.url('/pre.flv'));
  const live = flvVideoTimes(server.url('/live.flv'));
  t.after(pre.close);
  t.after(live.close);
  await Promise.all([pre.ready, live.ready]);
  await waitFor('both readers to get video', () => pre.times.length > 0 && live.times.length > 0, 10_000);
  const newest = first.times.at(-1) ?? 0;
  const preStart = pre.times[0] ?? 0;
  const liveStart = live.times[0] ?? 0;
  // The GOP is 1 s: a plain reader starts within it; the prerolled one at a keyframe 3-4 s back.
  assert.ok(newest - liveStart <= 1500, `plain reader starts ${newest - liveStart} ms behind the newest frame`);
  assert.ok(newest - preStart >= 2900, `prerolled reader starts ${newest - preStart} ms behind (Preroll 3)`);
  assert.ok(newest - preStart <= 5000, `prerolled reader starts ${newest - preStart} ms behind: at most one GOP more`);
  // And it carries on to live without a gap: its timestamps keep increasing past where it started.
  await waitFor('the prerolled reader to pass the live edge of its start', () => (pre.times.at(-1) ?? 0) > newest, 10_000);
  const steps = pre.times.slice(1).map((ts, i) => ts - (pre.times[i] ?? 0));
  assert.ok(
    steps.every((s) => s > 0 && s <= 200),
    `video steps ${Math.min(...steps)}..${Math.max(...steps)} ms`,
  );
});
