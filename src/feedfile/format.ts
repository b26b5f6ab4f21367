// The FeedFile on-disk format (docs/feed-file.md): two header copies, then a ring of fixed-size
// blocks, each with its own header and CRC-32, carrying a byte stream of records (frames and
// track lists) that may span blocks. Pure byte code: encoders, parsers and the record assembler.

import { crc32 as zlibCrc32 } from 'node:zlib';
import { MalformedInputError, UnsupportedError } from '../errors.js';
import { ByteReader } from '../formats/bytes/byte-reader.js';
import { AudioCodecs, VideoCodecs, type Codec } from '../media/codec.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';

export const FORMAT = 'feedfile';
/** File magic, at offset 0 of each header copy. */
export const FILE_MAGIC = Buffer.from('FEEDCAST', 'latin1');
export const FORMAT_VERSION = 1;
/** Block magic ("sync"), at offset 0 of every data block. */
export const BLOCK_MAGIC = 0x4643424b; // 'FCBK'
export const DEFAULT_BLOCK_SIZE = 4096;
export const MIN_BLOCK_SIZE = 512;
export const MAX_BLOCK_SIZE = 65536;
/** Two copies of the header, one block each: a torn header write leaves the other one valid. */
export const HEADER_BLOCKS = 2;
export const BLOCK_HEADER_BYTES = 64;
export const RECORD_HEADER_BYTES = 20;
/** No frame is larger than this (an 8K intra picture is far below). */
export const MAX_RECORD_BYTES = 32 * 1024 * 1024;
/** Fixed part of a header copy before the track list. */
const HEADER_FIXED_BYTES = 76;

export const BlockFlag = {
  /** A join point (track list record + keyframe) starts in this block, at keyOffset. */
  key: 1,
  /** The bytes before firstRecordOffset do not continue the previous block's last record. */
  discontinuity: 2,
} as const;

export const RecordType = { frame: 1, tracks: 2 } as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export interface Geometry {
  readonly blockSize: number;
  readonly headerBlocks: number;
  /** Ring slots: the block with sequence number s lives in slot s mod dataBlocks. */
  readonly dataBlocks: number;
}

export function payloadCapacity(g: Geometry): number {
  return g.blockSize - BLOCK_HEADER_BYTES;
}

/** Byte offset in the file of the block with sequence number `seq`. */
export function blockOffset(g: Geometry, seq: number): number {
  return (g.headerBlocks + (seq % g.dataBlocks)) * g.blockSize;
}

export function fileSizeOf(g: Geometry): number {
  return (g.headerBlocks + g.dataBlocks) * g.blockSize;
}

/** The largest ring that fits in `maxSizeBytes`. Throws when not even two data blocks fit. */
export function geometryFor(maxSizeBytes: number, blockSize = DEFAULT_BLOCK_SIZE): Geometry {
  checkBlockSize(blockSize, 0);
  const dataBlocks = Math.floor(maxSizeBytes / blockSize) - HEADER_BLOCKS;
  if (dataBlocks < 2) {
    throw new UnsupportedError(
      `feedfile: FileMaxSize ${maxSizeBytes} leaves room for ${Math.max(0, dataBlocks)} blocks of ${blockSize} bytes; at least ${(HEADER_BLOCKS + 2) * blockSize} bytes are needed`,
    );
  }
  return { blockSize, headerBlocks: HEADER_BLOCKS, dataBlocks };
}

function checkBlockSize(blockSize: number, offset: number): void {
  if (
    !Number.isInteger(blockSize) ||
    blockSize < MIN_BLOCK_SIZE ||
    blockSize > MAX_BLOCK_SIZE ||
    (blockSize & (blockSize - 1)) !== 0
  ) {
    throw new MalformedInputError(
      FORMAT,
      offset,
      `block size ${blockSize} is not a power of two in ${MIN_BLOCK_SIZE}..${MAX_BLOCK_SIZE}`,
    );
  }
}

