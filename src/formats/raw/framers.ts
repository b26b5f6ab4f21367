// Framers for the containers ffmpeg writes on a transcoder's stdout (raw outputs): each cuts the
// byte stream into pieces at clean boundaries and says where a new reader may join and what it
// needs first. JPEG (ITU T.81 B.1), EBML/WebM (RFC 8794, Matroska), fragmented MP4 (ISO 14496-12
// 4.2), MPEG audio (11172-3 2.4.1), ADTS (14496-3 1.A.2), Ogg (RFC 3533 6), MPEG-PS (13818-1 2.5.3),
// MPEG-1/2 video ES (13818-2 6.2). "Not enough bytes yet" is a normal state; bad input throws.

import { MalformedInputError } from '../../errors.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { parseAdtsHeader } from '../aac/audio-specific-config.js';
import { parseMpegAudioHeader } from '../mpeg-audio/mpeg-audio-header.js';
import { Buffered, type RawFramer, type RawPiece } from './buffered.js';
import { FlvFramer, AsfStreamFramer, AviFramer, RmFramer, SwfFramer } from './legacy-framers.js';

export { Buffered, MAX_PIECE_BYTES, type RawFramer, type RawPiece } from './buffered.js';

// ---------------------------------------------------------------------------------------------
// JPEG: SOI (FFD8), marker segments with 2-byte lengths, SOS, entropy-coded data in which 0xFF is
// followed by 00 (stuffing) or D0-D7 (restart markers), then EOI (FFD9). One image = one piece.

export class JpegFramer extends Buffered implements RawFramer {
  /** Scan position inside the current image, and whether we are in entropy-coded data. */
  private pos = 0;
  private inScan = false;

  constructor() {
    super('jpeg');
  }

  header(): Buffer | undefined {
    return Buffer.alloc(0);
  }

  push(chunk: Buffer): RawPiece[] {
    this.append(chunk);
    const out: RawPiece[] = [];
    for (;;) {
      const end = this.findEnd();
      if (end === undefined) break;
      out.push({ data: this.take(end), joinable: true });
      this.pos = 0;
      this.inScan = false;
    }
    this.checkSize(this.buf.length, 'JPEG image');
    return out;
  }

