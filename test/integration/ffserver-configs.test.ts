// Issue 18: configs written for ffserver, in ffserver's own style (comments after tags and values, odd spacing,
// bare old directives), load and serve every stream they declare; each stream is decoded by ffprobe.

import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

/** Class 1 (loading): tag comments, value comments, bare Preroll, formats guessed from names, names in any case. */
function loadingConfig(dir: string): string {
  return `
# ffserver.conf from a webcam box
HTTPPort 8090        # web port
HTTPBindAddress 0.0.0.0
MaxClients   100
MaxBandwidth 20000   # kbit/s

<Feed Feed1.FFM>  # the camera
File ${dir}/feed1.ffm
FileMaxSize 1M       # small ring
ACL allow 127.0.0.1  # local only
</Feed> # end of feed

<Stream radio.opus>  # guessed: Ogg Opus
Feed feed1.ffm
NoVideo
Preroll
AudioBitRate 32      # kbit/s
</Stream> # end

<Stream radio.oga>
Feed FEED1.ffm
NoVideo
</Stream>

<Stream cam.mkv>
Feed feed1.FFM
VideoSize 160x120
VideoFrameRate 10
VideoBitRate 150
</Stream>

<Stream music.mp3>
Feed feed1.ffm
NoVideo
</Stream>

<Stream Cam.WEBM>
Feed feed1.ffm
VideoSize 160x120
VideoFrameRate 10
AudioCodec libopus
</Stream>

<Stream snap.jpg>
Feed feed1.ffm
VideoSize 160x120
</Stream>
`;
}

test(
  'issue 18 class 1: an ffserver-style config loads, records its File and serves every guessed format',
  { skip },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'feedcast-compat-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const server = await startTestServer(t, loadingConfig(dir));
    const formats = server.ctx.config.streams.map((s) => [s.name, s.format.name]);
    assert.deepEqual(formats, [
      ['radio.opus', 'opus'],
      ['radio.oga', 'oga'],
      ['cam.mkv', 'matroska'],
      ['music.mp3', 'mp3'],
      ['Cam.WEBM', 'webm'],
      ['snap.jpg', 'jpeg'],
    ]);
    assert.equal(server.ctx.config.streams[0]?.prerollSeconds, 0);

    // `<Feed Feed1.FFM>` is published as /feed1.ffm and its File is written (two lookups disagreed on case).
    const pub = publish(server.url('/feed1.ffm'), { seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('the feed to have tracks', () => server.ctx.feeds.get('FEED1')?.tracks.length === 2);
    await waitFor('the feed file to grow past its header', async () => (await stat(join(dir, 'feed1.ffm'))).size > 64 * 1024);

    const expect: [path: string, codecs: string[]][] = [
      ['/radio.opus', ['opus']],
      ['/radio.oga', ['vorbis']],
      ['/CAM.mkv', ['vorbis', 'h264']],
      ['/music.mp3', ['mp3']],
      ['/cam.webm', ['opus', 'vp8']],
    ];
    for (const [path, codecs] of expect) {
      const probe = await probePackets(server.url(path), 2);
      assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), [...codecs].sort(), path);
      assert.ok(probe.packets.length > 5, `${path}: ${probe.packets.length} packets`);
    }
    const jpeg = await probePackets(server.url('/snap.jpg'), 1);
    assert.equal(jpeg.streams[0]?.codec_name, 'mjpeg');
  },
);
