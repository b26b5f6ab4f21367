// ffmpeg preset files (AVPresetVideo/AVPresetAudio, ffserver ref §2.6): where they are looked for, how their
// lines read, and ffmpeg's former libx264 preset names built in.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPreset, parsePresetText, presetSearchDirs } from './presets.js';

const files = (map: Record<string, string>) => (path: string) => {
  const text = map[path];
  if (text === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
  return text;
};

test('search order: $FFMPEG_DATADIR, $HOME/.ffmpeg, then the data directories', () => {
  assert.deepEqual(presetSearchDirs({ FFMPEG_DATADIR: '/opt/ff', HOME: '/home/u' }), [
    '/opt/ff',
    '/home/u/.ffmpeg',
    '/usr/local/share/ffmpeg',
    '/usr/share/ffmpeg',
  ]);
  assert.deepEqual(presetSearchDirs({}), ['/usr/local/share/ffmpeg', '/usr/share/ffmpeg']);
});

test('NAME.ffpreset before CODEC-NAME.ffpreset, directory by directory', () => {
  const read = files({ '/b/fast.ffpreset': 'g=10\n', '/a/libx264-fast.ffpreset': 'g=20\n' });
  const found = loadPreset('fast', 'video', 'h264', ['/a', '/b'], read);
  assert.ok(found.ok);
  assert.equal(found.preset.source, '/a/libx264-fast.ffpreset', 'the codec is the encoder name (h264 → libx264)');
  const noCodec = loadPreset('fast', 'video', undefined, ['/a', '/b'], read);
  assert.ok(noCodec.ok);
  assert.equal(noCodec.preset.source, '/b/fast.ffpreset');
  const path = loadPreset('../etc/passwd', 'video', undefined, ['/a'], read);
  assert.equal(path.ok, false, 'a name, never a path');
});

test('preset lines: comments, blank lines, CRLF, codec switch, ffmpeg spellings', () => {
  const r = parsePresetText('# c\r\nvcodec=libvpx\r\n\r\ng=120\r\nvprofile=0\r\nb=768k\r\n', 'video', 'p');
  assert.ok(r.ok);
  assert.equal(r.preset.codec, 'libvpx');
  assert.deepEqual(r.preset.options, [
    ['g', '120'],
    ['profile', '0'],
    ['b', '768k'],
  ]);
  assert.deepEqual(parsePresetText('scodec=srt\n', 'video', 'p'), {
    ok: false,
    message: 'p:1: scodec has no place in a video preset',
  });
  const bad = parsePresetText('g=1\nnot a line\n', 'video', 'p');
  assert.deepEqual(bad, { ok: false, message: 'p:2: "not a line" is not a key=value line' });
});

test("ffmpeg's former libx264 presets are built in when no file exists", () => {
  const none = files({});
  const preset = (name: string, codec: string | undefined): unknown => {
    const r = loadPreset(name, 'video', codec, ['/x'], none);
    return r.ok ? r.preset.options : r.message;
  };
  assert.deepEqual(preset('default', 'mpeg4'), []);
  assert.deepEqual(preset('baseline', 'libx264'), [['libx264:profile', 'baseline']]);
  assert.deepEqual(preset('veryfast', undefined), [['libx264:preset', 'veryfast']]);
  assert.match(
    String(preset('baseline', 'libvpx')),
    /preset baseline not found: none of \/x\/baseline\.ffpreset, \/x\/libvpx-baseline\.ffpreset exists$/,
  );
});
