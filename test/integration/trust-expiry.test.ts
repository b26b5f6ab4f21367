// Trust (issue 11): a reader let in by a read token or a JWT that expires is disconnected when it
// expires (TokenExpiryCutsReaders, on by default): HTTP-FLV and HTTP-TS bodies end, RTMP play gets
// NetStream.Play.Stop and the connection closes, an RTSP session ends with its connection; one
// `read token expired` line is logged per reader.
// HLS is checked on every request: the playlist with the expired token is refused (and the viewer's
// session, which holds its reader slot, ends at expiry). A reader with a
// JWT without `exp` keeps playing. What broke: an expired token kept a running reader going forever.

import assert from 'node:assert/strict';
import { get } from 'node:http';
import { test, type TestContext } from 'node:test';
import { signedQuery } from '../../src/access/auth.js';
import { mintJwt } from '../../src/access/token-cli.js';
import type { LogFields, Logger } from '../../src/observability/logger.js';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { RtmpTestClient, statusCode } from '../helpers/rtmp-client.js';
import { RawRtspClient, startRtsp } from '../helpers/rtsp-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const KEY = 'expiry-read-key';
/** Seconds the tokens of this test live: long enough for every reader to be seen receiving first. */
const TTL_SECONDS = 6;

interface LogLine {
  msg: string;
  fields: LogFields;
}

function recordingLogger(lines: LogLine[], bound: LogFields = {}): Logger {
  const at = (msg: string, fields?: LogFields): void => {
    lines.push({ msg, fields: { ...bound, ...fields } });
  };
  return { debug: at, info: at, warn: at, error: at, child: (f) => recordingLogger(lines, { ...bound, ...f }) };
}

/** A progressive HTTP reader: bytes received so far, and when its body ended (undefined while it runs). */
interface HttpReader {
  status: () => number;
  bytes: () => number;
  endedAt: () => number | undefined;
}

function httpReader(t: TestContext, url: string, headers: Record<string, string> = {}): HttpReader {
  let status = 0;
  let bytes = 0;
  let endedAt: number | undefined;
  const ended = (): void => {
    endedAt ??= Date.now();
  };
  const req = get(url, { headers }, (res) => {
    status = res.statusCode ?? 0;
    res.on('data', (d: Buffer) => (bytes += d.length));
    res.on('end', ended);
    res.on('close', ended);
    res.on('error', ended);
  });
  req.on('error', ended);
  t.after(() => req.destroy());
  return { status: () => status, bytes: () => bytes, endedAt: () => endedAt };
}

