// RTSP request framer and header helpers: requests and interleaved frames in any chunking,
// bounds, malformed input, and fuzz (only typed errors, same messages however the bytes are cut).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LimitExceededError, MalformedInputError } from '../../errors.js';
import { parseRtspUrl, parseTransport, sessionIdOf } from './messages.js';
import { RtspFramer, type RtspMessage } from './request-parser.js';

const SETUP =
  'SETUP rtsp://127.0.0.1:5454/feed1/streamid=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nUser-Agent: Lavf59\r\n\r\n';
const SDP = 'v=0\r\ns=x\r\n';
const ANNOUNCE = `ANNOUNCE rtsp://h/feed1 RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`;
// `$`, channel 1, length 4, then 4 bytes
const INTERLEAVED = Buffer.from([0x24, 0x01, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef]);
const STREAM = Buffer.concat([Buffer.from(SETUP), INTERLEAVED, Buffer.from(ANNOUNCE), Buffer.from('\r\n')]);

function summary(messages: RtspMessage[]): unknown[] {
  return messages.map((m) =>
    m.kind === 'interleaved'
      ? ['$', m.channel, m.data.toString('hex')]
      : [m.method, m.url, m.version, Object.fromEntries(m.headers), m.body.toString()],
  );
}

const EXPECTED = [
  [
    'SETUP',
    'rtsp://127.0.0.1:5454/feed1/streamid=0',
    'RTSP/1.0',
    { cseq: '3', transport: 'RTP/AVP/TCP;unicast;interleaved=0-1', 'user-agent': 'Lavf59' },
    '',
  ],
  ['$', 1, 'deadbeef'],
  [
    'ANNOUNCE',
    'rtsp://h/feed1',
    'RTSP/1.0',
    { cseq: '2', 'content-type': 'application/sdp', 'content-length': String(SDP.length) },
    SDP,
  ],
];

test('rtsp framer: requests with bodies and interleaved frames, whole or byte by byte', () => {
  assert.deepEqual(summary(new RtspFramer().push(STREAM)), EXPECTED);
  const framer = new RtspFramer();
  const out: RtspMessage[] = [];
  for (const byte of STREAM) out.push(...framer.push(Buffer.from([byte])));
  assert.deepEqual(summary(out), EXPECTED);
  assert.equal(framer.buffered, 0);
});

test('rtsp framer: bad request lines, headers and lengths throw typed errors', () => {
  const bad = [
    'GARBAGE\r\n\r\n',
    'PLAY rtsp://x RTSP/1.0 extra\r\n\r\n',
    'PL@Y rtsp://x RTSP/1.0\r\n\r\n',
    'PLAY rtsp://x RTSP1.0\r\n\r\n',
    'PLAY rtsp://x RTSP/1.0\r\nno colon\r\n\r\n',
    'PLAY rtsp://x RTSP/1.0\r\nContent-Length: -5\r\n\r\n',
    'PLAY rtsp://x RTSP/1.0\r\nContent-Length: 99999999\r\n\r\n',
    `PLAY rtsp://x RTSP/1.0\r\n${'X-A: b\r\n'.repeat(100)}\r\n`,
    `PLAY rtsp://x RTSP/1.0\r\nX: ${'a'.repeat(20000)}`,
  ];
  for (const text of bad) {
    assert.throws(
      () => new RtspFramer().push(Buffer.from(text)),
      (err) => err instanceof MalformedInputError || err instanceof LimitExceededError,
      JSON.stringify(text.slice(0, 50)),
    );
  }
});

test('rtsp framer: fuzz, random bytes throw only typed errors; valid streams parse the same in any chunking', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      try {
        new RtspFramer({ maxHeadBytes: 256, maxBodyBytes: 128 }).push(Buffer.from(bytes));
      } catch (err) {
        if (!(err instanceof MalformedInputError || err instanceof LimitExceededError)) throw err;
      }
    }),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: STREAM.length }), { maxLength: 10 }), (cuts) => {
      const framer = new RtspFramer();
      const out: RtspMessage[] = [];
      let pos = 0;
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        out.push(...framer.push(STREAM.subarray(pos, Math.max(pos, cut))));
        pos = Math.max(pos, cut);
      }
      out.push(...framer.push(STREAM.subarray(pos)));
      assert.deepEqual(summary(out), EXPECTED);
    }),
    { numRuns: 200 },
  );
});

test('rtsp headers: Transport alternatives, Session ids and request URLs', () => {
  const specs = parseTransport(
    'RTP/AVP;unicast;client_port=5000-5001;mode="PLAY", RTP/AVP/TCP;interleaved=2-3;mode=record, RTP/AVP;multicast',
  );
  assert.deepEqual(
    specs.map((s) => [s.protocol, s.lower, s.multicast, s.clientPort, s.interleaved, s.mode]),
    [
      ['RTP/AVP', 'udp', false, [5000, 5001], undefined, 'play'],
      ['RTP/AVP/TCP', 'tcp', false, undefined, [2, 3], 'record'],
      ['RTP/AVP', 'udp', true, undefined, undefined, 'play'],
    ],
  );
  assert.throws(() => parseTransport('RTP/AVP;client_port=99999-2'), MalformedInputError);
  assert.throws(() => parseTransport('RTP/AVP/TCP;interleaved=300-301'), MalformedInputError);
  assert.equal(sessionIdOf('ABCDEF;timeout=60'), 'ABCDEF');
  assert.equal(sessionIdOf(undefined), undefined);
  const t = parseRtspUrl('rtsp://u:p%40ss@host:5454/live.h264/streamid=1?secret=s');
  assert.deepEqual(
    [t.name, t.trackId, t.lastSegment, t.query.get('secret'), t.password],
    ['live.h264', 1, 'streamid=1', 's', 'p@ss'],
  );
  assert.equal(parseRtspUrl('rtsp://host/feed1/').name, 'feed1');
  // ffmpeg and live555 append a track's control to a Content-Base that has a query.
  const q = parseRtspUrl('rtsp://host/feed1?start=-30/streamid=1');
  assert.deepEqual([q.name, q.trackId, q.lastSegment, q.query.get('start')], ['feed1', 1, 'streamid=1', '-30']);
  const base = parseRtspUrl('rtsp://host/feed1?date=20261123T221500Z&token=a%2Fb/');
  assert.deepEqual(
    [base.name, base.trackId, base.query.get('date'), base.query.get('token')],
    ['feed1', undefined, '20261123T221500Z', 'a/b'],
  );
  assert.equal(parseRtspUrl('rtsp://host/feed1?token=a/b').query.get('token'), 'a/b', 'a slash inside a value stays');
  assert.throws(() => parseRtspUrl('http://host/feed1'), MalformedInputError);
  assert.throws(() => parseRtspUrl('rtsp://host/%zz'), MalformedInputError);
  fc.assert(
    fc.property(fc.string({ maxLength: 100 }), (s) => {
      for (const f of [() => parseTransport(s), () => parseRtspUrl(s), () => parseRtspUrl(`rtsp://h/${s}`)]) {
        try {
          f();
        } catch (err) {
          if (!(err instanceof MalformedInputError)) throw err;
        }
      }
    }),
    { numRuns: 500 },
  );
});
