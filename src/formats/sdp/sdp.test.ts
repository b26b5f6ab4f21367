// SDP: what DESCRIBE answers for real tracks (and ffmpeg-style ANNOUNCE bodies) parses back into
// the same payload formats; malformed descriptions throw MalformedInputError; fuzzed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MalformedInputError } from '../../errors.js';
import { ingestFormatOf, rtpFormatOf } from '../rtp/formats.js';
import { buildAvcc } from '../h264/avcc.js';
import { buildAudioSpecificConfig } from '../aac/audio-specific-config.js';
import { buildSdp, parseSdp, rtpFormatOfMedia } from './sdp.js';

// A 320x240 High profile SPS and a PPS from libx264 (test/fixtures/h264-aac.ts).
const SPS = Buffer.from('Z2QADazZQUH7ARAAAAMAEAAAAwMg8UKZYA==', 'base64');
const PPS = Buffer.from('aOvjyyLA', 'base64');

// What `ffmpeg -f rtsp` 5.1 sends with ANNOUNCE for H.264 + AAC.
const FFMPEG_ANNOUNCE = [
  'v=0',
  'o=- 0 0 IN IP4 127.0.0.1',
  's=No Name',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'a=tool:libavformat 59.27.100',
  'm=video 0 RTP/AVP 96',
  'a=rtpmap:96 H264/90000',
  `a=fmtp:96 packetization-mode=1; sprop-parameter-sets=${SPS.toString('base64')},${PPS.toString('base64')}; profile-level-id=64000D`,
  'a=control:streamid=0',
  'm=audio 0 RTP/AVP 97',
  'b=AS:64',
  'a=rtpmap:97 MPEG4-GENERIC/48000/1',
  'a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=1188',
  'a=control:streamid=1',
  '',
].join('\r\n');

test('sdp: an ffmpeg ANNOUNCE body gives H.264 with its avcC and AAC with its config', () => {
  const desc = parseSdp(FFMPEG_ANNOUNCE);
  assert.equal(desc.sessionName, 'No Name');
  assert.deepEqual(desc.connection, { address: '127.0.0.1', ttl: undefined });
  assert.deepEqual(
    desc.media.map((m) => [m.type, m.control, m.formats]),
    [
      ['video', 'streamid=0', [96]],
      ['audio', 'streamid=1', [97]],
    ],
  );
  const video = ingestFormatOf(rtpFormatOfMedia(desc.media[0]!));
  assert.equal(video.track.codec, 'h264');
  assert.equal(video.track.width, 320);
  assert.equal(video.track.height, 240);
  assert.ok(video.track.config?.equals(buildAvcc([SPS], [PPS])));
  const audio = ingestFormatOf(rtpFormatOfMedia(desc.media[1]!));
  assert.deepEqual([audio.track.codec, audio.track.sampleRate, audio.track.channels], ['aac', 48000, 1]);
});

test('sdp: DESCRIBE answers round-trip through the parser for every codec', () => {
  const tracks = [
    { id: 0, kind: 'video', codec: 'h264', config: buildAvcc([SPS], [PPS]) },
    { id: 1, kind: 'audio', codec: 'aac', config: buildAudioSpecificConfig(2, 3, 2), sampleRate: 48000, channels: 2 },
    { id: 2, kind: 'audio', codec: 'opus', sampleRate: 48000, channels: 2 },
    { id: 3, kind: 'audio', codec: 'mp2' },
    { id: 4, kind: 'video', codec: 'mpeg1video' },
  ] as const;
  const text = buildSdp({
    sessionName: 'feed1',
    originAddress: '127.0.0.1',
    connection: { address: '224.1.2.3', ttl: 16 },
    tracks: tracks.map((t, i) => ({
      kind: t.kind,
      format: rtpFormatOf(t, 96 + i),
      control: `streamid=${t.id}`,
      port: 5000 + 2 * i,
    })),
  });
  assert.match(text, /^v=0\r\n/);
  assert.match(text, /a=range:npt=now-\r\n/);
  assert.match(text, /a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QA[^;]+; profile-level-id=64000D\r\n/);
  assert.match(text, /a=rtpmap:97 MPEG4-GENERIC\/48000\/2\r\n/);
  assert.match(text, /a=rtpmap:98 opus\/48000\/2\r\n/);
  assert.match(text, /m=audio 5006 RTP\/AVP 14\r\n/);
  assert.match(text, /m=video 5008 RTP\/AVP 32\r\n/);
  const desc = parseSdp(text);
  assert.deepEqual(desc.connection, { address: '224.1.2.3', ttl: 16 });
  assert.deepEqual(
    desc.media.map((m) => ingestFormatOf(rtpFormatOfMedia(m)).track.codec),
    ['h264', 'aac', 'opus', 'mp2', 'mpeg1video'],
  );
  assert.deepEqual(
    desc.media.map((m) => m.control),
    tracks.map((t) => `streamid=${t.id}`),
  );
});

test('sdp: malformed descriptions throw MalformedInputError with the line', () => {
  const bad = [
    '',
    's=no version first\r\n',
    'v=1\r\n',
    'v=0\r\nm=video\r\n',
    'v=0\r\nm=video 99999 RTP/AVP 96\r\n',
    'v=0\r\nm=video 0 RTP/AVP 300\r\n',
    'v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264\r\n',
    'v=0\r\nc=IN IP4\r\n',
    'v=0\r\nnot sdp\r\n',
    'v=0\r\n' + 'a=x\r\n'.repeat(2000),
    'v=0\r\n' + 'm=audio 0 RTP/AVP 0\r\n'.repeat(20),
  ];
  for (const text of bad) assert.throws(() => parseSdp(text), MalformedInputError, JSON.stringify(text.slice(0, 40)));
  const badSprop = FFMPEG_ANNOUNCE.replace(/sprop-parameter-sets=[^;]+/, 'sprop-parameter-sets=%%%');
  assert.throws(() => ingestFormatOf(rtpFormatOfMedia(parseSdp(badSprop).media[0]!)), MalformedInputError);
});

test('sdp: fuzz, parsing and track extraction throw only typed errors', () => {
  const lineArb = fc.oneof(
    fc.constantFrom(
      'm=video 0 RTP/AVP 96',
      'm=audio 0 RTP/AVP 97',
      'a=rtpmap:96 H264/90000',
      'a=rtpmap:97 MPEG4-GENERIC/44100/2',
      'a=control:x',
      'c=IN IP4 1.2.3.4/5',
    ),
    fc.string({ maxLength: 60 }).map((s) => `a=fmtp:${s}`),
    fc.string({ maxLength: 60 }).map((s) => `a=fmtp:97 ${s}`),
    fc.string({ maxLength: 60 }).map((s) => `a=fmtp:96 sprop-parameter-sets=${s}`),
    fc.string({ maxLength: 40 }),
  );
  fc.assert(
    fc.property(fc.array(lineArb, { maxLength: 20 }), (lines) => {
      try {
        const desc = parseSdp(['v=0', ...lines].join('\r\n'));
        for (const m of desc.media) {
          try {
            ingestFormatOf(rtpFormatOfMedia(m));
          } catch (err) {
            if (!(err instanceof Error && 'code' in err)) throw err;
          }
        }
      } catch (err) {
        if (!(err instanceof MalformedInputError)) throw err;
      }
    }),
    { numRuns: 500 },
  );
});
