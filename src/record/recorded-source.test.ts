// Recordings read back as frames (issue 21): files written by the Recorder from a real H.264 + AAC
// capture (test/fixtures/h264-aac.ts, ffmpeg's), in fMP4 and in TS, come back frame for frame
// (same bytes, same timing, same tracks) through RecordedRangeSource, across files; a range starts
// on the keyframe at or before its start and every track stops at its end; the parsers of the
// sample entries, the TS join index and the fragments only ever throw typed errors on mangled bytes.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { fixtureFrames } from '../../test/helpers/fixture-frames.js';
import { tempDir } from '../../test/helpers/feedfile-fixtures.js';
import { FeedcastError } from '../errors.js';
import { Feed } from '../feed/feed.js';
import { encodeInitSegment, fmp4TrackOf, type Fmp4Track } from '../formats/fmp4/init-segment.js';
import { parseBoxHeader, parseMoov } from '../formats/fmp4/read.js';
import { parseSampleEntry } from '../formats/fmp4/sample-entry.js';
import { TsJoinIndexer } from '../formats/mpegts/ts-join-index.js';
import { shiftFrame, type Frame } from '../media/frame.js';
import { sameTrackConfig, type Track } from '../media/track.js';
import { silentLogger } from '../observability/logger.js';
import { RecordedRangeSource } from './recorded-source.js';
import { Recorder, type RecorderFile } from './recorder.js';
import { scanRecordings, type RecordingEntry } from './recording-index.js';
import { TsIndexCache } from './ts-recording.js';

const fixture = fixtureFrames('h264-aac.ts');
const LOOPS = 5; // 10 s of media

/** Records LOOPS loops of the fixture with `format`, in files of 2 s; returns the files and what was published. */
async function record(
  t: TestContext,
  format: 'fmp4' | 'ts',
): Promise<{ entries: RecordingEntry[]; published: Frame[]; tracks: readonly Track[] }> {
  const dir = tempDir(t);
  const feed = new Feed('cam.ffm', 'cam', { publisherTimeoutMs: 10_000, publisherGraceMs: 10_000 }, silentLogger);
  const pattern = `${dir}/%feed/%H%M%S.${format === 'ts' ? 'ts' : 'mp4'}`;
  const files: RecorderFile[] = [];
  const recorder = new Recorder(
    feed,
    { pathPattern: pattern, segmentSeconds: 2, format, retentionSeconds: undefined, retentionBytes: undefined },
    silentLogger,
    { onFileStarted: (f) => files.push(f), onFileFinished: () => undefined },
  );
  const session = feed.attachPublisher({ protocol: 'test', remoteAddress: '127.0.0.1', startedAt: new Date() });
  session.setTracks(fixture.tracks);
  const published: Frame[] = [];
  const first = Math.min(...fixture.frames.map((f) => f.dts90k));
  // The recorder dates frames by the wall clock when a file starts: the clock moves with the media, as live.
  const startMs = Date.now();
  t.mock.timers.enable({ apis: ['Date'], now: startMs });
  let keySeen = false;
  const seen = feed.on('frame', (f) => {
    // What the recorder takes: from the first video keyframe (fMP4: nothing older than it).
    keySeen ||= f.keyframe && feed.tracks.find((x) => x.id === f.trackId)?.kind === 'video';
    if (keySeen && (format === 'ts' || f.dts90k >= (published[0]?.dts90k ?? f.dts90k))) published.push(f);
  });
  for (let i = 0; i < LOOPS; i++) {
    for (const f of fixture.frames) {
      const shifted = shiftFrame(f, i * 180_000);
      const at = startMs + (shifted.dts90k - first) / 90;
      t.mock.timers.setTime(Math.max(Date.now(), Math.floor(at)));
      session.write(shifted, at);
    }
  }
  seen();
  t.mock.timers.reset();
  const tracks = feed.tracks;
  await recorder.close();
  // As the server knows them while it runs (a rescan dates TS files by their name, to the second).
  const entries: RecordingEntry[] = files.map((f) => ({
    path: f.file.path,
    format: f.format,
    startWallMs: f.file.startWallMs,
    endWallMs: f.file.writtenEndWallMs,
    bytes: f.file.bytesWritten,
    live: undefined,
  }));
  assert.ok(entries.length >= 3, `${entries.length} files`);
  assert.equal((await scanRecordings(pattern, 'cam', silentLogger)).length, entries.length, 'the files are listed');
  return { entries, published, tracks };
}

