import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MalformedInputError } from '../../errors.js';
import { keepCandidates } from './ice.js';
import { parseTarget } from './route.js';
import {
  addFmtpParameter,
  chooseH264,
  chooseH265,
  chooseOpus,
  chooseVp8,
  chooseVp9,
  parseSdpOffer,
  trimOffer,
} from './sdp-offer.js';

// A trimmed Chromium WHEP offer: BUNDLE, session-level ICE/DTLS, a video section with VP8, two
// H.264 packetization modes and RTX, an audio section with Opus.
const OFFER = [
  'v=0',
  'o=- 3915697358892469964 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=ice-ufrag:DFGx',
  'a=ice-pwd:j1kJjFW/jpCSnfsQMJ8Nqz+y',
  'a=fingerprint:sha-256 75:4F:E2:59',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 104 108 116',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=recvonly',
  'a=rtpmap:96 VP8/90000',
  'a=rtcp-fb:96 nack',
  'a=rtpmap:97 rtx/90000',
  'a=fmtp:97 apt=96',
  'a=rtpmap:102 H264/90000',
  'a=rtcp-fb:102 nack pli',
  'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f',
  'a=rtpmap:104 H264/90000',
  'a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f',
  'a=rtpmap:108 H264/90000',
  'a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  'a=rtpmap:116 H264/90000',
  'a=fmtp:116 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63',
  'a=mid:1',
  'a=recvonly',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=fmtp:63 111/111',
  '',
].join('\r\n');

test('parses a browser offer: sections, codecs, fmtp, feedback, inherited ICE and DTLS', () => {
  const offer = parseSdpOffer(OFFER);
  assert.equal(offer.media.length, 2);
  const [video, audio] = offer.media;
  assert.ok(video !== undefined && audio !== undefined);
  assert.equal(video.kind, 'video');
  assert.equal(video.mid, '0');
  assert.equal(video.direction, 'recvonly');
  assert.deepEqual(video.payloadTypes, [96, 97, 102, 104, 108, 116]);
  assert.equal(video.iceUfrag, 'DFGx');
  assert.equal(video.fingerprint, 'sha-256 75:4F:E2:59');
  const h264 = video.codecs.find((c) => c.payloadType === 102);
  assert.equal(h264?.name, 'H264');
  assert.equal(h264?.fmtp.get('packetization-mode'), '1');
  assert.deepEqual(h264?.feedback, ['nack pli']);
  assert.equal(audio.codecs[0]?.channels, 2);
});

test('codec choice: H.264 mode 1 matching the profile, else constrained baseline; Opus; VP8', () => {
  const offer = parseSdpOffer(OFFER);
  const video = offer.media[0];
  const audio = offer.media[1];
  assert.ok(video !== undefined && audio !== undefined);
  assert.equal(chooseH264(video, { profileIdc: 0x64, constraintFlags: 0 })?.payloadType, 116);
  assert.equal(chooseH264(video, { profileIdc: 0x4d, constraintFlags: 0 })?.payloadType, 108);
  assert.equal(chooseH264(video)?.payloadType, 108);
  assert.equal(chooseOpus(audio)?.payloadType, 111);
  assert.equal(chooseVp8(video)?.payloadType, 96);
  assert.equal(chooseH264(audio), undefined);
});

test('codec choice: VP9 profile 0 before profile 2, H.265 by name', () => {
  const section = (lines: string[]): string =>
    OFFER.replace(
      'm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 104 108 116',
      `m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 104 108 116 98 100 49`,
    ).replace('a=rtpmap:96 VP8/90000', ['a=rtpmap:96 VP8/90000', ...lines].join('\r\n'));
  const video = parseSdpOffer(
    section([
      'a=rtpmap:98 VP9/90000',
      'a=fmtp:98 profile-id=2',
      'a=rtpmap:100 VP9/90000',
      'a=fmtp:100 profile-id=0',
      'a=rtpmap:49 H265/90000',
    ]),
  ).media[0];
  assert.ok(video !== undefined);
  assert.equal(chooseVp9(video)?.payloadType, 100);
  assert.equal(chooseH265(video)?.payloadType, 49);
  const plain = parseSdpOffer(OFFER).media[0];
  assert.ok(plain !== undefined);
  assert.equal(chooseVp9(plain), undefined);
  assert.equal(chooseH265(plain), undefined);
});

