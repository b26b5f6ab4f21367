// Enhanced RTMP v2 (Veovera, "Enhanced Audio", "Enhanced Video", "Multitrack Streaming"): the
// ExAudioTagHeader and ExVideoTagHeader after their first byte, with ModEx prefixes and Multitrack
// bodies (OneTrack, ManyTracks, ManyTracksManyCodecs). Record parsers: pure, throw
// MalformedInputError; writers fill a ByteWriter.

import type { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';

/** AvMultitrackType: the UB[4] after a Multitrack packet type. */
export const FlvMultitrackType = { oneTrack: 0, manyTracks: 1, manyTracksManyCodecs: 2 } as const;

/** [Audio|Video]PacketModExType. */
export const FlvModExType = { timestampOffsetNano: 0 } as const;

/** The packet type values shared by audio and video that change how the header is read. */
const VIDEO_MULTITRACK = 6;
const AUDIO_MULTITRACK = 5;
const MOD_EX = 7;
const VIDEO_METADATA = 4;
const VIDEO_CODED_FRAMES = 1;
const FRAME_TYPE_COMMAND = 5;

export interface FlvExVideoTag {
  enhanced: true;
  frameType: number;
  /** VideoPacketType, after any ModEx and Multitrack wrapping. */
  packetType: number;
  /** 'avc1', 'hvc1', 'av01', 'vp09', 'vp08'; '' for command frames. */
  fourCc: string;
  /** CompositionTimeOffset (SI24, ms) of CodedFrames for avc1/hvc1/vvc1; 0 otherwise. */
  compositionTimeMs: number;
  /** videoTrackId, when the tag came in (or goes out as) a Multitrack packet. */
  trackId?: number;
  /** ModEx TimestampOffsetNano (ns added to the message time), when the publisher sent one. */
  timestampOffsetNs?: number;
  data: Buffer;
}

export interface FlvExAudioTag {
  enhanced: true;
  /** AudioPacketType, after any ModEx and Multitrack wrapping. */
  packetType: number;
  /** 'mp4a', 'Opus', '.mp3', 'ac-3', 'ec-3', 'fLaC'. */
  fourCc: string;
  /** audioTrackId, when the tag came in (or goes out as) a Multitrack packet. */
  trackId?: number;
  timestampOffsetNs?: number;
  data: Buffer;
}

/**
 * ExVideoTagHeader after its first byte (UB[1] IsExHeader | UB[3] FrameType | UB[4] PacketType):
 *   while PacketType == ModEx: u8 size-1 [u16 size-1 if 255], size bytes, UB[4] ModExType | UB[4] PacketType
 *     (TimestampOffsetNano: the first 3 bytes are a u24 of nanoseconds)
 *   if FrameType == Command and PacketType != Metadata: u8 VideoCommand (no FourCC, no body)
 *   else if PacketType == Multitrack: UB[4] AvMultitrackType | UB[4] PacketType,
 *     FourCC unless ManyTracksManyCodecs; then per track: [FourCC if ManyTracksManyCodecs]
 *     u8 trackId [u24 size of the track's body unless OneTrack] body
 *   else FourCC, body
 *   body: SI24 CompositionTimeOffset if CodedFrames of avc1/hvc1/vvc1, then the data.
 * Returns one tag per track.
 */
export function parseFlvExVideoTags(r: ByteReader, firstByte: number): FlvExVideoTag[] {
  const frameType = (firstByte >> 4) & 0x07;
  const { packetType, timestampOffsetNs } = readModEx(r, firstByte & 0x0f);
  const extra = timestampOffsetNs === undefined ? {} : { timestampOffsetNs };
  if (frameType === FRAME_TYPE_COMMAND && packetType !== VIDEO_METADATA) {
    return [{ enhanced: true, frameType, packetType, fourCc: '', compositionTimeMs: 0, ...extra, data: r.rest() }];
  }
  const body = (br: ByteReader, type: number, fourCc: string, trackId?: number): FlvExVideoTag => {
    const compositionTimeMs = exVideoHasCompositionTime(type, fourCc) ? br.i24() : 0;
    const id = trackId === undefined ? {} : { trackId };
    return { enhanced: true, frameType, packetType: type, fourCc, compositionTimeMs, ...id, ...extra, data: br.rest() };
  };
  if (packetType !== VIDEO_MULTITRACK) return [body(r, packetType, readFourCc(r))];
  return readMultitrack(r, VIDEO_MULTITRACK, 'video', body);
}

/** ExAudioTagHeader after its first byte (UB[4] 9 | UB[4] AudioPacketType), as parseFlvExVideoTags (no command, no CompositionTime). */
export function parseFlvExAudioTags(r: ByteReader, firstByte: number): FlvExAudioTag[] {
  const { packetType, timestampOffsetNs } = readModEx(r, firstByte & 0x0f);
  const extra = timestampOffsetNs === undefined ? {} : { timestampOffsetNs };
  const body = (br: ByteReader, type: number, fourCc: string, trackId?: number): FlvExAudioTag => {
    const id = trackId === undefined ? {} : { trackId };
    return { enhanced: true, packetType: type, fourCc, ...id, ...extra, data: br.rest() };
  };
  if (packetType !== AUDIO_MULTITRACK) return [body(r, packetType, readFourCc(r))];
  return readMultitrack(r, AUDIO_MULTITRACK, 'audio', body);
}

function readModEx(r: ByteReader, first: number): { packetType: number; timestampOffsetNs: number | undefined } {
  let packetType = first;
  let timestampOffsetNs: number | undefined;
  while (packetType === MOD_EX) {
    let size = r.u8() + 1;
    if (size === 256) size = r.u16() + 1;
    const data = r.bytes(size);
    const b = r.u8();
    packetType = b & 0x0f;
    if (b >> 4 === FlvModExType.timestampOffsetNano) {
      if (size < 3) r.fail(`ModEx TimestampOffsetNano has ${size} bytes of data (at least 3)`);
      timestampOffsetNs = data.readUIntBE(0, 3);
    }
    // Other ModEx types are not defined yet: their data is skipped (the size bounds it).
  }
  return { packetType, timestampOffsetNs };
}

function readMultitrack<T>(
  r: ByteReader,
  multitrackValue: number,
  kind: string,
  body: (r: ByteReader, packetType: number, fourCc: string, trackId: number) => T,
): T[] {
  const b = r.u8();
  const multitrackType = b >> 4;
  const packetType = b & 0x0f;
  if (packetType === multitrackValue || packetType === MOD_EX) {
    r.pos--;
    r.fail(`${kind} Multitrack packet wraps packet type ${packetType}`);
  }
  if (multitrackType > FlvMultitrackType.manyTracksManyCodecs) {
    r.pos--;
    r.fail(`unknown ${kind} AvMultitrackType ${multitrackType}`);
  }
  const manyCodecs = multitrackType === FlvMultitrackType.manyTracksManyCodecs;
  let fourCc = manyCodecs ? '' : readFourCc(r);
  if (multitrackType === FlvMultitrackType.oneTrack) {
    const trackId = r.u8();
    return [body(r, packetType, fourCc, trackId)];
  }
  const out: T[] = [];
  do {
    if (manyCodecs) fourCc = readFourCc(r);
    const trackId = r.u8();
    out.push(body(r.sub(r.u24()), packetType, fourCc, trackId));
  } while (r.remaining > 0);
  return out;
}

function readFourCc(r: ByteReader): string {
  return r.bytes(4).toString('latin1');
}

export function exVideoHasCompositionTime(packetType: number, fourCc: string): boolean {
  return packetType === VIDEO_CODED_FRAMES && (fourCc === 'avc1' || fourCc === 'hvc1' || fourCc === 'vvc1');
}

// --- writing --------------------------------------------------------------------------------

function modExSize(tag: { timestampOffsetNs?: number }): number {
  return tag.timestampOffsetNs === undefined ? 0 : 1 + 3 + 1;
}

/** A TimestampOffsetNano ModEx prefix (3 bytes of data), then the next packet type. */
function writeModEx(w: ByteWriter, tag: { timestampOffsetNs?: number }, next: number): void {
  if (tag.timestampOffsetNs === undefined) return;
  w.u8(2).u24(Math.max(0, Math.min(999_999, Math.round(tag.timestampOffsetNs))));
  w.u8((FlvModExType.timestampOffsetNano << 4) | next);
}

function videoBodySize(tag: FlvExVideoTag): number {
  return (exVideoHasCompositionTime(tag.packetType, tag.fourCc) ? 3 : 0) + tag.data.length;
}

function writeVideoBody(w: ByteWriter, tag: FlvExVideoTag): void {
  if (exVideoHasCompositionTime(tag.packetType, tag.fourCc)) w.i24(clampI24(tag.compositionTimeMs));
  w.bytes(tag.data);
}

/** Bytes of one enhanced video tag body (header byte included); a trackId makes it a OneTrack Multitrack packet. */
export function flvExVideoTagSize(tag: FlvExVideoTag): number {
  const command = tag.fourCc === '' ? 0 : 4;
  const multitrack = tag.trackId === undefined ? 0 : 2;
  return 1 + modExSize(tag) + multitrack + command + videoBodySize(tag);
}

export function writeFlvExVideoTag(w: ByteWriter, tag: FlvExVideoTag): void {
  const inner = tag.trackId === undefined ? tag.packetType : VIDEO_MULTITRACK;
  const first = tag.timestampOffsetNs === undefined ? inner : MOD_EX;
  w.u8(0x80 | ((tag.frameType & 0x07) << 4) | (first & 0x0f));
  writeModEx(w, tag, inner);
  if (tag.trackId !== undefined) w.u8((FlvMultitrackType.oneTrack << 4) | (tag.packetType & 0x0f));
  if (tag.fourCc !== '') writeFourCc(w, tag.fourCc);
  if (tag.trackId !== undefined) w.u8(tag.trackId & 0xff);
  writeVideoBody(w, tag);
}

export function flvExAudioTagSize(tag: FlvExAudioTag): number {
  const multitrack = tag.trackId === undefined ? 0 : 2;
  return 1 + modExSize(tag) + multitrack + 4 + tag.data.length;
}

export function writeFlvExAudioTag(w: ByteWriter, tag: FlvExAudioTag): void {
  const inner = tag.trackId === undefined ? tag.packetType : AUDIO_MULTITRACK;
  const first = tag.timestampOffsetNs === undefined ? inner : MOD_EX;
  w.u8((9 << 4) | (first & 0x0f));
  writeModEx(w, tag, inner);
  if (tag.trackId !== undefined) w.u8((FlvMultitrackType.oneTrack << 4) | (tag.packetType & 0x0f));
  writeFourCc(w, tag.fourCc);
  if (tag.trackId !== undefined) w.u8(tag.trackId & 0xff);
  w.bytes(tag.data);
}

/**
 * Several tracks in one Multitrack audio tag body: ManyTracks when they share a FourCC, else
 * ManyTracksManyCodecs. Every tag must have the same packet type and a trackId.
 */
export function encodeFlvExAudioTracks(tags: readonly FlvExAudioTag[]): Buffer {
  return encodeTracks(
    tags,
    AUDIO_MULTITRACK,
    9 << 4,
    (t) => t.data.length,
    (w, t) => w.bytes(t.data),
  );
}

/** Several tracks in one Multitrack video tag body (frame type from the first), as encodeFlvExAudioTracks. */
export function encodeFlvExVideoTracks(tags: readonly FlvExVideoTag[]): Buffer {
  const frameType = tags[0]?.frameType ?? 1;
  return encodeTracks(tags, VIDEO_MULTITRACK, 0x80 | ((frameType & 0x07) << 4), videoBodySize, writeVideoBody);
}

function encodeTracks<T extends { packetType: number; fourCc: string; trackId?: number; data: Buffer }>(
  tags: readonly T[],
  multitrackValue: number,
  firstByteHigh: number,
  bodySize: (t: T) => number,
  writeBody: (w: ByteWriter, t: T) => void,
): Buffer {
  const first = tags[0];
  if (first === undefined) throw new Error('flv: a Multitrack tag needs at least one track');
  const manyCodecs = tags.some((t) => t.fourCc !== first.fourCc);
  let size = 2 + (manyCodecs ? 0 : 4);
  for (const t of tags) size += (manyCodecs ? 4 : 0) + 1 + 3 + bodySize(t);
  const w = new ByteWriter(size);
  w.u8(firstByteHigh | multitrackValue);
  w.u8(((manyCodecs ? FlvMultitrackType.manyTracksManyCodecs : FlvMultitrackType.manyTracks) << 4) | first.packetType);
  if (!manyCodecs) writeFourCc(w, first.fourCc);
  for (const t of tags) {
    if (t.packetType !== first.packetType) throw new Error('flv: the tracks of a Multitrack tag share one packet type');
    if (manyCodecs) writeFourCc(w, t.fourCc);
    w.u8((t.trackId ?? 0) & 0xff);
    w.u24(bodySize(t));
    writeBody(w, t);
  }
  return w.done();
}

export function writeFourCc(w: ByteWriter, fourCc: string): void {
  w.bytes(Buffer.from(fourCc.padEnd(4, ' ').slice(0, 4), 'latin1'));
}

export function clampI24(v: number): number {
  return Math.max(-0x80_0000, Math.min(0x7f_ffff, Math.round(v)));
}
