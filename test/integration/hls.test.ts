// HLS and LL-HLS end to end: real ffmpeg publishes H.264 + AAC, real ffprobe/ffmpeg read the
// fMP4 and MPEG-TS playlists and decode frames; LL-HLS blocking reload, parts and headers over HTTP.

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { HlsRoute } from '../../src/protocols/hls/route.js';
import { strictParse } from '../helpers/hls-strict.js';
import { decodeFrames, probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

const CONFIG = `
<Feed feed1.ffm>
</Feed>
<Stream live.m3u8>
Feed feed1.ffm
Format hls
</Stream>
`;

async function get(url: string): Promise<{ status: number; headers: Headers; text: string; bytes: Buffer }> {
  const res = await fetch(url);
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, text: bytes.toString('utf8'), bytes };
}

async function startWithHls(t: TestContext): Promise<{ server: TestServer; route: HlsRoute }> {
  const server = await startTestServer(t, CONFIG);
  const route = new HlsRoute(server.ctx, { partTargetMs: 500, segmentTargetMs: 1000 });
  server.http.addRoute(route);
  t.after(() => route.close());
  const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 40 });
  t.after(() => pub.stop());
  const feed = server.ctx.feeds.get('feed1');
  await waitFor('the feed to get tracks', () => (feed?.tracks.length ?? 0) === 2);
  return { server, route };
}

function tagValues(playlist: string, tag: string): string[] {
  return playlist
    .split('\n')
    .filter((l) => l.startsWith(`#${tag}:`))
    .map((l) => l.slice(tag.length + 2));
}

