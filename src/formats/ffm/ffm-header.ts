// The FFM2 header ("feed" format of ffserver and ffmpeg <= 3.4; ffserver-reference.md §5.3): a
// chunk list (MAIN, then COMM + S2VI/S2AU [+ CPRV] per stream) in a whole number of 4096-byte
// blocks. Parsed from what an old ffmpeg POSTs first; written for its first GET (the stream layout).

import { MalformedInputError, UnsupportedError } from '../../errors.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';

/** Size of every FFM block: the header area and each data packet. */
export const FFM_PACKET_SIZE = 4096;
/** Bytes before the chunk list: magic, packet size, write index. */
const FFM_PREAMBLE_BYTES = 16;
/** A header area larger than this is refused (ffmpeg writes one block; extradata may add a few). */
export const FFM_MAX_HEADER_BYTES = 16 * FFM_PACKET_SIZE;
/** More streams than this is not a publisher but garbage (ffserver's largest sample feed has 11). */
export const FFM_MAX_STREAMS = 64;
/** AV_CODEC_FLAG_GLOBAL_HEADER: an extradata size and bytes follow the COMM fields. */
export const FFM_FLAG_GLOBAL_HEADER = 1 << 22;

/**
 * libavcodec 57 `AVCodecID` values (ffmpeg 3.x) for the codecs an ffserver feed used, each checked
 * against the capture in ffserver-reference.md Appendix A or its §5.3 list. Others are read as
 * "codec id N" and skipped by the demuxer.
 */
export const FFM_CODEC_IDS = {
  mpeg1video: 1,
  mpeg2video: 2,
  mjpeg: 8,
  mpeg4: 13,
  msmpeg4v3: 17,
  flv1: 22,
  h264: 28,
  pcm_s16le: 0x10000,
  mp2: 0x15000,
  mp3: 0x15001,
  aac: 0x15002,
  ac3: 0x15003,
  vorbis: 0x15005,
  wmav2: 0x15008,
} as const;
export type FfmCodecName = keyof typeof FFM_CODEC_IDS;

const CODEC_NAMES = new Map<number, FfmCodecName>(Object.entries(FFM_CODEC_IDS).map(([name, id]) => [id, name as FfmCodecName]));

/** The codec name of a libavcodec 57 id, or `codec id N` when it is not one Feedcast knows. */
export function ffmCodecName(codecId: number): string {
  return CODEC_NAMES.get(codecId) ?? `codec id ${codecId}`;
}

export interface FfmStreamHeader {
  /** libavcodec 57 AVCodecID. */
  readonly codecId: number;
  readonly kind: 'video' | 'audio';
  readonly bitRate: number;
  /** AVCodecContext flags (GLOBAL_HEADER is set when extradata follows). */
  readonly flags: number;
  readonly extradata?: Buffer | undefined;
  /** The S2VI/S2AU AVOption string as key/value pairs, in order. */
  readonly options: ReadonlyArray<readonly [string, string]>;
  /** The CPRV (codec-private) options, when present. */
  readonly privateOptions?: ReadonlyArray<readonly [string, string]> | undefined;
}

export interface FfmHeader {
  /** Byte offset of the next data block in a feed file; 0 in a publisher's stream. */
  readonly writeIndex: number;
  readonly streams: readonly FfmStreamHeader[];
}

/** The value of an option in a stream's S2VI/S2AU list (the last one given wins, as in av_dict). */
export function ffmOption(stream: FfmStreamHeader, key: string): string | undefined {
  let value: string | undefined;
  for (const [k, v] of stream.options) if (k === key) value = v;
  return value;
}

/** Parses `k=v,k=v` (av_dict_parse_string with "=" and ","; values cannot contain commas here). */
export function parseAvOptions(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const part of text.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    out.push(eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)]);
  }
  return out;
}

export function formatAvOptions(options: ReadonlyArray<readonly [string, string]>): string {
  return options.map(([k, v]) => `${k}=${v}`).join(',');
}

function tag(r: ByteReader): string {
  return r.bytes(4).toString('latin1');
}

/**
 * How many bytes the header area of `buf` takes (the chunk list up to its terminator, rounded up to
 * whole blocks), or undefined while the chunk list is not complete yet. Throws on a bad magic, an
 * FFM1 header, a packet size other than 4096, or a header area over FFM_MAX_HEADER_BYTES.
 */
