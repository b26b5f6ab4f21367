// RTMP end to end: real ffmpeg publishes over RTMP and real ffprobe/ffmpeg play over RTMP, at server
// chunk sizes 128 and 4096; interop with HTTP push and HTTP-FLV/TS; a publisher reconnect under a
// player; refusals (unknown feed, busy feed, secret, ACL) and malformed input, with their log lines.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import type { ServerContext } from '../../src/server-context.js';
import { RtmpType } from '../../src/formats/rtmp/messages.js';
import { decodeFrames, probePackets, publish, skipWithoutFfmpeg, type ProbeResult } from '../helpers/media-tools.js';
import { RtmpTestClient, statusCode, statusDescription } from '../helpers/rtmp-client.js';
import { recordingLogger, type LogLine } from '../helpers/recording-logger.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

async function startRtmp(
  t: TestContext,
  server: TestServer,
  options: { chunkSize?: number; lines?: LogLine[] } = {},
): Promise<{ port: number; url: (path: string) => string }> {
  const ctx: ServerContext =
    options.lines === undefined
      ? server.ctx
      : Object.assign(Object.create(server.ctx) as ServerContext, { log: recordingLogger(options.lines) });
  const rtmp = new RtmpServer(ctx, options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {});
  const port = await rtmp.listen(0, '127.0.0.1');
  t.after(() => rtmp.close());
  return { port, url: (path) => `rtmp://127.0.0.1:${port}${path}` };
}

function videoDts(result: ProbeResult): number[] {
  return result.packets.filter((p) => p.codec_type === 'video').map((p) => Number(p.dts_time));
}

function assertPlays(result: ProbeResult, what: string): void {
  assert.deepEqual(
    result.streams.map((s) => s.codec_name).sort(),
    ['aac', 'h264'],
    `${what}: streams (${JSON.stringify(result.streams.map((s) => s.codec_type))})`,
  );
  const v = result.streams.find((s) => s.codec_type === 'video');
  assert.equal(v?.width, 320, `${what}: width`);
  assert.equal(v?.height, 240, `${what}: height`);
  const video = result.packets.filter((p) => p.codec_type === 'video');
  assert.ok(video.length >= 20, `${what}: ${video.length} video packets`);
  assert.ok(video[0]?.flags.startsWith('K'), `${what}: starts on a keyframe`);
  const dts = videoDts(result);
  for (let i = 1; i < dts.length; i++) assert.ok((dts[i] as number) > (dts[i - 1] as number), `${what}: DTS increases at ${i}`);
}