async function readAll(source: RecordedRangeSource): Promise<{ tracks: readonly Track[]; frames: Frame[] }> {
  let tracks: readonly Track[] = [];
  const frames: Frame[] = [];
  for (let item = await source.next(); item !== undefined; item = await source.next()) {
    if (item.kind === 'tracks') tracks = item.tracks;
    else frames.push(item.frame);
  }
  return { tracks, frames };
}

function byTrack(frames: readonly Frame[], id: number): Frame[] {
  return frames.filter((f) => f.trackId === id);
}

describe('recordings read back as frames', () => {
  for (const format of ['fmp4', 'ts'] as const) {
    test(`${format}: every recorded frame comes back with its bytes, timing and tracks, across files`, async (t) => {
      const { entries, published, tracks } = await record(t, format);
      const media = { entries, tsIndexes: new TsIndexCache() };
      const from = entries[0]!.startWallMs;
      const opened = await RecordedRangeSource.open(media, from - 60_000, { endWallMs: from + 60_000 });
      assert.equal(opened.kind, 'ok');
      if (opened.kind !== 'ok') return;
      const back = await readAll(opened.source);
      assert.equal(opened.source.ended?.reason, 'the end of the time range');
      for (const track of tracks) {
        const read = back.tracks.find((x) => x.id === track.id);
        assert.ok(read !== undefined && sameTrackConfig(read, track), `track ${track.id}: ${JSON.stringify(read)}`);
        const sent = byTrack(published, track.id);
        const got = byTrack(back.frames, track.id);
        // The recorder's last audio frames after the last video frame may end the last file a frame short.
        assert.ok(
          got.length >= sent.length - 2 && got.length <= sent.length,
          `track ${track.id}: ${got.length} of ${sent.length} frames`,
        );
        got.forEach((f, i) => {
          const s = sent[i]!;
          // TS carries parameter sets in-band before keyframes: the demuxed keyframe may hold them too.
          const same = f.data.equals(s.data) || (format === 'ts' && f.keyframe && f.data.includes(s.data));
          assert.ok(same, `track ${track.id} frame ${i}: same bytes (${f.data.length} vs ${s.data.length})`);
          assert.equal(f.keyframe, s.keyframe || track.kind === 'audio', `track ${track.id} frame ${i}: keyframe flag`);
          const step = f.dts90k - got[0]!.dts90k - (s.dts90k - sent[0]!.dts90k);
          assert.ok(Math.abs(step) <= 2, `track ${track.id} frame ${i}: timing off by ${step} ticks`);
          assert.ok(Math.abs(f.pts90k - f.dts90k - (s.pts90k - s.dts90k)) <= 2, `track ${track.id} frame ${i}: pts - dts`);
        });
      }
    });

    test(`${format}: a range starts on the keyframe at or before its start and every track stops at its end`, async (t) => {
      const { entries, tracks } = await record(t, format);
      const media = { entries, tsIndexes: new TsIndexCache() };
      const first = entries[0]!.startWallMs;
      const startMs = first + 4500;
      const endMs = first + 7300;
      const opened = await RecordedRangeSource.open(media, startMs, { endWallMs: endMs });
      assert.equal(opened.kind, 'ok');
      if (opened.kind !== 'ok') return;
      assert.ok(
        opened.startWallMs <= startMs && opened.startWallMs > startMs - 2100,
        `starts ${startMs - opened.startWallMs} ms before`,
      );
      const back = await readAll(opened.source);
      const video = tracks.find((x) => x.kind === 'video')!;
      const v = byTrack(back.frames, video.id);
      assert.ok(v[0]!.keyframe, 'the first video frame is a keyframe');
      const lastEndMs = opened.startWallMs + (v[v.length - 1]!.dts90k - v[0]!.dts90k) / 90;
      assert.ok(lastEndMs < endMs && lastEndMs >= endMs - 80, `the last video frame is ${endMs - lastEndMs} ms before the end`);
      for (const track of tracks) {
        const own = byTrack(back.frames, track.id);
        assert.ok(own.length > 0);
        for (let i = 1; i < own.length; i++) assert.ok(own[i]!.dts90k > own[i - 1]!.dts90k, 'DTS only grows');
      }
      const none = await RecordedRangeSource.open(media, first - 60_000, { endWallMs: first - 30_000 });
      assert.equal(none.kind, 'none');
    });
  }

  test('the sample entries of recorded tracks give the tracks back', () => {
    const fmp4 = fixture.tracks.map(fmp4TrackOf).filter((x): x is Fmp4Track => x !== undefined);
    const init = encodeInitSegment(fmp4);
    const moov = parseMoov(init.subarray(parseBoxHeader(init)!.size));
    for (const m of moov) {
      const back = parseSampleEntry(m.stsd, m.trackId - 1);
      const original = fixture.tracks.find((x) => x.id === m.trackId - 1)!;
      assert.ok(back !== undefined && sameTrackConfig(back, original), `${JSON.stringify(back)} vs ${JSON.stringify(original)}`);
    }
  });

  test('fuzz: mangled sample entries, TS join indexes and fMP4 recordings give typed errors, never crashes', async (t) => {
    const fmp4 = fixture.tracks.map(fmp4TrackOf).filter((x): x is Fmp4Track => x !== undefined);
    const init = encodeInitSegment(fmp4);
    const stsds = parseMoov(init.subarray(parseBoxHeader(init)!.size)).map((m) => m.stsd);
    const mangle = fc.tuple(fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat());
    fc.assert(
      fc.property(mangle, ([which, edits, cut]) => {
        const buf = Buffer.from(stsds[which % stsds.length]!);
        for (const [at, v] of edits) buf[at % buf.length] = v;
        const input = buf.subarray(0, Math.max(8, buf.length - (cut % 16)));
        try {
          parseSampleEntry(input, 0);
        } catch (err) {
          assert.ok(err instanceof FeedcastError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(), (bytes, split) => {
        const ix = new TsJoinIndexer();
        try {
          const b = Buffer.from(bytes);
          ix.push(b.subarray(0, split % (b.length + 1)));
          ix.push(b.subarray(split % (b.length + 1)));
        } catch (err) {
          assert.ok(err instanceof FeedcastError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
    // Whole recordings with bytes changed: read back to the end or stopped by a typed error.
    for (const format of ['fmp4', 'ts'] as const) {
      const { entries } = await record(t, format);
      const original = readFileSync(entries[1]!.path);
      const dir = tempDir(t);
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
          async (edits) => {
            const buf = Buffer.from(original);
            for (const [at, v] of edits) buf[at % buf.length] = v;
            const path = join(dir, `mangled.${format === 'ts' ? 'ts' : 'mp4'}`);
            writeFileSync(path, buf);
            const entry: RecordingEntry = { ...entries[1]!, path };
            try {
              const opened = await RecordedRangeSource.open({ entries: [entry], tsIndexes: new TsIndexCache() }, 0, {
                endWallMs: entry.endWallMs + 60_000,
              });
              if (opened.kind === 'ok') await readAll(opened.source);
            } catch (err) {
              assert.ok(err instanceof FeedcastError, `${format}: ${String(err)}`);
            }
          },
        ),
        { numRuns: 150 },
      );
    }
  });
});
