// Output format table: lookups, aliases, extension guesses, and that every obsolete format names an alternative.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FORMATS, extensionTable, guessFormatFromName, knownFormatNames, lookupFormat } from './formats.js';

test('passthrough formats are flv and mpegts; hls, rtp and status have their own kinds', () => {
  const bySupport = (s: string): string[] =>
    Object.values(FORMATS)
      .filter((f) => f.support === s)
      .map((f) => f.name);
  assert.deepEqual(bySupport('passthrough'), ['flv', 'mpegts']);
  assert.deepEqual(bySupport('hls'), ['hls']);
  assert.deepEqual(bySupport('rtp'), ['rtp']);
  assert.deepEqual(bySupport('status'), ['status']);
  assert.deepEqual(bySupport('obsolete').sort(), ['ffm']);
  // Issue 27: ffserver's Windows Media, RealPlayer, Flash and AVI formats are made by ffmpeg too, with a note.
  for (const name of ['asf', 'rm', 'swf', 'avi']) assert.match(lookupFormat(name)?.note ?? '', /browser|Flash/, name);
  for (const name of ['mpeg', 'mpjpeg', 'jpeg', 'webm', 'ogg', 'mp3', 'mp2', 'adts', 'mp4', 'asf', 'rm', 'swf', 'avi']) {
    assert.equal(lookupFormat(name)?.support, 'needs-encoding', name);
  }
});

test('every obsolete format names an alternative; every format has a muxer and a content type', () => {
  for (const f of Object.values(FORMATS)) {
    assert.ok(f.muxer.length > 0 && f.contentType.includes('/'), f.name);
    if (f.support === 'obsolete') assert.match(f.alternative ?? '', /use|relay/, f.name);
    else assert.equal(f.alternative, undefined, f.name);
  }
});

test('lookups are case-insensitive and resolve aliases (jpeg = singlejpeg, asf = asf_stream)', () => {
  assert.equal(lookupFormat('FLV')?.name, 'flv');
  assert.equal(lookupFormat('singlejpeg')?.name, 'jpeg');
  assert.equal(lookupFormat('jpeg')?.singleFrame, true);
  assert.equal(lookupFormat('asf_stream')?.name, 'asf');
  assert.equal(lookupFormat('asf')?.muxer, 'asf_stream');
  assert.equal(lookupFormat('ts')?.name, 'mpegts');
  assert.equal(lookupFormat('nope'), undefined);
  assert.equal(lookupFormat('constructor'), undefined);
  assert.equal(lookupFormat('__proto__'), undefined);
});

test('extension guesses follow ffserver; every guessed format exists', () => {
  assert.equal(guessFormatFromName('test1.mpg')?.name, 'mpeg');
  assert.equal(guessFormatFromName('test.asf')?.muxer, 'asf_stream');
  assert.equal(guessFormatFromName('live.m3u8')?.support, 'hls');
  assert.equal(guessFormatFromName('stat.html'), undefined);
  assert.equal(guessFormatFromName('noext'), undefined);
  assert.equal(guessFormatFromName('x.toString'), undefined);
  for (const [ext, name] of extensionTable()) assert.ok(knownFormatNames().includes(name), `${ext} -> ${name}`);
});
