// TsMuxer: PAT/PMT bytes (identical to ffmpeg's for the same program), CRC, PES timestamps and
// their 33-bit wrap, packetization, PSI repetition, and round trips checked with ffprobe/ffmpeg.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { av1FixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { ObuType, readObus, writeObus } from '../av1/obu.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { crc32 } from './crc32.js';
import { parsePesHeader } from './pes.js';
import { TsDemuxer } from './ts-demuxer.js';
import { TsMuxer } from './ts-muxer.js';
import { parseTsPacket } from './ts-packet.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const HAVE_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;
const NO_FFMPEG = HAVE_FFMPEG ? false : 'ffmpeg/ffprobe are not installed';
const WRAP = 2 ** 33;

function demux(data: Buffer): { tracks: Track[]; frames: Frame[]; warnings: string[] } {
  const out = { tracks: [] as Track[], frames: [] as Frame[], warnings: [] as string[] };
  const d = new TsDemuxer({
    onTracks: (t) => (out.tracks = [...t]),
    onFrame: (f) => out.frames.push(f),
    onWarning: (w) => out.warnings.push(w),
  });
  d.push(data);
  d.end();
  return out;
}

const fixture = (name: string): Buffer => readFileSync(FIXTURES + name);
const h264Aac = demux(fixture('h264-aac.ts'));
const [VIDEO, AUDIO] = h264Aac.tracks as [Track, Track];

function packets(buf: Buffer): Buffer[] {
  assert.equal(buf.length % 188, 0, 'whole packets');
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 188) out.push(buf.subarray(i, i + 188));
  return out;
}

test('crc32 is CRC-32/MPEG-2', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0x0376e6e7); // the catalogue check value
});

test('header() is PAT + PMT, byte for byte what ffmpeg writes for the same program', () => {
  const h = new TsMuxer([VIDEO, AUDIO]).header();
  const [pat, pmt] = packets(h) as [Buffer, Buffer];
  // prettier-ignore
  const patBytes = [
    0x47, 0x40, 0x00, 0x1f, // sync, PUSI 1, PID 0, no adaptation field, CC 15 (the next in-band one is 0)
    0x00, // pointer_field
    0x00, // table_id: program_association_section
    0xb0, 0x0d, // section_syntax_indicator 1, '0', reserved 11, section_length 13
    0x00, 0x01, // transport_stream_id 1
    0xc1, // reserved 11, version_number 0, current_next_indicator 1
    0x00, 0x00, // section_number, last_section_number
    0x00, 0x01, 0xf0, 0x00, // program_number 1 -> program_map_PID 0x1000
    0x2a, 0xb1, 0x04, 0xb2, // CRC_32
  ];
  assert.deepEqual([...pat.subarray(0, patBytes.length)], patBytes);
  assert.ok(
    pat.subarray(patBytes.length).every((b) => b === 0xff),
    'stuffing',
  );
  // prettier-ignore
  const pmtBytes = [
    0x47, 0x50, 0x00, 0x1f, // sync, PUSI 1, PID 0x1000, payload only, CC 15
    0x00, // pointer_field
    0x02, // table_id: TS_program_map_section
    0xb0, 0x17, // section_syntax_indicator 1, section_length 23
    0x00, 0x01, // program_number 1
    0xc1, 0x00, 0x00, // version 0, current, section 0 of 0
    0xe1, 0x00, // reserved 111, PCR_PID 0x100 (the video track)
    0xf0, 0x00, // reserved 1111, program_info_length 0
    0x1b, 0xe1, 0x00, 0xf0, 0x00, // stream_type 0x1B (H.264), PID 0x100, ES_info_length 0
    0x0f, 0xe1, 0x01, 0xf0, 0x00, // stream_type 0x0F (AAC ADTS), PID 0x101, ES_info_length 0
    0x2f, 0x44, 0xb9, 0x9b, // CRC_32
  ];
  assert.deepEqual([...pmt.subarray(0, pmtBytes.length)], pmtBytes);
  // A section followed by its CRC has a CRC of 0.
  assert.equal(crc32(pat, 5, 5 + 16), 0);
  assert.equal(crc32(pmt, 5, 5 + 26), 0);
  // The ffmpeg fixture's PAT and PMT (packets 1 and 2) differ only in the continuity counter.
  const ffmpeg = fixture('h264-aac.ts');
  assert.deepEqual(pat.subarray(4), ffmpeg.subarray(188 + 4, 2 * 188));
  assert.deepEqual(pmt.subarray(4), ffmpeg.subarray(2 * 188 + 4, 3 * 188));
});

