// Issue 18: configs written for ffserver, in ffserver's own style (comments after tags and values, odd spacing,
// bare old directives), load and serve every stream they declare; each stream is decoded by ffprobe.

import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  decodeFrames,
  FFMPEG,
  FFPROBE,
  firstPictureClock,
  haveVlc,
  lavfiArgs,
  probePackets,
  publish,
  run,
  skipWithoutFfmpeg,
  vlcDecodedFrames,
  type ProbeResult,
  type ProbeStream,
} from '../helpers/media-tools.js';
import { freePort, startTestServer, waitFor } from '../helpers/test-server.js';
import { clockBarcodeFilter } from '../helpers/browser.js';
import { probeRtsp, startRtsp } from '../helpers/rtsp-tools.js';
import { describeConfig } from '../../src/config/summary.js';
import { parseConfigText } from '../../src/config/config.js';
import { TranscoderManager } from '../../src/transcode/transcoder-manager.js';

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

/** Issue 27: ffserver's own sample streams in the formats it served to Windows Media, RealPlayer and Flash. */
const LEGACY_CONFIG = `
HTTPPort 8090
<Feed feed1.ffm>
</Feed>

# From ffserver.conf's samples: ASF for Windows Media Player (msmpeg4 + wmav2 by default)
<Stream test.asf>
Feed feed1.ffm
Format asf
VideoFrameRate 10
VideoSize 160x120
VideoBitRate 256
VideoGopSize 10
AudioBitRate 64
StartSendOnKey
</Stream>

<Stream test.rm>     # RealMedia: rv10 + ac3
Feed feed1.ffm
Format rm
VideoFrameRate 10
VideoGopSize 10
AudioBitRate 32
</Stream>

<Stream test.swf>    # Flash: Sorenson Spark + mp3
Feed feed1.ffm
VideoFrameRate 10
VideoSize 160x120
VideoGopSize 10
AudioSampleRate 22050
</Stream>

<Stream webcam.flv>  # issue 18: a Flash webcam, Sorenson Spark ("flv1")
Feed feed1.ffm
Format flv
VideoCodec flv
VideoFrameRate 10
VideoSize 160x120
VideoGopSize 10
AudioCodec mp3
AudioSampleRate 22050
</Stream>

<Stream test.avi>    # guessed from the name: mpeg4 + mp3
Feed feed1.ffm
VideoFrameRate 10
VideoSize 160x120
VideoGopSize 10
</Stream>
`;

test(
  'issue 27 and issue 18 class 2: asf, rm, swf, avi and Sorenson FLV streams are made by ffmpeg and decode in ffprobe and VLC',
  { skip },
  async (t) => {
    const server = await startTestServer(t, LEGACY_CONFIG);
    const pub = publish(server.url('/feed1.ffm'), { seconds: 120 });
    t.after(() => pub.stop());
    await waitFor('the feed to have tracks', () => server.ctx.feeds.get('feed1')?.tracks.length === 2);

    const expect: [path: string, contentType: string, codecs: string[]][] = [
      ['/test.asf', 'video/x-ms-asf', ['msmpeg4v3', 'wmav2']],
      ['/test.rm', 'application/vnd.rn-realmedia', ['rv10', 'ac3']],
      ['/test.swf', 'application/x-shockwave-flash', ['flv1', 'mp3']],
      ['/test.avi', 'video/x-msvideo', ['mpeg4', 'mp3']],
      ['/webcam.flv', 'video/x-flv', ['flv1', 'mp3']],
    ];
    for (const [path, contentType, codecs] of expect) {
      const head = await fetch(server.url(path), { method: 'HEAD' });
      assert.equal(head.status, 200, path);
      assert.equal(head.headers.get('content-type'), contentType, path);
      const probe = await probePackets(server.url(path), 3);
      assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), [...codecs].sort(), path);
      const video = probe.packets.filter((p) => p.codec_type === 'video');
      assert.ok(video.length >= 10, `${path}: ${video.length} video packets`);
      // ffmpeg's swf demuxer flags no key frames: there, a clean decode shows the start was one.
      if (path !== '/test.swf') assert.ok(video[0]?.flags.startsWith('K'), `${path}: starts at a key frame`);
      const decoded = await decodeFrames(server.url(path), 2);
      assert.ok(decoded.videoFrames >= 10, `${path}: ${decoded.videoFrames} frames decoded`);
      assert.equal(decoded.errors, '', `${path}: decodes without errors`);
      assert.ok(
        probe.packets.some((p) => p.codec_type === 'audio'),
        `${path}: audio packets`,
      );
    }
    if (!haveVlc()) {
      if (process.env['CI'] !== undefined) throw new Error('VLC is required in CI (apt-get install -y vlc-bin vlc-plugin-base)');
      t.diagnostic('cvlc not installed: VLC playback not checked');
      return;
    }
    for (const path of ['/test.asf', '/test.avi', '/webcam.flv']) {
      const played = await vlcDecodedFrames(server.url(path), 4);
      assert.ok(played.videoFrames >= 10 && played.audioFrames >= 10, `${path} in VLC: ${JSON.stringify(played)}`);
    }
  },
);

