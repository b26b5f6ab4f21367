// SRTP protection of the WHEP direct send path: RFC 3711's own test vectors (key derivation B.3,
// AES-CM keystream B.2), then packets protected here and opened by werift-rtp's SRTP (another
// implementation, werift's) for both profiles, across a
// sequence-number wrap, with header extensions; a wrong key or a changed byte must not open.
// Each of both engines: node:crypto, and the native module (native/rtp-send.c) when it is built.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
// werift-rtp (werift's own dependency) authenticates what it opens; the copy bundled in werift 0.22's
// main entry does not (its decryptRtp never checks the tag), so it could not tell a wrong key.
import { SrtpSession } from 'werift-rtp';
import { headerTemplate } from './from-feed.js';
import { nativeRtpSend, nativeRtpSendStatus } from './native-rtp-send.js';
import {
  deriveSessionKey,
  deriveSrtpKeys,
  SRTP_AEAD_AES_128_GCM,
  SRTP_AES128_CM_HMAC_SHA1_80,
  SrtpProtector,
  srtpProfileSizes,
} from './srtp-protect.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('RFC 3711 B.3: session keys derived from the master key and salt', () => {
  const masterKey = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
  const masterSalt = hex('0EC675AD498AFEEBB6960B3AABE6');
  assert.deepEqual(deriveSessionKey(masterKey, masterSalt, 0, 16), hex('C61E7A93744F39EE10734AFE3FF7A087'));
  assert.deepEqual(deriveSessionKey(masterKey, masterSalt, 2, 14), hex('30CBBC08863D8C85D49DB34A9AE1'));
  assert.deepEqual(deriveSessionKey(masterKey, masterSalt, 1, 20).subarray(0, 16), hex('CEBE321F6FF7716B6FD4AB49AF256A15'));
  const keys = deriveSrtpKeys(SRTP_AES128_CM_HMAC_SHA1_80, masterKey, masterSalt);
  assert.deepEqual(keys.encryptionKey, hex('C61E7A93744F39EE10734AFE3FF7A087'));
  assert.deepEqual(keys.salt, hex('30CBBC08863D8C85D49DB34A9AE1'));
});

/** The engines: node:crypto always; the native module when built (else its tests say so and skip). */
const ENGINES = [
  { name: 'node:crypto', native: false, skip: false as string | false },
  {
    name: 'native',
    native: true,
    skip: nativeRtpSend === undefined ? `native module: ${nativeRtpSendStatus}` : (false as const),
  },
];

for (const engine of ENGINES) {
  test(`RFC 3711 B.2: the AES-CM keystream of SSRC 0, index 0 (${engine.name})`, { skip: engine.skip }, () => {
    const protector = new SrtpProtector(
      {
        profile: SRTP_AES128_CM_HMAC_SHA1_80,
        encryptionKey: hex('2B7E151628AED2A6ABF7158809CF4F3C'),
        salt: hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD'),
        authKey: Buffer.alloc(20),
      },
      engine.native,
    );
    assert.equal(protector.engine, engine.name);
    // A header with SSRC 0 and sequence 0, then 48 zero bytes: what comes out is the keystream.
    const buf = Buffer.alloc(12 + 48 + 10);
    buf[0] = 0x80;
    protector.protectAll(buf, Int32Array.of(0, 12, 48, 0), 1);
    assert.deepEqual(
      buf.subarray(12, 60),
      hex('E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0'),
    );
  });
}

test('an SRTP profile this path does not protect with is refused with its number', () => {
  assert.throws(() => deriveSrtpKeys(0x0002, randomBytes(16), randomBytes(14)), /0x2 is not supported/);
  assert.throws(() => deriveSrtpKeys(SRTP_AEAD_AES_128_GCM, randomBytes(16), randomBytes(14)), /master salt of 14 bytes/);
});

interface Clear {
  seq: number;
  ts: number;
  payload: Buffer;
}

/**
 * Protects `packets` (one SSRC, in order) as from-feed.ts does: the header template, then the
 * payload, all in one buffer, protected by one protectAll call; returns each packet's bytes.
 */
