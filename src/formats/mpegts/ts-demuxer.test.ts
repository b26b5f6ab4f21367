// TsDemuxer against ffprobe on real ffmpeg output (test/fixtures/*.ts), plus chunking, 33-bit
// wrap, resync, PES completion, readiness and fuzz tests.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { MalformedInputError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { TsDemuxer, type TsDemuxerOptions } from './ts-demuxer.js';
import { TsMuxer } from './ts-muxer.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const HAVE_FFPROBE = spawnSync('ffprobe', ['-version']).status === 0;
const NO_FFPROBE = HAVE_FFPROBE ? false : 'ffprobe is not installed';
const WRAP = 2 ** 33;

interface Result {
  trackLists: Track[][];
  frames: Frame[];
  warnings: string[];
}

function demux(chunks: readonly Buffer[], options?: TsDemuxerOptions): Result {
  const result: Result = { trackLists: [], frames: [], warnings: [] };
  const d = new TsDemuxer(
    {
      onTracks: (t) => result.trackLists.push([...t]),
      onFrame: (f) => result.frames.push(f),
      onWarning: (w) => result.warnings.push(w),
    },
    options,
  );
  for (const c of chunks) d.push(c);
  d.end();
  return result;
}

function fixture(name: string): Buffer {
  return readFileSync(FIXTURES + name);
}

interface ProbePacket {
  stream_index: number;
  pts?: number;
  dts?: number;
  size: string;
  flags: string;
}
interface ProbeStream {
  codec_name: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
}

function ffprobe(file: string): { streams: ProbeStream[]; packets: ProbePacket[] } {
  const out = spawnSync('ffprobe', ['-v', 'error', '-show_streams', '-show_packets', '-of', 'json', file], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as { streams: ProbeStream[]; packets: ProbePacket[] };
}

const mod33 = (t: number): number => ((t % WRAP) + WRAP) % WRAP;

const FIXTURE_CASES = [
  { file: 'h264-aac.ts', codecs: ['h264', 'aac'] },
  { file: 'h265-aac.ts', codecs: ['h265', 'aac'] },
  { file: 'mpeg1-mp2.ts', codecs: ['mpeg1video', 'mp2'] },
  { file: 'mp3.ts', codecs: ['mp3'] },
  { file: 'opus.ts', codecs: ['opus'] },
  { file: 'h264-aac-wrap.ts', codecs: ['h264', 'aac'] },
] as const;

for (const c of FIXTURE_CASES) {
  test(`demuxes ${c.file} as ffprobe does`, { skip: NO_FFPROBE }, () => {
    const probe = ffprobe(FIXTURES + c.file);
    const { trackLists, frames, warnings } = demux([fixture(c.file)]);
    assert.deepEqual(warnings, []);
    assert.equal(trackLists.length, 1, 'one onTracks call');
    const tracks = trackLists[0] ?? [];
    assert.deepEqual(
      tracks.map((t) => t.codec),
      [...c.codecs],
    );
    tracks.forEach((track, i) => {
      const s = probe.streams[i];
      assert.ok(s !== undefined);
      assert.equal(track.codec, s.codec_name === 'hevc' ? 'h265' : s.codec_name);
      if (track.kind === 'video') {
        assert.equal(track.width, s.width);
        assert.equal(track.height, s.height);
      } else {
        assert.equal(track.sampleRate, Number(s.sample_rate));
        assert.equal(track.channels, s.channels);
      }
      const ours = frames.filter((f) => f.trackId === track.id);
      const theirs = probe.packets.filter((p) => p.stream_index === i);
      assert.equal(ours.length, theirs.length, `frames of track ${i} (${track.codec})`);
      for (let k = 1; k < ours.length; k++) {
        assert.ok((ours[k]?.dts90k ?? 0) > (ours[k - 1]?.dts90k ?? 0), `DTS monotonic at frame ${k} of track ${i}`);
      }
      ours.forEach((f, k) => {
        const p = theirs[k];
        assert.ok(p !== undefined && p.pts !== undefined);
        const diff = Math.abs(mod33(f.pts90k) - mod33(p.pts));
        assert.ok(diff <= 1, `pts of frame ${k} of track ${i}: ${mod33(f.pts90k)} vs ${p.pts}`);
        assert.equal(f.keyframe, p.flags.startsWith('K'), `keyframe flag of frame ${k} of track ${i}`);
        // ffmpeg keeps ADTS headers in its AAC packets; H.264/H.265 payloads change framing.
        if (track.codec === 'aac') assert.equal(f.data.length, Number(p.size) - 7);
        else if (track.codec !== 'h264' && track.codec !== 'h265') assert.equal(f.data.length, Number(p.size));
      });
      if (track.kind === 'video') assert.equal(ours[0]?.keyframe, true, 'first video frame is a keyframe');
    });
  });
}

test('H.264 frames are length-prefixed without AUDs, and the config is an avcC', () => {
  const { trackLists, frames } = demux([fixture('h264-aac.ts')]);
  const video = trackLists[0]?.[0];
  assert.equal(video?.profile, 'High 1.3');
  assert.equal(video?.config?.[0], 1); // avcC configurationVersion
  const first = frames.find((f) => f.trackId === video.id);
  assert.ok(first !== undefined);
  const types: number[] = [];
  for (let pos = 0; pos < first.data.length;) {
    const len = first.data.readUInt32BE(pos);
    types.push((first.data[pos + 4] ?? 0) & 0x1f);
    pos += 4 + len;
    assert.ok(pos <= first.data.length);
  }
  assert.ok(!types.includes(9), 'no AUD');
  assert.ok(types.includes(7) && types.includes(8) && types.includes(5), `SPS, PPS, IDR in ${types.join(',')}`);
});

test('any chunking gives the same frames: 1 byte at a time and random splits', () => {
  const data = fixture('h264-aac.ts');
  const whole = demux([data]);
  const bytewise: Buffer[] = [];
  for (let i = 0; i < data.length; i++) bytewise.push(data.subarray(i, i + 1));
  assert.deepEqual(demux(bytewise), whole);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: data.length }), { maxLength: 40 }), (cuts) => {
      const points = [...new Set([0, ...cuts, data.length])].sort((a, b) => a - b);
      const chunks = points.slice(1).map((end, i) => data.subarray(points[i], end));
      assert.deepEqual(demux(chunks), whole);
    }),
    { numRuns: 30, seed: 1 },
  );
});