  /** Offset just past EOI of the image at the start of buf, or undefined if incomplete. */
  private findEnd(): number | undefined {
    const b = this.buf;
    if (this.pos === 0) {
      if (b.length < 2) return undefined;
      if (b[0] !== 0xff || b[1] !== 0xd8) {
        throw new MalformedInputError('jpeg', this.base, `expected SOI FFD8, found ${b.subarray(0, 2).toString('hex')}`);
      }
      this.pos = 2;
    }
    while (this.pos + 1 < b.length) {
      if (this.inScan) {
        const ff = b.indexOf(0xff, this.pos);
        if (ff < 0 || ff + 1 >= b.length) {
          this.pos = ff < 0 ? b.length : ff;
          return undefined;
        }
        const m = b[ff + 1] ?? 0;
        if (m === 0x00 || (m >= 0xd0 && m <= 0xd7) || m === 0xff) {
          this.pos = m === 0xff ? ff + 1 : ff + 2;
          continue;
        }
        this.inScan = false;
        this.pos = ff;
        continue;
      }
      if (b[this.pos] !== 0xff) {
        throw new MalformedInputError(
          'jpeg',
          this.base + this.pos,
          `expected a marker, found 0x${(b[this.pos] ?? 0).toString(16)}`,
        );
      }
      const marker = b[this.pos + 1] ?? 0;
      if (marker === 0xff) {
        this.pos++; // fill byte
        continue;
      }
      if (marker === 0xd9) return this.pos + 2;
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        this.pos += 2;
        continue;
      }
      if (this.pos + 4 > b.length) return undefined;
      const length = ((b[this.pos + 2] ?? 0) << 8) | (b[this.pos + 3] ?? 0);
      if (length < 2) throw new MalformedInputError('jpeg', this.base + this.pos + 2, `segment length ${length} is below 2`);
      this.pos += 2 + length;
      if (marker === 0xda) this.inScan = true;
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// EBML (WebM/Matroska): EBML header, Segment (unknown size when live), top-level elements. The
// header for a new reader is everything before the first Cluster; each Cluster is a piece,
// joinable when its first video block is a keyframe (any Cluster when there is no video).

const ID_EBML = 0x1a45dfa3;
const ID_SEGMENT = 0x18538067;
const ID_CLUSTER = 0x1f43b675;
const ID_TRACKS = 0x1654ae6b;
const ID_TRACK_ENTRY = 0xae;
const ID_TRACK_NUMBER = 0xd7;
const ID_TRACK_TYPE = 0x83;
const ID_SIMPLE_BLOCK = 0xa3;
const ID_BLOCK_GROUP = 0xa0;
const ID_BLOCK = 0xa1;
const ID_REFERENCE_BLOCK = 0xfb;

interface Vint {
  value: number;
  length: number;
  unknown: boolean;
}

/** An EBML variable-size integer (RFC 8794 4): the length is the count of leading zero bits + 1. */
export function readVint(b: Buffer, at: number, keepMarker: boolean, base = 0): Vint | undefined {
  if (at >= b.length) return undefined;
  const first = b[at] ?? 0;
  if (first === 0) throw new MalformedInputError('ebml', base + at, 'variable-size integer longer than 8 bytes');
  let length = 1;
  let mask = 0x80;
  while ((first & mask) === 0) {
    length++;
    mask >>= 1;
  }
  if (at + length > b.length) return undefined;
  let value = keepMarker ? first : first & (mask - 1);
  let allOnes = (first & (mask - 1)) === mask - 1;
  for (let i = 1; i < length; i++) {
    const byte = b[at + i] ?? 0;
    value = value * 256 + byte;
    if (byte !== 0xff) allOnes = false;
  }
  return { value, length, unknown: !keepMarker && allOnes };
}

export class EbmlFramer extends Buffered implements RawFramer {
  private headerBytes: Buffer | undefined;
  private headerParts: Buffer[] = [];
  private inSegment = false;
  private readonly videoTracks = new Set<number>();
  private tracksSeen = false;

  constructor() {
    super('webm');
  }

  header(): Buffer | undefined {
    return this.headerBytes;
  }

  push(chunk: Buffer): RawPiece[] {
    this.append(chunk);
    const out: RawPiece[] = [];
    for (;;) {
      const id = readVint(this.buf, 0, true, this.base);
      if (id === undefined) break;
      const size = readVint(this.buf, id.length, false, this.base);
      if (size === undefined) break;
      const headLength = id.length + size.length;
      if (id.value === ID_SEGMENT) {
        // Descend: the Segment's children are the top-level elements we cut at.
        this.headerParts.push(this.take(headLength));
        this.inSegment = true;
        continue;
      }
      if (size.unknown) throw new MalformedInputError('webm', this.base, `element 0x${id.value.toString(16)} of unknown size`);
      this.checkSize(size.value, `element 0x${id.value.toString(16)}`);
      const total = headLength + size.value;
      if (this.buf.length < total) break;
      const element = this.take(total);
      if (id.value === ID_CLUSTER) {
        if (this.headerBytes === undefined) {
          this.headerBytes = Buffer.concat(this.headerParts);
          this.headerParts = [];
        }
        out.push({ data: element, joinable: this.clusterStartsWithKey(element.subarray(headLength)) });
      } else if (this.headerBytes === undefined) {
        if (id.value === ID_TRACKS) this.readTracks(element.subarray(headLength));
        if (!this.inSegment && id.value !== ID_EBML) {
          throw new MalformedInputError('webm', this.base - total, `expected the EBML header, found 0x${id.value.toString(16)}`);
        }
        this.headerParts.push(element);
      } else {
        out.push({ data: element, joinable: false }); // Cues, Tags ... after the first Cluster
      }
    }
    return out;
  }

  private children(body: Buffer, visit: (id: number, data: Buffer) => void): void {
    let at = 0;
    while (at < body.length) {
      const id = readVint(body, at, true);
      if (id === undefined) return;
      const size = readVint(body, at + id.length, false);
      if (size === undefined || size.unknown) return;
      const start = at + id.length + size.length;
      if (start + size.value > body.length) return;
      visit(id.value, body.subarray(start, start + size.value));
      at = start + size.value;
    }
  }

  private readTracks(body: Buffer): void {
    this.tracksSeen = true;
    this.children(body, (id, entry) => {
      if (id !== ID_TRACK_ENTRY) return;
      let number: number | undefined;
      let type: number | undefined;
      this.children(entry, (cid, data) => {
        if (cid === ID_TRACK_NUMBER) number = data.readUIntBE(0, Math.min(6, Math.max(1, data.length)));
        if (cid === ID_TRACK_TYPE) type = data[0];
      });
      if (number !== undefined && type === 1) this.videoTracks.add(number);
    });
  }

  private clusterStartsWithKey(body: Buffer): boolean {
    if (!this.tracksSeen || this.videoTracks.size === 0) return true;
    let result: boolean | undefined;
    this.children(body, (id, data) => {
      if (result !== undefined) return;
      if (id === ID_SIMPLE_BLOCK) {
        const track = readVint(data, 0, false);
        if (track === undefined || !this.videoTracks.has(track.value)) return;
        result = ((data[track.length + 2] ?? 0) & 0x80) !== 0;
      } else if (id === ID_BLOCK_GROUP) {
        let track: number | undefined;
        let referenced = false;
        this.children(data, (cid, cdata) => {
          if (cid === ID_BLOCK) track = readVint(cdata, 0, false)?.value;
          if (cid === ID_REFERENCE_BLOCK) referenced = true;
        });
        if (track !== undefined && this.videoTracks.has(track)) result = !referenced;
      }
    });
    return result ?? false;
  }
}

// ---------------------------------------------------------------------------------------------
// Fragmented MP4: boxes (size32 or 1+size64, type). Header: everything before the first moof
// (ftyp, moov). Piece: [styp/sidx/prft...] moof mdat. With frag_keyframe each fragment starts at
// a video keyframe, so every piece is joinable.

export class Mp4Framer extends Buffered implements RawFramer {
  private headerBytes: Buffer | undefined;
  private headerParts: Buffer[] = [];
  private pending: Buffer[] = [];

  constructor() {
    super('mp4');
  }

  header(): Buffer | undefined {
    return this.headerBytes;
  }

  push(chunk: Buffer): RawPiece[] {
    this.append(chunk);
    const out: RawPiece[] = [];
    while (this.buf.length >= 8) {
      let size = this.buf.readUInt32BE(0);
      const type = this.buf.subarray(4, 8).toString('latin1');
      if (size === 1) {
        if (this.buf.length < 16) break;
        size = Number(this.buf.readBigUInt64BE(8));
      }
      if (size < 8) throw new MalformedInputError('mp4', this.base, `box '${type}' has size ${size}`);
      this.checkSize(size, `box '${type}'`);
      if (this.buf.length < size) break;
      const box = this.take(size);
      if (type === 'moof' && this.headerBytes === undefined) {
        this.headerBytes = Buffer.concat(this.headerParts);
        this.headerParts = [];
      }
      if (this.headerBytes === undefined) {
        this.headerParts.push(box);
        continue;
      }
      this.pending.push(box);
      if (type === 'mdat') {
        out.push({ data: Buffer.concat(this.pending), joinable: true });
        this.pending = [];
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// MPEG audio (mp3/mp2) and ADTS: every frame is a piece and a join point; no header.

/** Self-delimiting frames: each is a piece and a join point, its length read from its own header. */
class LengthPrefixedFramer extends Buffered implements RawFramer {
  private readonly headerBytes: number;
  private readonly frameLength: (buf: Buffer) => number;

  constructor(name: string, headerBytes: number, frameLength: (buf: Buffer) => number) {
    super(name);
    this.headerBytes = headerBytes;
    this.frameLength = frameLength;
  }

  header(): Buffer | undefined {
    return Buffer.alloc(0);
  }

  /** Takes what comes before the first frame, if the format has anything there; false: more bytes needed. */
  protected takeLeader(): boolean {
    return true;
  }

  push(chunk: Buffer): RawPiece[] {
    this.append(chunk);
    if (!this.takeLeader()) return [];
    const out: RawPiece[] = [];
    while (this.buf.length >= this.headerBytes) {
      const length = this.frameLength(this.buf);
      if (this.buf.length < length) break;
      out.push({ data: this.take(length), joinable: true });
    }
    return out;
  }
}

/** Largest ID3v2 tag kept as the header (ffmpeg writes the stream's Title, Author ... there: a few hundred bytes). */
const MAX_ID3_BYTES = 1024 * 1024;

/**
 * MPEG audio frames, after an optional ID3v2 tag at the start (ID3v2.4 structure 3.1: "ID3", version (2 bytes),
 * flags, size as 4 × 7 bits; flag 0x10 adds a 10-byte footer), which is the header every new reader gets first.
 */
export class MpegAudioFramer extends LengthPrefixedFramer {
  private tag: Buffer | undefined;

  constructor() {
    super('mpeg audio', 4, (buf) => parseMpegAudioHeader(buf, 0).frameLength);
  }

  override header(): Buffer | undefined {
    return this.tag;
  }

  protected override takeLeader(): boolean {
    if (this.tag !== undefined) return true;
    if (this.buf.length < 3) return false;
    if (this.buf.toString('latin1', 0, 3) !== 'ID3') {
      this.tag = Buffer.alloc(0);
      return true;
    }
    if (this.buf.length < 10) return false;
    const r = new ByteReader(this.buf, 'id3', 3, 10);
    r.skip(2); // version
    const flags = r.u8();
    const size = [r.u8(), r.u8(), r.u8(), r.u8()];
    if (size.some((b) => b > 0x7f)) {
      throw new MalformedInputError('id3', this.base + 6, `size bytes ${Buffer.from(size).toString('hex')} are not syncsafe`);
    }
    const length = 10 + size.reduce((n, b) => n * 128 + b, 0) + ((flags & 0x10) !== 0 ? 10 : 0);
    if (length > MAX_ID3_BYTES) {
      throw new MalformedInputError('id3', this.base, `tag of ${length} bytes exceeds the limit of ${MAX_ID3_BYTES}`);
    }
    if (this.buf.length < length) return false;
    this.tag = this.take(length);
    return true;
  }
}

/** ADTS frames (14496-3 1.A.2.2), each a piece and a join point; the header is parseAdtsHeader's. */
export class AdtsFramer extends LengthPrefixedFramer {
  constructor() {
    super('adts', 7, (buf) => parseAdtsHeader(buf, 0).frameLength);
  }
}

// ---------------------------------------------------------------------------------------------
// Ogg pages (RFC 3533 6): "OggS", version 0, header_type, granule_position (64), serial, page seq,
// CRC, page_segments, lacing values. Header: the first pages with granule 0 (BOS and codec
// headers). Pieces: later pages; joinable unless the page continues a packet.

export class OggFramer extends Buffered implements RawFramer {
  private headerBytes: Buffer | undefined;
  private headerParts: Buffer[] = [];

  constructor() {
    super('ogg');
  }

  header(): Buffer | undefined {
    return this.headerBytes;
  }

  push(chunk: Buffer): RawPiece[] {
    this.append(chunk);
    const out: RawPiece[] = [];
    while (this.buf.length >= 27) {
      const b = this.buf;
      if (b.subarray(0, 4).toString('latin1') !== 'OggS') {
        throw new MalformedInputError(
          'ogg',
          this.base,
          `expected capture pattern OggS, found ${b.subarray(0, 4).toString('hex')}`,
        );
      }
      const segments = b[26] ?? 0;
      if (b.length < 27 + segments) break;
      let bodyLength = 0;
      for (let i = 0; i < segments; i++) bodyLength += b[27 + i] ?? 0;
      const total = 27 + segments + bodyLength;
      if (b.length < total) break;
      const headerType = b[5] ?? 0;
      const granuleZero = b.readBigUInt64LE(6) === 0n;
      const page = this.take(total);
      if (this.headerBytes === undefined && granuleZero) {
        this.headerParts.push(page);
        continue;
      }
      if (this.headerBytes === undefined) {
        this.headerBytes = Buffer.concat(this.headerParts);
        this.headerParts = [];
      }
      out.push({ data: page, joinable: (headerType & 0x01) === 0 });
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// MPEG-PS (13818-1 2.5.3): pack_header (00 00 01 BA; MPEG-1: 12 bytes, MPEG-2: 14 + stuffing),
// then system header / PES packets, each 00 00 01 xx + 16-bit length. One pack = one piece;
// joinable when it carries a video sequence header (00 00 01 B3), or when there is no video.

export class MpegPsFramer extends Buffered implements RawFramer {
  private pos = 0;
  private sawVideo = false;

  constructor() {
    super('mpeg-ps');
  }

  header(): Buffer | undefined {
    return Buffer.alloc(0);
  }

  push(chunk: Buffer): RawPiece[] {
    this.append(chunk);
    const out: RawPiece[] = [];
    for (;;) {
      const end = this.packEnd();
      if (end === undefined) break;
      const pack = this.take(end);
      this.pos = 0;
      const hasSeq = pack.includes(SEQ_HEADER);
      if (pack.includes(VIDEO_PES)) this.sawVideo = true;
      out.push({ data: pack, joinable: hasSeq || !this.sawVideo });
    }
    this.checkSize(this.buf.length, 'MPEG-PS pack');
    return out;
  }

  /** End of the pack that starts buf (where the next pack or program end begins). */
  private packEnd(): number | undefined {
    const b = this.buf;
    if (this.pos === 0) {
      if (b.length < 12) return undefined;
      if (b.readUInt32BE(0) !== 0x000001ba) {
        throw new MalformedInputError(
          'mpeg-ps',
          this.base,
          `expected pack_start_code, found ${b.subarray(0, 4).toString('hex')}`,
        );
      }
      const mpeg2 = ((b[4] ?? 0) & 0xc0) === 0x40;
      if (mpeg2) {
        if (b.length < 14) return undefined;
        this.pos = 14 + ((b[13] ?? 0) & 0x07);
      } else {
        this.pos = 12;
      }
    }
    while (this.pos + 4 <= b.length) {
      const code = b.readUInt32BE(this.pos);
      if (code === 0x000001ba) return this.pos;
      if (code === 0x000001b9) return this.pos + 4;
      if (code >>> 8 !== 0x000001) {
        throw new MalformedInputError('mpeg-ps', this.base + this.pos, `expected a start code, found ${code.toString(16)}`);
      }
      if (this.pos + 6 > b.length) return undefined;
      this.pos += 6 + b.readUInt16BE(this.pos + 4);
    }
    return undefined;
  }
}

const SEQ_HEADER = Buffer.from([0, 0, 1, 0xb3]);
const VIDEO_PES = Buffer.from([0, 0, 1, 0xe0]);

// ---------------------------------------------------------------------------------------------
// MPEG-1/2 video elementary stream (13818-2 6.2): start codes 00 00 01 xx. A piece is one picture
// (with the sequence and GOP headers before it); pieces that begin with a sequence header are
// join points. Start codes cannot occur inside coded data, so scanning for them is exact.

export class MpegVideoFramer extends Buffered implements RawFramer {
  private scanFrom = 4;
  private sawPicture = false;

  constructor() {
    super('mpeg video');
  }

  header(): Buffer | undefined {
    return Buffer.alloc(0);
  }

  push(chunk: Buffer): RawPiece[] {
    this.append(chunk);
    const out: RawPiece[] = [];
    for (;;) {
      if (this.buf.length < 4) break;
      if (this.buf.readUInt32BE(0) >>> 8 !== 1) {
        throw new MalformedInputError('mpeg video', this.base, 'expected a start code');
      }
      let cut: number | undefined;
      let at = this.scanFrom;
      if (this.buf[3] === 0x00) this.sawPicture = true;
      while (cut === undefined) {
        const next = this.buf.indexOf(START_PREFIX, at);
        if (next < 0 || next + 3 >= this.buf.length) break;
        const code = this.buf[next + 3] ?? 0;
        if (code === 0xb3 || (code === 0x00 && this.sawPicture) || (code === 0xb8 && this.sawPicture)) cut = next;
        else if (code === 0x00) this.sawPicture = true;
        at = next + 3;
      }
      if (cut === undefined) {
        this.scanFrom = Math.max(4, this.buf.length - 3);
        break;
      }
      const joinable = this.buf[3] === 0xb3;
      out.push({ data: this.take(cut), joinable });
      this.scanFrom = 4;
      this.sawPicture = false;
    }
    this.checkSize(this.buf.length, 'MPEG video picture');
    return out;
  }
}

const START_PREFIX = Buffer.from([0, 0, 1]);

/** The framer for a raw format (as named in `Format`), or undefined when there is none. */
export function framerFor(format: string): RawFramer | undefined {
  switch (format) {
    case 'mpjpeg':
    case 'jpeg':
    case 'mjpeg':
      return new JpegFramer();
    case 'webm':
    case 'matroska':
    case 'mka':
      return new EbmlFramer();
    case 'mp4':
      return new Mp4Framer();
    case 'mp3':
    case 'mp2':
      return new MpegAudioFramer();
    case 'adts':
      return new AdtsFramer();
    case 'ogg':
    case 'oga':
    case 'opus':
      return new OggFramer();
    case 'mpeg':
      return new MpegPsFramer();
    case 'mpeg1video':
      return new MpegVideoFramer();
    case 'asf':
      return new AsfStreamFramer();
    case 'avi':
      return new AviFramer();
    case 'rm':
      return new RmFramer();
    case 'swf':
      return new SwfFramer();
    case 'flv':
      return new FlvFramer();
    default:
      return undefined;
  }
}

/** Formats whose bytes may simply go on after ffmpeg restarts (no file header to repeat). */
export function survivesRestart(format: string): boolean {
  return ['mpjpeg', 'jpeg', 'mjpeg', 'mp3', 'mp2', 'adts', 'mpeg', 'mpeg1video'].includes(format);
}
