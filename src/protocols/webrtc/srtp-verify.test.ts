// Inbound SRTP/SRTCP verification (srtp-verify.ts): published test vectors (libsrtp's
// AES_CM_128_HMAC_SHA1_80 SRTP/SRTCP vectors, RFC 7714 16.1.1 and 17.1 for AEAD_AES_128_GCM), and
// packets protected by our own srtp-protect and by werift's encrypt, for both profiles: good ones
// pass, one flipped bit in the header, payload or tag fails, a replayed index fails, an index
// behind the window fails, and a truncated packet throws MalformedInputError.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  PictureLossIndication,
  RtcpPacketConverter,
  RtcpPayloadSpecificFeedback,
  RtpHeader,
  SrtcpSession,
  SrtpSession,
} from 'werift';
import { MalformedInputError } from '../../errors.js';
import {
  deriveSrtcpKeys,
  deriveSrtpKeys,
  SRTP_AEAD_AES_128_GCM,
  SRTP_AES128_CM_HMAC_SHA1_80,
  SrtpProtector,
  srtpProfileSizes,
  type SrtpSessionKeys,
} from './srtp-protect.js';
import { estimateIndex, ReplayWindow, SRTP_REPLAY_WINDOW, SrtpVerifier } from './srtp-verify.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function flipped(buf: Buffer, at: number): Buffer {
  const out = Buffer.from(buf);
  out[at] = (out[at] as number) ^ 0x01;
  return out;
}

// libsrtp's AES_CM_128_HMAC_SHA1_80 vectors (also in rtpengine's t/aes-crypt.c): master key and
// salt, an SRTP packet (ROC 0, SEQ 0x1234, SSRC 0xcafebabe, 16 bytes 0xab) and an SRTCP sender
// report (index 1, E set).
const CM_MASTER_KEY = hex('e1f97a0d3e018be0d64fa32c06de4139');
const CM_MASTER_SALT = hex('0ec675ad498afeebb6960b3aabe6');
const CM_SRTP = hex('800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb');
const CM_SRTCP = hex('81c8000bcafebabe 71280 35be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798');

test('libsrtp vectors (AES_CM_128_HMAC_SHA1_80): the SRTP and SRTCP packets pass; a flipped bit anywhere fails', () => {
  for (const [name, packet, check] of [
    ['SRTP', CM_SRTP, (v: SrtpVerifier, p: Buffer) => v.verifyRtp(p)],
    ['SRTCP', CM_SRTCP, (v: SrtpVerifier, p: Buffer) => v.verifyRtcp(p)],
  ] as const) {
    assert.equal(check(SrtpVerifier.fromMaster(SRTP_AES128_CM_HMAC_SHA1_80, CM_MASTER_KEY, CM_MASTER_SALT), packet), 'ok', name);
    for (let at = 0; at < packet.length; at++) {
      const v = SrtpVerifier.fromMaster(SRTP_AES128_CM_HMAC_SHA1_80, CM_MASTER_KEY, CM_MASTER_SALT);
      assert.equal(check(v, flipped(packet, at)), 'auth', `${name}: bit 0 of byte ${at} flipped`);
    }
  }
});

// RFC 7714 16.1.1 (SRTP) and 17.1 (SRTCP), AEAD_AES_128_GCM: the session key and salt are given.
const GCM_KEYS: SrtpSessionKeys = {
  profile: SRTP_AEAD_AES_128_GCM,
  encryptionKey: hex('000102030405060708090a0b0c0d0e0f'),
  salt: hex('517569642070726f2071756f'),
  authKey: undefined,
};
/** SEQ 0xf17b, ROC 0, SSRC 0x5501a0b2; 38 bytes of payload, then the 16-byte tag. */
const GCM_SRTP = hex(`8040f17b8041f8d35501a0b2 f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833
  899d7f27beb16a9152cf765ee4390cce`);
/** A sender report of SSRC 0x4d617273, encrypted (E set), SRTCP index 0x5d4: tag, then E+index. */
const GCM_SRTCP = hex(`81c8000d4d617273 63e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275b
  c84aa45896cf4d2fc5abf87245d9eade 800005d4`);

test('RFC 7714 vectors (AEAD_AES_128_GCM): the SRTP and SRTCP packets pass; a flipped bit anywhere fails', () => {
  for (const [name, packet, check] of [
    ['SRTP', GCM_SRTP, (v: SrtpVerifier, p: Buffer) => v.verifyRtp(p)],
    ['SRTCP', GCM_SRTCP, (v: SrtpVerifier, p: Buffer) => v.verifyRtcp(p)],
  ] as const) {
    assert.equal(check(new SrtpVerifier(GCM_KEYS, GCM_KEYS), packet), 'ok', name);
    for (let at = 0; at < packet.length; at++) {
      // The E flag's bit 0 is index bit 24: flipping it changes the index, which the AAD and IV cover.
      const result = check(new SrtpVerifier(GCM_KEYS, GCM_KEYS), flipped(packet, at));
      assert.equal(result, 'auth', `${name}: bit 0 of byte ${at} flipped`);
    }
  }
});

