// CRC-32/MPEG-2 of PSI sections (ISO/IEC 13818-1 Annex A): polynomial 0x04C11DB7, initial value
// 0xFFFFFFFF, MSB first, no reflection and no final XOR. A section with its CRC appended sums to 0.

const TABLE = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x8000_0000 ? (c << 1) ^ 0x04c1_1db7 : c << 1;
    table[i] = c >>> 0;
  }
  return table;
}

/** The CRC of `buf[start..end)`, as an unsigned 32-bit number. */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0xffff_ffff;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) ^ (TABLE[((crc >>> 24) ^ (buf[i] as number)) & 0xff] as number)) >>> 0;
  }
  return crc;
}
