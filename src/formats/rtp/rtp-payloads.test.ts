// Round trips of every RTP packetiser/depacketiser on real frames (test/fixtures/*.ts through the
// TS demuxer), with small and default packet sizes, loss, aggregation, truncation and fuzz.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { MalformedInputError, UnsupportedError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { H264Nal, h264NalType, H265Nal, h265NalType, splitLengthPrefixed } from '../h264/nal.js';
import { TsDemuxer } from '../mpegts/ts-demuxer.js';
import { AacDepacketizer, AacPacketizer, rtpTimestampOf } from './audio-rtp.js';
import { av1FixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { createPacketizer, ingestFormatOf, rtpFormatOf } from './formats.js';
import { MpaDepacketizer, MpvPacketizer } from './mpeg-rtp.js';
import { NalDepacketizer, NalPacketizer } from './nal-rtp.js';
import type { DepacketizedFrame, RtpDepacketizer, RtpPacketizer } from './payload.js';
import { buildRtpPacket, MAX_RTP_PACKET_BYTES, parseRtpPacket } from './rtp-packet.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

function demuxFixture(name: string): { tracks: Track[]; frames: Frame[] } {
  let tracks: Track[] = [];
  const frames: Frame[] = [];
  const d = new TsDemuxer({ onTracks: (t) => (tracks = [...t]), onFrame: (f) => frames.push(f) });
  d.push(readFileSync(FIXTURES + name));
  d.end();
  return { tracks, frames };
}

/** Packetises frames into wire packets (seq from 65530 to cross the wrap, random-ish base). */
function toPackets(p: RtpPacketizer, frames: readonly Frame[], base = 0xfffff000): Buffer[] {
  const packets: Buffer[] = [];
  let seq = 65530;
  for (const f of frames) {
    const ts = rtpTimestampOf(f.pts90k, p.clockRate, base);
    for (const u of p.packetize(f)) {
      packets.push(
        buildRtpPacket(
          {
            marker: u.marker,
            payloadType: p.payloadType,
            sequence: seq,
            timestamp: (ts + (u.timestampOffset ?? 0)) >>> 0,
            ssrc: 0x1234,
          },
          u.parts,
        ),
      );
      seq = (seq + 1) & 0xffff;
    }
  }
  return packets;
}

function depacketize(d: RtpDepacketizer, packets: readonly Buffer[]): DepacketizedFrame[] {
  const out: DepacketizedFrame[] = [];
  for (const p of packets) out.push(...d.push(parseRtpPacket(p)));
  return out;
}

function withoutParameterSets(codec: 'h264' | 'h265', data: Buffer): Buffer[] {
  return splitLengthPrefixed(data).filter((n) => {
    const t = codec === 'h264' ? h264NalType(n) : h265NalType(n);
    return codec === 'h264' ? t !== H264Nal.sps && t !== H264Nal.pps : t < H265Nal.vps || t > H265Nal.pps;
  });
}

for (const [fixture, codec] of [
  ['h264-aac.ts', 'h264'],
  ['h265-aac.ts', 'h265'],
] as const) {
  for (const maxPayload of [1460, 300]) {
    test(`${codec}: round trip of ${fixture} with ${maxPayload}-byte payloads (single NAL, aggregation, fragments)`, () => {
      const { tracks, frames } = demuxFixture(fixture);
      const track = tracks.find((t) => t.codec === codec)!;
      const video = frames.filter((f) => f.trackId === track.id);
      assert.ok(video.length >= 20);
      const p = new NalPacketizer(track, 96, maxPayload);
      const packets = toPackets(p, video);
      for (const pkt of packets) assert.ok(pkt.length <= maxPayload + 12, `packet of ${pkt.length} bytes`);
      const types = new Set(packets.map((b) => (codec === 'h264' ? (b[12] as number) & 0x1f : ((b[12] as number) >> 1) & 0x3f)));
      const [agg, fu] = codec === 'h264' ? [24, 28] : [48, 49];
      assert.ok(types.has(agg), `an aggregation packet (types ${[...types].join(',')})`);
      if (maxPayload === 300) assert.ok(types.has(fu), 'fragmentation units');
      const d = new NalDepacketizer(codec, track.config);
      const out = depacketize(d, packets);
      assert.equal(out.length, video.length);
      for (const [i, f] of video.entries()) {
        const got = out[i]!;
        assert.equal(got.keyframe, f.keyframe, `frame ${i} keyframe`);
        assert.deepEqual(withoutParameterSets(codec, got.data), withoutParameterSets(codec, f.data), `frame ${i} NAL units`);
        assert.equal(got.timestamp, rtpTimestampOf(f.pts90k, 90_000, 0xfffff000));
        // Parameter sets go out in-band before every keyframe.
        if (f.keyframe) assert.notEqual(splitLengthPrefixed(got.data).length, withoutParameterSets(codec, got.data).length);
      }
      assert.equal(d.takeConfig(), undefined, 'in-band parameter sets equal the SDP ones');
    });
  }
}

test('h264: a lost fragment drops that NAL unit only; the next access units come through', () => {
  const { tracks, frames } = demuxFixture('h264-aac.ts');
  const track = tracks.find((t) => t.codec === 'h264')!;
  const video = frames.filter((f) => f.trackId === track.id).slice(0, 10);
  const p = new NalPacketizer(track, 96, 300);
  const packets = toPackets(p, video);
  const fuMiddle = packets.findIndex((b) => ((b[12] as number) & 0x1f) === 28 && ((b[13] as number) & 0xc0) === 0);
  assert.ok(fuMiddle > 0);
  packets.splice(fuMiddle, 1);
  const d = new NalDepacketizer('h264', track.config);
  const out = depacketize(d, packets);
  assert.equal(out.length, video.length);
  assert.equal(d.packetsLost, 1);
});

test('h264: in-band parameter sets that differ from the SDP ones are reported as a new avcC', () => {
  const { tracks, frames } = demuxFixture('h264-aac.ts');
  const track = tracks.find((t) => t.codec === 'h264')!;
  const key = frames.find((f) => f.trackId === track.id && f.keyframe)!;
  const d = new NalDepacketizer('h264', undefined);
  depacketize(d, toPackets(new NalPacketizer(track), [key]));
  const config = d.takeConfig();
  assert.ok(config?.equals(track.config!));
  assert.equal(d.takeConfig(), undefined);
});

test('aac: round trip through the SDP description, one AU per packet and fragmented AUs', () => {
  const { tracks, frames } = demuxFixture('h264-aac.ts');
  const track = tracks.find((t) => t.codec === 'aac')!;
  const audio = frames.filter((f) => f.trackId === track.id);
  const format = rtpFormatOf(track, 97);
  assert.equal(format.clockRate, 48_000);
  const ingest = ingestFormatOf(format);
  assert.equal(ingest.track.sampleRate, 48_000);
  assert.ok(ingest.track.config?.equals(track.config!));
  for (const p of [createPacketizer(track, format), new AacPacketizer(48_000, 97, 64)]) {
    const out = depacketize(ingest.createDepacketizer(), toPackets(p, audio));
    assert.equal(out.length, audio.length);
    for (const [i, f] of audio.entries()) assert.ok(out[i]!.data.equals(f.data), `AU ${i}`);
  }
});

test('aac: several AUs in one packet (as ffmpeg sends them) get consecutive timestamps', () => {
  // u16 AU-headers-length = 48 bits (3 headers) | 3 x (13-bit size, 3-bit index) | AUs
  const aus = [Buffer.alloc(10, 1), Buffer.alloc(20, 2), Buffer.alloc(5, 3)];
  const headers = Buffer.alloc(8);
  headers.writeUInt16BE(48, 0);
  aus.forEach((au, i) => headers.writeUInt16BE(au.length << 3, 2 + i * 2));
  const packet = buildRtpPacket({ marker: true, payloadType: 97, sequence: 1, timestamp: 1000, ssrc: 1 }, [headers, ...aus]);
  const out = new AacDepacketizer().push(parseRtpPacket(packet));
  assert.deepEqual(
    out.map((f) => [f.timestamp, f.data.length]),
    [
      [1000, 10],
      [2024, 20],
      [3048, 5],
    ],
  );
});

for (const [fixture, codec] of [
  ['mpeg1-mp2.ts', 'mp2'],
  ['mp3.ts', 'mp3'],
  ['opus.ts', 'opus'],
  ['mpeg1-mp2.ts', 'mpeg1video'],
] as const) {
  test(`${codec}: round trip of ${fixture}`, () => {
    const { tracks, frames } = demuxFixture(fixture);
    const track = tracks.find((t) => t.codec === codec)!;
    const own = frames.filter((f) => f.trackId === track.id);
    assert.ok(own.length > 5);
    const format = rtpFormatOf(track, 97);
    const ingest = ingestFormatOf(format);
    const packets = toPackets(createPacketizer(track, format), own);
    for (const pkt of packets) assert.ok(pkt.length <= MAX_RTP_PACKET_BYTES);
    const d = ingest.createDepacketizer();
    const out = depacketize(d, packets);
    assert.equal(out.length, own.length);
    for (const [i, f] of own.entries()) {
      assert.ok(out[i]!.data.equals(f.data), `frame ${i}`);
      assert.equal(out[i]!.keyframe, f.keyframe, `frame ${i} keyframe`);
      assert.equal(out[i]!.timestamp, rtpTimestampOf(f.pts90k, format.clockRate, 0xfffff000));
    }
    if (codec === 'mp3') assert.deepEqual(d.takeConfig?.(), Buffer.from([3]), 'layer III seen');
  });
}

test('av1: the SDP says profile, level-idx and tier; ingest learns the size and av1C from the key frame', () => {
  const { track, frames } = av1FixtureFrames();
  const format = rtpFormatOf(track, 97);
  assert.equal(format.encoding, 'AV1');
  assert.deepEqual(
    [...format.fmtp],
    [
      ['profile', '0'],
      ['level-idx', '0'],
      ['tier', '0'],
    ],
  );
  const ingest = ingestFormatOf(format);
  assert.deepEqual([ingest.track.codec, ingest.pending], ['av1', true]);
  const d = ingest.createDepacketizer();
  const out = depacketize(d, toPackets(createPacketizer(track, format), frames));
  assert.equal(out.length, frames.length);
  for (const [i, f] of frames.entries()) assert.ok(out[i]!.data.equals(f.data), `frame ${i}`);
  assert.deepEqual(d.takeSize?.(), { width: 160, height: 120 });
  assert.ok(d.takeConfig?.()?.equals(track.config!));
  for (const name of ['VP8', 'VP9'] as const) {
    const vp = ingestFormatOf({ payloadType: 96, encoding: name, clockRate: 90_000, channels: undefined, fmtp: new Map() });
    assert.deepEqual([vp.track.codec, vp.pending], [name.toLowerCase(), true]);
    assert.equal(rtpFormatOf({ id: 0, kind: 'video', codec: vp.track.codec }, 96).encoding, name);
  }
});

test('mpv: pictures bigger than a packet are cut at slices and fragmented, marker on the last', () => {
  const { tracks, frames } = demuxFixture('mpeg1-mp2.ts');
  const track = tracks.find((t) => t.codec === 'mpeg1video')!;
  const key = frames.find((f) => f.trackId === track.id && f.keyframe)!;
  const p = new MpvPacketizer(200);
  const units = p.packetize(key);
  assert.ok(units.length > 2);
  assert.deepEqual(
    units.map((u) => u.marker),
    units.map((_, i) => i === units.length - 1),
  );
  assert.equal(((units[0]!.parts[0]![2] as number) >> 5) & 1, 1, 'S: sequence header in the first packet');
  assert.equal((units[0]!.parts[0]![2] as number) & 7, 1, 'P: I picture');
  assert.ok(Buffer.concat(units.map((u) => u.parts[1]!)).equals(key.data));
});

test('mpa: several frames in one packet, and a fragmented frame', () => {
  const { tracks, frames } = demuxFixture('mp3.ts');
  const track = tracks.find((t) => t.codec === 'mp3')!;
  const own = frames.filter((f) => f.trackId === track.id).slice(0, 3);
  const packet = buildRtpPacket({ marker: false, payloadType: 14, sequence: 9, timestamp: 0, ssrc: 1 }, [
    Buffer.alloc(4),
    ...own.map((f) => f.data),
  ]);
  const out = new MpaDepacketizer().push(parseRtpPacket(packet));
  assert.equal(out.length, 3);
  assert.deepEqual(
    out.map((f) => f.timestamp),
    [0, 2351, 4702],
    '1152 samples at 44.1 kHz = 2351 ticks of 90 kHz',
  );
  // The same frame cut into 3 fragments with Frag_offset.
  const f0 = own[0]!.data;
  const d = new MpaDepacketizer();
  const cuts = [0, 50, 120, f0.length];
  const got: Buffer[] = [];
  for (let i = 0; i < 3; i++) {
    const header = Buffer.from([0, 0, cuts[i]! >> 8, cuts[i]! & 0xff]);
    const pkt = buildRtpPacket({ marker: false, payloadType: 14, sequence: 100 + i, timestamp: 5, ssrc: 1 }, [
      header,
      f0.subarray(cuts[i], cuts[i + 1]),
    ]);
    got.push(...d.push(parseRtpPacket(pkt)).map((f) => f.data));
  }
  assert.deepEqual(got, [f0]);
});

test('unsupported payload formats are refused with UnsupportedError', () => {
  const fmtp = new Map<string, string>();
  assert.throws(
    () => ingestFormatOf({ payloadType: 96, encoding: 'H263-1998', clockRate: 90_000, channels: undefined, fmtp }),
    UnsupportedError,
  );
  assert.throws(
    () =>
      ingestFormatOf({
        payloadType: 96,
        encoding: 'H264',
        clockRate: 90_000,
        channels: undefined,
        fmtp: new Map([['packetization-mode', '2']]),
      }),
    UnsupportedError,
  );
  assert.throws(
    () =>
      ingestFormatOf({
        payloadType: 96,
        encoding: 'mpeg4-generic',
        clockRate: 48_000,
        channels: 2,
        fmtp: new Map([['mode', 'CELP-cbr']]),
      }),
    UnsupportedError,
  );
});

const depacketizerMakers: [string, () => RtpDepacketizer][] = [
  ['h264', () => new NalDepacketizer('h264')],
  ['h265', () => new NalDepacketizer('h265')],
  ['aac', () => new AacDepacketizer()],
  ['mpa', () => new MpaDepacketizer()],
  [
    'mpv',
    () =>
      ingestFormatOf({
        payloadType: 32,
        encoding: 'MPV',
        clockRate: 90_000,
        channels: undefined,
        fmtp: new Map(),
      }).createDepacketizer(),
  ],
  [
    'opus',
    () =>
      ingestFormatOf({ payloadType: 97, encoding: 'opus', clockRate: 48_000, channels: 2, fmtp: new Map() }).createDepacketizer(),
  ],
];

test('fuzz: RTP parsing and every depacketiser throw only MalformedInputError on random input', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.boolean(), (bytes, marker) => {
      const raw = Buffer.from(bytes);
      try {
        parseRtpPacket(raw);
      } catch (err) {
        if (!(err instanceof MalformedInputError)) throw err;
      }
      const packet = buildRtpPacket({ marker, payloadType: 96, sequence: 1, timestamp: 2, ssrc: 3 }, [raw]);
      for (const [, make] of depacketizerMakers) {
        const d = make();
        try {
          d.push(parseRtpPacket(packet));
          d.push(parseRtpPacket(packet));
        } catch (err) {
          if (!(err instanceof MalformedInputError)) throw err;
        }
      }
    }),
    { numRuns: 400 },
  );
});

test('truncation: every prefix of real packets parses or throws MalformedInputError', () => {
  const { tracks, frames } = demuxFixture('h264-aac.ts');
  for (const track of tracks) {
    const own = frames.filter((f) => f.trackId === track.id).slice(0, 3);
    const format = rtpFormatOf(track, 96);
    const packets = toPackets(createPacketizer(track, format), own).slice(0, 6);
    for (const pkt of packets) {
      for (let cut = 0; cut < Math.min(pkt.length, 200); cut++) {
        const d = ingestFormatOf(format).createDepacketizer();
        try {
          d.push(parseRtpPacket(pkt.subarray(0, cut)));
        } catch (err) {
          assert.ok(err instanceof MalformedInputError, `cut ${cut}: ${String(err)}`);
        }
      }
    }
  }
});
