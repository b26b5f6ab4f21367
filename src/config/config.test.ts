// Config loading: every directive accepted (from the table's examples) and rejected (case table), error collection with
// file:line, warnings, sections, defaults, the model, and the committed example configs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { HostResolver } from './acl.js';
import { ConfigErrors, defaultConfig, loadConfigFile, parseConfigText, type ServerConfig } from './config.js';
import { DIRECTIVES, GLOBAL_DEFAULTS, type Scope } from './directives.js';

const resolver: HostResolver = (host) => {
  if (host === 'localhost') return Promise.resolve(['127.0.0.1', '::1']);
  if (host === 'media.example') return Promise.resolve(['192.0.2.7']);
  return Promise.reject(Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
};

const parse = (text: string, source = 'test.conf'): Promise<ServerConfig> =>
  parseConfigText(text, source, { resolveHost: resolver });

async function errorsOf(text: string, source = 'test.conf'): Promise<ConfigErrors> {
  try {
    await parse(text, source);
  } catch (err) {
    assert.ok(err instanceof ConfigErrors, `expected ConfigErrors, got ${String(err)}`);
    return err;
  }
  return assert.fail(`expected errors from:\n${text}`);
}

/** A directive line placed in a minimal valid context; `line` is its line number there. */
function inScope(scope: Scope, directiveLine: string, name = ''): { text: string; line: number } {
  switch (scope) {
    case 'global':
      return { text: `${directiveLine}\n`, line: 1 };
    case 'feed':
      return { text: `<Feed feed1.ffm>\nFile /tmp/feed1.ffm\n${directiveLine}\n</Feed>\n`, line: 3 };
    case 'stream':
      if (name === 'File' || name === 'ReadOnlyFile') {
        return { text: `<Stream s.flv>\n${directiveLine}\n</Stream>\n`, line: 2 };
      }
      if (name === 'FaviconURL') return { text: `<Stream stat.html>\nFormat status\n${directiveLine}\n</Stream>\n`, line: 3 };
      return { text: `<Feed feed1.ffm>\n</Feed>\n<Stream s.flv>\nFeed feed1.ffm\n${directiveLine}\n</Stream>\n`, line: 5 };
    case 'redirect':
      return { text: `<Redirect r>\nURL http://example.com/\n${directiveLine}\n</Redirect>\n`, line: 3 };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Every directive of the table, in every scope it is allowed in, accepts its documented example.

const EXPECTED_WARNINGS: Record<string, RegExp> = {
  MulticastPort: /no effect without MulticastAddress/,
  MulticastTTL: /no effect without MulticastAddress/,
  HTTPSPort: /HTTPS is off: HTTPSPort needs SSLCertificate/,
  RTMPSPort: /RTMPS is off: RTMPSPort needs SSLCertificate/,
};

for (const d of DIRECTIVES) {
  for (const scope of d.scopes) {
    test(`accepts ${d.name} ${d.example} (${scope})`, async () => {
      const { text, line } = inScope(scope, `${d.name} ${d.example}`.trim(), d.name);
      if (d.removed !== undefined) {
        const err = await errorsOf(text);
        assert.deepEqual(
          err.errors.map((e) => e.message),
          [`test.conf:${line}: ${d.removed}`],
        );
        return;
      }
      const config = await parse(text);
      const warnings = config.warnings.map((w) => `${w.where}: ${w.message}`);
      const expected = d.deprecated ?? d.obsolete;
      if (expected !== undefined) assert.ok(warnings.includes(`test.conf:${line}: ${expected}`), warnings.join('\n'));
      else if (EXPECTED_WARNINGS[d.name] === undefined) assert.deepEqual(warnings, []);
    });
  }
}

test('every directive has docs, an example and a syntax', () => {
  for (const d of DIRECTIVES) {
    assert.ok(d.doc.length > 10, d.name);
    assert.ok(d.scopes.length > 0, d.name);
    if (d.minArgs > 0) assert.ok(d.syntax.length > 0 && d.example.length > 0, d.name);
  }
  const names = DIRECTIVES.map((d) => d.name.toLowerCase());
  assert.equal(new Set(names).size, names.length, 'directive names are unique');
});

test('docs/config.md documents every directive', async () => {
  const doc = await readFile(new URL('../../docs/config.md', import.meta.url), 'utf8');
  const missing = DIRECTIVES.filter((d) => !doc.includes(`\`${d.name}\``)).map((d) => d.name);
  assert.deepEqual(missing, []);
});

// ---------------------------------------------------------------------------------------------------------------
// Rejections: one error, at the right line, saying what is wrong.

const rejects: [scope: Scope, line: string, message: RegExp][] = [
  ['global', 'HTTPPort abc', /^HTTPPort "abc" is not a whole number; write e\.g\. HTTPPort 8090$/],
  ['global', 'HTTPPort 0', /HTTPPort 0 is out of range; it must be between 1 and 65535/],
  ['global', 'HTTPPort 70000', /out of range/],
  ['global', 'HTTPPort', /^HTTPPort needs a value: HTTPPort PORT \(1–65535\)$/],
  ['global', 'Port 80x', /Port "80x" is not a whole number/],
  ['global', 'RTSPPort -1', /out of range/],
  ['global', 'RTMPPort 65536', /out of range/],
  ['global', 'HTTPBindAddress "not an address"', /is not an IP address or host name/],
  ['global', 'HTTPBindAddress no.such.host', /HTTPBindAddress 'no\.such\.host' cannot be resolved/],
  ['global', 'RTSPBindAddress ???', /not an IP address or host name/],
  ['global', 'MaxHTTPConnections 0', /between 1 and 65535/],
  ['global', 'MaxClients 70000', /between 1 and 65535/],
  [
    'global',
    'MaxClients 3000',
    /MaxClients \(3000\) is higher than MaxHTTPConnections \(2000\); raise MaxHTTPConnections or lower MaxClients/,
  ],
  ['global', 'MaxBandwidth 5', /MaxBandwidth 5 is out of range; it must be between 10 and 10000000/],
  ['global', 'MaxBandwidth 1.5', /not a whole number/],
  ['global', 'CustomLog ""', /CustomLog needs a non-empty/],
  ['global', 'LoadModule mod_x.so', /no longer supported/],
  ['global', 'FFmpegPath', /FFmpegPath needs a value/],
  ['global', 'PublisherTimeout 0', /out of range/],
  ['global', 'PublisherTimeout soon', /"soon" is not a number/],
  ['global', 'PublisherGracePeriod -1', /out of range/],
  ['global', 'DynamicFeeds maybe', /DynamicFeeds "maybe" must be on or off/],
  ['global', 'DynamicFeeds on please', /DynamicFeeds takes at most 1 value, got extra 'please'/],
  ['global', 'ReaderMaxQueue 1K', /ReaderMaxQueue 1K is too small/],
  ['global', 'ReaderMaxQueue lots', /is not a size/],
  ['global', 'ReaderMaxLag 0', /out of range/],
  ['global', 'Format flv', /Format is not allowed at global level; it belongs inside <Stream>/],
  ['global', 'HTTPPrt 8090', /unknown directive 'HTTPPrt' at global level; did you mean HTTPPort\?/],
  ['global', 'Frobnicate 1', /unknown directive 'Frobnicate' at global level; see docs\/config\.md/],
  ['feed', 'FileMaxSize abc', /^FileMaxSize "abc" is not a size; write e\.g\. 200K, 5M or 1G$/],
  ['feed', 'FileMaxSize 10K', /FileMaxSize 10K is too small; it must be at least 16384 bytes \(16K\)/],
  ['feed', 'FileMaxSize 5X', /is not a size/],
  ['feed', 'FileMaxSize -5M', /is not a size/],
  ['feed', 'Launch', /Launch needs a value/],
  ['feed', 'Record maybe', /Record "maybe" must be on or off/],
  ['feed', 'RecordPath rec/%feed/%Y-%m-%d.mp4', /RecordPath "rec\/%feed\/%Y-%m-%d\.mp4" must contain %S \(or %s\)/],
  ['feed', 'RecordPath rec/%feed/%Q%S.mp4', /RecordPath "rec\/%feed\/%Q%S\.mp4" has an unknown field %Q/],
  ['feed', 'RecordSegment 0', /RecordSegment 0 s is out of range; it must be between 1 and 604800 s/],
  ['feed', 'RecordSegment soon', /RecordSegment "soon" is not a duration; write e\.g\. RecordSegment 1h/],
  ['feed', 'RecordFormat mkv', /RecordFormat "mkv" must be fmp4 or ts/],
  ['feed', 'RecordRetention forever', /RecordRetention "forever" is not an age \(7d, 12h\) or a size/],
  ['feed', 'RecordRetention 7d 8d', /RecordRetention "8d" is not an age .* or gives one twice/],
  ['feed', 'RecordRetention 100K', /RecordRetention 102400 bytes is too small; it must be at least 1M/],
  ['feed', 'ACL allow', /ACL needs 2 values/],
  ['feed', 'ACL permit 127.0.0.1', /ACL action 'permit' must be allow or deny/],
  ['feed', 'ACL allow nosuch.invalid', /cannot resolve host name 'nosuch\.invalid'/],
  ['feed', 'PublishSecret ""', /PublishSecret needs a non-empty/],
  ['feed', 'SRTPassphrase short', /SRTPassphrase must be 10 to 79 characters long \(SRT's limits\), not 5/],
  ['global', 'SRTLatency 5', /SRTLatency 5 is out of range; it must be between 20 and 60000/],
  ['global', 'SRTPort 70000', /out of range/],
  ['feed', 'HTTPPort 8090', /HTTPPort is not allowed inside <Feed>; it belongs at global level/],
  ['feed', 'Format flv', /Format is not allowed inside <Feed>; it belongs inside <Stream>/],
  ['feed', 'Fille /tmp/x', /unknown directive 'Fille' inside <Feed>; did you mean File/],
  ['stream', 'Format xyz', /Format 'xyz' is unknown; known formats: flv, mpegts, hls/],
  ['stream', 'Feed nosuch.ffm', /Feed 'nosuch\.ffm' for stream 's\.flv' is not defined; defined feeds: feed1\.ffm/],
  ['stream', 'Feed feed1', /did you mean Feed feed1\.ffm\?/],
  ['stream', 'Preroll -1', /out of range/],
  ['stream', 'Preroll 15s', /"15s" is not a number/],
  ['stream', 'MaxTime forever', /not a number/],
  ['stream', 'MulticastPort 0', /out of range/],
  ['stream', 'MulticastTTL 300', /between 0 and 255/],
  ['stream', 'MulticastAddress nosuch.invalid', /cannot be resolved/],
  ['stream', 'FaviconURL http://x/favicon.ico', /only allowed in a status stream/],
  ['stream', 'Metadata title', /Metadata needs 2 values/],
  ['stream', 'InputFormat a/b', /not an ffmpeg demuxer name/],
  ['stream', 'URL http://x/', /URL is not allowed inside <Stream>; it belongs inside <Redirect>/],
  ['stream', 'AudioCodec libx264', /libx264 is a video encoder; use VideoCodec libx264/],
  ['stream', 'VideoCodec aac', /aac is an audio encoder; use AudioCodec aac/],
  ['stream', 'VideoCodec "lib x264"', /not an encoder name/],
  ['stream', 'AudioBitRate 0', /out of range/],
  ['stream', 'AudioBitRate fast', /not a number/],
  ['stream', 'AudioChannels 0', /out of range/],
  ['stream', 'AudioSampleRate 100', /between 1000 and 768000/],
  ['stream', 'VideoBitRate 1.5', /not a whole number/],
  ['stream', 'VideoBitRateRange 800-200', /the minimum is above the maximum; swap them/],
  ['stream', 'VideoBitRateRange 800', /must be MIN-MAX in kbit\/s/],
  ['stream', 'VideoBitRateTolerance -5', /out of range/],
  ['stream', 'VideoBufferSize big', /not a whole number/],
  ['stream', 'VideoFrameRate 0', /out of range/],
  ['stream', 'VideoFrameRate fast', /not a frame rate/],
  ['stream', 'VideoFrameRate 25/0', /not a frame rate/],
  ['stream', 'VideoSize 640', /VideoSize "640" is not a video size; write WIDTHxHEIGHT/],
  ['stream', 'VideoSize 0x10', /out of range/],
  ['stream', 'VideoSize hd9999', /not a video size/],
  ['stream', 'PixelFormat yuv-420', /not a pixel format name/],
  ['stream', 'VideoGopSize 0', /out of range/],
  ['stream', 'VideoTag XVI', /not a four-character code/],
  ['stream', 'VideoQMin 70', /between -1 and 69/],
  ['stream', 'VideoQMax 2000', /out of range/],
  ['stream', 'VideoQDiff x', /not a whole number/],
  ['stream', 'Qscale 300', /out of range/],
  ['stream', 'LumiMask dark', /not a number/],
  ['stream', 'DarkMask light', /not a number/],
  ['stream', 'Debug "a b"', /not ffmpeg debug flags/],
  ['stream', 'Strict 5', /out of range/],
  ['stream', 'Strict lax', /not a strictness level/],
  ['stream', 'AVOptionVideo flags', /AVOptionVideo needs 2 values/],
  ['stream', 'AVOptionAudio', /AVOptionAudio needs 2 values/],
  ['stream', 'AVPresetVideo ""', /AVPresetVideo needs a non-empty/],
  [
    'global',
    'WriteCoalesce fast',
    /WriteCoalesce "fast" is not a whole number of milliseconds; write e\.g\. WriteCoalesce 10, or WriteCoalesce off/,
  ],
  ['global', 'WriteCoalesce 5000', /out of range/],
  ['global', 'WebRTCAddress example.org', /WebRTCAddress "example\.org" is not an IP address/],
  ['global', 'WebRTCPortRange 50000 40000', /the first port must not be above the second/],
  ['global', 'WebRTCPortRange 80 90', /out of range/],
  ['global', 'WebRTCIceServer http://x', /is not a stun:, turn: or turns: URL/],
  ['global', 'WebRTCIceServer turn:t.example.org', /a TURN server needs USERNAME CREDENTIAL/],
  ['global', 'WebRTCIceServer stun:s.example.org user', /needs both a USERNAME and a CREDENTIAL/],
  ['redirect', 'Feed feed1.ffm', /Feed is not allowed inside <Redirect>; it belongs inside <Stream>/],
  ['redirect', 'URL ""', /URL needs a non-empty/],
];

for (const [scope, line, message] of rejects) {
  test(`rejects ${line} (${scope})`, async () => {
    const placed = inScope(scope, line);
    const err = await errorsOf(placed.text);
    assert.equal(err.errors.length, 1, err.message);
    const [e] = err.errors;
    assert.ok(e instanceof ConfigError);
    assert.equal(e.where, `test.conf:${placed.line}`);
    const detail = e.message.slice(e.where.length + 2);
    assert.match(detail, message);
    assert.equal(err.message, e.message);
  });
}

test("the brief's example message, exactly", async () => {
  const text = [
    'HTTPPort 8090',
    ...Array.from({ length: 9 }, () => '# filler'),
    '<Feed feed1.ffm>',
    'FileMaxSize abc',
    '</Feed>',
  ].join('\n');
  const err = await errorsOf(text, 'server.conf');
  assert.equal(err.message, 'server.conf:12: FileMaxSize "abc" is not a size; write e.g. 200K, 5M or 1G');
});

test('all errors are reported together, in line order, one file:line line each', async () => {
  const text = [
    'HTTPPort nope', // 1
    'Bogus 1', // 2
    '<Feed feed1.ffm>', // 3
    'FileMaxSize 1K', // 4
    'ACL allow 1.2.3', // 5
    '</Feed>', // 6
    '<Stream live.flv>', // 7
    'Feed missing.ffm', // 8
    'VideoSize 12', // 9
    '</Stream>', // 10
    '<Redirect r>', // 11
    '</Redirect>', // 12
  ].join('\n');
  const err = await errorsOf(text, 'many.conf');
  assert.ok(err instanceof ConfigError);
  assert.equal(err.code, 'FC_ERR_CONFIG');
  assert.deepEqual(
    err.errors.map((e) => e.where),
    ['many.conf:1', 'many.conf:2', 'many.conf:4', 'many.conf:5', 'many.conf:8', 'many.conf:9', 'many.conf:11'],
  );
  const lines = err.message.split('\n');
  assert.equal(lines.length, 7);
  for (const line of lines) assert.match(line, /^many\.conf:\d+: \S/);
  assert.match(lines[6] ?? '', /<Redirect r> has no URL; add a line URL http/);
});

// ---------------------------------------------------------------------------------------------------------------
// Sections.

const sectionErrors: [text: string, where: string, message: RegExp][] = [
  [
    '<Feed a>\n<Stream b.flv>\n</Stream>',
    't.conf:2',
    /<Stream b\.flv> is inside <Feed a> \(line 1\): sections cannot be nested; add <\/Feed> before this line/,
  ],
  ['<Feed a>\nFile /tmp/a\n', 't.conf:1', /<Feed a> \(line 1\) is never closed; add <\/Feed> at its end/],
  ['<Stream s.flv>\nFeed a\n', 't.conf:1', /<Stream s\.flv> \(line 1\) is never closed/],
  ['<Feed a>\n</Feed>\n<Feed a>\n</Feed>', 't.conf:3', /feed 'a' is already defined at line 1; feed names must be unique/],
  ['<Feed a.ffm>\n</Feed>\n<Feed a>\n</Feed>', 't.conf:3', /same URL name 'a'/],
  [
    '<Feed a>\n</Feed>\n<Stream s.flv>\nFeed a\n</Stream>\n<Stream s.flv>\nFeed a\n</Stream>',
    't.conf:6',
    /stream 's\.flv' is already defined at line 3/,
  ],
  [
    '<Stream s.flv>\nFeed a\n</Stream>\n<Feed a>\n</Feed>',
    't.conf:2',
    /Feed 'a' is defined below this stream \(line 4\); move the <Feed a> section above <Stream s\.flv>/,
  ],
  ['</Feed>', 't.conf:1', /<\/Feed> has no matching <Feed NAME>/],
  ['<Feed a>\n</Stream>', 't.conf:2', /<\/Stream> cannot close <Feed a> \(line 1\); write <\/Feed>/],
  ['<Feed a>\n</Feed>\n<Stream a>\nFeed a\n</Stream>', 't.conf:3', /same name as the feed/],
  [
    '<Feed a>\n</Feed>\n<Stream live>\nFeed a\n</Stream>',
    't.conf:3',
    /cannot tell the format of stream 'live' from its name; add a Format line \(known formats: flv/,
  ],
  ['<Stream stats.html>\n</Stream>', 't.conf:1', /looks like a status page but has no Format; add Format status/],
  ['<Stream s.flv>\n</Stream>', 't.conf:1', /has neither Feed nor File/],
  [
    '<Feed a>\n</Feed>\n<Stream s.flv>\nFeed a\nFile /tmp/x.flv\n</Stream>',
    't.conf:3',
    /has both Feed and File; keep one of them/,
  ],
  ['<Redirect r>\n</Redirect>', 't.conf:1', /has no URL/],
  ['<Foo x>\n</Foo>', 't.conf:1', /unknown section/],
  ['<Feed a>\n</Feed>\n<Stream s.mpg>\nFeed a\nNoDefaults\n</Stream>', 't.conf:3', /NoDefaults but sets no AudioBitRate/],
  [
    '<Feed a>\n</Feed>\n<Stream s.flv>\nFeed a\nVideoQMin 20\nVideoQMax 10\n</Stream>',
    't.conf:3',
    /VideoQMin 20 is above VideoQMax 10/,
  ],
  [
    '<Feed a>\n</Feed>\n<Stream s.flv>\nFeed a\nVideoGopSize 12\nVideoIntraOnly\n</Stream>',
    't.conf:6',
    /VideoIntraOnly sets the video option 'g', which VideoGopSize \(line 5\) already set; remove one of them/,
  ],
  [
    '<Feed a>\n</Feed>\n<Stream s.flv>\nFeed a\nVideoBitRate 100\nAVOptionVideo b 200000\n</Stream>',
    't.conf:6',
    /option 'b', which VideoBitRate \(line 5\) already set/,
  ],
  [
    '<Feed a>\n</Feed>\n<Stream s.flv>\nFeed a\nAudioBitRate 64\nAudioBitRate 96\n</Stream>',
    't.conf:6',
    /AudioBitRate sets the audio option 'b'/,
  ],
  ['HTTPPort 5454\nRTSPPort 5454', 't.conf:2', /HTTPPort and RTSPPort are both 5454; give each listener its own port/],
];

for (const [text, where, message] of sectionErrors) {
  test(`section error: ${JSON.stringify(text.slice(0, 60))}`, async () => {
    const err = await errorsOf(text, 't.conf');
    const hit = err.errors.find((e) => e.where === where && message.test(e.message));
    assert.ok(hit, `no error at ${where} matching ${String(message)} in:\n${err.message}`);
  });
}

test('nesting recovers: the inner section is still parsed and the outer one closed', async () => {
  const err = await errorsOf('<Feed a>\n<Stream s.flv>\nFeed a\nFormat bogus\n</Stream>\n', 't.conf');
  assert.deepEqual(
    err.errors.map((e) => e.where),
    ['t.conf:2', 't.conf:4'],
  );
});

// ---------------------------------------------------------------------------------------------------------------
// Warnings.

const warningCases: [text: string, where: string, message: RegExp][] = [
  ['Port 8090', 'w.conf:1', /^Port is deprecated; use HTTPPort instead$/],
  ['BindAddress 0.0.0.0', 'w.conf:1', /BindAddress is deprecated; use HTTPBindAddress instead/],
  ['NoDaemon', 'w.conf:1', /NoDaemon has no effect/],
  ['HTTPPort 80', 'w.conf:1', /system port/],
  ['HTTPPort 8090 the port', 'w.conf:1', /HTTPPort: extra text 'the port' is ignored; quote a value that contains spaces/],
  ['File /tmp/my file', 'w.conf:1', /File is not allowed at global level/],
  ['<Feed a>\nFile /tmp/a\nTruncate 1\n</Feed>', 'w.conf:3', /Truncate N is deprecated; write Truncate alone/],
  [
    '<Feed a>\nFile /tmp/a\nFileMaxSize 20000\n</Feed>',
    'w.conf:3',
    /FileMaxSize 20000 is taken as bytes; ffserver 3\.4 required a K, M or G suffix, write e\.g\. 20K/,
  ],
  ['<Feed a>\nFileMaxSize 1M\n</Feed>', 'w.conf:2', /FileMaxSize has no effect: feed 'a' has no File/],
  ['<Feed a>\nFile "/tmp/my a.ffm\n</Feed>', 'w.conf:2', /unterminated quote/],
  [
    '<Feed a>\nFile /tmp/my a.ffm\n</Feed>',
    'w.conf:2',
    /File: extra text 'a\.ffm' is ignored; quote a value that contains spaces/,
  ],
  [
    '<Feed a>\n</Feed>\n<Stream s.ffm>\nFeed a\n</Stream>',
    'w.conf:3',
    /ffm streams \(ffserver to ffserver\) are not served by Feedcast; relay with Format mpegts or flv instead \(format guessed/,
  ],
  [
    '<Feed a>\n</Feed>\n<Stream s.flv>\nFeed a\nAuthor "Me"\n</Stream>',
    'w.conf:5',
    /Author is deprecated; write Metadata author VALUE instead/,
  ],
  ['<Feed a>\n</Feed>\n<Stream s.flv>\nFeed a\nVideoSize 161x121\n</Stream>', 'w.conf:5', /not a multiple of 2/],
  [
    '<Feed a>\n</Feed>\n<Stream s.flv>\nFeed a\nUseDefaults\nNoDefaults\n</Stream>',
    'w.conf:6',
    /more than one UseDefaults\/NoDefaults/,
  ],
  [
    'RTSPPort 0\n<Feed a>\n</Feed>\n<Stream s.sdp>\nFeed a\nFormat rtp\n</Stream>',
    'w.conf:4',
    /uses Format rtp, which is served over RTSP, but RTSP is off/,
  ],
  [
    '<Stream s.flv>\nFile /media/x.flv\nVideoSize 640x360\n</Stream>',
    'w.conf:3',
    /encoder directives are ignored for the file stream/,
  ],
  ['<Stream stat.html>\nFormat status\nVideoSize 640x360\n</Stream>', 'w.conf:3', /ignored in the status stream/],
  ['<Stream s.sdp>\nFormat rtp\nFile /x.ts\nMulticastAddress 10.0.0.1\n</Stream>', 'w.conf:4', /not a multicast address/],
  ['<Feed a>\n</Feed>\n<Stream s.flv>\nFeed a\nNoAudio\nNoVideo\n</Stream>', 'w.conf:3', /carries nothing/],
  ['<Redirect r>\nURL elsewhere\n</Redirect>', 'w.conf:2', /neither an absolute URL nor a path/],
  ['<Feed a>\n</Feed>\n<Redirect a>\nURL /x\n</Redirect>', 'w.conf:3', /same name as the section at line 1/],
  ['HTTPPort 1935', 'w.conf:1', /RTMP is off: its default port 1935 is taken by HTTPPort; set RTMPPort to turn it on/],
];

for (const [text, where, message] of warningCases) {
  test(`warning: ${JSON.stringify(text.slice(0, 60))}`, async () => {
    let config: ServerConfig;
    try {
      config = await parse(text, 'w.conf');
    } catch (err) {
      // Some cases also have an error (e.g. a global File); the warning test is about the warnings only.
      assert.ok(err instanceof ConfigErrors);
      const hit = err.errors.find((e) => e.where === where && message.test(e.message));
      assert.ok(hit, err.message);
      return;
    }
    const hit = config.warnings.find((w) => w.where === where && message.test(w.message));
    assert.ok(hit, `no warning at ${where} matching ${String(message)} in ${JSON.stringify(config.warnings, null, 1)}`);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Lexical behaviour seen through the parser.

test('directive names and section names are case-insensitive (issue 18)', async () => {
  const config = await parse(
    'httpport 8091\nMAXCLIENTS 10\n<feed Cam.ffm>\nfile /tmp/cam\n</FEED>\n<STREAM cam.flv>\nfeed Cam.ffm\nformat FLV\n</stream>\n',
  );
  assert.equal(config.http.port, 8091);
  assert.equal(config.maxClients, 10);
  assert.equal(config.feeds[0]?.name, 'Cam.ffm');
  assert.equal(config.streams[0]?.feed, 'Cam.ffm');
  assert.equal(config.streams[0]?.format.name, 'flv');
  // A stream names its feed in any case; the feed keeps the case it was declared with.
  const other = await parse('<Feed Cam.FFM>\nFile /tmp/cam\n</Feed>\n<Stream cam.flv>\nFeed cam.ffm\n</Stream>');
  assert.equal(other.streams[0]?.feed, 'Cam.FFM');
  assert.equal(other.feeds[0]?.key, 'Cam');
  // Names that differ only in case are the same URL: a duplicate.
  const dup = await errorsOf(
    '<Feed a.ffm>\n</Feed>\n<Stream x.flv>\nFeed a.ffm\n</Stream>\n<Stream X.FLV>\nFeed A.ffm\n</Stream>',
  );
  assert.match(dup.message, /:6: stream 'X\.FLV' is already defined at line 3/);
  const feeds = await errorsOf('<Feed a.ffm>\n</Feed>\n<Feed A.FFM>\n</Feed>');
  assert.match(feeds.message, /:3: feed 'A\.FFM' is already defined at line 1/);
});

test('quoted values keep spaces; both quote styles', async () => {
  const config = await parse(
    [
      '<Feed a.ffm>',
      'File "/var/lib/my feeds/a.ffm"',
      'Launch ffmpeg -f lavfi -i "testsrc2=size=640x360:rate=25" -metadata \'title=My Title\'',
      '</Feed>',
      '<Stream a.flv>',
      'Feed a.ffm',
      'Metadata title "Hello world"',
      'Metadata comment \'say "hi"\'',
      'Title "Old style"',
      '</Stream>',
    ].join('\n'),
  );
  assert.equal(config.feeds[0]?.file, '/var/lib/my feeds/a.ffm');
  assert.deepEqual(config.feeds[0]?.launch, [
    'ffmpeg',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=640x360:rate=25',
    '-metadata',
    'title=My Title',
  ]);
  assert.deepEqual(config.streams[0]?.metadata, { title: 'Old style', comment: 'say "hi"' });
});

const sizes: [text: string, bytes: number][] = [
  ['200K', 200 * 1024],
  ['200k', 200 * 1024],
  ['200KB', 200 * 1024],
  ['0.5M', 512 * 1024],
  ['5M', 5 * 1024 * 1024],
  ['1.5G', 1.5 * 1024 ** 3],
  ['16K', 16384],
  ['16384', 16384],
  ['1e2K', 100 * 1024],
];

for (const [text, bytes] of sizes) {
  test(`FileMaxSize ${text} = ${bytes} bytes`, async () => {
    const config = await parse(`<Feed a>\nFile /tmp/a\nFileMaxSize ${text}\n</Feed>`);
    assert.equal(config.feeds[0]?.fileMaxSizeBytes, bytes);
    assert.equal(config.warnings.length, /\d$/.test(text) ? 1 : 0);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Defaults and the model.

test('an empty file gives every default (same as defaultConfig)', async () => {
  const config = await parse('# nothing\n', 'empty.conf');
  // Issue 18 class 5: a config file without RTSPPort has no RTSP (the demo, without a file, has it).
  // Issue 23: nor SRT without SRTPort (the demo listens on 8890).
  assert.deepEqual(
    config,
    defaultConfig({
      source: 'empty.conf',
      rtsp: { port: undefined, bindAddress: '0.0.0.0' },
      srt: { port: undefined, bindAddress: '0.0.0.0', latencyMs: 120 },
    }),
  );
  assert.equal(defaultConfig().srt.port, 8890);
  assert.deepEqual(config.http, { port: 8090, bindAddress: '0.0.0.0' });
  assert.equal(config.rtsp.port, undefined);
  assert.equal(defaultConfig().rtsp.port, 5454);
  assert.deepEqual(config.rtmp, { port: 1935, bindAddress: '0.0.0.0', chunkSize: 4096 });
  assert.equal(config.maxClients, 1000);
  assert.equal(config.maxHttpConnections, 2000);
  assert.equal(config.maxBandwidthKbps, 10_000_000);
  assert.equal(config.publisherTimeoutMs, 5000);
  assert.equal(config.publisherGraceMs, 30000);
  assert.equal(config.dynamicFeeds, false);
  assert.equal(config.readerMaxQueueBytes, 8 * 1024 * 1024);
  assert.equal(config.readerMaxLagMs, 10000);
  assert.equal(config.customLog, undefined);
  assert.equal(config.ffmpegPath, undefined);
});

test('defaultConfig applies overrides and shares no state between calls', () => {
  const a = defaultConfig({ rtsp: { port: 5454, bindAddress: '0.0.0.0' }, dynamicFeeds: true });
  assert.equal(a.rtsp.port, 5454);
  assert.equal(a.dynamicFeeds, true);
  const b = defaultConfig();
  b.feeds.push({} as never);
  assert.equal(defaultConfig().feeds.length, 0);
  assert.equal(b.http.port, GLOBAL_DEFAULTS.httpPort);
});

const globalEffects: [text: string, check: (c: ServerConfig) => unknown, expected: unknown][] = [
  ['HTTPPort 9000', (c) => c.http.port, 9000],
  ['Port 9001', (c) => c.http.port, 9001],
  ['HTTPBindAddress 127.0.0.1', (c) => c.http.bindAddress, '127.0.0.1'],
  ['HTTPBindAddress ::1', (c) => c.http.bindAddress, '::1'],
  ['HTTPBindAddress media.example', (c) => c.http.bindAddress, '192.0.2.7'],
  ['BindAddress 127.0.0.2', (c) => c.http.bindAddress, '127.0.0.2'],
  ['RTSPPort 5454', (c) => c.rtsp.port, 5454],
  ['RTSPBindAddress localhost', (c) => c.rtsp.bindAddress, '127.0.0.1'],
  ['RTMPPort 0', (c) => c.rtmp.port, 0],
  ['RTMPBindAddress 10.0.0.1', (c) => c.rtmp.bindAddress, '10.0.0.1'],
  // Issue 23: a config file has no SRT unless it asks (SRTPort, or SRTBindAddress alone: 8890).
  ['HTTPPort 8090', (c) => c.srt.port, undefined],
  ['SRTPort 9000', (c) => [c.srt.port, c.srt.bindAddress, c.srt.latencyMs], [9000, '0.0.0.0', 120]],
  ['SRTBindAddress 127.0.0.1', (c) => [c.srt.port, c.srt.bindAddress], [8890, '127.0.0.1']],
  ['SRTPort 0', (c) => c.srt.port, undefined],
  ['SRTPort 8890\nSRTLatency 400', (c) => c.srt.latencyMs, 400],
  ['HTTPBindAddress 127.0.0.2\nSRTPort 8890', (c) => c.srt.bindAddress, '127.0.0.2'],
  ['MaxHTTPConnections 100', (c) => [c.maxHttpConnections, c.maxClients], [100, 100]],
  ['MaxClients 3000\nMaxHTTPConnections 4000', (c) => [c.maxHttpConnections, c.maxClients], [4000, 3000]],
  ['MaxBandwidth 1000', (c) => c.maxBandwidthKbps, 1000],
  ['CustomLog /var/log/feedcast.log', (c) => c.customLog, '/var/log/feedcast.log'],
  ['FFmpegPath /opt/ffmpeg/bin/ffmpeg', (c) => c.ffmpegPath, '/opt/ffmpeg/bin/ffmpeg'],
  ['PublisherTimeout 2.5', (c) => c.publisherTimeoutMs, 2500],
  ['PublisherGracePeriod 0', (c) => c.publisherGraceMs, 0],
  ['DynamicFeeds on', (c) => c.dynamicFeeds, true],
  ['DynamicFeeds OFF', (c) => c.dynamicFeeds, false],
  ['ReaderMaxQueue 0.5M', (c) => c.readerMaxQueueBytes, 524288],
  ['ReaderMaxQueue 100000', (c) => c.readerMaxQueueBytes, 100000],
  ['ReaderMaxLag 3', (c) => c.readerMaxLagMs, 3000],
  ['NoDefaults', (c) => c.useDefaults, false],
  ['NoDefaults\nUseDefaults', (c) => c.useDefaults, true],
  ['WriteCoalesce 20', (c) => c.writeCoalesceMs, 20],
  ['<Feed f.ffm>\nFile /tmp/f.ffm\nFileSync 0.5\n</Feed>', (c) => c.feeds[0]?.fileSyncMs, 500],
  ['<Feed f.ffm>\nFile /tmp/f.ffm\nFileSync off\n</Feed>', (c) => c.feeds[0]?.fileSyncMs, undefined],
  ['<Feed f.ffm>\nFile /tmp/f.ffm\n</Feed>', (c) => c.feeds[0]?.fileSyncMs, 1000],
  ['WriteCoalesce off', (c) => c.writeCoalesceMs, 'off'],
  ['WebRTC off', (c) => c.webrtc.enabled, false],
  ['WebRTCAddress 192.0.2.10 ::1', (c) => c.webrtc.addresses, ['192.0.2.10', '::1']],
  ['WebRTCUDPPort 8189', (c) => c.webrtc.udpPort, 8189],
  ['WebRTCPortRange 40000 40999', (c) => c.webrtc.portRange, [40000, 40999]],
  ['WebRTCTCP on', (c) => c.webrtc.tcp, true],
  [
    'WebRTCIceServer stun:stun.example.org:3478\nWebRTCIceServer turn:turn.example.org user secret',
    (c) => c.webrtc.iceServers,
    [{ urls: 'stun:stun.example.org:3478' }, { urls: 'turn:turn.example.org', username: 'user', credential: 'secret' }],
  ],
  ['WebRTCServerIceServer stun:10.0.0.1:3478', (c) => c.webrtc.serverIceServers, [{ urls: 'stun:10.0.0.1:3478' }]],
  ['WebRTCPeerTimeout 4.5', (c) => c.webrtc.peerTimeoutMs, 4500],
  ['WebRTCTCPPort 8190', (c) => c.webrtc.tcpPort, 8190],
  ['WebRTCBindAddress 10.0.0.5', (c) => c.webrtc.bindAddress, '10.0.0.5'],
  ['WHIPKeyframeInterval 1', (c) => c.webrtc.whipKeyframeIntervalMs, 1000],
  ['WebRTCPlayoutDelayZero off', (c) => c.webrtc.playoutDelayZero, false],
  // Issue 23: lifecycle hooks, a URL or a program with its words (quoted words stay one argument).
  [
    'OnPublish http://127.0.0.1:9000/on-publish\nOnReadEnd /usr/bin/logger -t "feedcast read"',
    (c) => c.hooks.global.map((h) => [h.event, h.action, h.where]),
    [
      ['publish', { kind: 'url', url: 'http://127.0.0.1:9000/on-publish' }, 'test.conf:1'],
      ['read-end', { kind: 'command', argv: ['/usr/bin/logger', '-t', 'feedcast read'] }, 'test.conf:2'],
    ],
  ],
  [
    '<Feed cam.ffm>\nOnUnpublish notify-send gone\n</Feed>',
    (c) => [c.hooks.global, c.feeds[0]?.hooks.map((h) => [h.event, h.action])],
    [[], [['unpublish', { kind: 'command', argv: ['notify-send', 'gone'] }]]],
  ],
  [
    'HookTimeout 2.5\nHookConcurrency 8\nHookRetries 0',
    (c) => [c.hooks.timeoutMs, c.hooks.concurrency, c.hooks.retries],
    [2500, 8, 0],
  ],
  ['', (c) => [c.hooks.timeoutMs, c.hooks.concurrency, c.hooks.retries], [10_000, 4, 3]],
];

for (const [text, check, expected] of globalEffects) {
  test(`applies ${text.replace('\n', '; ')}`, async () => {
    assert.deepEqual(check(await parse(text)), expected);
  });
}

test('recording directives (issue 21): defaults per RecordFormat, durations and sizes with units', async () => {
  const config = await parse(
    [
      '<Feed a>',
      'Record on',
      '</Feed>',
      '<Feed b>',
      'Record on',
      'RecordFormat ts',
      'RecordSegment 10m',
      'RecordRetention 50G 7d',
      '</Feed>',
      '<Feed c>',
      'Record on',
      'RecordPath /rec/%feed/%s.mp4',
      'RecordSegment 90',
      'RecordRetention 12h',
      '</Feed>',
      '<Feed d>',
      'RecordSegment 1h',
      '</Feed>',
    ].join('\n'),
  );
  const [a, b, c, d] = config.feeds;
  assert.deepEqual(a?.record, {
    pathPattern: 'recordings/%feed/%Y-%m-%d/%H-%M-%S.mp4',
    segmentSeconds: 3600,
    format: 'fmp4',
    retentionSeconds: undefined,
    retentionBytes: undefined,
  });
  assert.deepEqual(b?.record, {
    pathPattern: 'recordings/%feed/%Y-%m-%d/%H-%M-%S.ts',
    segmentSeconds: 600,
    format: 'ts',
    retentionSeconds: 7 * 86_400,
    retentionBytes: 50 * 1024 ** 3,
  });
  assert.deepEqual(c?.record, {
    pathPattern: '/rec/%feed/%s.mp4',
    segmentSeconds: 90,
    format: 'fmp4',
    retentionSeconds: 12 * 3600,
    retentionBytes: undefined,
  });
  assert.equal(d?.record, undefined, 'not recorded without Record on');
});

test('feed model: key, file, truncate, launch URL, secret, ACL', async () => {
  const config = await parse(
    [
      'HTTPPort 8091',
      '<Feed feed1.ffm>',
      'ReadOnlyFile /saved/x.ffm',
      'FileMaxSize 1G',
      'Launch ffmpeg -re -i in.mp4',
      'PublishSecret abc',
      'SRTPassphrase correct-horse-battery',
      'ACL allow localhost',
      'ACL deny 10.0.0.0/8',
      '</Feed>',
      '<Feed cam>',
      'File /tmp/cam',
      'Truncate',
      '</Feed>',
    ].join('\n'),
  );
  const [f1, cam] = config.feeds;
  assert.ok(f1 !== undefined && cam !== undefined);
  assert.equal(f1.key, 'feed1');
  assert.equal(f1.file, '/saved/x.ffm');
  assert.equal(f1.readOnly, true);
  assert.equal(f1.fileMaxSizeBytes, 1024 ** 3);
  assert.deepEqual(f1.launch, ['ffmpeg', '-re', '-i', 'in.mp4']);
  assert.equal(f1.launchUrl, 'http://127.0.0.1:8091/feed1.ffm');
  assert.equal(f1.publishSecret, 'abc');
  assert.equal(f1.srtPassphrase, 'correct-horse-battery');
  assert.equal(cam.srtPassphrase, undefined);
  assert.equal(f1.acl.allows('::1'), true);
  assert.equal(f1.acl.allows('10.0.0.1'), false);
  assert.equal(f1.acl.allows('8.8.8.8'), true);
  assert.equal(f1.where, 'test.conf:2');
  assert.equal(cam.key, 'cam');
  assert.equal(cam.truncate, true);
  assert.equal(cam.readOnly, false);
  assert.equal(cam.fileMaxSizeBytes, 5 * 1024 * 1024);
  assert.equal(cam.launch, undefined);
  assert.equal(cam.acl.describe(), 'allow all');
});

const guessed: [name: string, format: string, muxer: string][] = [
  ['a.flv', 'flv', 'flv'],
  ['a.ts', 'mpegts', 'mpegts'],
  ['a.mpg', 'mpeg', 'mpeg'],
  ['a.asf', 'asf', 'asf_stream'],
  ['a.mjpg', 'mpjpeg', 'mpjpeg'],
  ['a.jpg', 'jpeg', 'mjpeg'],
  ['a.webm', 'webm', 'webm'],
  ['a.ogg', 'ogg', 'ogg'],
  ['a.mp3', 'mp3', 'mp3'],
  ['a.m3u8', 'hls', 'hls'],
  ['a.rm', 'rm', 'rm'],
  ['a.swf', 'swf', 'swf'],
  ['a.avi', 'avi', 'avi'],
  ['A.FLV', 'flv', 'flv'],
];

for (const [name, format, muxer] of guessed) {
  test(`stream ${name} without Format gets ${format}`, async () => {
    const config = await parse(`<Feed f>\n</Feed>\n<Stream ${name}>\nFeed f\n</Stream>`);
    assert.equal(config.streams[0]?.format.name, format);
    assert.equal(config.streams[0]?.format.muxer, muxer);
  });
}

test('stream model: passthrough vs transcode, encoding, bandwidth', async () => {
  const config = await parse(
    [
      'RTSPPort 5454',
      '<Feed f>',
      '</Feed>',
      '<Stream plain.flv>',
      'Feed f',
      'Preroll 2.5',
      'MaxTime 60',
      'StartSendOnKey',
      'ACL allow 192.168.0.0 192.168.255.255',
      'DynamicACL /etc/acl',
      '</Stream>',
      '<Stream low.ts>',
      'Feed f',
      'VideoCodec libx264',
      'VideoSize hd720',
      'VideoFrameRate 30000/1001',
      'VideoBitRate 800',
      'VideoBitRateRange 400-1200',
      'VideoIntraOnly',
      'VideoHighQuality',
      'Video4MotionVector',
      'BitExact',
      'Qscale 5',
      'Strict experimental',
      'AVOptionVideo flags +global_header',
      'AVOptionVideo flags +cgop',
      'AVOptionVideo libx264:preset veryfast',
      'AVPresetVideo baseline',
      'AudioCodec aac',
      'AudioBitRate 96.5',
      'AudioChannels 2',
      'AudioSampleRate 48000',
      '</Stream>',
      '<Stream still.jpg>',
      'Feed f',
      'NoAudio',
      'NoDefaults',
      'VideoSize 320x240',
      '</Stream>',
      '<Stream mc.sdp>',
      'Format rtp',
      'File /media/x.ts',
      'NoLoop',
      'MulticastAddress 224.124.0.1',
      'MulticastPort 5000',
      'RTSPOption tcp',
      '</Stream>',
    ].join('\n'),
  );
  const [plain, low, still, mc] = config.streams;
  assert.ok(plain && low && still && mc);
  assert.equal(plain.needsTranscode, false);
  assert.equal(plain.bandwidthKbps, 128); // ffserver's 64+64 defaults for the muxer's default codecs
  assert.equal(plain.prerollSeconds, 2.5);
  assert.equal(plain.maxTimeSeconds, 60);
  assert.equal(plain.startSendOnKey, true);
  assert.equal(plain.acl.allows('192.168.1.1'), true);
  assert.equal(plain.acl.allows('10.0.0.1'), false);
  assert.equal(plain.dynamicAcl, '/etc/acl');

  assert.equal(low.needsTranscode, true);
  const e = low.encoding;
  assert.equal(e.videoCodec, 'libx264');
  assert.deepEqual(e.videoSize, { width: 1280, height: 720 });
  assert.ok(Math.abs((e.frameRate ?? 0) - 29.97) < 0.001);
  assert.equal(e.videoBitRateKbps, 800);
  assert.deepEqual(e.videoBitRateRangeKbps, { min: 400, max: 1200 });
  assert.equal(e.intraOnly, true);
  assert.equal(e.highQuality, true);
  assert.equal(e.fourMotionVector, true);
  assert.equal(e.bitExact, true);
  assert.equal(e.qscale, 5);
  assert.equal(e.strict, 'experimental');
  // AVPresetVideo baseline: ffmpeg's former libx264-baseline.ffpreset, built in (no such file here).
  assert.deepEqual(e.videoAvOptions, {
    flags: '+global_header+cgop',
    'libx264:preset': 'veryfast',
    'libx264:profile': 'baseline',
  });
  assert.deepEqual(e.videoPresets, ['baseline']);
  assert.equal(e.audioCodec, 'aac');
  assert.equal(e.audioBitRateKbps, 96.5);
  assert.equal(e.audioChannels, 2);
  assert.equal(e.audioSampleRate, 48000);
  assert.equal(low.bandwidthKbps, 897);
  assert.ok(low.encoderDirectives.includes('VideoSize') && low.encoderDirectives.includes('AVOptionVideo'));

  assert.equal(still.format.singleFrame, true);
  assert.equal(still.noAudio, true);
  assert.equal(still.encoding.useDefaults, false);
  assert.equal(still.bandwidthKbps, 0); // NoDefaults and no VideoBitRate: nothing configured

  assert.equal(mc.file, '/media/x.ts');
  assert.equal(mc.feed, undefined);
  assert.equal(mc.format.support, 'rtp');
  assert.deepEqual(mc.multicast, { address: '224.124.0.1', port: 5000, ttl: 16 });
  assert.equal(mc.loop, true); // MulticastAddress after NoLoop turns looping back on, as in ffserver
  assert.equal(mc.rtspOption, 'tcp');
  assert.equal(mc.bandwidthKbps, 0);
});

test('global NoDefaults applies to the streams below it only', async () => {
  const config = await parse(
    '<Feed f>\n</Feed>\n<Stream a.flv>\nFeed f\n</Stream>\nNoDefaults\n<Stream b.flv>\nFeed f\n</Stream>',
  );
  assert.deepEqual(
    config.streams.map((s) => s.encoding.useDefaults),
    [true, false],
  );
});

test('status stream: FaviconURL after Format status, no feed, no bandwidth', async () => {
  const config = await parse('<Stream stat.html>\nFormat status\nFaviconURL http://x/f.ico\nACL allow localhost\n</Stream>');
  const [s] = config.streams;
  assert.equal(s?.format.support, 'status');
  assert.equal(s?.faviconUrl, 'http://x/f.ico');
  assert.equal(s?.bandwidthKbps, 0);
  assert.equal(s?.needsTranscode, false);
  const err = await errorsOf('<Stream stat.html>\nFaviconURL http://x/f.ico\nFormat status\n</Stream>');
  assert.match(err.message, /:2: FaviconURL is only allowed in a status stream, after its Format status line/);
});

test('redirects keep their URL', async () => {
  const config = await parse(
    '<Redirect index.html>\nURL http://www.ffmpeg.org/\n</Redirect>\n<Redirect old.flv>\nURL /new.flv\n</Redirect>',
  );
  assert.deepEqual(config.redirects, [
    { name: 'index.html', url: 'http://www.ffmpeg.org/', where: 'test.conf:1' },
    { name: 'old.flv', url: '/new.flv', where: 'test.conf:4' },
  ]);
});

// ---------------------------------------------------------------------------------------------------------------
// Committed configs.

test('examples/ffserver-sample.conf (ffserver 3.4 doc/ffserver.conf) loads as ffserver read it', async () => {
  const config = await loadConfigFile(new URL('../../examples/ffserver-sample.conf', import.meta.url).pathname, {
    resolveHost: resolver,
  });
  assert.equal(config.http.port, 8090);
  assert.equal(config.maxHttpConnections, 2000);
  assert.equal(config.maxClients, 1000);
  assert.equal(config.maxBandwidthKbps, 1000);
  assert.equal(config.customLog, '-');
  assert.equal(config.rtsp.port, undefined, 'RTSP is off without RTSPPort, as in ffserver (issue 18 class 5)');
  assert.deepEqual(
    config.feeds.map((f) => [f.name, f.key, f.file, f.fileMaxSizeBytes]),
    [['feed1.ffm', 'feed1', '/tmp/feed1.ffm', 200 * 1024]],
  );
  assert.equal(config.feeds[0]?.acl.allows('127.0.0.1'), true);
  assert.equal(config.feeds[0]?.acl.allows('192.168.1.2'), false);
  assert.deepEqual(
    config.streams.map((s) => [s.name, s.format.name, s.bandwidthKbps, s.needsTranscode]),
    [
      ['test1.mpg', 'mpeg', 96, true],
      ['test.asf', 'asf', 320, true],
      ['stat.html', 'status', 0, false],
    ],
  );
  const stat = config.streams[2];
  assert.equal(stat?.acl.allows('::1'), true);
  assert.equal(stat?.acl.allows('192.168.3.4'), true);
  assert.equal(stat?.acl.allows('5.6.168.192'), false);
  assert.deepEqual(config.redirects, [{ name: 'index.html', url: 'http://www.ffmpeg.org/', where: config.redirects[0]?.where }]);
  // Issue 27: test.asf is served (made by ffmpeg), so the sample loads without a warning.
  assert.deepEqual(
    config.warnings.map((w) => w.message),
    [],
  );
});

test('the commented-out streams of the ffserver sample load too', async () => {
  const text = await readFile(new URL('../../examples/ffserver-sample.conf', import.meta.url), 'utf8');
  // Uncomment every "#<Stream"…"#</Stream>" block (but not the prose comments).
  let inBlock = false;
  const lines = text.split('\n').map((line) => {
    if (/^#<Stream /.test(line)) inBlock = true;
    const out = inBlock && /^#[^#\s]/.test(line) ? line.slice(1) : line;
    if (/^#<\/Stream>/.test(line)) inBlock = false;
    return out;
  });
  const config = await parse(`RTSPPort 5454\n${lines.join('\n')}`, 'sample-all.conf');
  assert.deepEqual(
    config.streams.map((s) => s.name),
    [
      'test1.mpg',
      'test.mjpg',
      'test.jpg',
      'test.swf',
      'test.asf',
      'test.mp3',
      'test.ogg',
      'test.ra',
      'test.rm',
      'file.rm',
      'file.asf',
      'test1-rtsp.mpg',
      'live.h264',
      'test1-sdp.mpg',
      'stat.html',
    ],
  );
  const byName = new Map(config.streams.map((s) => [s.name, s]));
  assert.equal(byName.get('test.mp3')?.format.name, 'mp2');
  assert.equal(byName.get('live.h264')?.encoding.videoCodec, 'libx264');
  assert.deepEqual(byName.get('live.h264')?.encoding.videoPresets, ['default', 'baseline']);
  assert.deepEqual(byName.get('test1-sdp.mpg')?.multicast, { address: '224.124.0.1', port: 5000, ttl: 16 });
  assert.equal(byName.get('test1-sdp.mpg')?.loop, false);
  assert.deepEqual(byName.get('file.asf')?.metadata, {
    author: 'Me',
    copyright: 'Super MegaCorp',
    title: 'Test stream from disk',
    comment: 'Test comment',
  });
});

test('examples/feedcast.conf loads without warnings', async () => {
  const config = await loadConfigFile(new URL('../../examples/feedcast.conf', import.meta.url).pathname, {
    resolveHost: resolver,
  });
  assert.deepEqual(config.warnings, []);
  assert.equal(config.rtsp.port, 5454);
  assert.ok(config.feeds.length >= 2);
  assert.ok(config.streams.some((s) => s.needsTranscode));
  assert.ok(config.streams.some((s) => s.format.support === 'passthrough' && !s.needsTranscode));
});

test('loadConfigFile: a missing file is a ConfigErrors naming the path', async () => {
  await assert.rejects(loadConfigFile('/nonexistent/feedcast.conf'), (err: unknown) => {
    return (
      err instanceof ConfigErrors && /^\/nonexistent\/feedcast\.conf: cannot read the config file \(ENOENT\)/.test(err.message)
    );
  });
});

test('ffserver FATE config (tests/ffserver.conf) loads: PreRoll, MaxTime, BitExact, Qscale, Launch, RTSPPort', async () => {
  const text = [
    'HTTPPort 9999',
    'RTSPPort 9990',
    'HTTPBindAddress 0.0.0.0',
    'MaxClients 1000',
    'MaxBandwidth 100000',
    'CustomLog -',
    '<Feed feed1.ffm>',
    'File tests/feed1.ffm',
    'FileMaxSize 100M',
    'Launch ./ffmpeg -v 0 -y -f pgmyuv -i tests/vsynth1/%02d.pgm',
    'ACL allow localhost',
    '</Feed>',
    '<Stream test_h.avi>',
    'Feed feed1.ffm',
    'Format avi',
    '#',
    'BitExact',
    'DctFastint',
    'IdctSimple',
    'VideoFrameRate 10',
    'VideoSize 352x288',
    'VideoBitRate 100',
    'VideoGopSize 30',
    'NoAudio',
    '',
    'PreRoll 10',
    'StartSendOnKey',
    'MaxTime 100',
    '</Stream>',
    '<Stream test.swf>',
    'Feed feed1.ffm',
    'BitExact',
    'Qscale 10',
    'VideoSize    320x240',
    'NoAudio',
    '</Stream>',
    '<Stream test.jpg>',
    'Feed feed1.ffm',
    'Format jpeg',
    'Strict -1',
    'VideoFrameRate 1',
    'NoAudio',
    'PreRoll 2',
    '</Stream>',
    '<Stream teststat.html>',
    'Format status',
    '</Stream>',
  ].join('\n');
  const config = await parse(text, 'fate.conf');
  assert.equal(config.feeds[0]?.launchUrl, 'http://127.0.0.1:9999/feed1.ffm');
  assert.equal(config.streams[0]?.prerollSeconds, 10);
  assert.equal(config.streams[0]?.maxTimeSeconds, 100);
  assert.equal(config.streams[0]?.bandwidthKbps, 100);
  assert.equal(config.streams[2]?.encoding.strict, '-1');
});

test('HTTPSPort and RTMPSPort with a certificate pair make TLS listeners; without one they are off with a warning', async () => {
  const on = await parse('HTTPSPort 8443\nRTMPSPort 1936\nSSLCertificate /c.pem\nSSLCertificateKey /k.pem\n');
  assert.deepEqual(on.tls, { httpsPort: 8443, rtmpsPort: 1936, certFile: '/c.pem', keyFile: '/k.pem' });
  assert.deepEqual(on.warnings, []);
  const off = await parse('HTTPSPort 8443\n');
  assert.equal(off.tls.httpsPort, undefined);
  assert.match(off.warnings[0]?.message ?? '', /HTTPS is off/);
  const clash = await errorsOf('HTTPSPort 8090\nSSLCertificate /c.pem\nSSLCertificateKey /k.pem\n');
  assert.match(clash.message, /HTTPSPort and HTTPPort are both 8090/);
});

test('auth and abuse-limit directives land in the model', async () => {
  const c = await parse(
    'ReadTokenKey k1\nJWTKey k2\nJWKSFile /j.json\nAuthCallback http://127.0.0.1:9/a\nAuthCallbackTimeout 1.5\nMaxConnectionsPerAddress 7\nRequestHeaderTimeout 3\nTokenExpiryCutsReaders off\n' +
      '<Feed f.ffm>\nRequireReadToken\nMaxReaders 4\nDynamicACL /f.acl\n</Feed>\n<Stream s.flv>\nFeed f.ffm\nRequireReadToken\nMaxReaders 2\n</Stream>\n',
  );
  assert.deepEqual(c.auth, {
    readTokenKey: 'k1',
    jwtKey: 'k2',
    jwksFile: '/j.json',
    callbackUrl: 'http://127.0.0.1:9/a',
    callbackTimeoutMs: 1500,
    tokenExpiryCutsReaders: false,
  });
  assert.equal(c.maxConnectionsPerAddress, 7);
  assert.equal(c.requestHeaderTimeoutMs, 3000);
  const f = c.feeds[0];
  assert.deepEqual([f?.requireReadToken, f?.maxReaders, f?.dynamicAcl], [true, 4, '/f.acl']);
  const s = c.streams[0];
  assert.deepEqual([s?.requireReadToken, s?.maxReaders], [true, 2]);
  const bad = await errorsOf('AuthCallback ftp://x/\n');
  assert.match(bad.message, /http:\/\/ or https:\/\/ URL/);
});

test('cluster directives (issue 20): ClusterRedis with password, TLS and DB; NodeName, NodeURL, NodeTTL, RelayIdleTimeout', async () => {
  assert.equal((await parse('')).cluster, undefined, 'no ClusterRedis: no cluster');
  const c = await parse(
    'ClusterRedis rediss://feedcast:s3cret@redis.example:6380/2\nNodeName edge-1\nNodeURL http://10.0.0.2:8090/\nNodeTTL 4\nRelayIdleTimeout 2.5\nRelayVia mid-1\n',
  );
  assert.deepEqual(c.cluster, {
    redisUrl: 'rediss://feedcast:s3cret@redis.example:6380/2',
    nodeName: 'edge-1',
    nodeUrl: 'http://10.0.0.2:8090',
    nodeTtlMs: 4000,
    relayIdleTimeoutMs: 2500,
    relayVia: 'mid-1',
  });
  const defaults = await parse('ClusterRedis redis://127.0.0.1\n');
  assert.deepEqual(defaults.cluster, {
    redisUrl: 'redis://127.0.0.1',
    nodeName: undefined,
    nodeUrl: undefined,
    nodeTtlMs: 10_000,
    relayIdleTimeoutMs: 10_000,
    relayVia: undefined,
  });
  const cases: [string, RegExp][] = [
    [
      'ClusterRedis http://127.0.0.1:6379',
      /ClusterRedis "http:\/\/127\.0\.0\.1:6379" must start with redis:\/\/ \(or rediss:\/\/ for TLS\)/,
    ],
    ['ClusterRedis 127.0.0.1:6379', /is not a URL; write e\.g\. ClusterRedis redis:\/\/127\.0\.0\.1:6379\/0/],
    ['ClusterRedis redis://127.0.0.1/cache', /database "cache" is not a number/],
    ['ClusterRedis redis://127.0.0.1/0?x=1', /takes no query or fragment/],
    ['NodeName "edge 1"', /NodeName "edge 1" is not a node name/],
    [
      'NodeURL http://10.0.0.2:8090/feeds',
      /NodeURL "http:\/\/10\.0\.0\.2:8090\/feeds" is not an http:\/\/ or https:\/\/ URL without a path/,
    ],
    ['NodeURL 10.0.0.2:8090', /is not an http:\/\/ or https:\/\/ URL/],
    ['NodeTTL 0', /NodeTTL 0 s? ?is out of range|out of range/],
    ['RelayIdleTimeout soon', /RelayIdleTimeout "soon" is not a number/],
    ['RelayVia http://x', /RelayVia "http:\/\/x" is not a node name/],
  ];
  for (const [line, message] of cases) assert.match((await errorsOf(`${line}\n`)).message, message, line);
});

test('issue 18 class 4: a CustomLog or feed File in a missing directory and a missing stream File are errors with file:line', async () => {
  // The server crashed after it said ready (CustomLog) or printed a raw stack trace (feed File).
  const dir = await mkdtemp(join(tmpdir(), 'feedcast-paths-'));
  // A hook program that exists but cannot be run (issue 23).
  const file0 = join(dir, 'not-executable.sh');
  await writeFile(file0, '#!/bin/sh\n', { mode: 0o644 });
  try {
    const text = [
      `CustomLog ${dir}/nope/access.log   # missing directory`,
      '<Feed feed1.ffm>',
      `File ${dir}/missing/feed1.ffm`,
      '</Feed>',
      '<Feed feed2.ffm>',
      `File ${dir}/feed2.ffm`,
      '</Feed>',
      '<Stream movie.flv>',
      `File ${dir}/movie.flv`,
      '</Stream>',
      `OnPublish ${dir}/no-such-hook --flag`,
      `OnRead ${file0} arg   # not executable`,
    ].join('\n');
    const file = join(dir, 'paths.conf');
    await writeFile(file, text);
    const err = await loadConfigFile(file, { resolveHost: resolver }).then(
      () => assert.fail('expected ConfigErrors'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConfigErrors);
    assert.deepEqual(
      err.errors.map((e) => e.message.slice(file.length + 1)),
      [
        `1: CustomLog ${dir}/nope/access.log: the directory ${dir}/nope does not exist; create it (mkdir -p ${dir}/nope) or change CustomLog`,
        `3: File ${dir}/missing/feed1.ffm: the directory ${dir}/missing does not exist; create it (mkdir -p ${dir}/missing) or change File`,
        `9: File ${dir}/movie.flv does not exist; put the media file there or fix the path`,
        `11: OnPublish ${dir}/no-such-hook does not exist; give the program's full path`,
        `12: OnRead ${file0} cannot be run by this user (EACCES); chmod +x it or fix the path`,
      ],
    );
    // Config text alone (no files involved) is not checked against the disk.
    await parseConfigText(text, 'text.conf', { resolveHost: resolver });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('issue 18 class 5: listeners without their own bind address bind to HTTPBindAddress; RTSP only when asked', async () => {
  // HTTPBindAddress 127.0.0.1 left RTMP and RTSP open on 0.0.0.0, and RTSP listened without RTSPPort.
  const local = await parse('HTTPBindAddress 127.0.0.1\n');
  assert.equal(local.rtsp.port, undefined);
  assert.equal(local.rtmp.bindAddress, '127.0.0.1');
  assert.equal(local.rtsp.bindAddress, '127.0.0.1');
  assert.equal(local.webrtc.bindAddress, '127.0.0.1');
  const rtsp = await parse('HTTPBindAddress 127.0.0.1\nRTSPPort 8554\nRTMPBindAddress 0.0.0.0\n');
  assert.deepEqual(rtsp.rtsp, { port: 8554, bindAddress: '127.0.0.1' });
  assert.equal(rtsp.rtmp.bindAddress, '0.0.0.0', 'its own bind address wins');
  const bindOnly = await parse('RTSPBindAddress 127.0.0.2\n');
  assert.deepEqual(bindOnly.rtsp, { port: 5454, bindAddress: '127.0.0.2' });
  const wildcard = await parse('HTTPPort 8091\n');
  assert.equal(wildcard.webrtc.bindAddress, undefined, 'a wildcard HTTPBindAddress leaves WebRTC on every interface');
});

test('issue 18 class 3: AVPresetVideo/AVPresetAudio read ffmpeg preset files as ffserver did', async () => {
  // The presets were accepted and then never reached ffmpeg.
  const dir = await mkdtemp(join(tmpdir(), 'feedcast-presets-'));
  try {
    await writeFile(join(dir, 'libx264-lowdelay.ffpreset'), '# tuned for a camera\nbf=0\n\nflags=+cgop\nrefs=1\n');
    await writeFile(join(dir, 'vp8small.ffpreset'), 'vcodec=libvpx\ng=30\nvprofile=1\n');
    await writeFile(join(dir, 'voice.ffpreset'), 'ac=1\nar=16000\n');
    await writeFile(join(dir, 'broken.ffpreset'), 'bf 0\n');
    const presetDirs = [join(dir, 'none'), dir];
    const parseWith = (text: string): Promise<ServerConfig> =>
      parseConfigText(text, 'p.conf', { resolveHost: resolver, presetDirs });
    const config = await parseWith(
      [
        '<Feed f>',
        '</Feed>',
        '<Stream a.flv>',
        'Feed f',
        'VideoCodec libx264',
        'AVPresetVideo lowdelay      # CODEC-NAME.ffpreset',
        'AVOptionVideo flags +global_header',
        'AVPresetAudio voice',
        '</Stream>',
        '<Stream b.webm>',
        'Feed f',
        'AVPresetVideo vp8small',
        '</Stream>',
      ].join('\n'),
    );
    const [a, b] = config.streams;
    assert.deepEqual(a?.encoding.videoAvOptions, { bf: '0', flags: '+cgop+global_header', refs: '1' });
    assert.deepEqual(a?.encoding.audioAvOptions, { ac: '1', ar: '16000' });
    assert.deepEqual(a?.encoding.videoPresets, ['lowdelay']);
    assert.equal(a?.needsTranscode, true);
    assert.equal(b?.encoding.videoCodec, 'libvpx', 'vcodec= picks the encoder');
    assert.deepEqual(b?.encoding.videoAvOptions, { g: '30', profile: '1' });

    const err = await parseWith(
      [
        '<Feed f>',
        '</Feed>',
        '<Stream c.flv>',
        'Feed f',
        'AVPresetVideo missing',
        'AVPresetVideo broken',
        'VideoGopSize 10',
        'AVPresetVideo vp8small',
        'AudioCodec mp3',
        'AVPresetAudio vp8small',
        '</Stream>',
      ].join('\n'),
    ).then(
      () => assert.fail('expected errors'),
      (e: unknown) => e as ConfigErrors,
    );
    assert.deepEqual(
      err.errors.map((e) => e.message),
      [
        `p.conf:5: AVPresetVideo missing: preset missing not found: none of ${join(dir, 'none', 'missing.ffpreset')}, ${join(dir, 'missing.ffpreset')} exists; if it is named after its codec (CODEC-missing.ffpreset), put VideoCodec before this line`,
        `p.conf:6: AVPresetVideo broken: ${join(dir, 'broken.ffpreset')}:1: "bf 0" is not a key=value line`,
        "p.conf:8: AVPresetVideo sets the video option 'g', which VideoGopSize (line 7) already set; remove one of them",
        `p.conf:10: AVPresetAudio vp8small: ${join(dir, 'vp8small.ffpreset')}:1: vcodec in an audio preset; it belongs in AVPresetVideo`,
      ],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
