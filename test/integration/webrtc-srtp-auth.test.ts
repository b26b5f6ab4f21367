// Issue 22 (security): werift 0.22 decrypts inbound SRTP/SRTCP without checking the tag or the
// index, so a WHIP feed took tampered or replayed RTP and a WHEP viewer's replayed NACKs were obeyed.
// Real werift peers talk to the server through a UDP proxy on 127.0.0.1 that flips bits, replays
// and injects garbage; for each SRTP profile (forced on the client's DTLS) the server must drop
// exactly what was touched, count it (status, /api/v1/connections, /metrics), log once, keep the
// feed decodable by ffmpeg, and stay up.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { describe, test, type TestContext } from 'node:test';
import { GenericNack, MediaStreamTrack, RtcpTransportLayerFeedback, type RTCPeerConnection } from 'werift';
import { decodeFrames, FFMPEG, lavfiArgs, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import type { LogLine } from '../helpers/recording-logger.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { waitFor } from '../helpers/test-server.js';
import { livePublisher, webrtcServer } from '../helpers/webrtc-server.js';
import { H264_BASELINE, loopbackPeer } from '../helpers/werift-peer.js';
import type { WebRtcRoute, WebRtcSessionStatus } from '../../src/protocols/webrtc/route.js';

const skip = skipWithoutFfmpeg();

const PROFILES = [
  { name: 'AES_CM_128_HMAC_SHA1_80', id: 0x0001, tagBytes: 10 },
  { name: 'AEAD_AES_128_GCM', id: 0x0007, tagBytes: 16 },
] as const;
type Profile = (typeof PROFILES)[number];

const isMedia = (p: Buffer): boolean => (p[0] ?? 0) > 127 && (p[0] ?? 0) < 192;
const isRtcp = (p: Buffer): boolean => isMedia(p) && (p[1] ?? 0) >= 192 && (p[1] ?? 0) <= 208;

/**
 * A UDP relay between the client's and the server's port on 127.0.0.1, each of which sees only the
 * relay: `fromClient` sees each datagram the client sends and returns what to forward (none, a
 * changed copy, copies ...).
 */
async function udpProxy(
  t: TestContext,
  clientPort: number,
  serverPort: number,
  fromClient: (packet: Buffer) => Buffer[],
  port: number,
): Promise<number> {
  const socket = createSocket('udp4');
  t.after(() => socket.close());
  await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
  socket.on('message', (packet, from) => {
    if (from.port === serverPort) socket.send(packet, clientPort, '127.0.0.1');
    else if (from.port === clientPort) for (const out of fromClient(packet)) socket.send(out, serverPort, '127.0.0.1');
  });
  return socket.address().port;
}

/**
 * The WHIP/WHEP exchange with the client's DTLS limited to `profile`, and each side's 127.0.0.1
 * host candidate replaced by the proxy's port (the client's other candidates left out).
 */
async function negotiateThroughProxy(
  t: TestContext,
  pc: RTCPeerConnection,
  url: string,
  profile: Profile,
  fromClient: (packet: Buffer) => Buffer[],
): Promise<void> {
  await pc.setLocalDescription(await pc.createOffer());
  // werift offers GCM first and takes the client's order as DTLS server; one profile makes it certain.
  for (const transport of pc.dtlsTransports) (transport as unknown as { srtpProfiles: number[] }).srtpProfiles = [profile.id];
  const offer = pc.localDescription?.sdp ?? '';
  const clientPort = Number(/ 127\.0\.0\.1 (\d+) typ host/.exec(offer)?.[1]);
  assert.ok(clientPort > 0, offer);
  const proxy = createSocket('udp4');
  await new Promise<void>((resolve) => proxy.bind(0, '127.0.0.1', resolve));
  const proxyPort = proxy.address().port;
  proxy.close();
  const viaProxy = offer
    .split(/\r?\n/)
    .filter((line) => !line.startsWith('a=candidate:') || line.includes(` 127.0.0.1 ${clientPort} typ host`))
    .join('\r\n')
    .replace(` 127.0.0.1 ${clientPort} typ host`, ` 127.0.0.1 ${proxyPort} typ host`);
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: viaProxy });
  const answer = await res.text();
  assert.equal(res.status, 201, answer);
  const serverPort = Number(/ 127\.0\.0\.1 (\d+) typ host/.exec(answer)?.[1]);
  assert.ok(serverPort > 0, answer);
  const bound = await udpProxy(t, clientPort, serverPort, fromClient, proxyPort);
  assert.equal(bound, proxyPort);
  await pc.setRemoteDescription({
    type: 'answer',
    sdp: answer.replaceAll(` 127.0.0.1 ${serverPort} typ host`, ` 127.0.0.1 ${proxyPort} typ host`),
  });
}

function sessionOf(webrtc: WebRtcRoute, kind: 'whip' | 'whep'): WebRtcSessionStatus {
  const s = webrtc.status().find((x) => x.kind === kind);
  assert.ok(s !== undefined, `a ${kind} session`);
  return s;
}

