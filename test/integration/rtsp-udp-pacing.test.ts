// Issue 24, item 8: each new RTSP reader over UDP lost 20-70 packets at PLAY ("corrupt decoded
// frame"): the GOP cache went out as one burst and overflowed the player's socket buffer (ffmpeg
// asks for 64 KB). The catch-up is paced now, and the loss the player reports is counted.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FFMPEG, publish, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { recordingLogger, type LogLine } from '../helpers/recording-logger.js';
import { startRtsp } from '../helpers/rtsp-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

describe('RTSP over UDP: the GOP cache is paced (issue 24, item 8)', { skip }, () => {
  test('ffmpeg with default options reads a large GOP cache over UDP without losing a packet', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const lines: LogLine[] = [];
    const { url } = await startRtsp(t, server, { log: recordingLogger(lines) });
    // 720p at 4 Mbit/s with a keyframe every 4 s: the GOP cache reaches 1-2 MB.
    const pub = publish(server.url('/feed1.ffm'), {
      codecs: 'h264-only',
      seconds: 90,
      size: '1280x720',
      bitrateK: 4000,
      extra: ['-g', '100'],
    });
    t.after(() => pub.stop());
    const feed = server.ctx.feeds.get('feed1');
    assert.ok(feed !== undefined);
    await waitFor('a keyframe interval', () => feed.keyframeInterval90k !== undefined, 30_000);
    for (let reader = 0; reader < 3; reader++) {
      // Join late in a GOP, when the cache is largest.
      const gopBytes = (): number => feed.gopCache().reduce((n, f) => n + f.data.length, 0);
      await waitFor('a GOP cache over 1 MB', () => gopBytes() > 1_000_000, 30_000);
      const { stderr } = await run(
        FFMPEG,
        [
          '-hide_banner',
          '-nostdin',
          '-v',
          'warning',
          '-rtsp_transport',
          'udp',
          '-i',
          url('/feed1'),
          '-t',
          '2',
          '-f',
          'null',
          '-',
        ],
        60_000,
      );
      assert.doesNotMatch(stderr, /missed \d+ packets|corrupt|error while decoding/i, `reader ${reader}: ${stderr}`);
    }
    // What the server dropped is logged with each session, beside what the player reported lost in
    // its RTCP receiver reports (ffmpeg reports none within 2 s, even when it missed packets).
    await waitFor('three sessions closed', () => lines.filter((l) => l.msg === 'RTSP session closed').length === 3);
    for (const closed of lines.filter((l) => l.msg === 'RTSP session closed')) {
      assert.equal(closed.fields['udpDropped'], 0);
      assert.equal(typeof closed.fields['packetsLost'], 'number');
    }
  });
});