/** CRC-32 (IEEE 802.3, as zlib and gzip compute it) of buf[start..end). */
export function crc32(buf: Buffer, start = 0, end = buf.length): number {
  return zlibCrc32(buf.subarray(start, end)) >>> 0;
}

// ---- signed 64-bit timestamps (exact up to 2^53) ----

function writeI64(buf: Buffer, offset: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  buf.writeInt32BE(hi, offset);
  buf.writeUInt32BE(v - hi * 0x1_0000_0000, offset + 4);
}

function readI64(r: ByteReader): number {
  const b = r.bytes(8);
  return b.readInt32BE(0) * 0x1_0000_0000 + b.readUInt32BE(4);
}

function writeU64(buf: Buffer, offset: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000) >>> 0, offset);
  buf.writeUInt32BE(v >>> 0, offset + 4);
}

// ---- tracks ----

const TrackBit = { size: 1, sampleRate: 2, channels: 4, config: 8, profile: 16 } as const;
const KNOWN_CODECS: ReadonlySet<string> = new Set<string>([...VideoCodecs, ...AudioCodecs]);

function trackBytes(t: Track): number {
  let n = 1 + 1 + 1 + t.codec.length + 1;
  if (t.width !== undefined && t.height !== undefined) n += 4;
  if (t.sampleRate !== undefined) n += 4;
  if (t.channels !== undefined) n += 1;
  if (t.config !== undefined) n += 2 + t.config.length;
  if (t.profile !== undefined) n += 1 + Buffer.byteLength(t.profile.slice(0, 255), 'latin1');
  return n;
}

/**
 * Track list: u8 count, then per track: u8 id, u8 kind (0 video, 1 audio), u8 codec length +
 * codec name (ASCII), u8 presence bits, [u16 width, u16 height] [u32 sampleRate] [u8 channels]
 * [u16 config length + config] [u8 profile length + profile].
 */
export function encodeTracks(tracks: readonly Track[]): Buffer {
  if (tracks.length > 255) throw new UnsupportedError(`feedfile: ${tracks.length} tracks (at most 255)`);
  let size = 1;
  for (const t of tracks) {
    if (t.config !== undefined && t.config.length > 0xffff) {
      throw new UnsupportedError(`feedfile: track ${t.id} config of ${t.config.length} bytes (at most 65535)`);
    }
    size += trackBytes(t);
  }
  const buf = Buffer.alloc(size);
  let p = buf.writeUInt8(tracks.length, 0);
  for (const t of tracks) {
    p = buf.writeUInt8(t.id & 0xff, p);
    p = buf.writeUInt8(t.kind === 'video' ? 0 : 1, p);
    p = buf.writeUInt8(t.codec.length, p);
    p += buf.write(t.codec, p, 'latin1');
    let bits = 0;
    if (t.width !== undefined && t.height !== undefined) bits |= TrackBit.size;
    if (t.sampleRate !== undefined) bits |= TrackBit.sampleRate;
    if (t.channels !== undefined) bits |= TrackBit.channels;
    if (t.config !== undefined) bits |= TrackBit.config;
    if (t.profile !== undefined) bits |= TrackBit.profile;
    p = buf.writeUInt8(bits, p);
    if (bits & TrackBit.size) {
      p = buf.writeUInt16BE((t.width ?? 0) & 0xffff, p);
      p = buf.writeUInt16BE((t.height ?? 0) & 0xffff, p);
    }
    if (bits & TrackBit.sampleRate) p = buf.writeUInt32BE((t.sampleRate ?? 0) >>> 0, p);
    if (bits & TrackBit.channels) p = buf.writeUInt8((t.channels ?? 0) & 0xff, p);
    if (t.config !== undefined) {
      p = buf.writeUInt16BE(t.config.length, p);
      p += t.config.copy(buf, p);
    }
    if (t.profile !== undefined) {
      const profile = Buffer.from(t.profile.slice(0, 255), 'latin1');
      p = buf.writeUInt8(profile.length, p);
      p += profile.copy(buf, p);
    }
  }
  return buf;
}

