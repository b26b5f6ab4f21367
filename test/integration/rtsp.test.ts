// RTSP/RTP end to end (issue 6): real ffmpeg/ffprobe play every feed over UDP and TCP and decode
// audio and video; ffmpeg publishes with ANNOUNCE/RECORD over both transports and the feed is read
// back as HTTP-FLV; VLC decodes Feedcast's RTP; multicast runs in a network namespace; malformed or
// out-of-state requests get their RTSP status and a log line.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseRtcp } from '../../src/formats/rtp/rtcp.js';
import { parseRtpPacket } from '../../src/formats/rtp/rtp-packet.js';
import { createLogger } from '../../src/observability/logger.js';
import { decodeFrames, probePackets, publish, run, skipWithoutFfmpeg, type ProbeResult } from '../helpers/media-tools.js';
import { decodeRtsp, probeRtsp, RawRtspClient, startRtsp, udpClientPorts } from '../helpers/rtsp-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG = `
<Feed feed1.ffm>
</Feed>
<Feed other.ffm>
ACL deny 127.0.0.1
</Feed>
<Stream live.h264>
Feed feed1.ffm
Format rtp
NoAudio
</Stream>
`;

function assertDecodesAv(probe: ProbeResult, what: string): void {
  assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], `${what}: codecs`);
  const v = probe.streams.find((s) => s.codec_type === 'video');
  assert.equal(v?.width, 320, `${what}: width`);
  assert.equal(v?.height, 240, `${what}: height`);
  const video = probe.packets.filter((p) => p.codec_type === 'video');
  const audio = probe.packets.filter((p) => p.codec_type === 'audio');
  assert.ok(video.length >= 20, `${what}: ${video.length} video packets`);
  assert.ok(audio.length >= 20, `${what}: ${audio.length} audio packets`);
  assert.ok(video[0]?.flags.startsWith('K'), `${what}: starts on a keyframe`);
  // ffmpeg's RTP demuxer gives the very first packet no PTS: judge the others.
  const pts = video.filter((p) => p.pts_time !== undefined && p.pts_time !== 'N/A').map((p) => Number(p.pts_time));
  assert.ok(pts.length >= video.length - 1, `${what}: video packets have PTS`);
  for (let i = 1; i < pts.length; i++) assert.ok((pts[i] as number) > (pts[i - 1] as number), `${what}: video PTS increases`);
  // A/V sync from the RTCP sender reports: the first audio and video times are close.
  const offset = Math.abs(Number(audio.find((p) => p.pts_time !== undefined)?.pts_time) - (pts[0] as number));
  assert.ok(offset < 1.5, `${what}: audio/video start ${offset.toFixed(3)} s apart`);
}

describe('RTSP/RTP', { skip }, () => {
  test('every feed plays over UDP and TCP: ffprobe sees H.264 + AAC, ffmpeg decodes both, one packetiser is shared', async (t) => {
    const server = await startTestServer(t, CONFIG);
    const { rtsp, url } = await startRtsp(t, server);
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);

    for (const transport of ['udp', 'tcp'] as const) {
      const probe = await probeRtsp(url('/feed1'), transport, 2);
      assertDecodesAv(probe, `RTSP over ${transport}`);
      const decoded = await decodeRtsp(url('/feed1'), transport, 2);
      assert.equal(decoded.errors, '', `${transport}: no decode errors`);
      assert.ok(decoded.videoFrames >= 25, `${transport}: decoded ${decoded.videoFrames} video frames`);
      assert.ok(decoded.audioFrames >= 50, `${transport}: decoded ${decoded.audioFrames} audio frames`);
    }

    // Two players at once, one UDP and one TCP: both decode, and they share one RTP output of the feed.
    let shared = '';
    const sampler = setInterval(() => {
      const outputs = server.ctx.outputs.all().filter((o) => o.id.startsWith('feed1.rtp'));
      if (outputs.length === 1 && outputs[0]?.readers === 2) shared = outputs[0].id;
    }, 20);
    const [a, b] = await Promise.all([decodeRtsp(url('/feed1'), 'udp', 3), decodeRtsp(url('/feed1'), 'tcp', 3)]);
    clearInterval(sampler);
    assert.ok(a.videoFrames >= 25 && b.videoFrames >= 25, `both decode (${a.videoFrames}, ${b.videoFrames})`);
    assert.equal(shared, 'feed1.rtp', "one RTP output (in the server's registry) with two readers");

    // The declared `Format rtp` stream with NoAudio carries video only.
    const live = await probeRtsp(url('/live.h264'), 'tcp', 1);
    assert.deepEqual(
      live.streams.map((s) => s.codec_name),
      ['h264'],
    );
    await waitFor('sessions to end after TEARDOWN', () => rtsp.sessionCount === 0);
  });

  test('H.265 + Opus and MPEG-1 video + MP2 play over TCP and UDP without decode errors', async (t) => {
    const server = await startTestServer(t, '<Feed a.ffm>\n</Feed>\n<Feed b.ffm>\n</Feed>\n');
    const { url } = await startRtsp(t, server);
    const a = publish(server.url('/a.ffm'), {
      seconds: 60,
      extra: ['-c:v', 'libx265', '-x265-params', 'log-level=error', '-c:a', 'libopus', '-b:a', '48k'],
    });
    const b = publish(server.url('/b.ffm'), { codecs: 'mpeg1-mp2', seconds: 60 });
    t.after(() => Promise.all([a.stop(), b.stop()]));
    for (const [key, codecs] of [
      ['a', ['hevc', 'opus']],
      ['b', ['mp2', 'mpeg1video']],
    ] as const) {
      await waitFor(`feed ${key} to get tracks`, () => (server.ctx.feeds.get(key)?.tracks.length ?? 0) === 2);
      for (const transport of ['tcp', 'udp'] as const) {
        const probe = await probeRtsp(url(`/${key}`), transport, 1);
        assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), [...codecs], `${key} over ${transport}`);
        const decoded = await decodeRtsp(url(`/${key}`), transport, 2);
        assert.equal(decoded.errors, '', `${key} over ${transport}: no decode errors`);
        assert.ok(
          decoded.videoFrames >= 25 && decoded.audioFrames >= 40,
          `${key} over ${transport}: ${decoded.videoFrames} video, ${decoded.audioFrames} audio frames`,
        );
      }
    }
  });

  for (const transport of ['tcp', 'udp'] as const) {
    test(`ffmpeg publishes over RTSP (${transport}); the feed reads back as HTTP-FLV and as RTSP`, async (t) => {
      const server = await startTestServer(t, CONFIG);
      const { url } = await startRtsp(t, server);
      const pub = publish(url('/feed1'), {
        codecs: 'h264-aac',
        seconds: 60,
        format: 'rtsp' as 'flv',
        extra: ['-rtsp_transport', transport],
      });
      t.after(() => pub.stop());
      const feed = server.ctx.feeds.get('feed1');
      await waitFor('the feed to get tracks from RTSP', () => (feed?.tracks.length ?? 0) === 2);
      assert.equal(feed?.publisher?.protocol, 'rtsp');

      const flv = await probePackets(server.url('/feed1.flv'), 2);
      assertDecodesAv(flv, `HTTP-FLV of an RTSP (${transport}) publish`);
      const decoded = await decodeFrames(server.url('/feed1.flv'), 2);
      assert.equal(decoded.errors, '', 'no decode errors');
      assert.ok(decoded.videoFrames >= 25, `decoded ${decoded.videoFrames} video frames`);
      assert.ok(decoded.audioFrames >= 50, `decoded ${decoded.audioFrames} audio frames`);

      const back = await decodeRtsp(url('/feed1'), 'tcp', 2);
      assert.ok(
        back.videoFrames >= 25 && back.audioFrames >= 50,
        `RTSP read-back: ${back.videoFrames} video, ${back.audioFrames} audio`,
      );
      assert.equal(feed?.stats.framesIn !== undefined && feed.stats.framesIn > 0, true);
      assert.equal(server.ctx.feeds.get('feed1')?.clockRepairs.jumps, 0, 'no timestamp jumps');
    });
  }

  test('errors get their RTSP status and a log line', async (t) => {
    const server = await startTestServer(t, CONFIG);
    const logged: { msg: string; fields: Record<string, unknown> }[] = [];
    const base = createLogger({
      level: 'debug',
      format: 'json',
      write: (line) => {
        const rec = JSON.parse(line) as Record<string, unknown>;
        logged.push({ msg: String(rec['msg']), fields: rec });
      },
    });
    const { url, port } = await startRtsp(t, server, { log: base, describeWaitMs: 300 });
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);

    const c = new RawRtspClient(port);
    t.after(() => c.close());
    const expectStatus = async (status: number, p: Promise<{ status: number }>, what: string): Promise<void> => {
      const r = await p;
      assert.equal(r.status, status, what);
      assert.ok(
        logged.some((l) => l.msg === 'RTSP request refused' && l.fields['status'] === status),
        `log line for ${status} (${what})`,
      );
    };
    assert.equal((await c.request('OPTIONS', '*')).headers.get('public')?.includes('ANNOUNCE'), true);
    await expectStatus(404, c.request('DESCRIBE', url('/nope')), 'unknown feed');
    await expectStatus(403, c.request('DESCRIBE', url('/other')), 'feed ACL');
    await expectStatus(404, c.request('DESCRIBE', url('/other.ffm/x/y')), 'unknown path');
    await expectStatus(454, c.request('PLAY', url('/feed1'), { Session: 'DEADBEEF' }), 'unknown session');
    await expectStatus(
      459,
      c.request('SETUP', url('/feed1'), { Transport: 'RTP/AVP/TCP;interleaved=0-1' }),
      'aggregate SETUP of 2 tracks',
    );
    await expectStatus(
      461,
      c.request('SETUP', url('/feed1/streamid=0'), { Transport: 'RAW/RAW/UDP;unicast' }),
      'unknown transport',
    );
    await expectStatus(
      461,
      c.request('SETUP', url('/feed1/streamid=0'), { Transport: 'RTP/AVP;unicast' }),
      'UDP without client_port',
    );
    await expectStatus(
      461,
      c.request('SETUP', url('/feed1/streamid=0'), { Transport: 'RTP/AVP;multicast' }),
      'multicast for a feed',
    );
    await expectStatus(405, c.request('FLY', url('/feed1')), 'unknown method');
    await expectStatus(551, c.request('OPTIONS', '*', { Require: 'funky-feature' }), 'Require');
    await expectStatus(
      415,
      c.request(
        'ANNOUNCE',
        url('/feed1'),
        { 'Content-Type': 'application/sdp' },
        'v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H263-1998/90000\r\n',
      ),
      'only H.263 announced',
    );
    await expectStatus(
      400,
      c.request('ANNOUNCE', url('/feed1'), { 'Content-Type': 'application/sdp' }, 'not sdp at all'),
      'bad SDP',
    );

    // A full play session: SETUP both tracks over TCP, PLAY, data flows, PAUSE, PLAY, TEARDOWN.
    const s1 = await c.request('SETUP', url('/feed1/streamid=0'), { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
    assert.equal(s1.status, 200);
    assert.equal(s1.headers.get('transport'), 'RTP/AVP/TCP;unicast;interleaved=0-1');
    const session = s1.headers.get('session')?.split(';')[0] ?? '';
    assert.match(s1.headers.get('session') ?? '', /^[0-9A-F]{16};timeout=60$/);
    await expectStatus(
      455,
      c.request('SETUP', url('/feed1/streamid=0'), { Transport: 'RTP/AVP/TCP', Session: session }),
      'same track twice',
    );
    await expectStatus(455, c.request('PAUSE', url('/feed1'), { Session: session }), 'PAUSE before PLAY');
    assert.equal(
      (await c.request('PLAY', url('/feed1'), { Session: session, Range: 'npt=now-' })).headers.get('range'),
      'npt=now-',
    );
    await waitFor('interleaved RTP', () => c.interleavedBytes > 10_000);
    assert.equal((await c.request('GET_PARAMETER', url('/feed1'), { Session: session })).status, 200);
    assert.equal((await c.request('PAUSE', url('/feed1'), { Session: session })).status, 200);
    assert.equal((await c.request('PLAY', url('/feed1'), { Session: session })).status, 200);
    assert.equal((await c.request('TEARDOWN', url('/feed1'), { Session: session })).status, 200);
    await expectStatus(454, c.request('PLAY', url('/feed1'), { Session: session }), 'after TEARDOWN');

    // A second publisher is refused at RECORD with 455 while the HTTP publisher sends.
    const sdp = (await c.request('DESCRIBE', url('/feed1'))).body;
    assert.equal((await c.request('ANNOUNCE', url('/feed1'), { 'Content-Type': 'application/sdp' }, sdp)).status, 200);
    const rs = await c.request('SETUP', url('/feed1/streamid=0'), {
      Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1;mode=record',
    });
    assert.equal(rs.status, 200);
    await expectStatus(
      455,
      c.request('RECORD', url('/feed1'), { Session: rs.headers.get('session')?.split(';')[0] ?? '' }),
      'second publisher',
    );

    // Version and framing errors close the connection after the answer.
    const v = new RawRtspClient(port);
    t.after(() => v.close());
    assert.equal((await v.sendRaw('OPTIONS * RTSP/2.0\r\nCSeq: 1\r\n\r\n')).status, 505);
    const m = new RawRtspClient(port);
    t.after(() => m.close());
    assert.equal((await m.sendRaw('this is not rtsp\r\n\r\n')).status, 400);
    await waitFor('the connection to close', () => m.closed);
  });

  test('a UDP session gets RTP and RTCP sender reports on its client ports, and times out without keep-alives', async (t) => {
    const server = await startTestServer(t, CONFIG);
    const { rtsp, port, url } = await startRtsp(t, server, { sessionTimeoutMs: 1500 });
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
    const { rtp, rtcp } = await udpClientPorts(t);
    let rtpPackets = 0;
    let senderReports = 0;
    rtp.on('message', (msg) => {
      if (parseRtpPacket(msg).payloadType === 96) rtpPackets++;
    });
    rtcp.on('message', (msg) => {
      if (parseRtcp(msg).some((p) => p.type === 'sr')) senderReports++;
    });
    const c = new RawRtspClient(port);
    t.after(() => c.close());
    const setup = await c.request('SETUP', url('/feed1/streamid=0'), {
      Transport: `RTP/AVP;unicast;client_port=${rtp.address().port}-${rtcp.address().port}`,
    });
    assert.equal(setup.status, 200);
    assert.match(
      setup.headers.get('transport') ?? '',
      /^RTP\/AVP\/UDP;unicast;client_port=\d+-\d+;server_port=(\d+)-(\d+);ssrc=[0-9a-f]{8}$/,
    );
    const session = setup.headers.get('session')?.split(';')[0] ?? '';
    assert.equal((await c.request('PLAY', url('/feed1'), { Session: session })).status, 200);
    // Keep-alives (GET_PARAMETER) hold the session until the first sender report is in.
    await waitFor('RTP packets and a sender report', async () => {
      if (rtpPackets > 50 && senderReports > 0) return true;
      assert.equal((await c.request('GET_PARAMETER', url('/feed1'), { Session: session })).status, 200);
      return false;
    });
    c.close(); // the session outlives its control connection (UDP), until the timeout
    await waitFor('the session to time out', () => rtsp.sessionCount === 0, 10_000);
    const after = rtpPackets;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(rtpPackets - after < 5, 'no more RTP after the timeout');
  });

  test('a TCP reader with every track set up gets the shared batches straight on its socket; one with a track left out gets only its own', async (t) => {
    const server = await startTestServer(t, CONFIG);
    const { port, url } = await startRtsp(t, server);
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
    class CountingClient extends RawRtspClient {
      readonly channels = new Map<number, number>();
      protected override onInterleaved(channel: number): void {
        this.channels.set(channel, (this.channels.get(channel) ?? 0) + 1);
      }
    }
    const play = async (trackIds: number[]): Promise<CountingClient> => {
      const c = new CountingClient(port);
      t.after(() => c.close());
      let session: string | undefined;
      for (const id of trackIds) {
        const setup = await c.request('SETUP', url(`/feed1/streamid=${id}`), {
          Transport: `RTP/AVP/TCP;unicast;interleaved=${2 * id}-${2 * id + 1}`,
          ...(session !== undefined ? { Session: session } : {}),
        });
        assert.equal(setup.status, 200);
        session ??= setup.headers.get('session')?.split(';')[0] ?? '';
      }
      assert.equal((await c.request('PLAY', url('/feed1'), { Session: session ?? '' })).status, 200);
      return c;
    };
    const both = await play([0, 1]);
    const videoOnly = await play([0]);
    const readers = (): { counters: Record<string, number>; bytesOut: number }[] =>
      server.ctx.connections.list().filter((c) => c.protocol === 'RTSP/RTP');
    await waitFor(
      'RTP on both channels of the full session',
      () => (both.channels.get(0) ?? 0) > 50 && (both.channels.get(2) ?? 0) > 50,
    );
    await waitFor('the video-only session to get video', () => (videoOnly.channels.get(0) ?? 0) > 50);
    assert.equal(videoOnly.channels.get(2), undefined, 'no audio packet reaches the session that did not set it up');
    // The full session's reader writes straight to the socket, and still counts what it sent.
    await waitFor('the direct session to count its bytes', () =>
      readers().some((r) => r.counters['direct'] === 1 && r.bytesOut > 50_000),
    );
    assert.equal(readers().filter((r) => r.counters['direct'] === 1).length, 1, 'only the session with every track goes direct');
  });

  test('a TCP reader that stops reading is skipped to a keyframe, then dropped (ClientTooSlowError) while another keeps receiving', async (t) => {
    // ReaderMaxLag 3 with a 1 s GOP: keyframes come while the slow reader is behind, before it is dropped.
    const server = await startTestServer(t, `${CONFIG}\nReaderMaxQueue 64K\nReaderMaxLag 3\n`);
    const logged: string[] = [];
    const log = createLogger({ level: 'warn', format: 'json', write: (line) => logged.push(line) });
    const { rtsp, port, url } = await startRtsp(t, server, { log });
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 90, size: '640x480', bitrateK: 4000 });
    t.after(() => pub.stop());
    await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
    const play = async (): Promise<RawRtspClient> => {
      const c = new RawRtspClient(port);
      t.after(() => c.close());
      const setup = await c.request('SETUP', url('/feed1/streamid=0'), { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
      assert.equal(setup.status, 200);
      const session = setup.headers.get('session')?.split(';')[0] ?? '';
      assert.equal((await c.request('PLAY', url('/feed1'), { Session: session })).status, 200);
      return c;
    };
    const fast = await play();
    const slow = await play();
    slow.socket.pause(); // never reads again: the kernel buffers fill, then the reader falls behind
    assert.equal(rtsp.sessionCount, 2);
    await waitFor('the slow reader to be dropped', () => rtsp.sessionCount === 1, 60_000);
    const closed = logged.find((l) => l.includes('RTSP reader closed') && l.includes('FC_ERR_CLIENT_TOO_SLOW'));
    assert.ok(closed !== undefined, 'logged as too slow');
    const dropped = (JSON.parse(closed) as { dropped?: number }).dropped ?? 0;
    assert.ok(dropped > 0, `skipped to a newer keyframe before it was dropped (${dropped} chunks skipped)`);
    const output = server.ctx.outputs.all().find((o) => o.id === 'feed1.rtp');
    assert.ok((output?.readerSkips ?? 0) > 0, 'the skip is counted on the shared RTP output');
    const before = fast.interleavedBytes;
    await waitFor('the fast reader to keep receiving', () => fast.interleavedBytes > before + 100_000);
    assert.ok(!fast.closed);
  });

  test('VLC decodes Feedcast RTP into a null sink', async (t) => {
    const haveVlc =
      spawnSync('runuser', ['-u', 'nobody', '--', 'cvlc', '--version'], { stdio: 'ignore', timeout: 20_000 }).status === 0;
    if (!haveVlc) return t.skip('VLC is not installed (apt-get install -y vlc-bin vlc-plugin-base)');
    const plugins = spawnSync('runuser', ['-u', 'nobody', '--', 'cvlc', '-I', 'dummy', '--list'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    const hasRtspClient = /live555/.test(plugins.stdout ?? '');
    const server = await startTestServer(t, CONFIG);
    const { port, url } = await startRtsp(t, server);
    // Without VLC's RTSP client (live555, not in Debian's VLC), VLC reads Feedcast's RTP directly: MPEG-1
    // video has a static payload type (32), so the RTP session this test sets up needs no SDP.
    const pub = publish(server.url('/feed1.ffm'), { codecs: hasRtspClient ? 'h264-aac' : 'mpeg1-mp2', seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-vlc-'));
    chmodSync(dir, 0o777);
    const clientPort = 42000 + 2 * Math.floor(Math.random() * 1000);
    const source = hasRtspClient ? url('/feed1') : `rtp://@127.0.0.1:${clientPort}`;
    // As root VLC refuses to run: run it as nobody. The scene filter saves every decoded picture.
    const vlc = spawn(
      'runuser',
      [
        '-u',
        'nobody',
        '--',
        'cvlc',
        '-I',
        'dummy',
        '--vout',
        'dummy',
        '--aout',
        'dummy',
        '--no-audio',
        '--video-filter=scene',
        `--scene-path=${dir}`,
        '--scene-ratio=1',
        '--scene-format=png',
        '--scene-prefix=frame',
        source,
      ],
      { stdio: 'ignore', detached: true },
    );
    const vlcExited = new Promise((resolve) => vlc.once('exit', resolve));
    // VLC goes first, then its pictures: removing the folder while it still writes fails (ENOTEMPTY).
    t.after(async () => {
      try {
        if (vlc.pid !== undefined) process.kill(-vlc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      if (vlc.exitCode === null && vlc.signalCode === null) await vlcExited;
      rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
    });
    if (!hasRtspClient) {
      const c = new RawRtspClient(port);
      t.after(() => c.close());
      const setup = await c.request('SETUP', url('/feed1/streamid=0'), {
        Transport: `RTP/AVP;unicast;client_port=${clientPort}-${clientPort + 1}`,
      });
      assert.equal(setup.status, 200);
      const play = await c.request('PLAY', url('/feed1'), { Session: setup.headers.get('session')?.split(';')[0] ?? '' });
      assert.equal(play.status, 200);
    }
    await waitFor('VLC to decode 50 pictures', () => readdirSync(dir).filter((f) => f.endsWith('.png')).length >= 50, 30_000);
    t.diagnostic(
      hasRtspClient
        ? 'VLC played rtsp:// itself'
        : "VLC has no RTSP client here (Debian's VLC lacks the live555 module): it decoded Feedcast's RTP (MPV over UDP) from a session set up over RTSP",
    );
  });

  test('multicast: a Format rtp stream with MulticastAddress plays over RTSP SETUP multicast, in a network namespace', async (t) => {
    const probe = spawnSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
    if (probe.status !== 0) return t.skip('cannot create a network namespace (unshare -n needs root); multicast not tested');
    const { code, stdout, stderr } = await run(
      'unshare',
      [
        '-n',
        'sh',
        '-c',
        'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$0" --import tsx "$1"',
        process.execPath,
        join(ROOT, 'test/helpers/rtsp-multicast-child.ts'),
      ],
      60_000,
    );
    const line = stdout.trim().split('\n').at(-1) ?? '';
    assert.equal(code, 0, `child failed: ${line} ${stderr}`);
    const result = JSON.parse(line) as {
      codecs: string[];
      videoFrames: number;
      audioFrames: number;
      errors: string;
      rawPackets: Record<string, number>;
    };
    assert.deepEqual(result.codecs, ['aac', 'h264']);
    assert.ok(result.videoFrames >= 25, `decoded ${result.videoFrames} video frames from the group`);
    assert.ok(result.audioFrames >= 50, `decoded ${result.audioFrames} audio frames from the group`);
    assert.ok(
      (result.rawPackets['5000'] ?? 0) > 50 && (result.rawPackets['5002'] ?? 0) > 50,
      `packets on MulticastPort and +2: ${JSON.stringify(result.rawPackets)}`,
    );
  });
});
