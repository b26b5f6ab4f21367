// `feedcast check` output: listeners, feed URLs, streams with their encoding, redirects and warnings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostResolver } from './acl.js';
import { defaultConfig, parseConfigText } from './config.js';
import { describeConfig, feedUrls } from './summary.js';

const resolver: HostResolver = (host) => Promise.resolve(host === 'localhost' ? ['127.0.0.1', '::1'] : []);

test('describeConfig lists listeners, feeds with URLs, streams, redirects and warnings', async () => {
  const config = await parseConfigText(
    [
      'HTTPPort 8080',
      'RTSPPort 5454',
      'Port 8081',
      '<Feed cam.ffm>',
      'File /tmp/cam.ffm',
      'FileMaxSize 200K',
      'ACL allow localhost',
      '</Feed>',
      '<Stream cam-low.ts>',
      'Feed cam.ffm',
      'VideoCodec libx264',
      'VideoSize 640x360',
      'VideoBitRate 500',
      '</Stream>',
      '<Stream cam.flv>',
      'Feed cam.ffm',
      '</Stream>',
      '<Stream old.asf>',
      'Feed cam.ffm',
      '</Stream>',
      '<Redirect index.html>',
      'URL http://example.com/',
      '</Redirect>',
    ].join('\n'),
    'check.conf',
    { resolveHost: resolver },
  );
  const text = describeConfig(config);
  assert.match(text, /^Config check\.conf\n/);
  assert.match(text, /HTTP {2}0\.0\.0\.0:8081/);
  assert.match(text, /RTSP {2}0\.0\.0\.0:5454/);
  assert.match(text, /RTMP {2}0\.0\.0\.0:1935/);
  assert.match(text, /WebRTC {2}UDP 0\.0\.0\.0, a free port per peer; offers and answers on HTTP/);
  // Issue 19: the directives a reload cannot apply are named.
  assert.match(text, /every other directive\)\n {2}HTTPPort, HTTPBindAddress, BindAddress, Port: the HTTP listener/);
  assert.match(text, /\n {2}EgressThreads: /);
  assert.match(
    text,
    /publish {2}http:\/\/localhost:8081\/cam\.ffm, http:\/\/localhost:8081\/cam, rtmp:\/\/localhost:1935\/live\/cam, rtsp:\/\/localhost:5454\/cam, http:\/\/localhost:8081\/cam\/whip\n/,
  );
  assert.match(
    text,
    /read {5}http:\/\/localhost:8081\/cam\.flv, http:\/\/localhost:8081\/cam\.ts, http:\/\/localhost:8081\/cam\/index\.m3u8, rtsp:\/\/localhost:5454\/cam/,
  );
  assert.match(text, /file {5}\/tmp\/cam\.ffm \(ring of 200K\)/);
  assert.match(text, /acl {6}allow 127\.0\.0\.1 \(localhost\), allow ::1 \(localhost\); otherwise deny/);
  assert.match(
    text,
    /cam-low\.ts .*\n.*\n {4}source {3}feed cam\.ffm; mpegts, transcoded by ffmpeg\n {4}encoding video libx264 500 kbit\/s 640x360; counts 564 kbit\/s/,
  );
  assert.match(text, /source {3}feed cam\.ffm; flv, passthrough\n {4}encoding as published/);
  // Issue 27: asf is served; the browser hint stays as a note.
  assert.match(text, /old\.asf.*\n.*\n.*asf, transcoded by ffmpeg \(note: no browser plays asf/);
  assert.match(text, /http:\/\/localhost:8081\/index\.html -> http:\/\/example\.com\/ {2}\[check\.conf:21\]/);
  assert.match(text, /Warnings \(1\)\n {2}check\.conf:3: Port is deprecated; use HTTPPort instead\n/);
});

test('describeConfig of the defaults, and feed URLs with RTMP, RTSP and SRT off', () => {
  const config = defaultConfig({
    rtmp: { port: 0, bindAddress: '0.0.0.0', chunkSize: 4096 },
    rtsp: { port: undefined, bindAddress: '0.0.0.0' },
    srt: { port: undefined, bindAddress: '0.0.0.0', latencyMs: 120 },
    http: { port: 8090, bindAddress: '::1' },
  });
  const text = describeConfig(config);
  assert.match(text, /RTSP {2}off \(no RTSPPort\)/);
  assert.match(text, /RTMP {2}off \(RTMPPort 0\)/);
  assert.match(text, /SRT {2}off \(no SRTPort\)/);
  assert.match(text, /Feeds \(0\)\n\nStreams \(0\)\n\nRedirects \(0\)\n\nWarnings \(0\)\n$/);
  const feed = {
    name: 'a',
    key: 'a',
    where: 'x:1',
    file: undefined,
    readOnly: false,
    fileMaxSizeBytes: 1,
    fileSyncMs: undefined,
    truncate: false,
    launch: undefined,
    launchUrl: undefined,
    source: undefined,
    loop: true,
    onDemand: true,
    publishSecret: undefined,
    srtPassphrase: undefined,
    acl: undefined as never,
    dynamicAcl: undefined,
    requireReadToken: false,
    maxReaders: 0,
    hooks: [],
    record: undefined,
    offlineSlate: undefined,
    hlsDvrWindowSeconds: undefined,
  };
  assert.deepEqual(feedUrls(config, feed), {
    publish: ['http://[::1]:8090/a', 'http://[::1]:8090/a/whip'],
    read: ['http://[::1]:8090/a.flv', 'http://[::1]:8090/a.ts', 'http://[::1]:8090/a/index.m3u8'],
  });
});
