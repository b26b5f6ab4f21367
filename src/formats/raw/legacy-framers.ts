// Framers for the containers ffserver served to Windows Media, RealPlayer and Flash clients, as ffmpeg writes
// them to a pipe: ASF with MMS-over-HTTP framing from the asf_stream muxer ([MS-WMSP] 2.2.3, ASF spec 5.2), AVI
// (RIFF, OpenDML-less, sizes unknown), RealMedia (RMFF 1.0 packets) and SWF (SWF 10 spec ch. 2, tags). Each cuts
// the stream into a header and pieces, and finds join points from the container's key flags or the codec's
// picture type. "Not enough bytes yet" is a normal state; bad input throws MalformedInputError.

import { MalformedInputError } from '../../errors.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { Buffered, type RawFramer, type RawPiece } from './buffered.js';

// ---------------------------------------------------------------------------------------------
// Picture types of the video codecs these containers carry, from the first bytes of a coded picture.

/** Whether a coded picture of `codec` (a FourCC or ffmpeg codec name, any case) is a key picture. */
export function isKeyPicture(codec: string, data: Buffer): boolean {
  switch (codec.toLowerCase()) {
    case 'fmp4':
    case 'divx':
    case 'xvid':
    case 'dx50':
    case 'mp4v':
    case 'mpeg4': {
      // MPEG-4 Part 2 (14496-2 6.2.5): vop_start_code 00 00 01 B6, then vop_coding_type (2 bits), 0 = I.
      const at = data.indexOf(VOP_START);
      return at >= 0 && at + 4 < data.length && ((data[at + 4] ?? 0xff) & 0xc0) === 0;
    }
    case 'mp43':
    case 'div3':
    case 'mp42':
    case 'div2':
    case 'msmpeg4':
    case 'msmpeg4v2':
    case 'msmpeg4v3':
      // MS MPEG-4 v2/v3: the picture header starts with the picture type (2 bits), 0 = I.
      return data.length > 0 && ((data[0] ?? 0xff) & 0xc0) === 0;
    case 'flv1':
    case 'flv': {
      // Sorenson H.263: PSC (17 bits), version (5), temporal reference (8), size code (3), [size], type (2), 0 = I.
      if (data.length < 9 || data[0] !== 0 || data[1] !== 0 || ((data[2] ?? 0) & 0x80) === 0) return false;
      const bits = (start: number, count: number): number => {
        let v = 0;
        for (let i = start; i < start + count; i++) v = v * 2 + (((data[i >> 3] ?? 0) >> (7 - (i & 7))) & 1);
        return v;
      };
      const sizeCode = bits(30, 3);
      const typeAt = 33 + (sizeCode === 0 ? 16 : sizeCode === 1 ? 32 : 0);
      return bits(typeAt, 2) === 0;
    }
    case 'h264':
    case 'avc1':
    case 'x264': {
      // Annex B: an IDR slice (NAL type 5).
      for (let at = data.indexOf(NAL_START); at >= 0 && at + 3 < data.length; at = data.indexOf(NAL_START, at + 3)) {
        if (((data[at + 3] ?? 0) & 0x1f) === 5) return true;
      }
      return false;
    }
    case 'mpg1':
    case 'mpg2':
    case 'mpeg1video':
    case 'mpeg2video':
      return data.indexOf(SEQUENCE_HEADER) >= 0;
    default:
      // Intra-only codecs (MJPG ...) and codecs whose picture type is not known: every picture.
      return true;
  }
}

const VOP_START = Buffer.from([0, 0, 1, 0xb6]);
const NAL_START = Buffer.from([0, 0, 1]);
const SEQUENCE_HEADER = Buffer.from([0, 0, 1, 0xb3]);

// ---------------------------------------------------------------------------------------------
// ASF from asf_stream: every ASF unit is wrapped in an MMS-over-HTTP chunk ([MS-WMSP] 2.2.3.1):
//   type u16le ('$H' 0x4824 header, '$D' 0x4424 data, '$E' 0x4524 end), length u16le (payload + 8),
//   sequence u32le, flags u16le, length again u16le, then the payload.
// The framing is stripped: readers get plain ASF (Header Object + Data Object header, then fixed-size
// data packets), which VLC and ffmpeg play over HTTP. A packet is joinable when a video payload in it
// starts a key frame (ASF 5.2.3: stream number bit 7, offset into media object 0).

const MMS_HEADER = 0x4824;
const MMS_DATA = 0x4424;
const MMS_END = 0x4524;

