// FFM2 (ffserver-reference.md §5): headers from the captures (ffserver's GET answer, an ffmpeg 3.3
// publisher's POST, ffserver's feed file) parsed and written back byte for byte; packets written
// by encodeFfmPackets demuxed back under any chunking; truncation, desync and limits.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { FeedcastError, MalformedInputError, UnsupportedError } from '../../errors.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { fixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { lengthPrefixedToAnnexB } from '../h264/nal.js';
import { FfmDemuxer } from './ffm-demuxer.js';
import {
  encodeFfmHeader,
  ffmCodecName,
  ffmHeaderLength,
  ffmOption,
  FFM_CODEC_IDS,
  FFM_PACKET_SIZE,
  parseFfmHeader,
  type FfmHeader,
} from './ffm-header.js';
import { encodeFfmPackets, FFM_PACKET_HEADER_BYTES, type FfmFrameInput } from './ffm-packet.js';

const FIXTURES = new URL('../../../test/fixtures/', import.meta.url);
const fixture = (name: string): Buffer => readFileSync(new URL(name, FIXTURES));
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

/** The body of ffserver's answer to the publisher's GET (after its 79-byte HTTP head). */
const SERVER_HEADER = ((): Buffer => {
  const answer = fixture('ffserver-ffm-get-answer.bin');
  return answer.subarray(answer.indexOf('\r\n\r\n') + 4);
})();

