// MPEG-TS muxer (ISO/IEC 13818-1): PAT/PMT (2.4.4), one PES per Frame (2.4.3.6) cut into
// 188-byte packets with PCR, random_access_indicator and adaptation-field stuffing (2.4.3.4).
// One program (PMT PID 0x1000), elementary streams on PIDs 0x100, 0x101, ... in track order.

import { LimitExceededError, MalformedInputError } from '../../errors.js';
import type { StreamMuxer } from '../../media/demuxer.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { buildAdtsHeader, parseAudioSpecificConfig, type AacConfig } from '../aac/audio-specific-config.js';
import { parseAv1c } from '../av1/av1c.js';
import { ObuType, readObus, readObu } from '../av1/obu.js';
import { writeStartCodeObus } from '../av1/start-code-obus.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { parseAvcc } from '../h264/avcc.js';
import { H264Nal, H265Nal, h264NalType, h265NalType, splitLengthPrefixed } from '../h264/nal.js';
import { parseHvcc } from '../h265/hvcc.js';
import { opusControlHeaderLength, writeOpusControlHeader } from './opus-control-header.js';
import { pesHeaderSize, StreamId, writePesHeader } from './pes.js';
import { encodeRelayMark } from './relay-mark.js';
import {
  AV1_FORMAT_ID,
  DescriptorTag,
  OPUS_EXTENSION_TAG,
  OPUS_FORMAT_ID,
  PAT_SECTION_SIZE,
  pmtSectionSize,
  StreamType,
  writePat,
  writePmt,
  type PmtOut,
} from './psi.js';
import { adaptationFieldSize, PID_PAT, TS_PACKET_SIZE, writeTsHeader } from './ts-packet.js';

export interface TsMuxerOptions {
  /** How far the PCR runs behind the DTS (decoder buffering), 90 kHz. Default 9000 (100 ms). */
  pcrOffset90k?: number;
  /**
   * Feedcast's relay stream (relay-mark.ts): the last packet of each PES carries the end-of-PES mark with
   * this clock's time (ms since the epoch). Unset: plain MPEG-TS.
   */
  relayClock?: () => number;
}

export const PMT_PID = 0x1000;
export const FIRST_ES_PID = 0x100;
const PROGRAM_NUMBER = 1;
const TRANSPORT_STREAM_ID = 1;
/** PAT+PMT repeat interval of audio-only output, and the PCR interval of audio PCR PIDs. */
const AUDIO_PSI_INTERVAL_90K = 45_000;
const AUDIO_PCR_INTERVAL_90K = 3_600;
const PAYLOAD_BYTES = TS_PACKET_SIZE - 4;

const START_CODE = Buffer.from([0, 0, 0, 1]);
/** access_unit_delimiter_rbsp: primary_pic_type 7 (any), rbsp stop bit. */
const H264_AUD = Buffer.from([0x09, 0xf0]);
/** H.265 AUD: NAL header (type 35, layer 0, tid 1), pic_type 2 (any), rbsp stop bit. */
const H265_AUD = Buffer.from([0x46, 0x01, 0x50]);
const EMPTY = Buffer.alloc(0);

interface MuxTrack {
  track: Track;
  pid: number;
  streamType: number;
  streamId: number;
  video: boolean;
  /** ES_info descriptors, laid out. */
  descriptors?: Buffer;
  /** h264/h265: parameter sets from the config, sent before keyframes that lack them. */
  paramSets: Buffer[];
  /** av1: the sequence header OBU from av1C, sent before key frames that lack one. */
  av1SequenceHeader?: Buffer;
  /** aac: the config that ADTS headers are built from. */
  aac?: AacConfig;
}

export class TsMuxer implements StreamMuxer {
  readonly contentType = 'video/mp2t';
  private readonly pcrOffset90k: number;
  private readonly relayClock: (() => number) | undefined;
  private muxTracks: MuxTrack[] = [];
  private byId = new Map<number, MuxTrack>();
  private pcrPid = FIRST_ES_PID;
  private hasVideo = false;
  private signature = '';
  private pmtVersion = 0;
  /** Next continuity_counter per PID. */
  private readonly cc = new Map<number, number>();
  private lastPsiDts: number | undefined;
  private lastPcrDts: number | undefined;

  constructor(tracks: readonly Track[], options: TsMuxerOptions = {}) {
    this.pcrOffset90k = options.pcrOffset90k ?? 9000;
    this.relayClock = options.relayClock;
    this.setTracks(tracks);
  }

  carries(track: Track): boolean {
    return this.byId.has(track.id);
  }

