// FeedFile format: header and block round trips (bytes with a comment per field), track lists,
// records spanning blocks, CRC failures, truncation at every offset, foreign files, and fuzzing.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FeedcastError, MalformedInputError, UnsupportedError } from '../errors.js';
import { ByteReader } from '../formats/bytes/byte-reader.js';
import type { Frame } from '../media/frame.js';
import { AUDIO, payload, VIDEO } from '../../test/helpers/feedfile-fixtures.js';
import {
  BLOCK_HEADER_BYTES,
  BlockEncoder,
  BlockFlag,
  crc32,
  encodeFrameRecord,
  encodeHeader,
  encodeTracks,
  encodeTracksRecord,
  geometryFor,
  identify,
  parseBlock,
  parseHeader,
  parseTracks,
  payloadCapacity,
  RecordAssembler,
  RecordType,
  type FeedRecord,
  type FileHeader,
} from './format.js';

const G = geometryFor(64 * 1024, 4096);

const HEADER: FileHeader = {
  version: 1,
  ...G,
  fileId: 0x01020304,
  generation: 7,
  createdAtMs: 1_700_000_000_000,
  checkpointSeq: 42,
  checkpointWallMs: 1_700_000_100_000,
  baseSeq: 0,
  tracks: [VIDEO, AUDIO],
  tracksOmitted: false,
};

test('geometry: header blocks, data blocks, refuses a ring of fewer than 2 blocks', () => {
  assert.deepEqual(G, { blockSize: 4096, headerBlocks: 2, dataBlocks: 14 });
  assert.equal(payloadCapacity(G), 4096 - 64);
  assert.throws(() => geometryFor(16 * 1024 - 1), UnsupportedError);
  assert.deepEqual(geometryFor(16 * 1024), { blockSize: 4096, headerBlocks: 2, dataBlocks: 2 });
});

