// SRT end to end (issue 23, part 1): real ffmpeg publishes MPEG-TS over SRT (libsrt on both sides)
// and real ffmpeg/ffprobe read the feed over SRT; stream id forms, secrets, read tokens, a feed's
// SRTPassphrase (right, wrong, missing), and counters on the API and the status page.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { signedQuery } from '../../src/access/auth.js';
import type { ConnectionView } from '../../src/control/snapshot.js';
import { nativeSrt } from '../../src/protocols/srt/native-srt.js';
import { SrtServer } from '../../src/protocols/srt/server.js';
import {
  decodeFrames,
  FFMPEG,
  FFPROBE,
  lavfiArgs,
  probePackets,
  publish,
  run,
  skipWithoutFfmpeg,
  type ProbeResult,
} from '../helpers/media-tools.js';
import { skipWithoutLossTools, startNetnsServer, startServerProcess } from '../helpers/netns-server.js';
import { recordingLogger, type LogLine } from '../helpers/recording-logger.js';
import { freePort, startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';

const srt = nativeSrt();
const skip = skipWithoutFfmpeg() || (srt.module === undefined ? `SRT module missing: ${srt.status}` : false);

/** An SRT listener on a free loopback port for `server` (closed when the test ends). */
function startSrt(
  t: TestContext,
  server: TestServer,
  latencyMs = 120,
): { port: number; url: (streamId: string, extra?: string) => string } {
  const module = srt.module;
  if (module === undefined) throw new Error(srt.status);
  const listener = new SrtServer(server.ctx, module, { pesBudget: server.ctx.ingestBudgets.pes });
  const port = listener.listen(0, '127.0.0.1', latencyMs);
  t.after(() => listener.close());
  return {
    port,
    url: (streamId, extra = '') => `srt://127.0.0.1:${port}?streamid=${encodeURIComponent(streamId)}${extra}`,
  };
}

function assertPlays(result: ProbeResult, what: string): void {
  assert.deepEqual(result.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], `${what}: streams`);
  const v = result.streams.find((s) => s.codec_type === 'video');
  assert.equal(v?.width, 320, `${what}: width`);
  assert.equal(v?.height, 240, `${what}: height`);
  const video = result.packets.filter((p) => p.codec_type === 'video');
  assert.ok(video.length >= 20, `${what}: ${video.length} video packets`);
  const dts = video.map((p) => Number(p.dts_time));
  for (let i = 1; i < dts.length; i++) assert.ok((dts[i] as number) > (dts[i - 1] as number), `${what}: DTS increases at ${i}`);
}

describe('SRT publish and read', { skip }, () => {
  test('ffmpeg publishes over SRT (publish:feed); HTTP TS and an SRT reader (read:feed) decode it', async (t) => {
    const server = await startTestServer(t, '<Feed x.ffm>\n</Feed>\n');
    const srtListener = startSrt(t, server);
    const pub = publish(srtListener.url('publish:x'), { codecs: 'h264-aac', seconds: 40 });
    t.after(() => pub.stop());
    const feed = server.ctx.feeds.get('x');
    await waitFor('the feed to get tracks over SRT', () => (feed?.tracks.length ?? 0) === 2);
    assert.equal(feed?.publisher?.protocol, 'srt');
    assertPlays(await probePackets(server.url('/x.ts'), 2), '/x.ts');

    const url = srtListener.url('#!::r=x,m=request');
    const [probe, decoded] = await Promise.all([probePackets(url, 2), decodeFrames(url, 2)]);
    assertPlays(probe, url);
    assert.equal(decoded.errors, '', `${url}: no decode errors`);
    assert.ok(decoded.videoFrames >= 40, `${url}: decoded ${decoded.videoFrames} video frames`);
    assert.ok(decoded.audioFrames > 50, `${url}: decoded ${decoded.audioFrames} audio frames`);
  });
});

/** The JSON of GET url. */
async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return (await res.json()) as T;
}

/** ffprobe on an SRT URL that should fail: its exit code and stderr (bounded by SRT's own connect timeout). */
function probeFails(url: string): Promise<{ code: number | null; stderr: string }> {
  return run(FFPROBE, ['-v', 'error', '-show_streams', '-of', 'json', url], 30_000);
}