export function parseTracks(r: ByteReader): Track[] {
  const count = r.u8();
  const tracks: Track[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.u8();
    const kindByte = r.u8();
    if (kindByte > 1) r.fail(`track ${id}: kind ${kindByte} (0 video, 1 audio)`);
    const codec = r.bytes(r.u8()).toString('latin1');
    if (!KNOWN_CODECS.has(codec)) r.fail(`track ${id}: unknown codec "${codec.slice(0, 32)}"`);
    const bits = r.u8();
    if (bits & ~0x1f) r.fail(`track ${id}: unknown presence bits 0x${bits.toString(16)}`);
    let track: Track = { id, kind: kindByte === 0 ? 'video' : 'audio', codec: codec as Codec };
    if (bits & TrackBit.size) track = { ...track, width: r.u16(), height: r.u16() };
    if (bits & TrackBit.sampleRate) track = { ...track, sampleRate: r.u32() };
    if (bits & TrackBit.channels) track = { ...track, channels: r.u8() };
    if (bits & TrackBit.config) track = { ...track, config: Buffer.from(r.bytes(r.u16())) };
    if (bits & TrackBit.profile) track = { ...track, profile: r.bytes(r.u8()).toString('latin1') };
    if (tracks.some((t) => t.id === id)) r.fail(`track id ${id} appears twice`);
    tracks.push(track);
  }
  return tracks;
}

// ---- file header ----

export interface FileHeader extends Geometry {
  readonly version: number;
  /** Random at creation: blocks of another file (or of this path before a Truncate) are not ours. */
  readonly fileId: number;
  /** Incremented on every header write; of two valid copies the higher one is in force. */
  readonly generation: number;
  readonly createdAtMs: number;
  /** The writer had written every block before this sequence number when it wrote the header. */
  readonly checkpointSeq: number;
  readonly checkpointWallMs: number;
  /** Blocks before this sequence number belong to content dropped by Truncate. */
  readonly baseSeq: number;
  /** The feed's tracks when the header was written (in-band records are what readers use). */
  readonly tracks: readonly Track[];
  /** The track list did not fit in a header block and was left out. */
  readonly tracksOmitted: boolean;
}

/**
 * One header copy, one block long:
 *   0 8 magic "FEEDCAST" · 8 u16 version · 10 u16 copy index · 12 u32 block size ·
 *   16 u32 header blocks · 20 u32 data blocks · 24 u32 file id · 28 u32 flags (1: tracks omitted) ·
 *   32 u64 generation · 40 u64 created (ms) · 48 u64 checkpoint seq · 56 u64 checkpoint wall (ms) ·
 *   64 u64 base seq · 72 u32 track list length n · 76 track list · 76+n u32 CRC-32 of [0, 76+n) ·
 *   zero padding to the block size.
 */
export function encodeHeader(h: FileHeader, copy: number): Buffer {
  let tracks = encodeTracks(h.tracks);
  let omitted = h.tracksOmitted;
  if (HEADER_FIXED_BYTES + tracks.length + 4 > h.blockSize) {
    tracks = encodeTracks([]);
    omitted = true;
  }
  const buf = Buffer.alloc(h.blockSize);
  FILE_MAGIC.copy(buf, 0);
  buf.writeUInt16BE(FORMAT_VERSION, 8);
  buf.writeUInt16BE(copy, 10);
  buf.writeUInt32BE(h.blockSize, 12);
  buf.writeUInt32BE(h.headerBlocks, 16);
  buf.writeUInt32BE(h.dataBlocks, 20);
  buf.writeUInt32BE(h.fileId >>> 0, 24);
  buf.writeUInt32BE(omitted ? 1 : 0, 28);
  writeU64(buf, 32, h.generation);
  writeU64(buf, 40, h.createdAtMs);
  writeU64(buf, 48, h.checkpointSeq);
  writeU64(buf, 56, h.checkpointWallMs);
  writeU64(buf, 64, h.baseSeq);
  buf.writeUInt32BE(tracks.length, 72);
  tracks.copy(buf, HEADER_FIXED_BYTES);
  const end = HEADER_FIXED_BYTES + tracks.length;
  buf.writeUInt32BE(crc32(buf, 0, end), end);
  return buf;
}