/** Issue 18 class 2: ffserver's recipe for RTSP, a `Format rtp` stream with its own encoding. */
const RTP_CONFIG = `
RTSPPort 5454
<Feed feed1.ffm>
</Feed>
<Stream live.sdp>    # ffserver's RTSP recipe: encoder directives + Format rtp
Format rtp
Feed feed1.ffm
VideoCodec libx264
VideoFrameRate 10
VideoSize 160x120
VideoBitRate 200
VideoGopSize 10
AudioCodec aac
AudioBitRate 48
AudioChannels 1
AudioSampleRate 44100
</Stream>
`;

test(
  'issue 18 class 2: a Format rtp stream with encoder directives is served over RTSP with its own encoding',
  { skip },
  async (t) => {
    const server = await startTestServer(t, RTP_CONFIG);
    const transcoders = new TranscoderManager(server.ctx.config, server.ctx.feeds, server.ctx.log);
    t.after(() => transcoders.closeAll());
    const { url } = await startRtsp(t, server, { transcoders });
    // `feedcast check` says where it is reachable.
    assert.match(
      describeConfig(await parseConfigText(RTP_CONFIG, 'rtp.conf')),
      /live\.sdp .*\n {4}url {6}rtsp:\/\/localhost:5454\/live\.sdp/,
    );
    const pub = publish(server.url('/feed1.ffm'), { seconds: 60, size: '320x240' });
    t.after(() => pub.stop());
    await waitFor('the feed to have tracks', () => server.ctx.feeds.get('feed1')?.tracks.length === 2);
    const probe = await probeRtsp(url('/live.sdp'), 'tcp', 3);
    const video = probe.streams.find((s) => s.codec_type === 'video');
    assert.equal(video?.codec_name, 'h264');
    assert.deepEqual([video?.width, video?.height], [160, 120], "the stream's own size, not the feed's 320x240");
    const audio = probe.streams.find((s) => s.codec_type === 'audio');
    assert.equal(audio?.codec_name, 'aac');
    assert.equal(audio?.channels, 1);
    assert.ok(probe.packets.filter((p) => p.codec_type === 'video').length >= 10);
  },
);

/** Runs `feedcast ARGS` (the sources) to its exit; returns the exit code and stderr. */
async function feedcastExit(
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const main = new URL('../../src/main.ts', import.meta.url).pathname;
  return run(process.execPath, ['--import', 'tsx', main, ...args], timeoutMs);
}