/** The body of the captured POST: the chunked encoding removed (the capture ends inside a chunk-size line). */
export function dechunk(request: Buffer): Buffer {
  let i = request.indexOf('\r\n\r\n') + 4;
  const parts: Buffer[] = [];
  while (i < request.length) {
    const eol = request.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = parseInt(request.subarray(i, eol).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(request.subarray(eol + 2, Math.min(request.length, eol + 2 + size)));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
const POST_BODY = dechunk(fixture('ffmpeg33-ffm-post.bin'));

interface Output {
  tracks: Track[];
  frames: Frame[];
  warnings: string[];
}

function demux(chunks: readonly Buffer[]): Output {
  const out: Output = { tracks: [], frames: [], warnings: [] };
  const d = new FfmDemuxer({
    onTracks: (t) => (out.tracks = [...t]),
    onFrame: (f) => out.frames.push(f),
    onWarning: (w) => out.warnings.push(w),
  });
  for (const c of chunks) d.push(c);
  d.end();
  return out;
}

function cut(buf: Buffer, at: readonly number[]): Buffer[] {
  const points = [...new Set(at.map((p) => p % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

describe('FFM2 header', () => {
  it("parses ffserver's answer to the publisher's GET (Appendix A.1/A.3) and writes it back byte for byte", () => {
    assert.equal(SERVER_HEADER.length, FFM_PACKET_SIZE);
    const header = parseFfmHeader(SERVER_HEADER);
    assert.equal(header.writeIndex, 0);
    assert.deepEqual(
      header.streams.map((s) => `${ffmCodecName(s.codecId)}:${s.kind}:${s.bitRate}`),
      [
        'mp3:audio:128000',
        'flv1:video:800000',
        'mp2:audio:128000',
        'mpeg1video:video:800000',
        'wmav2:audio:128000',
        'msmpeg4v3:video:800000',
        'aac:audio:128000',
        'mpeg4:video:800000',
        'mp2:audio:96000',
        'mpeg1video:video:600000',
        'mjpeg:video:4000000',
      ],
    );
    const flv = header.streams[1];
    assert.ok(flv !== undefined);
    assert.equal(ffmOption(flv, 'video_size'), '640x360');
    assert.equal(ffmOption(flv, 'time_base'), '1/25');
    assert.deepEqual(flv.privateOptions, [['rc_eq', 'tex^qComp']]);
    assert.deepEqual(header.streams[0]?.options, [
      ['b', '128000'],
      ['ac', '2'],
      ['ar', '44100'],
    ]);
    assert.deepEqual(encodeFfmHeader(header), SERVER_HEADER);
  });

  it("parses an ffmpeg 3.3 publisher's own header (extradata for AAC and WMAv2) and writes it back", () => {
    const block = POST_BODY.subarray(0, FFM_PACKET_SIZE);
    assert.equal(ffmHeaderLength(block), FFM_PACKET_SIZE);
    const header = parseFfmHeader(block);
    assert.equal(header.streams.length, 11);
    const aac = header.streams[6];
    assert.equal(aac?.codecId, FFM_CODEC_IDS.aac);
    assert.deepEqual(aac?.extradata, hex('121056e500'));
    assert.equal(header.streams[4]?.extradata?.length, 10);
    assert.equal(ffmOption(header.streams[3] ?? assert.fail(), 'has_b_frames'), '1');
    assert.deepEqual(encodeFfmHeader(header), block);
  });

  it('reads the header of a feed file ffserver wrote (write index kept)', () => {
    const header = parseFfmHeader(fixture('ffserver-feed1-head.ffm').subarray(0, FFM_PACKET_SIZE));
    assert.equal(header.writeIndex, 0x2ac000);
    assert.equal(header.streams.length, 11);
  });

  it('a hand-written header: one MP2 stream', () => {
    const bytes = Buffer.concat([
      hex('46464d32'), // "FFM2"
      hex('00001000'), // packet size 4096
      hex('0000000000000000'), // write index
      hex('4d41494e 00000008'), // "MAIN", 8 bytes
      hex('00000001 0001f400'), // 1 stream, 128000 bit/s in total
      hex('434f4d4d 00000015'), // "COMM", 21 bytes
      hex('00015000'), // codec id 0x15000 (mp2)
      hex('01'), // audio
      hex('0001f400'), // 128000 bit/s
      hex('00000000 00000000 00000000'), // flags, flags2, debug
      hex('53324155 0000000e'), // "S2AU", 14 bytes
      Buffer.from('ar=44100,ac=2\0', 'latin1'), // AVOptions, NUL-terminated
      hex('00000000 00000000'), // end of the chunk list
    ]);
    const block = Buffer.concat([bytes, Buffer.alloc(FFM_PACKET_SIZE - bytes.length)]);
    const header = parseFfmHeader(block);
    const expected: FfmHeader = {
      writeIndex: 0,
      streams: [
        {
          codecId: FFM_CODEC_IDS.mp2,
          kind: 'audio',
          bitRate: 128000,
          flags: 0,
          options: [
            ['ar', '44100'],
            ['ac', '2'],
          ],
        },
      ],
    };
    assert.deepEqual(header, expected);
    assert.deepEqual(encodeFfmHeader(expected), block);
  });

  it('cut anywhere, the header needs more bytes (malformed if parsed) until its chunk list ends; never another error', () => {
    for (const source of [SERVER_HEADER, POST_BODY.subarray(0, FFM_PACKET_SIZE)]) {
      const whole = parseFfmHeader(source);
      let complete = 0;
      for (let n = 0; n <= 1500; n++) {
        const part = source.subarray(0, n);
        const length = ffmHeaderLength(part);
        if (length === undefined) {
          assert.throws(() => parseFfmHeader(part), MalformedInputError, `cut at ${n}`);
        } else {
          assert.equal(length, FFM_PACKET_SIZE);
          assert.deepEqual(parseFfmHeader(part), whole, `cut at ${n}: the chunk list is whole`);
          complete++;
        }
      }
      assert.ok(complete > 0 && complete < 1500);
    }
  });

  it('refuses other magics, FFM1, other packet sizes and endless chunk lists with a precise error', () => {
    assert.throws(() => ffmHeaderLength(Buffer.from('FLV\x01xxxx')), /ffm: magic is "FLV\\u0001", not "FFM2"/);
    assert.throws(() => ffmHeaderLength(Buffer.from('FFM1\0\0\x10\0')), UnsupportedError);
    const odd = Buffer.from(SERVER_HEADER);
    odd.writeUInt32BE(2048, 4);
    assert.throws(() => ffmHeaderLength(odd), /packet size is 2048, only 4096 is valid/);
    const endless = Buffer.alloc(20 * FFM_PACKET_SIZE, 0x41); // chunks "AAAA" of 0x41414141 bytes
    endless.write('FFM2', 0, 'latin1');
    endless.writeUInt32BE(FFM_PACKET_SIZE, 4);
    assert.throws(() => ffmHeaderLength(endless), /chunk list does not end within 65536 bytes/);
    const many = Buffer.from(SERVER_HEADER);
    many.writeUInt32BE(100_000, 24); // MAIN nb_streams
    assert.throws(() => parseFfmHeader(many), /MAIN declares 100000 streams \(limit 64\)/);
  });
});

/** Two streams whose frames pass through unchanged: MJPEG video and AC-3 audio. */
const PASSTHROUGH_HEADER: FfmHeader = {
  writeIndex: 0,
  streams: [
    { codecId: FFM_CODEC_IDS.mjpeg, kind: 'video', bitRate: 1_000_000, flags: 0, options: [['video_size', '64x48']] },
    {
      codecId: FFM_CODEC_IDS.ac3,
      kind: 'audio',
      bitRate: 96_000,
      flags: 0,
      options: [
        ['ar', '48000'],
        ['ac', '2'],
      ],
    },
  ],
};
const T0 = 1_795_462_096_225_614; // µs, a wall clock as ffmpeg writes it (Appendix A.4)

const frameArb = fc.record({
  streamIndex: fc.integer({ min: 0, max: 1 }),
  size: fc.integer({ min: 0, max: 9000 }),
  fill: fc.integer({ min: 0, max: 255 }),
  delta: fc.constantFrom(0, 0, 40_000),
});

function inputsOf(specs: ReadonlyArray<{ streamIndex: number; size: number; fill: number; delta: number }>): FfmFrameInput[] {
  // The first frame is a video keyframe (video before it would be dropped); times rise by 10 ms.
  return [{ streamIndex: 0, size: 100, fill: 1, delta: 0 }, ...specs].map((s, i) => ({
    streamIndex: s.streamIndex,
    keyframe: true,
    pts: T0 + i * 10_000 + s.delta,
    dts: T0 + i * 10_000,
    duration: 10_000,
    data: Buffer.alloc(s.size, s.fill),
  }));
}

describe('FFM2 packets and the demuxer', () => {
  it('every frame comes back, in order, whatever the chunking, with times relative to the first in 90 kHz', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 20 }), (specs, cuts) => {
        const inputs = inputsOf(specs);
        const body = Buffer.concat([encodeFfmHeader(PASSTHROUGH_HEADER), encodeFfmPackets(inputs)]);
        const out = demux(cut(body, cuts));
        assert.deepEqual(
          out.tracks.map((t) => `${t.id}:${t.codec}`),
          ['0:mjpeg', '1:ac3'],
        );
        assert.equal(out.frames.length, inputs.length);
        out.frames.forEach((f, i) => {
          const input = inputs[i] as FfmFrameInput;
          assert.equal(f.trackId, input.streamIndex);
          assert.ok(f.data.equals(input.data), `frame ${i} data`);
          assert.equal(f.dts90k, i * 900);
          assert.equal(f.pts90k, i * 900 + ((input.pts - (input.dts ?? input.pts)) * 9) / 100);
        });
        assert.deepEqual(out.warnings, []);
      }),
      { numRuns: 60 },
    );
  });

  it('packets follow the format: "fm", fill size only in the last, frame offsets and dts of the first frame starting in each', () => {
    const inputs = inputsOf([
      { streamIndex: 1, size: 5000, fill: 2, delta: 0 },
      { streamIndex: 0, size: 3, fill: 3, delta: 0 },
    ]);
    const packets = encodeFfmPackets(inputs);
    assert.equal(packets.length % FFM_PACKET_SIZE, 0);
    const first = packets.subarray(0, FFM_PACKET_HEADER_BYTES);
    assert.deepEqual(first.subarray(0, 4), hex('666d 0000')); // "fm", no fill
    assert.equal(first.readUInt16BE(12), 0x8000 | FFM_PACKET_HEADER_BYTES); // first packet, frame at byte 14
    assert.equal(Number(first.readBigUInt64BE(4)), T0);
    const second = packets.subarray(FFM_PACKET_SIZE, FFM_PACKET_SIZE + FFM_PACKET_HEADER_BYTES);
    // Frames 0 (16 + 100 bytes) and 1 (16 + 5000) fill packet 1; frame 2 starts in packet 2.
    const frame2At = FFM_PACKET_HEADER_BYTES + (16 + 100 + 16 + 5000 - (FFM_PACKET_SIZE - FFM_PACKET_HEADER_BYTES));
    assert.equal(second.readUInt16BE(12), frame2At);
    assert.equal(second.readUInt16BE(2), FFM_PACKET_SIZE - frame2At - 16 - 3); // fill
    assert.equal(Number(second.readBigUInt64BE(4)), T0 + 20_000);
  });

  it('cut at every offset, a stream ends cleanly: no error but FeedcastError, frames only whole', () => {
    const inputs = inputsOf([
      { streamIndex: 1, size: 5000, fill: 2, delta: 0 },
      { streamIndex: 0, size: 300, fill: 3, delta: 40_000 },
    ]);
    const body = Buffer.concat([encodeFfmHeader(PASSTHROUGH_HEADER), encodeFfmPackets(inputs)]);
    for (let n = 0; n <= body.length; n += 7) {
      try {
        const out = demux([body.subarray(0, n)]);
        for (const f of out.frames) assert.ok(inputs.some((i) => i.data.length === f.data.length));
      } catch (err) {
        assert.ok(err instanceof FeedcastError, `cut at ${n}: ${String(err)}`);
      }
    }
  });

  it('a packet without "fm" or with a frame offset that disagrees is a desynchronized stream', () => {
    const inputs = inputsOf([
      { streamIndex: 1, size: 5000, fill: 2, delta: 0 },
      { streamIndex: 0, size: 300, fill: 3, delta: 0 },
    ]);
    const body = Buffer.concat([encodeFfmHeader(PASSTHROUGH_HEADER), encodeFfmPackets(inputs)]);
    const noSync = Buffer.from(body);
    noSync.write('xx', 2 * FFM_PACKET_SIZE, 'latin1');
    assert.throws(
      () => demux([noSync]),
      (err: unknown) =>
        err instanceof MalformedInputError &&
        err.offset === 2 * FFM_PACKET_SIZE &&
        /data packet 1 starts with 0x7878, not "fm": the stream is desynchronized/.test(err.message),
    );
    const badOffset = Buffer.from(body);
    badOffset.writeUInt16BE(100, 2 * FFM_PACKET_SIZE + 12);
    assert.throws(
      () => demux([badOffset]),
      /data packet 1 says its first frame starts at byte 100, but the frames before it end at byte \d+/,
    );
    const badStream = Buffer.from(body);
    badStream[FFM_PACKET_SIZE + FFM_PACKET_HEADER_BYTES] = 7;
    assert.throws(() => demux([badStream]), /frame for stream 7, the header declares 2 streams/);
    const huge = Buffer.from(body);
    huge.writeUIntBE(0xffffff, FFM_PACKET_SIZE + FFM_PACKET_HEADER_BYTES + 2, 3);
    assert.throws(() => demux([huge]), /declares 16777215 bytes \(limit 8388608\)/);
  });

  it('demuxes the captured ffmpeg 3.3 POST: carried streams become tracks, the others are named once and skipped', () => {
    const out = demux(cut(POST_BODY, [1, 4095, 4097, 9000, 30_000]));
    assert.deepEqual(
      out.tracks.map((t) => `${t.id}:${t.codec}:${t.width ?? t.sampleRate ?? ''}`),
      ['0:mp3:44100', '2:mp2:44100', '3:mpeg1video:640', '6:aac:44100', '8:mp2:44100', '9:mpeg1video:640', '10:mjpeg:640'],
    );
    assert.deepEqual(out.tracks.find((t) => t.codec === 'aac')?.config, hex('121056e500'));
    assert.equal(
      out.warnings.filter((w) => w.includes('skipping')).join('|'),
      'ffm: skipping 4 of 11 streams, in codecs Feedcast does not carry: #1 flv1, #4 wmav2, #5 msmpeg4v3, #7 mpeg4',
    );
    const video = out.frames.filter((f) => f.trackId === 3);
    assert.deepEqual(
      video.map((f) => [f.keyframe, f.dts90k, f.pts90k, f.data.length]),
      [
        [true, 0, 3600, 11857], // I picture, pts one frame after dts (has_b_frames=1, Appendix A.4)
        [false, 3600, 7200, 5571],
      ],
    );
    assert.equal(video[0]?.data.subarray(0, 4).toString('hex'), '000001b3'); // sequence header first
  });

  it('H.264 in Annex B without extradata (ffmpeg 3.x with libx264): SPS/PPS from the first keyframe make the avcC', () => {
    const { tracks, frames } = fixtureFrames('h264-aac.ts');
    const h264 = tracks.find((t) => t.codec === 'h264');
    assert.ok(h264 !== undefined);
    const video = frames.filter((f) => f.trackId === h264.id).slice(0, 30);
    const header: FfmHeader = {
      writeIndex: 0,
      streams: [{ codecId: FFM_CODEC_IDS.h264, kind: 'video', bitRate: 0, flags: 0, options: [['b', '150000']] }],
    };
    const inputs = video.map((f) => ({
      streamIndex: 0,
      keyframe: f.keyframe,
      pts: T0 + Math.round((f.pts90k * 100) / 9),
      dts: T0 + Math.round((f.dts90k * 100) / 9),
      data: lengthPrefixedToAnnexB(f.data),
    }));
    const out = demux([encodeFfmHeader(header), encodeFfmPackets(inputs)]);
    assert.deepEqual(
      out.tracks.map((t) => [t.codec, t.width, t.height]),
      [['h264', 320, 240]],
    );
    assert.deepEqual(out.tracks[0]?.config, h264.config);
    assert.equal(out.frames.length, video.length);
    out.frames.forEach((f, i) =>
      assert.ok(f.data.equals((video[i] as Frame).data), `frame ${i}: the same length-prefixed NAL units`),
    );
  });

  it('a header whose streams are all in codecs Feedcast does not carry is refused as unsupported', () => {
    const header: FfmHeader = {
      writeIndex: 0,
      streams: [{ codecId: FFM_CODEC_IDS.flv1, kind: 'video', bitRate: 0, flags: 0, options: [['b', '1']] }],
    };
    assert.throws(
      () => demux([encodeFfmHeader(header)]),
      (err: unknown) => err instanceof UnsupportedError && /none of the 1 streams/.test(err.message),
    );
  });
});
