// The raw-output framers on real ffmpeg output captured at test time (tiny encodes): the pieces
// reassemble to the input, any chunking (every cut offset, random splits) gives the same pieces,
// join points fall where a decoder can start, and random bytes only ever throw MalformedInputError.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { MalformedInputError } from '../../errors.js';
import { framerFor, readVint, survivesRestart, type RawFramer, type RawPiece } from './framers.js';

const FFMPEG = process.env['FEEDCAST_FFMPEG'] ?? 'ffmpeg';
const haveFfmpeg = spawnSync(FFMPEG, ['-version'], { stdio: 'ignore' }).status === 0;

const VIDEO = ['-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10'];
const AUDIO = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100'];

/** Per format: the ffmpeg output options (after the lavfi inputs) that make a short capture. */
const CAPTURES: Record<string, { inputs: string[]; args: string[] }> = {
  mjpeg: { inputs: VIDEO, args: ['-frames:v', '4', '-c:v', 'mjpeg', '-f', 'mjpeg'] },
  webm: {
    inputs: [...VIDEO, ...AUDIO],
    args: [
      ...['-t', '1.5', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-g', '5', '-c:a', 'libopus'],
      ...['-f', 'webm', '-live', '1', '-cluster_time_limit', '200'],
    ],
  },
  mp4: {
    inputs: [...VIDEO, ...AUDIO],
    args: [
      ...['-t', '1.5', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '5', '-c:a', 'aac'],
      ...['-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4'],
    ],
  },
  mp3: { inputs: AUDIO, args: ['-t', '0.5', '-c:a', 'libmp3lame', '-id3v2_version', '0', '-write_xing', '0', '-f', 'mp3'] },
  // Issue 18: a stream's Title/Author in an ID3v2 tag before the first frame, the header of every reader.
  'mp3+id3': {
    inputs: AUDIO,
    args: [
      ...['-t', '0.5', '-c:a', 'libmp3lame', '-id3v2_version', '3', '-write_xing', '0'],
      ...['-metadata', 'title=Radio One', '-metadata', 'artist=Me', '-f', 'mp3'],
    ],
  },
  adts: { inputs: AUDIO, args: ['-t', '0.5', '-c:a', 'aac', '-f', 'adts'] },
  ogg: {
    inputs: [...VIDEO, ...AUDIO],
    args: ['-t', '1.5', '-c:v', 'libtheora', '-g', '5', '-c:a', 'libvorbis', '-f', 'ogg'],
  },
  mpeg: {
    inputs: [...VIDEO, ...AUDIO],
    args: ['-t', '1', '-c:v', 'mpeg1video', '-strict', 'unofficial', '-g', '5', '-c:a', 'mp2', '-f', 'mpeg'],
  },
  mpeg1video: { inputs: VIDEO, args: ['-t', '1', '-c:v', 'mpeg1video', '-strict', 'unofficial', '-g', '5', '-f', 'mpeg1video'] },
  // ffserver's legacy formats (issue 27), with their default codecs, as a pipe gets them.
  asf: {
    inputs: [...VIDEO, ...AUDIO],
    args: ['-t', '1.5', '-c:v', 'msmpeg4', '-g', '5', '-c:a', 'wmav2', '-f', 'asf_stream'],
  },
  avi: {
    inputs: [...VIDEO, ...AUDIO],
    args: ['-t', '1.5', '-c:v', 'mpeg4', '-g', '5', '-c:a', 'libmp3lame', '-f', 'avi'],
  },
  rm: {
    inputs: ['-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10', ...AUDIO],
    args: ['-t', '1.5', '-c:v', 'rv10', '-g', '5', '-c:a', 'ac3', '-f', 'rm'],
  },
  flv: {
    inputs: [...VIDEO, ...AUDIO],
    args: [
      '-t',
      '1.5',
      '-c:v',
      'flv',
      '-g',
      '5',
      '-c:a',
      'libmp3lame',
      '-ar',
      '44100',
      '-f',
      'flv',
      '-flvflags',
      'no_duration_filesize',
    ],
  },
  swf: {
    inputs: [...VIDEO, ...AUDIO],
    args: ['-t', '1.5', '-c:v', 'flv', '-g', '5', '-c:a', 'libmp3lame', '-ar', '44100', '-f', 'swf'],
  },
};

const captured = new Map<string, Buffer>();

function capture(format: string): Buffer {
  const spec = CAPTURES[format];
  assert.ok(spec !== undefined);
  const r = spawnSync(FFMPEG, ['-hide_banner', '-v', 'error', ...spec.inputs, ...spec.args, '-'], {
    maxBuffer: 16 * 1024 * 1024,
  });
  assert.equal(r.status, 0, `ffmpeg ${format}: ${r.stderr.toString()}`);
  return r.stdout;
}

function input(format: string): Buffer {
  const b = captured.get(format);
  assert.ok(b !== undefined && b.length > 0, `no capture for ${format}`);
  return b;
}

function framer(format: string): RawFramer {
  const f = framerFor(format === 'mjpeg' ? 'mpjpeg' : format === 'mp3+id3' ? 'mp3' : format);
  assert.ok(f !== undefined);
  return f;
}

/** Pushes `data` cut at `cuts` (sorted offsets) and returns the pieces and the framer. */
function run(format: string, data: Buffer, cuts: readonly number[]): { pieces: RawPiece[]; f: RawFramer } {
  const f = framer(format);
  const pieces: RawPiece[] = [];
  let at = 0;
  for (const cut of [...cuts, data.length]) {
    if (cut < at) continue;
    pieces.push(...f.push(data.subarray(at, cut)));
    at = cut;
  }
  return { pieces, f };
}

function summary(pieces: readonly RawPiece[]): string[] {
  return pieces.map((p) => `${p.data.length}:${p.joinable ? 'J' : '-'}:${p.data.subarray(0, 8).toString('hex')}`);
}

describe('framers on real ffmpeg output', { skip: haveFfmpeg ? false : 'ffmpeg not installed' }, () => {
  before(() => {
    for (const format of Object.keys(CAPTURES)) captured.set(format, capture(format));
  });

  for (const format of Object.keys(CAPTURES)) {
    test(`${format}: header + pieces are the input (up to the last complete piece), with join points`, () => {
      const data = input(format);
      const { pieces, f } = run(format, data, []);
      const header = f.header();
      assert.ok(header !== undefined, 'the header has been seen');
      const joined = Buffer.concat([header, ...pieces.map((p) => p.data)]);
      if (format === 'asf') {
        // Each ASF unit lost its 12-byte MMS chunk header; the $E end chunk is dropped.
        assert.equal(joined.length + 12 * (pieces.length + 2), data.length, 'pieces are the unframed input');
      } else {
        assert.ok(joined.equals(data.subarray(0, joined.length)), 'pieces are contiguous input bytes');
        assert.ok(joined.length > data.length * 0.6, `${joined.length} of ${data.length} bytes framed`);
      }
      assert.ok(pieces.length >= 3, `${pieces.length} pieces`);
      assert.ok(
        pieces.some((p) => p.joinable),
        'at least one join point',
      );
      if (format === 'mjpeg') {
        assert.equal(pieces.length, 4);
        for (const p of pieces) {
          assert.equal(p.data.readUInt16BE(0), 0xffd8);
          assert.equal(p.data.readUInt16BE(p.data.length - 2), 0xffd9);
        }
      }
      if (format === 'mp3+id3') {
        assert.equal(header.subarray(0, 3).toString('latin1'), 'ID3');
        assert.ok(header.includes('Radio One'), 'the title is in the header');
        assert.equal(pieces[0]?.data.readUInt16BE(0).toString(16).slice(0, 3), 'fff', 'the first piece is a frame');
      }
      if (format === 'mp3') assert.equal(header.length, 0, 'no ID3 tag, no header');
      if (format === 'mp3' || format === 'mp3+id3' || format === 'adts')
        assert.ok(
          pieces.every((p) => p.joinable),
          'every audio frame is a join point',
        );
      if (format === 'mpeg1video') {
        for (const p of pieces)
          assert.equal(p.joinable, p.data.readUInt32BE(0) === 0x1b3, 'join points start with a sequence header');
      }
      if (format === 'mp4') {
        assert.equal(header.subarray(4, 8).toString('latin1'), 'ftyp');
        for (const p of pieces) assert.ok(p.data.includes('moof') && p.data.includes('mdat'));
      }
      if (format === 'webm') {
        for (const p of pieces) assert.equal(p.data.readUInt32BE(0), 0x1f43b675, 'each piece is a Cluster');
      }
      if (format === 'mpeg') {
        for (const p of pieces) assert.equal(p.data.readUInt32BE(0), 0x1ba, 'each piece is a pack');
      }
      if (format === 'asf') {
        // The MMS framing is gone: plain ASF, Header Object first, fixed-size data packets.
        assert.equal(header.subarray(0, 4).toString('hex'), '3026b275');
        assert.equal(new Set(pieces.map((p) => p.data.length)).size, 1, 'fixed-size packets');
        assert.ok(
          pieces.some((p) => !p.joinable),
          'not every packet starts a key frame',
        );
      }
      if (format === 'avi') {
        assert.equal(header.subarray(header.length - 4).toString('latin1'), 'movi');
        for (const p of pieces) assert.match(p.data.subarray(0, 4).toString('latin1'), /^(\d\d(dc|wb)|JUNK|idx1|ix\d\d)$/);
        assert.equal(pieces.filter((p) => p.joinable).length, 3, 'one key frame every 5 of 15 pictures');
      }
      if (format === 'rm') {
        assert.equal(header.subarray(header.length - 18, header.length - 14).toString('latin1'), 'DATA');
        assert.equal(pieces.filter((p) => p.joinable).length, 3, 'one key frame every 5 of 15 pictures');
      }
      if (format === 'flv') {
        assert.equal(header.subarray(0, 3).toString('latin1'), 'FLV');
        assert.equal(pieces.filter((p) => p.joinable).length, 3, 'one key frame every 5 of 15 pictures');
      }
      if (format === 'swf') {
        assert.equal(header.subarray(0, 3).toString('latin1'), 'FWS');
        assert.equal(pieces.filter((p) => p.joinable).length, 3, 'one key frame every 5 of 15 pictures');
      }
      if (format === 'ogg') {
        for (const p of pieces) assert.equal(p.data.subarray(0, 4).toString('latin1'), 'OggS');
      }
    });

    test(`${format}: a cut at any offset gives the same pieces`, () => {
      const data = input(format);
      const whole = summary(run(format, data, []).pieces);
      // Every offset of the first 3 KiB (headers, first pieces), then every 61st byte.
      for (let cut = 1; cut < data.length; cut += cut < 3072 ? 1 : 61) {
        assert.deepEqual(summary(run(format, data, [cut]).pieces), whole, `cut at ${cut}`);
      }
    });

    test(`${format}: random chunkings give the same pieces`, () => {
      const data = input(format);
      const whole = summary(run(format, data, []).pieces);
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 0, max: data.length }), { maxLength: 40 }), (cuts) => {
          assert.deepEqual(
            summary(
              run(
                format,
                data,
                [...cuts].sort((a, b) => a - b),
              ).pieces,
            ),
            whole,
          );
        }),
        { numRuns: 40 },
      );
    });
  }
});

