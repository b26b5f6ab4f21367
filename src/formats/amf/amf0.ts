// AMF0 values (Adobe "Action Message Format -- AMF 0", 2007, section 2): the encoding of FLV
// script data (onMetaData) and of RTMP commands (connect, publish...).

import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { LimitExceededError, MalformedInputError } from '../../errors.js';

/**
 * A decoded AMF0 value, as plain JavaScript:
 * - number (2.2), boolean (2.3), string and long string (2.4, 2.14) -> string,
 * - object (2.5), typed object (2.18, class name dropped) and ECMA array (2.10) -> plain object;
 *   an object that came from an ECMA array is marked with the non-enumerable `AMF0_ECMA_ARRAY`
 *   symbol so it encodes back as an ECMA array (use `amf0EcmaArray(obj)` to build one),
 * - null (2.7) -> null, undefined (2.8) and unsupported (2.12) -> undefined,
 * - strict array (2.12) -> array, date (2.13) -> Date (the time-zone field is ignored, written 0),
 * - reference (2.9) -> the earlier object or array it points to (decode only; never written),
 * - XML document (2.17) -> string (decode only).
 * Object keys are own data properties, so a key named `__proto__` stays an ordinary key.
 */
export type Amf0Value = number | boolean | string | null | undefined | Date | Amf0Value[] | Amf0Object;
export interface Amf0Object {
  [key: string]: Amf0Value;
}

/** Type markers, section 2.1. */
export const Amf0Marker = {
  number: 0x00,
  boolean: 0x01,
  string: 0x02,
  object: 0x03,
  movieclip: 0x04,
  null: 0x05,
  undefined: 0x06,
  reference: 0x07,
  ecmaArray: 0x08,
  objectEnd: 0x09,
  strictArray: 0x0a,
  date: 0x0b,
  longString: 0x0c,
  unsupported: 0x0d,
  recordset: 0x0e,
  xmlDocument: 0x0f,
  typedObject: 0x10,
  avmplusObject: 0x11,
} as const;

/** Marks an object decoded from (or to be encoded as) an ECMA array. */
export const AMF0_ECMA_ARRAY: unique symbol = Symbol('amf0.ecmaArray');

/** Nested objects/arrays deeper than this are refused (decode) or rejected (encode). */
export const AMF0_MAX_DEPTH = 32;

const FORMAT = 'amf0';

/** Marks `obj` so that `encodeAmf0` writes it as an ECMA array (0x08) instead of an object. */
export function amf0EcmaArray<T extends Amf0Object>(obj: T): T {
  Object.defineProperty(obj, AMF0_ECMA_ARRAY, { value: true, enumerable: false });
  return obj;
}

export function isAmf0EcmaArray(value: Amf0Value): boolean {
  return typeof value === 'object' && value !== null && AMF0_ECMA_ARRAY in value;
}

/** The objects and arrays seen so far in one AMF0 message, for references (2.9). */
export interface Amf0DecodeContext {
  readonly references: (Amf0Object | Amf0Value[])[];
  /** References whose value is still being decoded: pointing at one would make a cycle. */
  readonly open: Set<number>;
}

export function newAmf0DecodeContext(): Amf0DecodeContext {
  return { references: [], open: new Set() };
}

/**
 * Decodes one value at the reader's position. Section 2.1:
 *
 *   value-type = marker(u8) payload
 *   number        0x00  f64
 *   boolean       0x01  u8 (0 = false)
 *   string        0x02  u16 byte length, UTF-8
 *   object        0x03  { u16 key length, UTF-8 key, value }* 00 00 09
 *   null/undef.   0x05/0x06
 *   reference     0x07  u16 index into this message's object table
 *   ECMA array    0x08  u32 associative count (a hint), then as object
 *   strict array  0x0A  u32 count, value*
 *   date          0x0B  f64 ms since 1970, s16 time zone (reserved, 0)
 *   long string   0x0C  u32 byte length, UTF-8
 *   typed object  0x10  u16 class-name length, class name, then as object
 */
export function decodeAmf0(reader: ByteReader, ctx: Amf0DecodeContext = newAmf0DecodeContext()): Amf0Value {
  return decodeValue(reader, ctx, 0);
}

