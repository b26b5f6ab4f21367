// Reading back the fragmented MP4 files Feedcast writes (recordings): box headers (ISO/IEC 14496-12
// 4.2), the tracks of a moov (tkhd 8.3.2, mdhd 8.4.2, hdlr 8.4.3, stsd 8.5.2), the samples of a
// moof (tfhd 8.8.7, tfdt 8.8.12, trun 8.8.8) and the producer reference time (prft 8.16.5).
// Record parsers: a complete box in, a value out, MalformedInputError on anything else.

import { MalformedInputError } from '../../errors.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { fullBox, type Box } from './box.js';

const FORMAT = 'mp4';
/** Samples one trun may declare. */
const MAX_TRUN_SAMPLES = 1_000_000;

/** Seconds from 1900-01-01 (NTP epoch) to 1970-01-01. */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

function malformed(offset: number, detail: string): never {
  throw new MalformedInputError(FORMAT, offset, detail);
}

export interface BoxHeader {
  type: string;
  /** Bytes of the whole box, header included. */
  size: number;
  /** Bytes of the header (8, or 16 with a 64-bit size). */
  headerSize: number;
}

/**
 *  aligned(8) class Box { unsigned int(32) size; unsigned int(32) type;
 *    if (size == 1) unsigned int(64) largesize; }
 * From the first bytes of a box (8, or 16 for a large size): undefined when more are needed.
 * size 0 ("to the end of the file") is refused: Feedcast never writes it.
 */
export function parseBoxHeader(buf: Buffer, offset = 0): BoxHeader | undefined {
  if (buf.length - offset < 8) return undefined;
  const r = new ByteReader(buf, FORMAT, offset);
  const size32 = r.u32();
  const type = r.bytes(4).toString('latin1');
  if (!/^[\x20-\x7e]{4}$/.test(type)) r.fail(`box type ${JSON.stringify(type)} is not printable`);
  if (size32 === 1) {
    if (r.remaining < 8) return undefined;
    const size = r.u64();
    if (size < 16) r.fail(`box ${type} declares a 64-bit size of ${size}`);
    return { type, size, headerSize: 16 };
  }
  if (size32 < 8) r.fail(`box ${type} declares a size of ${size32}`);
  return { type, size: size32, headerSize: 8 };
}

/** The children of a container box's payload [start, end), each as a bounded reader positioned after its header. */
function children(buf: Buffer, start: number, end: number): { type: string; r: ByteReader; start: number; end: number }[] {
  const out: { type: string; r: ByteReader; start: number; end: number }[] = [];
  let at = start;
  while (at < end) {
    const h = parseBoxHeader(buf.subarray(0, end), at);
    if (h === undefined) malformed(at, 'truncated box header');
    if (at + h.size > end) malformed(at, `box ${h.type} of ${h.size} bytes overruns its parent`);
    out.push({ type: h.type, r: new ByteReader(buf, FORMAT, at + h.headerSize, at + h.size), start: at, end: at + h.size });
    at += h.size;
  }
  return out;
}

function child(buf: Buffer, start: number, end: number, type: string): { r: ByteReader; start: number; end: number } {
  const c = children(buf, start, end).find((x) => x.type === type);
  if (c === undefined) malformed(start, `no ${type} box`);
  return c;
}

export interface Mp4TrackInfo {
  trackId: number;
  kind: 'video' | 'audio' | 'other';
  timescale: number;
  width: number;
  height: number;
  /** The whole stsd box, as written (a progressive MP4 made of these samples reuses it). */
  stsd: Buffer;
}

/** The tracks of a moov box (the whole box, header included). */
export function parseMoov(buf: Buffer): Mp4TrackInfo[] {
  const top = parseBoxHeader(buf);
  if (top === undefined || top.type !== 'moov' || top.size > buf.length) malformed(0, 'not a complete moov box');
  const tracks: Mp4TrackInfo[] = [];
  for (const trak of children(buf, top.headerSize, top.size).filter((c) => c.type === 'trak')) {
    const tkhd = child(buf, trak.r.pos, trak.end, 'tkhd').r;
    const version = tkhd.u8();
    tkhd.skip(3 + (version === 1 ? 16 : 8)); // flags, creation/modification times
    const trackId = tkhd.u32();
    tkhd.skip(4 + (version === 1 ? 8 : 4) + 8 + 8 + 36); // reserved, duration, reserved, layer..volume, matrix
    const width = Math.round(tkhd.u32() / 0x10000);
    const height = Math.round(tkhd.u32() / 0x10000);
    const mdia = child(buf, trak.r.pos, trak.end, 'mdia');
    const mdhd = child(buf, mdia.r.pos, mdia.end, 'mdhd').r;
    const mdhdVersion = mdhd.u8();
    mdhd.skip(3 + (mdhdVersion === 1 ? 16 : 8));
    const timescale = mdhd.u32();
    if (timescale === 0) mdhd.fail(`track ${trackId} has timescale 0`);
    const hdlr = child(buf, mdia.r.pos, mdia.end, 'hdlr').r;
    hdlr.skip(8); // version, flags, pre_defined
    const handler = hdlr.bytes(4).toString('latin1');
    const minf = child(buf, mdia.r.pos, mdia.end, 'minf');
    const stbl = child(buf, minf.r.pos, minf.end, 'stbl');
    const stsd = child(buf, stbl.r.pos, stbl.end, 'stsd');
    tracks.push({
      trackId,
      kind: handler === 'vide' ? 'video' : handler === 'soun' ? 'audio' : 'other',
      timescale,
      width,
      height,
      stsd: Buffer.from(buf.subarray(stsd.start, stsd.end)),
    });
  }
  return tracks;
}