test('trimOffer keeps one payload type per chosen section and its lines only', () => {
  const trimmed = trimOffer(OFFER, new Map([[0, 108]]));
  assert.match(trimmed, /^m=video 9 UDP\/TLS\/RTP\/SAVPF 108$/m);
  assert.doesNotMatch(trimmed, /a=rtpmap:(96|97|102|104|116) /);
  assert.match(trimmed, /a=fmtp:108 /);
  assert.match(trimmed, /^m=audio 9 UDP\/TLS\/RTP\/SAVPF 111 63$/m, 'sections not in the map keep everything');
  const video = parseSdpOffer(trimmed).media[0];
  assert.deepEqual(
    video?.codecs.map((c) => c.payloadType),
    [108],
  );
});

test('malformed offers throw MalformedInputError naming the problem', () => {
  const cases: [string, RegExp][] = [
    ['', /first line must be "v=0"/],
    ['hello', /first line must be "v=0"/],
    ['v=0\r\ns=-\r\n', /no media section/],
    ['v=0\r\nm=video nine UDP 96\r\n', /malformed m= line/],
    [OFFER.replace('a=rtpmap:96 VP8/90000', 'a=rtpmap:96 VP8'), /malformed rtpmap/],
    [OFFER.replace(/a=ice-ufrag:\S+\r\n/, ''), /no a=ice-ufrag/],
    [OFFER.replace(/a=fingerprint:\S+ \S+\r\n/, ''), /no a=fingerprint/],
    [OFFER.replace('m=audio 9', 'm=audio 99999'), /port 99999 out of range/],
    ['v=0\r\n' + 'a=x\r\n'.repeat(2001), /lines \(limit 2000\)/],
    ['v=0\r\nnot a line\r\n', /is not "<type>=<value>"/],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseSdpOffer(text),
      (err: unknown) => err instanceof MalformedInputError && message.test(err.message),
    );
  }
});

test('fuzz: any text either parses or throws MalformedInputError, never anything else', () => {
  const line = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom(
      'm=video 9 UDP/TLS/RTP/SAVPF 96',
      'a=rtpmap:96 H264/90000',
      'a=fmtp:96 packetization-mode=1',
      'a=ice-ufrag:x',
      'a=ice-pwd:y',
      'a=fingerprint:sha-256 AB',
      'a=rtcp-fb:* nack',
      'a=mid:0',
      'a=sendonly',
    ),
    fc.string({ maxLength: 20 }).map((s) => `a=${s}`),
    fc.string({ maxLength: 20 }).map((s) => `m=${s}`),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 40 }), fc.boolean(), (lines, withVersion) => {
      const text = (withVersion ? ['v=0', ...lines] : lines).join('\r\n');
      try {
        const offer = parseSdpOffer(text);
        for (const m of offer.media) {
          assert.ok(m.payloadTypes.every((pt) => Number.isInteger(pt) && pt >= 0 && pt <= 127));
          chooseH264(m);
          chooseOpus(m);
        }
      } catch (err) {
        if (!(err instanceof MalformedInputError)) throw err;
      }
    }),
    { numRuns: 500 },
  );
  // Cutting the real offer anywhere never throws anything but MalformedInputError.
  for (let cut = 0; cut <= OFFER.length; cut += 7) {
    try {
      parseSdpOffer(OFFER.slice(0, cut));
    } catch (err) {
      assert.ok(err instanceof MalformedInputError, `cut at ${cut}: ${String(err)}`);
    }
  }
});

test('keepCandidates keeps host candidates on the configured addresses only', () => {
  const answer = [
    'v=0',
    'm=video 9 UDP/TLS/RTP/SAVPF 108',
    'a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host',
    'a=candidate:2 1 udp 2130706431 10.0.0.5 40002 typ host',
    'a=candidate:3 1 udp 1694498815 203.0.113.9 40004 typ srflx raddr 127.0.0.1 rport 40000',
    'a=end-of-candidates',
    '',
  ].join('\r\n');
  const kept = keepCandidates(answer, ['127.0.0.1']);
  assert.match(kept, /127\.0\.0\.1 40000 typ host/);
  assert.doesNotMatch(kept, /10\.0\.0\.5/);
  assert.match(kept, /typ srflx/, 'server-reflexive candidates (configured STUN) stay');
  assert.ok(kept.endsWith('a=end-of-candidates\r\n'));
});

