// RTP header and RTCP compound packets: bytes with a comment per field, parsed, rebuilt, fuzzed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MalformedInputError } from '../../errors.js';
import { buildBye, buildReceiverReport, buildSenderReport, parseRtcp } from './rtcp.js';
import { buildRtpPacket, looksLikeRtcp, parseRtpPacket } from './rtp-packet.js';

const PACKET = Buffer.from([
  0x80, // V=2, P=0, X=0, CC=0
  0xe0, // M=1, PT=96
  0x12,
  0x34, // sequence 0x1234
  0x00,
  0x01,
  0x5f,
  0x90, // timestamp 90000
  0xde,
  0xad,
  0xbe,
  0xef, // SSRC
  0x65,
  0x88,
  0x84, // payload
]);

test('rtp: a packet parses into its fields and is rebuilt to the same bytes', () => {
  const p = parseRtpPacket(PACKET);
  assert.deepEqual(
    { marker: p.marker, payloadType: p.payloadType, sequence: p.sequence, timestamp: p.timestamp, ssrc: p.ssrc },
    { marker: true, payloadType: 96, sequence: 0x1234, timestamp: 90000, ssrc: 0xdeadbeef },
  );
  assert.deepEqual([...p.payload], [0x65, 0x88, 0x84]);
  assert.ok(buildRtpPacket(p, [p.payload]).equals(PACKET));
});

test('rtp: CSRCs, header extension and padding are skipped to the payload', () => {
  const buf = Buffer.from([
    0xb1, // V=2, P=1, X=1, CC=1
    0x60, // M=0, PT=96
    0,
    1,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    3,
    0,
    0,
    0,
    9, // CSRC 9
    0xbe,
    0xde,
    0,
    1, // extension profile 0xBEDE, 1 word
    1,
    2,
    3,
    4, // extension data
    0xaa,
    0xbb, // payload
    0,
    0,
    3, // padding: 3 bytes, count in the last
  ]);
  const p = parseRtpPacket(buf);
  assert.deepEqual(p.csrcs, [9]);
  assert.equal(p.extension?.profile, 0xbede);
  assert.deepEqual([...p.payload], [0xaa, 0xbb]);
});

test('rtp: wrong version, truncation and bad padding throw MalformedInputError', () => {
  assert.throws(() => parseRtpPacket(Buffer.from([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), MalformedInputError);
  for (let cut = 0; cut < 12; cut++) assert.throws(() => parseRtpPacket(PACKET.subarray(0, cut)), MalformedInputError);
  const badPadding = Buffer.from(PACKET);
  badPadding[0] = 0xa0;
  badPadding[badPadding.length - 1] = 200;
  assert.throws(() => parseRtpPacket(badPadding), MalformedInputError);
});

test('rtcp: sender report + SDES round trip, NTP time kept to the millisecond', () => {
  const ntpMs = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
  const buf = buildSenderReport(0x11223344, { ntpMs, rtpTimestamp: 123456, packetCount: 7, octetCount: 8000 }, 'feedcast@host');
  assert.equal(buf.length % 4, 0);
  assert.ok(looksLikeRtcp(buf));
  assert.ok(!looksLikeRtcp(PACKET));
  const [sr, sdes] = parseRtcp(buf);
  assert.equal(sr?.type, 'sr');
  if (sr?.type === 'sr') {
    assert.equal(sr.ssrc, 0x11223344);
    assert.ok(Math.abs(sr.sender.ntpMs - ntpMs) < 1);
    assert.deepEqual([sr.sender.rtpTimestamp, sr.sender.packetCount, sr.sender.octetCount], [123456, 7, 8000]);
  }
  assert.deepEqual(sdes, { type: 'sdes', cnames: [{ ssrc: 0x11223344, cname: 'feedcast@host' }] });
});

test('rtcp: receiver report blocks and BYE', () => {
  const block = {
    ssrc: 5,
    fractionLost: 12,
    cumulativeLost: 300,
    highestSequence: 70000,
    jitter: 40,
    lastSr: 99,
    delaySinceLastSr: 65536,
  };
  const [rr] = parseRtcp(buildReceiverReport(9, block, 'x'));
  assert.deepEqual(rr, { type: 'rr', ssrc: 9, reports: [block] });
  // Compound, led by an empty RR (RFC 3550 6.1); 16 bytes, since ffmpeg drops RTCP under 12.
  const bye = buildBye(42);
  assert.equal(bye.length, 16);
  assert.deepEqual(
    parseRtcp(bye).map((p) => p.type),
    ['rr', 'bye'],
  );
  assert.deepEqual(parseRtcp(bye)[1], { type: 'bye', ssrcs: [42] });
});

test('rtcp: fuzz, only MalformedInputError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const buf = Buffer.from(bytes);
      if (buf.length > 0) buf[0] = 0x80 | ((buf[0] as number) & 0x3f);
      try {
        parseRtcp(buf);
      } catch (err) {
        if (!(err instanceof MalformedInputError)) throw err;
      }
    }),
    { numRuns: 1000 },
  );
});
