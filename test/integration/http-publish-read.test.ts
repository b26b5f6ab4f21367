// End to end over HTTP: real ffmpeg publishes (MPEG-TS and FLV push), real ffprobe/ffmpeg read
// every output and must decode what was published.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeFrames, probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { postBytes, startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

const CONFIG = `
<Feed feed1.ffm>
</Feed>
<Stream live.flv>
Feed feed1.ffm
</Stream>
<Stream live.ts>
Feed feed1.ffm
Format mpegts
</Stream>
<Stream audio.ts>
Feed feed1.ffm
NoVideo
</Stream>
`;

function videoOf(result: Awaited<ReturnType<typeof probePackets>>) {
  return result.packets.filter((p) => p.codec_type === 'video');
}

describe('HTTP publish and read', { skip }, () => {
  test('H.264 + AAC pushed as MPEG-TS decodes from every output, starting on a keyframe', async (t) => {
    const server = await startTestServer(t, CONFIG);
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 30 });
    t.after(() => pub.stop());
    const feed = server.ctx.feeds.get('feed1');
    await waitFor('the feed to get tracks', () => (feed?.tracks.length ?? 0) === 2);

    for (const path of ['/feed1.flv', '/feed1.ts', '/live.flv', '/live.ts']) {
      const probe = await probePackets(server.url(path), 2);
      const codecs = probe.streams.map((s) => s.codec_name).sort();
      assert.deepEqual(codecs, ['aac', 'h264'], `${path} streams`);
      const v = probe.streams.find((s) => s.codec_type === 'video');
      assert.equal(v?.width, 320, `${path} width`);
      assert.equal(v?.height, 240, `${path} height`);
      const video = videoOf(probe);
      assert.ok(video.length >= 20, `${path}: ${video.length} video packets in 2 s`);
      assert.ok(video[0]?.flags.startsWith('K'), `${path}: first video packet is a keyframe`);
      const dts = video.map((p) => Number(p.dts_time));
      for (let i = 1; i < dts.length; i++) assert.ok((dts[i] as number) > (dts[i - 1] as number), `${path}: DTS increases`);
    }

    const decoded = await decodeFrames(server.url('/feed1.flv'), 2);
    assert.equal(decoded.errors, '', 'no decode errors');
    assert.ok(decoded.videoFrames >= 40, `decoded ${decoded.videoFrames} video frames`);
    assert.ok(decoded.audioFrames > 50, `decoded ${decoded.audioFrames} audio frames`);

    const audioOnly = await probePackets(server.url('/audio.ts'), 1);
    assert.deepEqual(
      audioOnly.streams.map((s) => s.codec_name),
      ['aac'],
      'NoVideo leaves only audio',
    );

    // Mux once: readers of /feed1.flv and /live.flv (the same bytes) at the same time share one
    // output, which muxes each frame once for both.
    const abort = new AbortController();
    t.after(() => abort.abort());
    const bodies = await Promise.all(
      ['/feed1.flv', '/live.flv'].map((path) => fetch(server.url(path), { signal: abort.signal })),
    );
    const flvOutputs = () => server.ctx.outputs.all().filter((o) => o.feed === feed && o.contentType === 'video/x-flv');
    await waitFor('both FLV readers on one output', () => flvOutputs().some((o) => o.readers === 2));
    assert.equal(
      flvOutputs().length,
      1,
      `one FLV output of feed1: ${flvOutputs()
        .map((o) => o.id)
        .join(', ')}`,
    );
    abort.abort();
    await Promise.all(bodies.map((b) => b.body?.cancel().catch(() => undefined) ?? Promise.resolve()));
  });

  test('FLV push is readable as MPEG-TS, and MPEG-1 + MP2 pass through to MPEG-TS', async (t) => {
    const server = await startTestServer(t, '<Feed a.ffm>\n</Feed>\n<Feed b.ffm>\n</Feed>\n');
    const flvPub = publish(server.url('/a.ffm'), { codecs: 'h264-aac', format: 'flv', seconds: 30 });
    const mpegPub = publish(server.url('/b'), { codecs: 'mpeg1-mp2', seconds: 30, extra: ['-method', 'PUT'] });
    t.after(() => Promise.all([flvPub.stop(), mpegPub.stop()]));

    const a = await probePackets(server.url('/a.ts'), 2);
    assert.deepEqual(a.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);

    const b = await probePackets(server.url('/b.ts'), 2);
    assert.deepEqual(b.streams.map((s) => s.codec_name).sort(), ['mp2', 'mpeg1video']);
    const bv = b.streams.find((s) => s.codec_type === 'video');
    assert.equal(bv?.width, 320);
    assert.ok(videoOf(b).length >= 20);
    const decoded = await decodeFrames(server.url('/b.ts'), 2);
    assert.ok(decoded.videoFrames >= 40, `decoded ${decoded.videoFrames} MPEG-1 frames`);

    // FLV cannot carry MPEG-1 video: a clear refusal, not a broken stream.
    const refused = await fetch(server.url('/b.flv'));
    assert.equal(refused.status, 406);
    assert.match(await refused.text(), /b\.ts/);
  });

  test('a reader keeps reading through a publisher reconnect, with timestamps that only move forward', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const first = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 4 });
    t.after(() => first.stop());
    const feed = server.ctx.feeds.get('feed1');
    await waitFor('first publisher', () => (feed?.tracks.length ?? 0) === 2);

    // ffprobe reads 9 s of stream time: 4 s from the first publisher, then the second's.
    const probing = probePackets(server.url('/feed1.ts'), 9, 40_000);
    await first.exited;
    const second = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 20 });
    t.after(() => second.stop());
    const result = await probing;

    const video = videoOf(result);
    const times = video.map((p) => Number(p.dts_time));
    for (let i = 1; i < times.length; i++) {
      const step = (times[i] as number) - (times[i - 1] as number);
      assert.ok(step > 0, `DTS goes forward at packet ${i}`);
      assert.ok(step < 3, `no jump larger than the reconnect gap at packet ${i} (${step.toFixed(3)} s)`);
    }
    const keyframes = video.filter((p) => p.flags.startsWith('K')).length;
    assert.ok(times.length >= 150, `read ${times.length} video packets across both publishers`);
    assert.ok(keyframes >= 6, 'keyframes from both publishers');
    assert.equal(feed?.stats.publishers, 2);
  });

  test('a second publisher gets 409 while the first is sending', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const pub = publish(server.url('/feed1.ffm'), { seconds: 30 });
    t.after(() => pub.stop());
    await waitFor('first publisher', () => server.ctx.feeds.get('feed1')?.publisher !== undefined);

    const { status, body } = await postBytes(server.url('/feed1.ffm'), Buffer.alloc(188 * 10, 0x47));
    assert.equal(status, 409);
    assert.match(body, /busy|already published/);
  });

  test('a POSTed body with a Content-Length (not chunked) is accepted', async (t) => {
    const server = await startTestServer(t, 'DynamicFeeds on\n');
    // A real TS capture from the fixtures folder, sent in one request with a length.
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(new URL('../fixtures/h264-aac.ts', import.meta.url));
    const { status } = await postBytes(server.url('/clip'), bytes);
    assert.equal(status, 204);
    const feed = server.ctx.feeds.get('clip');
    assert.ok((feed?.stats.framesIn ?? 0) > 40, `frames in: ${feed?.stats.framesIn}`);
  });

  test('garbage pushed to a feed is refused with 415 and a message', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const { status, body } = await postBytes(server.url('/feed1.ffm'), Buffer.from('hello, this is not a media stream'));
    assert.equal(status, 415);
    assert.match(body, /neither MPEG-TS nor FLV/);
  });
});
