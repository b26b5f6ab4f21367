// Issue 26: RTSP readers over UDP cost 2-5.5x HTTP-FLV readers, one dgram send() per RTP packet
// from Node. A frame's packets now go to each reader in one native sendmmsg(); players must still decode every frame, and the sender reports must still count each reader's own packets.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseRtcp } from '../../src/formats/rtp/rtcp.js';
import { parseRtpPacket } from '../../src/formats/rtp/rtp-packet.js';
import { nativeUdpSend, nativeUdpSendStatus } from '../../src/protocols/rtsp/native-udp-send.js';
import { decodeRtsp, RawRtspClient, startRtsp, udpClientPorts } from '../helpers/rtsp-tools.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || (nativeUdpSend === undefined ? `RTP/UDP module: ${nativeUdpSendStatus}` : false);

/** The largest `udpNativeSends` counter of the RTSP/RTP sessions open now. */
function nativeSendsNow(server: Awaited<ReturnType<typeof startTestServer>>): number {
  const counts = server.ctx.connections
    .list()
    .filter((c) => c.protocol === 'RTSP/RTP')
    .map((c) => c.counters['udpNativeSends'] ?? 0);
  return Math.max(0, ...counts);
}

describe('RTSP over UDP through the native send path (issue 26)', { skip }, () => {
  test('ffmpeg -rtsp_transport udp decodes every frame sent with sendmmsg()', async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const { url } = await startRtsp(t, server);
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
    let nativeSends = 0;
    const sampler = setInterval(() => (nativeSends = Math.max(nativeSends, nativeSendsNow(server))), 50);
    const decoded = await decodeRtsp(url('/feed1'), 'udp', 3);
    clearInterval(sampler);
    assert.equal(decoded.errors, '', 'no decode errors');
    assert.ok(decoded.videoFrames >= 60, `decoded ${decoded.videoFrames} video frames in 3 s`);
    assert.ok(decoded.audioFrames >= 100, `decoded ${decoded.audioFrames} audio frames in 3 s`);
    assert.ok(nativeSends >= 50, `frames sent with sendmmsg: ${nativeSends}`);
  });

  test("sender reports arrive on the RTCP port and count this reader's own packets", async (t) => {
    const server = await startTestServer(t, '<Feed feed1.ffm>\n</Feed>\n');
    const { port, url } = await startRtsp(t, server);
    const pub = publish(server.url('/feed1.ffm'), { codecs: 'h264-aac', seconds: 60 });
    t.after(() => pub.stop());
    await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === 2);
    // A first reader, so the feed's shared sender has made packets this one never gets.
    const other = new RawRtspClient(port);
    t.after(() => other.close());
    const first = await udpClientPorts(t);
    const otherSetup = await other.request('SETUP', url('/feed1/streamid=0'), {
      Transport: `RTP/AVP;unicast;client_port=${first.rtp.address().port}-${first.rtcp.address().port}`,
    });
    const otherSession = otherSetup.headers.get('session')?.split(';')[0] ?? '';
    assert.equal((await other.request('PLAY', url('/feed1'), { Session: otherSession })).status, 200);
    let early = 0;
    first.rtp.on('message', () => early++);
    await waitFor('the first reader to get 100 packets', () => early >= 100);

    const { rtp, rtcp } = await udpClientPorts(t);
    let received = 0;
    const reports: { packetCount: number; receivedThen: number }[] = [];
    rtp.on('message', (msg) => {
      if (parseRtpPacket(msg).payloadType === 96) received++;
    });
    rtcp.on('message', (msg) => {
      for (const p of parseRtcp(msg))
        if (p.type === 'sr') reports.push({ packetCount: p.sender.packetCount, receivedThen: received });
    });
    const c = new RawRtspClient(port);
    t.after(() => c.close());
    const setup = await c.request('SETUP', url('/feed1/streamid=0'), {
      Transport: `RTP/AVP;unicast;client_port=${rtp.address().port}-${rtcp.address().port}`,
    });
    assert.equal(setup.status, 200);
    const session = setup.headers.get('session')?.split(';')[0] ?? '';
    assert.equal((await c.request('PLAY', url('/feed1'), { Session: session })).status, 200);
    // The first report goes out at PLAY (0 packets); the next one 5 s later counts what was sent since.
    await waitFor(
      'a second sender report',
      async () => {
        if (reports.length >= 2) return true;
        assert.equal((await c.request('GET_PARAMETER', url('/feed1'), { Session: session })).status, 200);
        return false;
      },
      15_000,
    );
    const sr = reports[1];
    assert.ok(sr !== undefined);
    assert.ok(nativeSendsNow(server) > 0, 'sent through the native module');
    // Loopback loses nothing: the report counts what this reader got, give or take the packets in flight.
    assert.ok(
      Math.abs(sr.packetCount - sr.receivedThen) <= 20,
      `sender report counts ${sr.packetCount} packets; this reader had received ${sr.receivedThen}`,
    );
  });
});
