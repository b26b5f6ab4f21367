// fMP4 boxes: the box tree and sizes, trun offsets into mdat, RFC 6381 codec strings, and real
// ffprobe reading init + fragments written from the H.264/H.265 + AAC fixtures.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { av1FixtureFrames, fixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { FFPROBE, run, skipWithoutFfmpeg } from '../../../test/helpers/media-tools.js';
import type { Frame } from '../../media/frame.js';
import { from90k } from '../../media/timebase.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { codecString, hevcCodecString } from './codec-string.js';
import { encodeFragment, NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS, type TrackRun } from './fragment.js';
import { encodeInitSegment, fmp4TrackOf, type Fmp4Track } from './init-segment.js';

interface ParsedBox {
  type: string;
  start: number;
  size: number;
  children: ParsedBox[];
}

const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'dinf', 'stbl', 'mvex', 'moof', 'traf']);

/** A test-side box walker: every size must add up exactly, or ByteReader throws. */
function parseBoxes(buf: Buffer, start = 0, end = buf.length): ParsedBox[] {
  const r = new ByteReader(buf, 'mp4', start, end);
  const out: ParsedBox[] = [];
  while (r.remaining > 0) {
    const at = r.pos;
    const size = r.u32();
    const type = r.bytes(4).toString('latin1');
    assert.ok(size >= 8 && at + size <= end, `box ${type} at ${at} has size ${size}`);
    const childStart = CONTAINERS.has(type) ? at + 8 : type === 'stsd' || type === 'dref' ? at + 16 : undefined;
    const children = childStart !== undefined ? parseBoxes(buf, childStart, at + size) : [];
    out.push({ type, start: at, size, children });
    r.skip(size - 8);
  }
  return out;
}

function shape(boxes: ParsedBox[]): unknown[] {
  return boxes.map((b) => (b.children.length > 0 ? { [b.type]: shape(b.children) } : b.type));
}

/** Frames of a fixture turned into one fragment per second, as the HLS segmenter does. */
function toRuns(tracks: Fmp4Track[], frames: Frame[], fromDts: number, toDts: number): TrackRun[] {
  return tracks.map((t) => {
    const own = frames.filter((f) => f.trackId === t.feedTrackId);
    const samples = [];
    let base: number | undefined;
    for (let i = 0; i < own.length; i++) {
      const f = own[i]!;
      if (f.dts90k < fromDts || f.dts90k >= toDts) continue;
      const next = own[i + 1]?.dts90k ?? f.dts90k + (t.kind === 'audio' ? 1920 : 3600);
      base ??= from90k(f.dts90k, t.timescale);
      samples.push({
        duration: from90k(next, t.timescale) - from90k(f.dts90k, t.timescale),
        compositionOffset: from90k(f.pts90k, t.timescale) - from90k(f.dts90k, t.timescale),
        keyframe: t.kind === 'audio' || f.keyframe,
        data: f.data,
      });
    }
    return { trackId: t.trackId, baseDecodeTime: base ?? 0, samples };
  });
}

function fixtureAsFmp4(name: string): { tracks: Fmp4Track[]; file: Buffer; videoFrames: number; audioFrames: number } {
  const { tracks, frames } = fixtureFrames(name);
  const fmp4 = tracks.map(fmp4TrackOf).filter((t): t is Fmp4Track => t !== undefined);
  const first = Math.min(...frames.map((f) => f.dts90k));
  const last = Math.max(...frames.map((f) => f.dts90k));
  const pieces = [encodeInitSegment(fmp4)];
  let seq = 1;
  for (let at = first; at <= last; at += 45_000) pieces.push(encodeFragment(seq++, toRuns(fmp4, frames, at, at + 45_000)));
  const kindOf = (f: Frame) => tracks.find((t) => t.id === f.trackId)?.kind;
  return {
    tracks: fmp4,
    file: Buffer.concat(pieces),
    videoFrames: frames.filter((f) => kindOf(f) === 'video').length,
    audioFrames: frames.filter((f) => kindOf(f) === 'audio').length,
  };
}

