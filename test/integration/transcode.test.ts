// Streams with their own encoding, served through supervised ffmpeg children: decoded by real
// ffprobe/ffmpeg as the oracle, shared children counted in /proc, restarts and clean shutdown.

import assert from 'node:assert/strict';
import { get } from 'node:http';
import { test, type TestContext } from 'node:test';
import { TranscodeRoute } from '../../src/protocols/http/transcode-route.js';
import { TranscoderManager } from '../../src/transcode/transcoder-manager.js';
import { childrenNamed, alive } from '../helpers/processes.js';
import { decodeFrames, FFMPEG, probePackets, publish, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { encodedStream } from '../helpers/config-blocks.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

const CONFIG = `
<Feed feed1.ffm>
</Feed>
${encodedStream('small.flv')}
${encodedStream('small.ts', { format: 'mpegts' })}
<Stream cam.mjpg>
  Feed feed1.ffm
  Format mpjpeg
  VideoSize 160x120
  VideoFrameRate 5
  NoAudio
</Stream>
<Stream short.mjpg>
  Feed feed1.ffm
  Format mpjpeg
  VideoSize 160x120
  VideoFrameRate 5
  NoAudio
  MaxTime 1
  Preroll 2
</Stream>
<Stream snap.jpg>
  Feed feed1.ffm
  Format jpeg
  VideoSize 160x120
  VideoFrameRate 5
  NoAudio
</Stream>
<Stream radio.mp3>
  Feed feed1.ffm
  Format mp3
  NoVideo
  AudioBitRate 64
  AudioSampleRate 44100
</Stream>
<Stream live.webm>
  Feed feed1.ffm
  Format webm
  VideoSize 160x120
  VideoFrameRate 10
  VideoBitRate 150
  AudioCodec libopus
  AudioSampleRate 48000
</Stream>
`;

async function setup(t: TestContext, config = CONFIG): Promise<{ server: TestServer; manager: TranscoderManager }> {
  const server = await startTestServer(t, config);
  const manager = new TranscoderManager(server.ctx.config, server.ctx.feeds, server.ctx.log, {
    idleTimeoutMs: 1000,
    backoff: { initialMs: 200, maxMs: 2000, stableMs: 5000 },
  });
  server.http.addRoute(new TranscodeRoute(server.ctx, manager));
  t.after(() => manager.closeAll());
  const pub = publish(server.url('/feed1.ffm'), { seconds: 60, size: '320x240' });
  t.after(() => pub.stop());
  await waitFor('the feed to have tracks', () => server.ctx.feeds.get('feed1')?.tracks.length === 2);
  return { server, manager };
}

/** Reads `url` until `enough(bytes)` or `limit` bytes, then closes; returns headers and bytes. */
function readSome(
  url: string,
  enough: (body: Buffer) => boolean,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers }, (res) => {
      const parts: Buffer[] = [];
      let total = 0;
      const done = (): void => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) });
        req.destroy();
      };
      res.on('data', (d: Buffer) => {
        parts.push(d);
        total += d.length;
        if (enough(Buffer.concat(parts)) || total > 8 * 1024 * 1024) done();
      });
      res.on('end', done);
      res.on('error', () => done());
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`no data from ${url} in 30 s`)));
  });
}

test(
  'a declared transcoded FLV stream decodes with the declared codec, size, frame rate and bit rate',
  { skip, timeout: 90_000 },
  async (t) => {
    const { server } = await setup(t);
    const probe = await probePackets(server.url('/small.flv'), 5);
    const video = probe.streams.find((s) => s.codec_type === 'video');
    const audio = probe.streams.find((s) => s.codec_type === 'audio');
    assert.equal(video?.codec_name, 'h264');
    assert.equal(video?.width, 160);
    assert.equal(video?.height, 120);
    assert.equal(audio?.codec_name, 'aac');
    assert.equal(audio?.sample_rate, '44100');
    assert.equal(audio?.channels, 1);
    const vpk = probe.packets.filter((p) => p.codec_type === 'video');
    const times = vpk.map((p) => Number(p.dts_time)).filter((x) => Number.isFinite(x));
    const span = Math.max(...times) - Math.min(...times);
    const fps = (vpk.length - 1) / span;
    assert.ok(fps > 8 && fps < 12, `frame rate ${fps.toFixed(2)} should be about 10`);
    const kbps = (vpk.reduce((n, p) => n + Number(p.size), 0) * 8) / span / 1000;
    assert.ok(kbps > 40 && kbps < 400, `video bit rate ${kbps.toFixed(0)} kbit/s should be near 150`);
  },
);