test('Opus gets a registration descriptor and a channel config extension descriptor', () => {
  const opus: Track = { id: 5, kind: 'audio', codec: 'opus', sampleRate: 48000, channels: 2 };
  const pmt = packets(new TsMuxer([opus]).header())[1] as Buffer;
  // prettier-ignore
  const es = [
    0x06, 0xe1, 0x00, 0xf0, 0x0a, // stream_type 0x06 (PES private data), PID 0x100, ES_info_length 10
    0x05, 0x04, 0x4f, 0x70, 0x75, 0x73, // registration_descriptor 'Opus'
    0x7f, 0x02, 0x80, 0x02, // extension descriptor, tag_extension 0x80, channel_config_code 2
  ];
  assert.deepEqual([...pmt.subarray(17, 17 + es.length)], es);
  assert.equal(crc32(pmt, 5, 5 + 3 + (((pmt[6] ?? 0) & 0x0f) << 8) + (pmt[7] ?? 0)), 0);
});

test('PTS and DTS are written modulo 2^33, and negative times wrap too', () => {
  const m = new TsMuxer([VIDEO]);
  const frame = h264Aac.frames[2] as Frame; // not a keyframe: no PAT/PMT in front
  for (const [pts, dts] of [
    [WRAP + 100, WRAP - 50],
    [2 * WRAP + 7, 2 * WRAP + 7],
    [-3000, -6000],
  ] as const) {
    const out = m.mux({ ...frame, keyframe: false, pts90k: pts, dts90k: dts });
    const first = out.subarray(0, 188);
    const pkt = parseTsPacket(first);
    const header = parsePesHeader(new ByteReader(first, 'test', pkt.payloadOffset));
    assert.equal(header.pts, ((pts % WRAP) + WRAP) % WRAP);
    assert.equal(header.dts, pts === dts ? undefined : ((dts % WRAP) + WRAP) % WRAP);
    // PCR = DTS - 100 ms, in 27 MHz units.
    assert.equal(pkt.pcr27m, ((((dts - 9000) % WRAP) + WRAP) % WRAP) * 300);
  }
  // The PTS field itself: '0010' | PTS[32..30] = 100b | marker, then PTS[29..15] | marker,
  // then PTS[14..0] | marker, for PTS 0x1_2345_6789.
  const out = m.mux({ ...frame, keyframe: false, pts90k: 0x1_2345_6789, dts90k: 0x1_2345_6789 });
  const pesStart = parseTsPacket(out).payloadOffset;
  assert.deepEqual([...out.subarray(pesStart + 9, pesStart + 14)], [0x29, 0x8d, 0x15, 0xcf, 0x13]);
});

test('packets: 188 bytes, continuity counters per PID, PCR and random access on keyframes', () => {
  const m = new TsMuxer([VIDEO, AUDIO]);
  const cc = new Map<number, number>();
  let keyframePackets = 0;
  for (const frame of h264Aac.frames) {
    const out = m.mux(frame);
    const list = packets(out);
    if (frame.trackId === VIDEO.id && frame.keyframe) {
      keyframePackets++;
      assert.equal(parseTsPacket(list[0] as Buffer).pid, 0, 'PAT first');
      assert.equal(parseTsPacket(list[1] as Buffer).pid, 0x1000, 'then PMT');
    }
    let firstEs = true;
    for (const p of list) {
      const h = parseTsPacket(p);
      const previous = cc.get(h.pid);
      if (previous !== undefined) assert.equal(h.continuityCounter, (previous + 1) & 15, `CC of PID ${h.pid}`);
      cc.set(h.pid, h.continuityCounter);
      if (h.pid === 0 || h.pid === 0x1000) continue;
      assert.equal(h.payloadUnitStart, firstEs);
      if (firstEs && frame.trackId === VIDEO.id) {
        assert.equal(h.pcr27m, (frame.dts90k - 9000) * 300);
        assert.equal(h.randomAccess, frame.keyframe);
      }
      firstEs = false;
    }
  }
  assert.equal(keyframePackets, 2);
});