test('timestamps crossing 2^33 stay monotonic and tracks stay together', () => {
  const { frames } = demux([fixture('h264-aac-wrap.ts')]);
  for (const id of [0, 1]) {
    const track = frames.filter((f) => f.trackId === id);
    for (let k = 1; k < track.length; k++) assert.ok((track[k]?.dts90k ?? 0) > (track[k - 1]?.dts90k ?? 0));
    assert.ok((track[0]?.dts90k ?? 0) < WRAP, 'starts before the wrap');
    assert.ok((track.at(-1)?.dts90k ?? 0) > WRAP, 'ends after it');
  }
  const v0 = frames.find((f) => f.trackId === 0)?.dts90k ?? 0;
  const a0 = frames.find((f) => f.trackId === 1)?.dts90k ?? 0;
  assert.ok(Math.abs(v0 - a0) < 90_000);
});

test('a new track unwraps near the others even when it starts after the wrap', () => {
  // Video starts just before 2^33; audio's first PTS comes after the wrap.
  const { video, audio } = h264AacTracks();
  const m = new TsMuxer([video, audio]);
  const vFrames = fixtureFrames('h264-aac.ts', 0).slice(0, 10);
  const aFrames = fixtureFrames('h264-aac.ts', 1).slice(0, 10);
  const base = WRAP - 3000;
  const parts = [m.header()];
  for (let i = 0; i < 10; i++) {
    const v = vFrames[i];
    const a = aFrames[i];
    assert.ok(v !== undefined && a !== undefined);
    parts.push(m.mux({ ...v, dts90k: base + i * 3600, pts90k: base + i * 3600 }));
    parts.push(m.mux({ ...a, dts90k: base + 3600 + i * 1920, pts90k: base + 3600 + i * 1920 }));
  }
  const { frames } = demux([Buffer.concat(parts)]);
  const firstAudio = frames.find((f) => f.trackId === 1);
  assert.equal(firstAudio?.dts90k, base + 3600, 'audio placed after the wrap, not 2^33 earlier');
});

