// `feedcast publish` (ffserver's publish handshake, ref §3.2): run as a user runs it, it asks the
// server for the feed's encodings, encodes every variant at the publisher and pushes one
// multi-track MPEG-TS; readers of each declared stream get their variant with no ffmpeg running
// in the server. It survives the server going away, and fails clearly when refused.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { parseConfigText } from '../../src/config/config.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startServer } from '../../src/server.js';
import { childrenNamed } from '../helpers/processes.js';
import { probePackets, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

const LADDER = `
<Feed feed1.ffm>
</Feed>
<Stream hi.flv>
  Feed feed1.ffm
  Format flv
  VideoCodec libx264
  VideoSize 320x240
  VideoFrameRate 10
  VideoBitRate 300
  AVOptionVideo preset ultrafast
  AudioCodec aac
  AudioBitRate 64
  AudioSampleRate 44100
  AudioChannels 1
</Stream>
<Stream lo.ts>
  Feed feed1.ffm
  Format mpegts
  VideoCodec libx264
  VideoSize 160x120
  VideoFrameRate 10
  VideoBitRate 100
  AVOptionVideo preset ultrafast
  AudioCodec aac
  AudioBitRate 32
  AudioSampleRate 22050
  AudioChannels 1
</Stream>
`;

const LAVFI = ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=10', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100'];

interface Cli {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr(): string;
  stop(): Promise<void>;
}

/** `node --import tsx src/main.ts publish ARGS...` as a child process. */
function feedcastPublish(t: TestContext, args: string[]): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'publish', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  child.stdout?.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const cli: Cli = {
    child,
    exited,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
  t.after(() => cli.stop());
  return cli;
}

test(
  'feedcast publish pushes every variant; each stream gets its own with no ffmpeg in the server',
  { skip, timeout: 90_000 },
  async (t) => {
    const server = await startTestServer(t, LADDER);
    const cli = feedcastPublish(t, [...LAVFI, server.url('/feed1.ffm')]);
    const feed = server.ctx.feeds.get('feed1');
    await waitFor('the four published tracks', () => feed?.tracks.length === 4, 30_000);
    assert.deepEqual(
      feed?.tracks.map((tr) => `${tr.kind}:${tr.codec}:${tr.width ?? tr.sampleRate ?? ''}`),
      ['video:h264:320', 'video:h264:160', 'audio:aac:44100', 'audio:aac:22050'],
    );
    const [hi, lo] = await Promise.all([probePackets(server.url('/hi.flv'), 3), probePackets(server.url('/lo.ts'), 3)]);
    const hv = hi.streams.find((s) => s.codec_type === 'video');
    const lv = lo.streams.find((s) => s.codec_type === 'video');
    assert.deepEqual([hv?.codec_name, hv?.width, hv?.height], ['h264', 320, 240]);
    assert.deepEqual([lv?.codec_name, lv?.width, lv?.height], ['h264', 160, 120]);
    assert.equal(hi.streams.find((s) => s.codec_type === 'audio')?.sample_rate, '44100');
    assert.equal(lo.streams.find((s) => s.codec_type === 'audio')?.sample_rate, '22050');
    assert.equal(hi.streams.length, 2, 'one video and one audio track per stream');
    assert.ok(hi.packets.length > 20 && lo.packets.length > 20);
    // The server encoded nothing: no ffmpeg child of this (the server's) process, no transcoder.
    assert.deepEqual(childrenNamed('ffmpeg'), []);
    assert.deepEqual(server.ctx.children?.transcoders() ?? [], []);
    assert.match(cli.stderr(), /wants 2 variant\(s\): hi\.flv: h264 320x240 300k \+ aac 64k; lo\.ts: h264 160x120 100k/);
    assert.equal(cli.child.exitCode, null, 'the publisher keeps running');
  },
);

test(
  'feedcast publish reconnects with backoff when the server goes away and comes back',
  { skip, timeout: 90_000 },
  async (t) => {
    const config = await parseConfigText(LADDER, 'test.conf');
    const first = await startServer(
      { ...config, http: { port: 0, bindAddress: '127.0.0.1' }, rtmp: { ...config.rtmp, port: 0 } },
      { log: silentLogger },
    );
    const port = first.httpPort;
    let firstClosed = false;
    t.after(async () => {
      if (!firstClosed) await first.close();
    });
    const cli = feedcastPublish(t, ['--max-backoff', '1', ...LAVFI, `http://127.0.0.1:${port}/feed1.ffm`]);
    await waitFor('tracks on the first server', () => first.ctx.feeds.get('feed1')?.tracks.length === 4, 30_000);
    const pid = cli.child.pid;
    await first.close();
    firstClosed = true;
    await waitFor('the publisher to notice', () => /retrying in/.test(cli.stderr()), 20_000);
    const second = await startServer(
      { ...config, http: { port, bindAddress: '127.0.0.1' }, rtmp: { ...config.rtmp, port: 0 } },
      { log: silentLogger },
    );
    t.after(() => second.close());
    await waitFor('tracks on the second server', () => second.ctx.feeds.get('feed1')?.tracks.length === 4, 30_000);
    const probe = await probePackets(`http://127.0.0.1:${port}/lo.ts`, 2);
    assert.equal(probe.streams.find((s) => s.codec_type === 'video')?.width, 160);
    assert.equal(cli.child.pid, pid);
    assert.equal(cli.child.exitCode, null);
    // ffmpeg kept running across the outage: it was started once.
    assert.equal(cli.stderr().match(/feedcast publish: ffmpeg /g)?.length, 1, cli.stderr());
  },
);

test('feedcast publish fails clearly: unknown feed, wrong secret, bad input, bad usage', { skip, timeout: 60_000 }, async (t) => {
  const server = await startTestServer(t, '<Feed feed1.ffm>\n  PublishSecret s3cret\n</Feed>\n');
  const noFeed = feedcastPublish(t, [...LAVFI, server.url('/nope.ffm')]);
  assert.equal(await noFeed.exited, 1);
  assert.match(noFeed.stderr(), /the server has no declared feed at \/nope\.ffm \(404/);

  const wrong = feedcastPublish(t, [...LAVFI, server.url('/feed1.ffm?secret=wrong')]);
  assert.equal(await wrong.exited, 1);
  assert.match(wrong.stderr(), /the server refused the push \(403\): Wrong publish secret for feed feed1/);

  const badInput = feedcastPublish(t, ['/nonexistent/input.mp4', server.url('/feed1.ffm?secret=s3cret')]);
  assert.equal(await badInput.exited, 1);
  assert.match(badInput.stderr(), /ffmpeg ended with exit code 1.*before producing anything/);

  const usage = feedcastPublish(t, ['a', 'b', 'ftp://x/feed1.ffm']);
  assert.equal(await usage.exited, 2);
  assert.match(usage.stderr(), /the feed URL must be http:\/\/ or https:\/\//);

  const good = feedcastPublish(t, [...LAVFI, server.url('/feed1.ffm?secret=s3cret')]);
  await waitFor('the secret publisher to be on', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2, 30_000);
  assert.equal(good.child.exitCode, null);
});
