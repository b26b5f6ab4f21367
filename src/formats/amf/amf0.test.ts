// AMF0 decode/encode: one case table drives the decode, encode, truncation and fuzz tests.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteReader } from '../bytes/byte-reader.js';
import { LimitExceededError, MalformedInputError } from '../../errors.js';
import {
  AMF0_MAX_DEPTH,
  amf0EcmaArray,
  decodeAmf0,
  decodeAmf0All,
  encodeAmf0,
  isAmf0EcmaArray,
  type Amf0Object,
  type Amf0Value,
} from './amf0.js';

// --- byte builders, so each field below reads as "marker, length, text" ---------------------
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const ascii = (s: string): Buffer => Buffer.from(s, 'utf8');
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const bytes = (...parts: Buffer[]): Buffer => Buffer.concat(parts);

/** An object with own keys in order (so a `__proto__` key is a plain key, as decoded). */
function obj(entries: [string, Amf0Value][]): Amf0Object {
  const o: Amf0Object = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

interface Case {
  name: string;
  bytes: Buffer;
  values: Amf0Value[];
  /** false: decodes to `values`, but encodes differently (reference, typed object...). */
  roundTrip: boolean;
}

const longText = 'x'.repeat(70_000);

const CASES: Case[] = [
  {
    name: 'number',
    bytes: hex('00 3FF0000000000000'), // marker number, f64 1.0
    values: [1],
    roundTrip: true,
  },
  {
    name: 'booleans',
    bytes: hex('01 01  01 00'), // marker boolean, true; marker boolean, false
    values: [true, false],
    roundTrip: true,
  },
  {
    name: 'null and undefined',
    bytes: hex('05 06'), // null marker, undefined marker
    values: [null, undefined],
    roundTrip: true,
  },
  {
    name: 'UTF-8 string',
    bytes: bytes(hex('02'), u16(6), ascii('héllo')), // marker string, u16 byte length 6, 'héllo'
    values: ['héllo'],
    roundTrip: true,
  },
  {
    name: 'date',
    bytes: hex('0B 4278CC251F400000 0000'), // marker date, f64 ms 1704067200000, s16 time zone 0
    values: [new Date(Date.UTC(2024, 0, 1))],
    roundTrip: true,
  },
  {
    name: 'strict array',
    bytes: bytes(
      hex('0A'), // marker strict array
      u32(3), // count 3
      hex('00 4000000000000000'), // number 2
      bytes(hex('02'), u16(1), ascii('a')), // string 'a'
      hex('05'), // null
    ),
    values: [[2, 'a', null]],
    roundTrip: true,
  },
  {
    name: 'long string',
    bytes: bytes(hex('0C'), u32(70_000), ascii(longText)), // marker long string, u32 length, text
    values: [longText],
    roundTrip: true,
  },
  {
    name: 'empty object',
    bytes: hex('03 0000 09'), // marker object, empty key + object-end marker
    values: [{}],
    roundTrip: true,
  },
  {
    name: 'RTMP connect command',
    bytes: bytes(
      bytes(hex('02'), u16(7), ascii('connect')), // command name 'connect'
      hex('00 3FF0000000000000'), // transaction id 1
      hex('03'), // command object
      bytes(u16(3), ascii('app'), hex('02'), u16(4), ascii('live')), // app: 'live'
      bytes(u16(4), ascii('type'), hex('02'), u16(10), ascii('nonprivate')), // type: 'nonprivate'
      bytes(u16(8), ascii('flashVer'), hex('02'), u16(31), ascii('FMLE/3.0 (compatible; FMSc/1.0)')),
      bytes(u16(5), ascii('tcUrl'), hex('02'), u16(26), ascii('rtmp://localhost:1935/live')),
      bytes(u16(14), ascii('objectEncoding'), hex('00 0000000000000000')), // objectEncoding: 0
      hex('0000 09'), // object end
    ),
    values: [
      'connect',
      1,
      {
        app: 'live',
        type: 'nonprivate',
        flashVer: 'FMLE/3.0 (compatible; FMSc/1.0)',
        tcUrl: 'rtmp://localhost:1935/live',
        objectEncoding: 0,
      },
    ],
    roundTrip: true,
  },
  {
    name: 'onMetaData (ECMA array, as ffmpeg writes it)',
    bytes: bytes(
      bytes(hex('02'), u16(10), ascii('onMetaData')), // handler name
      hex('08'), // marker ECMA array
      u32(4), // associative count 4
      bytes(u16(8), ascii('duration'), hex('00 4000A3D70A3D70A4')), // duration: 2.08
      bytes(u16(5), ascii('width'), hex('00 4074000000000000')), // width: 320
      bytes(u16(6), ascii('stereo'), hex('01 00')), // stereo: false
      bytes(u16(7), ascii('encoder'), hex('02'), u16(13), ascii('Lavf59.27.100')), // encoder
      hex('0000 09'), // object end
    ),
    values: ['onMetaData', amf0EcmaArray({ duration: 2.08, width: 320, stereo: false, encoder: 'Lavf59.27.100' })],
    roundTrip: true,
  },
  {
    name: 'nested objects and a __proto__ key',
    bytes: bytes(
      hex('03'), // object
      bytes(u16(9), ascii('__proto__'), hex('03')), // key '__proto__': object
      bytes(u16(1), ascii('n'), hex('00 C000000000000000')), //   n: -2
      hex('0000 09'), //   end
      bytes(u16(1), ascii('u'), hex('06')), // u: undefined
      hex('0000 09'), // end
    ),
    values: [
      obj([
        ['__proto__', { n: -2 }],
        ['u', undefined],
      ]),
    ],
    roundTrip: true,
  },
  {
    name: 'reference to an earlier object (decode only)',
    bytes: bytes(
      hex('03'), // object #0
      bytes(u16(1), ascii('a'), hex('03'), u16(1), ascii('b'), hex('01 01'), hex('0000 09')), // a: object #1 {b: true}
      bytes(u16(1), ascii('c'), hex('07'), u16(1)), // c: reference 1
      hex('0000 09'),
    ),
    values: [{ a: { b: true }, c: { b: true } }],
    roundTrip: false,
  },
  {
    name: 'typed object, class name dropped (decode only)',
    bytes: bytes(hex('10'), u16(3), ascii('Foo'), u16(1), ascii('x'), hex('00 0000000000000000'), hex('0000 09')),
    values: [{ x: 0 }],
    roundTrip: false,
  },
  {
    name: 'ECMA array without its end marker (decode only)',
    bytes: bytes(hex('08'), u32(1), u16(1), ascii('k'), hex('01 01')), // count 1, k: true, no 00 00 09
    values: [amf0EcmaArray({ k: true })],
    roundTrip: false,
  },
];

function assertMalformedOnly(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof MalformedInputError)) throw err;
  }
}