/** Decodes every value in `buf` (one AMF0 message: references are shared across the values). */
export function decodeAmf0All(buf: Buffer, start = 0, end = buf.length): Amf0Value[] {
  const reader = new ByteReader(buf, FORMAT, start, end);
  const ctx = newAmf0DecodeContext();
  const values: Amf0Value[] = [];
  while (reader.remaining > 0) values.push(decodeValue(reader, ctx, 0));
  return values;
}

function decodeValue(r: ByteReader, ctx: Amf0DecodeContext, depth: number): Amf0Value {
  const markerOffset = r.pos;
  const marker = r.u8();
  switch (marker) {
    case Amf0Marker.number:
      return r.f64();
    case Amf0Marker.boolean:
      return r.u8() !== 0;
    case Amf0Marker.string:
      return readUtf8(r, r.u16());
    case Amf0Marker.longString:
    case Amf0Marker.xmlDocument:
      return readUtf8(r, r.u32());
    case Amf0Marker.null:
      return null;
    case Amf0Marker.undefined:
    case Amf0Marker.unsupported:
      return undefined;
    case Amf0Marker.object:
      return decodeObject(r, ctx, depth, markerOffset, false);
    case Amf0Marker.typedObject:
      readUtf8(r, r.u16()); // class name, dropped
      return decodeObject(r, ctx, depth, markerOffset, false);
    case Amf0Marker.ecmaArray:
      r.u32(); // associative-count: encoders get it wrong, the end marker is what counts
      return decodeObject(r, ctx, depth, markerOffset, true);
    case Amf0Marker.strictArray:
      return decodeStrictArray(r, ctx, depth, markerOffset);
    case Amf0Marker.date: {
      const ms = r.f64();
      r.u16(); // time-zone, reserved
      return new Date(ms);
    }
    case Amf0Marker.reference: {
      const index = r.u16();
      const target = ctx.references[index];
      if (target === undefined) {
        throw new MalformedInputError(
          FORMAT,
          markerOffset,
          `reference ${index} with ${ctx.references.length} objects in the table`,
        );
      }
      if (ctx.open.has(index)) {
        throw new MalformedInputError(FORMAT, markerOffset, `reference ${index} points to an enclosing object (a cycle)`);
      }
      return target;
    }
    case Amf0Marker.objectEnd:
      throw new MalformedInputError(FORMAT, markerOffset, 'object-end marker outside an object');
    default:
      throw new MalformedInputError(FORMAT, markerOffset, `unsupported type marker 0x${marker.toString(16).padStart(2, '0')}`);
  }
}

function readUtf8(r: ByteReader, length: number): string {
  return r.bytes(length).toString('utf8');
}

function enter(depth: number, markerOffset: number): void {
  if (depth >= AMF0_MAX_DEPTH) {
    throw new MalformedInputError(FORMAT, markerOffset, `nesting deeper than ${AMF0_MAX_DEPTH} levels`);
  }
}

function decodeObject(r: ByteReader, ctx: Amf0DecodeContext, depth: number, markerOffset: number, ecma: boolean): Amf0Object {
  enter(depth, markerOffset);
  const obj: Amf0Object = {};
  if (ecma) amf0EcmaArray(obj);
  const index = ctx.references.length;
  ctx.references.push(obj);
  ctx.open.add(index);
  for (;;) {
    // Some encoders end an ECMA array at the end of the data without the 00 00 09 marker.
    if (ecma && r.remaining === 0) break;
    const key = readUtf8(r, r.u16());
    if (key === '' && r.remaining > 0 && r.buf[r.pos] === Amf0Marker.objectEnd) {
      r.u8();
      break;
    }
    setOwn(obj, key, decodeValue(r, ctx, depth + 1));
  }
  ctx.open.delete(index);
  return obj;
}