const ALL_FORMATS = ['mpjpeg', 'webm', 'mp4', 'mp3', 'adts', 'ogg', 'mpeg', 'mpeg1video', 'asf', 'avi', 'rm', 'swf', 'flv'];

test('random bytes only ever throw MalformedInputError', () => {
  for (const format of ALL_FORMATS) {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.integer({ min: 1, max: 64 }), (bytes, step) => {
        const f = framerFor(format);
        assert.ok(f !== undefined);
        const data = Buffer.from(bytes);
        try {
          for (let at = 0; at < data.length; at += step) f.push(data.subarray(at, at + step));
        } catch (err) {
          assert.ok(err instanceof MalformedInputError, `${format}: ${String(err)}`);
        }
      }),
      { numRuns: 300 },
    );
  }
});

test('plausible headers with hostile sizes are refused, not buffered without bound', () => {
  // An MP4 box declaring 4 GiB, an EBML element of 2^48 bytes, an unknown-size Cluster.
  const box = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x6d, 0x6f, 0x6f, 0x76]);
  assert.throws(() => framerFor('mp4')?.push(box), MalformedInputError);
  const ebml = Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => framerFor('webm')?.push(ebml), /exceeds the limit/);
  const unknownCluster = Buffer.from([0x1f, 0x43, 0xb6, 0x75, 0xff]);
  assert.throws(() => framerFor('webm')?.push(unknownCluster), /unknown size/);
  // An ADTS frame length below its own header.
  assert.throws(
    () => framerFor('adts')?.push(Buffer.from([0xff, 0xf1, 0x50, 0x80, 0x00, 0x1f, 0xfc])),
    /shorter than its header/,
  );
});

test('readVint: lengths, markers and the all-ones unknown size (RFC 8794 4)', () => {
  assert.deepEqual(readVint(Buffer.from([0x81]), 0, false), { value: 1, length: 1, unknown: false });
  assert.deepEqual(readVint(Buffer.from([0x40, 0x02]), 0, false), { value: 2, length: 2, unknown: false });
  assert.deepEqual(readVint(Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), 0, true), { value: 0x1a45dfa3, length: 4, unknown: false });
  assert.equal(readVint(Buffer.from([0xff]), 0, false)?.unknown, true);
  assert.equal(readVint(Buffer.from([0x40]), 0, false), undefined, 'needs more bytes');
  assert.throws(() => readVint(Buffer.from([0x00]), 0, false), MalformedInputError);
});

test('which formats go on across an ffmpeg restart', () => {
  assert.deepEqual(
    ALL_FORMATS.filter((f) => survivesRestart(f)),
    ['mpjpeg', 'mp3', 'adts', 'mpeg', 'mpeg1video'],
  );
  assert.equal(framerFor('mpegts'), undefined);
});