// ASF GUIDs as stored (little-endian fields): Stream Properties Object and Video Media.
const GUID_STREAM_PROPERTIES = Buffer.from('9107dcb7b7a9cf118ee600c00c205365', 'hex');
const GUID_VIDEO_MEDIA = Buffer.from('c0ef19bc4d5bcf11a8fd00805f5c442b', 'hex');
const GUID_HEADER = Buffer.from('3026b2758e66cf11a6d900aa0062ce6c', 'hex');

/** Stream numbers of the video streams declared in an ASF Header Object (ASF 3.1, 3.3). */
export function asfVideoStreams(header: Buffer): Set<number> {
  const r = new ByteReader(header, 'asf');
  if (!r.bytes(16).equals(GUID_HEADER)) r.fail('expected the ASF Header Object');
  const size = r.u32le() + r.u32le() * 0x1_0000_0000;
  if (size < 30 || size > header.length) r.fail(`Header Object size ${size} does not fit the ${header.length}-byte header`);
  const count = r.u32le();
  r.skip(2);
  const objects = new ByteReader(header, 'asf', 30, size);
  const video = new Set<number>();
  for (let i = 0; i < count && objects.remaining > 0; i++) {
    const guid = objects.bytes(16);
    const objectSize = objects.u32le() + objects.u32le() * 0x1_0000_0000;
    if (objectSize < 24) objects.fail(`header object of ${objectSize} bytes`);
    const body = objects.sub(objectSize - 24);
    if (!guid.equals(GUID_STREAM_PROPERTIES)) continue;
    const streamType = body.bytes(16);
    body.skip(16 + 8 + 4 + 4); // error correction type, time offset, type-specific and EC data lengths
    const number = body.u16le() & 0x7f;
    if (streamType.equals(GUID_VIDEO_MEDIA)) video.add(number);
  }
  return video;
}

/** Reads a field of an ASF length type (0: absent, 1: byte, 2: word, 3: dword). */
function asfField(r: ByteReader, type: number): number {
  return type === 1 ? r.u8() : type === 2 ? r.u16le() : type === 3 ? r.u32le() : 0;
}

/**
 * Whether an ASF data packet (ASF 5.2) starts a key frame of a video stream (of any stream when
 * `video` is empty). Throws MalformedInputError when the packet's fields overrun it.
 */
export function asfPacketStartsKeyFrame(packet: Buffer, video: ReadonlySet<number>): boolean {
  const r = new ByteReader(packet, 'asf');
  let flags = r.u8();
  if ((flags & 0x80) !== 0) {
    r.skip(flags & 0x0f); // error correction data
    flags = r.u8();
  }
  const properties = r.u8();
  asfField(r, (flags >> 5) & 3); // packet length
  asfField(r, (flags >> 1) & 3); // sequence
  asfField(r, (flags >> 3) & 3); // padding length
  r.skip(6); // send time, duration
  const multiple = (flags & 1) !== 0;
  let count = 1;
  let lengthType = 0;
  if (multiple) {
    const payloadFlags = r.u8();
    count = payloadFlags & 0x3f;
    lengthType = payloadFlags >> 6;
  }
  for (let i = 0; i < count; i++) {
    const stream = r.u8();
    asfField(r, (properties >> 4) & 3); // media object number
    const offset = asfField(r, (properties >> 2) & 3);
    const replicated = asfField(r, properties & 3);
    r.skip(replicated);
    const length = multiple ? asfField(r, lengthType) : r.remaining;
    r.skip(length);
    const key = (stream & 0x80) !== 0;
    const isVideo = video.size === 0 || video.has(stream & 0x7f);
    if (key && isVideo && (offset === 0 || replicated === 1)) return true;
  }
  return false;
}

export class AsfStreamFramer extends Buffered implements RawFramer {
  private headerBytes: Buffer | undefined;
  private video = new Set<number>();

  constructor() {
    super('asf');
  }

  header(): Buffer | undefined {
    return this.headerBytes;
  }