/** What the first bytes of a file say it is. */
export function identify(head: Buffer): 'feedcast' | 'ffm' | 'empty' | 'foreign' {
  if (head.length === 0) return 'empty';
  if (head.length >= FILE_MAGIC.length && head.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) return 'feedcast';
  const tag = head.subarray(0, 4).toString('latin1');
  if (tag === 'FFM1' || tag === 'FFM2') return 'ffm';
  return 'foreign';
}

/**
 * Parses one header copy at `buf[start..]`. Throws MalformedInputError (bad magic, CRC, sizes)
 * or UnsupportedError (another format version).
 */
export function parseHeader(buf: Buffer, start = 0): FileHeader {
  const r = new ByteReader(buf, FORMAT, start);
  if (!r.bytes(FILE_MAGIC.length).equals(FILE_MAGIC)) {
    throw new MalformedInputError(FORMAT, start, 'no "FEEDCAST" magic: not a Feedcast feed file');
  }
  const version = r.u16();
  if (version !== FORMAT_VERSION) {
    throw new UnsupportedError(
      `feedfile: format version ${version}; this Feedcast reads version ${FORMAT_VERSION} only (the file is left untouched)`,
    );
  }
  r.u16(); // copy index
  const blockSize = r.u32();
  checkBlockSize(blockSize, start + 12);
  const headerBlocks = r.u32();
  const dataBlocks = r.u32();
  if (headerBlocks !== HEADER_BLOCKS) r.fail(`${headerBlocks} header blocks, expected ${HEADER_BLOCKS}`);
  if (dataBlocks < 2 || dataBlocks > 2 ** 40 / blockSize) r.fail(`${dataBlocks} data blocks`);
  const fileId = r.u32();
  const flags = r.u32();
  const generation = r.u64();
  const createdAtMs = r.u64();
  const checkpointSeq = r.u64();
  const checkpointWallMs = r.u64();
  const baseSeq = r.u64();
  const tracksLength = r.u32();
  if (HEADER_FIXED_BYTES + tracksLength + 4 > blockSize) r.fail(`track list of ${tracksLength} bytes overruns the header block`);
  const tracksReader = r.sub(tracksLength);
  const end = start + HEADER_FIXED_BYTES + tracksLength;
  const stored = r.u32();
  const actual = crc32(buf, start, end);
  if (stored !== actual) {
    throw new MalformedInputError(FORMAT, end, `header CRC 0x${stored.toString(16)} does not match 0x${actual.toString(16)}`);
  }
  const tracks = parseTracks(tracksReader);
  if (tracksReader.remaining !== 0) tracksReader.fail(`${tracksReader.remaining} stray bytes after the track list`);
  if (baseSeq > checkpointSeq) r.fail(`base seq ${baseSeq} after checkpoint seq ${checkpointSeq}`);
  return {
    version,
    blockSize,
    headerBlocks,
    dataBlocks,
    fileId,
    generation,
    createdAtMs,
    checkpointSeq,
    checkpointWallMs,
    baseSeq,
    tracks,
    tracksOmitted: (flags & 1) !== 0,
  };
}

// ---- blocks ----

export interface BlockHeader {
  readonly seq: number;
  readonly fileId: number;
  /** Bytes of the record stream in this block (less than the capacity only for a partial block). */
  readonly payloadLength: number;
  /** Offset from the block start of the first record that starts here; 0: none starts here. */
  readonly firstRecordOffset: number;
  /** Offset from the block start of the first join point that starts here; 0: none. */
  readonly keyOffset: number;
  readonly flags: number;
  /** File-clock DTS (90 kHz) of the first record starting here, carried from the previous block if none. */
  readonly dts90k: number;
  /** Wall-clock ms at which that frame reached the feed (carried like dts90k). */
  readonly wallMs: number;
  /** DTS and wall-clock ms of the join point at keyOffset (0 when there is none). */
  readonly keyDts90k: number;
  readonly keyWallMs: number;
  /** Blocks back to the nearest earlier block with a join point (NO_KEY_BACK: none known). */
  readonly keyBack: number;
}