test('a replayed index fails, and an index behind the window fails as too old', () => {
  const v = SrtpVerifier.fromMaster(SRTP_AES128_CM_HMAC_SHA1_80, CM_MASTER_KEY, CM_MASTER_SALT);
  assert.equal(v.verifyRtp(CM_SRTP), 'ok');
  assert.equal(v.verifyRtp(CM_SRTP), 'replay');
  assert.equal(v.verifyRtcp(CM_SRTCP), 'ok');
  assert.equal(v.verifyRtcp(CM_SRTCP), 'replay');
  const g = new SrtpVerifier(GCM_KEYS, GCM_KEYS);
  assert.equal(g.verifyRtp(GCM_SRTP), 'ok');
  assert.equal(g.verifyRtp(GCM_SRTP), 'replay');
  assert.equal(g.verifyRtcp(GCM_SRTCP), 'ok');
  assert.equal(g.verifyRtcp(GCM_SRTCP), 'replay');
});

test('truncated packets throw MalformedInputError, never anything else', () => {
  for (const [profile, rtp, rtcp, v] of [
    ['CM', CM_SRTP, CM_SRTCP, () => SrtpVerifier.fromMaster(SRTP_AES128_CM_HMAC_SHA1_80, CM_MASTER_KEY, CM_MASTER_SALT)],
    ['GCM', GCM_SRTP, GCM_SRTCP, () => new SrtpVerifier(GCM_KEYS, GCM_KEYS)],
  ] as const) {
    for (let length = 0; length < rtp.length; length++) {
      try {
        assert.equal(v().verifyRtp(rtp.subarray(0, length)), 'auth', `${profile} SRTP cut to ${length}`);
      } catch (err) {
        assert.ok(err instanceof MalformedInputError, `${profile} SRTP cut to ${length}: ${String(err)}`);
      }
    }
    for (let length = 0; length < rtcp.length; length++) {
      try {
        assert.equal(v().verifyRtcp(rtcp.subarray(0, length)), 'auth', `${profile} SRTCP cut to ${length}`);
      } catch (err) {
        assert.ok(err instanceof MalformedInputError, `${profile} SRTCP cut to ${length}: ${String(err)}`);
      }
    }
    assert.throws(() => v().verifyRtp(rtp.subarray(0, 11)), MalformedInputError);
    assert.throws(() => v().verifyRtcp(rtcp.subarray(0, 21)), MalformedInputError);
  }
  // A header whose CSRC count or extension runs past the tag.
  const csrcs = Buffer.from(CM_SRTP);
  csrcs[0] = 0x8f;
  assert.throws(() => SrtpVerifier.fromMaster(1, CM_MASTER_KEY, CM_MASTER_SALT).verifyRtp(csrcs), /RTP header of 72 bytes/);
});

test('the replay window: new, seen, too old, and sliding past skipped indices', () => {
  const w = new ReplayWindow(64);
  assert.equal(w.check(100), 'ok');
  w.accept(100);
  assert.equal(w.check(100), 'replay');
  assert.equal(w.check(99), 'ok');
  w.accept(99);
  assert.equal(w.check(99), 'replay');
  assert.equal(w.check(37), 'ok', '63 behind: still in the window');
  assert.equal(w.check(36), 'too-old', '64 behind');
  w.accept(164); // 99 and 100 slide out; the slots of 101..163 must read as unseen
  assert.equal(w.check(100), 'too-old');
  for (let i = 101; i < 164; i++) assert.equal(w.check(i), 'ok', `index ${i}`);
  assert.equal(w.check(164), 'replay');
  w.accept(10_000);
  assert.equal(w.check(9_999), 'ok');
  assert.equal(w.check(10_000), 'replay');
  assert.equal(w.check(-1), 'too-old');
});

test('RFC 3711 Appendix A: the index follows sequence wraps both ways', () => {
  assert.equal(estimateIndex(-1, 0xfffe), 0xfffe);
  assert.equal(estimateIndex(0xfffe, 0x0001), 0x10001, 'after a wrap');
  assert.equal(estimateIndex(0x10001, 0xfffd), 0xfffd, 'a late packet from before the wrap');
  assert.equal(estimateIndex(0x30005, 0x0004), 0x30004);
  assert.equal(estimateIndex(5, 0xfff0), -16, 'before the first packet of ROC 0');
});

/** Packets of one SSRC protected by our SrtpProtector (node:crypto) from `firstSeq` on, across a wrap. */
function ourPackets(profile: number, masterKey: Buffer, masterSalt: Buffer, firstSeq: number, count: number): Buffer[] {
  const protector = new SrtpProtector(deriveSrtpKeys(profile, masterKey, masterSalt), false);
  const out: Buffer[] = [];
  let roc = 0;
  for (let i = 0; i < count; i++) {
    const seq = (firstSeq + i) & 0xffff;
    if (i > 0 && seq === 0) roc++;
    const payload = randomBytes(20 + i);
    const buf = Buffer.alloc(12 + payload.length + protector.tagBytes);
    buf[0] = 0x80;
    buf[1] = 96;
    buf.writeUInt16BE(seq, 2);
    buf.writeUInt32BE(i * 3000, 4);
    buf.writeUInt32BE(0x11223344, 8);
    payload.copy(buf, 12);
    protector.protect(buf, 0, 12, payload.length, roc);
    out.push(buf);
  }
  return out;
}

