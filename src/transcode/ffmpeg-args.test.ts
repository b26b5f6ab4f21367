// The pure argv builders: a <Stream>'s encoder directives (ffserver ref §2.6, UseDefaults filled
// in) as ffmpeg options, the transcoder/ladder/publish/Launch/Source commands, and the ffmpeg
// lookup. One table of configs drives the exact cases; fast-check drives the invariants.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseConfigText, type StreamConfig } from '../config/config.js';
import { encoderName } from '../config/presets.js';
import {
  defaultPublishMaps,
  encoderArgs,
  isFileSource,
  ladderArgs,
  launchArgs,
  needsEncoding,
  profileOf,
  publishArgs,
  pullArgs,
  resolveFfmpeg,
  specify,
  transcodeArgs,
} from './ffmpeg-args.js';

async function streamOf(body: string, globals = ''): Promise<StreamConfig> {
  const config = await parseConfigText(
    `${globals}\n<Feed feed1.ffm>\n</Feed>\n<Stream s>\n  Feed feed1.ffm\n${body}\n</Stream>\n`,
    't.conf',
  );
  const stream = config.streams[0];
  assert.ok(stream !== undefined);
  return stream;
}

/** The value after `flag` in argv, or undefined. */
function valueOf(argv: readonly string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

test('ffserver UseDefaults: 160x128, 5 fps, 64 kbit/s with maxrate = bufsize = 2·b; audio 64k 22050 Hz mono', async () => {
  const p = profileOf(await streamOf('  Format flv\n  VideoCodec libx264\n  AudioCodec aac'));
  assert.equal(p.output, 'feed');
  assert.equal(p.muxer, 'mpegts');
  const v = p.video;
  assert.ok(v !== undefined);
  assert.deepEqual(
    [v.encoder, v.codec, v.width, v.height, v.frameRate, v.bitRateKbps, v.gop],
    ['libx264', 'h264', 160, 128, 5, 64, 10],
  );
  assert.equal(valueOf(v.options, '-s'), '160x128');
  assert.equal(valueOf(v.options, '-r'), '5');
  assert.equal(valueOf(v.options, '-b:v'), '64k');
  assert.equal(valueOf(v.options, '-maxrate:v'), '128k');
  assert.equal(valueOf(v.options, '-bufsize:v'), '128k');
  assert.equal(valueOf(v.options, '-pix_fmt'), 'yuv420p');
  assert.equal(valueOf(v.options, '-preset:v'), 'veryfast', 'live default');
  assert.equal(valueOf(v.options, '-tune:v'), 'zerolatency');
  const a = p.audio;
  assert.ok(a !== undefined);
  assert.deepEqual([a.encoder, a.codec, a.bitRateKbps, a.sampleRate, a.channels], ['aac', 'aac', 64, 22050, 1]);
  assert.deepEqual(a.options, ['-b:a', '64k', '-ac', '1', '-ar', '22050']);
});

test('NoDefaults leaves unset values to ffmpeg (no bit rate, no maxrate)', async () => {
  const p = profileOf(
    await streamOf('  Format flv\n  NoDefaults\n  VideoSize 320x240\n  AudioBitRate 32\n  AudioSampleRate 44100'),
  );
  assert.equal(valueOf(p.video?.options ?? [], '-b:v'), undefined);
  assert.equal(valueOf(p.video?.options ?? [], '-maxrate:v'), undefined);
  assert.equal(p.video?.frameRate, 25);
  assert.equal(p.audio?.channels, undefined);
});

test('each encoder directive becomes its ffmpeg option', async () => {
  const p = profileOf(
    await streamOf(
      [
        'Format flv',
        'VideoCodec h264',
        'VideoSize 320x240',
        'VideoFrameRate 15',
        'VideoBitRate 300',
        'VideoBitRateRange 100-400',
        'VideoBufferSize 40',
        'VideoGopSize 30',
        'VideoQMin 3',
        'VideoQMax 31',
        'AVOptionVideo preset ultrafast',
        'AVOptionVideo libvpx:deadline good',
        'AudioCodec mp3',
        'AudioBitRate 96',
      ].join('\n'),
    ),
  );
  const o = p.video?.options ?? [];
  assert.equal(p.video?.encoder, 'libx264', 'h264 is spelled libx264 for ffmpeg');
  assert.equal(valueOf(o, '-minrate:v'), '100k');
  assert.equal(valueOf(o, '-maxrate:v'), '400k');
  assert.equal(valueOf(o, '-bufsize:v'), String(40 * 8192), 'VideoBufferSize is KiB, ffmpeg wants bits');
  assert.equal(valueOf(o, '-g'), '30');
  assert.equal(valueOf(o, '-qmin:v'), '3');
  assert.equal(valueOf(o, '-qmax:v'), '31');
  assert.equal(valueOf(o, '-preset:v'), 'ultrafast', 'AVOptionVideo overrides the live default');
  assert.equal(o.filter((x) => x === '-preset:v').length, 1);
  assert.equal(valueOf(o, '-deadline:v'), undefined, 'an option for another codec is left out');
  assert.equal(p.audio?.encoder, 'libmp3lame');
  assert.equal(p.audio?.codec, 'mp3');
});

test('issue 18 class 3: VideoFrameRate is a constant rate (fps filter repeats frames), an AVOptionVideo g is the GOP', async () => {
  // `-r` alone let MPEG-TS take frames at the feed's lower rate: a VideoFrameRate above it was never reached.
  const p = profileOf(await streamOf('Format flv\nVideoFrameRate 30\nAVOptionVideo g 7\nAVOptionVideo profile baseline'));
  const o = p.video?.options ?? [];
  assert.equal(valueOf(o, '-filter:v'), 'fps=30');
  assert.equal(valueOf(o, '-r'), '30');
  assert.equal(valueOf(o, '-g'), undefined, 'no default GOP next to the one asked for');
  assert.equal(valueOf(o, '-g:v'), '7');
  assert.equal(p.video?.gop, 7);
  assert.equal(valueOf(o, '-profile:v'), 'baseline');
});

test('issue 18 class 3: Title, Author, Comment, Copyright go into the containers ffmpeg writes; mp3 gets ID3v2', async () => {
  const meta = 'Title "Radio One"\nAuthor Me\nComment "Tune in"\nCopyright "(c) Me"';
  const mp3 = profileOf(await streamOf(`Format mp3\nNoVideo\n${meta}`));
  assert.equal(mp3.output, 'raw');
  const o = mp3.muxerOptions;
  assert.equal(o.lastIndexOf('-id3v2_version') > o.indexOf('-id3v2_version'), true, 'the ID3v2.3 tag is asked last');
  assert.equal(o[o.lastIndexOf('-id3v2_version') + 1], '3');
  assert.deepEqual(
    o.filter((_, i) => o[i - 1] === '-metadata'),
    ['title=Radio One', 'author=Me', 'comment=Tune in', 'copyright=(c) Me'],
  );
  const plainMp3 = profileOf(await streamOf('Format mp3\nNoVideo'));
  assert.equal(plainMp3.muxerOptions.includes('-metadata'), false);
  assert.notEqual(plainMp3.key, mp3.key, 'different metadata, different ffmpeg child');
  const ogg = profileOf(await streamOf(`Format ogg\nNoVideo\n${meta}`));
  assert.ok(ogg.muxerOptions.includes('title=Radio One') && !ogg.muxerOptions.includes('-id3v2_version'));
  // The feed path (FLV, TS) muxes in Feedcast, which writes FLV's onMetaData itself.
  const flv = profileOf(await streamOf(`Format flv\n${meta}`));
  assert.equal(flv.output, 'feed');
  assert.equal(flv.muxerOptions.includes('-metadata'), false);
});

test('Qscale, VideoIntraOnly, BitExact and Opus sample rates', async () => {
  const q = profileOf(
    await streamOf('Format webm\nQscale 4\nVideoIntraOnly\nBitExact\nAudioCodec libopus\nAudioSampleRate 44100'),
  );
  const o = q.video?.options ?? [];
  assert.equal(valueOf(o, '-flags:v'), '+bitexact+qscale');
  assert.equal(valueOf(o, '-global_quality:v'), String(4 * 118));
  assert.equal(valueOf(o, '-b:v'), undefined, 'constant quality has no bit rate');
  assert.equal(q.video?.gop, 1);
  assert.equal(q.audio?.sampleRate, 48000, 'Opus cannot run at 44100: 48000');
  assert.equal(q.output, 'raw');
  assert.equal(q.muxer, 'webm');
});

test('formats: raw outputs share a child per container, jpeg with mpjpeg; FLV and TS of one encoding share a ladder variant', async () => {
  const enc = 'VideoSize 160x120\nVideoFrameRate 5\nNoAudio';
  const jpeg = profileOf(await streamOf(`Format jpeg\n${enc}`));
  const mpjpeg = profileOf(await streamOf(`Format mpjpeg\n${enc}`));
  assert.equal(jpeg.key, mpjpeg.key);
  assert.equal(jpeg.video?.encoder, 'mjpeg');
  assert.equal(valueOf(jpeg.video?.options ?? [], '-pix_fmt'), 'yuvj420p');
  const flv = profileOf(await streamOf('Format flv\nVideoCodec libx264\nAudioCodec aac\nVideoSize 160x120'));
  const ts = profileOf(await streamOf('Format mpegts\nVideoCodec libx264\nAudioCodec aac\nVideoSize 160x120'));
  assert.equal(flv.key, ts.key);
  assert.equal(ts.output, 'feed');
  assert.equal(profileOf(await streamOf('Format mpegts\nVideoSize 160x120')).video?.encoder, 'mpeg2video');
  assert.equal(needsEncoding(await streamOf('Format flv')), false, 'a plain FLV stream is a passthrough');
  assert.equal(needsEncoding(await streamOf('Format mp3')), true);
});

test('transcodeArgs reads MPEG-TS on stdin and writes the container on stdout, mapping what the input has', async () => {
  const p = profileOf(await streamOf('Format webm\nVideoSize 160x120'));
  const both = transcodeArgs(p, { hasVideo: true, hasAudio: true });
  assert.deepEqual(both.slice(both.indexOf('-i'), both.indexOf('-i') + 2), ['-i', 'pipe:0']);
  assert.equal(valueOf(both, '-f'), 'mpegts', 'the input format');
  assert.equal(both.at(-1), 'pipe:1');
  assert.deepEqual(
    both.filter((x, i) => both[i - 1] === '-map'),
    ['0:v:0', '0:a:0'],
  );
  const videoOnly = transcodeArgs(p, { hasVideo: true, hasAudio: false });
  assert.ok(videoOnly.includes('-an'));
  assert.ok(!videoOnly.includes('0:a:0'));
});

test('ladder and publish commands: videos then audios, per-stream options, aligned keyframes', async () => {
  const hi = profileOf(await streamOf('Format flv\nVideoCodec libx264\nVideoSize 320x240\nVideoBitRate 300\nAudioCodec aac'));
  const lo = profileOf(
    await streamOf('Format flv\nVideoCodec libx264\nVideoSize 160x120\nVideoBitRate 100\nAudioCodec aac\nAudioBitRate 32'),
  );
  const ladder = ladderArgs([hi, lo], { hasVideo: true, hasAudio: true });
  assert.equal(valueOf(ladder, '-c:v:0'), 'libx264');
  assert.equal(valueOf(ladder, '-s:v:0'), '320x240');
  assert.equal(valueOf(ladder, '-s:v:1'), '160x120');
  assert.equal(valueOf(ladder, '-b:v:1'), '100k');
  assert.equal(valueOf(ladder, '-b:a:1'), '32k');
  assert.ok(ladder.indexOf('-c:v:1') < ladder.indexOf('-c:a:0'), 'video tracks first');
  assert.equal(valueOf(ladder, '-force_key_frames'), 'expr:gte(t,n_forced*2)');
  // nobuffer drops what ffmpeg probed, the GOP cache's keyframe with it: the ladder's video then
  // started a GOP after its audio and the server's demuxer gave up on it (issue #7).
  assert.ok(!(valueOf(ladder, '-fflags') ?? '').includes('nobuffer'), 'ffmpeg keeps the probed keyframe');

  const pub = publishArgs([hi, lo], 'pipe:1', { inputArgs: ['-re', '-i', 'in.mp4'] });
  assert.ok(!pub.includes('-method'), 'the CLI does the POST itself');
  assert.deepEqual(
    pub.filter((x, i) => pub[i - 1] === '-map'),
    ['0:v:0', '0:v:0', '0:a:0?', '0:a:0?'],
  );
  const direct = publishArgs([], 'http://h/feed1.ffm', { inputArgs: ['-i', 'a', '-i', 'b'] });
  assert.equal(valueOf(direct, '-method'), 'POST');
  assert.equal(valueOf(direct, '-c:v:0'), 'libx264', 'no variants: plain H.264');
  assert.equal(valueOf(direct, '-c:a:0'), 'aac');
  assert.deepEqual(defaultPublishMaps(2), { video: '0:v:0', audio: '1:a:0?' });
});

test('specify addresses one output stream of a kind', () => {
  assert.deepEqual(specify(['-s', '320x240', '-b:v', '300k', '-preset:v', 'fast'], 'v', 2), [
    '-s:v:2',
    '320x240',
    '-b:v:2',
    '300k',
    '-preset:v:2',
    'fast',
  ]);
  assert.deepEqual(specify(['-ar', '44100', '-b:a', '64k'], 'a', 0), ['-ar:a:0', '44100', '-b:a:0', '64k']);
});

test('Launch drops argv[0], adds codecs only when none are given, and writes MPEG-TS on stdout', () => {
  const plain = launchArgs(['ffmpeg', '-f', 'v4l2', '-i', '/dev/video0']);
  assert.deepEqual(plain.slice(plain.indexOf('-f'), plain.indexOf('-f') + 4), ['-f', 'v4l2', '-i', '/dev/video0']);
  assert.equal(valueOf(plain, '-c:v'), 'libx264');
  assert.equal(plain.at(-1), 'pipe:1');
  assert.ok(!plain.includes('ffmpeg'));
  const own = launchArgs(['/usr/bin/ffmpeg', '-i', 'x', '-c:v', 'mpeg2video']);
  assert.equal(own.filter((x) => x === '-c:v').length, 1);
});

test('Source: files loop in real time unless NoLoop; network sources get timeouts; file:// is a path', () => {
  assert.ok(isFileSource('/srv/clip.ts'));
  assert.ok(isFileSource('file:///srv/clip.ts'));
  assert.ok(!isFileSource('rtsp://cam/1'));
  const looped = pullArgs('/srv/clip.ts', { loop: true, transcode: false });
  assert.equal(valueOf(looped, '-stream_loop'), '-1');
  assert.ok(looped.includes('-re'));
  assert.equal(valueOf(looped, '-c'), 'copy');
  const once = pullArgs('file:///srv/clip.ts', { loop: false, transcode: false });
  assert.ok(!once.includes('-stream_loop'));
  assert.equal(valueOf(once, '-i'), '/srv/clip.ts');
  const rtsp = pullArgs('rtsp://cam/1', { loop: true, transcode: true });
  assert.equal(valueOf(rtsp, '-rtsp_transport'), 'tcp');
  assert.ok(!rtsp.includes('-re') && !rtsp.includes('-stream_loop'));
  assert.equal(valueOf(rtsp, '-c:v'), 'libx264');
  assert.equal(valueOf(pullArgs('/dev/video0', { loop: true, transcode: false }), '-f'), 'v4l2');
});

test('resolveFfmpeg: FFmpegPath, then FEEDCAST_FFMPEG, then PATH, with reasons that name the origin', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-ffmpeg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fake = join(dir, 'ffmpeg');
  writeFileSync(fake, '#!/bin/sh\n');
  chmodSync(fake, 0o755);
  assert.deepEqual(resolveFfmpeg(fake, {}), { ok: true, path: fake });
  assert.deepEqual(resolveFfmpeg(undefined, { FEEDCAST_FFMPEG: fake }), { ok: true, path: fake });
  assert.deepEqual(resolveFfmpeg(undefined, { PATH: `/nonexistent:${dir}` }), { ok: true, path: fake });
  const bad = resolveFfmpeg('/nonexistent/ffmpeg', { PATH: dir });
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.reason, /FFmpegPath names \/nonexistent\/ffmpeg/);
  const none = resolveFfmpeg(undefined, { PATH: '/nonexistent' });
  assert.match(none.ok ? '' : none.reason, /ffmpeg not found on PATH/);
  const envName = resolveFfmpeg(undefined, { FEEDCAST_FFMPEG: 'ffmpeg-x', PATH: dir });
  assert.match(envName.ok ? '' : envName.reason, /FEEDCAST_FFMPEG names "ffmpeg-x", which is not on PATH/);
});

