// The FeedFile end to end: real ffmpeg publishes to a feed with a File; ffprobe reads the past
// (?start=-N, ?date=, ?buffer=) and must see the first frame at the time asked, then live with no
// gap; a server killed with SIGKILL mid-write restarts, recovers, and serves only intact blocks.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { get } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FeedFileCursor, FileBlockSource } from '../../src/feedfile/cursor.js';
import { RecordType } from '../../src/feedfile/format.js';
import { openFeedFile } from '../../src/feedfile/recovery.js';
import type { FeedFileStatus } from '../../src/feedfile/writer.js';
import { tempDir } from '../helpers/feedfile-fixtures.js';
import { writeFileSync } from 'node:fs';
import {
  decodeFrames,
  FFPROBE,
  probePackets,
  publish,
  run,
  skipWithoutFfmpeg,
  type ProbePacket,
} from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';
import { createLogger } from '../../src/observability/logger.js';

const skip = skipWithoutFfmpeg();

function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** Checks that video DTS advance by exactly one frame (25 fps): no gap, no duplicate. */
function assertContinuous(dts: number[], what: string): void {
  for (let i = 1; i < dts.length; i++) {
    const step = (dts[i] as number) - (dts[i - 1] as number);
    assert.ok(
      Math.abs(step - 0.04) < 0.0015,
      `${what}: DTS step ${step.toFixed(4)} s at packet ${i} (${dts[i - 1]} -> ${dts[i]})`,
    );
  }
}