describe('RTMP publish and play', { skip }, () => {
  test('ffmpeg publishes over RTMP; RTMP players at chunk sizes 128 and 4096, HTTP-FLV and TS all decode it', async (t) => {
    const server = await startTestServer(t, '<Feed x.ffm>\n</Feed>\n');
    const small = await startRtmp(t, server, { chunkSize: 128 });
    const large = await startRtmp(t, server, { chunkSize: 4096 });
    const pub = publish(large.url('/live/x'), { codecs: 'h264-aac', format: 'flv', seconds: 40 });
    t.after(() => pub.stop());
    const feed = server.ctx.feeds.get('x');
    await waitFor('the feed to get tracks from RTMP', () => (feed?.tracks.length ?? 0) === 2);
    assert.equal(feed?.publisher?.protocol, 'rtmp');

    // Interop: what came in over RTMP is readable over HTTP.
    assertPlays(await probePackets(server.url('/x.flv'), 2), '/x.flv');
    assertPlays(await probePackets(server.url('/x.ts'), 2), '/x.ts');

    for (const rtmp of [small, large]) {
      const url = rtmp.url('/live/x');
      const [probe, decoded] = await Promise.all([probePackets(url, 2), decodeFrames(url, 2)]);
      assertPlays(probe, url);
      assert.equal(decoded.errors, '', `${url}: no decode errors`);
      assert.ok(decoded.videoFrames >= 40, `${url}: decoded ${decoded.videoFrames} video frames`);
      assert.ok(decoded.audioFrames > 50, `${url}: decoded ${decoded.audioFrames} audio frames`);
    }
    // One shared output per chunk size (the two players above read each one together).
    const ids = server.ctx.outputs
      .all()
      .map((o) => o.id)
      .filter((id) => id.includes('rtmp'));
    assert.ok(
      ids.every((id) => id === 'x.rtmp#128' || id === 'x.rtmp#4096'),
      `outputs: ${ids.join(', ')}`,
    );
  });

  test('players of one feed share one output and receive the same media bytes', async (t) => {
    const server = await startTestServer(t, '<Feed x.ffm>\n</Feed>\n');
    const rtmp = await startRtmp(t, server, { chunkSize: 4096 });
    const pub = publish(server.url('/x.ffm'), { codecs: 'h264-aac', seconds: 30 });
    t.after(() => pub.stop());
    await waitFor('tracks', () => (server.ctx.feeds.get('x')?.tracks.length ?? 0) === 2);

    const received: Map<number, string>[] = [new Map(), new Map()];
    const clients = await Promise.all(
      received.map((map) =>
        RtmpTestClient.open('127.0.0.1', rtmp.port, {
          onMessage: (m) => {
            if (m.typeId === RtmpType.video) map.set(m.timestampMs, m.payload.toString('base64'));
          },
        }),
      ),
    );
    t.after(() => clients.forEach((c) => c.close()));
    for (const c of clients) {
      await c.connect('live', `rtmp://127.0.0.1:${rtmp.port}/live`);
      assert.equal(statusCode(await c.play('x')), 'NetStream.Play.Reset');
    }
    const output = server.ctx.outputs.all().find((o) => o.id === 'x.rtmp#4096');
    assert.equal(output?.readers, 2, 'both players read one output');
    await waitFor('both players to get 50 video messages', () => received.every((m) => m.size >= 50));
    let common = 0;
    for (const [ts, payload] of received[0] ?? []) {
      const other = received[1]?.get(ts);
      if (other === undefined) continue;
      assert.equal(other, payload, `video message at ${ts} ms is the same for both players`);
      common++;
    }
    assert.ok(common >= 25, `${common} video messages in common`);
  });

  test('HTTP push is playable over RTMP (ffprobe and decoded frames)', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n<Stream live.flv>\nFeed feed1.ffm\nNoAudio\n</Stream>\n');
    const rtmp = await startRtmp(t, server, { chunkSize: 128 });
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 30 });
    t.after(() => pub.stop());
    await waitFor('tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);

    assertPlays(await probePackets(rtmp.url('/live/feed1'), 2), 'rtmp feed1');
    const decoded = await decodeFrames(rtmp.url('/anyapp/feed1'), 2);
    assert.equal(decoded.errors, '');
    assert.ok(decoded.videoFrames >= 40, `decoded ${decoded.videoFrames} video frames`);

    // A declared FLV stream by name, with its NoAudio.
    const stream = await probePackets(rtmp.url('/live/live.flv'), 1);
    assert.deepEqual(
      stream.streams.map((s) => s.codec_name),
      ['h264'],
    );
  });

  test('a player keeps playing through a publisher reconnect, with timestamps that only move forward', async (t) => {
    const server = await startTestServer(t, '<Feed x.ffm>\n</Feed>\n');
    const rtmp = await startRtmp(t, server, { chunkSize: 4096 });
    const first = publish(rtmp.url('/live/x'), { codecs: 'h264-aac', format: 'flv', seconds: 4 });
    t.after(() => first.stop());
    const feed = server.ctx.feeds.get('x');
    await waitFor('first publisher', () => (feed?.tracks.length ?? 0) === 2);

    const probing = probePackets(rtmp.url('/live/x'), 9, 40_000);
    await first.exited;
    const second = publish(rtmp.url('/live/x'), { codecs: 'h264-aac', format: 'flv', seconds: 20 });
    t.after(() => second.stop());
    const result = await probing;
    const times = videoDts(result);
    for (let i = 1; i < times.length; i++) {
      const step = (times[i] as number) - (times[i - 1] as number);
      assert.ok(step > 0, `DTS goes forward at packet ${i}`);
      assert.ok(step < 3, `no jump larger than the reconnect gap at packet ${i} (${step.toFixed(3)} s)`);
    }
    assert.ok(times.length >= 150, `read ${times.length} video packets across both publishers`);
    assert.equal(feed?.stats.publishers, 2);
  });

  test('refusals: unknown feed, busy feed, publish secret, ACL — each with an onStatus error and a log line', async (t) => {
    const lines: LogLine[] = [];
    const server = await startTestServer(
      t,
      '<Feed x.ffm>\n</Feed>\n<Feed s.ffm>\nPublishSecret hunter2\n</Feed>\n<Feed denied.ffm>\nACL deny 127.0.0.1\n</Feed>\n',
    );
    const rtmp = await startRtmp(t, server, { lines });
    const tcUrl = `rtmp://127.0.0.1:${rtmp.port}/live`;
    const attempt = async (
      name: string,
      mode: 'publish' | 'play' = 'publish',
    ): Promise<{ code: string; text: string; client: RtmpTestClient }> => {
      const client = await RtmpTestClient.open('127.0.0.1', rtmp.port, { digest: false });
      t.after(() => client.close());
      await client.connect('live', tcUrl);
      const status = mode === 'publish' ? (await client.publish(name)).status : await client.play(name);
      return { code: statusCode(status), text: statusDescription(status), client };
    };

    const unknown = await attempt('nope');
    assert.equal(unknown.code, 'NetStream.Publish.BadName');
    assert.match(unknown.text, /No feed named "nope"/);
    await unknown.client.closed;

    const noSecret = await attempt('s');
    assert.equal(noSecret.code, 'NetStream.Publish.Unauthorized');
    assert.match(noSecret.text, /secret/);
    assert.equal((await attempt('s?secret=wrong')).code, 'NetStream.Publish.Unauthorized');
    const withSecret = await attempt('s?secret=hunter2');
    assert.equal(withSecret.code, 'NetStream.Publish.Start');

    const first = await attempt('x');
    assert.equal(first.code, 'NetStream.Publish.Start');
    const busy = await attempt('x');
    assert.equal(busy.code, 'NetStream.Publish.BadName');
    assert.match(busy.text, /busy.*already published by rtmp/);

    assert.equal((await attempt('denied')).code, 'NetStream.Publish.Unauthorized');
    const deniedPlay = await attempt('denied', 'play');
    assert.equal(deniedPlay.code, 'NetStream.Play.Failed');
    assert.match(deniedPlay.text, /ACL/);

    const refusals = lines.filter((l) => l.msg === 'rtmp request refused').map((l) => String(l.fields['code']));
    assert.deepEqual(refusals, [
      'NetStream.Publish.BadName',
      'NetStream.Publish.Unauthorized',
      'NetStream.Publish.Unauthorized',
      'NetStream.Publish.BadName',
      'NetStream.Publish.Unauthorized',
      'NetStream.Play.Failed',
    ]);
  });

  test('malformed handshake, oversized message, unknown command: that connection is closed with a log line, others go on', async (t) => {
    const lines: LogLine[] = [];
    const server = await startTestServer(t, '<Feed x.ffm>\n</Feed>\n');
    const rtmp = await startRtmp(t, server, { lines });
    const player = await RtmpTestClient.open('127.0.0.1', rtmp.port);
    t.after(() => player.close());
    await player.connect('live', 'rtmp://127.0.0.1/live');

    // An HTTP request on the RTMP port.
    const http = connect(rtmp.port, '127.0.0.1');
    http.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + 'x'.repeat(1600));
    await new Promise((resolve) => http.once('close', resolve));

    // A message declaring 16 MB (the limit is 8 MiB).
    const big = await RtmpTestClient.open('127.0.0.1', rtmp.port, { digest: false });
    big.raw(Buffer.from([0x03, 0, 0, 0, 0xff, 0xff, 0xf0, 0x14, 0, 0, 0, 0]));
    await big.closed;

    // An unknown command gets _error, then the connection closes.
    const odd = await RtmpTestClient.open('127.0.0.1', rtmp.port);
    await odd.connect('live', 'rtmp://127.0.0.1/live');
    const answer = await odd.call('makeCoffee', null).catch((err: Error) => err);
    assert.ok(!(answer instanceof Error) && answer.name === '_error', 'unknown command answered with _error');
    await odd.closed;

    // A chunk stream that starts with a type 3 header.
    const bad = await RtmpTestClient.open('127.0.0.1', rtmp.port);
    bad.raw(Buffer.from([0xc5, 1, 2, 3]));
    await bad.closed;

    const closes = lines.filter((l) => l.msg === 'rtmp connection closed').map((l) => String(l.fields['reason']));
    assert.equal(closes.length, 4, closes.join('\n'));
    assert.match(closes[0] ?? '', /HTTP or MPEG-TS/);
    assert.match(closes[1] ?? '', /declares bytes: 16777200 exceeds the limit of 8388608/);
    assert.match(closes[2] ?? '', /unknown command "makeCoffee"/);
    assert.match(closes[3] ?? '', /starts with a type 3 header/);

    // The first connection is unaffected.
    const created = await player.call('createStream', null);
    assert.equal(created.name, '_result');
  });
});