test('property: any encoding gives a well-formed argv that says what was asked', async () => {
  const sizes = fc.record({
    w: fc.integer({ min: 1, max: 960 }).map((x) => x * 2),
    h: fc.integer({ min: 1, max: 540 }).map((x) => x * 2),
  });
  const arb = fc.record({
    format: fc.constantFrom('flv', 'mpegts', 'webm', 'mpjpeg', 'mp4', 'mpeg'),
    size: sizes,
    fps: fc.integer({ min: 1, max: 60 }),
    vb: fc.option(fc.integer({ min: 16, max: 20_000 }), { nil: undefined }),
    gop: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
    ab: fc.option(fc.integer({ min: 8, max: 320 }), { nil: undefined }),
    defaults: fc.boolean(),
    noAudio: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(arb, async (e) => {
      const lines = [
        `Format ${e.format}`,
        `VideoSize ${e.size.w}x${e.size.h}`,
        `VideoFrameRate ${e.fps}`,
        e.vb !== undefined ? `VideoBitRate ${e.vb}` : '',
        e.gop !== undefined ? `VideoGopSize ${e.gop}` : '',
        // NoDefaults makes a missing audio bit rate a config error (ref §2.6): give one then.
        e.noAudio ? 'NoAudio' : `AudioSampleRate 48000${e.ab !== undefined || !e.defaults ? `\nAudioBitRate ${e.ab ?? 64}` : ''}`,
        e.defaults ? '' : 'NoDefaults',
      ];
      const p = profileOf(await streamOf(lines.filter((l) => l !== '').join('\n')));
      const argv = transcodeArgs(p, { hasVideo: true, hasAudio: true });
      for (const a of argv) assert.ok(!/undefined|NaN|null/.test(a) && a !== '', `bad argument "${a}" in ${argv.join(' ')}`);
      const enc = encoderArgs(p);
      assert.equal(valueOf(enc, '-s'), `${e.size.w}x${e.size.h}`);
      assert.equal(valueOf(enc, '-r'), String(e.fps));
      assert.equal(valueOf(enc, '-g'), String(e.gop ?? e.fps * 2));
      if (e.vb !== undefined) assert.equal(valueOf(enc, '-b:v'), `${e.vb}k`);
      assert.equal(enc.includes('-an'), e.noAudio || p.audio === undefined);
      // As a ladder rendition, every option addresses its own output stream.
      const v = specify(p.video?.options ?? [], 'v', 3);
      for (let i = 0; i < v.length; i += 2) assert.ok(v[i]?.endsWith(':v:3'), `${v[i] ?? ''} in ${v.join(' ')}`);
    }),
    { numRuns: 60 },
  );
});

test('encoderName maps ffserver-era names and leaves the rest', () => {
  assert.deepEqual(['h264', 'VP8', 'vorbis', 'mpeg1video', 'aac'].map(encoderName), [
    'libx264',
    'libvpx',
    'libvorbis',
    'mpeg1video',
    'aac',
  ]);
});