describe('fMP4 init segment and fragments', () => {
  test('the init segment has the box tree of a fragmented MP4 (ftyp, moov with trak per track and mvex/trex)', () => {
    const { tracks } = fixtureAsFmp4('h264-aac.ts');
    const init = encodeInitSegment(tracks);
    assert.deepEqual(shape(parseBoxes(init)), [
      'ftyp',
      {
        moov: [
          'mvhd',
          {
            trak: [
              'tkhd',
              {
                mdia: [
                  'mdhd',
                  'hdlr',
                  {
                    minf: [
                      'vmhd',
                      { dinf: [{ dref: ['url '] }] },
                      { stbl: [{ stsd: ['avc1'] }, 'stts', 'stsc', 'stsz', 'stco'] },
                    ],
                  },
                ],
              },
            ],
          },
          {
            trak: [
              'tkhd',
              {
                mdia: [
                  'mdhd',
                  'hdlr',
                  {
                    minf: [
                      'smhd',
                      { dinf: [{ dref: ['url '] }] },
                      { stbl: [{ stsd: ['mp4a'] }, 'stts', 'stsc', 'stsz', 'stco'] },
                    ],
                  },
                ],
              },
            ],
          },
          { mvex: ['trex', 'trex'] },
        ],
      },
    ]);
  });

  test('trun data offsets point at each track’s first sample in mdat, with sync flags on keyframes', () => {
    const a = Buffer.from([0, 0, 0, 2, 0x65, 0x88]);
    const b = Buffer.from([0, 0, 0, 1, 0x41]);
    const c = Buffer.from([0x21, 0x10, 0x04]);
    const frag = encodeFragment(7, [
      {
        trackId: 1,
        baseDecodeTime: 2 ** 33 + 5, // past 32 bits: tfdt v1
        samples: [
          { duration: 3600, compositionOffset: 7200, keyframe: true, data: a },
          { duration: 3600, compositionOffset: 0, keyframe: false, data: b },
        ],
      },
      { trackId: 2, baseDecodeTime: 1024, samples: [{ duration: 1024, compositionOffset: 0, keyframe: true, data: c }] },
    ]);
    const [moof, mdat] = parseBoxes(frag);
    assert.equal(moof?.type, 'moof');
    assert.equal(mdat?.type, 'mdat');
    assert.deepEqual(shape([moof]), [{ moof: ['mfhd', { traf: ['tfhd', 'tfdt', 'trun'] }, { traf: ['tfhd', 'tfdt', 'trun'] }] }]);
    assert.equal(frag.readUInt32BE(moof.children[0]!.start + 12), 7, 'mfhd sequence_number');
    const trafs = moof.children.filter((x) => x.type === 'traf');
    const expectFirst = [a, c];
    trafs.forEach((traf, i) => {
      const tfdt = traf.children[1]!;
      const trun = traf.children[2]!;
      assert.equal(frag[tfdt.start + 8], 1, 'tfdt version 1');
      const base = frag.readUInt32BE(tfdt.start + 12) * 2 ** 32 + frag.readUInt32BE(tfdt.start + 16);
      assert.equal(base, i === 0 ? 2 ** 33 + 5 : 1024);
      const offset = frag.readInt32BE(trun.start + 16);
      const first = expectFirst[i]!;
      assert.deepEqual(
        frag.subarray(moof.start + offset, moof.start + offset + first.length),
        first,
        `track ${i + 1} data offset`,
      );
      const flags0 = frag.readUInt32BE(trun.start + 20 + 8);
      assert.equal(flags0, SYNC_SAMPLE_FLAGS);
    });
    const secondFlags = frag.readUInt32BE(trafs[0]!.children[2]!.start + 20 + 16 + 8);
    assert.equal(secondFlags, NON_SYNC_SAMPLE_FLAGS);
    assert.equal(frag.readUInt32BE(trafs[0]!.children[2]!.start + 20 + 12), 7200, 'composition offset of the first sample');
  });

  test('box sizes always add up, for any sample layout (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.array(fc.record({ len: fc.nat(40), key: fc.boolean(), dur: fc.integer({ min: 1, max: 9000 }), cto: fc.nat(9000) }), {
            maxLength: 12,
          }),
          { minLength: 1, maxLength: 3 },
        ),
        (tracks) => {
          const runs: TrackRun[] = tracks.map((samples, i) => ({
            trackId: i + 1,
            baseDecodeTime: i * 1000,
            samples: samples.map((s) => ({
              duration: s.dur,
              compositionOffset: s.cto,
              keyframe: s.key,
              data: Buffer.alloc(s.len, i + 1),
            })),
          }));
          const frag = encodeFragment(1, runs);
          const boxes = parseBoxes(frag);
          const mdat = boxes.find((b) => b.type === 'mdat');
          const total = tracks.flat().reduce((n, s) => n + s.len, 0);
          assert.equal(mdat?.size, 8 + total);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('RFC 6381 codec strings of the fixtures', () => {
    const h264 = fixtureAsFmp4('h264-aac.ts').tracks;
    assert.match(codecString(h264[0]!), /^avc1\.[0-9a-f]{6}$/);
    assert.equal(codecString(h264[1]!), 'mp4a.40.2');
    const h265 = fixtureAsFmp4('h265-aac.ts').tracks;
    assert.match(codecString(h265[0]!), /^hvc1\.1\.6\.L\d+\.[0-9A-F.]+$/);
    assert.throws(() => hevcCodecString(Buffer.from([1, 1, 0])), { name: 'MalformedInputError' });
  });
});