export function ffmHeaderLength(buf: Buffer): number | undefined {
  if (buf.length < 4) return undefined;
  const magic = buf.subarray(0, 4).toString('latin1');
  if (magic === 'FFM1') {
    throw new UnsupportedError(
      'ffm: this is an FFM1 stream (written by an ffmpeg older than about 2.5): Feedcast reads FFM2 (ffmpeg 2.5 to 3.4); publish with "-f mpegts" instead',
    );
  }
  if (magic !== 'FFM2') throw new MalformedInputError('ffm', 0, `magic is ${JSON.stringify(magic)}, not "FFM2"`);
  if (buf.length < FFM_PREAMBLE_BYTES) return undefined;
  const packetSize = buf.readUInt32BE(4);
  if (packetSize !== FFM_PACKET_SIZE) {
    throw new MalformedInputError('ffm', 4, `packet size is ${packetSize}, only ${FFM_PACKET_SIZE} is valid`);
  }
  let pos = FFM_PREAMBLE_BYTES;
  for (;;) {
    if (pos + 8 > buf.length) {
      if (pos + 8 > FFM_MAX_HEADER_BYTES) break;
      return undefined;
    }
    const id = buf.readUInt32BE(pos);
    const size = buf.readUInt32BE(pos + 4);
    if (id === 0) {
      const end = pos + 8;
      return Math.ceil(end / FFM_PACKET_SIZE) * FFM_PACKET_SIZE;
    }
    pos += 8 + size;
    if (pos > FFM_MAX_HEADER_BYTES) break;
  }
  throw new MalformedInputError('ffm', pos, `the header's chunk list does not end within ${FFM_MAX_HEADER_BYTES} bytes`);
}

/**
 * Parses a complete FFM2 header area (ffmHeaderLength bytes).
 *
 *  "FFM2" | u32 packet_size (4096) | u64 write_index
 *  chunks: u32 id (4cc) | u32 size | size bytes, ending with id 0 (8 zero bytes)
 *    MAIN: u32 nb_streams | u32 total bit_rate                                  (once)
 *    COMM: u32 codec_id | u8 codec_type (0 video, 1 audio) | u32 bit_rate | u32 flags | u32 flags2
 *          | u32 debug [| u32 extradata_size | extradata, when flags has GLOBAL_HEADER]
 *    S2VI / S2AU: NUL-terminated "k=v,k=v" AVOptions of the last COMM's stream
 *    CPRV: NUL-terminated codec-private AVOptions of the last COMM's stream
 *  Other chunks (the legacy binary STVI/STAU) are skipped by their size.
 */
export function parseFfmHeader(buf: Buffer): FfmHeader {
  const length = ffmHeaderLength(buf);
  if (length === undefined) throw new MalformedInputError('ffm', buf.length, 'the header is cut short');
  const r = new ByteReader(buf, 'ffm', 0, Math.min(length, buf.length));
  r.skip(8); // magic, packet size (checked by ffmHeaderLength)
  const writeIndex = r.u64();
  let declared: number | undefined;
  type Draft = {
    codecId: number;
    kind: 'video' | 'audio';
    bitRate: number;
    flags: number;
    extradata: Buffer | undefined;
    options: Array<[string, string]>;
    privateOptions: Array<[string, string]> | undefined;
  };
  const streams: Draft[] = [];
  for (;;) {
    const at = r.pos;
    const id = tag(r);
    const size = r.u32();
    if (id === '\0\0\0\0') break;
    const body = r.sub(size);
    const current = streams[streams.length - 1];
    switch (id) {
      case 'MAIN': {
        if (declared !== undefined) throw new MalformedInputError('ffm', at, 'a second MAIN chunk');
        declared = body.u32();
        body.u32(); // total bit rate
        if (declared > FFM_MAX_STREAMS) {
          throw new MalformedInputError('ffm', at + 8, `MAIN declares ${declared} streams (limit ${FFM_MAX_STREAMS})`);
        }
        break;
      }
      case 'COMM': {
        if (declared === undefined) throw new MalformedInputError('ffm', at, 'COMM before MAIN');
        if (streams.length >= declared) {
          throw new MalformedInputError('ffm', at, `more COMM chunks than the ${declared} streams MAIN declares`);
        }
        const codecId = body.u32();
        const type = body.u8();
        if (type !== 0 && type !== 1) {
          throw new MalformedInputError(
            'ffm',
            body.pos - 1,
            `stream ${streams.length} has codec type ${type} (0 video or 1 audio)`,
          );
        }
        const bitRate = body.u32();
        const flags = body.u32();
        body.skip(8); // flags2, debug
        let extradata: Buffer | undefined;
        if ((flags & FFM_FLAG_GLOBAL_HEADER) !== 0) {
          const n = body.u32();
          extradata = Buffer.from(body.bytes(n));
        }
        streams.push({
          codecId,
          kind: type === 0 ? 'video' : 'audio',
          bitRate,
          flags,
          extradata,
          options: [],
          privateOptions: undefined,
        });
        break;
      }
      case 'S2VI':
      case 'S2AU':
      case 'CPRV': {
        if (current === undefined) throw new MalformedInputError('ffm', at, `${id} before any COMM`);
        if (id !== 'CPRV' && (id === 'S2VI') !== (current.kind === 'video')) {
          throw new MalformedInputError('ffm', at, `${id} for ${current.kind} stream ${streams.length - 1}`);
        }
        const raw = body.rest();
        const nul = raw.indexOf(0);
        const options = parseAvOptions((nul < 0 ? raw : raw.subarray(0, nul)).toString('latin1'));
        if (id === 'CPRV') current.privateOptions = options;
        else current.options = options;
        break;
      }
      default:
        break; // STVI/STAU (binary, pre-AVOption) and anything newer: skipped by size
    }
  }
  if (declared === undefined) throw new MalformedInputError('ffm', FFM_PREAMBLE_BYTES, 'no MAIN chunk');
  if (streams.length !== declared) {
    throw new MalformedInputError('ffm', r.pos, `MAIN declares ${declared} streams, ${streams.length} COMM chunks follow`);
  }
  return {
    writeIndex,
    streams: streams.map((s) => ({
      codecId: s.codecId,
      kind: s.kind,
      bitRate: s.bitRate,
      flags: s.flags,
      ...(s.extradata !== undefined ? { extradata: s.extradata } : {}),
      options: s.options,
      ...(s.privateOptions !== undefined ? { privateOptions: s.privateOptions } : {}),
    })),
  };
}