test(
  'two readers share one ffmpeg child; killing it restarts it and readers resume; none is left after close',
  { skip, timeout: 90_000 },
  async (t) => {
    const { server, manager } = await setup(t);
    const before = childrenNamed('ffmpeg').length; // the publisher is a child too
    const a = probePackets(server.url('/small.ts'), 4);
    const b = probePackets(server.url('/small.flv'), 4);
    await waitFor('a transcoder to run', () => manager.status().some((s) => s.running));
    const [pa, pb] = await Promise.all([a, b]);
    assert.ok(pa.packets.length > 10 && pb.packets.length > 10);
    assert.equal(manager.status().length, 1, 'FLV and TS of the same encoding share one ladder child');
    assert.equal(childrenNamed('ffmpeg').length - before, 1);

    // Kill the child under a reader: it is restarted and the reader keeps getting frames.
    const reading = probePackets(server.url('/small.flv'), 8);
    await waitFor('the reader to be attached', () => (manager.status()[0]?.readers ?? 0) > 0);
    const pid = manager.status()[0]?.pid;
    assert.ok(pid !== undefined);
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(pid, 'SIGKILL');
    await waitFor('a new ffmpeg child', () => {
      const s = manager.status()[0];
      return s?.running === true && s.pid !== pid;
    });
    const after = await reading;
    const vt = after.packets.filter((p) => p.codec_type === 'video').map((p) => Number(p.dts_time));
    assert.ok(vt.length > 0);
    assert.ok(Math.max(...vt) > 5, `the reader resumed after the restart (last dts ${Math.max(...vt)})`);
    assert.ok((manager.status()[0]?.restarts ?? 0) >= 1);

    const current = manager.status()[0]?.pid;
    await manager.closeAll();
    assert.ok(current !== undefined && !alive(current), 'the child is gone after close');
    assert.equal(childrenNamed('ffmpeg').length, before);
  },
);

test('MJPEG multipart yields JPEG frames; Format jpeg serves one picture', { skip, timeout: 60_000 }, async (t) => {
  const { server, manager } = await setup(t);
  const mj = await readSome(server.url('/cam.mjpg'), (b) => b.toString('latin1').split('--ffserver').length > 4);
  assert.equal(mj.status, 200);
  assert.equal(mj.headers['content-type'], 'multipart/x-mixed-replace;boundary=ffserver');
  const parts = mj.body.toString('latin1').split('--ffserver\r\n').slice(1, -1);
  assert.ok(parts.length >= 3);
  for (const part of parts) {
    const [head, ...rest] = part.split('\r\n\r\n');
    assert.match(head ?? '', /Content-Type: image\/jpeg/);
    const jpeg = Buffer.from(rest.join('\r\n\r\n'), 'latin1');
    assert.equal(jpeg.readUInt16BE(0), 0xffd8, 'each part starts with SOI');
    assert.equal(jpeg.readUInt16BE(jpeg.length - 4), 0xffd9, 'and ends with EOI before CRLF');
  }
  const snap = await readSome(server.url('/snap.jpg'), () => false);
  assert.equal(snap.headers['content-type'], 'image/jpeg');
  assert.equal(snap.body.readUInt16BE(0), 0xffd8);
  // MaxTime (ffserver ref §2.5): the response ends by itself; Preroll starts on a complete JPEG.
  const short = await readSome(server.url('/short.mjpg'), () => false);
  assert.equal(short.status, 200);
  const shortParts = short.body.toString('latin1').split('--ffserver\r\n').slice(1);
  assert.ok(shortParts.length >= 2, `${shortParts.length} parts before MaxTime`);
  assert.match(shortParts[0] ?? '', /^Content-Type: image\/jpeg\r\nContent-Length: \d+\r\n\r\n\xff\xd8/);
  // jpeg and mpjpeg (and MaxTime/Preroll variants of one encoding) share one child.
  assert.equal(manager.status().length, 1);
  // ffmpeg itself decodes the multipart stream as MJPEG.
  const decoded = await run(
    FFMPEG,
    ['-v', 'error', '-f', 'mpjpeg', '-i', server.url('/cam.mjpg'), '-frames:v', '5', '-f', 'framecrc', '-'],
    20_000,
  );
  assert.equal(decoded.stdout.split('\n').filter((l) => l.startsWith('0,')).length, 5, decoded.stderr);
});

test('WebM and MP3 (with ICY metadata) are produced by ffmpeg and shared as bytes', { skip, timeout: 60_000 }, async (t) => {
  const { server } = await setup(t);
  const webm = await probePackets(server.url('/live.webm'), 3);
  assert.equal(webm.streams.find((s) => s.codec_type === 'video')?.codec_name, 'vp8');
  assert.equal(webm.streams.find((s) => s.codec_type === 'audio')?.codec_name, 'opus');
  const mp3 = await probePackets(server.url('/radio.mp3'), 3);
  assert.equal(mp3.streams[0]?.codec_name, 'mp3');
  const icy = await readSome(server.url('/radio.mp3'), (b) => b.length > 40_000, { 'Icy-MetaData': '1' });
  assert.equal(icy.headers['icy-metaint'], '16000');
  const meta = icy.body.subarray(16_000);
  assert.ok(meta[0] !== undefined && meta[0] > 0);
  assert.match(meta.subarray(1, 1 + (meta[0] ?? 0) * 16).toString('latin1'), /^StreamTitle='radio\.mp3';/);
});

