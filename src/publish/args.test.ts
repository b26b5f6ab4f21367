// `feedcast publish` command-line rules: inputs as one name or ffmpeg input options with -i,
// real-time and loop flags placed before each input, the URL checks, and clear usage errors.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { handshakeUrl, parsePublishArgs, type PublishCommand } from './args.js';
import { parseEncodingsDoc } from './cli.js';

function ok(argv: string[]): PublishCommand {
  const r = parsePublishArgs(argv);
  if (!r.ok) assert.fail(r.message);
  return r.command;
}

function error(argv: string[]): string {
  const r = parsePublishArgs(argv);
  assert.ok(!r.ok, 'should be refused');
  return r.message;
}

test('one input name gets -i, and -re when it is a file', () => {
  assert.deepEqual(ok(['clip.mp4', 'http://h:8090/feed1.ffm']).inputArgs, ['-re', '-i', 'clip.mp4']);
  assert.deepEqual(ok(['rtsp://cam/1', 'http://h:8090/feed1.ffm']).inputArgs, ['-i', 'rtsp://cam/1']);
  assert.deepEqual(ok(['/dev/video0', 'http://h/feed1.ffm']).inputArgs, ['-i', '/dev/video0']);
  assert.deepEqual(ok(['--no-re', 'clip.mp4', 'http://h/feed1.ffm']).inputArgs, ['-i', 'clip.mp4']);
  assert.deepEqual(ok(['--re', 'rtsp://cam/1', 'http://h/feed1.ffm']).inputArgs, ['-re', '-i', 'rtsp://cam/1']);
});

test('ffmpeg input options pass through; -re and -stream_loop go before every input that lacks them', () => {
  const c = ok(['-f', 'lavfi', '-i', 'testsrc2', '-f', 'lavfi', '-i', 'sine', 'http://h/feed1.ffm']);
  assert.deepEqual(c.inputArgs, ['-f', 'lavfi', '-re', '-i', 'testsrc2', '-f', 'lavfi', '-re', '-i', 'sine']);
  const own = ok(['-re', '-i', 'a.mp4', '-i', 'b.wav', 'http://h/feed1.ffm']);
  assert.deepEqual(own.inputArgs, ['-re', '-i', 'a.mp4', '-re', '-i', 'b.wav']);
  const looped = ok(['--loop', 'a.mp4', 'http://h/feed1.ffm']);
  assert.deepEqual(looped.inputArgs, ['-stream_loop', '-1', '-re', '-i', 'a.mp4']);
});

test('options: maps, backoff, retries, handshake, ffmpeg path, dry run; the URL keeps its secret', () => {
  const c = ok([
    ...['--video-map', '1:v:0', '--audio-map', '0:a:1?', '--max-backoff', '2.5', '--retries', '3'],
    ...['--no-handshake', '--ffmpeg', '/opt/ffmpeg', '--dry-run', 'x.mp4', 'https://h/feed1.ffm?secret=s'],
  ]);
  assert.deepEqual(c.maps, { video: '1:v:0', audio: '0:a:1?' });
  assert.equal(c.maxBackoffMs, 2500);
  assert.equal(c.retries, 3);
  assert.equal(c.handshake, false);
  assert.equal(c.ffmpeg, '/opt/ffmpeg');
  assert.equal(c.dryRun, true);
  assert.equal(handshakeUrl(c.url).href, 'https://h/feed1.ffm?secret=s&config=');
});

test('usage errors say what is wrong', () => {
  assert.match(error([]), /name the input and the feed URL/);
  assert.match(error(['http://h/feed1.ffm']), /name the input before the feed URL/);
  assert.match(error(['a.mp4', 'feed1.ffm']), /the last argument must be the feed URL/);
  assert.match(error(['a.mp4', 'rtmp://h/live/feed1']), /must be http:\/\/ or https:\/\//);
  assert.match(error(['a.mp4', 'http://h/']), /names no feed/);
  assert.match(error(['a.mp4', 'b.mp4', 'http://h/f.ffm']), /several words without -i/);
  assert.match(error(['-f', 'lavfi', '-i', 'http://h/f.ffm']), /-i at the end/);
  assert.match(error(['--bogus', 'a', 'http://h/f']), /unknown option --bogus/);
  assert.match(error(['--video-map', 'v', 'a', 'http://h/f']), /stream specifier/);
  assert.match(error(['--retries', '-1', 'a', 'http://h/f']), /whole number/);
  assert.match(error(['--max-backoff', 'x', 'a', 'http://h/f']), /seconds between/);
});

test('the handshake document is checked before use', () => {
  assert.throws(() => parseEncodingsDoc('<html>'), /not JSON/);
  assert.throws(() => parseEncodingsDoc('{"version":2,"variants":[]}'), /version 1/);
  assert.throws(() => parseEncodingsDoc('{"version":1,"variants":[{"index":0,"video":{"encoder":1}}]}'), /variant 0/);
  const doc = parseEncodingsDoc(
    '{"feed":"f","version":1,"variants":[{"index":0,"streams":["a"],"audio":{"encoder":"aac","options":["-b:a","64k"]}}]}',
  );
  assert.equal(doc.variants[0]?.audio?.encoder, 'aac');
  assert.deepEqual(doc.serverSide, []);
});