test('resyncs after garbage between packets, and gives up on input with no sync', () => {
  const data = fixture('h264-aac.ts');
  const whole = demux([data]).frames;
  const garbage = Buffer.alloc(300, 0x11);
  // Garbage between two packets: nothing is lost.
  const between = 50 * 188;
  const clean = demux([data.subarray(0, between), garbage, data.subarray(between)]);
  assert.ok(
    clean.warnings.some((w) => w.includes('lost sync')),
    clean.warnings.join('\n'),
  );
  assert.ok(
    clean.warnings.some((w) => w.includes('skipped 300 bytes')),
    clean.warnings.join('\n'),
  );
  assert.deepEqual(clean.frames, whole);
  // Garbage inside a packet: that packet is damaged, the stream goes on.
  const inside = 50 * 188 + 100;
  const damaged = demux([data.subarray(0, inside), garbage, data.subarray(inside)]);
  assert.ok(damaged.frames.length >= whole.length - 3, `${damaged.frames.length} of ${whole.length} frames`);
  assert.throws(() => demux([Buffer.alloc(11 * 188, 0x00)]), MalformedInputError);
  assert.throws(() => demux([data.subarray(0, 188 * 5), Buffer.alloc(11 * 188, 0x47 + 1)]), MalformedInputError);
});

test('a PES with a length is emitted as soon as it is complete; an unbounded one at the next PES', () => {
  const { video, audio } = h264AacTracks();
  const aac = fixtureFrames('h264-aac.ts', 1);
  const idr = fixtureFrames('h264-aac.ts', 0)[0];
  assert.ok(idr !== undefined);
  // Audio-only output: each PES has PES_packet_length, so each frame comes out at once.
  {
    const m = new TsMuxer([audio]);
    const got: Frame[] = [];
    const d = new TsDemuxer({ onTracks: () => undefined, onFrame: (f) => got.push(f) });
    d.push(m.header());
    d.push(m.mux({ ...(aac[0] as Frame), trackId: audio.id }));
    assert.equal(got.length, 1);
    d.push(m.mux({ ...(aac[1] as Frame), trackId: audio.id }));
    assert.equal(got.length, 2);
  }
  // A video frame over 65535 bytes gets PES_packet_length 0: it is complete at the next PES.
  {
    const big = Buffer.concat([idr.data, lengthPrefixed(Buffer.concat([Buffer.from([0x01]), Buffer.alloc(70_000, 0x55)]))]);
    const m = new TsMuxer([video]);
    const got: Frame[] = [];
    const d = new TsDemuxer({ onTracks: () => undefined, onFrame: (f) => got.push(f) });
    d.push(m.header());
    d.push(m.mux({ ...idr, data: big }));
    assert.equal(got.length, 0, 'held until the next PES starts');
    d.push(m.mux({ ...idr, dts90k: idr.dts90k + 3600, pts90k: idr.pts90k + 3600 }));
    // The big frame is complete now; the second one is small (has a length): out at once too.
    assert.equal(got.length, 2);
    assert.deepEqual(got[0]?.data, big);
    assert.deepEqual(got[1]?.data, idr.data);
  }
});

test('an audio frame cut by a PES end is carried into the next PES', () => {
  const mp3 = demux([fixture('mp3.ts')]);
  const track = mp3.trackLists[0]?.[0];
  const [f1, f2, f3] = mp3.frames as [Frame, Frame, Frame];
  assert.ok(track !== undefined);
  const half = f2.data.length >> 1;
  const m = new TsMuxer([track]);
  // PES A: frame 1 + the first half of frame 2; PES B: the rest of frame 2 + frame 3, whose PTS
  // B carries (a PES's PTS is that of the first frame that starts in it).
  const a = { ...f1, data: Buffer.concat([f1.data, f2.data.subarray(0, half)]) };
  const b = { ...f3, data: Buffer.concat([f2.data.subarray(half), f3.data]) };
  const { frames, warnings } = demux([Buffer.concat([m.header(), m.mux(a), m.mux(b)])]);
  assert.deepEqual(warnings, []);
  assert.deepEqual(
    frames.map((f) => [f.pts90k, f.data.length]),
    [f1, f2, f3].map((f) => [f.pts90k, f.data.length]),
  );
  assert.deepEqual(frames[1]?.data, f2.data);
});

