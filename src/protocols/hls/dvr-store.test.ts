// HLSDVRWindow with a FeedFile (issue 21): the older segments of the window drop their bytes from
// memory and are read back from the ring on request, with the same samples (times, durations,
// flags, bytes) as the segment held in memory had; a segment the ring overwrote is not served.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { tempDir } from '../../../test/helpers/feedfile-fixtures.js';
import { Feed } from '../../feed/feed.js';
import { FeedFileWriter } from '../../feedfile/writer.js';
import { parseBoxHeader, parseMoof } from '../../formats/fmp4/read.js';
import { shiftFrame } from '../../media/frame.js';
import { silentLogger } from '../../observability/logger.js';
import { RingSegmentStore } from './dvr-store.js';
import { DEFAULT_SEGMENTER_OPTIONS, Segmenter, type SegmenterOptions } from './segmenter.js';

const fixture = fixtureFrames('h264-aac.ts');
const OPTIONS: SegmenterOptions = {
  ...DEFAULT_SEGMENTER_OPTIONS,
  segmentTargetMs: 1000,
  partTargetMs: 500,
  windowSegments: 3,
  dvrWindowMs: 20_000,
};

interface Sample {
  decode: number;
  duration: number;
  cto: number;
  keyframe: boolean;
  data: Buffer;
}

/** Every sample of a run of moof+mdat fragments, per fMP4 track id. */
function samplesOf(buffers: readonly Buffer[]): Map<number, Sample[]> {
  const buf = Buffer.concat(buffers);
  const out = new Map<number, Sample[]>();
  for (let at = 0; at < buf.length;) {
    const h = parseBoxHeader(buf, at);
    assert.ok(h !== undefined, `a box at ${at}`);
    if (h.type === 'moof') {
      for (const traf of parseMoof(buf.subarray(at, at + h.size))) {
        const list = out.get(traf.trackId) ?? [];
        out.set(traf.trackId, list);
        let decode = traf.baseDecodeTime;
        let offset = at + traf.dataOffset;
        for (const s of traf.samples) {
          list.push({
            decode,
            duration: s.duration,
            cto: s.compositionOffset,
            keyframe: s.keyframe,
            data: buf.subarray(offset, offset + s.size),
          });
          decode += s.duration;
          offset += s.size;
        }
      }
    }
    at += h.size;
  }
  return out;
}

/** A feed with a ring of `ringBytes`, a DVR segmenter on memory only and one with the ring as its store. */
async function setUp(
  t: TestContext,
  ringBytes: number,
): Promise<{ writer: FeedFileWriter; memory: Segmenter; disk: Segmenter; publish: (loops: number) => Promise<void> }> {
  const feed = new Feed('f.ffm', 'f', { publisherTimeoutMs: 10_000, publisherGraceMs: 10_000 }, silentLogger);
  const writer = await FeedFileWriter.open(feed, { path: join(tempDir(t), 'f.ffm'), maxSizeBytes: ringBytes, log: silentLogger });
  const memory = new Segmenter(feed, OPTIONS, silentLogger);
  const disk = new Segmenter(feed, OPTIONS, silentLogger, { store: new RingSegmentStore(() => writer) });
  memory.start();
  disk.start();
  t.after(async () => {
    memory.dispose();
    disk.dispose();
    await writer.close();
  });
  const session = feed.attachPublisher({ protocol: 'test', remoteAddress: '127.0.0.1', startedAt: new Date() });
  session.setTracks(fixture.tracks);
  const first = Math.min(...fixture.frames.map((f) => f.dts90k));
  const startMs = Date.now() - 60_000;
  let loop = 0;
  const publish = async (loops: number): Promise<void> => {
    for (let i = 0; i < loops; i++, loop++) {
      for (const f of fixture.frames) {
        const shifted = shiftFrame(f, loop * 180_000);
        session.write(shifted, startMs + (shifted.dts90k - first) / 90);
      }
      await writer.flush(); // on disk before the next segments close (they evict the older ones)
    }
  };
  return { writer, memory, disk, publish };
}

test('HLSDVRWindow with a File: older segments leave memory and come back from the ring sample for sample', async (t) => {
  const { memory, disk, publish } = await setUp(t, 32 * 1024 * 1024);
  await publish(12); // 24 s of media, 1 s segments, 20 s window, 3 at the live edge
  const held = (s: Segmenter): number => s.segments.reduce((n, x) => n + x.parts.reduce((m, p) => m + p.data.length, 0), 0);
  const evicted = disk.segments.filter((s) => s.evicted);
  assert.ok(evicted.length >= 10, `${evicted.length} segments evicted`);
  assert.equal(
    disk.segments.filter((s) => s.complete && !s.evicted).length,
    OPTIONS.windowSegments,
    'the live edge stays in memory',
  );
  assert.deepEqual(
    disk.segments.map((s) => s.msn),
    memory.segments.map((s) => s.msn),
    'the same window is listed',
  );
  assert.ok(held(disk) * 3 < held(memory), `memory held: ${held(disk)} bytes with the ring, ${held(memory)} without`);
  for (const s of evicted) {
    assert.equal(s.parts.length, 0);
    const back = await disk.segmentBytes(s);
    assert.ok(back !== undefined, `segment ${s.msn} is read back`);
    const inMemory = memory.segment(s.msn);
    assert.ok(inMemory !== undefined);
    assert.deepEqual(samplesOf(back), samplesOf(inMemory.parts.map((p) => p.data)), `segment ${s.msn}: same samples`);
  }
});

test('HLSDVRWindow with a small File: the window holds what the ring holds, every segment listed is read back whole', async (t) => {
  const { writer, memory, disk, publish } = await setUp(t, 384 * 1024);
  await publish(12); // about 750 KB through a 384 KiB ring
  const range = writer.heldRange;
  const offset = writer.fileClockOffset90k;
  assert.ok(range !== undefined && offset !== undefined);
  const evicted = disk.segments.filter((x) => x.evicted);
  assert.ok(evicted.length >= 1, `${evicted.length} segments evicted`);
  for (const s of evicted) {
    assert.ok(s.startDts90k + offset >= range.oldestDts90k, `segment ${s.msn} starts within the ring`);
    const back = await disk.segmentBytes(s);
    assert.ok(back !== undefined, `segment ${s.msn} is read back`);
    const inMemory = memory.segment(s.msn);
    assert.ok(inMemory !== undefined);
    assert.deepEqual(samplesOf(back), samplesOf(inMemory.parts.map((p) => p.data)), `segment ${s.msn}: same samples`);
  }
  // What the ring overwrote left the window: it is shorter than the memory-only one.
  assert.ok(disk.segments.length < memory.segments.length, `${disk.segments.length} listed, ${memory.segments.length} in memory`);
  // And a segment it overwrote is not served (404), never served wrong.
  const lost = memory.segments.find((s) => s.msn < (disk.segments[0]?.msn ?? 0) && s.startDts90k + offset < range.oldestDts90k);
  assert.ok(lost !== undefined);
  assert.equal(await disk.segmentBytes({ ...lost, parts: [], evicted: true }), undefined);
});