test('a video PES over 65535 bytes has PES_packet_length 0', () => {
  const m = new TsMuxer([VIDEO]);
  const big = Buffer.alloc(70_004, 0x41);
  big.writeUInt32BE(70_000, 0);
  const out = m.mux({ trackId: VIDEO.id, pts90k: 0, dts90k: 0, keyframe: false, data: big });
  const pkt = parseTsPacket(out);
  assert.equal(out.readUInt16BE(pkt.payloadOffset + 4), 0);
  const small = m.mux(h264Aac.frames[2] as Frame);
  const p2 = parseTsPacket(small);
  assert.notEqual(small.readUInt16BE(p2.payloadOffset + 4), 0);
});

test('audio-only output repeats PAT/PMT about every 0.5 s and carries a PCR', () => {
  const m = new TsMuxer([AUDIO]);
  const audio = h264Aac.frames.filter((f) => f.trackId === AUDIO.id);
  let psi = 0;
  let pcr = 0;
  for (const f of audio) {
    const list = packets(m.mux(f));
    if (parseTsPacket(list[0] as Buffer).pid === 0) psi++;
    for (const p of list) if (parseTsPacket(p).pcr27m !== undefined) pcr++;
  }
  assert.equal(psi, 4, '1.9 s of audio: at 0, 0.5, 1.0, 1.5 s');
  assert.ok(pcr >= 19 && pcr <= 48, `${pcr} PCRs in 1.9 s`);
});

test('updateTracks: same codecs -> undefined; other codecs -> new PAT + PMT with the next version', () => {
  const m = new TsMuxer([VIDEO, AUDIO]);
  assert.equal(m.updateTracks([{ ...VIDEO, width: 640 }, AUDIO]), undefined);
  const out = m.updateTracks([VIDEO]);
  assert.ok(out !== undefined);
  const pmt = packets(out)[1] as Buffer;
  assert.equal(((pmt[10] ?? 0) >> 1) & 0x1f, 1, 'version_number 1');
  assert.equal(m.mux(h264Aac.frames.find((f) => f.trackId === AUDIO.id) as Frame).length, 0, 'audio no longer carried');
  assert.equal(m.mux({ trackId: 99, pts90k: 0, dts90k: 0, keyframe: true, data: Buffer.from([1]) }).length, 0);
});

test('SPS/PPS from the config are put in front of keyframes that lack them', () => {
  const m = new TsMuxer([VIDEO]);
  const key = h264Aac.frames[0] as Frame;
  // Keep only the IDR NAL unit (drop the in-band SPS/PPS/SEI).
  let idr: Buffer | undefined;
  for (let pos = 0; pos < key.data.length;) {
    const len = key.data.readUInt32BE(pos);
    if (((key.data[pos + 4] ?? 0) & 0x1f) === 5) idr = key.data.subarray(pos, pos + 4 + len);
    pos += 4 + len;
  }
  assert.ok(idr !== undefined);
  const out = demux(Buffer.concat([m.header(), m.mux({ ...key, data: idr })]));
  const types = [];
  const data = out.frames[0]?.data ?? Buffer.alloc(0);
  for (let pos = 0; pos < data.length; pos += 4 + data.readUInt32BE(pos)) types.push((data[pos + 4] ?? 0) & 0x1f);
  assert.deepEqual(types, [7, 8, 5]);
  assert.equal(out.tracks[0]?.width, 320);
});

const ROUND_TRIPS = ['h264-aac.ts', 'h265-aac.ts', 'mpeg1-mp2.ts', 'mp3.ts', 'opus.ts', 'h264-aac-wrap.ts'];