const PASS = 'correct-horse-battery';

describe('SRT passphrases, secrets, tokens and counters', { skip }, () => {
  test("a feed's SRTPassphrase: right one publishes and reads, encrypted; wrong or missing is refused in the handshake", async (t) => {
    const server = await startTestServer(t, `<Feed p.ffm>\nSRTPassphrase ${PASS}\n</Feed>\n<Feed open.ffm>\n</Feed>\n`);
    const listener = startSrt(t, server);
    const pub = publish(listener.url('publish:p', `&passphrase=${PASS}`), { seconds: 40 });
    t.after(() => pub.stop());
    const feed = server.ctx.feeds.get('p');
    await waitFor('the encrypted publisher', () => (feed?.tracks.length ?? 0) === 2);

    // Counters: the API and the status page show the SRT connection, encrypted.
    await waitFor('SRT counters on the publisher', () =>
      server.ctx.connections.list().some((c) => c.counters['srtRttMs'] !== undefined),
    );
    const { connections } = await getJson<{ connections: ConnectionView[] }>(server.url('/api/v1/connections'));
    const srtPublisher = connections.find((c) => c.protocol === 'SRT' && c.role === 'publisher');
    assert.equal(srtPublisher?.target, 'p.ffm');
    assert.equal(srtPublisher?.srt?.encrypted, true);
    assert.equal(typeof srtPublisher?.srt?.packetsLost, 'number');
    const page = await (await fetch(server.url('/stat.html'))).text();
    assert.match(page, /<h2>SRT connections<\/h2>/);
    assert.match(
      page,
      /<td>p\.ffm \(input\)<\/td><td>127\.0\.0\.1<\/td><td>\d+<\/td><td>\d+<\/td><td>\d+<\/td><td>[\d.]+<\/td><td>yes<\/td>/,
    );

    const good = await decodeFrames(listener.url('read:p', `&passphrase=${PASS}`), 2);
    assert.ok(good.videoFrames >= 40, `decoded ${good.videoFrames} frames with the passphrase`);

    const wrong = await probeFails(listener.url('read:p', '&passphrase=not-the-passphrase'));
    assert.notEqual(wrong.code, 0, 'a wrong passphrase is refused');
    const missing = await probeFails(listener.url('read:p'));
    assert.notEqual(missing.code, 0, 'a missing passphrase is refused');
    const unwanted = await probeFails(listener.url('read:open', `&passphrase=${PASS}`));
    assert.notEqual(unwanted.code, 0, 'a passphrase to a feed without one is refused');
    // A second publisher with a wrong passphrase never reaches the feed.
    const intruder = publish(listener.url('publish:p', '&passphrase=wrong-passphrase-x'), { seconds: 5 });
    t.after(() => intruder.stop());
    assert.notEqual(await intruder.exited, 0, intruder.stderr());
    assert.equal(feed?.publisher?.protocol, 'srt');
    assert.equal(
      server.ctx.connections.list().filter((c) => c.protocol === 'SRT').length,
      1,
      'only the publisher is connected: refused callers never became connections',
    );
  });

  test('PublishSecret, unknown feeds, read tokens: the same policy as every protocol, with the reason logged', async (t) => {
    const KEY = 'srt-test-read-token-key';
    const lines: LogLine[] = [];
    const server = await startTestServer(
      t,
      `ReadTokenKey ${KEY}\n<Feed s.ffm>\nPublishSecret s3cr3t\nRequireReadToken\n</Feed>\n`,
      { log: recordingLogger(lines) },
    );
    const listener = startSrt(t, server);
    const refusals = (): LogLine[] => lines.filter((l) => l.msg === 'srt caller refused' || l.msg === 'read refused');

    const noSecret = publish(listener.url('publish:s'), { seconds: 30 });
    t.after(() => noSecret.stop());
    await waitFor('the publisher without the secret to be refused', () => refusals().length === 1);
    assert.match(String(refusals()[0]?.fields['reason']), /secret/i);
    const unknown = publish(listener.url('#!::r=nope,m=publish'), { seconds: 30 });
    t.after(() => unknown.stop());
    await waitFor('the publisher to an unknown feed to be refused', () => refusals().length === 2);
    assert.match(String(refusals()[1]?.fields['reason']), /no feed named "nope"/);
    await Promise.all([noSecret.stop(), unknown.stop()]);

    const pub = publish(listener.url('#!::r=s,m=publish,secret=s3cr3t'), { seconds: 40 });
    t.after(() => pub.stop());
    await waitFor('the publisher with the secret', () => (server.ctx.feeds.get('s')?.tracks.length ?? 0) === 2);

    const denied = await probeFails(listener.url('read:s'));
    assert.notEqual(denied.code, 0, 'a reader without a token gets nothing');
    assert.ok(
      refusals().some((l) => l.msg === 'read refused' && l.fields['protocol'] === 'srt'),
      JSON.stringify(refusals().map((l) => l.fields)),
    );
    const token = signedQuery(KEY, 's', 60);
    const allowed = await probePackets(listener.url(`read:s?${token}`), 2);
    assertPlays(allowed, 'read with a token');
  });
});

