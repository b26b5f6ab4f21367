// Time ranges played from wherever they are held (issue 21): real ffmpeg publishes three feeds;
// `/FEED.mp4?start=&end=` is made from the FeedFile ring when nothing is recorded (exact to the
// frame, moov first, seekable); a range older than a tiny ring is played from the recordings as
// `.ts`, `.flv` and over RTSP (`?date=T1&end=T2`); TS recordings (RecordFormat ts) serve the MP4,
// the HLS VOD playlist and `.ts` ranges. ffprobe checks first and last timestamps (within one GOP
// of the request, or one frame where the format is exact), the frame steps, and that all decodes.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { tempDir } from '../helpers/feedfile-fixtures.js';
import { FFMPEG, probeVideoPackets, publish, run, skipWithoutFfmpeg, type VideoPackets } from '../helpers/media-tools.js';
import { recordingsListing } from '../helpers/recordings.js';
import { decodeRtsp, startRtsp } from '../helpers/rtsp-tools.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const FPS = 25;
const GOP_MS = 1000; // publish()'s default: a keyframe a second

async function decodes(path: string): Promise<void> {
  const decode = await run(FFMPEG, ['-v', 'error', '-i', path, '-f', 'null', '-'], 60_000);
  assert.equal(decode.code, 0, decode.stderr);
  assert.equal(decode.stderr.trim(), '', `${path} decodes without errors`);
}

/** GET `path`: the body saved to a file, and the wall time the range starts at (its X-…-Start header). */
async function download(
  server: TestServer,
  dir: string,
  path: string,
  name: string,
): Promise<{ file: string; firstWall: number; res: Response; body: Buffer }> {
  const res = await fetch(server.url(path));
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `${path}: ${body.toString().slice(0, 300)}`);
  const file = join(dir, name);
  writeFileSync(file, body);
  const start = res.headers.get('x-recording-start') ?? res.headers.get('x-feedcast-start');
  assert.ok(start !== null, `${path} says where it starts`);
  return { file, firstWall: Date.parse(start), res, body };
}

/** Starts on a keyframe at most one GOP before `startMs`; one frame every 40 ms, none missing. */
function checkStartAndSteps(what: string, p: VideoPackets, firstWall: number, startMs: number): void {
  assert.ok(
    firstWall <= startMs + 1 && firstWall > startMs - GOP_MS - 50,
    `${what}: starts ${startMs - firstWall} ms before start`,
  );
  assert.ok(p.keys[0], `${what}: the first frame is a keyframe`);
  for (let i = 1; i < p.dts.length; i++) {
    assert.ok(
      Math.abs(p.dts[i]! - p.dts[i - 1]! - 1 / FPS) < 0.002,
      `${what}: DTS step at packet ${i}: ${p.dts[i - 1]} -> ${p.dts[i]}`,
    );
  }
}

/** The video of `p` ends at `endMs`: within a frame (`exact`) or within a GOP. */
function checkEnd(what: string, p: VideoPackets, firstWall: number, endMs: number, exact: boolean): void {
  const end = p.dts[p.dts.length - 1]! + 1 / FPS - p.dts[0]!;
  const wanted = (endMs - firstWall) / 1000;
  const slack = exact ? 1 / FPS + 0.002 : GOP_MS / 1000;
  assert.ok(Math.abs(end - wanted) <= slack, `${what}: video ends at ${end.toFixed(3)} s, asked ${wanted.toFixed(3)} s`);
  if (exact) assert.equal(p.dts.length, Math.round(end * FPS), `${what}: frame count matches the duration`);
}