test('URL paths: endpoints and session resources', () => {
  assert.deepEqual(parseTarget('feed1/whep'), { name: 'feed1', kind: 'whep', sessionId: undefined });
  assert.deepEqual(parseTarget('live/cam/whip'), { name: 'live/cam', kind: 'whip', sessionId: undefined });
  const id = '3703ff83-3247-44eb-af8a-7548f0a7109c';
  assert.deepEqual(parseTarget(`feed1/whep/${id}`), { name: 'feed1', kind: 'whep', sessionId: id });
  assert.equal(parseTarget('feed1/whep/nope'), undefined);
  assert.equal(parseTarget('whep'), undefined);
  assert.equal(parseTarget('feed1.flv'), undefined);
});

// A simulcast WHIP offer's video section (RFC 8851 rids, RFC 8853 a=simulcast), as Chromium writes
// it for sendEncodings h/m/l, with a paused stream and restrictions added.
const SIMULCAST_OFFER = (simulcast: string, rids: string[]): string =>
  [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=ice-ufrag:DFGx',
    'a=ice-pwd:j1kJjFW/jpCSnfsQMJ8Nqz+y',
    'a=fingerprint:sha-256 75:4F:E2:59',
    'm=video 9 UDP/TLS/RTP/SAVPF 102 103',
    'a=mid:0',
    'a=sendonly',
    'a=rtpmap:102 H264/90000',
    'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    'a=rtpmap:103 rtx/90000',
    'a=fmtp:103 apt=102',
    ...rids,
    simulcast,
    '',
  ].join('\r\n');

test('simulcast: the rids sent, in a=simulcast order (first alternative, paused ones included)', () => {
  const rids = ['a=rid:h send', 'a=rid:m send pt=102;max-width=640', 'a=rid:l send', 'a=rid:x recv'];
  const [video] = parseSdpOffer(SIMULCAST_OFFER('a=simulcast:send h;m,x;~l', rids)).media;
  assert.deepEqual(video?.simulcastSend, ['h', 'm', 'l']);
  // One stream is no simulcast; neither is a section without a=simulcast.
  assert.deepEqual(parseSdpOffer(SIMULCAST_OFFER('a=simulcast:send h', rids)).media[0]?.simulcastSend, []);
  assert.deepEqual(parseSdpOffer(SIMULCAST_OFFER('a=sendonly', rids)).media[0]?.simulcastSend, []);
  // The trimmed offer keeps each rid without its restrictions (they may name removed payload types).
  const trimmed = trimOffer(SIMULCAST_OFFER('a=simulcast:send h;m;l', rids), new Map([[0, 102]]));
  assert.match(trimmed, /^a=rid:m send$/m);
  assert.doesNotMatch(trimmed, /pt=102|rtx/);
  assert.match(trimmed, /^a=simulcast:send h;m;l$/m);
});

test('simulcast: malformed rids and undeclared or too many streams are MalformedInputError', () => {
  const rids = ['a=rid:h send', 'a=rid:m send', 'a=rid:l send'];
  for (const [simulcast, lines, why] of [
    ['a=simulcast:send h;m;q', rids, /rid "q" with no a=rid:q send/],
    ['a=simulcast:send h;m;l', ['a=rid:h/1 send', ...rids], /malformed a=rid/],
    ['a=simulcast:send h;m;l', ['a=rid:' + 'x'.repeat(17) + ' send', ...rids], /malformed a=rid/],
    ['a=simulcast:send h;m;l;a;b', rids, /sends 5 streams \(limit 4\)/],
    ['a=simulcast:send', rids, /lists no stream/],
  ] as const) {
    assert.throws(
      () => parseSdpOffer(SIMULCAST_OFFER(simulcast, [...lines])),
      (err: unknown) => err instanceof MalformedInputError && why.test(err.message),
      simulcast,
    );
  }
});

test("addFmtpParameter extends the payload type's fmtp, or adds one after its rtpmap", () => {
  const sdp = 'm=video 9 X 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\na=fmtp:97 packetization-mode=1';
  assert.equal(addFmtpParameter(sdp, 97, 'x-google-start-bitrate', '2500'), sdp + ';x-google-start-bitrate=2500');
  assert.match(addFmtpParameter(sdp, 96, 'x', '1'), /a=rtpmap:96 VP8\/90000\r\na=fmtp:96 x=1\r\na=rtpmap:97/);
  assert.equal(addFmtpParameter(sdp, 100, 'x', '1'), sdp);
});