export const NO_KEY_BACK = 0xffff_ffff;

/**
 * Block header, 64 bytes:
 *   0 u32 magic "FCBK" · 4 u32 CRC-32 of bytes [8, blockSize) · 8 u64 seq · 16 u32 file id ·
 *   20 u16 payload length · 22 u16 first record offset · 24 u16 key offset · 26 u16 flags ·
 *   28 u32 key back (blocks back to the nearest earlier block with a join point; 0xFFFFFFFF: none) · 32 i64 dts90k · 40 u64 wall ms · 48 i64 key dts90k · 56 u64 key wall ms
 * then the payload: a slice of the record stream.
 */
export function writeBlockHeader(block: Buffer, h: BlockHeader): void {
  block.writeUInt32BE(BLOCK_MAGIC, 0);
  writeU64(block, 8, h.seq);
  block.writeUInt32BE(h.fileId >>> 0, 16);
  block.writeUInt16BE(h.payloadLength, 20);
  block.writeUInt16BE(h.firstRecordOffset, 22);
  block.writeUInt16BE(h.keyOffset, 24);
  block.writeUInt16BE(h.flags, 26);
  block.writeUInt32BE(h.keyBack >>> 0, 28);
  writeI64(block, 32, h.dts90k);
  writeU64(block, 40, h.wallMs);
  writeI64(block, 48, h.keyDts90k);
  writeU64(block, 56, h.keyWallMs);
  block.writeUInt32BE(crc32(block, 8, block.length), 4);
}

/**
 * Parses and checks the block at buf[start, start+blockSize): magic, CRC, field ranges. `absOffset`
 * is where it lies in the file, for messages. Throws MalformedInputError.
 */
export function parseBlock(buf: Buffer, start: number, blockSize: number, absOffset = start): BlockHeader {
  if (start < 0 || start + blockSize > buf.length) {
    throw new MalformedInputError(
      FORMAT,
      absOffset,
      `block of ${blockSize} bytes cut short (${Math.max(0, buf.length - start)} bytes)`,
    );
  }
  const r = new ByteReader(buf, FORMAT, start, start + BLOCK_HEADER_BYTES);
  const magic = r.u32();
  if (magic !== BLOCK_MAGIC) throw new MalformedInputError(FORMAT, absOffset, `no block magic (0x${magic.toString(16)})`);
  const stored = r.u32();
  const actual = crc32(buf, start + 8, start + blockSize);
  if (stored !== actual) {
    throw new MalformedInputError(
      FORMAT,
      absOffset,
      `block CRC 0x${stored.toString(16)} does not match 0x${actual.toString(16)}`,
    );
  }
  const seq = r.u64();
  const fileId = r.u32();
  const payloadLength = r.u16();
  const firstRecordOffset = r.u16();
  const keyOffset = r.u16();
  const flags = r.u16();
  const keyBack = r.u32();
  const dts90k = readI64(r);
  const wallMs = r.u64();
  const keyDts90k = readI64(r);
  const keyWallMs = r.u64();
  const end = BLOCK_HEADER_BYTES + payloadLength;
  if (end > blockSize)
    throw new MalformedInputError(FORMAT, absOffset + 20, `payload length ${payloadLength} overruns the block`);
  for (const [name, off] of [
    ['first record offset', firstRecordOffset],
    ['key offset', keyOffset],
  ] as const) {
    if (off !== 0 && (off < BLOCK_HEADER_BYTES || off >= end)) {
      throw new MalformedInputError(FORMAT, absOffset, `${name} ${off} outside the payload ${BLOCK_HEADER_BYTES}..${end}`);
    }
  }
  if (((flags & BlockFlag.key) !== 0) !== (keyOffset !== 0)) {
    throw new MalformedInputError(FORMAT, absOffset + 26, `key flag and key offset ${keyOffset} disagree`);
  }
  if (keyOffset !== 0 && keyOffset < firstRecordOffset) {
    throw new MalformedInputError(FORMAT, absOffset + 24, `key offset ${keyOffset} before the first record ${firstRecordOffset}`);
  }
  if (keyBack === 0 || (keyBack !== NO_KEY_BACK && keyBack > seq)) {
    throw new MalformedInputError(FORMAT, absOffset + 28, `key back ${keyBack} from block ${seq}`);
  }
  return { seq, fileId, payloadLength, firstRecordOffset, keyOffset, flags, dts90k, wallMs, keyDts90k, keyWallMs, keyBack };
}

