// Issue 24 item 2: the demo listens on every interface with DynamicFeeds on, so anyone on the LAN
// could publish into it. Now only loopback may publish to undeclared feeds (DynamicFeedACL), and
// viewing stays open. The demo runs in a network namespace whose lo also holds 10.99.0.1: a client
// connecting to that address comes from it, a real non-loopback peer for the server's sockets.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FFMPEG, FFPROBE, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { LAN, skipWithoutNetns, startNetnsServer } from '../helpers/netns-server.js';
import { waitFor } from '../helpers/test-server.js';

const HTTP_PORT = 8090;
const RTMP_PORT = 1935;

describe(
  'dynamic feeds: only loopback publishes unless DynamicFeedACL says otherwise',
  { skip: skipWithoutFfmpeg() || skipWithoutNetns() },
  () => {
    test('the demo refuses a publisher from a LAN address (HTTP and RTMP), serves viewers there, and takes one from loopback', async (t) => {
      // The demo as a user starts it (`feedcast`, no config): HTTP 8090 and RTMP 1935 on 0.0.0.0, in its own namespace.
      const demo = await startNetnsServer(t, [], { FEEDCAST_RTSP_PORT: '0' });
      const { lines, inNs } = demo;
      const source = ['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10', '-t', '2', '-c:v', 'libx264', '-g', '10'];

      // From the LAN address: refused, over HTTP and over RTMP.
      await inNs(FFMPEG, ['-v', 'error', ...source, '-f', 'mpegts', `http://${LAN}:${HTTP_PORT}/intruder.ffm`]);
      await inNs(FFMPEG, ['-v', 'error', ...source, '-f', 'flv', `rtmp://${LAN}:${RTMP_PORT}/live/intruder2`]);
      await waitFor('both refusals logged', () => {
        const refused = lines().filter((l) => /refused/.test(l.msg ?? '') && JSON.stringify(l).includes('DynamicFeedACL'));
        return refused.length >= 2;
      });
      assert.ok(
        !lines().some((l) => l.msg === 'publisher attached' && l['from'] === LAN),
        'no publisher from the LAN address was attached',
      );

      // Viewing stays open from the LAN address.
      const probe = await inNs(FFPROBE, [
        ...['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-read_intervals', '%+2'],
        ...['-show_entries', 'stream=codec_name,nb_read_frames', '-of', 'csv=p=0', `http://${LAN}:${HTTP_PORT}/demo.flv`],
      ]);
      assert.equal(probe.code, 0, probe.stderr);
      const [codec, frames] = probe.stdout.trim().split(',');
      assert.equal(codec, 'h264');
      assert.ok(Number(frames) > 0, probe.stdout);

      // From loopback: a new feed is created and published.
      const local = await inNs(FFMPEG, ['-v', 'error', ...source, '-f', 'mpegts', `http://127.0.0.1:${HTTP_PORT}/mine.ffm`]);
      assert.equal(local.code, 0, local.stderr);
      assert.ok(
        lines().some((l) => l.msg === 'publisher attached' && l['feed'] === 'mine' && l['from'] === '127.0.0.1'),
        demo.output().slice(-4000),
      );
    });
  },
);