describe('AMF0', () => {
  describe('decode', () => {
    for (const c of CASES) {
      it(c.name, () => {
        const values = decodeAmf0All(c.bytes);
        assert.deepStrictEqual(values, c.values);
        // The ECMA-array mark survives decoding (deepStrictEqual ignores non-enumerable symbols).
        values.forEach((v, i) => assert.equal(isAmf0EcmaArray(v), isAmf0EcmaArray(c.values[i])));
      });
    }

    it('decodeAmf0 reads one value and leaves the reader after it', () => {
      const r = new ByteReader(hex('00 3FF0000000000000 05'), 'amf0');
      assert.equal(decodeAmf0(r), 1);
      assert.equal(r.pos, 9);
    });

    it('resolves a reference to the same object', () => {
      const [value] = decodeAmf0All(CASES.find((c) => c.name.startsWith('reference'))!.bytes);
      const o = value as Amf0Object;
      assert.equal(o['a'], o['c']);
    });
  });

  describe('encode', () => {
    for (const c of CASES.filter((c) => c.roundTrip)) {
      it(c.name, () => {
        assert.deepStrictEqual(encodeAmf0(c.values), c.bytes);
      });
    }
  });

  describe('malformed input', () => {
    it('every truncation of every case throws MalformedInputError or decodes a prefix', () => {
      for (const c of CASES) {
        for (let cut = 0; cut < Math.min(c.bytes.length, 300); cut++) {
          assertMalformedOnly(() => decodeAmf0All(c.bytes.subarray(0, cut)));
        }
      }
    });

    it(`allows ${AMF0_MAX_DEPTH} levels of nesting and refuses more`, () => {
      const nested = (levels: number): Buffer =>
        Buffer.concat([...Array.from({ length: levels }, () => bytes(hex('0A'), u32(1))), hex('05')]);
      assert.equal(decodeAmf0All(nested(AMF0_MAX_DEPTH)).length, 1);
      assert.throws(() => decodeAmf0All(nested(AMF0_MAX_DEPTH + 1)), MalformedInputError);
    });

    it('refuses a strict array count larger than the bytes left, before allocating', () => {
      assert.throws(() => decodeAmf0All(bytes(hex('0A'), u32(0xffffffff), hex('05'))), /strict array of 4294967295/);
    });

    it('refuses a reference to an enclosing object (a cycle) and an unknown index', () => {
      // object #0 { a: reference 0 }
      assert.throws(() => decodeAmf0All(bytes(hex('03'), u16(1), ascii('a'), hex('07'), u16(0), hex('0000 09'))), /cycle/);
      assert.throws(() => decodeAmf0All(bytes(hex('07'), u16(5))), /reference 5/);
    });

    it('refuses unsupported markers and a stray object end', () => {
      assert.throws(() => decodeAmf0All(hex('11 00')), /marker 0x11/);
      assert.throws(() => decodeAmf0All(hex('09')), /object-end/);
      assert.throws(() => decodeAmf0All(hex('02 0005 6162')), MalformedInputError);
    });

    it('random bytes throw nothing but MalformedInputError', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
          assertMalformedOnly(() => decodeAmf0All(Buffer.from(data)));
        }),
        { numRuns: 500 },
      );
    });

    it('random mutations of the cases throw nothing but MalformedInputError', () => {
      const small = CASES.filter((c) => c.bytes.length < 1000);
      fc.assert(
        fc.property(
          fc.constantFrom(...small),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
          (c, edits) => {
            const data = Buffer.from(c.bytes);
            for (const [pos, value] of edits) data[pos % data.length] = value;
            assertMalformedOnly(() => decodeAmf0All(data));
          },
        ),
        { numRuns: 500 },
      );
    });
  });

  describe('encode limits', () => {
    it('throws LimitExceededError for nesting deeper than the limit and for a cycle', () => {
      let deep: Amf0Value = null;
      for (let i = 0; i <= AMF0_MAX_DEPTH; i++) deep = [deep];
      assert.throws(() => encodeAmf0([deep]), LimitExceededError);
      const cyclic: Amf0Object = {};
      cyclic['self'] = cyclic;
      assert.throws(() => encodeAmf0([cyclic]), LimitExceededError);
    });

    it('throws LimitExceededError for an object key over 65535 bytes', () => {
      assert.throws(() => encodeAmf0([{ [longText]: 1 }]), LimitExceededError);
    });
  });

  describe('property: encode -> decode -> same values and bytes', () => {
    const key = fc.string({ unit: 'grapheme', maxLength: 12 });
    const { value } = fc.letrec<{ value: Amf0Value; leaf: Amf0Value; node: Amf0Value }>((tie) => ({
      leaf: fc.oneof(
        fc.double(),
        fc.boolean(),
        fc.string({ unit: 'grapheme', maxLength: 30 }),
        fc.constant(null),
        fc.constant(undefined),
        fc.date({ noInvalidDate: true }),
      ),
      node: fc.oneof(
        fc.array(tie('value'), { maxLength: 4 }),
        fc
          .tuple(fc.array(fc.tuple(key, tie('value')), { maxLength: 4 }), fc.boolean())
          .map(([entries, ecma]) => (ecma ? amf0EcmaArray(obj(entries)) : obj(entries))),
      ),
      value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('node')),
    }));

    it('round trips', () => {
      fc.assert(
        fc.property(fc.array(value, { minLength: 1, maxLength: 3 }), (values) => {
          const encoded = encodeAmf0(values);
          const decoded = decodeAmf0All(encoded);
          assert.deepStrictEqual(decoded, values);
          assert.deepStrictEqual(encodeAmf0(decoded), encoded);
        }),
        { numRuns: 300 },
      );
    });
  });
});