// ---- records ----

/** What one record of the stream is: a frame, or the track list (at join points and changes). */
export type FeedRecord =
  | { readonly type: typeof RecordType.frame; readonly frame: Frame }
  | {
      readonly type: typeof RecordType.tracks;
      readonly tracks: readonly Track[];
      /** A join point: the next frame is a keyframe a reader can start at. */
      readonly join: boolean;
      readonly dts90k: number;
      readonly wallMs: number;
    };

/**
 * Record header, 20 bytes: 0 u8 type (1 frame, 2 tracks) · 1 u8 track id · 2 u8 flags (frame:
 * 1 keyframe; tracks: 1 join point) · 3 u8 reserved · 4 u32 payload length · 8 i64 dts90k ·
 * 16 u32 pts − dts. A tracks record's payload is u64 wall ms + the track list.
 */
export function encodeRecordHeader(
  type: RecordType,
  trackId: number,
  flags: number,
  payloadLength: number,
  dts90k: number,
  ptsOffset90k: number,
): Buffer {
  const b = Buffer.alloc(RECORD_HEADER_BYTES);
  b.writeUInt8(type, 0);
  b.writeUInt8(trackId & 0xff, 1);
  b.writeUInt8(flags, 2);
  b.writeUInt32BE(payloadLength, 4);
  writeI64(b, 8, dts90k);
  b.writeUInt32BE(Math.max(0, Math.min(0xffff_ffff, ptsOffset90k)), 16);
  return b;
}

/** The bytes of a tracks record: header and payload, ready to append. */
export function encodeTracksRecord(tracks: readonly Track[], join: boolean, dts90k: number, wallMs: number): Buffer[] {
  const list = encodeTracks(tracks);
  const payload = Buffer.alloc(8 + list.length);
  writeU64(payload, 0, wallMs);
  list.copy(payload, 8);
  return [encodeRecordHeader(RecordType.tracks, 0, join ? 1 : 0, payload.length, dts90k, 0), payload];
}

export function encodeFrameRecord(frame: Frame, fileDts90k: number): Buffer[] {
  return [
    encodeRecordHeader(
      RecordType.frame,
      frame.trackId,
      frame.keyframe ? 1 : 0,
      frame.data.length,
      fileDts90k,
      frame.pts90k - frame.dts90k,
    ),
    frame.data,
  ];
}

/** Decodes a record from its 20-byte header and its payload. Throws MalformedInputError. */
export function decodeRecord(header: Buffer, payload: Buffer, offset: number): FeedRecord {
  const r = new ByteReader(header, FORMAT);
  const type = r.u8();
  const trackId = r.u8();
  const flags = r.u8();
  r.skip(5);
  const dts90k = readI64(r);
  const ptsOffset = r.u32();
  if (type === RecordType.frame) {
    if (flags & ~1) throw new MalformedInputError(FORMAT, offset, `frame record flags 0x${flags.toString(16)}`);
    return {
      type,
      frame: { trackId, dts90k, pts90k: dts90k + ptsOffset, keyframe: (flags & 1) !== 0, data: payload },
    };
  }
  if (type === RecordType.tracks) {
    const p = new ByteReader(payload, FORMAT);
    const wallMs = p.u64();
    const tracks = parseTracks(p);
    if (p.remaining !== 0) throw new MalformedInputError(FORMAT, offset, `${p.remaining} stray bytes after a track list`);
    return { type, tracks, join: (flags & 1) !== 0, dts90k, wallMs };
  }
  throw new MalformedInputError(FORMAT, offset, `unknown record type ${type}`);
}

