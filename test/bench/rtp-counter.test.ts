// The WebRTC load generator's RTP counting (bench/rtp-counter.ts): sequence and timestamp
// wrap-around, loss from sequence gaps, late delivery, and what is not RTP.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RtpCounter, isRtp, windowFigures } from '../../bench/rtp-counter.js';
import { buildRtpPacket } from '../../src/formats/rtp/rtp-packet.js';

const SSRC = 0x11223344;
const packet = (sequence: number, timestamp: number, ssrc = SSRC): Buffer =>
  buildRtpPacket({ marker: false, payloadType: 96, sequence: sequence & 0xffff, timestamp: timestamp % 2 ** 32, ssrc }, [
    Buffer.alloc(100),
  ]);

/** 25 packets a second of 90 kHz media for `seconds`, from `seq`/`ts`, skipping the sequence numbers in `drop`. */
function feed(counter: RtpCounter, seq: number, ts: number, count: number, drop: ReadonlySet<number> = new Set()): void {
  for (let i = 0; i < count; i++) if (!drop.has(seq + i)) counter.onDatagram(packet(seq + i, ts + i * 3600), 0);
}

describe('RTP counter', () => {
  it('follows sequence numbers and timestamps across their wrap-around', () => {
    const c = new RtpCounter();
    feed(c, 65_500, 2 ** 32 - 90_000, 10);
    const before = c.snapshot();
    feed(c, 65_510, 2 ** 32 - 90_000 + 10 * 3600, 250);
    const w = windowFigures(before, c.snapshot(), 10, 90_000);
    assert.ok(w !== undefined);
    assert.equal(w.received, 250);
    assert.equal(w.expected, 250);
    assert.equal(w.lost, 0);
    assert.equal(w.mediaSec, 10);
    assert.equal(w.fullRate, true);
  });

  it('counts sequence gaps as loss, and a viewer that lost over 5% is not at full rate', () => {
    const c = new RtpCounter();
    feed(c, 0, 0, 10);
    const before = c.snapshot();
    const drop = new Set(Array.from({ length: 20 }, (_, i) => 20 + i * 10));
    feed(c, 10, 36_000, 250, drop);
    const w = windowFigures(before, c.snapshot(), 10, 90_000);
    assert.ok(w !== undefined);
    assert.equal(w.lost, 20);
    assert.equal(w.fullRate, false);
  });

  it('is not at full rate when the media arrives late (less media time than wall time)', () => {
    const c = new RtpCounter();
    feed(c, 0, 0, 10);
    const before = c.snapshot();
    feed(c, 10, 36_000, 225); // 9 s of media over a 10 s window
    const w = windowFigures(before, c.snapshot(), 10, 90_000);
    assert.ok(w !== undefined);
    assert.equal(w.lost, 0);
    assert.equal(w.fullRate, false);
    assert.equal(windowFigures(before, c.snapshot(), 9, 90_000)?.fullRate, true);
  });

  it('leaves RTCP, DTLS and STUN to werift, and measures the busiest SSRC', () => {
    const c = new RtpCounter();
    const rtcp = Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 1]);
    assert.equal(isRtp(rtcp), false);
    assert.equal(c.onDatagram(rtcp, 0), false);
    assert.equal(c.onDatagram(Buffer.from([22, 254, 253, ...Buffer.alloc(20)]), 0), false); // DTLS record
    assert.equal(c.onDatagram(Buffer.from([0, 1, 0, 0, ...Buffer.alloc(16)]), 0), false); // STUN binding request
    feed(c, 0, 0, 5);
    c.onDatagram(packet(7, 0, 42), 0);
    const before = c.snapshot();
    feed(c, 5, 18_000, 50);
    c.onDatagram(packet(8, 3600, 42), 0);
    assert.equal(windowFigures(before, c.snapshot(), 2, 90_000)?.ssrc, SSRC);
  });
});