  header(): Buffer {
    const w = new ByteWriter(2 * TS_PACKET_SIZE);
    this.writePsi(w, false);
    return w.done();
  }

  updateTracks(tracks: readonly Track[]): Buffer | undefined {
    const before = this.signature;
    this.setTracks(tracks);
    if (this.signature === before) return undefined; // only configs changed: in-band SPS / ADTS cover it
    this.pmtVersion = (this.pmtVersion + 1) & 0x1f;
    const w = new ByteWriter(2 * TS_PACKET_SIZE);
    this.writePsi(w, true);
    return w.done();
  }

  mux(frame: Frame): Buffer {
    const t = this.byId.get(frame.trackId);
    if (t === undefined) return EMPTY;
    const pieces = this.esPieces(t, frame);
    if (pieces === undefined) return EMPTY;
    let esLength = 0;
    for (const p of pieces) esLength += p.length;

    const withDts = t.video && frame.dts90k !== frame.pts90k;
    const pesLength = pesHeaderSize(withDts) + esLength;
    let pcr90k: number | undefined;
    if (t.pid === this.pcrPid) {
      const due =
        this.lastPcrDts === undefined ||
        frame.dts90k - this.lastPcrDts >= AUDIO_PCR_INTERVAL_90K ||
        frame.dts90k < this.lastPcrDts;
      if (t.video || due) {
        pcr90k = frame.dts90k - this.pcrOffset90k;
        this.lastPcrDts = frame.dts90k;
      }
    }
    const randomAccess = frame.keyframe && (t.video || pcr90k !== undefined);
    let psi: boolean;
    if (t.video) psi = frame.keyframe;
    else {
      psi =
        !this.hasVideo && (this.lastPsiDts === undefined || Math.abs(frame.dts90k - this.lastPsiDts) >= AUDIO_PSI_INTERVAL_90K);
    }
    if (psi) this.lastPsiDts = frame.dts90k;

    const mark = this.relayClock !== undefined ? encodeRelayMark(this.relayClock(), frame.dts90k) : undefined;
    const sizes = payloadSizes(pesLength, { pcr90k, randomAccess }, mark);
    const w = new ByteWriter((sizes.length + (psi ? 2 : 0)) * TS_PACKET_SIZE);
    if (psi) this.writePsi(w, true);

    const es = new PieceCursor(pieces);
    for (let i = 0; i < sizes.length; i++) {
      const first = i === 0;
      const payloadLength = sizes[i] as number;
      writeTsHeader(w, {
        pid: t.pid,
        payloadUnitStart: first,
        continuityCounter: this.nextCc(t.pid),
        payloadLength,
        pcr90k: first ? pcr90k : undefined,
        randomAccess: first && randomAccess,
        privateData: i === sizes.length - 1 ? mark : undefined,
      });
      let esBytes = payloadLength;
      if (first) {
        writePesHeader(w, t.streamId, esLength, frame.pts90k, withDts ? frame.dts90k : undefined);
        esBytes -= pesHeaderSize(withDts);
      }
      es.write(w, esBytes);
    }
    return w.done();
  }

  // ---- tracks ----

  private setTracks(tracks: readonly Track[]): void {
    const muxTracks: MuxTrack[] = [];
    for (const track of tracks) {
      const t = makeMuxTrack(track, FIRST_ES_PID + muxTracks.length);
      if (t !== undefined) muxTracks.push(t);
    }
    this.muxTracks = muxTracks;
    this.byId = new Map(muxTracks.map((t) => [t.track.id, t]));
    const pcrTrack = muxTracks.find((t) => t.video) ?? muxTracks[0];
    this.pcrPid = pcrTrack?.pid ?? FIRST_ES_PID;
    this.hasVideo = muxTracks.some((t) => t.video);
    this.signature = muxTracks
      .map((t) => `${t.track.id}:${t.track.codec}:${t.streamType}:${t.descriptors?.toString('hex') ?? ''}`)
      .join(',');
    const size = pmtSectionSize(this.pmt());
    if (size > PAYLOAD_BYTES - 1) throw new LimitExceededError('mpegts: PMT section bytes', size, PAYLOAD_BYTES - 1);
  }

  private pmt(): PmtOut {
    return {
      programNumber: PROGRAM_NUMBER,
      version: this.pmtVersion,
      pcrPid: this.pcrPid,
      streams: this.muxTracks.map((t) => {
        const s: PmtOut['streams'][number] = { streamType: t.streamType, pid: t.pid };
        return t.descriptors !== undefined ? { ...s, descriptors: t.descriptors } : s;
      }),
    };
  }

  // ---- packets ----