  push(chunk: Buffer): RawPiece[] {
    this.append(chunk);
    const out: RawPiece[] = [];
    while (this.buf.length >= 12) {
      const type = this.buf.readUInt16LE(0);
      const length = this.buf.readUInt16LE(2);
      if (type !== MMS_HEADER && type !== MMS_DATA && type !== MMS_END) {
        throw new MalformedInputError('asf', this.base, `expected an MMS chunk ($H, $D or $E), found 0x${type.toString(16)}`);
      }
      if (length < 8 || this.buf.readUInt16LE(10) !== length) {
        throw new MalformedInputError('asf', this.base, `MMS chunk length ${length} does not match its copy`);
      }
      if (this.buf.length < 4 + length) break;
      const payload = this.take(4 + length).subarray(12);
      if (type === MMS_HEADER) {
        this.headerBytes = payload;
        try {
          this.video = asfVideoStreams(payload);
        } catch (err) {
          throw err instanceof MalformedInputError ? new MalformedInputError('asf', this.base, err.message) : err;
        }
      } else if (type === MMS_DATA) {
        if (this.headerBytes === undefined) throw new MalformedInputError('asf', this.base, 'data packet before the header');
        let joinable: boolean;
        try {
          joinable = asfPacketStartsKeyFrame(payload, this.video);
        } catch (err) {
          throw err instanceof MalformedInputError ? new MalformedInputError('asf', this.base, err.message) : err;
        }
        out.push({ data: payload, joinable });
      }
    }
    return out;
  }
}

/** A framer whose stream opens with a header every reader needs first: read once, then pieces. */
abstract class HeaderFirstFramer extends Buffered implements RawFramer {
  protected headerBytes: Buffer | undefined;

  header(): Buffer | undefined {
    return this.headerBytes;
  }

  push(chunk: Buffer): RawPiece[] {
    this.append(chunk);
    if (this.headerBytes === undefined && !this.readHeader()) return [];
    return this.pieces();
  }

  /** Cuts the header into `headerBytes`; false when more bytes are needed. */
  protected abstract readHeader(): boolean;

  /** The pieces completed in the buffer. */
  protected abstract pieces(): RawPiece[];
}

// ---------------------------------------------------------------------------------------------
// AVI (RIFF): 'RIFF' size 'AVI ', LIST 'hdrl' (avih, LIST 'strl' per stream: strh with fccType and
// fccHandler, strf), then LIST 'movi' whose chunks are 'NNdc'/'NNdb' video and 'NNwb' audio, each
// id, size u32le, data, padded to an even length. Written to a pipe, the sizes are never filled in,
// so the header is everything up to the 'movi' list type and each chunk after it is a piece.

const MAX_HEADER_BYTES = 1024 * 1024;

export class AviFramer extends HeaderFirstFramer {
  /** Stream index -> video codec FourCC (audio streams are absent). */
  private readonly videoCodecs = new Map<number, string>();

  constructor() {
    super('avi');
  }

  protected pieces(): RawPiece[] {
    const out: RawPiece[] = [];
    while (this.buf.length >= 8) {
      const id = this.buf.toString('latin1', 0, 4);
      if (id === 'LIST' || id === 'RIFF') {
        if (this.buf.length < 12) break;
        out.push({ data: this.take(12), joinable: false }); // 'rec ' lists, AVIX extensions: descend
        continue;
      }
      if (!/^[\x20-\x7e]{4}$/.test(id))
        throw new MalformedInputError('avi', this.base, `expected a chunk id, found ${this.buf.subarray(0, 4).toString('hex')}`);
      const size = this.buf.readUInt32LE(4);
      this.checkSize(size, `chunk '${id}'`);
      const total = 8 + size + (size & 1);
      if (this.buf.length < total) break;
      const data = this.take(total);
      const stream = /^\d\d/.test(id) ? Number(id.slice(0, 2)) : -1;
      const codec = this.videoCodecs.get(stream);
      const joinable =
        codec !== undefined
          ? (id.endsWith('dc') || id.endsWith('db')) && size > 0 && isKeyPicture(codec, data.subarray(8, 8 + size))
          : this.videoCodecs.size === 0 && id.endsWith('wb');
      out.push({ data, joinable });
    }
    return out;
  }

  /** Reads RIFF/hdrl up to the 'movi' list type; false when more bytes are needed. */
  protected readHeader(): boolean {
    const b = this.buf;
    if (b.length < 12) return false;
    if (b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'AVI ') {
      throw new MalformedInputError('avi', this.base, `expected RIFF....AVI , found ${b.subarray(0, 12).toString('hex')}`);
    }
    let at = 12;
    for (;;) {
      if (at > MAX_HEADER_BYTES)
        throw new MalformedInputError('avi', this.base + at, `no 'movi' list in the first ${MAX_HEADER_BYTES} bytes`);
      if (b.length < at + 12) return false;
      const id = b.toString('latin1', at, at + 4);
      const size = b.readUInt32LE(at + 4);
      if (id === 'LIST' && b.toString('latin1', at + 8, at + 12) === 'movi') {
        this.headerBytes = this.take(at + 12);
        return true;
      }
      if (size > MAX_HEADER_BYTES)
        throw new MalformedInputError('avi', this.base + at + 4, `header chunk '${id}' of ${size} bytes`);
      const total = 8 + size + (size & 1);
      if (b.length < at + total) return false;
      if (id === 'LIST' && b.toString('latin1', at + 8, at + 12) === 'hdrl') this.readStreams(b.subarray(at + 12, at + 8 + size));
      at += total;
    }
  }

