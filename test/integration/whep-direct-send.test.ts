// The WHEP direct send path (src/protocols/webrtc/srtp-sender.ts, issue 22 "Scale") with a werift
// viewer of the built-in demo: a NACK is answered from the viewer's ring with the same packet, a
// NACK for a packet never sent gets nothing, and werift's RTCP loop still sends sender reports
// carrying what the direct path sent. (werift 0.22 does not check SRTP tags on what it receives:
// that the packets authenticate is shown by Chromium in webrtc.test.ts, which drops any that do
// not, and by srtp-protect.test.ts.)

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import {
  GenericNack,
  RtcpSrPacket,
  RtcpTransportLayerFeedback,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  type RtcpPacket,
} from 'werift';
import { withoutFallbackStun } from '../../src/protocols/webrtc/peer.js';
import { waitFor } from '../helpers/test-server.js';
import { webrtcServer } from '../helpers/webrtc-server.js';

const H264 = new RTCRtpCodecParameters({
  mimeType: 'video/H264',
  clockRate: 90_000,
  parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
});

function loopbackPeer(t: TestContext): RTCPeerConnection {
  const pc = new RTCPeerConnection({
    codecs: { video: [H264], audio: [] },
    iceServers: [],
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
  });
  withoutFallbackStun(pc);
  t.after(() => pc.close());
  return pc;
}

describe('WHEP direct send path', () => {
  test('a NACK gets the same packet again, an unknown one nothing; sender reports go on', { timeout: 90_000 }, async (t) => {
    const { server, webrtc } = await webrtcServer(t, '', {}, { demoFeeds: ['demo'] });
    const pc = loopbackPeer(t);
    pc.addTransceiver('video', { direction: 'recvonly' });
    /** How often each sequence number reached the track, and the SSRC. */
    const seen = new Map<number, number>();
    let ssrc = 0;
    let packets = 0;
    let lastSeq = 0;
    pc.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        ssrc = rtp.header.ssrc;
        packets++;
        lastSeq = rtp.header.sequenceNumber;
        seen.set(rtp.header.sequenceNumber, (seen.get(rtp.header.sequenceNumber) ?? 0) + 1);
      });
    });
    const reports: RtcpSrPacket[] = [];
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(server.url('/demo/whep'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: pc.localDescription?.sdp ?? '',
    });
    const answer = await res.text();
    assert.equal(res.status, 201, answer);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    await waitFor('DTLS up', () => pc.dtlsTransports[0]?.state === 'connected', 30_000);
    const dtls = pc.dtlsTransports[0];
    assert.ok(dtls !== undefined);
    dtls.onRtcp.subscribe((p: RtcpPacket) => {
      if (p instanceof RtcpSrPacket && p.ssrc === ssrc) reports.push(p);
    });
    await waitFor('200 packets', () => packets >= 200, 60_000);
    assert.match(
      webrtc.status()[0]?.sendPath ?? '',
      /^srtp (AEAD_AES_128_GCM|AES_CM_128_HMAC_SHA1_80) by (native|node:crypto) via /,
    );

    // A packet received a moment ago, still in the ring of 128: asked for again, it comes again, and opens.
    const asked = (lastSeq - 20) & 0xffff;
    assert.equal(seen.get(asked), 1, `packet ${asked} received once`);
    const nack = (lost: number[]): Promise<number | undefined> =>
      dtls.sendRtcp([
        new RtcpTransportLayerFeedback({ feedback: new GenericNack({ senderSsrc: 1, mediaSourceSsrc: ssrc, lost }) }),
      ]);
    // (werift's receiver NACKs any gap it sees too, so the count is compared, not fixed.)
    const retransmitted = webrtc.status()[0]?.retransmits ?? 0;
    await nack([asked]);
    await waitFor(`packet ${asked} again`, () => seen.get(asked) === 2, 30_000);
    assert.ok((webrtc.status()[0]?.retransmits ?? 0) > retransmitted);

    // One the viewer never had (far behind the ring): nothing is sent.
    const never = (lastSeq - 5000) & 0xffff;
    assert.equal(seen.has(never), false);
    await nack([never]);
    await waitFor('a sender report', () => reports.length > 0, 30_000);
    const before = packets;
    await waitFor('more packets', () => packets > before + 50, 30_000);
    assert.equal(seen.has(never), false);

    // werift's RTCP loop reports what the direct path sent: packets counted, NTP time of this day.
    const sr = reports[reports.length - 1] as RtcpSrPacket;
    assert.ok(sr.senderInfo.packetCount > 0, `sender report counts ${sr.senderInfo.packetCount} packets`);
    const ntpSeconds = Number(BigInt(sr.senderInfo.ntpTimestamp) >> 32n) - 2_208_988_800;
    assert.ok(Math.abs(ntpSeconds - Date.now() / 1000) < 3600, `sender report NTP time ${ntpSeconds}`);
  });
});