/**
 * Reassembles records from block payload slices. `start(slice)` begins at a record boundary,
 * `append(slice)` continues the same byte stream, `next()` returns a complete record or
 * undefined when it needs more bytes. A record header that makes no sense throws
 * MalformedInputError; the caller clears the assembler and resynchronizes at a later block.
 */
export class RecordAssembler {
  private slices: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  private synced = false;
  private readonly maxRecordBytes: number;

  constructor(maxRecordBytes = MAX_RECORD_BYTES) {
    this.maxRecordBytes = maxRecordBytes;
  }

  /** Whether the assembler is at a known record boundary (start() was called and nothing broke). */
  get isSynced(): boolean {
    return this.synced;
  }

  /** Bytes held that do not make a complete record yet. */
  get pendingBytes(): number {
    return this.buffered;
  }

  start(slice: Buffer): void {
    this.slices = slice.length > 0 ? [slice] : [];
    this.head = 0;
    this.buffered = slice.length;
    this.synced = true;
  }

  append(slice: Buffer): void {
    if (!this.synced || slice.length === 0) return;
    this.slices.push(slice);
    this.buffered += slice.length;
  }

  clear(): void {
    this.slices = [];
    this.head = 0;
    this.buffered = 0;
    this.synced = false;
  }

  next(offsetForErrors = 0): FeedRecord | undefined {
    if (!this.synced || this.buffered < RECORD_HEADER_BYTES) return undefined;
    const header = this.peek(RECORD_HEADER_BYTES);
    const type = header[0];
    const length = header.readUInt32BE(4);
    if (type !== RecordType.frame && type !== RecordType.tracks) {
      this.clear();
      throw new MalformedInputError(FORMAT, offsetForErrors, `unknown record type ${String(type)}`);
    }
    if (length > this.maxRecordBytes) {
      this.clear();
      throw new MalformedInputError(FORMAT, offsetForErrors, `record of ${length} bytes (limit ${this.maxRecordBytes})`);
    }
    if (this.buffered < RECORD_HEADER_BYTES + length) return undefined;
    this.take(RECORD_HEADER_BYTES);
    const payload = this.take(length);
    try {
      return decodeRecord(header, payload, offsetForErrors);
    } catch (err) {
      this.clear();
      throw err;
    }
  }

  /** The next n bytes without consuming them (a copy when they span slices). */
  private peek(n: number): Buffer {
    const first = this.slices[0];
    if (first !== undefined && first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let head = this.head;
    for (const s of this.slices) {
      const got = s.copy(out, filled, head, Math.min(s.length, head + n - filled));
      filled += got;
      head = 0;
      if (filled === n) break;
    }
    return out;
  }

  /** Consumes n bytes: a view when they lie in one slice, else one copy. */
  private take(n: number): Buffer {
    const first = this.slices[0];
    let out: Buffer;
    if (first !== undefined && first.length - this.head >= n) {
      out = first.subarray(this.head, this.head + n);
      this.advance(n);
      return out;
    }
    out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const s = this.slices[0];
      if (s === undefined) throw new MalformedInputError(FORMAT, 0, 'record assembler ran dry (internal)');
      const got = s.copy(out, filled, this.head, Math.min(s.length, this.head + n - filled));
      filled += got;
      this.advance(got);
    }
    return out;
  }

  private advance(n: number): void {
    this.buffered -= n;
    this.head += n;
    while (this.slices.length > 0 && this.head >= (this.slices[0] as Buffer).length) {
      this.head -= (this.slices[0] as Buffer).length;
      this.slices.shift();
    }
  }
}

// ---- block encoder ----

