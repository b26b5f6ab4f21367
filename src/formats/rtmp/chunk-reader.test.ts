// RTMP chunk stream: captured ffmpeg bytes, one case table for read / write / truncation / fuzz,
// header types 0-3, extended timestamps, chunk sizes, Abort, limits.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FeedcastError, LimitExceededError, MalformedInputError } from '../../errors.js';
import { ChunkStreamReader, type ChunkReaderOptions } from './chunk-reader.js';
import { ByteBudget } from '../../media/byte-budget.js';
import { encodeRtmpMessage, encodeRtmpMessages, rtmpMessageSize } from './chunk-writer.js';
import { RtmpType, parseCommand, setChunkSizeMessage, type RtmpMessage } from './messages.js';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

function readAll(chunks: Iterable<Buffer>, options?: ChunkReaderOptions): RtmpMessage[] {
  const out: RtmpMessage[] = [];
  const r = new ChunkStreamReader((m) => out.push({ ...m, payload: Buffer.from(m.payload) }), options);
  for (const c of chunks) r.push(c);
  return out;
}

function* slices(buf: Buffer, sizes: number[]): Generator<Buffer> {
  let pos = 0;
  let i = 0;
  while (pos < buf.length) {
    const n = Math.max(1, sizes[i++ % sizes.length] ?? 1);
    yield buf.subarray(pos, pos + n);
    pos += n;
  }
}

/**
 * ffmpeg 5.1 publishing to rtmp://127.0.0.1:46425/live/cam1: its first bytes after the handshake,
 * the connect command (140 bytes) in two chunks at the default chunk size of 128.
 */
const FFMPEG_CONNECT = hex(
  '03' + // fmt 0, csid 3
    '000000 00008c 14 00000000' + // timestamp 0, length 140, type 20 (AMF0 command), stream 0 (LE)
    '020007636f6e6e656374' + // 'connect'
    '003ff0000000000000' + // transaction id 1
    '03' + // command object {
    '0003617070 0200046c697665' + // app: 'live'
    '000474797065 02000a6e6f6e70726976617465' + // type: 'nonprivate'
    '0008666c617368566572 020024464d4c452f332e302028636f6d70617469626c653b204c61766635392e32372e31303029' + // flashVer
    '0005746355726c 02001b72746d703a2f2f3132372e302e302e313a34' + // tcUrl: 'rtmp://127.0.0.1:4' ... (128 payload bytes so far)
    'c3' + // fmt 3, csid 3: continuation
    '3634323 52f6c697665'.replace(' ', '') + // '6425/live'
    '000009', // } object end
);

interface Case {
  name: string;
  bytes: Buffer;
  messages: RtmpMessage[];
  /** The writer produces these bytes at `chunkSize` (it always writes type 0 + type 3). */
  chunkSize: number;
  writes: boolean;
}

const msg = (csid: number, typeId: number, timestampMs: number, streamId: number, payload: Buffer): RtmpMessage => ({
  csid,
  typeId,
  timestampMs,
  streamId,
  payload,
});

const CASES: Case[] = [
  {
    name: 'type 0 header, one chunk',
    bytes: hex('06 000064 000003 08 01000000  aabbcc'), // csid 6; ts 100; len 3; audio; stream 1 LE; payload
    messages: [msg(6, RtmpType.audio, 100, 1, hex('aabbcc'))],
    chunkSize: 128,
    writes: true,
  },
  {
    name: 'type 0 then type 1, 2, 3 headers: deltas accumulate, type 3 repeats the last delta',
    bytes: hex(
      '07 0003e8 000002 09 01000000 1111' + // csid 7, ts 1000, len 2, video, stream 1
        '47 000028 000001 09 22' + // fmt 1: delta 40, len 1, video
        '87 000028 33' + // fmt 2: delta 40 (len 1 kept)
        'c7 44', // fmt 3: new message, delta 40 again
    ),
    messages: [
      msg(7, RtmpType.video, 1000, 1, hex('1111')),
      msg(7, RtmpType.video, 1040, 1, hex('22')),
      msg(7, RtmpType.video, 1080, 1, hex('33')),
      msg(7, RtmpType.video, 1120, 1, hex('44')),
    ],
    chunkSize: 128,
    writes: false,
  },
  {
    name: 'a message over two chunks at chunk size 4',
    bytes: hex('05 000000 000006 12 00000000 01020304 c5 0506'), // data msg of 6 bytes: 4 + type 3 + 2
    messages: [msg(5, RtmpType.dataAmf0, 0, 0, hex('010203040506'))],
    chunkSize: 4,
    writes: true,
  },
  {
    name: 'extended timestamp on the type 0 header and again on its type 3 continuation',
    bytes: hex('07 ffffff 000003 09 01000000 01020304 aabb c7 01020304 cc'), // ts 0x01020304, chunk size 2
    messages: [msg(7, RtmpType.video, 0x01020304, 1, hex('aabbcc'))],
    chunkSize: 2,
    writes: true,
  },
  {
    name: 'two-byte and three-byte basic headers (csid 64 + n)',
    bytes: hex('00 00 000000 000001 08 00000000 aa' + '01 0001 000000 000001 08 00000000 bb'), // csid 64; csid 64+256
    messages: [msg(64, RtmpType.audio, 0, 0, hex('aa')), msg(320, RtmpType.audio, 0, 0, hex('bb'))],
    chunkSize: 128,
    writes: true,
  },
  {
    name: 'an empty message',
    bytes: hex('03 000000 000000 14 00000000'),
    messages: [msg(3, RtmpType.commandAmf0, 0, 0, Buffer.alloc(0))],
    chunkSize: 128,
    writes: true,
  },
  {
    name: 'Set Chunk Size applies to the next chunk',
    bytes: hex('02 000000 000004 01 00000000 00000003' + '06 000000 000004 08 00000000 010203 c6 04'),
    messages: [msg(2, RtmpType.setChunkSize, 0, 0, hex('00000003')), msg(6, RtmpType.audio, 0, 0, hex('01020304'))],
    chunkSize: 128,
    writes: false,
  },
  {
    name: 'Abort drops the partial message of its chunk stream',
    bytes: hex(
      '02 000000 000004 01 00000000 00000002' + // chunk size 2
        '06 000000 000004 08 00000000 0102' + // first half of a 4-byte message on csid 6
        '02 000000 000004 02 00000000 0000 c2 0006' + // Abort csid 6 (4 bytes: two chunks at size 2)
        '06 000000 000001 08 00000000 ff', // csid 6 starts over with a new message
    ),
    messages: [
      msg(2, RtmpType.setChunkSize, 0, 0, hex('00000002')),
      msg(2, RtmpType.abort, 0, 0, hex('00000006')),
      msg(6, RtmpType.audio, 0, 0, hex('ff')),
    ],
    chunkSize: 2,
    writes: false,
  },
];

