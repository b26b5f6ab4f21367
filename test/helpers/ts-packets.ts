// Hand-made MPEG-TS bytes for hostile-input tests and the hostile soak: packets, PSI sections with
// their CRC, and a PAT + PMT of H.264 streams.

import { crc32 } from '../../src/formats/mpegts/crc32.js';

/** One 188-byte TS packet (2.4.3.2) of `pid`, payload only, padded with 0xFF. */
export function tsPacket(pid: number, unitStart: boolean, cc: number, payload: Buffer): Buffer {
  const p = Buffer.alloc(188, 0xff);
  p[0] = 0x47;
  p.writeUInt16BE((unitStart ? 0x4000 : 0) | pid, 1);
  p[3] = 0x10 | (cc & 0x0f); // payload only
  payload.copy(p, 4, 0, 184);
  return p;
}

/** A PSI section (2.4.4) of table `tableId` with its CRC, after a pointer field. */
export function psi(tableId: number, idExtension: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head[0] = tableId;
  head.writeUInt16BE(0xb000 | (5 + body.length + 4), 1); // section_syntax_indicator, section_length
  head.writeUInt16BE(idExtension, 3);
  head[5] = 0xc1; // version 0, current
  head[6] = 0; // section_number
  head[7] = 0; // last_section_number
  const section = Buffer.concat([head, body, Buffer.alloc(4)]);
  section.writeUInt32BE(crc32(section, 0, section.length - 4), section.length - 4);
  return Buffer.concat([Buffer.from([0]), section]);
}

/** PAT (program 1 -> PMT PID 0x1000) and a PMT of H.264 streams on `pids` (PCR on the first), in as many packets as it takes. */
export function programTables(pids: readonly number[]): Buffer {
  const pat = psi(0x00, 1, Buffer.from([0x00, 0x01, 0xf0, 0x00]));
  const pcr = pids[0] ?? 0x100;
  const pmt = psi(
    0x02,
    1,
    Buffer.concat([
      Buffer.from([0xe0 | (pcr >> 8), pcr & 0xff, 0xf0, 0x00]), // PCR PID, no program info
      ...pids.map((pid) => Buffer.from([0x1b, 0xe0 | (pid >> 8), pid & 0xff, 0xf0, 0x00])), // H.264
    ]),
  );
  const packets = [tsPacket(0, true, 0, pat)];
  for (let at = 0, cc = 0; at < pmt.length; at += 184, cc++) packets.push(tsPacket(0x1000, at === 0, cc, pmt.subarray(at)));
  return Buffer.concat(packets);
}