for (const file of ROUND_TRIPS) {
  test(`round trip ${file}: demux -> TsMuxer -> ffprobe/ffmpeg and our own demuxer`, { skip: NO_FFMPEG }, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-ts-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const input = demux(fixture(file));
    const m = new TsMuxer(input.tracks);
    const out = Buffer.concat([m.header(), ...input.frames.map((f) => m.mux(f))]);
    const path = join(dir, 'out.ts');
    writeFileSync(path, out);

    const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-'], { encoding: 'utf8' });
    assert.equal(decode.status, 0);
    assert.equal(decode.stderr, '', 'ffmpeg decodes without a message');
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_streams', '-show_packets', '-of', 'json', path], {
      encoding: 'utf8',
    });
    const json = JSON.parse(probe.stdout) as {
      streams: { codec_name: string; width?: number; height?: number; sample_rate?: string }[];
      packets: { stream_index: number }[];
    };
    assert.equal(json.streams.length, input.tracks.length);
    input.tracks.forEach((track, i) => {
      const s = json.streams[i];
      assert.equal(s?.codec_name === 'hevc' ? 'h265' : s?.codec_name, track.codec);
      if (track.kind === 'video') assert.deepEqual([s?.width, s?.height], [track.width, track.height]);
      else assert.equal(Number(s?.sample_rate), track.sampleRate);
      const count = json.packets.filter((p) => p.stream_index === i).length;
      assert.equal(count, input.frames.filter((f) => f.trackId === track.id).length, `packets of ${track.codec}`);
    });

    const again = demux(out);
    assert.deepEqual(again.warnings, []);
    assert.deepEqual(again.tracks, input.tracks);
    assert.deepEqual(again.frames, input.frames);
  });
}

// Debian's ffmpeg 5.1 has no AV1 in MPEG-TS (it demuxes the PID as bin_data), so the oracle is our
// demuxer, whose frames ffmpeg then decodes as a low-overhead OBU stream (-f obu).
test('AV1 (AOM carriage spec): PMT descriptors, start-code PES, a round trip ffmpeg decodes', { skip: NO_FFMPEG }, (t) => {
  const { track, frames } = av1FixtureFrames();
  const m = new TsMuxer([track]);
  const pmt = packets(m.header())[1] as Buffer;
  const config = track.config ?? Buffer.alloc(0);
  // prettier-ignore
  const es = [
    0x06, 0xe1, 0x00, 0xf0, 0x0c, // stream_type 0x06 (PES private data), PID 0x100, ES_info_length 12
    0x05, 0x04, 0x41, 0x56, 0x30, 0x31, // registration_descriptor 'AV01', first
    0x80, 0x04, config[0], config[1], config[2], 0xc0, // AV1_video_descriptor: av1C's fields, hdr_wcg_idc 3
  ];
  assert.deepEqual([...pmt.subarray(17, 17 + es.length)], es);

  // The key frame without its sequence header gets the one of the av1C back, in-band.
  const first = frames[0] as Frame;
  const withoutHeader = writeObus(readObus(first.data).filter((o) => o.type !== ObuType.sequenceHeader));
  const out = Buffer.concat([m.header(), m.mux({ ...first, data: withoutHeader }), ...frames.slice(1).map((f) => m.mux(f))]);
  const pes = packets(out).find((p) => parseTsPacket(p).pid === 0x100) as Buffer;
  const pesStart = 4 + 1 + (pes[4] as number);
  assert.equal(pes[pesStart + 3], 0xbd, 'private_stream_1');
  assert.equal((pes[pesStart + 6] as number) & 0x04, 0x04, 'data_alignment_indicator');
  const payload = pes.subarray(pesStart + 14);
  assert.deepEqual([...payload.subarray(0, 7)], [0, 0, 1, 0x10, 0, 0, 1], 'a temporal delimiter, then the next OBU');

  const again = demux(out);
  assert.deepEqual(again.warnings, []);
  assert.deepEqual(again.tracks, [track]);
  assert.deepEqual(again.frames, frames);

  const dir = mkdtempSync(join(tmpdir(), 'feedcast-ts-av1-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'out.obu');
  const td = Buffer.from([0x12, 0x00]);
  writeFileSync(path, Buffer.concat(again.frames.flatMap((f) => [td, f.data])));
  const decode = spawnSync('ffmpeg', ['-v', 'error', '-f', 'obu', '-i', path, '-f', 'framemd5', '-'], { encoding: 'utf8' });
  assert.equal(decode.status, 0, decode.stderr);
  assert.equal(decode.stderr, '');
  assert.equal(decode.stdout.split('\n').filter((l) => /^0,/.test(l)).length, frames.length, 'every frame decoded');
});
