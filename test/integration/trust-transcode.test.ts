// Trust (issue 11): transcoded streams and Launch feeds read over HTTP go through the same gate as
// plain HTTP reads (src/protocols/http/read-gate.ts): the whole policy (read tokens, JWT, hooks, not
// only the ACL), refusals as precise 401/403 logged once with the address, and MaxReaders (503)
// taken before any ffmpeg child starts. What broke: these routes checked only the static ACL.

import assert from 'node:assert/strict';
import { get, type ClientRequest } from 'node:http';
import { describe, test, type TestContext } from 'node:test';
import { signedQuery } from '../../src/access/auth.js';
import { mintJwt } from '../../src/access/token-cli.js';
import { childrenNamed } from '../helpers/processes.js';
import { probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { encodedStream, LAUNCH_TEST_SOURCE } from '../helpers/config-blocks.js';
import { recordingLogger, type LogLine } from '../helpers/recording-logger.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const KEY = 'transcode-read-key';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET: the status, headers and (for refusals) the body; a 200 media body is not read (the request is dropped). */
function answer(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers }, (res) => {
      const status = res.statusCode ?? 0;
      if (status === 200) {
        resolve({ status, headers: res.headers, body: '' });
        req.destroy();
        return;
      }
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(40_000, () => req.destroy(new Error(`no answer from ${url} within 40 s`)));
  });
}

/** A reader that stays: resolves once it has received `bytes`, with the request to close it. */
function holdReader(t: TestContext, url: string, bytes = 20_000): Promise<ClientRequest> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const req = get(url, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`${url}: ${res.statusCode ?? 0}`));
        return;
      }
      res.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= bytes) resolve(req);
      });
    });
    req.on('error', () => undefined);
    req.setTimeout(40_000, () => req.destroy());
    t.after(() => req.destroy());
  });
}

function refusals(lines: LogLine[]): LogLine[] {
  return lines.filter((l) => l.msg === 'read refused');
}

async function liveServer(t: TestContext, config: string, lines: LogLine[]): Promise<TestServer> {
  const server = await startTestServer(t, config);
  Object.assign(server.ctx, { log: recordingLogger(lines) });
  return server;
}