test('issue 18 class 4: start-up stops with file:line before anything listens; a busy port names its directive', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'feedcast-startup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  // A CustomLog in a missing directory crashed the server after it said ready; a feed File there printed a stack.
  const conf = join(dir, 'bad.conf');
  await writeFile(
    conf,
    `HTTPPort ${port}\nCustomLog ${dir}/logs/access.log\n<Feed feed1.ffm>\nFile ${dir}/feeds/feed1.ffm\n</Feed>\n`,
  );
  for (const args of [
    ['check', conf],
    ['-f', conf],
  ]) {
    const r = await feedcastExit(args);
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${conf}:2: CustomLog .*the directory ${dir}/logs does not exist; create it`));
    assert.match(r.stderr, new RegExp(`${conf}:4: File .*the directory ${dir}/feeds does not exist`));
    assert.doesNotMatch(r.stderr + r.stdout, /listening|ready|at .*\.ts:\d+/, 'no listener, no stack trace');
  }
  // A busy RTMP port used to say "change HTTPPort".
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.after(() => busy.close());
  const busyPort = (busy.address() as { port: number }).port;
  const ok = join(dir, 'busy.conf');
  await writeFile(ok, `HTTPPort ${port}\nRTMPPort ${busyPort}\nRTMPBindAddress 127.0.0.1\n`);
  const r = await feedcastExit(['-f', ok]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`port ${busyPort}; change RTMPPort .* in ${ok}`));
  assert.doesNotMatch(r.stderr, /HTTPPort/);
});

/** A 3 s H.264 + AAC movie (10 fps, a key frame a second) in a temporary directory, for file streams. */
async function makeMovie(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'feedcast-file-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const movie = join(dir, 'movie.mp4');
  const args = ['-v', 'error', ...lavfiArgs('h264-aac', { size: '160x120', rate: 10, gop: 10 }), '-t', '3'];
  const made = await run(FFMPEG, [...args, '-movflags', '+faststart', movie], 60_000);
  assert.equal(made.code, 0, made.stderr);
  return movie;
}

/** Two viewers at once, each probing `what`: each gets the whole 3 s movie from its first frame, at its pace. */
async function assertWholeMovieTwice(what: string, probe: () => Promise<ProbeResult>): Promise<void> {
  const started = Date.now();
  const probes = await Promise.all([probe(), probe()]);
  const elapsedMs = Date.now() - started;
  for (const p of probes) {
    assert.deepEqual(p.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], what);
    const video = p.packets.filter((x) => x.codec_type === 'video');
    assert.equal(video.length, 30, `${what}: every frame of the 3 s file, once (no loop)`);
    assert.ok(video[0]?.flags.startsWith('K'), `${what}: from the first key frame`);
  }
  assert.ok(elapsedMs >= 2500, `${what}: sent at the file's pace (${elapsedMs} ms for 3 s)`);
}

test(
  'issue 18 class 2: a <Stream> with File serves the file over HTTP, each viewer from its start, at its pace',
  { skip },
  async (t) => {
    const movie = await makeMovie(t);
    const server = await startTestServer(
      t,
      `<Stream movie.flv>   # ffserver's file stream\nFile ${movie}\n</Stream>\n<Stream movie.ts>\nFile ${movie}\nFormat mpegts\n</Stream>\n`,
    );
    for (const path of ['/movie.flv', '/movie.ts']) {
      await assertWholeMovieTwice(path, () => probePackets(server.url(path), 10));
    }
  },
);

/** Issue 18 class 3: encoder and metadata directives of an old ffserver.conf, written as people wrote them. */
function encoderConfig(): string {
  return `
# ffserver.conf: lobby camera and a radio
HTTPPort 8090
<Feed feed1.ffm>          # 10 fps camera
</Feed>

<Stream lobby.flv>
Feed feed1.ffm
Format flv
VideoCodec libx264
VideoFrameRate   25       # above the camera's 10 fps: frames are repeated
VideoSize 160x120
AVPresetVideo  lobby      # libx264-lobby.ffpreset: g=13
AVOptionVideo profile baseline
NoAudio
Title "Lobby camera"
</Stream>

<Stream radio.mp3>
Feed feed1.ffm
NoVideo
Title     "Radio One"
Author    Me
Comment   "Tune in"
Copyright "(c) Me"
</Stream>

<Stream radio.ogg>
Feed feed1.ffm
NoVideo
AudioCodec libvorbis
Title "Radio Ogg"
</Stream>

<Stream lobby.webm>
Feed feed1.ffm
VideoSize 160x120
VideoFrameRate 10
Title "Lobby WebM"
Copyright "(c) Me"
</Stream>
`;
}

/** ffprobe's format and stream tags of a live URL (read for `seconds`). */
async function probeTags(url: string): Promise<Record<string, string>> {
  const { code, stdout, stderr } = await run(
    FFPROBE,
    ['-v', 'error', '-read_intervals', '%+1', '-show_entries', 'format_tags:stream_tags', '-of', 'json', url],
    30_000,
  );
  assert.equal(code, 0, stderr);
  const parsed = JSON.parse(stdout) as {
    format?: { tags?: Record<string, string> };
    streams?: { tags?: Record<string, string> }[];
  };
  const tags: Record<string, string> = {};
  for (const t of [parsed.format?.tags, ...(parsed.streams ?? []).map((s) => s.tags)]) {
    for (const [k, v] of Object.entries(t ?? {})) tags[k.toLowerCase()] = v;
  }
  return tags;
}

/** A radio client: GET with `Icy-MetaData: 1`; resolves with the answer's headers and the first metadata text. */
function icyRequest(url: string): Promise<{ headers: Record<string, string>; metadata: string }> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET ${pathname} HTTP/1.0\r\nHost: ${hostname}\r\nIcy-MetaData: 1\r\nUser-Agent: WinampMPEG/5.0\r\n\r\n`);
    });
    let buf = Buffer.alloc(0);
    let headers: Record<string, string> | undefined;
    let body = 0;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (headers === undefined) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        headers = {};
        for (const line of buf.subarray(0, end).toString('latin1').split('\r\n').slice(1)) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        body = end + 4;
      }
      const metaint = Number(headers['icy-metaint']);
      if (!(metaint > 0)) {
        socket.destroy();
        reject(new Error(`no icy-metaint in ${JSON.stringify(headers)}`));
        return;
      }
      const at = body + metaint;
      const blocks = buf[at];
      if (blocks === undefined || buf.length < at + 1 + blocks * 16) return;
      socket.destroy();
      resolve({ headers, metadata: buf.toString('utf8', at + 1, at + 1 + blocks * 16).replace(/\0+$/, '') });
    });
    socket.on('error', reject);
  });
}

test(
  'issue 18 class 3: AVPresetVideo, AVOptionVideo, VideoFrameRate above the feed and Title/Author/Comment/Copyright reach what is served',
  { skip },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'feedcast-presets-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'libx264-lobby.ffpreset'), '# a key frame every 13 pictures\ng=13\n');
    const server = await startTestServer(t, encoderConfig(), { parse: { presetDirs: [dir] } });
    const pub = publish(server.url('/feed1.ffm'), { seconds: 120, extra: ['-r', '10'] });
    t.after(() => pub.stop());
    await waitFor('the feed to have tracks', () => server.ctx.feeds.get('feed1')?.tracks.length === 2);

    // The frame rate asked for, not the feed's 10 fps; the preset's GOP and the option's profile.
    const lobby = await probePackets(server.url('/lobby.flv'), 4);
    const video = lobby.packets.filter((p) => p.codec_type === 'video');
    const pts = video.map((p) => Number(p.pts_time));
    const fps = (pts.length - 1) / ((pts.at(-1) ?? 0) - (pts[0] ?? 0));
    assert.ok(fps > 24 && fps < 26, `VideoFrameRate 25 over a 10 fps feed: ${fps.toFixed(2)} frames per second of media`);
    const keys = video.flatMap((p, i) => (p.flags.startsWith('K') ? [i] : []));
    assert.ok(keys.length >= 3, `key frames at ${keys.join(',')}`);
    // keyint=13 is x264's longest distance (it may place one sooner); Feedcast's default would be 50 (2 s).
    const gaps = keys.slice(1).map((k, i) => k - (keys[i] ?? 0));
    assert.ok(
      gaps.every((g) => g <= 13) && gaps.filter((g) => g === 13).length > gaps.length / 2,
      `AVPresetVideo g=13: key frames at ${keys.join(',')}`,
    );
    const stream = lobby.streams[0] as ProbeStream & { profile?: string };
    assert.equal(stream.profile, 'Constrained Baseline', 'AVOptionVideo profile baseline');
    assert.equal((await probeTags(server.url('/lobby.flv')))['title'], 'Lobby camera', 'FLV onMetaData');

    // The containers ffmpeg writes: ID3v2 (every reader gets it first), Ogg comments, Matroska tags.
    const mp3 = await probeTags(server.url('/radio.mp3'));
    assert.deepEqual([mp3['title'], mp3['author'], mp3['comment'], mp3['copyright']], ['Radio One', 'Me', 'Tune in', '(c) Me']);
    assert.equal((await probeTags(server.url('/radio.mp3')))['title'], 'Radio One', 'a second reader gets the tag too');
    assert.equal((await probeTags(server.url('/radio.ogg')))['title'], 'Radio Ogg');
    const webm = await probeTags(server.url('/lobby.webm'));
    assert.deepEqual([webm['title'], webm['copyright']], ['Lobby WebM', '(c) Me']);

    // A radio client asking for ICY metadata: icy-name, then StreamTitle every icy-metaint bytes.
    const icy = await icyRequest(server.url('/radio.mp3'));
    assert.equal(icy.headers['icy-name'], 'Radio One');
    assert.equal(icy.metadata, "StreamTitle='Radio One';");
  },
);

test(
  'issue 18 class 2: a <Stream> with File is served over RTSP (TCP and UDP), each viewer from its start, at its pace',
  { skip },
  async (t) => {
    const movie = await makeMovie(t);
    // ffserver's recipe: test1-rtsp.mpg, a Format rtp stream read from a file.
    const server = await startTestServer(
      t,
      `RTSPPort 5454\n<Stream movie.sdp>    # from disk\nFormat rtp\nFile ${movie}\n</Stream>\n`,
    );
    const { url } = await startRtsp(t, server);
    const overHttp = await fetch(server.url('/movie.sdp'));
    assert.equal(overHttp.status, 404);
    assert.match(await overHttp.text(), /is a Format rtp stream: play it over RTSP/);
    for (const transport of ['tcp', 'udp'] as const) {
      await assertWholeMovieTwice(transport, () => probeRtsp(url('/movie.sdp'), transport, 10));
    }
  },
);

