// RTMP handshake: simple and digest (both schemes) answered so that a digest-checking client
// (the logic of ffmpeg's rtmp_handshake) accepts them; bad C0; fuzz.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { FeedcastError, MalformedInputError, ProtocolError } from '../../errors.js';
import {
  FMS_KEY,
  FMS_KEY_SHORT,
  FP_KEY_SHORT,
  RTMP_C0C1_SIZE,
  RTMP_HANDSHAKE_SIZE,
  blockDigest,
  checkS0S1S2,
  digestOffset,
  makeC0C1,
  makeS0S1S2,
  parseC0C1,
} from './handshake.js';

/** Deterministic "random" bytes for reproducible records. */
const fill =
  (seed: number) =>
  (n: number): Buffer =>
    Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

/** A C0+C1 with a scheme-1 digest (Flash Player 10 style: offset bytes at 772..775). */
function schemeOneC0C1(): Buffer {
  const out = Buffer.alloc(RTMP_C0C1_SIZE);
  out[0] = 3;
  const c1 = out.subarray(1);
  fill(7)(RTMP_HANDSHAKE_SIZE - 8).copy(c1, 8);
  Buffer.from([10, 0, 32, 1]).copy(c1, 4);
  const offset = digestOffset(c1, 1);
  blockDigest(c1, offset, FP_KEY_SHORT).copy(c1, offset);
  return out;
}

describe('RTMP handshake', () => {
  it('simple handshake: S1 has a zero version, S2 echoes C1', () => {
    const c0c1 = makeC0C1(false, fill(1));
    const c1 = parseC0C1(c0c1);
    assert.equal(c1.clientVersion, 0);
    assert.equal(c1.digest, undefined);
    const reply = makeS0S1S2(c1, fill(2), 1234);
    assert.equal(reply.length, 1 + 2 * RTMP_HANDSHAKE_SIZE);
    assert.equal(reply[0], 3); // S0 version
    assert.equal(reply.readUInt32BE(1), 1234); // S1 time
    assert.equal(reply.readUInt32BE(5), 0); // S1 zero
    assert.deepEqual(reply.subarray(1 + RTMP_HANDSHAKE_SIZE), c0c1.subarray(1)); // S2 = C1
    assert.equal(checkS0S1S2(c0c1, reply).length, RTMP_HANDSHAKE_SIZE);
  });

  for (const [name, c0c1, scheme] of [
    ['scheme 0 (ffmpeg, librtmp)', makeC0C1(true, fill(3)), 0],
    ['scheme 1 (Flash Player 10)', schemeOneC0C1(), 1],
  ] as const) {
    it(`digest handshake, ${name}: found, and answered with a valid S1 digest and S2 signature`, () => {
      const c1 = parseC0C1(c0c1);
      assert.equal(c1.digest?.scheme, scheme);
      const reply = makeS0S1S2(c1, fill(4));
      const s1 = reply.subarray(1, 1 + RTMP_HANDSHAKE_SIZE);
      const s2 = reply.subarray(1 + RTMP_HANDSHAKE_SIZE);
      assert.ok((s1[5] ?? 0) >= 3, 'server version byte ffmpeg checks');
      // S1's digest in the client's scheme, with the first 36 bytes of the FMS key.
      const at = digestOffset(s1, scheme);
      assert.deepEqual(s1.subarray(at, at + 32), blockDigest(s1, at, FMS_KEY_SHORT));
      // S2's last 32 bytes: HMAC(HMAC(FMS key, C1 digest), S2 head).
      const key = createHmac('sha256', FMS_KEY)
        .update(c1.digest?.value ?? Buffer.alloc(0))
        .digest();
      assert.deepEqual(s2.subarray(1504), createHmac('sha256', key).update(s2.subarray(0, 1504)).digest());
      if (scheme === 0) assert.equal(checkS0S1S2(c0c1, reply).length, RTMP_HANDSHAKE_SIZE);
    });
  }

  it('a C1 with a version but no valid digest gets the simple answer', () => {
    const c0c1 = makeC0C1(true, fill(5));
    c0c1[100] = (c0c1[100] ?? 0) ^ 0xff; // breaks the digest
    const c1 = parseC0C1(c0c1);
    assert.notEqual(c1.clientVersion, 0);
    assert.equal(c1.digest, undefined);
    assert.deepEqual(makeS0S1S2(c1).subarray(1 + RTMP_HANDSHAKE_SIZE), c0c1.subarray(1));
  });

  it('refuses other versions, naming RTMPE and HTTP', () => {
    const c0c1 = makeC0C1(false);
    c0c1[0] = 6;
    assert.throws(
      () => parseC0C1(c0c1),
      (e: unknown) => e instanceof ProtocolError && /RTMPE/.test(e.message),
    );
    const http = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n'), Buffer.alloc(RTMP_C0C1_SIZE)]);
    assert.throws(() => parseC0C1(http), /looks like HTTP/);
  });

  it('a short record is a MalformedInputError', () => {
    assert.throws(() => parseC0C1(makeC0C1(true).subarray(0, 1000)), MalformedInputError);
  });

  it('checkS0S1S2 notices a bad S2 signature', () => {
    const c0c1 = makeC0C1(true);
    const reply = makeS0S1S2(parseC0C1(c0c1));
    reply[reply.length - 1] = (reply[reply.length - 1] ?? 0) ^ 1;
    assert.throws(() => checkS0S1S2(c0c1, reply), /S2 signature/);
  });

  it('fuzz: any 1537 bytes are answered with 3073 bytes or refused with a FeedcastError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: RTMP_C0C1_SIZE, maxLength: RTMP_C0C1_SIZE }), fc.boolean(), (bytes, v3) => {
        const buf = Buffer.from(bytes);
        if (v3) buf[0] = 3;
        try {
          const reply = makeS0S1S2(parseC0C1(buf));
          assert.equal(reply.length, 3073);
        } catch (err) {
          assert.ok(err instanceof FeedcastError, String(err));
        }
      }),
      { numRuns: 300 },
    );
  });
});