export interface RecordMeta {
  /** File-clock DTS and wall time of the record (for block headers). */
  readonly dts90k: number;
  readonly wallMs: number;
  /** The record begins a join point. */
  readonly join: boolean;
}

/**
 * Lays records out in blocks: fills the current block, spills into the next, and finishes each
 * full block (header + CRC). Pure: the writer decides when to write what it returns.
 */
export class BlockEncoder {
  readonly geometry: Geometry;
  readonly fileId: number;
  private block: Buffer;
  private seq: number;
  private used = 0;
  private firstRecordOffset = 0;
  private keyOffset = 0;
  private flags: number;
  private dts90k = 0;
  private wallMs = 0;
  private keyDts90k = 0;
  private keyWallMs = 0;
  private lastKeySeq: number | undefined;

  constructor(geometry: Geometry, fileId: number, firstSeq: number, last?: { dts90k: number; wallMs: number }) {
    this.geometry = geometry;
    this.fileId = fileId;
    this.seq = firstSeq;
    this.block = Buffer.alloc(geometry.blockSize);
    this.flags = BlockFlag.discontinuity;
    if (last !== undefined) {
      this.dts90k = last.dts90k;
      this.wallMs = last.wallMs;
    }
  }

  /** Sequence number of the block being filled. */
  get currentSeq(): number {
    return this.seq;
  }
  /** Payload bytes in the block being filled. */
  get currentLength(): number {
    return this.used;
  }

  /** Appends one record (its byte pieces); returns the blocks it completed. */
  append(pieces: readonly Buffer[], meta: RecordMeta): Buffer[] {
    const done: Buffer[] = [];
    const capacity = payloadCapacity(this.geometry);
    if (this.used === capacity) done.push(this.finish());
    const at = BLOCK_HEADER_BYTES + this.used;
    if (this.firstRecordOffset === 0) {
      this.firstRecordOffset = at;
      this.dts90k = meta.dts90k;
      this.wallMs = meta.wallMs;
    }
    if (meta.join && this.keyOffset === 0) {
      this.keyOffset = at;
      this.keyDts90k = meta.dts90k;
      this.keyWallMs = meta.wallMs;
      this.flags |= BlockFlag.key;
    }
    for (const piece of pieces) {
      let off = 0;
      while (off < piece.length) {
        if (this.used === capacity) done.push(this.finish());
        const n = Math.min(capacity - this.used, piece.length - off);
        piece.copy(this.block, BLOCK_HEADER_BYTES + this.used, off, off + n);
        this.used += n;
        off += n;
      }
    }
    if (this.used === capacity) done.push(this.finish());
    return done;
  }

  /** A finished copy of the block being filled (for a timed flush); undefined when it is empty. */
  snapshot(): Buffer | undefined {
    if (this.used === 0) return undefined;
    const copy = Buffer.from(this.block);
    writeBlockHeader(copy, this.header());
    return copy;
  }

  private header(): BlockHeader {
    return {
      seq: this.seq,
      fileId: this.fileId,
      payloadLength: this.used,
      firstRecordOffset: this.firstRecordOffset,
      keyOffset: this.keyOffset,
      flags: this.flags,
      dts90k: this.dts90k,
      wallMs: this.wallMs,
      keyDts90k: this.keyDts90k,
      keyWallMs: this.keyWallMs,
      keyBack: this.lastKeySeq === undefined ? NO_KEY_BACK : Math.min(this.seq - this.lastKeySeq, NO_KEY_BACK - 1),
    };
  }

  private finish(): Buffer {
    const full = this.block;
    full.fill(0, BLOCK_HEADER_BYTES + this.used);
    writeBlockHeader(full, this.header());
    if (this.keyOffset !== 0) this.lastKeySeq = this.seq;
    this.block = Buffer.alloc(this.geometry.blockSize);
    this.seq++;
    this.used = 0;
    this.firstRecordOffset = 0;
    this.keyOffset = 0;
    this.flags = 0;
    this.keyDts90k = 0;
    this.keyWallMs = 0;
    return full;
  }
}