  /** PAT and PMT, one packet each. `advance`: use and step the counters (in-band copies). */
  private writePsi(w: ByteWriter, advance: boolean): void {
    const pmt = this.pmt();
    this.writeSectionPacket(w, PID_PAT, PAT_SECTION_SIZE, advance, () => {
      writePat(w, TRANSPORT_STREAM_ID, PROGRAM_NUMBER, PMT_PID);
    });
    this.writeSectionPacket(w, PMT_PID, pmtSectionSize(pmt), advance, () => {
      writePmt(w, pmt);
    });
  }

  /** A packet holding one section: pointer_field 0, the section, 0xFF stuffing (2.4.4.2). */
  private writeSectionPacket(w: ByteWriter, pid: number, sectionSize: number, advance: boolean, writeSection: () => void): void {
    const cc = advance ? this.nextCc(pid) : ((this.cc.get(pid) ?? 0) + 15) & 0x0f;
    writeTsHeader(w, { pid, payloadUnitStart: true, continuityCounter: cc, payloadLength: PAYLOAD_BYTES });
    w.u8(0); // pointer_field
    writeSection();
    w.fill(0xff, PAYLOAD_BYTES - 1 - sectionSize);
  }

  private nextCc(pid: number): number {
    const cc = this.cc.get(pid) ?? 0;
    this.cc.set(pid, (cc + 1) & 0x0f);
    return cc;
  }

  /** The elementary stream bytes of one frame, as pieces written in order (no copies). */
  private esPieces(t: MuxTrack, frame: Frame): Uint8Array[] | undefined {
    const codec = t.track.codec;
    if (codec === 'h264' || codec === 'h265') {
      const h265 = codec === 'h265';
      const nals = splitLengthPrefixed(frame.data);
      const isAud = (nal: Uint8Array): boolean => (h265 ? h265NalType(nal) === H265Nal.aud : h264NalType(nal) === H264Nal.aud);
      const isSps = (nal: Uint8Array): boolean => (h265 ? h265NalType(nal) === H265Nal.sps : h264NalType(nal) === H264Nal.sps);
      const pieces: Uint8Array[] = [START_CODE, h265 ? H265_AUD : H264_AUD];
      if (frame.keyframe && !nals.some(isSps)) {
        for (const ps of t.paramSets) pieces.push(START_CODE, ps);
      }
      for (const nal of nals) if (!isAud(nal)) pieces.push(START_CODE, nal);
      return pieces;
    }
    if (codec === 'av1') {
      const obus = readObus(frame.data);
      const header = t.av1SequenceHeader;
      if (frame.keyframe && header !== undefined && !obus.some((o) => o.type === ObuType.sequenceHeader)) {
        obus.unshift(readObu(header, 0).obu);
      }
      return [writeStartCodeObus(obus)];
    }
    if (codec === 'aac') {
      if (t.aac === undefined || frame.data.length + 7 > 0x1fff) return undefined;
      return [buildAdtsHeader(t.aac, frame.data.length), frame.data];
    }
    if (codec === 'opus') {
      const header = new ByteWriter(opusControlHeaderLength(frame.data.length));
      writeOpusControlHeader(header, frame.data.length);
      return [header.done(), frame.data];
    }
    return [frame.data];
  }
}

/**
 * The payload bytes of each TS packet of one PES of `pesLength` bytes: the first packet's adaptation field
 * holds `first` (PCR, random_access_indicator), and with a relay mark the last packet's holds the mark too
 * (a packet that would be full is left one byte short, so that the mark rides on the next).
 */