test('CRC-32 is the IEEE one (zlib/gzip): "123456789" -> 0xCBF43926', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('header copy: bytes field by field, round trip', () => {
  const bytes = encodeHeader(HEADER, 1);
  assert.equal(bytes.length, 4096);
  assert.equal(bytes.subarray(0, 8).toString('latin1'), 'FEEDCAST'); // magic
  assert.equal(bytes.readUInt16BE(8), 1); // version
  assert.equal(bytes.readUInt16BE(10), 1); // copy index
  assert.equal(bytes.readUInt32BE(12), 4096); // block size
  assert.equal(bytes.readUInt32BE(16), 2); // header blocks
  assert.equal(bytes.readUInt32BE(20), 14); // data blocks
  assert.equal(bytes.readUInt32BE(24), 0x01020304); // file id
  assert.equal(bytes.readUInt32BE(28), 0); // flags
  assert.equal(bytes.readUInt32BE(36), 7); // generation (low half)
  assert.equal(bytes.readUInt32BE(52), 42); // checkpoint seq (low half)
  const n = bytes.readUInt32BE(72); // track list length
  assert.deepEqual(bytes.subarray(76, 76 + n), encodeTracks([VIDEO, AUDIO]));
  assert.equal(bytes.readUInt32BE(76 + n), crc32(bytes, 0, 76 + n)); // CRC
  assert.ok(bytes.subarray(80 + n).every((b) => b === 0)); // padding
  assert.deepEqual(parseHeader(bytes), HEADER);
});

test('header: a flipped byte fails the CRC, another version is UnsupportedError, foreign magic refused', () => {
  const bytes = encodeHeader(HEADER, 0);
  const flipped = Buffer.from(bytes);
  flipped[60] = (flipped[60] as number) ^ 1;
  assert.throws(() => parseHeader(flipped), /header CRC/);
  const v2 = Buffer.from(bytes);
  v2.writeUInt16BE(2, 8);
  assert.throws(
    () => parseHeader(v2),
    (e) => e instanceof UnsupportedError && /version 2/.test(e.message),
  );
  const ffm = Buffer.from(bytes);
  ffm.write('FFM2', 0, 'latin1');
  assert.equal(identify(ffm), 'ffm');
  assert.throws(() => parseHeader(ffm), MalformedInputError);
  assert.equal(identify(Buffer.from('GIF89a......')), 'foreign');
  assert.equal(identify(Buffer.alloc(0)), 'empty');
  assert.equal(identify(bytes), 'feedcast');
});

test('header: cut at every offset gives MalformedInputError, never another exception', () => {
  const bytes = encodeHeader(HEADER, 0);
  const used = 80 + bytes.readUInt32BE(72);
  for (let cut = 0; cut < used; cut++) {
    assert.throws(() => parseHeader(bytes.subarray(0, cut)), MalformedInputError, `cut at ${cut}`);
  }
});

test('track list: round trip of every field, unknown codec refused', () => {
  const tracks = [VIDEO, AUDIO, { id: 5, kind: 'audio' as const, codec: 'mp3' as const }];
  assert.deepEqual(parseTracks(new ByteReader(encodeTracks(tracks), 'feedfile')), tracks);
  const bad = encodeTracks([{ id: 0, kind: 'video', codec: 'h264' }]);
  bad.write('x', 4, 'latin1'); // codec name "x264"
  assert.throws(() => parseTracks(new ByteReader(bad, 'feedfile')), /unknown codec/);
});

function frame(i: number, size: number, keyframe = false, trackId = 0): Frame {
  return { trackId, dts90k: i * 3600, pts90k: i * 3600 + 3600, keyframe, data: payload(i, size) };
}

/** Encodes records into blocks (the last partial block as a snapshot). */
function encode(records: { pieces: Buffer[]; dts: number; join: boolean }[], firstSeq = 0): Buffer[] {
  const enc = new BlockEncoder(G, 0x01020304, firstSeq);
  const blocks: Buffer[] = [];
  for (const r of records) blocks.push(...enc.append(r.pieces, { dts90k: r.dts, wallMs: 1000 + r.dts / 90, join: r.join }));
  const tail = enc.snapshot();
  if (tail !== undefined) blocks.push(tail);
  return blocks;
}

function decodeAll(blocks: Buffer[]): FeedRecord[] {
  const asm = new RecordAssembler();
  const out: FeedRecord[] = [];
  blocks.forEach((b, i) => {
    const h = parseBlock(b, 0, G.blockSize);
    const end = BLOCK_HEADER_BYTES + h.payloadLength;
    if (i === 0) asm.start(b.subarray(h.firstRecordOffset, end));
    else asm.append(b.subarray(BLOCK_HEADER_BYTES, end));
    for (let r = asm.next(); r !== undefined; r = asm.next()) out.push(r);
  });
  return out;
}

test('blocks: frames spanning several blocks round trip; block headers point at record starts and join points', () => {
  const frames = [frame(0, 10_000, true), frame(1, 100), frame(2, 5000), frame(3, 1), frame(4, 0)];
  const records = [
    { pieces: encodeTracksRecord([VIDEO], true, 0, 1000), dts: 0, join: true },
    ...frames.map((f) => ({ pieces: encodeFrameRecord(f, f.dts90k), dts: f.dts90k, join: false })),
  ];
  const blocks = encode(records, 100);
  const headers = blocks.map((b) => parseBlock(b, 0, G.blockSize));
  assert.deepEqual(
    headers.map((h) => h.seq),
    blocks.map((_, i) => 100 + i),
  );
  const first = headers[0]!;
  assert.equal(first.firstRecordOffset, BLOCK_HEADER_BYTES);
  assert.equal(first.keyOffset, BLOCK_HEADER_BYTES);
  assert.equal(first.flags, BlockFlag.key | BlockFlag.discontinuity);
  assert.equal(headers[1]!.firstRecordOffset, 0, 'the second block only continues the keyframe');
  assert.equal(headers[1]!.dts90k, 0, 'dts carried over');
  assert.equal(first.keyBack, 0xffffffff, 'no join point before the first block');
  assert.equal(headers[2]!.keyBack, 2, 'back pointer to the block holding the join point');
  const decoded = decodeAll(blocks);
  assert.equal(decoded.length, 6);
  const t = decoded[0]!;
  assert.ok(t.type === RecordType.tracks && t.join && t.wallMs === 1000);
  if (t.type === RecordType.tracks) assert.deepEqual(t.tracks, [VIDEO]);
  decoded.slice(1).forEach((r, i) => {
    assert.ok(r.type === RecordType.frame);
    if (r.type === RecordType.frame) assert.deepEqual({ ...r.frame, data: Buffer.from(r.frame.data) }, frames[i]);
  });
});

test('blocks: a flipped bit anywhere fails the CRC; a cut block is MalformedInputError', () => {
  const [block] = encode([{ pieces: encodeFrameRecord(frame(0, 3000, true), 0), dts: 0, join: true }]);
  assert.ok(block !== undefined);
  for (const at of [4, 8, 20, 40, 64, 2000, 4095]) {
    const bad = Buffer.from(block);
    bad[at] = (bad[at] as number) ^ 0x10;
    assert.throws(() => parseBlock(bad, 0, G.blockSize), MalformedInputError, `flip at ${at}`);
  }
  for (let cut = 0; cut < G.blockSize; cut += 97) {
    assert.throws(() => parseBlock(block.subarray(0, cut), 0, G.blockSize), MalformedInputError);
  }
});

test('record assembler: a nonsense record header is MalformedInputError and clears it', () => {
  const asm = new RecordAssembler(1024);
  const bad = Buffer.alloc(20);
  bad[0] = 9;
  asm.start(bad);
  assert.throws(() => asm.next(), /unknown record type 9/);
  assert.equal(asm.isSynced, false);
  const big = Buffer.alloc(20);
  big[0] = RecordType.frame;
  big.writeUInt32BE(5000, 4);
  asm.start(big);
  assert.throws(() => asm.next(), /limit 1024/);
});

test('fuzz: random bytes never make the parsers throw anything but a FeedcastError', () => {
  const onlyTyped = (fn: () => unknown): void => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof FeedcastError)) throw err;
    }
  };
  const header = encodeHeader(HEADER, 0);
  const [block] = encode([{ pieces: encodeFrameRecord(frame(0, 3000, true), 0), dts: 0, join: true }]);
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 5000 }),
      fc.array(fc.tuple(fc.nat(4095), fc.nat(255)), { maxLength: 8 }),
      (bytes, edits) => {
        const buf = Buffer.from(bytes);
        onlyTyped(() => parseHeader(buf));
        onlyTyped(() => parseBlock(buf, 0, G.blockSize));
        onlyTyped(() => parseTracks(new ByteReader(buf, 'feedfile')));
        const asm = new RecordAssembler(1 << 20);
        asm.start(buf);
        onlyTyped(() => {
          for (let r = asm.next(); r !== undefined; r = asm.next());
        });
        const h = Buffer.from(header);
        const b = Buffer.from(block!);
        for (const [at, v] of edits) {
          h[at] = v;
          b[at] = v;
        }
        onlyTyped(() => parseHeader(h));
        onlyTyped(() => parseBlock(b, 0, G.blockSize));
      },
    ),
    { numRuns: 300 },
  );
});