test('a missing ffmpeg is a 503 for encoded streams only', { timeout: 30_000, skip }, async (t) => {
  const server = await startTestServer(t, CONFIG.replace('<Feed feed1.ffm>', 'FFmpegPath /nonexistent/ffmpeg\n<Feed feed1.ffm>'));
  const manager = new TranscoderManager(server.ctx.config, server.ctx.feeds, server.ctx.log);
  server.http.addRoute(new TranscodeRoute(server.ctx, manager));
  t.after(() => manager.closeAll());
  // 320x240: not the variant's 160x120, so the stream would need the (missing) ffmpeg.
  const pub = publish(server.url('/feed1.ffm'), { seconds: 20, size: '320x240' });
  t.after(() => pub.stop());
  await waitFor('tracks', () => server.ctx.feeds.get('feed1')?.tracks.length === 2);
  const r = await readSome(server.url('/small.flv'), () => false);
  assert.equal(r.status, 503);
  assert.match(r.body.toString(), /FFmpegPath names \/nonexistent\/ffmpeg/);
  const ok = await probePackets(server.url('/feed1.flv'), 1);
  assert.ok(ok.packets.length > 0, 'the passthrough output still works');
});

const LADDER = `
<Feed feed1.ffm>
</Feed>
<Stream hi.flv>
  Feed feed1.ffm
  Format flv
  VideoSize 320x240
  VideoFrameRate 10
  VideoBitRate 250
  AVOptionVideo preset ultrafast
  AudioBitRate 48
  AudioSampleRate 44100
  AudioChannels 1
</Stream>
<Stream lo.flv>
  Feed feed1.ffm
  Format flv
  VideoSize 160x120
  VideoFrameRate 10
  VideoBitRate 100
  AVOptionVideo preset ultrafast
  AudioBitRate 48
  AudioSampleRate 44100
  AudioChannels 1
</Stream>
`;

test(
  'a 2-rendition ladder runs in one ffmpeg child, keyframe-aligned, and each rendition decodes at its size',
  { skip, timeout: 90_000 },
  async (t) => {
    const { server, manager } = await setup(t, LADDER);
    const hiRead = probePackets(server.url('/hi.flv'), 4);
    const loRead = probePackets(server.url('/lo.flv'), 4);
    await waitFor('the ladder to run', () => manager.status().some((s) => s.id === 'feed1~ladder' && s.running));
    const ladder = manager.get('feed1~ladder')?.derived;
    assert.ok(ladder !== undefined);
    // Keyframe times per video track of the ladder's output, on one clock.
    const keys = new Map<number, Set<number>>();
    const off = ladder.on('frame', (f) => {
      const track = ladder.tracks.find((tr) => tr.id === f.trackId);
      if (track?.kind !== 'video' || !f.keyframe) return;
      const set = keys.get(f.trackId) ?? new Set<number>();
      set.add(f.dts90k);
      keys.set(f.trackId, set);
    });
    t.after(off);
    const [hi, lo] = await Promise.all([hiRead, loRead]);
    const hv = hi.streams.find((s) => s.codec_type === 'video');
    const lv = lo.streams.find((s) => s.codec_type === 'video');
    assert.deepEqual([hv?.codec_name, hv?.width, hv?.height], ['h264', 320, 240]);
    assert.deepEqual([lv?.codec_name, lv?.width, lv?.height], ['h264', 160, 120]);
    for (const probe of [hi, lo]) {
      const key = probe.packets.filter((p) => p.codec_type === 'video' && p.flags.startsWith('K'));
      assert.ok(key.length >= 1, 'each rendition has keyframes');
    }
    await waitFor('three keyframes per rendition', () => [...keys.values()].filter((s) => s.size >= 3).length === 2, 20_000);
    const [a, b] = [...keys.values()].map((s) => [...s].sort((x, y) => x - y));
    const lastCommon = Math.min(a?.at(-1) ?? 0, b?.at(-1) ?? 0);
    const firstCommon = Math.max(a?.[0] ?? 0, b?.[0] ?? 0);
    const inRange = (xs: number[] | undefined): number[] => (xs ?? []).filter((x) => x >= firstCommon && x <= lastCommon);
    assert.ok(inRange(a).length >= 2, `keyframes ${JSON.stringify(a)} / ${JSON.stringify(b)}`);
    assert.deepEqual(inRange(a), inRange(b), 'both renditions have keyframes at the same times');
    assert.equal(manager.status().length, 1, 'one child for the whole ladder');
    assert.equal(childrenNamed('ffmpeg').length, 2, 'the publisher and the ladder');
    // Each decodes without errors at its size.
    for (const name of ['/hi.flv', '/lo.flv']) {
      const decoded = await decodeFrames(server.url(name), 2);
      assert.ok(decoded.videoFrames >= 10, `${name}: ${decoded.videoFrames} frames`);
      assert.equal(decoded.errors, '', `${name} decodes cleanly`);
    }
  },
);
