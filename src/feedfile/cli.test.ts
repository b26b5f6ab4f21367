// `feedcast feedfile dump|export`: real H.264 + AAC (the h264-aac.ts fixture, looped) recorded
// into a feed file; dump describes it; export writes a range that ffprobe accepts and decodes.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Feed } from '../feed/feed.js';
import { TsDemuxer } from '../formats/mpegts/ts-demuxer.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import { silentLogger } from '../observability/logger.js';
import { tempDir } from '../../test/helpers/feedfile-fixtures.js';
import { runFeedfileCommand } from './cli.js';
import { FeedFileWriter } from './writer.js';

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/h264-aac.ts', import.meta.url));
const HAVE_FFPROBE = spawnSync('ffprobe', ['-version']).status === 0;
const BASE_WALL = Date.UTC(2024, 4, 1, 12, 0, 0);

/** Records the 2 s fixture 5 times over (10 s) into a feed file, wall clock from BASE_WALL. */
async function record(path: string): Promise<void> {
  let tracks: readonly Track[] = [];
  const frames: Frame[] = [];
  const demuxer = new TsDemuxer({ onTracks: (t) => (tracks = t), onFrame: (f) => frames.push(f) });
  demuxer.push(readFileSync(FIXTURE));
  demuxer.end();
  const feed = new Feed('f.ffm', 'f', { publisherTimeoutMs: 60_000, publisherGraceMs: 60_000 }, silentLogger);
  const writer = await FeedFileWriter.open(feed, { path, maxSizeBytes: 8 * 1024 * 1024, log: silentLogger });
  const session = feed.attachPublisher({ protocol: 'test', remoteAddress: '-', startedAt: new Date() }, BASE_WALL);
  session.setTracks(tracks);
  const first = frames[0]!.dts90k;
  const span = 2 * 90_000;
  for (let loop = 0; loop < 5; loop++) {
    for (const f of frames) {
      const dts = f.dts90k - first + loop * span;
      session.write({ ...f, dts90k: dts, pts90k: f.pts90k - first + loop * span }, BASE_WALL + Math.round(dts / 90));
    }
  }
  await writer.close();
}

function capture(): { io: { out: (t: string) => void; err: (t: string) => void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (t) => (out += t), err: (t) => (err += t) }, out: () => out, err: () => err };
}

test('dump prints the header, the time range and block statistics', async (t) => {
  const path = join(tempDir(t), 'rec.ffm');
  await record(path);
  const c = capture();
  assert.equal(await runFeedfileCommand(['dump', path], c.io), 0, c.err());
  const text = c.out();
  assert.match(text, /Feedcast feed file, version 1/);
  assert.match(text, /tracks {6}0:h264 320x240, 1:aac 48000 Hz 1 ch/);
  assert.match(text, /time range {2}2024-05-01T12:00:00\.000Z \.\. 2024-05-01T12:00:09\.\d+Z \(9\.\d s/);
  assert.match(text, /block stats \d+ valid, 0 damaged or missing, \d+ with a join point/);
});

test(
  'export writes the asked range as MPEG-TS that ffprobe accepts',
  { skip: HAVE_FFPROBE ? false : 'ffprobe not installed' },
  async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'rec.ffm');
    await record(path);
    const out = join(dir, 'out.ts');
    const c = capture();
    const code = await runFeedfileCommand(
      ['export', path, '--from', '2024-05-01T12:00:03Z', '--to', '20240501 120006Z', out],
      c.io,
    );
    assert.equal(code, 0, c.err());
    assert.match(c.out(), /exported \d+ frames .* from 2024-05-01T12:00:03\.000Z/);
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_streams', '-show_packets', '-of', 'json', out], {
      encoding: 'utf8',
    });
    assert.equal(probe.status, 0, probe.stderr);
    assert.equal(probe.stderr, '');
    const parsed = JSON.parse(probe.stdout) as {
      streams: { codec_name: string }[];
      packets: { codec_type: string; pts_time: string; flags: string }[];
    };
    assert.deepEqual(parsed.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
    const video = parsed.packets.filter((p) => p.codec_type === 'video');
    assert.ok(video[0]?.flags.startsWith('K'), 'starts on a keyframe');
    const first = Number(video[0]?.pts_time);
    const last = Number(video.at(-1)?.pts_time);
    assert.ok(first >= 2.9 && first <= 3.2, `first video pts ${first} (the keyframe at 3 s, feed clock)`);
    assert.ok(last >= 5.8 && last <= 6.2, `last video pts ${last}`);
    assert.ok(video.length >= 70 && video.length <= 80, `${video.length} video packets for 3 s`);

    const bad = capture();
    assert.equal(await runFeedfileCommand(['export', path, '--from', '2020-01-01T00:00:00Z', out], bad.io), 1);
    assert.match(bad.err(), /outside what .* holds \(2024-05-01T12:00:00\.000Z \.\. /);
    assert.equal(await runFeedfileCommand(['export', path], capture().io), 2);
  },
);