function flip(packet: Buffer, at: number, mask = 0x01): Buffer {
  const out = Buffer.from(packet);
  out[at] = (out[at] as number) ^ mask;
  return out;
}

describe('inbound SRTP/SRTCP is verified before werift reads it', { skip }, () => {
  for (const profile of PROFILES) {
    test(
      `WHIP (${profile.name}): tampered and replayed RTP, tampered RTCP and garbage are dropped and counted; the feed decodes`,
      { timeout: 120_000 },
      async (t) => {
        const lines: LogLine[] = [];
        const { server, webrtc } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n', {}, { log: recordingLogger(lines) });
        const pc = loopbackPeer([H264_BASELINE], []);
        t.after(() => pc.close());
        const track = new MediaStreamTrack({ kind: 'video' });
        pc.addTransceiver(track, { direction: 'sendonly' });

        // Every 25th RTP packet gets a payload bit flipped, every 3rd RTCP packet a bit of its body; after
        // each 40th RTP packet the one before it comes again (a replay), and a 5-byte runt.
        let tampering = true;
        const sent = { rtp: 0, rtcp: 0, flippedRtp: 0, flippedRtcp: 0, replayed: 0, runts: 0 };
        let previous: Buffer | undefined;
        await negotiateThroughProxy(t, pc, server.url('/feed1/whip'), profile, (p) => {
          if (!isMedia(p) || !tampering) return [p];
          if (isRtcp(p)) {
            sent.rtcp++;
            if (sent.rtcp % 3 !== 0) return [p];
            sent.flippedRtcp++;
            return [flip(p, 12)];
          }
          sent.rtp++;
          const out: Buffer[] = [];
          if (sent.rtp % 25 === 0) {
            sent.flippedRtp++;
            out.push(flip(p, p.length - profile.tagBytes - 5));
          } else out.push(p);
          if (sent.rtp % 40 === 0 && previous !== undefined) {
            sent.replayed++;
            out.push(previous);
            sent.runts++;
            out.push(Buffer.from([0x80, 0x60, 0, 1, 0]));
          }
          previous = p;
          return out;
        });
        await waitFor('the WHIP peer to connect', () => pc.connectionState === 'connected', 30_000);
        // What werift on the server hands on must be what the publisher sent, each packet once.
        const sentPayloads = new Set<string>();
        const delivered = { foreign: 0, duplicate: 0, total: 0 };
        const seqs = new Set<number>();
        const serverPc = [...(webrtc as unknown as { sessions: Map<string, { pc: RTCPeerConnection }> }).sessions.values()][0]
          ?.pc;
        assert.ok(serverPc !== undefined);
        serverPc.dtlsTransports[0]?.onRtp.subscribe((rtp) => {
          delivered.total++;
          if (!sentPayloads.has(rtp.payload.toString('base64'))) delivered.foreign++;
          if (seqs.has(rtp.header.sequenceNumber)) delivered.duplicate++;
          seqs.add(rtp.header.sequenceNumber);
        });
        const ffmpeg = rtpFromFfmpeg(t, (packet) => {
          sentPayloads.add(packet.subarray(12).toString('base64'));
          track.writeRtp(packet);
        });
        await ffmpeg.started;

        await waitFor(
          'some of each kind of tampering',
          () => sent.flippedRtp >= 8 && sent.flippedRtcp >= 2 && sent.replayed >= 4,
          60_000,
        );
        tampering = false;
        const expected = {
          srtp: { auth: sent.flippedRtp, replay: sent.replayed, malformed: sent.runts },
          srtcp: { auth: sent.flippedRtcp },
        };
        await waitFor(
          'the server to have seen every touched packet',
          () => {
            const r = sessionOf(webrtc, 'whip').srtpRejected;
            return (
              r !== null &&
              r.srtp.auth >= expected.srtp.auth &&
              r.srtp.replay >= expected.srtp.replay &&
              r.srtcp.auth >= expected.srtcp.auth
            );
          },
          15_000,
        );
        const status = sessionOf(webrtc, 'whip');
        assert.equal(status.srtpProfile, profile.name);
        assert.deepEqual(status.srtpRejected, {
          srtp: { auth: expected.srtp.auth, replay: expected.srtp.replay, 'too-old': 0, malformed: expected.srtp.malformed },
          srtcp: { auth: expected.srtcp.auth, replay: 0, 'too-old': 0, malformed: 0 },
        });
        assert.ok(status.srtpVerified > 100, `${status.srtpVerified} packets verified`);
        assert.ok(delivered.total > 100, `${delivered.total} RTP packets delivered by werift`);
        assert.deepEqual(
          { foreign: delivered.foreign, duplicate: delivered.duplicate },
          { foreign: 0, duplicate: 0 },
          'werift delivered a changed or replayed packet',
        );

        // The feed is whole: ffmpeg decodes it (the publisher resent what was dropped, on NACK).
        const decoded = await decodeFrames(server.url('/feed1.ts'), 2);
        assert.ok(decoded.videoFrames >= 40, `${decoded.videoFrames} frames decoded from /feed1.ts in 2 s: ${decoded.errors}`);

        // Counted in /api/v1/connections and /metrics; logged once for the session.
        const api = (await (await fetch(server.url('/api/v1/connections'))).json()) as {
          connections: { protocol: string; webrtc?: { srtpRejected: number; srtcpRejected: number } }[];
        };
        const conn = api.connections.find((c) => c.protocol === 'WebRTC');
        const rtpRejected = expected.srtp.auth + expected.srtp.replay + expected.srtp.malformed;
        assert.deepEqual(conn?.webrtc, { srtpRejected: rtpRejected, srtcpRejected: expected.srtcp.auth });
        const metrics = await (await fetch(server.url('/metrics'))).text();
        assert.match(
          metrics,
          new RegExp(`feedcast_webrtc_inbound_rejected_total\\{kind="srtp",reason="auth"\\} ${expected.srtp.auth}\\b`),
        );
        assert.match(
          metrics,
          new RegExp(`feedcast_webrtc_inbound_rejected_total\\{kind="srtcp",reason="auth"\\} ${expected.srtcp.auth}\\b`),
        );
        const warned = lines.filter((l) => l.level === 'warn' && /dropped an inbound/.test(l.msg));
        assert.equal(warned.length, 1, JSON.stringify(warned));
        assert.ok(!lines.some((l) => l.level === 'error'), JSON.stringify(lines.filter((l) => l.level === 'error')));
      },
    );

    test(
      `WHEP (${profile.name}): a viewer's replayed or forged NACK is ignored; only the genuine one is answered`,
      { timeout: 120_000 },
      async (t) => {
        const { server, webrtc } = await webrtcServer(t, '<Feed feed1.ffm>\n</Feed>\n');
        await livePublisher(t, server);
        const pc = loopbackPeer([H264_BASELINE], []);
        t.after(() => pc.close());
        pc.addTransceiver('video', { direction: 'recvonly' });
        let lastRtp: { seq: number; ssrc: number } | undefined;
        pc.onTrack.subscribe((track) => {
          track.onReceiveRtp.subscribe((rtp) => {
            lastRtp = { seq: rtp.header.sequenceNumber, ssrc: rtp.header.ssrc };
          });
        });
        // The viewer's first NACK (RTPFB, PT 205) goes on, then 5 copies of it (replays), then 5 with
        // bit 14 of the SRTCP index flipped (an index never seen: forged).
        let nackSeen = false;
        const indexAt = (p: Buffer): number => (profile.id === 0x0007 ? p.length - 4 : p.length - profile.tagBytes - 4);
        await negotiateThroughProxy(t, pc, server.url('/feed1/whep'), profile, (p) => {
          if (nackSeen || !isRtcp(p) || p[1] !== 205) return [p];
          nackSeen = true;
          const copies = [p, p, p, p, p];
          const forged = copies.map((c, i) => flip(c, indexAt(c) + 2, 0x40 >> i));
          return [p, ...copies, ...forged];
        });
        await waitFor('video packets at the viewer', () => lastRtp !== undefined, 30_000);
        const dtls = pc.dtlsTransports[0];
        assert.ok(dtls !== undefined && lastRtp !== undefined);
        const before = sessionOf(webrtc, 'whep').retransmits;
        await dtls.sendRtcp([
          new RtcpTransportLayerFeedback({
            feedback: new GenericNack({ senderSsrc: 1234, mediaSourceSsrc: lastRtp.ssrc, lost: [lastRtp.seq] }),
          }),
        ]);
        await waitFor(
          'the replays and forgeries to be dropped',
          () => {
            const r = sessionOf(webrtc, 'whep').srtpRejected;
            return r !== null && r.srtcp.replay + r.srtcp.auth >= 10;
          },
          15_000,
        );
        const status = sessionOf(webrtc, 'whep');
        assert.equal(status.srtpProfile, profile.name);
        assert.equal(status.srtpRejected?.srtcp.replay, 5);
        assert.equal(status.srtpRejected?.srtcp.auth, 5);
        assert.equal(status.retransmits - before, 1, 'the NACKed packet went again once, not once per copy');
        assert.ok(status.srtpVerified > 0);
      },
    );
  }
});

/** ffmpeg's H.264 RTP to a loopback socket, each packet handed to `onPacket`, until the test ends. */
function rtpFromFfmpeg(t: TestContext, onPacket: (packet: Buffer) => void): { started: Promise<void> } {
  const udp = createSocket('udp4');
  t.after(() => udp.close());
  const started = new Promise<void>((resolve) => {
    udp.bind(0, '127.0.0.1', () => {
      const args = [
        '-hide_banner',
        '-loglevel',
        'error',
        '-nostdin',
        '-re',
        ...lavfiArgs('h264-only', { size: '640x360' }),
        '-bsf:v',
        'dump_extra',
        '-f',
        'rtp',
        `rtp://127.0.0.1:${udp.address().port}?pkt_size=1200`,
      ];
      const child = spawn(FFMPEG, args, { stdio: 'ignore' });
      t.after(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('exit', r));
        }
      });
      resolve();
    });
  });
  udp.on('message', onPacket);
  return { started };
}