describe('FeedFile with real ffmpeg', { skip }, () => {
  test('time-shift: ?start=-N starts at the keyframe at or before that time, on the feed clock, then joins live', async (t) => {
    const file = join(tempDir(t), 'feed1.ffm');
    const server = await startTestServer(t, `<Feed feed1.ffm>\nFile ${file}\nFileMaxSize 20M\n</Feed>\n`);
    const feed = server.ctx.feeds.get('feed1')!;
    const cfg = server.ctx.config.feeds.find((f) => f.key === 'feed1')!;
    const writer = server.ctx.feedFiles.of(feed)!; // opened by the server for the feed's File
    assert.equal(writer.status.path, cfg.file);
    // Where the feed clock is at each wall time: the newest video frame and when it arrived.
    let last = { dts: 0, wall: 0 };
    feed.on('frame', (f) => {
      if (f.trackId === feed.tracks.find((tr) => tr.kind === 'video')?.id)
        last = { dts: f.dts90k / 90_000, wall: feed.lastFrameAt ?? Date.now() };
    });
    const feedTimeAt = (wallMs: number): number => last.dts + (wallMs - last.wall) / 1000;
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('8 s in the feed file', () => writer.status.durationSeconds >= 8, 30_000);

    for (const [path, back] of [
      ['/feed1.ts?start=-5', 5],
      ['/feed1.flv?buffer=3', 3],
    ] as const) {
      const asked = feedTimeAt(Date.now()) - back;
      const probe = await probePackets(server.url(path), back + 3);
      const video = probe.packets.filter((p) => p.codec_type === 'video');
      assert.ok(video[0]?.flags.startsWith('K'), `${path}: starts on a keyframe`);
      const first = Number(video[0]?.pts_time);
      // A 1 s GOP: the keyframe at or before the time asked is less than ~1 s before it.
      assert.ok(first <= asked + 0.3 && first >= asked - 1.3, `${path}: first frame at ${first} s, asked ${asked.toFixed(3)} s`);
      const dts = video.map((p) => Number(p.dts_time));
      assertContinuous(dts, path);
      assert.ok((dts.at(-1) as number) - first >= back + 2, `${path}: read past the live edge (${dts.at(-1)})`);
      assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], path);
    }

    const date = new Date(Date.now() - 4000).toISOString();
    const byDate = await probePackets(server.url(`/feed1.ts?date=${date}`), 2);
    const firstByDate = Number(byDate.packets.find((p) => p.codec_type === 'video')?.pts_time);
    const askedByDate = feedTimeAt(Date.parse(date));
    assert.ok(firstByDate <= askedByDate + 0.3 && firstByDate >= askedByDate - 1.3, `?date=: ${firstByDate} vs ${askedByDate}`);

    const decoded = await decodeFrames(server.url('/feed1.ts?start=-6'), 3);
    assert.equal(decoded.errors, '', 'the past decodes without errors');
    assert.ok(decoded.videoFrames >= 70, `${decoded.videoFrames} frames decoded`);

    const tooOld = await fetchText(server.url('/feed1.ts?start=-5m'));
    assert.equal(tooOld.status, 416);
    assert.match(tooOld.body, /outside what the feed file of feed1 holds: from 20\d\d-.*Z to 20\d\d-.*Z \(\d+ s\)/);
    const bad = await fetchText(server.url('/feed1.ts?date=yesterday-ish'));
    assert.equal(bad.status, 400);
    assert.match(bad.body, /is not a date/);
    const status = writer.status;
    assert.ok(status.writeBitsPerSecond > 100_000, `write rate ${status.writeBitsPerSecond}`);
    assert.equal(status.framesDropped, 0);
  });

  test('a time-shifted reader that stops reading gets the live policy: skipped to a keyframe, then closed as too slow; another keeps receiving', async (t) => {
    const file = join(tempDir(t), 'feed1.ffm');
    const logged: string[] = [];
    const log = createLogger({ level: 'warn', format: 'json', write: (line) => logged.push(line) });
    const server = await startTestServer(
      t,
      `ReaderMaxQueue 256K\nReaderMaxLag 2\n<Feed feed1.ffm>\nFile ${file}\nFileMaxSize 20M\n</Feed>\n`,
      { log },
    );
    const feed = server.ctx.feeds.get('feed1')!;
    const writer = server.ctx.feedFiles.of(feed)!;
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 90, bitrateK: 2000, size: '640x360' });
    t.after(() => pub.stop());
    await waitFor('3 s in the feed file', () => writer.status.durationSeconds >= 3, 30_000);

    // The slow reader reads the past and past the live edge (1 MB: the 2 s from the file, then
    // live), then stops reading: the kernel buffers fill, and it falls behind live.
    const before = new Set(server.ctx.connections.list());
    const slow = connect(server.httpPort, '127.0.0.1');
    t.after(() => slow.destroy());
    slow.on('error', () => undefined);
    await once(slow, 'connect');
    slow.write('GET /feed1.ts?start=-2 HTTP/1.1\r\nHost: x\r\n\r\n');
    let received = 0;
    const paused = new Promise<void>((resolve) => {
      const onData = (d: Buffer): void => {
        received += d.length;
        if (received < 1_000_000) return;
        slow.off('data', onData);
        slow.pause();
        resolve();
      };
      slow.on('data', onData);
    });
    await paused;
    const slowConn = server.ctx.connections.list().find((c) => !before.has(c) && c.role === 'reader');
    assert.ok(slowConn !== undefined, 'the slow reader is a connection');

    const probing = probePackets(server.url('/feed1.ts?start=-2'), 8, 60_000);
    await waitFor('the slow reader to be closed', () => !server.ctx.connections.list().includes(slowConn), 60_000);
    assert.ok((slowConn.counters['skips'] ?? 0) > 0, `skipped to a keyframe first (${slowConn.counters['skips']} skips)`);
    assert.ok((slowConn.counters['liveFrames'] ?? 0) > 0, 'it had joined live');
    assert.ok(
      logged.some((l) => l.includes('reader closed') && l.includes('FC_ERR_CLIENT_TOO_SLOW')),
      'logged as too slow',
    );
    const healthy = await probing;
    const video = healthy.packets.filter((p) => p.codec_type === 'video');
    assert.ok(video.length >= 150, `the healthy time-shifted reader got ${video.length} video packets in 8 s of stream`);
  });

  test('a time range: ?start=-8&end=-3 starts within a GOP before start, ends within a frame before end, and the response ends by itself', async (t) => {
    const dir = tempDir(t);
    const server = await startTestServer(t, `<Feed feed1.ffm>\nFile ${join(dir, 'feed1.ffm')}\nFileMaxSize 20M\n</Feed>\n`);
    const writer = server.ctx.feedFiles.of(server.ctx.feeds.get('feed1')!)!;
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('10 s in the feed file', () => writer.status.durationSeconds >= 10, 40_000);

    // One read for the times the server resolved (X-Feedcast-Start: the join point; X-Feedcast-End)
    // and the body, which must end with the last chunk; ffprobe reads the body it received.
    const got = await new Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer; complete: boolean }>(
      (resolve, reject) => {
        get(server.url('/feed1.ts?start=-8&end=-3'), (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(parts), complete: res.complete }));
          res.on('error', reject);
        }).on('error', reject);
      },
    );
    assert.equal(got.headers['transfer-encoding'], 'chunked');
    assert.ok(got.complete, 'the body ended with the last chunk');
    const endMs = Date.parse(String(got.headers['x-feedcast-end']));
    const joinMs = Date.parse(String(got.headers['x-feedcast-start']));
    const askedStartMs = endMs - 5000; // start=-8 and end=-3 from the same now
    assert.ok(
      joinMs <= askedStartMs && askedStartMs - joinMs <= 1040,
      `join point ${askedStartMs - joinMs} ms before start (GOP 1 s)`,
    );
    const body = join(dir, 'range.ts');
    writeFileSync(body, got.body);
    const { code, stdout, stderr } = await run(FFPROBE, ['-v', 'error', '-show_packets', '-of', 'json', body], 30_000);
    assert.equal(code, 0, stderr);
    const video = (JSON.parse(stdout) as { packets: ProbePacket[] }).packets.filter((p) => p.codec_type === 'video');
    assert.ok(video[0]?.flags.startsWith('K'), 'starts on a keyframe');
    const dts = video.map((p) => Number(p.dts_time));
    assertContinuous(dts, 'the range');
    // A frame's wall time: the join point's plus its DTS since the first frame.
    const lastMs = joinMs + ((dts.at(-1) as number) - (dts[0] as number)) * 1000;
    assert.ok(lastMs < endMs && lastMs >= endMs - 41, `last frame ${endMs - lastMs} ms before end`);
    t.diagnostic(
      `range: join ${askedStartMs - joinMs} ms before start, last frame ${(endMs - lastMs).toFixed(1)} ms before end, ${video.length} video packets`,
    );

    // ffprobe on the URL, without -read_intervals, exits by itself: the .ts and the .flv both end.
    for (const path of ['/feed1.ts?start=-8&end=-3', '/feed1.flv?start=-8&end=-3']) {
      const probe = await run(FFPROBE, ['-v', 'error', '-show_packets', '-of', 'json', server.url(path)], 30_000);
      assert.equal(probe.code, 0, `${path}: ffprobe ended by itself (${probe.stderr})`);
      const packets = (JSON.parse(probe.stdout) as { packets: ProbePacket[] }).packets.filter((p) => p.codec_type === 'video');
      const span = Number(packets.at(-1)?.dts_time) - Number(packets[0]?.dts_time);
      assert.ok(span >= 4.9 && span < 6.1, `${path}: ${packets.length} video packets over ${span.toFixed(3)} s`);
    }

    for (const [query, message] of [
      ['start=-3&end=-8', /end=-8 \(20.*Z\) must come after start=-3 \(20.*Z\)/],
      ['start=-3&end=-3', /end=-3 \(20.*Z\) must come after start=-3/],
      ['end=-3', /end=-3 needs a start in the past/],
      ['start=-8&end=soon', /"soon" is not a time/],
    ] as const) {
      const r = await fetchText(server.url(`/feed1.ts?${query}`));
      assert.equal(r.status, 400, query);
      assert.match(r.body, message, query);
    }
  });

  test('crash: SIGKILL mid-write, restart recovers, every block served passes its checksum', async (t) => {
    const file = join(tempDir(t), 'crash.ffm');
    const first = await startChild(t, file);
    const pub = publish(`http://127.0.0.1:${first.port}/feed1.ffm`, {
      codecs: 'h264-aac',
      seconds: 60,
      bitrateK: 3000,
      size: '640x360',
    });
    t.after(() => pub.stop());
    let before: FeedFileStatus | undefined;
    await waitFor(
      '4 s recorded under load',
      async () => {
        before = JSON.parse((await fetchText(`http://127.0.0.1:${first.port}/feedfile-status`)).body) as FeedFileStatus;
        // durationSeconds is wall time: on a busy machine the encoder runs slower than real time and
        // 4 s of wall time held 7 video frames once. 400 frames (25 fps video + AAC) are ~5.5 s of media.
        return before.durationSeconds >= 4 && before.framesWritten >= 400;
      },
      30_000,
    );
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    await pub.stop();

    const second = await startChild(t, file);
    const recovery = second.recovery as FeedFileStatus['recovery'];
    assert.equal(recovery.created, false);
    assert.ok(recovery.blocksScanned < 5000, `bounded scan: ${recovery.blocksScanned} blocks`);

    // Everything reported written before the kill is there, and every block read checks out.
    const opened = await openFeedFile(file, { mode: 'read' });
    try {
      assert.ok(opened.newest !== undefined);
      assert.ok(
        opened.nextSeq >= (before?.blocksWritten ?? 0),
        `recovered up to seq ${opened.nextSeq}, ${before?.blocksWritten} were written`,
      );
      const cursor = new FeedFileCursor(
        new FileBlockSource(opened.fh, opened.geometry, opened.header.fileId, {
          oldestSeq: opened.oldestSeq,
          newestSeq: opened.newest.seq,
        }),
      );
      let frames = 0;
      for (let r = await cursor.next(); r !== undefined; r = await cursor.next()) if (r.type === RecordType.frame) frames++;
      assert.ok(frames > 100, `${frames} frames read back`);
      assert.equal(cursor.stats.badBlocks, 0, 'no damaged block after kill -9');
    } finally {
      await opened.fh.close();
    }

    // The restarted server appends after the old data and serves the past across the restart.
    const pub2 = publish(`http://127.0.0.1:${second.port}/feed1.ffm`, { codecs: 'h264-aac', seconds: 30 });
    t.after(() => pub2.stop());
    let after: FeedFileStatus | undefined;
    await waitFor(
      'new frames recorded after the restart',
      async () => {
        after = JSON.parse((await fetchText(`http://127.0.0.1:${second.port}/feedfile-status`)).body) as FeedFileStatus;
        return after.framesWritten > 100;
      },
      30_000,
    );
    const old = new Date((before?.oldestWallMs ?? 0) + 500).toISOString();
    const probe = await probePackets(`http://127.0.0.1:${second.port}/feed1.ts?date=${old}`, 2);
    const video = probe.packets.filter((p) => p.codec_type === 'video');
    assert.ok(
      video.length >= 40 && video[0]?.flags.startsWith('K'),
      `the recording before the crash is served (${video.length} packets)`,
    );
    assertContinuous(
      video.map((p) => Number(p.dts_time)),
      'recording before the crash',
    );
    await pub2.stop();
  });
});

interface Child {
  child: ChildProcess;
  port: number;
  recovery: unknown;
}

const HELPER = fileURLToPath(new URL('../helpers/feedfile-server.ts', import.meta.url));

async function startChild(t: TestContext, file: string): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', HELPER, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(() => {
      throw new Error('the feed file server exited before listening');
    }),
  ])) as [string];
  const parsed = JSON.parse(line) as { port: number; recovery: unknown };
  return { child, port: parsed.port, recovery: parsed.recovery };
}