export interface Mp4Sample {
  duration: number;
  size: number;
  /** pts - dts in the track's timescale. */
  compositionOffset: number;
  keyframe: boolean;
}

export interface TrackFragment {
  trackId: number;
  baseDecodeTime: number;
  /** Offset of the first sample's bytes from the start of the moof. */
  dataOffset: number;
  samples: Mp4Sample[];
}

/**
 * The track fragments of a moof box (the whole box), as Feedcast writes them: default-base-is-moof,
 * a tfdt, one trun with a data offset; per-sample values or the tfhd/trex defaults given.
 */
export function parseMoof(
  buf: Buffer,
  defaults: ReadonlyMap<number, { duration: number; size: number; flags: number }> = new Map(),
): TrackFragment[] {
  const top = parseBoxHeader(buf);
  if (top === undefined || top.type !== 'moof' || top.size > buf.length) malformed(0, 'not a complete moof box');
  const out: TrackFragment[] = [];
  for (const traf of children(buf, top.headerSize, top.size).filter((c) => c.type === 'traf')) {
    const parts = children(buf, traf.r.pos, traf.end);
    const tfhd = parts.find((p) => p.type === 'tfhd')?.r ?? traf.r.fail('traf without tfhd');
    const tfhdFlags = tfhd.u32() & 0xffffff;
    const trackId = tfhd.u32();
    const d = defaults.get(trackId) ?? { duration: 0, size: 0, flags: 0 };
    let { duration: defDuration, size: defSize, flags: defFlags } = d;
    if (tfhdFlags & 0x01) tfhd.skip(8); // base_data_offset: Feedcast uses default-base-is-moof
    if (tfhdFlags & 0x02) tfhd.skip(4); // sample_description_index
    if (tfhdFlags & 0x08) defDuration = tfhd.u32();
    if (tfhdFlags & 0x10) defSize = tfhd.u32();
    if (tfhdFlags & 0x20) defFlags = tfhd.u32();
    const tfdt = parts.find((p) => p.type === 'tfdt')?.r ?? traf.r.fail(`traf of track ${trackId} without tfdt`);
    const tfdtVersion = tfdt.u8();
    tfdt.skip(3);
    const baseDecodeTime = tfdtVersion === 1 ? tfdt.u64() : tfdt.u32();
    const trun = parts.find((p) => p.type === 'trun')?.r ?? traf.r.fail(`traf of track ${trackId} without trun`);
    const trunVersion = trun.u8();
    const trunFlags = trun.u24();
    const count = trun.u32();
    const perSample =
      (trunFlags & 0x100 ? 4 : 0) + (trunFlags & 0x200 ? 4 : 0) + (trunFlags & 0x400 ? 4 : 0) + (trunFlags & 0x800 ? 4 : 0);
    const dataOffset = trunFlags & 0x01 ? trun.u32() | 0 : 0;
    const firstFlags = trunFlags & 0x04 ? trun.u32() : undefined;
    if (count * perSample > trun.remaining) trun.fail(`trun declares ${count} samples, ${trun.remaining} bytes left`);
    // Without per-sample fields the count is not bounded by the box: a fragment (a GOP) never has this many.
    if (count > MAX_TRUN_SAMPLES) trun.fail(`trun declares ${count} samples, more than ${MAX_TRUN_SAMPLES}`);
    const samples: Mp4Sample[] = [];
    for (let i = 0; i < count; i++) {
      const duration = trunFlags & 0x100 ? trun.u32() : defDuration;
      const size = trunFlags & 0x200 ? trun.u32() : defSize;
      const flags = trunFlags & 0x400 ? trun.u32() : i === 0 && firstFlags !== undefined ? firstFlags : defFlags;
      const raw = trunFlags & 0x800 ? trun.u32() : 0;
      const compositionOffset = trunVersion === 1 ? raw | 0 : raw;
      samples.push({ duration, size, compositionOffset, keyframe: (flags & 0x00010000) === 0 });
    }
    out.push({ trackId, baseDecodeTime, dataOffset, samples });
  }
  return out;
}

export interface ProducerReferenceTime {
  trackId: number;
  /** Wall-clock time (ms since 1970) that `mediaTime` was captured at. */
  wallMs: number;
  /** In the reference track's timescale. */
  mediaTime: number;
}

/** prft v1 (8.16.5): reference_track_ID, ntp_timestamp (64-bit), media_time (64-bit). */
export function prftBox(p: ProducerReferenceTime): Box {
  const seconds = Math.floor(p.wallMs / 1000);
  const fraction = Math.floor(((p.wallMs - seconds * 1000) / 1000) * 0x1_0000_0000);
  return fullBox('prft', 1, 0, 20, (w) => {
    w.u32(p.trackId);
    w.u32(seconds + NTP_UNIX_OFFSET_S).u32(fraction);
    w.u64(p.mediaTime);
  });
}

/** A prft box (the whole box). */
export function parsePrft(buf: Buffer): ProducerReferenceTime {
  const top = parseBoxHeader(buf);
  if (top === undefined || top.type !== 'prft' || top.size > buf.length) malformed(0, 'not a complete prft box');
  const r = new ByteReader(buf, FORMAT, top.headerSize, top.size);
  const version = r.u8();
  r.skip(3);
  const trackId = r.u32();
  const seconds = r.u32() - NTP_UNIX_OFFSET_S;
  const fraction = r.u32();
  const mediaTime = version === 1 ? r.u64() : r.u32();
  return { trackId, wallMs: seconds * 1000 + Math.round((fraction / 0x1_0000_0000) * 1000), mediaTime };
}