describe('time ranges from the ring and from the recordings (fMP4 and TS)', { skip }, () => {
  test(
    'MP4 from the ring; .ts/.flv/RTSP from recordings once the ring rolled over; MP4, HLS VOD and .ts from TS recordings',
    { timeout: 240_000 },
    async (t) => {
      const dir = tempDir(t);
      const server = await startTestServer(
        t,
        `<Feed ringmp4.ffm>\n  File ${dir}/ringmp4.ffm\n  FileMaxSize 64M\n</Feed>\n` +
          `<Feed rolled.ffm>\n  File ${dir}/rolled.ffm\n  FileMaxSize 256K\n  Record on\n  RecordSegment 3s\n  RecordPath ${dir}/%feed/%H%M%S.mp4\n</Feed>\n` +
          `<Feed tsrec.ffm>\n  File ${dir}/tsrec.ffm\n  FileMaxSize 256K\n  Record on\n  RecordFormat ts\n  RecordSegment 3s\n  RecordPath ${dir}/%feed/%H%M%S.ts\n</Feed>\n`,
      );
      const { url: rtspUrl } = await startRtsp(t, server);
      const pubs = ['ringmp4', 'rolled', 'tsrec'].map((feed) => publish(server.url(`/${feed}.ffm`), { seconds: 14 }));
      t.after(() => Promise.all(pubs.map((p) => p.stop())));
      for (const p of pubs) assert.equal(await p.exited, 0, p.stderr());
      await waitFor(
        'the recordings to be finished',
        async () =>
          (await recordingsListing(server.url(''), 'rolled')).files.every((f) => !f.writing) &&
          (await recordingsListing(server.url(''), 'tsrec')).files.every((f) => !f.writing),
        30_000,
      );

      // 1. MP4 from the ring (no recordings): exact to the frame, moov first, seekable.
      {
        const span = (await recordingsListing(server.url(''), 'ringmp4')).spans[0]!;
        const startMs = span.startMs + 2500;
        const endMs = span.startMs + 9300;
        const d = await download(
          server,
          dir,
          `/ringmp4.mp4?start=${new Date(startMs).toISOString()}&end=${(endMs / 1000).toFixed(3)}`,
          'ring.mp4',
        );
        assert.equal(d.res.headers.get('content-type'), 'video/mp4');
        assert.equal(d.body.toString('latin1', 4, 8), 'ftyp');
        assert.equal(d.body.toString('latin1', 36, 40), 'moov', 'the moov comes first');
        const p = await probeVideoPackets(d.file, 1 / FPS);
        checkStartAndSteps('ring mp4', p, d.firstWall, startMs);
        checkEnd('ring mp4', p, d.firstWall, endMs, true);
        await decodes(d.file);
        // Seekable: -ss 3 reads from the keyframe at or before 3 s.
        const ss = await run(FFMPEG, ['-v', 'error', '-ss', '3', '-i', d.file, '-frames:v', '1', '-f', 'null', '-'], 30_000);
        assert.equal(ss.code, 0, ss.stderr);
        // Byte ranges give the same bytes as the whole body.
        const part = await fetch(
          server.url(`/ringmp4.mp4?start=${new Date(startMs).toISOString()}&end=${(endMs / 1000).toFixed(3)}`),
          { headers: { Range: 'bytes=100000-100999' } },
        );
        assert.equal(part.status, 206);
        assert.ok(Buffer.from(await part.arrayBuffer()).equals(d.body.subarray(100_000, 101_000)), 'bytes=100000-100999');
      }

      // 2. Older than the ring: .ts, .flv and RTSP from the (fMP4) recordings.
      {
        const span = (await recordingsListing(server.url(''), 'rolled')).spans.find((s) => s.sources.includes('recordings'))!;
        const startMs = span.startMs + 2500;
        const endMs = span.startMs + 7300;
        const feed = server.ctx.feeds.get('rolled')!;
        const ringOldest = server.ctx.feedFiles.of(feed)!.status.oldestWallMs!;
        assert.ok(ringOldest > endMs, `the ring rolled over: it holds from ${ringOldest - endMs} ms after the range`);
        const range = `date=${new Date(startMs).toISOString()}&end=${new Date(endMs).toISOString()}`;
        for (const format of ['ts', 'flv']) {
          const d = await download(server, dir, `/rolled.${format}?${range}`, `rolled.${format}`);
          const p = await probeVideoPackets(d.file, 1 / FPS);
          checkStartAndSteps(`rolled .${format}`, p, d.firstWall, startMs);
          checkEnd(`rolled .${format}`, p, d.firstWall, endMs, false);
          await decodes(d.file);
        }
        const rtsp = await decodeRtsp(
          rtspUrl(`/rolled?date=${new Date(startMs).toISOString()}&end=${new Date(endMs).toISOString()}`),
          'tcp',
          30,
        );
        assert.equal(rtsp.code, 0, rtsp.errors);
        assert.equal(rtsp.errors, '', 'RTSP: decodes without errors');
        const seconds = (endMs - startMs) / 1000;
        assert.ok(
          rtsp.videoFrames >= seconds * FPS - 5 && rtsp.videoFrames <= (seconds + GOP_MS / 1000) * FPS + 5,
          `RTSP: ${rtsp.videoFrames} video frames for a ${seconds} s range`,
        );
      }

      // 3. TS recordings: MP4, HLS VOD and .ts (the ring rolled over) from them.
      {
        const span = (await recordingsListing(server.url(''), 'tsrec')).spans.find((s) => s.sources.includes('recordings'))!;
        const startMs = span.startMs + 2500;
        const endMs = span.startMs + 7300;
        const range = `start=${new Date(startMs).toISOString()}&end=${(endMs / 1000).toFixed(3)}`;
        const mp4 = await download(server, dir, `/tsrec.mp4?${range}`, 'tsrec.mp4');
        assert.equal(mp4.body.toString('latin1', 36, 40), 'moov');
        const pm = await probeVideoPackets(mp4.file, 1 / FPS);
        checkStartAndSteps('TS recordings mp4', pm, mp4.firstWall, startMs);
        checkEnd('TS recordings mp4', pm, mp4.firstWall, endMs, true);
        await decodes(mp4.file);

        const playlistUrl = server.url(`/tsrec/index.m3u8?${range}`);
        const res = await fetch(playlistUrl);
        const text = await res.text();
        assert.equal(res.status, 200, text);
        assert.match(text, /#EXT-X-PLAYLIST-TYPE:VOD\n/);
        assert.match(text, /#EXT-X-MAP:URI="vod\/rec-\d+-init\.mp4"/);
        const firstWall = Date.parse(res.headers.get('x-feedcast-start')!);
        const pv = await probeVideoPackets(playlistUrl, 1 / FPS);
        checkStartAndSteps('TS recordings HLS VOD', pv, firstWall, startMs);
        checkEnd('TS recordings HLS VOD', pv, firstWall, endMs, false);
        await decodes(playlistUrl);

        const ts = await download(
          server,
          dir,
          `/tsrec.ts?date=${new Date(startMs).toISOString()}&end=${new Date(endMs).toISOString()}`,
          'tsrec-range.ts',
        );
        const pt = await probeVideoPackets(ts.file, 1 / FPS);
        checkStartAndSteps('TS recordings .ts', pt, ts.firstWall, startMs);
        checkEnd('TS recordings .ts', pt, ts.firstWall, endMs, false);
        await decodes(ts.file);
      }
    },
  );
});