/** Why the packet-loss test cannot run here, or false. */
describe('SRT over a lossy network', { skip: skip || skipWithoutLossTools() }, () => {
  // 5% of the UDP packets of the SRT port are dropped in each direction, inside a network namespace the
  // test creates (tc netem is what one would use, but this machine's kernel has no sch_netem: nftables'
  // `numgen random` drops instead, the same random loss). SRT recovers what is lost within SRTLatency (1 s: 400 ms
  // lost a packet once on a machine at load average 15, where the process was starved past it):
  // the reader decodes every frame, and the counters show the losses and the retransmissions.
  test('5% loss both ways: the picture still decodes, losses are recovered and counted', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-srt-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const conf = join(dir, 'srt.conf');
    writeFileSync(conf, 'HTTPPort 8090\nHTTPBindAddress 127.0.0.1\nSRTPort 8890\nSRTLatency 1000\n<Feed feed1.ffm>\n</Feed>\n');
    const server = await startNetnsServer(t, ['-f', conf], { FEEDCAST_RTSP_PORT: '0', FEEDCAST_RTMP_PORT: '0' });
    const nft = async (...args: string[]): Promise<void> => {
      const r = await server.inNs('nft', args);
      assert.equal(r.code, 0, `nft ${args.join(' ')}: ${r.stderr}`);
    };
    await nft('add', 'table', 'inet', 'loss');
    await nft('add', 'chain', 'inet', 'loss', 'out', '{ type filter hook output priority 0; }');
    for (const port of ['dport', 'sport']) {
      await nft(
        'add',
        'rule',
        'inet',
        'loss',
        'out',
        'udp',
        port,
        '8890',
        'numgen',
        'random',
        'mod',
        '100',
        '<',
        '5',
        'counter',
        'drop',
      );
    }
    const connections = async (): Promise<ConnectionView[]> => {
      const r = await server.inNs('curl', ['-s', 'http://127.0.0.1:8090/api/v1/connections']);
      return r.code === 0 && r.stdout.startsWith('{')
        ? (JSON.parse(r.stdout) as { connections: ConnectionView[] }).connections
        : [];
    };

    // The publisher runs in the server's namespace (nsenter execs it: its PID is ffmpeg's, stopped by it).
    const publisher = spawn(
      'nsenter',
      [
        '-t',
        String(server.child.pid),
        '-n',
        FFMPEG,
        '-hide_banner',
        '-loglevel',
        'error',
        '-nostdin',
        '-re',
        ...lavfiArgs('h264-aac', { bitrateK: 800 }),
        '-t',
        '40',
        '-f',
        'mpegts',
        'srt://127.0.0.1:8890?streamid=publish:feed1&latency=1000000',
      ],
      { stdio: 'ignore' },
    );
    const publisherExited = once(publisher, 'exit');
    t.after(async () => {
      if (publisher.exitCode === null && publisher.signalCode === null) {
        publisher.kill('SIGTERM');
        await publisherExited;
      }
    });
    let views: ConnectionView[] = [];
    await waitFor(
      'the SRT publisher to lose packets',
      async () => {
        views = await connections();
        return views.some((c) => c.protocol === 'SRT' && c.role === 'publisher' && (c.srt?.packetsLost ?? 0) > 0);
      },
      30_000,
    );

    const reader = await server.inNs(FFMPEG, [
      '-hide_banner',
      '-nostdin',
      '-v',
      'error',
      '-t',
      '6',
      '-i',
      'srt://127.0.0.1:8890?streamid=read:feed1&latency=1000000',
      '-f',
      'framecrc',
      '-',
    ]);
    const frames = reader.stdout.split('\n').filter((l) => l.startsWith('0,')).length;
    assert.ok(frames >= 140, `the reader decoded ${frames} video frames of 6 s at 25 fps`);
    assert.equal(reader.stderr.trim(), '', 'no decode errors: every lost packet was recovered');

    views = await connections();
    const pub = views.find((c) => c.protocol === 'SRT' && c.role === 'publisher');
    assert.ok((pub?.srt?.packetsLost ?? 0) > 0, `the publisher lost packets: ${JSON.stringify(pub?.srt)}`);
    assert.equal(pub?.srt?.packetsDropped, 0, 'none of them too late: all recovered');
    const sent = await server.inNs('nft', ['list', 'table', 'inet', 'loss']);
    assert.match(sent.stdout, /counter packets [1-9]\d* bytes/, 'nftables dropped packets');
    // The reader's own counters were logged when it left.
    await waitFor('the reader to be logged', () => server.lines().some((l) => l.msg === 'srt reader finished'));
    const left = server.lines().find((l) => l.msg === 'srt reader finished');
    assert.ok(Number(left?.['lost']) > 0, `the server lost packets sending to the reader: ${JSON.stringify(left)}`);
    assert.ok(Number(left?.['retransmitted']) > 0, 'and retransmitted them');
    assert.equal(Number(left?.['dropped']), 0, 'none too late');

    // /metrics: libsrt's counters summed by feed and role, the reader's kept after it left.
    const scrape = await server.inNs('curl', ['-s', 'http://127.0.0.1:8090/metrics']);
    assert.equal(scrape.code, 0, scrape.stderr);
    const sample = (name: string, role: string): number | undefined => {
      const line = scrape.stdout
        .split('\n')
        .find((l) => l.startsWith(`${name}{`) && l.includes('feed="feed1"') && l.includes(`role="${role}"`));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const open = (await connections()).filter((c) => c.protocol === 'SRT');
    assert.equal(open.length, 1, 'the publisher alone is still connected');
    assert.equal(sample('feedcast_srt_connections', 'publisher'), 1, scrape.stdout);
    assert.equal(sample('feedcast_srt_connections', 'reader'), 0, 'the reader has left');
    assert.ok((sample('feedcast_srt_packets_lost_total', 'publisher') ?? 0) > 0, 'the publisher lost packets');
    assert.equal(sample('feedcast_srt_packets_dropped_total', 'publisher'), 0);
    assert.equal(sample('feedcast_srt_packets_lost_total', 'reader'), Number(left?.['lost']), "the reader's losses");
    assert.equal(sample('feedcast_srt_packets_retransmitted_total', 'reader'), Number(left?.['retransmitted']));
    assert.equal(sample('feedcast_srt_packets_dropped_total', 'reader'), 0);
  });
});

describe('SRT without the SRT module', () => {
  // Issue 23: the server runs without libsrt and says SRT is off and why (FEEDCAST_NATIVE=off stands in
  // for a machine where the module could not be built).
  test('SRTPort without the module: the server starts, serves HTTP, and logs "SRT is off" with the reason', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-srt-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const conf = join(dir, 'srt.conf');
    // The module is never loaded (FEEDCAST_NATIVE=off), so port 8890 is never bound.
    writeFileSync(
      conf,
      `HTTPPort ${port}\nHTTPBindAddress 127.0.0.1\nSRTPort 8890\nSRTBindAddress 127.0.0.1\n<Feed feed1.ffm>\n</Feed>\n`,
    );
    const server = await startServerProcess(t, ['-f', conf], { FEEDCAST_NATIVE: 'off', FEEDCAST_RTMP_PORT: '0' });
    assert.equal(server.child.exitCode, null, server.output());
    const off = server.lines().find((l) => l.msg === 'SRT is off');
    assert.equal(off?.['reason'], 'FEEDCAST_NATIVE=off', server.output());
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
    assert.equal(res.status, 200, 'the rest of the server runs');
  });
});
