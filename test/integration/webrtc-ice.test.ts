// WebRTC ICE (issue 9, item 3): single-port mode (every peer on one UDP port through the UDP mux),
// ICE-TCP for a browser that cannot use UDP, and the on-demand Launch source started by a WHEP
// viewer. Headless Chromium is the client; everything runs on loopback.

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { describe, test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { classes, Message, methods } from 'werift';
import { iceUsername, parseStunMessage, verifyIntegrity } from '../../src/protocols/webrtc/udp-mux.js';
import { createLogger } from '../../src/observability/logger.js';
import { skipWithoutChromium } from '../helpers/browser.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { freePort, waitFor, type TestServer } from '../helpers/test-server.js';
import { launchWebRtcChromium, WHEP_CLIENT, WHIP_CLIENT } from '../helpers/webrtc-browser.js';
import { livePublisher, sharedWebRtcBrowser, webrtcServer } from '../helpers/webrtc-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutChromium();

/** In-page: the selected ICE pair of `window.whep` and the decoded frames. */
const PAIR_CLIENT = `
window.whepPair = async () => {
  const out = { framesDecoded: 0, local: null, remote: null, state: window.whep ? window.whep.pc.connectionState : 'none' };
  if (!window.whep) return out;
  const stats = await window.whep.pc.getStats();
  let pairId;
  stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
  const pair = pairId ? stats.get(pairId) : undefined;
  const cand = (id) => { const c = id ? stats.get(id) : undefined; return c ? { address: c.address, port: c.port, protocol: c.protocol, type: c.candidateType, tcpType: c.tcpType || null } : null; };
  if (pair) { out.local = cand(pair.localCandidateId); out.remote = cand(pair.remoteCandidateId); }
  stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') out.framesDecoded = s.framesDecoded || 0; });
  return out;
};
`;

interface Candidate {
  address: string;
  port: number;
  protocol: string;
  type: string;
  tcpType: string | null;
}
interface PairStats {
  framesDecoded: number;
  local: Candidate | null;
  remote: Candidate | null;
  state: string;
}

function pairStats(page: Page): Promise<PairStats> {
  return page.evaluate<PairStats>('window.whepPair()');
}

async function whepPage(browser: Browser, server: TestServer, t: TestContext): Promise<{ page: Page; answer: string }> {
  const page = await browser.newPage();
  t.after(() => page.close());
  await page.goto(server.url('/'));
  await page.evaluate(WHEP_CLIENT + PAIR_CLIENT);
  const r = await page.evaluate<{ status: number; text: string }>(
    `window.whepPlay(${JSON.stringify(server.url('/feed1/whep'))})`,
  );
  assert.equal(r.status, 201, r.text);
  return { page, answer: r.text };
}

describe('WebRTC single UDP port', { skip }, () => {
  const browser = sharedWebRtcBrowser();

  test('two concurrent viewers play through the one UDP port', { timeout: 300_000 }, async (t) => {
    const { server, webrtc } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n', { udpMuxPort: 0 });
    const mux = webrtc.udpMux;
    assert.ok(mux !== undefined, 'the mux socket opens with ready()');
    const port = mux.port;
    assert.ok(port !== undefined && port > 0);
    await livePublisher(t, server);
    const a = await whepPage(browser(), server, t);
    const b = await whepPage(browser(), server, t);
    for (const { answer } of [a, b]) {
      const udp = answer.split('\r\n').filter((l) => / udp /i.test(l) && l.startsWith('a=candidate:'));
      assert.deepEqual(
        udp.map((l) => l.split(' ').slice(4, 8).join(' ')),
        [`127.0.0.1 ${port} typ host`],
        'one UDP host candidate, on the mux port',
      );
    }
    for (const { page } of [a, b]) {
      await waitFor('decoded frames', async () => (await pairStats(page)).framesDecoded > 25, 120_000);
    }
    for (const { page } of [a, b]) {
      const stats = await pairStats(page);
      t.diagnostic(`selected pair: ${JSON.stringify(stats)}`);
      assert.equal(stats.remote?.port, port, 'the browser talks to the mux port');
      assert.equal(stats.remote?.protocol, 'udp');
    }
    assert.equal(webrtc.sessionCount, 2);
    assert.equal(mux.peerCount, 2);
    assert.ok(mux.mappingCount >= 2, `each browser peer has its mapping (${mux.mappingCount})`);
    const first = await pairStats(a.page);
    const framesBefore = first.framesDecoded;
    // Traffic of the other peer keeps flowing after one leaves.
    await b.page.close();
    await waitFor('the closed page to leave the mux', () => mux.peerCount === 1, 120_000);
    await waitFor(
      'more frames on the remaining viewer',
      async () => (await pairStats(a.page)).framesDecoded > framesBefore + 25,
      20_000,
    );
    assert.equal(mux.counters.mappingsRefused, 0);
  });

  test('a browser publishes over WHIP through the one UDP port', { timeout: 300_000 }, async (t) => {
    const { server, webrtc } = await webrtcServer(t, '<Feed cam.ffm>\n</Feed>\n', {
      udpMuxPort: 0,
      whipKeyframeIntervalMs: 1000,
    });
    const mux = webrtc.udpMux;
    assert.ok(mux !== undefined);
    const page = await browser().newPage();
    t.after(() => page.close());
    await page.goto(server.url('/'));
    await page.evaluate(WHIP_CLIENT);
    const r = await page.evaluate<{ status: number; text: string }>(
      `window.whipPublish(${JSON.stringify(server.url('/cam/whip'))})`,
    );
    assert.equal(r.status, 201, r.text);
    assert.match(r.text, new RegExp(`a=candidate:\\S+ 1 udp \\d+ 127\\.0\\.0\\.1 ${mux.port} typ host`));
    const feed = server.ctx.feeds.get('cam');
    await waitFor('the WHIP tracks on the feed', () => (feed?.tracks.length ?? 0) === 2, 120_000);
    await waitFor('frames from the browser', () => (webrtc.status()[0]?.framesIn ?? 0) > 25, 120_000);
    assert.equal(mux.peerCount, 1);
    assert.ok(mux.mappingCount >= 1);
  });

  test('a vanished viewer is cleaned from the mux after the peer timeout', { timeout: 300_000 }, async (t) => {
    const { server, webrtc } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n', { udpMuxPort: 0, peerTimeoutMs: 5000 });
    const mux = webrtc.udpMux;
    assert.ok(mux !== undefined);
    await livePublisher(t, server);
    const { page } = await whepPage(browser(), server, t);
    await waitFor('decoded frames', async () => (await pairStats(page)).framesDecoded > 5, 120_000);
    assert.ok(mux.mappingCount >= 1);
    await page.goto('chrome://crash').catch(() => undefined);
    await waitFor('the vanished peer to be cleaned up', () => webrtc.sessionCount === 0 && mux.peerCount === 0, 120_000);
    assert.equal(mux.mappingCount, 0, 'its mappings go with it');
    // Datagrams from a stranger (not a signed Binding request of a known peer) are dropped.
    const before = mux.counters.dropped;
    const stranger = createSocket('udp4');
    t.after(() => stranger.close());
    stranger.send(Buffer.from('not stun at all'), mux.port, '127.0.0.1');
    await waitFor('the stranger to be dropped', () => mux.counters.dropped > before, 5000);
    assert.equal(mux.mappingCount, 0);
  });
});

describe('WebRTC ICE-TCP', { skip }, () => {
  // Chromium's WebRTC IP handling policy "disable_non_proxied_udp" (the WebRtcIPHandling
  // enterprise policy): WebRTC may not send UDP except through a proxy, and there is none, so
  // this browser's only way to the server is TCP, as behind a firewall that drops UDP.
  const browser = sharedWebRtcBrowser(['--webrtc-ip-handling-policy=disable_non_proxied_udp']);

  for (const singlePort of [false, true]) {
    test(
      `a browser that cannot use UDP plays over ICE-TCP (${singlePort ? 'single UDP port' : 'per-peer UDP'})`,
      { timeout: 300_000 },
      async (t) => {
        const udpMuxPort = singlePort ? await freePort() : undefined;
        const { server, webrtc } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n', { tcp: true, udpMuxPort });
        const mux = webrtc.udpMux;
        const tcpPort = mux?.tcpPort;
        assert.ok(tcpPort !== undefined && tcpPort > 0);
        if (udpMuxPort !== undefined) assert.equal(tcpPort, udpMuxPort, 'ICE-TCP takes the number of the single UDP port');
        await livePublisher(t, server);
        const { page, answer } = await whepPage(browser(), server, t);
        assert.match(answer, new RegExp(`a=candidate:\\S+ 1 tcp \\d+ 127\\.0\\.0\\.1 ${tcpPort} typ host tcptype passive`));
        await waitFor('decoded frames over TCP', async () => (await pairStats(page)).framesDecoded > 25, 120_000);
        const stats = await pairStats(page);
        t.diagnostic(`selected pair: ${JSON.stringify(stats)}`);
        assert.equal(stats.local?.protocol, 'tcp');
        assert.equal(stats.remote?.protocol, 'tcp');
        assert.equal(stats.remote?.port, tcpPort);
        const remotes = mux?.remotesOf(answerUfrag(answer)) ?? [];
        assert.ok(remotes.length >= 1 && remotes.every((k) => k.startsWith('tcp|')), `only TCP remotes: ${remotes.join(', ')}`);
      },
    );
  }
});

describe('WebRTC viewer that falls behind', { skip }, () => {
  // As in 'WebRTC ICE-TCP': this browser can only reach the server over TCP.
  const browser = sharedWebRtcBrowser(['--webrtc-ip-handling-policy=disable_non_proxied_udp']);

  test(
    'a viewer whose ICE-TCP connection stops taking data is skipped to a keyframe, then closed as too slow; another keeps playing',
    { timeout: 300_000 },
    async (t) => {
      const logged: string[] = [];
      const log = createLogger({ level: 'info', format: 'json', write: (line) => logged.push(line) });
      // ReaderMaxLag 3 with a 1 s GOP: keyframes come while the slow viewer is behind, before it is closed.
      const { server, webrtc } = await webrtcServer(
        t,
        'ReaderMaxQueue 64K\nReaderMaxLag 3\n<Feed feed1.ffm>\n</Feed>\n',
        { tcp: true },
        { log },
      );
      const tcpPort = webrtc.udpMux?.tcpPort;
      assert.ok(tcpPort !== undefined && tcpPort > 0);
      // 6 Mb/s, so that the kernel's socket buffers fill within seconds once the relay stops.
      const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-only', size: '640x360', bitrateK: 6000, seconds: 3600 });
      t.after(() => pub.stop());
      await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 1);

      // The slow viewer reaches the server through a TCP relay that can stop reading from the
      // server, as a viewer on a link too slow for the stream would: the server's side backs up.
      const upstreams: Socket[] = [];
      const relay = createServer((client) => {
        const upstream = connect(tcpPort, '127.0.0.1');
        upstreams.push(upstream);
        for (const s of [client, upstream]) s.on('error', () => undefined);
        client.pipe(upstream);
        upstream.pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      relay.listen(0, '127.0.0.1');
      await once(relay, 'listening');
      t.after(() => {
        for (const u of upstreams) u.destroy();
        relay.close();
      });
      const relayPort = (relay.address() as AddressInfo).port;
      const slowPage = await browser().newPage();
      t.after(() => slowPage.close());
      // The answer's passive TCP candidate points at the relay instead of the server.
      await slowPage.route('**/feed1/whep', async (route) => {
        const response = await route.fetch();
        const body = (await response.text()).replaceAll(
          ` 127.0.0.1 ${tcpPort} typ host tcptype passive`,
          ` 127.0.0.1 ${relayPort} typ host tcptype passive`,
        );
        await route.fulfill({ response, body });
      });
      await slowPage.goto(server.url('/'));
      await slowPage.evaluate(WHEP_CLIENT + PAIR_CLIENT);
      const before = new Set(server.ctx.connections.list());
      const played = await slowPage.evaluate<{ status: number; text: string }>(
        `window.whepPlay(${JSON.stringify(server.url('/feed1/whep'))})`,
      );
      assert.equal(played.status, 201, played.text);
      assert.match(played.text, new RegExp(` ${relayPort} typ host tcptype passive`));
      await waitFor(
        'the slow viewer to decode through the relay',
        async () => (await pairStats(slowPage)).framesDecoded > 25,
        120_000,
      );
      const slowConn = server.ctx.connections.list().find((c) => !before.has(c) && c.protocol === 'WebRTC');
      assert.ok(slowConn !== undefined, 'the slow viewer is a connection');
      assert.ok(upstreams.length > 0, 'the slow viewer came through the relay');

      // The relay stops reading from the server: the viewer's ICE-TCP connection backs up.
      for (const u of upstreams) {
        u.unpipe();
        u.pause();
      }
      const { page: healthy } = await whepPage(browser(), server, t);
      await waitFor('the slow viewer to be closed', () => !server.ctx.connections.list().includes(slowConn), 120_000);
      assert.ok((slowConn.counters['skips'] ?? 0) > 0, `skipped to a keyframe first (${slowConn.counters['skips']} skips)`);
      assert.ok(
        logged.some((l) => l.includes('WHEP viewer closed') && l.includes('FC_ERR_CLIENT_TOO_SLOW')),
        // Failed once under load without saying why: show what the server logged about sessions instead.
        `logged as too slow; the server logged: ${logged.filter((l) => /WHEP|session|viewer/i.test(l)).join('\n')}`,
      );
      const decoded = (await pairStats(healthy)).framesDecoded;
      await waitFor(
        'the healthy viewer to keep decoding',
        async () => (await pairStats(healthy)).framesDecoded > decoded + 50,
        120_000,
      );
    },
  );
});

function answerUfrag(sdp: string): string {
  return /^a=ice-ufrag:(\S+)/m.exec(sdp)?.[1] ?? '';
}

describe('WebRTC and on-demand sources', { skip }, () => {
  const browser = sharedWebRtcBrowser();

  test('a WHEP viewer starts a Launch feed, plays it, and lets it stop when it leaves', { timeout: 300_000 }, async (t) => {
    const { server, webrtc } = await webrtcServer(
      t,
      `TranscodeIdleTimeout 0.5
<Feed feed1.ffm>
  Launch ffmpeg -re -f lavfi -i testsrc2=size=320x240:rate=25 -c:v libx264 -preset veryfast -tune zerolatency -g 25 -pix_fmt yuv420p
</Feed>
`,
    );
    const running = (): boolean | undefined => server.ctx.children?.sources().find((s) => s.feed === 'feed1')?.running;
    assert.equal(running(), false, 'nothing runs before a viewer comes');
    const { page, answer } = await whepPage(browser(), server, t);
    assert.match(answer, /a=rtpmap:\d+ H264\/90000/, 'the answer waited for the feed tracks (H.264 chosen)');
    assert.equal(running(), true);
    await waitFor('decoded frames', async () => (await pairStats(page)).framesDecoded > 25, 120_000);
    assert.equal(server.ctx.children?.sources().find((s) => s.feed === 'feed1')?.readers, 1);
    await page.close();
    await waitFor('the session to end', () => webrtc.sessionCount === 0, 120_000);
    await waitFor('the source to stop when idle', () => running() === false, 120_000);
  });
});

describe('STUN from Chromium', { skip: skipWithoutChromium() }, () => {
  test(
    'Chromium sends a Binding request the mux can read (FEEDCAST_WRITE_FIXTURES=1 saves it)',
    { timeout: 300_000 },
    async (t) => {
      const browser = await launchWebRtcChromium();
      t.after(() => browser.close());
      const page = await browser.newPage();
      const sock = createSocket('udp4');
      t.after(() => sock.close());
      sock.bind(0, '127.0.0.1');
      await new Promise((r) => sock.once('listening', r));
      const serverUfrag = 'fcst';
      const serverPassword = 'feedcast-fixture-pwd-0123';
      const offer = await page.evaluate<string>(`(async () => {
      const pc = new RTCPeerConnection(); window.pc = pc; pc.createDataChannel('x');
      await pc.setLocalDescription(await pc.createOffer());
      return pc.localDescription.sdp; })()`);
      const clientUfrag = answerUfrag(offer);
      const mid = /^a=mid:(\S+)/m.exec(offer)?.[1] ?? '0';
      const fingerprint = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').toUpperCase()).join(':');
      const answer = [
        'v=0',
        'o=- 1 2 IN IP4 127.0.0.1',
        's=-',
        't=0 0',
        `a=group:BUNDLE ${mid}`,
        'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
        'c=IN IP4 0.0.0.0',
        `a=ice-ufrag:${serverUfrag}`,
        `a=ice-pwd:${serverPassword}`,
        `a=fingerprint:sha-256 ${fingerprint}`,
        'a=setup:active',
        `a=mid:${mid}`,
        'a=sctp-port:5000',
        `a=candidate:1 1 udp 2130706431 127.0.0.1 ${sock.address().port} typ host`,
        '',
      ].join('\r\n');
      const first = new Promise<Buffer>((resolve) => sock.once('message', (d: Buffer) => resolve(d)));
      await page.evaluate(`window.pc.setRemoteDescription({ type: 'answer', sdp: ${JSON.stringify(answer)} })`);
      const bytes = await first;
      const message = parseStunMessage(bytes);
      assert.equal(message.type, 0x0001);
      assert.deepEqual(iceUsername(message), { serverUfrag, clientUfrag });
      assert.ok(verifyIntegrity(bytes, message, serverPassword));
      if (process.env['FEEDCAST_WRITE_FIXTURES'] !== undefined) {
        const version = browser.version();
        writeFileSync(
          new URL('../fixtures/stun-binding-request-chromium.json', import.meta.url),
          JSON.stringify({ chromium: version, serverUfrag, serverPassword, clientUfrag, hex: bytes.toString('hex') }, null, 2) +
            '\n',
        );
      }
    },
  );
});

describe('WebRTC host addresses', () => {
  const offer = [
    'v=0',
    'o=- 1 1 IN IP4 0.0.0.0',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'm=video 9 UDP/TLS/RTP/SAVPF 96',
    'c=IN IP4 0.0.0.0',
    'a=ice-ufrag:abcd',
    'a=ice-pwd:abcdefghijklmnopqrstuvwx',
    `a=fingerprint:sha-256 ${Array.from({ length: 32 }, () => 'AB').join(':')}`,
    'a=setup:actpass',
    'a=mid:0',
    'a=recvonly',
    'a=rtcp-mux',
    'a=rtpmap:96 H264/90000',
    'a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    '',
  ].join('\r\n');

  for (const singlePort of [false, true]) {
    test(
      `with two announced addresses each one answers ICE checks (${singlePort ? 'single UDP port' : 'per-peer UDP'})`,
      { timeout: 300_000 },
      async (t) => {
        const { server } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n', {
          hostAddresses: ['127.0.0.1', '127.0.0.2'],
          ...(singlePort ? { udpMuxPort: 0 } : {}),
        });
        const res = await fetch(server.url('/feed1/whep'), {
          method: 'POST',
          headers: { 'Content-Type': 'application/sdp' },
          body: offer,
        });
        const answer = await res.text();
        assert.equal(res.status, 201, answer);
        const candidates = answer
          .split('\r\n')
          .filter((l) => l.startsWith('a=candidate:'))
          .map((l) => l.split(' '))
          .map((p) => ({ address: p[4] ?? '', port: Number(p[5]) }));
        assert.deepEqual(
          candidates.map((c) => c.address),
          ['127.0.0.1', '127.0.0.2'],
          'one host candidate per announced address',
        );
        const serverUfrag = answerUfrag(answer);
        const serverPassword = /^a=ice-pwd:(\S+)/m.exec(answer)?.[1] ?? '';
        for (const c of candidates) {
          const client = createSocket('udp4');
          t.after(() => client.close());
          const request = new Message(methods.BINDING, classes.REQUEST)
            .setAttribute('USERNAME', `${serverUfrag}:abcd`)
            .setAttribute('PRIORITY', 1853824767)
            .setAttribute('ICE-CONTROLLING', 1n)
            .addMessageIntegrity(Buffer.from(serverPassword));
          request.addFingerprint();
          // Sent again every 500 ms until answered, as ICE retransmits (one datagram and a 5 s
          // deadline failed on a loaded machine); the test's own timeout bounds the wait.
          const reply = new Promise<{ address: string; port: number }>((resolve) => {
            client.once('message', (_d, rinfo) => resolve({ address: rinfo.address, port: rinfo.port }));
          });
          const resend = setInterval(() => {
            try {
              client.send(request.bytes, c.port, c.address);
            } catch {
              clearInterval(resend); // the socket closed with the test
            }
          }, 500);
          client.send(request.bytes, c.port, c.address);
          const from = await reply.finally(() => clearInterval(resend));
          assert.equal(from.port, c.port, `${c.address}:${c.port} answers a check`);
          t.diagnostic(`check to ${c.address}:${c.port} answered from ${from.address}:${from.port}`);
          // One socket per address behind the mux; werift's sockets on the wildcard answer from the kernel's choice.
          if (singlePort) assert.equal(from.address, c.address, 'the answer leaves from the address that was asked');
        }
        const del = await fetch(server.url(res.headers.get('location') ?? ''), { method: 'DELETE' });
        assert.equal(del.status, 200);
      },
    );
  }
});