function decodeStrictArray(r: ByteReader, ctx: Amf0DecodeContext, depth: number, markerOffset: number): Amf0Value[] {
  enter(depth, markerOffset);
  const count = r.u32();
  // Every value takes at least its marker byte: refuse a count the bytes left cannot hold.
  if (count > r.remaining) {
    throw new MalformedInputError(FORMAT, markerOffset, `strict array of ${count} values with ${r.remaining} bytes left`);
  }
  const arr: Amf0Value[] = [];
  const index = ctx.references.length;
  ctx.references.push(arr);
  ctx.open.add(index);
  for (let i = 0; i < count; i++) arr.push(decodeValue(r, ctx, depth + 1));
  ctx.open.delete(index);
  return arr;
}

function setOwn(obj: Amf0Object, key: string, value: Amf0Value): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

// ---------------------------------------------------------------------------------------------
// Encoding: amf0Size() computes the exact size, writeAmf0() fills a ByteWriter.

/** Encodes the values one after the other (an AMF0 message). */
export function encodeAmf0(values: readonly Amf0Value[]): Buffer {
  const w = new ByteWriter(amf0Size(values));
  writeAmf0(w, values);
  return w.done();
}

/** The encoded size of `values`, in bytes. Throws LimitExceededError for unencodable input. */
export function amf0Size(values: readonly Amf0Value[]): number {
  let size = 0;
  for (const v of values) size += valueSize(v, 0);
  return size;
}

export function writeAmf0(w: ByteWriter, values: readonly Amf0Value[]): void {
  for (const v of values) writeValue(w, v);
}

function checkDepth(depth: number): void {
  if (depth >= AMF0_MAX_DEPTH) throw new LimitExceededError('amf0: nesting depth', depth + 1, AMF0_MAX_DEPTH);
}

function keySize(key: string): number {
  const n = Buffer.byteLength(key, 'utf8');
  if (n > 0xffff) throw new LimitExceededError(`amf0: object key bytes`, n, 0xffff);
  return 2 + n;
}

function valueSize(v: Amf0Value, depth: number): number {
  if (v === null || v === undefined) return 1;
  switch (typeof v) {
    case 'number':
      return 9;
    case 'boolean':
      return 2;
    case 'string': {
      const n = Buffer.byteLength(v, 'utf8');
      return n > 0xffff ? 5 + n : 3 + n;
    }
    default:
      break;
  }
  if (v instanceof Date) return 11;
  checkDepth(depth);
  if (Array.isArray(v)) {
    let size = 5;
    for (const item of v) size += valueSize(item, depth + 1);
    return size;
  }
  let size = (isAmf0EcmaArray(v) ? 5 : 1) + 3; // marker (+ count) ... 00 00 09
  for (const key of Object.keys(v)) size += keySize(key) + valueSize(v[key], depth + 1);
  return size;
}

function writeValue(w: ByteWriter, v: Amf0Value): void {
  if (v === null) {
    w.u8(Amf0Marker.null);
    return;
  }
  if (v === undefined) {
    w.u8(Amf0Marker.undefined);
    return;
  }
  switch (typeof v) {
    case 'number':
      w.u8(Amf0Marker.number).f64(v);
      return;
    case 'boolean':
      w.u8(Amf0Marker.boolean).u8(v ? 1 : 0);
      return;
    case 'string': {
      const n = Buffer.byteLength(v, 'utf8');
      if (n > 0xffff) w.u8(Amf0Marker.longString).u32(n);
      else w.u8(Amf0Marker.string).u16(n);
      w.pos += w.buf.write(v, w.pos, n, 'utf8');
      return;
    }
    default:
      break;
  }
  if (v instanceof Date) {
    w.u8(Amf0Marker.date).f64(v.getTime()).u16(0);
    return;
  }
  if (Array.isArray(v)) {
    w.u8(Amf0Marker.strictArray).u32(v.length);
    for (const item of v) writeValue(w, item);
    return;
  }
  const keys = Object.keys(v);
  if (isAmf0EcmaArray(v)) w.u8(Amf0Marker.ecmaArray).u32(keys.length);
  else w.u8(Amf0Marker.object);
  for (const key of keys) {
    const n = Buffer.byteLength(key, 'utf8');
    w.u16(n);
    w.pos += w.buf.write(key, w.pos, n, 'utf8');
    writeValue(w, v[key]);
  }
  w.u16(0).u8(Amf0Marker.objectEnd);
}