test('a PES over maxPesBytes is dropped with a warning and the stream goes on', () => {
  // Re-muxed so that every audio frame has its own small PES; the video frames are bigger.
  const { video, audio } = h264AacTracks();
  const m = new TsMuxer([video, audio]);
  const all = demux([fixture('h264-aac.ts')]).frames;
  const { frames, warnings } = demux([Buffer.concat([m.header(), ...all.map((f) => m.mux(f))])], { maxPesBytes: 1000 });
  assert.ok(warnings.some((w) => w.includes('maxPesBytes')));
  assert.equal(frames.filter((f) => f.trackId === audio.id).length, all.filter((f) => f.trackId === audio.id).length);
});

test('a track without config in 2 s is dropped and the others are announced', () => {
  const { video, audio } = h264AacTracks();
  const m = new TsMuxer([video, audio]);
  const parts = [m.header(), ...fixtureFrames('h264-aac.ts', 0).map((f) => m.mux(f))]; // never any audio
  const { trackLists, frames, warnings } = demux([Buffer.concat(parts)]);
  assert.equal(trackLists.length, 1);
  assert.deepEqual(
    trackLists[0]?.map((t) => t.codec),
    ['h264'],
  );
  assert.ok(warnings.some((w) => w.includes('no codec config')));
  assert.equal(frames.length, 50, 'held frames are released, none lost');
});

test('a new SPS later in the stream calls onTracks again', () => {
  const { video } = h264AacTracks();
  const m = new TsMuxer([video]);
  const first = fixtureFrames('h264-aac.ts', 0);
  const second = fixtureFrames('h264-aac-wrap.ts', 0); // 160x120
  const last = first.at(-1)?.dts90k ?? 0;
  const shift = last + 3600 - (second[0]?.dts90k ?? 0);
  const parts = [m.header(), ...first.map((f) => m.mux(f))];
  for (const f of second) parts.push(m.mux({ ...f, trackId: 0, dts90k: f.dts90k + shift, pts90k: f.pts90k + shift }));
  const { trackLists, frames } = demux([Buffer.concat(parts)]);
  assert.deepEqual(
    trackLists.map((l) => `${l[0]?.width}x${l[0]?.height}`),
    ['320x240', '160x120'],
  );
  assert.equal(frames.length, 100);
});

test('fuzz: random bytes only ever throw MalformedInputError', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.boolean(), (bytes, withSync) => {
      const buf = Buffer.from(bytes);
      if (withSync) for (let i = 0; i < buf.length; i += 188) buf[i] = 0x47; // get past the framer
      try {
        demux([buf]);
      } catch (err) {
        if (!(err instanceof MalformedInputError)) throw err;
      }
    }),
    { numRuns: 400, seed: 2 },
  );
});

test('fuzz: every truncation of the first packets is handled', { timeout: 60_000 }, () => {
  const head = fixture('h264-aac.ts').subarray(0, 30 * 188);
  for (let i = 0; i <= head.length; i++) demux([head.subarray(0, i)]);
});

test('fuzz: random mutations of a fixture only ever throw MalformedInputError', { timeout: 60_000 }, () => {
  const data = fixture('h264-aac.ts').subarray(0, 120 * 188);
  const mutation = fc.record({ at: fc.integer({ min: 0, max: data.length - 1 }), value: fc.integer({ min: 0, max: 255 }) });
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 30 }), (mutations) => {
      const buf = Buffer.from(data);
      for (const m of mutations) buf[m.at] = m.value;
      try {
        const { frames } = demux([buf]);
        for (const f of frames) assert.ok(f.pts90k >= f.dts90k);
      } catch (err) {
        if (!(err instanceof MalformedInputError)) throw err;
      }
    }),
    { numRuns: 300, seed: 3 },
  );
});

// ---- helpers ----

function h264AacTracks(): { video: Track; audio: Track } {
  const tracks = demux([fixture('h264-aac.ts')]).trackLists[0] ?? [];
  const video = tracks[0];
  const audio = tracks[1];
  assert.ok(video !== undefined && audio !== undefined);
  return { video, audio };
}

function fixtureFrames(file: string, trackId: number): Frame[] {
  return demux([fixture(file)]).frames.filter((f) => f.trackId === trackId);
}

function lengthPrefixed(nal: Buffer): Buffer {
  const out = Buffer.alloc(4 + nal.length);
  out.writeUInt32BE(nal.length, 0);
  nal.copy(out, 4);
  return out;
}