test(
  'an expiring read token or JWT cuts HTTP-FLV, HTTP-TS and RTMP readers at expiry; HLS refuses it; a JWT without exp plays on',
  { skip, timeout: 120_000 },
  async (t) => {
    const lines: LogLine[] = [];
    const server = await startTestServer(t, `ReadTokenKey ${KEY}\nJWTKey jwt-key\n<Feed feed1.ffm>\nRequireReadToken\n</Feed>\n`);
    Object.assign(server.ctx, { log: recordingLogger(lines) });
    const rtmp = new RtmpServer(server.ctx);
    const rtmpPort = await rtmp.listen(0, '127.0.0.1');
    t.after(() => rtmp.close());
    const pub = publish(server.url('/feed1.ffm'), { seconds: 90 });
    t.after(() => pub.stop());
    await waitFor('the publisher', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) > 0, 20_000);

    const q = signedQuery(KEY, 'feed1', TTL_SECONDS);
    const expiresAtMs = Number(new URLSearchParams(q).get('expires')) * 1000;
    const jwtExp = Math.floor(Date.now() / 1000) + TTL_SECONDS;
    const expiringJwt = mintJwt('jwt-key', { feeds: ['feed1'], actions: ['read'], exp: jwtExp });
    const lastingJwt = mintJwt('jwt-key', { feeds: ['feed1'], actions: ['read'] });

    // HLS before expiry: the playlist with the token is served.
    const playlistBefore = await fetch(server.url(`/feed1/ts/index.m3u8?${q}`));
    assert.equal(playlistBefore.status, 200);
    await playlistBefore.arrayBuffer();

    const flv = httpReader(t, server.url(`/feed1.flv?${q}`));
    const ts = httpReader(t, server.url('/feed1.ts'), { Authorization: `Bearer ${expiringJwt}` });
    const lasting = httpReader(t, server.url(`/feed1.flv?jwt=${lastingJwt}`));
    let rtmpMedia = 0;
    const player = await RtmpTestClient.open('127.0.0.1', rtmpPort, {
      onMessage: (m) => {
        if (m.typeId === 8 || m.typeId === 9) rtmpMedia++;
      },
    });
    t.after(() => player.close());
    await player.connect('live', `rtmp://127.0.0.1:${rtmpPort}/live`);
    assert.equal(statusCode(await player.play(`feed1?${q}`)), 'NetStream.Play.Reset');

    // Every reader is receiving before the tokens expire.
    await waitFor('every reader to receive media', () => flv.bytes() > 20_000 && ts.bytes() > 20_000 && rtmpMedia > 20, 20_000);
    assert.deepEqual([flv.status(), ts.status(), lasting.status()], [200, 200, 200]);
    assert.ok(Date.now() < expiresAtMs, 'the readers were seen receiving before the expiry');
    assert.equal(flv.endedAt(), undefined);
    assert.equal(ts.endedAt(), undefined);

    // At expiry: the HTTP bodies end, RTMP gets NetStream.Play.Stop and its connection closes.
    await waitFor('the HTTP readers to be cut', () => flv.endedAt() !== undefined && ts.endedAt() !== undefined, 30_000);
    const stop = await player.waitCommand((c) => c.name === 'onStatus' && statusCode(c) === 'NetStream.Play.Stop', 30_000);
    assert.ok(stop !== undefined);
    await player.closed;
    const rtmpClosedAt = Date.now();
    // Not before the expiry (timers may fire a little early against this clock: half a second of slack).
    assert.ok((flv.endedAt() ?? 0) >= expiresAtMs - 500, `HTTP-FLV cut ${expiresAtMs - (flv.endedAt() ?? 0)} ms early`);
    assert.ok((ts.endedAt() ?? 0) >= jwtExp * 1000 - 500, 'HTTP-TS (JWT exp) cut early');
    assert.ok(rtmpClosedAt >= expiresAtMs - 500);

    const expiredLines = lines.filter((l) => l.msg === 'read token expired');
    // The HLS viewer's session (its admission) ends at expiry too (issue 19), then its next request is refused.
    assert.deepEqual(expiredLines.map((l) => l.fields['protocol']).sort(), ['hls', 'http', 'http', 'rtmp']);
    assert.ok(expiredLines.every((l) => l.fields['from'] === '127.0.0.1' && typeof l.fields['expiredAt'] === 'string'));

    // HLS is stateless: the same token is now refused on the playlist.
    const playlistAfter = await fetch(server.url(`/feed1/ts/index.m3u8?${q}`));
    assert.equal(playlistAfter.status, 403);
    assert.match(await playlistAfter.text(), /expired/);

    // The reader whose JWT has no exp is still receiving.
    const at = lasting.bytes();
    await waitFor('the reader without expiry to keep receiving', () => lasting.bytes() > at + 20_000, 20_000);
    assert.equal(lasting.endedAt(), undefined);
  },
);

test(
  'an RTSP session admitted with an expiring read token ends at expiry, with its connection',
  { skip, timeout: 90_000 },
  async (t) => {
    const lines: LogLine[] = [];
    const server = await startTestServer(t, `ReadTokenKey ${KEY}\n<Feed feed1.ffm>\nRequireReadToken\n</Feed>\n`);
    Object.assign(server.ctx, { log: recordingLogger(lines) });
    const { port } = await startRtsp(t, server);
    const pub = publish(server.url('/feed1.ffm'), { seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('the publisher', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) > 0, 20_000);

    const q = signedQuery(KEY, 'feed1', TTL_SECONDS);
    const expiresAtMs = Number(new URLSearchParams(q).get('expires')) * 1000;
    const base = `rtsp://127.0.0.1:${port}/feed1`;
    const client = new RawRtspClient(port);
    t.after(() => client.close());
    const described = await client.request('DESCRIBE', `${base}?${q}`, { Accept: 'application/sdp' });
    assert.equal(described.status, 200);
    const control = /m=video[\s\S]*?a=control:(\S+)/.exec(described.body)?.[1];
    assert.ok(control !== undefined, described.body);
    const setup = await client.request('SETUP', `${base}/${control}?${q}`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
    assert.equal(setup.status, 200);
    const session = (setup.headers.get('session') ?? '').split(';')[0] ?? '';
    const play = await client.request('PLAY', `${base}?${q}`, { Session: session });
    assert.equal(play.status, 200);
    await waitFor('RTP over the RTSP connection', () => client.interleavedBytes > 20_000, 20_000);
    assert.ok(Date.now() < expiresAtMs && !client.closed, 'receiving before the expiry');
    await waitFor('the RTSP connection to close at expiry', () => client.closed, 30_000);
    assert.ok(Date.now() >= expiresAtMs - 500);
    const expired = lines.filter((l) => l.msg === 'read token expired');
    assert.equal(expired.length, 1);
    assert.deepEqual([expired[0]?.fields['protocol'], expired[0]?.fields['from']], ['rtsp', '127.0.0.1']);
  },
);
