// Issue 24, item 7: ffmpeg and ffprobe took 4-5 s to the first frame of /FEED.ts (FLV: about 1 s).
// Their mpegts demuxer reads 5 s of media before it answers (scan_all_pmts keeps it "headerless"),
// so the server now starts ffmpeg's tools that far back: they must finish from what the feed holds.

import assert from 'node:assert/strict';
import { request, type ClientRequest } from 'node:http';
import { describe, test } from 'node:test';
import { FFMPEG, FFPROBE, lavfiArgs, run, skipWithoutFfmpeg, type ProbeStream } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

/** `seconds` of H.264 + AAC as MPEG-TS, encoded as fast as ffmpeg goes (not in real time). */
async function encodeTs(seconds: number): Promise<Buffer> {
  const args = ['-hide_banner', '-v', 'error', ...lavfiArgs('h264-aac', { gop: 25 }), '-t', String(seconds), '-f', 'mpegts', '-'];
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(FFMPEG, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const parts: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => parts.push(d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(parts)) : reject(new Error(`ffmpeg exited ${String(code)}`)),
    );
  });
}

/** POSTs `body` and keeps the request open: the feed keeps its publisher but gets nothing new. */
function pushAndHold(url: string, body: Buffer): ClientRequest {
  const req = request(url, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } });
  req.on('error', () => undefined);
  req.write(body);
  return req;
}

describe('MPEG-TS time to the first frame (issue 24, item 7)', { skip }, () => {
  test('ffprobe with default options gets every stream of /FEED.ts from what the feed already holds', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const push = pushAndHold(server.url('/feed1.ffm'), await encodeTs(9));
    t.after(() => push.destroy());
    const feed = server.ctx.feeds.get('feed1');
    assert.ok(feed !== undefined);
    // The whole clip is in; from now on the feed receives nothing, so whatever ffprobe needs
    // must already be there.
    await waitFor('8 s of the clip in the feed', () => (feed.recentFrames().at(-1)?.dts90k ?? 0) >= 8 * 90_000, 30_000);
    const recent = feed.recentFrames();
    const span90k = (recent.at(-1)?.dts90k ?? 0) - (recent[0]?.dts90k ?? 0);
    assert.ok(span90k >= 5.5 * 90_000, `the feed keeps ${span90k / 90_000} s before its newest frame`);

    // Default client options: ffprobe analyses 5 s of an MPEG-TS input. Before the fix it got the
    // GOP cache (1 s) and waited for live data that never came, until this timeout killed it.
    const { code, stdout, stderr } = await run(
      FFPROBE,
      ['-v', 'error', '-show_streams', '-of', 'json', server.url('/feed1.ts')],
      20_000,
    );
    assert.equal(code, 0, `ffprobe finished from the backlog (stderr: ${stderr})`);
    const streams = (JSON.parse(stdout) as { streams: ProbeStream[] }).streams;
    const video = streams.find((s) => s.codec_type === 'video');
    const audio = streams.find((s) => s.codec_type === 'audio');
    assert.equal(video?.codec_name, 'h264');
    assert.equal(video.width, 320, 'full video parameters');
    assert.equal(audio?.codec_name, 'aac');
    assert.equal(audio.sample_rate, '48000', 'full audio parameters');
  });
});