for (const profile of [SRTP_AES128_CM_HMAC_SHA1_80, SRTP_AEAD_AES_128_GCM]) {
  const sizes = srtpProfileSizes(profile);
  assert.ok(sizes !== undefined);

  test(`${sizes.name}: packets of our srtp-protect pass across a sequence wrap, out of order within the window`, () => {
    const key = randomBytes(16);
    const salt = randomBytes(sizes.saltBytes);
    const packets = ourPackets(profile, key, salt, 0xfff0, 40);
    const v = SrtpVerifier.fromMaster(profile, key, salt);
    // In order but with pairs swapped (the network reorders), across the wrap at packet 16.
    for (let i = 0; i + 1 < packets.length; i += 2) {
      assert.equal(v.verifyRtp(packets[i + 1] as Buffer), 'ok', `packet ${i + 1}`);
      assert.equal(v.verifyRtp(packets[i] as Buffer), 'ok', `packet ${i}`);
    }
    assert.equal(v.verifyRtp(packets[20] as Buffer), 'replay');
    // SEQ 0x0030 protected with ROC 0, after the wrap (the receiver's index is 0x10030): the HMAC or GCM IV differs.
    const wrongRoc = ourPackets(profile, key, salt, 0x0030, 1)[0] as Buffer;
    assert.equal(v.verifyRtp(wrongRoc), 'auth');
  });

  test(`${sizes.name}: werift's encrypt; a changed header, payload or tag byte fails; too old fails`, () => {
    const local = { key: randomBytes(16), salt: randomBytes(sizes.saltBytes) };
    const remote = { key: randomBytes(16), salt: randomBytes(sizes.saltBytes) };
    const config = {
      keys: {
        localMasterKey: local.key,
        localMasterSalt: local.salt,
        remoteMasterKey: remote.key,
        remoteMasterSalt: remote.salt,
      },
      profile,
    };
    const srtp = new SrtpSession(config);
    const srtcp = new SrtcpSession(config);
    const v = SrtpVerifier.fromMaster(profile, local.key, local.salt);
    const sealed: Buffer[] = [];
    for (let seq = 1; seq <= SRTP_REPLAY_WINDOW + 10; seq++) {
      const header = new RtpHeader({
        payloadType: 96,
        sequenceNumber: seq,
        timestamp: seq * 3000,
        ssrc: 0xabcdef01,
        marker: false,
      });
      sealed.push(srtp.encrypt(randomBytes(100), header));
    }
    const first = sealed[0] as Buffer;
    for (const [what, at] of [
      ['header', 1],
      ['payload', 40],
      ['tag', first.length - 1],
    ] as const) {
      assert.equal(v.verifyRtp(flipped(first, at)), 'auth', `${what} byte ${at}`);
    }
    for (const p of sealed.slice(1)) assert.equal(v.verifyRtp(p), 'ok');
    assert.equal(v.verifyRtp(first), 'too-old', `index 1 is ${SRTP_REPLAY_WINDOW + 9} behind`);

    const pli = new RtcpPayloadSpecificFeedback({ feedback: new PictureLossIndication({ senderSsrc: 7, mediaSsrc: 9 }) });
    const sealedRtcp = srtcp.encrypt(pli.serialize());
    assert.equal(v.verifyRtcp(flipped(sealedRtcp, 4)), 'auth', 'sender SSRC changed');
    assert.equal(v.verifyRtcp(flipped(sealedRtcp, 9)), 'auth', 'media SSRC changed');
    assert.equal(v.verifyRtcp(flipped(sealedRtcp, sealedRtcp.length - 1)), 'auth', 'last byte changed');
    assert.equal(v.verifyRtcp(sealedRtcp), 'ok');
    assert.equal(v.verifyRtcp(sealedRtcp), 'replay');
    // What passed is what werift reads: its own decrypt gives the PLI back.
    const opener = new SrtcpSession({
      keys: {
        localMasterKey: remote.key,
        localMasterSalt: remote.salt,
        remoteMasterKey: local.key,
        remoteMasterSalt: local.salt,
      },
      profile,
    });
    const [decoded] = RtcpPacketConverter.deSerialize(opener.decrypt(sealedRtcp));
    assert.ok(decoded instanceof RtcpPayloadSpecificFeedback);
  });

  test(`${sizes.name}: SRTCP keys are the RFC 3711 labels 3-5, not the SRTP ones`, () => {
    const key = randomBytes(16);
    const salt = randomBytes(sizes.saltBytes);
    assert.notDeepEqual(deriveSrtcpKeys(profile, key, salt).encryptionKey, deriveSrtpKeys(profile, key, salt).encryptionKey);
  });
}