describe('fMP4 read by ffprobe', { skip: skipWithoutFfmpeg() }, () => {
  for (const [fixture, video, width] of [
    ['h264-aac.ts', 'h264', 320],
    ['h265-aac.ts', 'hevc', 320],
  ] as const) {
    test(`${fixture}: init + fragments decode frame for frame`, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'feedcast-fmp4-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const { file, videoFrames, audioFrames } = fixtureAsFmp4(fixture);
      const path = join(dir, 'out.mp4');
      writeFileSync(path, file);
      const { code, stdout, stderr } = await run(
        FFPROBE,
        [
          '-v',
          'error',
          '-count_frames',
          '-show_entries',
          'stream=codec_name,width,height,sample_rate,nb_read_frames',
          '-of',
          'json',
          path,
        ],
        30_000,
      );
      assert.equal(code, 0, stderr);
      assert.equal(stderr.trim(), '', 'no decoder complaints');
      const streams = (
        JSON.parse(stdout) as { streams: { codec_name: string; width?: number; sample_rate?: string; nb_read_frames: string }[] }
      ).streams;
      const v = streams.find((s) => s.codec_name === video);
      const a = streams.find((s) => s.codec_name === 'aac');
      assert.equal(v?.width, width);
      assert.equal(Number(v?.nb_read_frames), videoFrames, 'every video frame decodes');
      assert.equal(a?.sample_rate, '48000');
      assert.equal(Number(a?.nb_read_frames), audioFrames, 'every audio frame decodes');
    });
  }
});

describe('AV1 sample entry', () => {
  test('av01 with the av1C of the track, codec string av01.P.LLT.DD, and ffprobe decodes every temporal unit', async (t) => {
    const { track, frames } = av1FixtureFrames();
    const av1 = fmp4TrackOf(track);
    assert.ok(av1 !== undefined);
    assert.equal(codecString(av1), 'av01.0.00M.08');
    assert.equal(fmp4TrackOf({ ...track, config: undefined }), undefined, 'no av1C, no sample entry');
    const init = encodeInitSegment([av1]);
    const at = init.indexOf('av01');
    assert.ok(at > 0 && init.indexOf('av1C') > at, 'av01 holds av1C');
    assert.deepEqual(init.subarray(init.indexOf('av1C') + 4, init.indexOf('av1C') + 4 + track.config!.length), track.config);
    if (skipWithoutFfmpeg()) return;
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-fmp4-av1-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'av1.mp4');
    writeFileSync(path, Buffer.concat([init, encodeFragment(1, toRuns([av1], frames, 0, 90_000))]));
    const probe = await run(
      FFPROBE,
      ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'csv=p=0', path],
      30_000,
    );
    assert.equal(probe.stderr.trim(), '', 'no decoder complaints');
    assert.equal(probe.stdout.trim(), `av1,160,120,${frames.length}`);
  });
});

describe('VP8 and VP9 sample entries', () => {
  test('vp09/vp08 with a vpcC (version 1: profile 0, the level of the picture size, 8 bits, 4:2:0) and their codec strings', () => {
    const vp9 = fmp4TrackOf({ id: 0, kind: 'video', codec: 'vp9', width: 640, height: 360 });
    const vp8 = fmp4TrackOf({ id: 0, kind: 'video', codec: 'vp8', width: 1920, height: 1080 });
    assert.ok(vp9 !== undefined && vp8 !== undefined);
    // version 1, flags 0 | profile 0 | level 2.1 | bitDepth 8, chromaSubsampling 0, full range 0 | colour 2, 2, 2 | no init data
    assert.deepEqual([...vp9.config], [1, 0, 0, 0, 0, 21, 0x80, 2, 2, 2, 0, 0]);
    assert.equal(codecString(vp9), 'vp09.00.21.08');
    assert.equal(codecString(vp8), 'vp08.00.41.08');
    const init = encodeInitSegment([vp9]);
    const at = init.indexOf('vp09');
    assert.ok(at > 0 && init.indexOf('vpcC') > at, 'vp09 holds vpcC');
    assert.equal(init.readUInt16BE(at + 4 + 24), 640, 'the sample entry says the width');
  });
});