describe('trust: transcoded streams and Launch feeds pass the HTTP read gate', { skip }, () => {
  test(
    'a libx264 stream behind RequireReadToken: 401, 403, hook, 200 that decodes, MaxReaders 503',
    { timeout: 150_000 },
    async (t) => {
      const lines: LogLine[] = [];
      const server = await liveServer(
        t,
        `ReadTokenKey ${KEY}
JWTKey jwt-key
TranscodeIdleTimeout 30
<Feed feed1.ffm>
</Feed>
${encodedStream('small.flv', { extra: ['RequireReadToken', 'MaxReaders 1'] })}
`,
        lines,
      );
      const pub = publish(server.url('/feed1.ffm'), { seconds: 120, size: '320x240' });
      t.after(() => pub.stop());
      await waitFor('the feed to have tracks', () => server.ctx.feeds.get('feed1')?.tracks.length === 2, 20_000);
      const publishers = childrenNamed('ffmpeg').length;

      // Refusals: precise statuses and reasons, one log line each with the address; no ffmpeg started for them.
      const none = await answer(server.url('/small.flv'));
      assert.equal(none.status, 401, none.body);
      assert.match(String(none.headers['www-authenticate']), /Bearer/);
      assert.match(none.body, /small\.flv needs a read token/);
      const forged = await answer(server.url('/small.flv?token=AAAA&expires=9999999999'));
      assert.equal(forged.status, 403);
      assert.match(forged.body, /not valid for this URL/);
      const otherResource = await answer(server.url(`/small.flv?${signedQuery(KEY, 'feed1', 60)}`));
      assert.equal(otherResource.status, 403, 'a token for the feed does not open a stream of it');
      const expired = await answer(server.url(`/small.flv?${signedQuery(KEY, 'small.flv', -10)}`));
      assert.equal(expired.status, 403);
      assert.match(expired.body, /expired/);
      const wrongJwt = await answer(server.url(`/small.flv?jwt=${mintJwt('jwt-key', { feeds: ['feed1'], actions: ['read'] })}`));
      assert.equal(wrongJwt.status, 403);
      assert.match(wrongJwt.body, /does not grant read on small\.flv/);
      const refused = refusals(lines);
      assert.equal(refused.length, 5, JSON.stringify(refused));
      for (const l of refused) {
        assert.equal(l.level, 'warn');
        assert.deepEqual([l.fields['protocol'], l.fields['target'], l.fields['from']], ['http', 'small.flv', '127.0.0.1']);
      }
      assert.equal(childrenNamed('ffmpeg').length, publishers, 'no transcoder started for refused readers');
      assert.equal(server.ctx.access.readerCount({ stream: 'small.flv' }), 0);

      // The embedding hook decides here too (before: only the static ACL was asked).
      server.ctx.access.policy.setHooks({
        onRead: (r) => (r.stream === 'small.flv' && r.credentials.jwt === undefined ? false : undefined),
      });
      const hooked = await answer(server.url(`/small.flv?${signedQuery(KEY, 'small.flv', 60)}`));
      assert.equal(hooked.status, 403);
      server.ctx.access.policy.setHooks({});

      // A good token: ffprobe decodes the transcoded picture.
      const probe = await probePackets(server.url(`/small.flv?${signedQuery(KEY, 'small.flv', 120)}`), 3, 60_000);
      const video = probe.streams.find((s) => s.codec_type === 'video');
      assert.deepEqual([video?.codec_name, video?.width, video?.height], ['h264', 160, 120]);
      assert.ok(probe.packets.filter((p) => p.codec_type === 'video').length > 10);
      // A JWT granting the stream opens it too.
      const jwt = mintJwt('jwt-key', { feeds: ['small.flv'], actions: ['read'], exp: Math.floor(Date.now() / 1000) + 60 });
      await waitFor('the probe reader to leave', () => server.ctx.access.readerCount({ stream: 'small.flv' }) === 0);
      assert.equal((await answer(server.url('/small.flv'), { Authorization: `Bearer ${jwt}` })).status, 200);

      // MaxReaders 1: a second reader with a good token gets 503 while the first plays; a slot again once it leaves.
      await waitFor('the JWT reader to leave', () => server.ctx.access.readerCount({ stream: 'small.flv' }) === 0);
      const first = await holdReader(t, server.url(`/small.flv?${signedQuery(KEY, 'small.flv', 120)}`));
      const busy = await answer(server.url(`/small.flv?${signedQuery(KEY, 'small.flv', 120)}`));
      assert.equal(busy.status, 503);
      assert.match(busy.body, /small\.flv has its 1 readers \(MaxReaders\)/);
      assert.equal(busy.headers['retry-after'], '5');
      assert.ok(lines.some((l) => l.msg === 'reader refused: MaxReaders' && l.fields['from'] === '127.0.0.1'));
      first.destroy();
      await waitFor('the first reader to leave', () => server.ctx.access.readerCount({ stream: 'small.flv' }) === 0);
      assert.equal((await answer(server.url(`/small.flv?${signedQuery(KEY, 'small.flv', 120)}`))).status, 200);
    },
  );

  test(
    'a Launch feed behind RequireReadToken: refused readers start no ffmpeg; a token plays; MaxReaders 503',
    { timeout: 90_000 },
    async (t) => {
      const lines: LogLine[] = [];
      const server = await liveServer(
        t,
        `ReadTokenKey ${KEY}
TranscodeIdleTimeout 30
<Feed cam.ffm>
  ${LAUNCH_TEST_SOURCE}
  RequireReadToken
  MaxReaders 1
</Feed>
`,
        lines,
      );
      const running = (): boolean => server.ctx.children?.sources().find((s) => s.feed === 'cam')?.running === true;
      const none = await answer(server.url('/cam.flv'));
      assert.equal(none.status, 401);
      assert.match(none.body, /feed cam needs a read token/);
      assert.equal((await answer(server.url('/cam.ts?token=x&expires=9999999999'))).status, 403);
      assert.equal(refusals(lines).length, 2);
      assert.ok(refusals(lines).every((l) => l.fields['from'] === '127.0.0.1' && l.fields['target'] === 'cam'));
      assert.equal(running(), false, 'refused readers do not start the Launch child');
      assert.deepEqual(childrenNamed('ffmpeg'), []);

      const q = signedQuery(KEY, 'cam', 120);
      const first = await holdReader(t, server.url(`/cam.flv?${q}`));
      assert.ok(running());
      const busy = await answer(server.url(`/cam.ts?${q}`));
      assert.equal(busy.status, 503);
      assert.match(busy.body, /feed cam has its 1 readers \(MaxReaders\)/);
      first.destroy();
      await waitFor('the first reader to leave', () => server.ctx.access.readerCount({ feed: 'cam' }) === 0);
      const probe = await probePackets(server.url(`/cam.flv?${q}`), 2, 60_000);
      assert.equal(probe.streams.find((s) => s.codec_type === 'video')?.width, 160);
    },
  );
});
