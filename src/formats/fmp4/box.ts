// ISO base media file format boxes (ISO/IEC 14496-12 4.2): a box is a size, a four-character
// type and a payload; a full box adds version and flags. Boxes are built as a tree of sized
// nodes, so a whole segment is measured first, allocated once and written in one pass.

import { ByteWriter } from '../bytes/byte-writer.js';

/** A box whose size is known before it is written. */
export interface Box {
  readonly size: number;
  write(w: ByteWriter): void;
}

const BOX_HEADER_SIZE = 8;
const FULL_BOX_HEADER_SIZE = 12;

function fourcc(w: ByteWriter, type: string): void {
  for (let i = 0; i < 4; i++) w.u8(type.charCodeAt(i));
}

/**
 *  aligned(8) class Box (unsigned int(32) boxtype) { unsigned int(32) size; unsigned int(32) type; }
 * `payloadSize` bytes written by `writePayload`, then the children.
 */
export function box(
  type: string,
  payloadSize: number,
  writePayload: (w: ByteWriter) => void,
  children: readonly Box[] = [],
): Box {
  const size = BOX_HEADER_SIZE + payloadSize + children.reduce((n, c) => n + c.size, 0);
  return {
    size,
    write(w) {
      w.u32(size);
      fourcc(w, type);
      writePayload(w);
      for (const c of children) c.write(w);
    },
  };
}

/** aligned(8) class FullBox extends Box { unsigned int(8) version; bit(24) flags; } */
export function fullBox(
  type: string,
  version: number,
  flags: number,
  payloadSize: number,
  writePayload: (w: ByteWriter) => void,
  children: readonly Box[] = [],
): Box {
  const size = FULL_BOX_HEADER_SIZE + payloadSize + children.reduce((n, c) => n + c.size, 0);
  return {
    size,
    write(w) {
      w.u32(size);
      fourcc(w, type);
      w.u8(version);
      w.u24(flags);
      writePayload(w);
      for (const c of children) c.write(w);
    },
  };
}

/** A box that only holds other boxes (moov, trak, mdia, minf, dinf, stbl, mvex, moof, traf). */
export function containerBox(type: string, children: readonly Box[]): Box {
  return box(type, 0, () => undefined, children);
}

/** Lays out boxes one after the other into one buffer allocated at its final size. */
export function encodeBoxes(boxes: readonly Box[]): Buffer {
  const w = new ByteWriter(boxes.reduce((n, b) => n + b.size, 0));
  for (const b of boxes) b.write(w);
  return w.done();
}

export function writeFourcc(w: ByteWriter, type: string): void {
  fourcc(w, type);
}

/** The unity transformation matrix of mvhd and tkhd (14496-12 8.2.2.3). */
export const UNITY_MATRIX = [0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000] as const;