  /** Finds the video streams (strh fccType 'vids') and their FourCC in a 'hdrl' list. */
  private readStreams(hdrl: Buffer): void {
    let index = 0;
    const r = new ByteReader(hdrl, 'avi');
    while (r.remaining >= 8) {
      const id = r.bytes(4).toString('latin1');
      const size = r.u32le();
      const body = r.sub(Math.min(size, r.remaining));
      if (size & 1 && r.remaining > 0) r.skip(1);
      if (id !== 'LIST' || body.remaining < 4 || body.bytes(4).toString('latin1') !== 'strl') continue;
      while (body.remaining >= 8) {
        const cid = body.bytes(4).toString('latin1');
        const csize = body.u32le();
        const data = body.sub(Math.min(csize, body.remaining));
        if (csize & 1 && body.remaining > 0) body.skip(1);
        if (cid === 'strh' && data.remaining >= 8) {
          const type = data.bytes(4).toString('latin1');
          const handler = data.bytes(4).toString('latin1');
          if (type === 'vids') this.videoCodecs.set(index, handler);
        } else if (cid === 'strf' && this.videoCodecs.has(index) && data.remaining >= 20) {
          data.skip(16); // BITMAPINFOHEADER: biSize, biWidth, biHeight, biPlanes, biBitCount
          const compression = data.bytes(4).toString('latin1');
          if (/^[\x20-\x7e]{4}$/.test(compression)) this.videoCodecs.set(index, compression);
        }
      }
      index++;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// RealMedia (RMFF 1.0): chunks id(4) size u32 version u16: '.RMF', PROP, MDPR (one per stream:
// stream number, ..., stream name, MIME type), CONT, then DATA (18-byte header) followed by media
// packets: version u16, length u16 (whole packet), stream u16, timestamp u32, reserved u8, flags u8
// (2 = key frame), data. Written to a pipe, the stream ends with 8 zero bytes.

export class RmFramer extends HeaderFirstFramer {
  private readonly videoStreams = new Set<number>();

  constructor() {
    super('rm');
  }

  protected pieces(): RawPiece[] {
    const out: RawPiece[] = [];
    while (this.buf.length >= 12) {
      const version = this.buf.readUInt16BE(0);
      const length = this.buf.readUInt16BE(2);
      if (version === 0 && length === 0) {
        out.push({ data: this.take(this.buf.length >= 8 ? 8 : this.buf.length), joinable: false }); // end of stream
        continue;
      }
      if (version > 1 || length < 12) {
        throw new MalformedInputError('rm', this.base, `media packet version ${version}, length ${length}`);
      }
      if (this.buf.length < length) break;
      const stream = this.buf.readUInt16BE(4);
      const key = ((this.buf[version === 0 ? 11 : 12] ?? 0) & 2) !== 0;
      const joinable = key && (this.videoStreams.size === 0 || this.videoStreams.has(stream));
      out.push({ data: this.take(length), joinable });
    }
    return out;
  }

  protected readHeader(): boolean {
    let at = 0;
    const b = this.buf;
    for (;;) {
      if (at > MAX_HEADER_BYTES)
        throw new MalformedInputError('rm', this.base + at, `no DATA chunk in the first ${MAX_HEADER_BYTES} bytes`);
      if (b.length < at + 8) return false;
      const id = b.toString('latin1', at, at + 4);
      const size = b.readUInt32BE(at + 4);
      if (at === 0 && id !== '.RMF')
        throw new MalformedInputError('rm', this.base, `expected .RMF, found ${b.subarray(0, 4).toString('hex')}`);
      if (!/^[.A-Z]{4}$/.test(id))
        throw new MalformedInputError(
          'rm',
          this.base + at,
          `expected a header chunk, found ${b.subarray(at, at + 4).toString('hex')}`,
        );
      if (id === 'DATA') {
        if (b.length < at + 18) return false;
        this.headerBytes = this.take(at + 18);
        return true;
      }
      if (size < 10 || size > MAX_HEADER_BYTES)
        throw new MalformedInputError('rm', this.base + at + 4, `chunk ${id} of ${size} bytes`);
      if (b.length < at + size) return false;
      if (id === 'MDPR') this.readStream(b.subarray(at, at + size));
      at += size;
    }
  }

  /** MDPR: id, size, version, stream_number u16, 7 × u32, name (u8 length), MIME type (u8 length). */
  private readStream(mdpr: Buffer): void {
    const r = new ByteReader(mdpr, 'rm', 10);
    const stream = r.u16();
    r.skip(28);
    r.skip(r.u8());
    const mime = r.bytes(r.u8()).toString('latin1');
    if (mime.startsWith('video/')) this.videoStreams.add(stream);
  }
}

// ---------------------------------------------------------------------------------------------
// FLV as ffmpeg writes it for codecs MPEG-TS cannot carry (Sorenson Spark ...; FLV 10.1 E.2-E.4):
// header 'FLV' version flags (1: video, 4: audio) header size u32, PreviousTagSize0; then tags:
// type u8 (8 audio, 9 video, 18 script), data size u24, timestamp u24 + u8, stream id u24, data,
// PreviousTagSize u32. The header is everything before the first audio or video frame (script data,
// AVC/AAC sequence headers); a piece is one tag with its PreviousTagSize, joinable when it is a key
// video frame (any audio frame when the header says there is no video).

export class FlvFramer extends HeaderFirstFramer {
  private headerEnd = 0;
  private hasVideo = false;

  constructor() {
    super('flv');
  }

  protected pieces(): RawPiece[] {
    const out: RawPiece[] = [];
    for (;;) {
      const tag = this.tagAt(0);
      if (tag === undefined) break;
      const first = this.buf[11] ?? 0;
      const joinable = this.hasVideo ? tag.type === 9 && first >> 4 === 1 : tag.type === 8;
      out.push({ data: this.take(tag.total), joinable });
    }
    return out;
  }

  private tagAt(at: number): { type: number; total: number } | undefined {
    if (this.buf.length < at + 11) return undefined;
    const type = (this.buf[at] ?? 0) & 0x1f;
    if (type !== 8 && type !== 9 && type !== 18) {
      throw new MalformedInputError('flv', this.base + at, `tag type ${type} (expected 8, 9 or 18)`);
    }
    const size = this.buf.readUIntBE(at + 1, 3);
    this.checkSize(size, `tag of type ${type}`);
    const total = 11 + size + 4;
    if (this.buf.length < at + total) return undefined;
    return { type, total };
  }

  /** The file header and the tags before the first frame; false when more bytes are needed. */
  protected readHeader(): boolean {
    if (this.headerEnd === 0) {
      if (this.buf.length < 13) return false;
      if (this.buf.toString('latin1', 0, 3) !== 'FLV') {
        throw new MalformedInputError('flv', this.base, `expected FLV, found ${this.buf.subarray(0, 3).toString('hex')}`);
      }
      const size = this.buf.readUInt32BE(5);
      if (size < 9 || size > 64) throw new MalformedInputError('flv', this.base + 5, `header size ${size}`);
      this.hasVideo = ((this.buf[4] ?? 0) & 1) !== 0;
      this.headerEnd = size + 4;
    }
    let at = this.headerEnd;
    for (;;) {
      if (at > MAX_HEADER_BYTES)
        throw new MalformedInputError('flv', this.base + at, `no frame in the first ${MAX_HEADER_BYTES} bytes`);
      const tag = this.tagAt(at);
      if (tag === undefined) {
        this.headerEnd = at;
        return false;
      }
      // Script data and sequence headers (AVC or AAC packet type 0) belong to the header.
      const codec = tag.type === 9 ? (this.buf[at + 11] ?? 0) & 0x0f : tag.type === 8 ? (this.buf[at + 11] ?? 0) >> 4 : -1;
      const sequenceHeader = (codec === 7 || codec === 10 || codec === 12) && this.buf[at + 12] === 0;
      if (tag.type !== 18 && !sequenceHeader) {
        this.headerBytes = this.take(at);
        return true;
      }
      at += tag.total;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SWF (uncompressed 'FWS'): signature, version u8, file length u32le, frame RECT (5-bit nbits, then
// 4 × nbits), frame rate u16, frame count u16; then tags: u16le code << 6 | length (0x3f: u32le
// length follows). Definitions (background, DefineVideoStream 60, SoundStreamHead 18/45) form the
// header; a piece is the tags of one frame, up to ShowFrame (1). A frame is joinable when its
// VideoFrame (61) holds a key picture, or always when there is no video stream.

const TAG_END = 0;
const TAG_SHOW_FRAME = 1;
const TAG_DEFINE_VIDEO_STREAM = 60;
const TAG_VIDEO_FRAME = 61;
/** Tags that belong to a frame, not to the header. */
const FRAME_TAGS = new Set([TAG_END, TAG_SHOW_FRAME, 19 /* SoundStreamBlock */, TAG_VIDEO_FRAME, 6, 21, 35, 26, 5, 28]);
const SWF_VIDEO_CODECS: Readonly<Record<number, string>> = {
  2: 'flv1',
  3: 'screen',
  4: 'vp6',
  5: 'vp6a',
  6: 'screen2',
  7: 'h264',
};

export class SwfFramer extends HeaderFirstFramer {
  private headerEnd = 0;
  /** Video stream character id -> codec. */
  private readonly video = new Map<number, string>();
  /** Scan position and key state inside the frame being collected. */
  private pos = 0;
  private key = false;

  constructor() {
    super('swf');
  }

  protected pieces(): RawPiece[] {
    const out: RawPiece[] = [];
    for (;;) {
      const tag = this.tagAt(this.pos);
      if (tag === undefined) break;
      const body = this.buf.subarray(this.pos + tag.headLength, this.pos + tag.total);
      if (tag.code === TAG_VIDEO_FRAME && body.length >= 4) {
        const codec = this.video.get(body.readUInt16LE(0));
        if (codec !== undefined && isKeyPicture(codec, body.subarray(4))) this.key = true;
      }
      this.pos += tag.total;
      if (tag.code === TAG_SHOW_FRAME || tag.code === TAG_END) {
        out.push({ data: this.take(this.pos), joinable: tag.code !== TAG_END && (this.key || this.video.size === 0) });
        this.pos = 0;
        this.key = false;
      }
    }
    this.checkSize(this.buf.length, 'SWF frame');
    return out;
  }

  /** The tag at `at` in buf, or undefined when it is not complete yet. */
  private tagAt(at: number): { code: number; headLength: number; total: number } | undefined {
    if (this.buf.length < at + 2) return undefined;
    const word = this.buf.readUInt16LE(at);
    const code = word >> 6;
    let length = word & 0x3f;
    let headLength = 2;
    if (length === 0x3f) {
      if (this.buf.length < at + 6) return undefined;
      length = this.buf.readUInt32LE(at + 2);
      headLength = 6;
    }
    this.checkSize(length, `tag ${code}`);
    if (this.buf.length < at + headLength + length) return undefined;
    return { code, headLength, total: headLength + length };
  }

  /** Signature, frame header and definition tags, up to the first frame tag; false when more bytes are needed. */
  protected readHeader(): boolean {
    const b = this.buf;
    if (this.headerEnd === 0) {
      if (b.length < 9) return false;
      const signature = b.toString('latin1', 0, 3);
      if (signature !== 'FWS') {
        throw new MalformedInputError(
          'swf',
          this.base,
          signature === 'CWS' || signature === 'ZWS'
            ? 'compressed SWF is not framed'
            : `expected FWS, found ${b.subarray(0, 3).toString('hex')}`,
        );
      }
      const nbits = (b[8] ?? 0) >> 3;
      this.headerEnd = 8 + Math.ceil((5 + 4 * nbits) / 8) + 4;
    }
    let at = this.headerEnd;
    for (;;) {
      if (at > MAX_HEADER_BYTES)
        throw new MalformedInputError('swf', this.base + at, `no frame in the first ${MAX_HEADER_BYTES} bytes`);
      const tag = this.tagAt(at);
      if (tag === undefined) {
        this.headerEnd = Math.max(this.headerEnd, at);
        return false;
      }
      if (FRAME_TAGS.has(tag.code)) {
        this.headerBytes = this.take(at);
        return true;
      }
      if (tag.code === TAG_DEFINE_VIDEO_STREAM && tag.total - tag.headLength >= 10) {
        const body = b.subarray(at + tag.headLength);
        this.video.set(body.readUInt16LE(0), SWF_VIDEO_CODECS[body[9] ?? 0] ?? 'unknown');
      }
      at += tag.total;
    }
  }
}
