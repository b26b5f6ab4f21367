// Publisher faults over HTTP push: a publisher that goes silent is replaced, and timestamps
// that wrap (33-bit MPEG-TS) stay continuous in every output.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { postBytes, startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

describe('publisher faults', { skip }, () => {
  test('a publisher gone silent (dead connection) is replaced at once by a new one', async (t) => {
    const server = await startTestServer(t, 'PublisherTimeout 1\n<Feed feed1.ffm>\n</Feed>\n');
    const feed = server.ctx.feeds.get('feed1');
    // A publisher that sends a request head and one TS packet, then nothing: like a network blip.
    const dead = connect(server.httpPort, '127.0.0.1');
    t.after(() => dead.destroy());
    dead.write(
      'POST /feed1.ffm HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nbc\r\n' + 'G'.padEnd(188, '\xff') + '\r\n',
    );
    await waitFor('the first publisher', () => feed?.publisher !== undefined);
    const first = feed?.publisher;
    const silentSince = Date.now();
    // A newcomer within PublisherTimeout is refused (409); after it, it takes over.
    await waitFor('PublisherTimeout to pass', () => Date.now() - silentSince > 1200);

    const pub = publish(server.url('/feed1.ffm'), { seconds: 20 });
    t.after(() => pub.stop());
    await waitFor('the new publisher to take over', () => feed?.publisher !== undefined && feed.publisher !== first, 10_000);
    const probe = await probePackets(server.url('/feed1.flv'), 1);
    assert.ok(probe.packets.length > 10, 'the new publisher is being served');
    assert.equal(feed?.stats.publishers, 2);
  });

  test('MPEG-TS timestamps crossing 2^33 come out continuous', async (t) => {
    const server = await startTestServer(t, 'DynamicFeeds on\n');
    const bytes = await readFile(new URL('../fixtures/h264-aac-wrap.ts', import.meta.url));
    // Send the capture while a reader listens, so it sees every frame across the wrap.
    await postBytes(server.url('/warm'), bytes.subarray(0, 188 * 50));
    const feed = server.ctx.feeds.get('warm');
    assert.ok(feed !== undefined);
    const frames: number[] = [];
    feed.on('frame', (f) => {
      if (f.trackId === 0) frames.push(f.dts90k);
    });
    const { status } = await postBytes(server.url('/warm'), bytes);
    assert.equal(status, 204);
    assert.ok(frames.length > 25, `${frames.length} video frames`);
    for (let i = 1; i < frames.length; i++) {
      const step = (frames[i] as number) - (frames[i - 1] as number);
      assert.ok(step > 0 && step < 90_000, `frame ${i}: step ${step} ticks`);
    }
    assert.equal(feed.clockRepairs.jumps, 0, 'the wrap is not mistaken for a jump');
  });

  test('the status page lists the feed, its codecs and the live connections, escaped', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n<Stream a&b<i>.flv>\nFeed feed1.ffm\n</Stream>\n');
    const pub = publish(server.url('/feed1.ffm'), { seconds: 20 });
    t.after(() => pub.stop());
    await waitFor('tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
    const html = await (await fetch(server.url('/stat.html'))).text();
    assert.match(html, /Feed feed1/);
    assert.match(html, /<td>h264<\/td><td>320x240/);
    assert.match(html, /<td>aac<\/td><td>1 channel\(s\), 48000 Hz/);
    assert.match(html, /feed1\.ffm \(input\)/);
    assert.ok(!html.includes('<i>'), 'names are escaped');
    assert.match(html, /a&#38;b&#60;i&#62;\.flv/);
    const index = await (await fetch(server.url('/'))).text();
    assert.match(index, /feed1\.flv/);
  });
});