describe('HLS', { skip }, () => {
  test('fMP4 playlist (regular and LL) and TS playlist decode with ffprobe/ffmpeg', async (t) => {
    const { server } = await startWithHls(t);
    const first = await get(server.url('/feed1/index.m3u8'));
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('content-type'), 'application/vnd.apple.mpegurl');
    assert.equal(first.headers.get('access-control-allow-origin'), '*');
    assert.equal(first.headers.get('cache-control'), 'public, max-age=1');
    assert.match(first.text, /#EXT-X-MAP:URI="[a-z0-9]+-init1\.mp4"/);
    assert.match(first.text, /#EXT-X-PROGRAM-DATE-TIME:\d{4}-\d\d-\d\dT/);
    assert.match(first.text, /#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6\.0,PART-HOLD-BACK=1\.500/);
    assert.match(first.text, /#EXT-X-PART-INF:PART-TARGET=0\.500/);
    assert.match(first.text, /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="/);
    strictParse(first.text, 'first LL-HLS playlist');
    strictParse((await get(server.url('/feed1/ts/index.m3u8'))).text, 'MPEG-TS media playlist');

    for (const path of ['/feed1/index.m3u8', '/feed1/ts/index.m3u8']) {
      const probe = await probePackets(server.url(path), 3, 60_000);
      assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], `${path} streams`);
      const v = probe.streams.find((s) => s.codec_type === 'video');
      assert.equal(v?.width, 320, path);
      const video = probe.packets.filter((p) => p.codec_type === 'video');
      assert.ok(video.length >= 25, `${path}: ${video.length} video packets`);
      assert.ok(video[0]?.flags.startsWith('K'), `${path}: starts on a keyframe`);
      const decoded = await decodeFrames(server.url(path), 2, 60_000);
      assert.equal(decoded.errors, '', `${path}: no decode errors`);
      assert.ok(decoded.videoFrames >= 40, `${path}: decoded ${decoded.videoFrames} video frames`);
      assert.ok(decoded.audioFrames > 0, `${path}: decoded ${decoded.audioFrames} audio frames`);
    }
  });

  test('LL-HLS: parts within PART-TARGET, blocking reload, preload hint, delta update, immutable files', async (t) => {
    const { server } = await startWithHls(t);
    const base = server.url('/feed1/');
    const pl = (await get(base + 'index.m3u8')).text;
    strictParse(pl, 'LL-HLS playlist');
    // Every part is at most PART-TARGET; parts other than a segment's last are at least 85 % of it.
    const parts = tagValues(pl, 'EXT-X-PART').map((v) => Number(/DURATION=([\d.]+)/.exec(v)?.[1]));
    assert.ok(parts.length > 0, pl);
    for (const d of parts) assert.ok(d <= 0.5 && d > 0, `part duration ${d}`);
    const target = Number(tagValues(pl, 'EXT-X-TARGETDURATION')[0]);
    for (const d of tagValues(pl, 'EXTINF').map((v) => Number(v.split(',')[0])))
      assert.ok(Math.round(d) <= target, `EXTINF ${d}`);

    // Blocking reload: ask for the part after the hinted one; the answer holds it.
    const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/.exec(pl)?.[1];
    assert.ok(hint !== undefined, pl);
    const [, msnText, partText] = /-(\d+)\.(\d+)\.m4s$/.exec(hint) ?? [];
    const msn = Number(msnText);
    const part = Number(partText);
    const hinted = await get(base + hint); // held until the part exists
    assert.equal(hinted.status, 200);
    assert.equal(hinted.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(hinted.headers.get('content-type'), 'video/mp4');
    assert.equal(hinted.bytes.subarray(4, 8).toString('latin1'), 'moof');
    const blocked = await get(`${base}index.m3u8?_HLS_msn=${msn}&_HLS_part=${part + 1}`);
    assert.equal(blocked.status, 200);
    assert.equal(blocked.headers.get('cache-control'), 'public, max-age=6');
    const hasNext =
      blocked.text.includes(`-${msn}.${part + 1}.m4s"`) ||
      new RegExp(`-${msn}\\.m4s\\n`).test(blocked.text) ||
      blocked.text.includes(`-${msn + 1}.`);
    assert.ok(hasNext, `blocking reload returned a playlist with part ${msn}.${part + 1}:\n${blocked.text}`);
    strictParse(blocked.text, 'blocking reload');

    // Too far ahead: 400 at once. Bad directives: 400.
    assert.equal((await get(`${base}index.m3u8?_HLS_msn=${msn + 10}`)).status, 400);
    assert.equal((await get(`${base}index.m3u8?_HLS_part=1`)).status, 400);
    assert.equal((await get(`${base}index.m3u8?_HLS_msn=abc`)).status, 400);
    assert.equal((await get(`${base}index.m3u8?_HLS_skip=MAYBE`)).status, 400);

    // Delta update once the playlist is longer than the skip boundary (6 target durations).
    const feedSeg = () => get(base + 'index.m3u8').then((r) => tagValues(r.text, 'EXTINF').length);
    await waitFor('more than 7 segments in the playlist', async () => (await feedSeg()) >= 8, 30_000);
    const delta = await get(`${base}index.m3u8?_HLS_skip=YES`);
    assert.match(delta.text, /#EXT-X-SKIP:SKIPPED-SEGMENTS=\d+/);
    assert.match(delta.text, /#EXT-X-VERSION:9/);
    const full = await get(`${base}index.m3u8`);
    strictParse(delta.text, 'delta update');
    strictParse(full.text, 'LL-HLS playlist, 8 segments');
    const skipped = Number(/SKIPPED-SEGMENTS=(\d+)/.exec(delta.text)?.[1]);
    assert.ok(tagValues(delta.text, 'EXTINF').length + skipped >= tagValues(full.text, 'EXTINF').length - 1);

    // Segments are the concatenation of their parts.
    const segUri = full.text.split('\n').find((l) => /^[a-z0-9]+-\d+\.m4s$/.test(l));
    assert.ok(segUri !== undefined);
    const seg = await get(base + segUri);
    assert.equal(seg.status, 200);
    assert.equal(seg.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const segMsn = Number(/-(\d+)\.m4s/.exec(segUri)?.[1]);
    const partUris = [...full.text.matchAll(new RegExp(`URI="([a-z0-9]+-${segMsn}\\.\\d+\\.m4s)"`, 'g'))].map((m) => m[1]!);
    if (partUris.length > 0) {
      const partBytes = Buffer.concat(await Promise.all(partUris.map(async (u) => (await get(base + u)).bytes)));
      assert.deepEqual(partBytes, seg.bytes, 'segment = its parts');
    }

    // Stale and unknown file names.
    assert.equal((await get(base + 'zzzz0000-1.m4s')).status, 404);
    assert.equal((await get(base + 'nonsense.m4s')).status, 404);
    const options = await fetch(base + 'index.m3u8', { method: 'OPTIONS' });
    assert.equal(options.status, 204);
    assert.equal(options.headers.get('access-control-allow-origin'), '*');
  });

  test('a declared Format hls stream is served at /NAME with files under /NAME/', async (t) => {
    const { server } = await startWithHls(t);
    const url = server.url('/live.m3u8');
    const pl = await get(url);
    assert.equal(pl.status, 200, pl.text);
    assert.match(pl.text, /#EXT-X-MAP:URI="live\.m3u8\/[a-z0-9]+-init1\.mp4"/);
    const decoded = await decodeFrames(url, 2, 60_000);
    assert.equal(decoded.errors, '');
    assert.ok(decoded.videoFrames >= 40, `decoded ${decoded.videoFrames} video frames`);
  });
});