function optionChunkBytes(options: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.from(formatAvOptions(options) + '\0', 'latin1');
}

/**
 * Writes an FFM2 header area as ffserver answered a publisher's GET (and wrote at the head of a
 * feed file): one 4096-byte block, zero-padded. Throws when the chunks do not fit in one block
 * (ffserver's write and wrap logic assumed one).
 */
export function encodeFfmHeader(header: FfmHeader): Buffer {
  type Chunk = { id: string; body: Buffer };
  const chunks: Chunk[] = [];
  const main = Buffer.alloc(8);
  main.writeUInt32BE(header.streams.length, 0);
  main.writeUInt32BE(header.streams.reduce((sum, s) => sum + s.bitRate, 0) >>> 0, 4);
  chunks.push({ id: 'MAIN', body: main });
  for (const s of header.streams) {
    const extra = s.extradata;
    const flags = extra !== undefined ? (s.flags | FFM_FLAG_GLOBAL_HEADER) >>> 0 : (s.flags & ~FFM_FLAG_GLOBAL_HEADER) >>> 0;
    const comm = new ByteWriter(21 + (extra !== undefined ? 4 + extra.length : 0));
    comm
      .u32(s.codecId)
      .u8(s.kind === 'video' ? 0 : 1)
      .u32(s.bitRate)
      .u32(flags)
      .u32(0)
      .u32(0);
    if (extra !== undefined) comm.u32(extra.length).bytes(extra);
    chunks.push({ id: 'COMM', body: comm.done() });
    chunks.push({ id: s.kind === 'video' ? 'S2VI' : 'S2AU', body: optionChunkBytes(s.options) });
    if (s.privateOptions !== undefined && s.privateOptions.length > 0) {
      chunks.push({ id: 'CPRV', body: optionChunkBytes(s.privateOptions) });
    }
  }
  const used = FFM_PREAMBLE_BYTES + chunks.reduce((n, c) => n + 8 + c.body.length, 0) + 8;
  if (used > FFM_PACKET_SIZE) {
    throw new UnsupportedError(`ffm: a header of ${used} bytes does not fit in one ${FFM_PACKET_SIZE}-byte block`);
  }
  const w = new ByteWriter(FFM_PACKET_SIZE);
  w.bytes(Buffer.from('FFM2', 'latin1')).u32(FFM_PACKET_SIZE).u64(header.writeIndex);
  for (const c of chunks) w.bytes(Buffer.from(c.id, 'latin1')).u32(c.body.length).bytes(c.body);
  w.fill(0, FFM_PACKET_SIZE - w.pos);
  return w.done();
}
