// Issue 18, class 7: ffmpeg <= 3.4 publishing to `http://HOST:8090/feed1.ffm` (no -f) fetched the
// feed's stream layout with a GET, then POSTed FFM2; Feedcast answered 405 and 415.
// Replays the captured ffmpeg 3.3 handshake, and FFM built from real ffmpeg frames; ffprobe reads back.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ffmCodecName, ffmOption, parseFfmHeader } from '../../src/formats/ffm/ffm-header.js';
import { ffmBodyOfFixture, postFfmChunked, rawExchange } from '../helpers/ffm-publisher.js';
import { decodeFrames, FFPROBE, run, skipWithoutFfmpeg, type ProbeStream } from '../helpers/media-tools.js';
import { recordingLogger, type LogLine } from '../helpers/recording-logger.js';
import { postBytes, startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/${name}`, import.meta.url));

/** The publisher's first request as captured (ffserver-reference.md Appendix A.1). */
const CAPTURED_GET = Buffer.from(
  'GET /feed1.ffm HTTP/1.1\r\nUser-Agent: Lavf/57.72.101\r\nAccept: */*\r\nRange: bytes=0-\r\nConnection: close\r\nHost: 127.0.0.1:8090\r\nIcy-MetaData: 1\r\n\r\n',
  'latin1',
);

/** The capture's ffserver.conf with its feed file in a temporary directory and a short grace period. */
function captureConfig(dir: string): string {
  return (
    fixture('ffserver-capture.conf')
      .toString('utf8')
      .replace('File /tmp/feed1.ffm', `File ${join(dir, 'feed1.ffm')}`)
      .replace('CustomLog -', '') + '\nPublisherGracePeriod 1\n'
  );
}

/** ffprobe of a whole live URL (until the server ends it): streams with the frames it decoded. */
async function probeUntilEnd(url: string): Promise<Array<ProbeStream & { nb_read_frames?: string }>> {
  const { code, stdout, stderr } = await run(
    FFPROBE,
    ['-v', 'error', '-count_frames', '-show_streams', '-of', 'json', url],
    60_000,
  );
  if (code !== 0) throw new Error(`ffprobe ${url} failed (${String(code)}): ${stderr}`);
  return (JSON.parse(stdout) as { streams?: Array<ProbeStream & { nb_read_frames?: string }> }).streams ?? [];
}

async function readerAttached(server: TestServer): Promise<void> {
  await waitFor(
    'a reader that got bytes',
    () => server.ctx.connections.list().some((c) => c.role === 'reader' && c.bytesOut > 0),
    30_000,
  );
}

describe('FFM publishing (ffmpeg <= 3.4)', { skip }, () => {
  test('the captured ffmpeg 3.3 GET gets an FFM2 header of the streams Feedcast needs; the captured POST is demuxed and decodes', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-ffm-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const lines: LogLine[] = [];
    const server = await startTestServer(t, captureConfig(dir), { log: recordingLogger(lines) });
    const port = server.httpPort;

    // Connection 1: the stream layout. The variants Feedcast carries (test.ts and test2-rtsp.mpg:
    // MPEG-1 + MP2, as ffserver listed them) with the <Stream> encoder settings; the flv1, msmpeg4v3,
    // wmav2, mpeg4 and mjpeg streams are the server's to encode.
    const get = await rawExchange(port, CAPTURED_GET);
    assert.equal(get.status, 200, get.head);
    assert.match(get.head, /\r\nContent-Type: application\/x-octet-stream\r\n/i);
    assert.equal(get.body.length, 4096);
    const layout = parseFfmHeader(get.body);
    assert.deepEqual(
      layout.streams.map((s) => `${ffmCodecName(s.codecId)} ${s.bitRate}`),
      ['mp2 128000', 'mpeg1video 800000', 'mp2 96000', 'mpeg1video 600000'],
    );
    const video = layout.streams[1] ?? assert.fail();
    assert.equal(ffmOption(video, 'video_size'), '640x360');
    assert.equal(ffmOption(video, 'time_base'), '1/25');
    assert.equal(ffmOption(video, 'g'), '25');
    assert.equal(ffmOption(layout.streams[0] ?? assert.fail(), 'ar'), '44100');

    // Connection 2: the POST as captured (18 packets, cut inside the 19th chunk-size line).
    const post = connect(port, '127.0.0.1');
    t.after(() => post.destroy());
    post.write(fixture('ffmpeg33-ffm-post.bin'));
    const feed = server.ctx.feeds.get('feed1') ?? assert.fail('no feed1');
    await waitFor('the captured frames', () => feed.stats.framesIn === 8);
    assert.deepEqual(
      feed.tracks.map((tr) => `${tr.codec}${tr.width !== undefined ? ` ${tr.width}x${tr.height ?? 0}` : ''}`),
      ['mp3', 'mp2', 'mpeg1video 640x360', 'aac', 'mp2', 'mpeg1video 640x360', 'mjpeg 640x360'],
    );
    const skipped = lines.filter((l) => l.msg.includes('skipping'));
    assert.deepEqual(
      skipped.map((l) => l.msg),
      ['ffm: skipping 4 of 11 streams, in codecs Feedcast does not carry: #1 flv1, #4 wmav2, #5 msmpeg4v3, #7 mpeg4'],
    );

    // A reader gets the feed (the GOP cache), then the publisher goes away and the reader's stream ends.
    const probing = probeUntilEnd(server.url('/feed1.ts'));
    await readerAttached(server);
    post.destroy();
    const streams = await probing;
    const mpeg1 = streams.filter((s) => s.codec_name === 'mpeg1video');
    assert.ok(mpeg1.length >= 1, JSON.stringify(streams));
    for (const s of mpeg1) {
      assert.equal(s.width, 640);
      assert.equal(s.height, 360);
    }
    assert.ok(
      mpeg1.some((s) => Number(s.nb_read_frames) >= 1),
      `decoded MPEG-1 frames: ${mpeg1.map((s) => s.nb_read_frames).join(',')}`,
    );
    // MPEG audio (the MP3 and both MP2 streams: ffprobe names a layer II stream of one frame in TS mp3) and AAC decode.
    const audio = streams.filter((s) => s.codec_type === 'audio');
    assert.deepEqual(audio.map((s) => s.codec_name).sort(), ['aac', 'mp3', 'mp3', 'mp3'], JSON.stringify(audio));
    for (const s of audio) assert.ok(Number(s.nb_read_frames) >= 1, `${s.codec_name} decoded`);
  });

  test('H.264 + AAC from real ffmpeg frames, packed into FFM2 and POSTed one packet per chunk, decode from the feed', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\nPublisherGracePeriod 1\n');

    // No <Stream> asks for an encoding: the handshake asks for H.264 (libx264, live settings) + AAC.
    const get = await rawExchange(server.httpPort, CAPTURED_GET);
    assert.equal(get.status, 200, get.head);
    const layout = parseFfmHeader(get.body);
    assert.deepEqual(
      layout.streams.map((s) => ffmCodecName(s.codecId)),
      ['aac', 'h264'],
    );
    assert.deepEqual(layout.streams[1]?.privateOptions, [
      ['preset', 'veryfast'],
      ['tune', 'zerolatency'],
    ]);

    const { body, frames } = ffmBodyOfFixture('h264-aac.ts');
    const post = postFfmChunked(server.url('/feed1.ffm'), body);
    t.after(() => post.req.destroy());
    const feed = server.ctx.feeds.get('feed1') ?? assert.fail('no feed1');
    await waitFor('every frame', () => feed.stats.framesIn === frames);
    assert.deepEqual(
      feed.tracks.map((tr) => [tr.codec, tr.width, tr.height, tr.sampleRate]),
      [
        ['h264', 320, 240, undefined],
        ['aac', undefined, undefined, 48000],
      ],
    );

    // Two readers: ffprobe's view and ffmpeg's decode, both until the publisher ends.
    const probing = probeUntilEnd(server.url('/feed1.flv'));
    const decoding = decodeFrames(server.url('/feed1.ts'), 30, 60_000);
    await waitFor(
      'two readers',
      () => server.ctx.connections.list().filter((c) => c.role === 'reader' && c.bytesOut > 0).length === 2,
      30_000,
    );
    const answer = await post.finish();
    assert.equal(answer.status, 204);
    const streams = await probing;
    const v = streams.find((s) => s.codec_type === 'video');
    assert.equal(v?.codec_name, 'h264');
    assert.equal(v.width, 320);
    assert.equal(v.height, 240);
    assert.ok(Number(v.nb_read_frames) >= 25, 'one GOP (1 s) decoded');
    assert.equal(streams.find((s) => s.codec_type === 'audio')?.codec_name, 'aac');
    const decoded = await decoding;
    // The stream ends when the publisher has gone for the grace period (an HTTP-level end, not a decode error).
    const decodeErrors = decoded.errors
      .split('\n')
      .filter((l) => l !== '' && !/Stream ends prematurely|Input\/output error|Last message repeated/.test(l));
    assert.deepEqual(decodeErrors, [], 'no decode errors');
    assert.ok(decoded.videoFrames >= 25, `decoded ${decoded.videoFrames} video frames`);
    assert.ok(decoded.audioFrames > 20, `decoded ${decoded.audioFrames} audio frames`);
  });

  test('FFM with a Content-Length in uneven chunks is read whole', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const { body, frames } = ffmBodyOfFixture('h264-aac.ts');
    const answer = await postBytes(server.url('/feed1.ffm'), body);
    assert.equal(answer.status, 204, answer.body);
    assert.equal(server.ctx.feeds.get('feed1')?.stats.framesIn, frames);
  });

  test('malformed FFM closes its own connection with a precise error; another FFM publisher is not affected', async (t) => {
    const server = await startTestServer(t, '<Feed a.ffm>\n</Feed>\n<Feed b.ffm>\n</Feed>\n');
    const good = ffmBodyOfFixture('h264-aac.ts');
    const healthy = postFfmChunked(server.url('/b.ffm'), good.body.subarray(0, 4096 * 10));
    t.after(() => healthy.req.destroy());
    const b = server.ctx.feeds.get('b') ?? assert.fail();
    await waitFor('feed b to get frames', () => b.stats.framesIn > 0);
    const before = b.stats.framesIn;

    const desync = Buffer.from(good.body);
    desync.write('zz', 4096 * 3, 'latin1');
    const bad = await postBytes(server.url('/a.ffm'), desync);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /ffm: data packet 2 starts with 0x7a7a, not "fm": the stream is desynchronized \(at offset 12288\)/);

    const ffm1 = Buffer.from(good.body);
    ffm1.write('FFM1', 0, 'latin1');
    const old = await postBytes(server.url('/a.ffm'), ffm1);
    assert.equal(old.status, 415);
    assert.match(old.body, /FFM1/);

    // While b is published, its handshake GET is refused as ffserver did, before any encoding starts.
    const busy = await rawExchange(server.httpPort, Buffer.from(CAPTURED_GET.toString('latin1').replace('feed1', 'b'), 'latin1'));
    assert.equal(busy.status, 409);
    assert.match(busy.body.toString(), /Feed b is busy: already published by http/);

    // b goes on: the rest of its stream arrives whole.
    for (let at = 4096 * 10; at < good.body.length; at += 4096) healthy.req.write(good.body.subarray(at, at + 4096));
    await waitFor('all of feed b', () => b.stats.framesIn === good.frames);
    assert.ok(b.stats.framesIn > before);
    assert.equal((await healthy.finish()).status, 204);
  });
});