function payloadSizes(
  pesLength: number,
  first: { pcr90k: number | undefined; randomAccess: boolean },
  mark: Buffer | undefined,
): number[] {
  const sizes: number[] = [];
  let left = pesLength;
  while (left > 0) {
    const af = sizes.length === 0 ? first : {};
    const capacity = PAYLOAD_BYTES - adaptationFieldSize(af);
    if (mark === undefined) {
      const n = Math.min(capacity, left);
      sizes.push(n);
      left -= n;
      continue;
    }
    if (left <= PAYLOAD_BYTES - adaptationFieldSize({ ...af, privateData: mark })) {
      sizes.push(left);
      break;
    }
    const n = Math.min(capacity, left - 1);
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

/** Walks a list of byte pieces, writing the next n bytes wherever they fall. */
class PieceCursor {
  private readonly pieces: readonly Uint8Array[];
  private index = 0;
  private offset = 0;

  constructor(pieces: readonly Uint8Array[]) {
    this.pieces = pieces;
  }

  write(w: ByteWriter, count: number): void {
    let n = count;
    while (n > 0) {
      const piece = this.pieces[this.index];
      if (piece === undefined) throw new RangeError(`PieceCursor: ${n} bytes asked past the end`);
      const take = Math.min(n, piece.length - this.offset);
      w.bytes(piece.subarray(this.offset, this.offset + take));
      n -= take;
      this.offset += take;
      if (this.offset === piece.length) {
        this.index++;
        this.offset = 0;
      }
    }
  }
}

/** How a track is carried, or undefined for a codec MPEG-TS has no mapping for here. */
function makeMuxTrack(track: Track, pid: number): MuxTrack | undefined {
  const base = { track, pid, paramSets: [] as Buffer[] };
  switch (track.codec) {
    case 'h264':
    case 'h265':
      return {
        ...base,
        streamType: track.codec === 'h264' ? StreamType.h264 : StreamType.h265,
        streamId: StreamId.video,
        video: true,
        paramSets: paramSetsOf(track),
      };
    case 'mpeg1video':
    case 'mpeg2video':
      return {
        ...base,
        streamType: track.codec === 'mpeg1video' ? StreamType.mpeg1Video : StreamType.mpeg2Video,
        streamId: StreamId.video,
        video: true,
      };
    case 'av1': {
      // AOM "Carriage of AV1 in MPEG-2 TS": private PES data, the registration descriptor 'AV01'
      // first, then the AV1 video descriptor (av1C's first bytes; hdr_wcg_idc 3: no indication).
      const av1c = track.config;
      if (av1c === undefined || av1c.length < 4) return undefined;
      let av1SequenceHeader: Buffer;
      try {
        av1SequenceHeader = parseAv1c(av1c).sequenceHeaderObu;
      } catch (err) {
        if (err instanceof MalformedInputError) return undefined;
        throw err;
      }
      // prettier-ignore
      const descriptors = Buffer.from([
        DescriptorTag.registration, 4, ...u32Bytes(AV1_FORMAT_ID),
        DescriptorTag.av1Video, 4, av1c[0] as number, av1c[1] as number, av1c[2] as number, 0xc0 | ((av1c[3] as number) & 0x1f),
      ]);
      return {
        ...base,
        streamType: StreamType.privatePes,
        streamId: StreamId.privateStream1,
        video: true,
        descriptors,
        av1SequenceHeader,
      };
    }
    case 'aac': {
      const aac = aacConfigOf(track);
      if (aac === undefined) return undefined;
      return { ...base, streamType: StreamType.aacAdts, streamId: StreamId.audio, video: false, aac };
    }
    case 'mp2':
    case 'mp3': {
      // MPEG-2 (LSF) audio has sample rates below 32 kHz.
      const lsf = track.sampleRate !== undefined && track.sampleRate < 32_000;
      return { ...base, streamType: lsf ? StreamType.mpeg2Audio : StreamType.mpeg1Audio, streamId: StreamId.audio, video: false };
    }
    case 'opus': {
      const channels = Math.min(Math.max(track.channels ?? 2, 1), 8);
      // prettier-ignore
      const descriptors = Buffer.from([
        DescriptorTag.registration, 4, ...u32Bytes(OPUS_FORMAT_ID), // registration_descriptor 'Opus'
        DescriptorTag.extension, 2, OPUS_EXTENSION_TAG, channels, // extension: channel_config_code
      ]);
      return { ...base, streamType: StreamType.privatePes, streamId: StreamId.privateStream1, video: false, descriptors };
    }
    case 'ac3':
      return { ...base, streamType: StreamType.ac3, streamId: StreamId.privateStream1, video: false };
    default:
      return undefined;
  }
}

function u32Bytes(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

function paramSetsOf(track: Track): Buffer[] {
  if (track.config === undefined) return [];
  try {
    if (track.codec === 'h265') {
      const hvcc = parseHvcc(track.config);
      return [...hvcc.vps, ...hvcc.sps, ...hvcc.pps];
    }
    const avcc = parseAvcc(track.config);
    return [...avcc.sps, ...avcc.pps];
  } catch (err) {
    if (err instanceof MalformedInputError) return []; // frames must then carry their own
    throw err;
  }
}

function aacConfigOf(track: Track): AacConfig | undefined {
  if (track.config === undefined) return undefined;
  try {
    const cfg = parseAudioSpecificConfig(track.config);
    // ADTS has no HE-AAC object types: signal the AAC-LC core and let SBR/PS be implicit.
    const objectType = cfg.objectType === 5 || cfg.objectType === 29 ? 2 : cfg.objectType;
    return { ...cfg, objectType };
  } catch (err) {
    if (err instanceof MalformedInputError) return undefined;
    throw err;
  }
}
