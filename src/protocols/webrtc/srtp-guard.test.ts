// The werift hook of the inbound SRTP check (srtp-guard.ts): it installs on the werift this repo
// ships (a werift upgrade that moves ICE's data event or the DTLS transport's fields fails here),
// says why when werift's shape is not the expected one, passes DTLS untouched, hands werift only
// what verifies, and drops everything (reporting once) when the keys cannot be had.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { RTCPeerConnection } from 'werift';
import { RtpHeader, SrtcpSession, SrtpSession } from 'werift';
import { createPeer } from './peer.js';
import { DEFAULT_ICE_OPTIONS } from './ice.js';
import { SRTP_AES128_CM_HMAC_SHA1_80 } from './srtp-protect.js';
import { SrtpGuard, type InboundRejection, type SrtpPacketKind } from './srtp-guard.js';

test("installs on this werift's peer after setLocalDescription (the hook is where srtp-guard.ts looks)", async (t) => {
  const pc = createPeer(
    DEFAULT_ICE_OPTIONS,
    {
      video: {
        mimeType: 'video/H264',
        clockRate: 90_000,
        payloadType: 96,
        parameters: 'packetization-mode=1',
        channels: undefined,
      },
      audio: undefined,
    },
    { sendPlayoutDelay: false, receiving: true },
  );
  t.after(() => pc.close());
  pc.addTransceiver('video', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  const guard = SrtpGuard.install(pc, { rejected: () => undefined, broken: () => undefined });
  assert.ok(guard instanceof SrtpGuard, typeof guard === 'string' ? guard : '');
  assert.equal(guard.bypassed(), 0);
});

/** A stand-in for werift's DTLS transport and ICE connection, with what srtp-guard.ts reads. */
function fakePeer(dtls: unknown): {
  pc: RTCPeerConnection;
  delivered: Buffer[];
  transport: { srtp: object | undefined; dtls: unknown };
} {
  const delivered: Buffer[] = [];
  const onData = {
    execute: (data: Buffer): void => {
      delivered.push(data);
    },
  };
  const transport = { srtp: undefined as object | undefined, packetsReceived: 0, dtls, iceTransport: { connection: { onData } } };
  const pc = { dtlsTransports: [transport] } as unknown as RTCPeerConnection;
  return { pc, delivered, transport };
}

function execute(pc: RTCPeerConnection, data: Buffer): void {
  const t = pc.dtlsTransports[0] as unknown as { iceTransport: { connection: { onData: { execute: (d: Buffer) => void } } } };
  t.iceTransport.connection.onData.execute(data);
}

test('says why when werift has no DTLS transport or no ICE data event to filter', () => {
  assert.match(why(SrtpGuard.install({ dtlsTransports: [] } as unknown as RTCPeerConnection, noEvents())), /no DTLS transport/);
  const moved = { dtlsTransports: [{ srtp: undefined, packetsReceived: 0, iceTransport: { connection: {} } }] };
  assert.match(why(SrtpGuard.install(moved as unknown as RTCPeerConnection, noEvents())), /onData\.execute/);
});

/** The reason install() gave, or '' when it installed. */
function why(result: SrtpGuard | string): string {
  return typeof result === 'string' ? result : '';
}

function noEvents(): { rejected: () => void; broken: () => void } {
  return { rejected: () => undefined, broken: () => undefined };
}

test('DTLS passes; SRTP and SRTCP pass only when they verify; forged ones are reported and dropped', () => {
  const remote = { key: randomBytes(16), salt: randomBytes(14) };
  const dtls = {
    srtp: { srtpProfile: SRTP_AES128_CM_HMAC_SHA1_80 },
    extractSessionKeys: () => ({
      localKey: randomBytes(16),
      localSalt: randomBytes(14),
      remoteKey: remote.key,
      remoteSalt: remote.salt,
    }),
  };
  const { pc, delivered, transport } = fakePeer(dtls);
  const rejected: [SrtpPacketKind, InboundRejection][] = [];
  const guard = SrtpGuard.install(pc, {
    rejected: (kind, reason) => rejected.push([kind, reason]),
    broken: () => assert.fail('broken'),
  });
  assert.ok(guard instanceof SrtpGuard);

  const handshake = Buffer.from([22, 0xfe, 0xfd, 0, 0]);
  execute(pc, handshake);
  const early = Buffer.alloc(40, 0x80);
  execute(pc, early);
  assert.deepEqual(delivered, [handshake], 'DTLS passes; media before the SRTP session does not');
  assert.equal(guard.unchecked, 1);

  // The peer's side: what it encrypts with its local keys, we check with our remote ones.
  const config = {
    keys: {
      localMasterKey: remote.key,
      localMasterSalt: remote.salt,
      remoteMasterKey: randomBytes(16),
      remoteMasterSalt: randomBytes(14),
    },
    profile: SRTP_AES128_CM_HMAC_SHA1_80,
  };
  transport.srtp = {};
  const rtp = new SrtpSession(config).encrypt(randomBytes(50), new RtpHeader({ payloadType: 96, sequenceNumber: 7, ssrc: 42 }));
  const rtcp = new SrtcpSession(config).encrypt(Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 42]));
  const forged = Buffer.from(rtp);
  forged[20] = (forged[20] as number) ^ 1;
  execute(pc, forged);
  execute(pc, rtp);
  execute(pc, rtp);
  execute(pc, rtcp);
  execute(pc, Buffer.from([0x80, 96, 0]));
  assert.deepEqual(delivered.slice(1), [rtp, rtcp]);
  assert.deepEqual(rejected, [
    ['srtp', 'auth'],
    ['srtp', 'replay'],
    ['srtp', 'malformed'],
  ]);
  assert.equal(guard.verified, 2);
  assert.equal(guard.profileName, 'AES_CM_128_HMAC_SHA1_80');
});

test('an SRTP session without a usable key exporter: reported once, and no media reaches werift', () => {
  const { pc, delivered, transport } = fakePeer({ srtp: { srtpProfile: SRTP_AES128_CM_HMAC_SHA1_80 } });
  const broken: string[] = [];
  const guard = SrtpGuard.install(pc, { rejected: () => assert.fail('rejected'), broken: (d) => broken.push(d) });
  assert.ok(guard instanceof SrtpGuard);
  transport.srtp = {};
  for (let i = 0; i < 3; i++) execute(pc, Buffer.alloc(40, 0x80));
  assert.deepEqual(delivered, []);
  assert.equal(broken.length, 1);
  assert.match(broken[0] ?? '', /no key exporter/);
  assert.equal(guard.unchecked, 3);
});