function protectAll(
  profile: number,
  masterKey: Buffer,
  masterSalt: Buffer,
  ssrc: number,
  packets: readonly Clear[],
  native: boolean,
): Buffer[] {
  const protector = new SrtpProtector(deriveSrtpKeys(profile, masterKey, masterSalt), native);
  const template = headerTemplate(
    ssrc,
    [
      { id: 1, uri: 'urn:ietf:params:rtp-hdrext:sdes:mid' },
      { id: 2, uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time' },
    ],
    '0',
    [{ id: 6, payload: Buffer.alloc(3) }],
  );
  if (typeof template === 'string') throw new Error(template);
  const h = template.bytes.length;
  const buf = Buffer.alloc(packets.reduce((a, p) => a + h + p.payload.length + protector.tagBytes, 0));
  const layout = new Int32Array(packets.length * 4);
  const spans: [number, number][] = [];
  let roc = 0;
  let last: number | undefined;
  let at = 0;
  packets.forEach((p, i) => {
    if (last !== undefined && p.seq < last) roc++;
    last = p.seq;
    template.bytes.copy(buf, at);
    buf[at + 1] = 96;
    buf.writeUInt16BE(p.seq, at + 2);
    buf.writeUInt32BE(p.ts, at + 4);
    p.payload.copy(buf, at + h);
    layout.set([at, h, p.payload.length, roc], i * 4);
    spans.push([at, at + h + p.payload.length + protector.tagBytes]);
    at += h + p.payload.length + protector.tagBytes;
  });
  protector.protectAll(buf, layout, packets.length);
  return spans.map(([from, to]) => Buffer.from(buf.subarray(from, to)));
}

function opener(profile: number, masterKey: Buffer, masterSalt: Buffer): SrtpSession {
  const sizes = srtpProfileSizes(profile);
  assert.ok(sizes !== undefined);
  return new SrtpSession({
    keys: {
      localMasterKey: randomBytes(16),
      localMasterSalt: randomBytes(sizes.saltBytes),
      remoteMasterKey: masterKey,
      remoteMasterSalt: masterSalt,
    },
    profile,
  });
}

for (const engine of ENGINES) {
  for (const profile of [SRTP_AES128_CM_HMAC_SHA1_80, SRTP_AEAD_AES_128_GCM]) {
    const sizes = srtpProfileSizes(profile);
    assert.ok(sizes !== undefined);
    const skip = engine.skip;
    test(`${sizes.name} (${engine.name}): werift's SRTP opens what is protected here, across a sequence wrap`, { skip }, () => {
      const masterKey = randomBytes(16);
      const masterSalt = randomBytes(sizes.saltBytes);
      const clear: Clear[] = [];
      for (let i = 0; i < 40; i++)
        clear.push({ seq: (0xffec + i) & 0xffff, ts: 1000 + i * 3000, payload: randomBytes(1 + i * 30) });
      const sealed = protectAll(profile, masterKey, masterSalt, 0x1234abcd, clear, engine.native);
      const session = opener(profile, masterKey, masterSalt);
      sealed.forEach((buf, i) => {
        const opened = session.decrypt(buf);
        const p = clear[i] as Clear;
        assert.equal(opened.readUInt16BE(2), p.seq);
        assert.deepEqual(opened.subarray(opened.length - p.payload.length), p.payload, `packet ${i} (seq ${p.seq})`);
      });
    });

    test(`${sizes.name} (${engine.name}): a wrong key or a changed byte does not open`, { skip }, () => {
      const masterKey = randomBytes(16);
      const masterSalt = randomBytes(sizes.saltBytes);
      const [buf] = protectAll(
        profile,
        masterKey,
        masterSalt,
        7,
        [{ seq: 100, ts: 0, payload: randomBytes(300) }],
        engine.native,
      );
      assert.ok(buf !== undefined);
      const wrongKey = Buffer.from(masterKey);
      wrongKey[0] = (wrongKey[0] as number) ^ 1;
      assert.throws(() => opener(profile, wrongKey, masterSalt).decrypt(Buffer.from(buf)), /authenticate/i);
      for (const at of [2, 20, buf.length - 1]) {
        const changed = Buffer.from(buf);
        changed[at] = (changed[at] as number) ^ 0x40;
        assert.throws(() => opener(profile, masterKey, masterSalt).decrypt(changed), /authenticate/i, `byte ${at} changed`);
      }
      assert.doesNotThrow(() => opener(profile, masterKey, masterSalt).decrypt(Buffer.from(buf)));
    });

    test(
      `${sizes.name} (${engine.name}): any payload and sequence number round-trips through werift (property)`,
      { skip },
      () => {
        fc.assert(
          fc.property(
            fc.uint8Array({ minLength: 16, maxLength: 16 }),
            fc.uint8Array({ minLength: sizes.saltBytes, maxLength: sizes.saltBytes }),
            fc.integer({ min: 0, max: 0xffff }),
            fc.integer({ min: 0, max: 0xffffffff }),
            fc.array(fc.uint8Array({ minLength: 0, maxLength: 1400 }), { minLength: 1, maxLength: 5 }),
            (key, salt, firstSeq, ssrc, payloads) => {
              const clear = payloads.map((p, i) => ({ seq: (firstSeq + i) & 0xffff, ts: i, payload: Buffer.from(p) }));
              const sealed = protectAll(profile, Buffer.from(key), Buffer.from(salt), ssrc, clear, engine.native);
              const session = opener(profile, Buffer.from(key), Buffer.from(salt));
              sealed.forEach((buf, i) => {
                const opened = session.decrypt(buf);
                const p = clear[i] as Clear;
                assert.deepEqual(opened.subarray(opened.length - p.payload.length), p.payload);
              });
            },
          ),
          { numRuns: 200 },
        );
      },
    );
  }
}

test('the header template: one-byte extensions sorted by id, padded to words; what it cannot write is named', () => {
  const t = headerTemplate(
    0xdeadbeef,
    [
      { id: 3, uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time' },
      { id: 1, uri: 'urn:ietf:params:rtp-hdrext:sdes:mid' },
      { id: 9, uri: 'urn:unknown' },
    ],
    'video0',
    [{ id: 5, payload: Buffer.alloc(3) }],
  );
  assert.ok(typeof t !== 'string');
  // 12 + BEDE/length 4 + (1+6) + (1+3) + (1+3) = 15 bytes of elements -> 4 words.
  assert.equal(t.bytes.length, 12 + 4 + 16);
  assert.equal(t.bytes.readUInt32BE(8), 0xdeadbeef);
  assert.equal(t.bytes[0], 0x90);
  assert.equal(t.bytes.readUInt16BE(12), 0xbede);
  assert.equal(t.bytes.readUInt16BE(14), 4);
  assert.equal(t.bytes[16], (1 << 4) | 5);
  assert.equal(t.bytes.subarray(17, 23).toString(), 'video0');
  assert.equal(t.bytes[23], (3 << 4) | 2);
  assert.equal(t.absSendTimeAt, 24);
  assert.equal(t.bytes[27], (5 << 4) | 2);
  assert.equal(t.twccAt, -1);
  assert.equal(headerTemplate(1, [], undefined, [{ id: 15, payload: Buffer.alloc(1) }]), 'header extension 15 (1 bytes)');
  const bare = headerTemplate(1, [], undefined, []);
  assert.ok(typeof bare !== 'string' && bare.bytes.length === 12 && bare.bytes[0] === 0x80);
});