describe('ChunkStreamReader', () => {
  it('reads the connect command ffmpeg sends (captured)', () => {
    const [m, ...rest] = readAll([FFMPEG_CONNECT]);
    assert.equal(rest.length, 0);
    assert.ok(m !== undefined);
    assert.equal(m.csid, 3);
    assert.equal(m.typeId, RtmpType.commandAmf0);
    assert.equal(m.payload.length, 140);
    const cmd = parseCommand(m.payload, m.typeId);
    assert.equal(cmd.name, 'connect');
    assert.equal(cmd.transactionId, 1);
    assert.deepEqual(
      { ...(cmd.commandObject as object) },
      {
        app: 'live',
        type: 'nonprivate',
        flashVer: 'FMLE/3.0 (compatible; Lavf59.27.100)',
        tcUrl: 'rtmp://127.0.0.1:46425/live',
      },
    );
    // The writer makes the same bytes from the message.
    assert.deepEqual(encodeRtmpMessage(m, 128), FFMPEG_CONNECT);
  });

  for (const c of CASES) {
    it(`reads: ${c.name}`, () => {
      const reader = c.name.startsWith('Set Chunk') || c.name.startsWith('Abort') ? undefined : c.chunkSize;
      const pre = reader === undefined || reader === 128 ? [] : [encodeRtmpMessage(setChunkSizeMessage(reader), 128)];
      const got = readAll([...pre, c.bytes]).slice(pre.length);
      assert.deepEqual(got, c.messages);
    });
    it(`reads byte by byte: ${c.name}`, () => {
      const pre =
        c.chunkSize === 128 || c.name.startsWith('Set Chunk') || c.name.startsWith('Abort')
          ? []
          : [encodeRtmpMessage(setChunkSizeMessage(c.chunkSize), 128)];
      const whole = Buffer.concat([...pre, c.bytes]);
      assert.deepEqual(readAll(slices(whole, [1])).slice(pre.length), c.messages);
    });
    if (c.writes) {
      it(`writes: ${c.name}`, () => {
        assert.deepEqual(encodeRtmpMessages(c.messages, c.chunkSize), c.bytes);
        for (const m of c.messages)
          assert.equal(
            rtmpMessageSize(m.csid, m.timestampMs, m.payload.length, c.chunkSize),
            encodeRtmpMessage(m, c.chunkSize).length,
          );
      });
    }
  }

  it('cut at every offset: "need more" until the message is complete, never another error', () => {
    for (let cut = 0; cut < FFMPEG_CONNECT.length; cut++) {
      assert.equal(readAll([FFMPEG_CONNECT.subarray(0, cut)]).length, 0, `cut at ${cut}`);
      assert.equal(readAll([FFMPEG_CONNECT.subarray(0, cut), FFMPEG_CONNECT.subarray(cut)]).length, 1, `split at ${cut}`);
    }
  });

  it('refuses a chunk stream that starts with a type 1-3 header', () => {
    for (const first of ['43 000000 000001 08 aa', '83 000000 aa', 'c3 aa']) {
      assert.throws(
        () => readAll([hex(first)]),
        (e: unknown) => e instanceof MalformedInputError && /starts with a type/.test(e.message),
      );
    }
  });

  it('refuses a type 0 header in the middle of a message', () => {
    const bytes = hex(
      '02 000000 000004 01 00000000 00000002' + '06 000000 000004 08 00000000 0102' + '06 000000 000001 08 00000000 ff',
    );
    assert.throws(() => readAll([bytes]), /while its message is 2\/4 bytes in/);
  });

  it('bounds the message length before waiting for it, and the number of chunk streams', () => {
    assert.throws(
      () => readAll([hex('03 000000 ffffff 14 00000000')], { maxMessageBytes: 1000 }),
      (e: unknown) => e instanceof LimitExceededError && e.actual === 0xffffff && e.limit === 1000,
    );
    const many = Buffer.concat(
      Array.from({ length: 5 }, (_, i) => hex(`${(4 + i).toString(16).padStart(2, '0')} 000000 000001 08 00000000 aa`)),
    );
    assert.equal(readAll([many], { maxChunkStreams: 5 }).length, 5);
    assert.throws(() => readAll([many], { maxChunkStreams: 4 }), LimitExceededError);
  });

  it('bounds the bytes of incomplete messages held across chunk streams', () => {
    // Two 100-byte messages, each only half sent, at chunk size 50.
    const parts = [
      encodeRtmpMessage(setChunkSizeMessage(50), 128),
      hex('06 000000 000064 08 00000000'),
      Buffer.alloc(50),
      hex('07 000000 000064 09 00000000'),
      Buffer.alloc(50),
    ];
    assert.equal(readAll(parts, { maxPendingBytes: 100 }).length, 1); // just the Set Chunk Size
    assert.throws(() => readAll(parts, { maxPendingBytes: 99 }), LimitExceededError);
  });

  it('charges a budget shared by readers, gives it back as messages complete or at release()', () => {
    // Issue 25: many connections each under maxPendingBytes must not together pass the server's cap.
    const budget = new ByteBudget(120);
    const half = (csid: number): Buffer[] => [
      encodeRtmpMessage(setChunkSizeMessage(50), 128),
      hex(`${csid.toString(16).padStart(2, '0')} 000000 000064 08 00000000`), // a 100-byte message
      Buffer.alloc(50), // half of it
    ];
    // Each part is copied out of its input buffer (1 of 63 bytes), so it is charged its own 50 bytes.
    const a = new ChunkStreamReader(() => undefined, { budget });
    for (const c of half(6)) a.push(Buffer.from(c));
    assert.equal(budget.held, 50);
    const b = new ChunkStreamReader(() => undefined, { budget });
    for (const c of half(6)) b.push(Buffer.from(c));
    assert.equal(budget.held, 100);
    const c = new ChunkStreamReader(() => undefined, { budget });
    for (const p of half(6).slice(0, 2)) c.push(p);
    assert.throws(
      () => c.push(Buffer.alloc(50)),
      (err: unknown) => err instanceof LimitExceededError && /every RTMP connection/.test(err.message),
    );
    assert.equal(budget.held, 100);
    // b's connection ends: its 50 bytes come back; a's message completes: all it held comes back.
    b.release();
    b.release(); // idempotent
    assert.equal(budget.held, 50);
    a.push(hex('c6'));
    a.push(Buffer.alloc(50));
    assert.equal(budget.held, 0);
  });

  it('refuses Set Chunk Size 0 and stays failed', () => {
    const out: RtmpMessage[] = [];
    const r = new ChunkStreamReader((m) => out.push(m));
    assert.throws(() => r.push(hex('02 000000 000004 01 00000000 00000000')), /Set Chunk Size 0/);
    assert.throws(() => r.push(hex('06 000000 000001 08 00000000 aa')), /Set Chunk Size 0/);
  });

  it('fuzz: messages written at any chunk size and cut anywhere read back the same', () => {
    const message = fc.record({
      csid: fc.integer({ min: 3, max: 400 }),
      typeId: fc.constantFrom(8, 9, 18, 20),
      timestampMs: fc.oneof(fc.integer({ min: 0, max: 0xfffffe }), fc.integer({ min: 0xffffff, max: 0xffffffff })),
      streamId: fc.integer({ min: 0, max: 5 }),
      payload: fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
    });
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 700 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 5 }),
        (messages, chunkSize, cuts) => {
          const bytes = Buffer.concat([
            encodeRtmpMessage(setChunkSizeMessage(chunkSize), 128),
            encodeRtmpMessages(messages, chunkSize),
          ]);
          const got = readAll(slices(bytes, cuts)).slice(1);
          assert.deepEqual(
            got,
            messages.map((m) => ({ ...m })),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fuzz: random bytes give messages, "need more" or a FeedcastError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 1, max: 64 }), (data, cut) => {
        try {
          readAll(slices(Buffer.from(data), [cut]), { maxMessageBytes: 4096, maxPendingBytes: 8192 });
        } catch (err) {
          assert.ok(err instanceof FeedcastError, `unexpected ${String(err)}`);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
