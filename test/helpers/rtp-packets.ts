// RTP packets of frames as a packetiser sends them: one frame every 40 ms (3600 at 90 kHz), the
// first a keyframe, sequence numbers from `firstSequence` (wrapping at 16 bits). For payload tests.

import fc from 'fast-check';
import { MalformedInputError } from '../../src/errors.js';
import type { RtpPayloadUnit } from '../../src/formats/rtp/payload.js';
import type { RtpPacket } from '../../src/formats/rtp/rtp-packet.js';
import type { Frame } from '../../src/media/frame.js';

export function packetsOf(
  packetizer: { packetize(frame: Frame): RtpPayloadUnit[] },
  frames: readonly Buffer[],
  firstSequence = 65_530,
): RtpPacket[] {
  const out: RtpPacket[] = [];
  let seq = firstSequence;
  frames.forEach((data, i) => {
    for (const u of packetizer.packetize({ trackId: 0, pts90k: i * 3600, dts90k: i * 3600, keyframe: i === 0, data })) {
      out.push({
        marker: u.marker,
        payloadType: 96,
        sequence: seq++ & 0xffff,
        timestamp: i * 3600,
        ssrc: 1,
        csrcs: [],
        extension: undefined,
        payload: Buffer.concat(u.parts),
      });
    }
  });
  return out;
}

/**
 * Property: any run of packets (payloads of `minLength` to 40 random bytes, random markers) pushed
 * into a fresh depacketiser either parses or throws MalformedInputError, never anything else.
 */
export function assertParsesOrMalformed(
  newDepacketizer: () => { push(packet: RtpPacket): unknown },
  numRuns: number,
  minLength = 0,
): void {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.uint8Array({ minLength, maxLength: 40 }), fc.boolean()), { maxLength: 20 }), (list) => {
      const d = newDepacketizer();
      list.forEach(([bytes, marker], i) => {
        try {
          d.push({
            marker,
            payloadType: 96,
            sequence: i,
            timestamp: 0,
            ssrc: 1,
            csrcs: [],
            extension: undefined,
            payload: Buffer.from(bytes),
          });
        } catch (err) {
          if (!(err instanceof MalformedInputError)) throw err;
        }
      });
    }),
    { numRuns },
  );
}
