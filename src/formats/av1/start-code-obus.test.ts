// AV1's start-code based format for MPEG-TS: OBUs of any bytes (runs of zeros included) go
// through start codes and emulation prevention and come back unchanged; the escaped stream holds
// no 0x000000-0x000002 inside an OBU; plain low-overhead PES payloads are read too; bad ones throw.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MalformedInputError } from '../../errors.js';
import { av1FixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { ObuType, readObus, writeObus, type Obu } from './obu.js';
import { readStartCodeObus, writeStartCodeObus } from './start-code-obus.js';

const obuOf = (type: number, payload: Buffer): Obu => ({ type, header: Buffer.from([type << 3]), payload });

test('a temporal delimiter, then each OBU behind 00 00 01 with its obu_size', () => {
  const out = writeStartCodeObus([obuOf(ObuType.frame, Buffer.from([0xaa, 0x00, 0x00, 0x01, 0xbb]))]);
  // prettier-ignore
  assert.deepEqual([...out], [
    0, 0, 1, 0x10, // temporal delimiter (without obu_size)
    0, 0, 1, 0x32, 0x05, 0xaa, 0x00, 0x00, 0x03, 0x01, 0xbb, // frame OBU: 00 00 01 escaped as 00 00 03 01
  ]);
});

test('OBUs of any bytes round-trip, and no start code appears inside one', () => {
  // Many zeros and 1-3, and a last byte with the trailing one bit, as every OBU but a padding one ends.
  const payload = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from([...a.map((b) => (b < 128 ? b % 4 : b)), 0x80]));
  fc.assert(
    fc.property(fc.array(payload, { minLength: 1, maxLength: 6 }), (payloads) => {
      const obus = payloads.map((p) => obuOf(ObuType.metadata, p));
      const out = writeStartCodeObus(obus);
      const back = readStartCodeObus(out);
      assert.equal(back[0]?.type, ObuType.temporalDelimiter);
      assert.deepEqual(
        back.slice(1).map((o) => o.payload),
        payloads,
      );
      // Only start codes hold 00 00 0x (x <= 2): count them against the OBUs written.
      let starts = 0;
      for (let i = 0; i + 2 < out.length; i++) {
        if (out[i] === 0 && out[i + 1] === 0 && (out[i + 2] as number) <= 2) {
          assert.equal(out[i + 2], 1, `00 00 ${out[i + 2]} at ${i}`);
          starts++;
        }
      }
      assert.equal(starts, payloads.length + 1);
    }),
  );
});

test('OBUs ending in zeros (an empty one, a payload ending 00 00) round-trip too', () => {
  const payload = fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a.map((b) => b % 3)));
  fc.assert(
    fc.property(fc.array(payload, { minLength: 1, maxLength: 4 }), (payloads) => {
      const back = readStartCodeObus(writeStartCodeObus(payloads.map((p) => obuOf(ObuType.metadata, p))));
      assert.deepEqual(
        back.slice(1).map((o) => o.payload),
        payloads,
      );
    }),
  );
});

test('a real AV1 stream goes through unchanged, and the low-overhead layout is read as well', () => {
  const { frames } = av1FixtureFrames();
  for (const f of frames) {
    const obus = readObus(f.data);
    assert.deepEqual(writeObus(readStartCodeObus(writeStartCodeObus(obus))), f.data);
    assert.deepEqual(writeObus(readStartCodeObus(f.data)), f.data);
  }
});

test('cut or damaged payloads throw MalformedInputError', () => {
  const { frames } = av1FixtureFrames();
  const escaped = writeStartCodeObus(readObus(frames[0]?.data ?? Buffer.alloc(0)));
  assert.throws(() => readStartCodeObus(escaped.subarray(0, escaped.length - 5)), MalformedInputError);
  assert.throws(() => readStartCodeObus(Buffer.from([0x30, 0x01])), MalformedInputError); // no obu_size, no start code
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        readStartCodeObus(Buffer.from(bytes));
      } catch (err) {
        assert.ok(err instanceof MalformedInputError, String(err));
      }
    }),
  );
});