test(
  'issue 18 class 6: ?start=-N, ?date= and RTSP start at the keyframe at or before now-N, within one GOP (2 s), by the picture',
  { skip },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'feedcast-shift-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const server = await startTestServer(
      t,
      `RTSPPort 5454\n<Feed cam.ffm>    # a camera with 2 s GOPs\nFile ${dir}/cam.ffm\nFileMaxSize   40M\n</Feed>\n`,
    );
    const { url } = await startRtsp(t, server);
    const feed = server.ctx.feeds.get('cam');
    const writer = feed !== undefined ? server.ctx.feedFiles.of(feed) : undefined;
    assert.ok(writer !== undefined);
    // The wall clock at capture is burned into every picture (the oracle: what a viewer sees).
    const pub = publish(server.url('/cam.ffm'), {
      seconds: 120,
      size: '640x360',
      bitrateK: 1500,
      extra: ['-vf', clockBarcodeFilter(), '-g', '50'],
    });
    t.after(() => pub.stop());
    await waitFor('14 s in the feed file', () => writer.status.durationSeconds >= 14, 60_000);
    const GOP_MS = 2000;
    // What the publisher adds between capture and arrival (encoding, muxing); a frame is dated at arrival.
    const PUBLISH_LAG_MS = 1000;
    const cases: [what: string, input: (back: number) => string[], back: number][] = [
      ['HTTP TS ?start=-5', () => ['-i', server.url('/cam.ts?start=-5')], 5],
      ['HTTP TS ?start=-10', () => ['-i', server.url('/cam.ts?start=-10')], 10],
      ['HTTP FLV ?start=-10', () => ['-i', server.url('/cam.flv?start=-10')], 10],
      ['HTTP TS ?date=', (back) => ['-i', server.url(`/cam.ts?date=${new Date(Date.now() - back * 1000).toISOString()}`)], 8],
      ['RTSP TCP ?start=-5', () => ['-rtsp_transport', 'tcp', '-i', url('/cam?start=-5')], 5],
      ['RTSP UDP ?start=-10', () => ['-rtsp_transport', 'udp', '-i', url('/cam?start=-10')], 10],
    ];
    for (const [what, input, back] of cases) {
      const before = Date.now();
      const captured = await firstPictureClock(input(back), Date.now());
      const after = Date.now();
      // The time asked is between before-N and after-N: the first picture is at or before it, and at most one GOP
      // (plus the publisher's lag) earlier.
      assert.ok(captured <= after - back * 1000, `${what}: first picture captured ${after - captured} ms before the answer`);
      assert.ok(
        captured >= before - back * 1000 - GOP_MS - PUBLISH_LAG_MS,
        `${what}: first picture captured ${before - captured} ms before the request, more than ${back} s + one GOP`,
      );
    }
  },
);
