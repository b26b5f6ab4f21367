// Issue 19: a reload half-applied some directives (ReaderMaxQueue changed the readers' bound but
// not the outputs' retention; DynamicFeeds, PublisherTimeout, TranscodeIdleTimeout... kept their
// start-up values). Every global directive a reload claims to apply is changed here on a running
// server, back and forth, and its effect checked; the others must be listed as needing a restart.

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { signedQuery } from '../../src/access/auth.js';
import { mintJwt } from '../../src/access/token-cli.js';
import { loadConfigFile } from '../../src/config/config.js';
import { DIRECTIVES } from '../../src/config/directives.js';
import { RESTART_RULES } from '../../src/config/reload-rules.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';
import type { ReloadSummary } from '../../src/control/control-context.js';
import { freePorts, waitFor } from '../helpers/test-server.js';

interface Answer {
  status: number;
  body: string;
}

/** A GET (or other method); a 200 of a live stream is not read to its end. */
function fetchStatus(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: { Connection: 'close', ...options.headers } }, (res) => {
      const status = res.statusCode ?? 0;
      const type = String(res.headers['content-type']);
      if (status === 200 && /video|octet|mpegts|flv/.test(type)) {
        res.destroy();
        resolve({ status, body: '' });
        return;
      }
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** An open TCP connection to the HTTP port that sends nothing (it holds one connection slot). */
async function idleConnection(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

interface Check {
  /** The directives this check changes (each global reloadable directive needs one). */
  directives: readonly string[];
  /** Config lines for the two states; the check runs after a reload into each. */
  a: string;
  b: string;
  probe: (state: 'a' | 'b') => void | Promise<void>;
}

test('a reload applies every reloadable global directive to the running server; the rest are listed as needing a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-reload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'feedcast.conf');
  const accessLog = join(dir, 'access.log');
  const jwksFile = join(dir, 'jwks.json');
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(
    jwksFile,
    JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] }),
  );
  const [httpPort, rtmpPort, rtspPort] = await freePorts(3);

  // An AuthCallback that refuses everything, slowly when asked to.
  let callbackCalls = 0;
  let callbackDelayMs = 0;
  const callback = createServer((_req: IncomingMessage, res: ServerResponse) => {
    callbackCalls++;
    setTimeout(() => {
      res.writeHead(403, { 'Content-Type': 'text/plain' });
      res.end('no');
    }, callbackDelayMs);
  });
  await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => callback.close(() => resolve())));
  const callbackUrl = `http://127.0.0.1:${(callback.address() as { port: number }).port}/auth`;

  // A hook receiver: the event types POSTed to it.
  const hookEvents: string[] = [];
  const hookServer = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hookEvents.push((JSON.parse(body) as { type: string }).type);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => hookServer.close(() => resolve())));
  const hookUrl = `http://127.0.0.1:${(hookServer.address() as { port: number }).port}/hook`;

  const base = (extra: string): string =>
    [
      `HTTPPort ${httpPort}`,
      'HTTPBindAddress 127.0.0.1',
      `RTMPPort ${rtmpPort}`,
      'RTMPBindAddress 127.0.0.1',
      `RTSPPort ${rtspPort}`,
      'RTSPBindAddress 127.0.0.1',
      extra.includes('ControlUser') ? '' : 'ControlUser admin base-pass',
      extra,
      '<Feed demo.ffm>',
      '</Feed>',
      '<Feed locked.ffm>',
      'RequireReadToken',
      '</Feed>',
      '<Stream demo.flv>',
      'Feed demo.ffm',
      'Format flv',
      '</Stream>',
      '<Stream enc.flv>',
      'Feed demo.ffm',
      'Format flv',
      'VideoCodec libx264',
      'VideoSize 320x240',
      'VideoFrameRate 10',
      'VideoBitRate 200',
      'AudioCodec aac',
      'AudioBitRate 64',
      'AudioSampleRate 44100',
      'AudioChannels 1',
      '</Stream>',
      '',
    ].join('\n');

  writeFileSync(file, base(''));
  const server: RunningServer = await startServer(await loadConfigFile(file), {
    log: silentLogger,
    configPath: file,
    demoFeeds: ['demo', 'locked'],
  });
  t.after(() => server.close());
  const url = (path: string): string => `http://127.0.0.1:${server.httpPort}${path}`;
  const { owners } = server;
  await waitFor('the demo feeds', () => (server.ctx.feeds.get('locked')?.tracks.length ?? 0) > 0);
  const basic = (user: string, pass: string): Record<string, string> => ({
    Authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`,
  });

  // The first reload goes through the API, the others are the same call made in-process.
  let viaApi = true;
  const reload = async (extra: string): Promise<ReloadSummary> => {
    writeFileSync(file, base(extra));
    if (viaApi) {
      viaApi = false;
      const answer = await fetchStatus(url('/api/v1/reload'), { method: 'POST', headers: basic('admin', 'base-pass') });
      assert.equal(answer.status, 200, answer.body);
      return JSON.parse(answer.body) as ReloadSummary;
    }
    return server.reload();
  };

  const eq = (actual: unknown, expected: unknown, what: string): void => assert.deepEqual(actual, expected, what);
  const checks: Check[] = [
    {
      directives: ['RTMPChunkSize'],
      a: 'RTMPChunkSize 4096',
      b: 'RTMPChunkSize 8192',
      probe: (s) => eq(owners.rtmp?.nextSessionOptions.chunkSize, s === 'a' ? 4096 : 8192, 'chunk size of new RTMP sessions'),
    },
    {
      directives: ['HLSSegmentDuration', 'HLSPartDuration', 'HLSWindow', 'HLSPartHoldBack'],
      a: 'HLSSegmentDuration 2\nHLSPartDuration 0.5\nHLSWindow 12\nHLSPartHoldBack 3',
      b: 'HLSSegmentDuration 4\nHLSPartDuration 1\nHLSWindow 5\nHLSPartHoldBack 2',
      probe: (s) => {
        const { segmentTargetMs, partTargetMs, windowSegments, partHoldBackParts } = owners.hls.settings;
        eq(
          [segmentTargetMs, partTargetMs, windowSegments, partHoldBackParts],
          s === 'a' ? [2000, 500, 12, 3] : [4000, 1000, 5, 2],
          'HLS settings of new playlists',
        );
      },
    },
    {
      directives: ['HLSIdleTimeout'],
      a: 'HLSIdleTimeout 30',
      b: 'HLSIdleTimeout 7',
      probe: (s) => eq(owners.hls.outputs.idleTimeout, s === 'a' ? 30_000 : 7000, 'HLS segmenters idle timeout'),
    },
    {
      directives: ['TranscodeIdleTimeout'],
      a: 'TranscodeIdleTimeout 10',
      b: 'TranscodeIdleTimeout 3',
      probe: (s) => {
        eq(owners.transcoders.settingsNow.idleTimeoutMs, s === 'a' ? 10_000 : 3000, 'transcoders idle timeout');
        eq(owners.sources.settingsNow.idleTimeoutMs, s === 'a' ? 10_000 : 3000, 'on-demand sources idle timeout');
      },
    },
    {
      directives: ['ReaderMaxQueue'],
      a: 'ReaderMaxQueue 8M',
      b: 'ReaderMaxQueue 1M',
      probe: (s) => {
        const bytes = s === 'a' ? 8 << 20 : 1 << 20;
        // The outputs (muxed, RTP) read this object at every trim; transcoders' raw outputs theirs.
        eq(owners.outputs.settings.retainBytes, bytes, 'retention of the shared outputs');
        eq(owners.transcoders.settingsNow.retainBytes, bytes, 'retention of the raw transcoder outputs');
        eq(server.ctx.config.readerMaxQueueBytes, bytes, "the readers' bound (read when each starts)");
      },
    },
    {
      directives: ['ReaderMaxLag'],
      a: 'ReaderMaxLag 10',
      b: 'ReaderMaxLag 4',
      probe: (s) => eq(server.ctx.config.readerMaxLagMs, s === 'a' ? 10_000 : 4000, 'read by every reader as it starts'),
    },
    {
      directives: ['PublisherTimeout', 'PublisherGracePeriod'],
      a: 'PublisherTimeout 5\nPublisherGracePeriod 30',
      b: 'PublisherTimeout 9\nPublisherGracePeriod 12',
      probe: (s) => {
        const { publisherTimeoutMs, publisherGraceMs } = owners.feeds.settings();
        eq(
          [publisherTimeoutMs, publisherGraceMs],
          s === 'a' ? [5000, 30_000] : [9000, 12_000],
          'timeouts the existing feeds read',
        );
        eq(owners.rtsp?.settings.describeWaitMs, s === 'a' ? 10_000 : 10_000, 'RTSP DESCRIBE wait (at most 10 s)');
      },
    },
    {
      directives: ['DynamicFeeds', 'DynamicFeedACL'],
      a: 'DynamicFeeds on\nDynamicFeedACL allow 127.0.0.1',
      b: 'DynamicFeeds off',
      probe: async (s) => {
        const answer = await fetchStatus(url(`/dyn-${s}.ffm`), { method: 'POST' });
        // On: the publish is taken (an empty body then ends it); off: there is no such feed.
        if (s === 'a')
          assert.notEqual(answer.status, 404, `dynamic publish with DynamicFeeds on: ${answer.status} ${answer.body}`);
        else assert.equal(answer.status, 404, `DynamicFeeds off: ${answer.body}`);
      },
    },
    {
      directives: ['DynamicFeedACL'],
      a: 'DynamicFeeds on\nDynamicFeedACL allow 127.0.0.1',
      b: 'DynamicFeeds on\nDynamicFeedACL allow 10.1.2.3',
      probe: async (s) => {
        const answer = await fetchStatus(url(`/acl-${s}.ffm`), { method: 'POST' });
        if (s === 'a') assert.notEqual(answer.status, 403, `allowed by DynamicFeedACL: ${answer.body}`);
        else assert.equal(answer.status, 403, `refused by DynamicFeedACL: ${answer.body}`);
      },
    },
    {
      directives: ['DynamicFeedTimeout'],
      a: 'DynamicFeeds on\nDynamicFeedTimeout 300',
      b: 'DynamicFeeds on\nDynamicFeedTimeout 20',
      probe: (s) => eq(owners.feeds.settings().dynamicFeedTimeoutMs, s === 'a' ? 300_000 : 20_000, 'dynamic feed timeout'),
    },
    {
      directives: ['MaxBandwidth'],
      a: 'MaxBandwidth 100000',
      b: 'MaxBandwidth 10',
      probe: async (s) => eq((await fetchStatus(url('/demo.flv'))).status, s === 'a' ? 200 : 503, 'a reader of /demo.flv'),
    },
    // One connection held open; a second one is let in, or refused naming the limit.
    ...(
      [
        ['MaxClients', '1000', /the limit is MaxClients 1\./],
        // MaxClients follows MaxHTTPConnections down (ffserver's rule), so either may be named.
        ['MaxHTTPConnections', '2000', /the limit is Max(HTTPConnections|Clients) 1\./],
        ['MaxConnectionsPerAddress', '50', /the limit is MaxConnectionsPerAddress 1\./],
      ] as const
    ).map(([directive, roomy, refusal]): Check => ({
      directives: [directive],
      a: `${directive} ${roomy}`,
      b: `${directive} 1`,
      probe: async (s) => {
        const held = await idleConnection(server.httpPort);
        try {
          const answer = await fetchStatus(url('/api/v1/health'));
          if (s === 'a') eq(answer.status, 200, 'room for a second connection');
          else assert.match(`${answer.status} ${answer.body}`, new RegExp(`^503 .*${refusal.source}`));
        } finally {
          held.destroy();
        }
        await waitFor('the held connection to be gone', () => server.ctx.connections.size === 0);
      },
    })),
    {
      directives: ['CustomLog'],
      a: '',
      b: `CustomLog ${accessLog}`,
      probe: async (s) => {
        await fetchStatus(url(`/api/v1/health?${s}`));
        // The log file is opened (created) asynchronously after the reload: absent until then.
        if (s === 'b')
          await waitFor(
            'the access log line',
            () => existsSync(accessLog) && readFileSync(accessLog, 'utf8').includes('/api/v1/health?b'),
          );
        else assert.throws(() => readFileSync(accessLog), /ENOENT/);
      },
    },
    {
      directives: ['StatusACL'],
      a: 'StatusACL allow 127.0.0.1',
      b: 'StatusACL allow 10.1.2.3',
      probe: async (s) => eq((await fetchStatus(url('/api/v1/server'))).status, s === 'a' ? 200 : 403, 'the API from 127.0.0.1'),
    },
    {
      directives: ['TrustedProxy'],
      a: 'TrustedProxy 127.0.0.1',
      b: 'TrustedProxy 10.1.2.3',
      // Believed from a trusted proxy, the forwarded client is outside StatusACL's default (this host only).
      probe: async (s) =>
        eq(
          (await fetchStatus(url('/api/v1/server'), { headers: { 'X-Forwarded-For': '203.0.113.9' } })).status,
          s === 'a' ? 403 : 200,
          'the API for X-Forwarded-For 203.0.113.9',
        ),
    },
    {
      directives: ['ControlUser'],
      a: 'ControlUser admin first-pass',
      b: 'ControlUser admin second-pass',
      probe: async (s) => {
        // A reload of the same file is harmless: it answers 200 with the right password, 401 without.
        const control = (pass: string): Promise<Answer> =>
          fetchStatus(url('/api/v1/reload'), { method: 'POST', headers: basic('admin', pass) });
        eq((await control('first-pass')).status, s === 'a' ? 200 : 401, 'the first password');
        eq((await control('second-pass')).status, s === 'b' ? 200 : 401, 'the second password');
      },
    },
    {
      directives: ['FFmpegPath'],
      a: 'FFmpegPath ffmpeg',
      b: `FFmpegPath ${join(dir, 'no-such-ffmpeg')}`,
      probe: (s) => eq(owners.transcoders.ffmpeg().ok, s === 'a', 'the ffmpeg transcoders start'),
    },
    {
      directives: ['UseDefaults', 'NoDefaults'],
      a: 'UseDefaults',
      b: 'NoDefaults',
      probe: async (s) => {
        // UseDefaults caps the bit rate (ffserver's rate control defaults); the publish handshake shows it.
        const doc = await fetchStatus(url('/api/v1/feeds/demo/encodings'));
        eq(doc.status, 200, doc.body);
        eq(doc.body.includes('maxrate'), s === 'a', 'UseDefaults adds -maxrate');
      },
    },
    {
      directives: ['ReadTokenKey'],
      a: 'ReadTokenKey first-key',
      b: 'ReadTokenKey second-key',
      probe: async (s) => {
        eq(
          (await fetchStatus(url(`/locked.flv?${signedQuery('first-key', 'locked', 60)}`))).status,
          s === 'a' ? 200 : 403,
          'token of the first key',
        );
        eq(
          (await fetchStatus(url(`/locked.flv?${signedQuery('second-key', 'locked', 60)}`))).status,
          s === 'b' ? 200 : 403,
          'token of the second key',
        );
      },
    },
    {
      directives: ['JWTKey'],
      a: 'JWTKey first-jwt-key',
      b: 'JWTKey second-jwt-key',
      probe: async (s) => {
        const claims = { feeds: ['locked'], actions: ['read'], exp: Math.floor(Date.now() / 1000) + 60 };
        const read = async (key: string): Promise<number> =>
          (await fetchStatus(url('/locked.flv'), { headers: { Authorization: `Bearer ${mintJwt(key, claims)}` } })).status;
        eq((await read('first-jwt-key')) === 200, s === 'a', 'JWT of the first key');
        eq((await read('second-jwt-key')) === 200, s === 'b', 'JWT of the second key');
      },
    },
    {
      directives: ['JWKSFile'],
      a: '',
      b: `JWKSFile ${jwksFile}`,
      probe: async (s) => {
        // An RS256 JWT with a bad signature: without keys JWTs are not accepted at all; with the JWKS it is checked (and refused).
        const head = Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'k1' })).toString('base64url');
        const body = Buffer.from(JSON.stringify({ feeds: ['locked'], actions: ['read'] })).toString('base64url');
        const answer = await fetchStatus(url(`/locked.flv?jwt=${head}.${body}.AAAA`));
        assert.notEqual(answer.status, 200);
        eq(
          /JWTs are not accepted here/.test(answer.body),
          s === 'a',
          `the JWKS file is in use only after the reload: ${answer.body}`,
        );
      },
    },
    {
      directives: ['AuthCallback', 'AuthCallbackTimeout'],
      a: '',
      b: `AuthCallback ${callbackUrl}\nAuthCallbackTimeout 5`,
      probe: async (s) => {
        const before = callbackCalls;
        const answer = await fetchStatus(url('/demo.flv'));
        eq(answer.status, s === 'a' ? 200 : 403, 'the callback refuses every read');
        eq(callbackCalls - before, s === 'a' ? 0 : 1, 'the callback was asked');
      },
    },
    {
      directives: ['AuthCallbackTimeout'],
      a: `AuthCallback ${callbackUrl}\nAuthCallbackTimeout 5`,
      b: `AuthCallback ${callbackUrl}\nAuthCallbackTimeout 0.2`,
      probe: async (s) => {
        callbackDelayMs = 600;
        try {
          const answer = await fetchStatus(url('/demo.flv'));
          // The slow refusal arrives within 5 s; with 0.2 s the callback times out first (503).
          eq(answer.status, s === 'a' ? 403 : 503, `callback answer or timeout: ${answer.body}`);
        } finally {
          callbackDelayMs = 0;
        }
      },
    },
    {
      directives: ['TokenExpiryCutsReaders'],
      a: 'TokenExpiryCutsReaders on',
      b: 'TokenExpiryCutsReaders off',
      probe: (s) => eq(server.ctx.config.auth.tokenExpiryCutsReaders, s === 'a', 'read by every reader as it is admitted'),
    },
    {
      directives: ['RequestHeaderTimeout'],
      a: 'RequestHeaderTimeout 15',
      b: 'RequestHeaderTimeout 4',
      probe: (s) => eq(owners.http.headersTimeoutMs, s === 'a' ? 15_000 : 4000, 'HTTP request head timeout'),
    },
    // Issue 23: hooks. A read POSTs OnRead/OnReadEnd only once the reload added them; the others change the runner's settings.
    {
      directives: ['OnRead', 'OnReadEnd'],
      a: '',
      b: `OnRead ${hookUrl}\nOnReadEnd ${hookUrl}`,
      probe: async (s) => {
        eq(
          owners.hooks.settings.global.map((h) => h.event),
          s === 'a' ? [] : ['read', 'read-end'],
          'the hooks in force',
        );
        if (s === 'b') {
          const before = hookEvents.length;
          eq((await fetchStatus(url('/demo.flv'))).status, 200, 'a reader of /demo.flv');
          await waitFor('the OnRead and OnReadEnd POSTs', () => hookEvents.slice(before).includes('read-end'));
        }
      },
    },
    {
      directives: ['OnPublish', 'OnUnpublish', 'OnRecordSegment'],
      a: '',
      b: `OnPublish ${hookUrl}\nOnUnpublish /bin/true\nOnRecordSegment ${hookUrl}`,
      probe: (s) =>
        eq(
          owners.hooks.settings.global.map((h) => h.event),
          s === 'a' ? [] : ['publish', 'unpublish', 'record-segment'],
          'the hooks in force',
        ),
    },
    {
      directives: ['HookTimeout', 'HookConcurrency', 'HookRetries'],
      a: 'HookTimeout 10\nHookConcurrency 4\nHookRetries 3',
      b: 'HookTimeout 2\nHookConcurrency 1\nHookRetries 0',
      probe: (s) => {
        const { timeoutMs, concurrency, retries } = owners.hooks.settings;
        eq([timeoutMs, concurrency, retries], s === 'a' ? [10_000, 4, 3] : [2000, 1, 0], 'the hook settings');
      },
    },
    {
      directives: ['KeepAliveTimeout'],
      a: 'KeepAliveTimeout 5',
      b: 'KeepAliveTimeout 2',
      probe: (s) => eq(owners.http.keepAliveTimeoutMs, s === 'a' ? 5000 : 2000, 'HTTP keep-alive idle timeout'),
    },
    {
      directives: ['OfflineSlate'],
      a: 'OfflineSlate off',
      b: 'OfflineSlate on',
      probe: (s) => {
        const demo = server.ctx.feeds.get('demo');
        assert.ok(demo !== undefined);
        const state = owners.slates.status(demo).state;
        if (s === 'a') eq(state, 'off', 'no slate');
        else assert.notEqual(state, 'off', 'the demo feed has a slate');
      },
    },
    {
      directives: ['IdleTimeout'],
      a: 'IdleTimeout 60',
      b: 'IdleTimeout 25',
      probe: (s) => {
        eq(owners.rtmp?.nextSessionOptions.idleTimeoutMs, s === 'a' ? 60_000 : 25_000, 'RTMP idle timeout');
        eq(owners.rtsp?.settings.idleTimeoutMs, s === 'a' ? 60_000 : 25_000, 'RTSP idle timeout');
      },
    },
  ];

  // Every global directive is either checked above or listed as needing a restart.
  const restart = new Set(RESTART_RULES.flatMap((r) => r.directives));
  const checked = new Set(checks.flatMap((c) => c.directives));
  const globals = DIRECTIVES.filter(
    (d) => d.scopes.includes('global') && d.removed === undefined && d.obsolete === undefined,
  ).map((d) => d.name);
  const unaccounted = globals.filter((name) => !restart.has(name) && !checked.has(name));
  eq(unaccounted, [], 'global directives that are neither checked after a reload nor listed as needing a restart');

  for (const check of checks) {
    for (const state of ['a', 'b'] as const) {
      const summary = await reload(state === 'a' ? check.a : check.b);
      eq(summary.needRestart, [], `${check.directives.join('/')}: nothing to restart`);
      await t.test(`${check.directives.join(', ')} (${state === 'a' ? check.a : check.b})`.replace(/\n/g, '; '), () =>
        check.probe(state),
      );
    }
  }

  // A directive of the restart list is named in the reload's answer.
  const summary = await reload('EgressThreads 0\nWriteCoalesce 5\n');
  assert.ok(
    summary.needRestart.some((n) => n.startsWith('WriteCoalesce')),
    JSON.stringify(summary.needRestart),
  );
});
