// MPEG-TS demuxer (ISO/IEC 13818-1): a framer that finds 188-byte packets in arbitrarily chunked
// input (resyncing on lost sync bytes), follows PAT/PMT (2.4.4), reassembles PES (2.4.3.6) and
// turns each elementary stream into Feedcast Frames and Tracks.
//
// Decisions a caller may care about:
// - A PES over `maxPesBytes` (default 16 MiB) is dropped with a warning; the stream goes on.
// - So is one that would bring the unfinished PES of all PIDs over `maxHeldPesBytes` (32 MiB), or
//   the server's shared `pesBudget` over its cap (issue 25: 40 video PIDs held 610 MiB).
// - A corrupt packet, section or PES (bad CRC, CC gap, bad header) is dropped with a warning.
//   push() throws MalformedInputError only when no sync is found in 10 packets' worth of bytes.
// - A PES with a PES_packet_length is emitted as soon as its last byte arrives; an unbounded one
//   (length 0, which ffmpeg writes for every video PES) when the next PES on its PID starts, or, with
//   `onRelayMark` (a Feedcast relay stream), at the packet that carries the end-of-PES mark.
// - Frames are held until every supported track of the PMT has its config; after 2 s of input
//   time or 8 MiB held, the ready tracks are announced and the others dropped for good.
// - Video frames before a track's first keyframe are dropped.
// - One PES of H.264/H.265/AV1/MPEG video is taken as one access unit (what every muxer writes).

import { FrameTooLargeError, MalformedInputError } from '../../errors.js';
import type { ByteBudget } from '../../media/byte-budget.js';
import type { Codec, TrackKind } from '../../media/codec.js';
import type { Demuxer, DemuxerSink } from '../../media/demuxer.js';
import type { Frame } from '../../media/frame.js';
import { TS_WRAP, Unwrapper } from '../../media/timebase.js';
import { sameTrackConfig, type Track } from '../../media/track.js';
import { AAC_FRAME_SAMPLES, buildAudioSpecificConfig, parseAdtsHeader } from '../aac/audio-specific-config.js';
import { buildAv1c } from '../av1/av1c.js';
import { isKeyTemporalUnit, ObuType, parseSequenceHeader, writeObus } from '../av1/obu.js';
import { readStartCodeObus } from '../av1/start-code-obus.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { buildAvcc } from '../h264/avcc.js';
import { H264Nal, H265Nal, h264NalType, h265NalType, joinLengthPrefixed, MAX_NALS_PER_FRAME, splitAnnexB } from '../h264/nal.js';
import { describeH264Profile, parseH264Sps, unescapeRbsp } from '../h264/sps.js';
import { buildHvcc } from '../h265/hvcc.js';
import { describeH265Profile, parseH265Sps } from '../h265/sps.js';
import { parseMpegAudioHeader } from '../mpeg-audio/mpeg-audio-header.js';
import { inspectMpegVideoPicture } from '../mpeg-video/sequence-header.js';
import { opusPacketSamples, parseOpusControlHeader } from './opus-control-header.js';
import { parsePesHeader, StreamId } from './pes.js';
import { parseRelayMark, type RelayMark } from './relay-mark.js';
import {
  AV1_DRAFT_FORMAT_ID,
  AV1_FORMAT_ID,
  OPUS_FORMAT_ID,
  opusChannels,
  parsePat,
  parsePmt,
  parsePsiSection,
  registrationFormat,
  StreamType,
  TableId,
  type Pmt,
  type PmtStream,
} from './psi.js';
import { parseTsPacket, PID_PAT, TS_PACKET_SIZE, TS_SYNC_BYTE, type TsPacket } from './ts-packet.js';

export interface TsDemuxerOptions {
  /** Largest PES accepted; a bigger one is dropped with a warning. Default 16 MiB. */
  maxPesBytes?: number;
  /** Bytes all unfinished PES of this demuxer may hold together. Default 32 MiB. */
  maxHeldPesBytes?: number;
  /** A cap shared with other demuxers (e.g. every publisher of a server); call close() to give back. */
  pesBudget?: ByteBudget;
  /**
   * Feedcast's relay stream (relay-mark.ts): a PES ends at the packet carrying the end-of-PES mark, and this is
   * called with each mark (the sender's time, the frame's DTS on its feed clock). Only for input from a Feedcast relay output: a mark is trusted.
   */
  onRelayMark?: (mark: RelayMark) => void;
}

export const DEFAULT_MAX_PES_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_HELD_PES_BYTES = 32 * 1024 * 1024;
/** Bytes searched for a sync byte pattern before the input is declared not to be MPEG-TS. */
const RESYNC_LIMIT_BYTES = 10 * TS_PACKET_SIZE;
/** How long (input time) and how much frames wait for every track's config. */
const MAX_HOLD_90K = 2 * 90_000;
const MAX_HOLD_BYTES = 8 * 1024 * 1024;
/** Largest PSI section (4096 for private sections) plus room for the next one's start. */
const SECTION_BUFFER_BYTES = 4096 + TS_PACKET_SIZE;
const FIRST_UNBOUNDED_PES_BYTES = 64 * 1024;

type EsKind = 'h264' | 'h265' | 'av1' | 'aac' | 'mpeg-audio' | 'mpeg-video' | 'opus';

interface PesAssembly {
  buf: Buffer;
  size: number;
  /** Total PES bytes (6 + PES_packet_length), once known and non-zero. */
  expected: number | undefined;
  offset: number;
}

interface AudioTail {
  data: Buffer;
  pts: number;
}

interface ElementaryStream {
  pid: number;
  streamType: number;
  id: number;
  esKind: EsKind;
  kind: TrackKind;
  /** The track as known now; undefined until its config is. */
  track: Track | undefined;
  /** In the list last given to sink.onTracks. */
  listed: boolean;
  /** Given up on (no config in time): its data is ignored. */
  dropped: boolean;
  pes: PesAssembly | undefined;
  lastCc: number | undefined;
  lastPesSize: number;
  unwrapper: Unwrapper | undefined;
  lastDts: number | undefined;
  lastStep: number;
  seenKeyframe: boolean;
  droppedBeforeKeyframe: number;
  /** Audio: bytes of a frame cut by the PES end, and the next frame's (fractional) pts. */
  audioTail: AudioTail | undefined;
  nextAudioPts: number | undefined;
  /** A string of the config fields, to notice changes cheaply. */
  configKey: string;
  opusChannels: number;
  vps: Buffer[];
  sps: Buffer[];
  pps: Buffer[];
}

interface SectionAssembly {
  buf: Buffer;
  size: number;
  collecting: boolean;
}

interface HeldFrame {
  es: ElementaryStream;
  frame: Frame;
}

export class TsDemuxer implements Demuxer {
  private readonly sink: DemuxerSink;
  private readonly maxPesBytes: number;
  private readonly maxHeldPesBytes: number;
  private readonly pesBudget: ByteBudget | undefined;
  private readonly onRelayMark: ((mark: RelayMark) => void) | undefined;
  /** Bytes of the PES buffers being filled, over every PID (taken from pesBudget too). */
  private pesHeld = 0;

  // framing
  private synced = false;
  private readonly stage = Buffer.alloc(TS_PACKET_SIZE);
  private stageLen = 0;
  private stageOffset = 0;
  private pending: Buffer | undefined;
  private pendingOffset = 0;
  private skipped = 0;
  private inputOffset = 0;

  // program
  private readonly sections = new Map<number, SectionAssembly>();
  private programNumber: number | undefined;
  private pmtPid: number | undefined;
  private pmtVersion: number | undefined;
  private readonly streams = new Map<number, ElementaryStream>();
  private nextTrackId = 0;

  // output
  private announced = false;
  private held: HeldFrame[] = [];
  private heldBytes = 0;
  private firstDts: number | undefined;
  /** The newest unwrapped DTS of any track: new tracks unwrap near it. */
  private timeRef: number | undefined;
  private readonly warned = new Set<string>();

  constructor(sink: DemuxerSink, options: TsDemuxerOptions = {}) {
    this.sink = sink;
    this.maxPesBytes = options.maxPesBytes ?? DEFAULT_MAX_PES_BYTES;
    this.maxHeldPesBytes = options.maxHeldPesBytes ?? DEFAULT_MAX_HELD_PES_BYTES;
    this.pesBudget = options.pesBudget;
    this.onRelayMark = options.onRelayMark;
  }

  /** Bytes the unfinished PES of every PID hold now. */
  get heldPesBytes(): number {
    return this.pesHeld;
  }

  /** Drops what is held without emitting it (the input went away); gives the shared budget back. */
  close(): void {
    for (const es of this.streams.values()) this.dropPes(es);
  }

  /** Takes `n` more PES bytes from this demuxer's cap and the shared one; false when either is full. */
  private reservePes(n: number): boolean {
    if (this.pesHeld + n > this.maxHeldPesBytes) return false;
    if (this.pesBudget !== undefined && !this.pesBudget.take(n)) return false;
    this.pesHeld += n;
    return true;
  }

  /** Forgets the PES being filled on `es` (if any) and gives its bytes back. */
  private dropPes(es: ElementaryStream): void {
    const pes = es.pes;
    if (pes === undefined) return;
    es.pes = undefined;
    this.pesHeld -= pes.buf.length;
    this.pesBudget?.give(pes.buf.length);
  }

  private refusePes(es: ElementaryStream, offset: number, bytes: number): void {
    const shared = this.pesBudget !== undefined && this.pesHeld + bytes <= this.maxHeldPesBytes;
    this.warn(
      shared
        ? `mpegts: PID 0x${es.pid.toString(16)}: PES at offset ${offset} dropped: the server's publishers hold ${this.pesBudget?.held ?? 0} bytes of unfinished PES (limit ${this.pesBudget?.maxBytes ?? 0})`
        : `mpegts: PID 0x${es.pid.toString(16)}: PES at offset ${offset} dropped: unfinished PES of all PIDs would hold ${this.pesHeld + bytes} bytes (maxHeldPesBytes ${this.maxHeldPesBytes})`,
    );
  }

  push(chunk: Buffer): void {
    const chunkOffset = this.inputOffset;
    this.inputOffset += chunk.length;
    if (!this.synced) {
      if (this.pending === undefined) {
        this.consume(chunk, 0, chunkOffset);
      } else {
        const joined = Buffer.concat([this.pending, chunk]); // rare path: only while out of sync
        this.pending = undefined;
        this.consume(joined, 0, this.pendingOffset);
      }
      return;
    }
    let pos = 0;
    if (this.stageLen > 0) {
      const n = Math.min(TS_PACKET_SIZE - this.stageLen, chunk.length);
      chunk.copy(this.stage, this.stageLen, 0, n);
      this.stageLen += n;
      pos = n;
      if (this.stageLen < TS_PACKET_SIZE) return;
      this.stageLen = 0;
      this.packet(this.stage, this.stageOffset);
    }
    this.consume(chunk, pos, chunkOffset);
  }

  end(): void {
    if (this.pending !== undefined && this.pending.length >= TS_PACKET_SIZE && this.pending[0] === TS_SYNC_BYTE) {
      this.packet(this.pending.subarray(0, TS_PACKET_SIZE), this.pendingOffset);
    } else if (this.pending !== undefined || this.stageLen > 0) {
      this.warn(`mpegts: input ended inside a packet (${this.pending?.length ?? this.stageLen} bytes dropped)`);
    }
    this.pending = undefined;
    this.stageLen = 0;
    for (const es of this.streams.values()) {
      const pes = es.pes;
      this.dropPes(es);
      if (pes === undefined) continue;
      if (pes.expected === undefined) this.processPes(es, pes.buf.subarray(0, pes.size), pes.offset);
      else this.warn(`mpegts: PID 0x${es.pid.toString(16)}: input ended inside a PES (${pes.size} of ${pes.expected} bytes)`);
    }
    for (const es of this.streams.values()) {
      if (es.audioTail !== undefined) {
        this.warn(
          `mpegts: PID 0x${es.pid.toString(16)}: input ended inside an audio frame (${es.audioTail.data.length} bytes dropped)`,
        );
        es.audioTail = undefined;
      }
    }
    if (!this.announced && this.held.length > 0) this.announce();
  }

  // ---- framing ----

  /** Alternates between reading packets in sync and searching for sync until `buf` is used up. */
  private consume(buf: Buffer, start: number, bufOffset: number): void {
    let pos = start;
    for (;;) {
      if (this.synced) {
        const lostAt = this.runSynced(buf, pos, bufOffset);
        if (lostAt === undefined) return;
        this.synced = false;
        this.warn(`mpegts: lost sync at offset ${bufOffset + lostAt}`);
        pos = lostAt;
      }
      const syncAt = this.search(buf, pos, bufOffset);
      if (syncAt === undefined) return;
      this.synced = true;
      pos = syncAt;
    }
  }

  /**
   * Feeds whole packets from `buf[start..]` and stages a partial last one. Returns where a
   * sync byte was missing, or undefined when the buffer was used up.
   */
  private runSynced(buf: Buffer, start: number, bufOffset: number): number | undefined {
    let pos = start;
    while (buf.length - pos >= TS_PACKET_SIZE) {
      if (buf[pos] !== TS_SYNC_BYTE) return pos;
      this.packet(buf.subarray(pos, pos + TS_PACKET_SIZE), bufOffset + pos);
      pos += TS_PACKET_SIZE;
    }
    if (pos < buf.length) {
      if (buf[pos] !== TS_SYNC_BYTE) return pos;
      buf.copy(this.stage, 0, pos);
      this.stageLen = buf.length - pos;
      this.stageOffset = bufOffset + pos;
    }
    return undefined;
  }

  /**
   * Looks for a sync byte followed by another one 188 bytes later and returns its position.
   * Keeps an unconfirmed candidate (at most 188 bytes) in `pending` for the next push.
   */
  private search(buf: Buffer, start: number, bufOffset: number): number | undefined {
    for (let p = start; p < buf.length; p++) {
      if (buf[p] !== TS_SYNC_BYTE) continue;
      if (p + TS_PACKET_SIZE < buf.length) {
        if (buf[p + TS_PACKET_SIZE] !== TS_SYNC_BYTE) continue;
        const skipped = this.skipped + p - start;
        if (skipped > 0) this.warn(`mpegts: skipped ${skipped} bytes to regain sync at offset ${bufOffset + p}`);
        this.skipped = 0;
        return p;
      }
      this.skipped += p - start;
      this.checkResyncLimit(bufOffset + p);
      this.pending = Buffer.from(buf.subarray(p));
      this.pendingOffset = bufOffset + p;
      return undefined;
    }
    this.skipped += buf.length - start;
    this.checkResyncLimit(bufOffset + buf.length);
    return undefined;
  }

  private checkResyncLimit(offset: number): void {
    if (this.skipped > RESYNC_LIMIT_BYTES) {
      throw new MalformedInputError('mpegts', offset, `no sync byte pattern found in ${this.skipped} bytes`);
    }
  }

  // ---- packets ----

  private packet(pkt: Buffer, offset: number): void {
    let header: TsPacket;
    try {
      header = parseTsPacket(pkt);
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
      this.warn(`mpegts: bad packet at offset ${offset}: ${err.message}`);
      return;
    }
    const pid = header.pid;
    const es = this.streams.get(pid);
    if (header.transportError) {
      this.warn(`mpegts: PID 0x${pid.toString(16)}: transport_error_indicator set at offset ${offset}, packet dropped`);
      if (es !== undefined) this.dropPes(es);
      return;
    }
    if (pid === PID_PAT || pid === this.pmtPid) {
      if (header.hasPayload) this.psiPacket(pid, pkt.subarray(header.payloadOffset), header.payloadUnitStart, offset);
      return;
    }
    if (es === undefined || es.dropped) return;
    if (!header.hasPayload) return;
    if (es.lastCc !== undefined && !header.discontinuity) {
      if (header.continuityCounter === es.lastCc) return; // a duplicate packet (2.4.3.3)
      if (header.continuityCounter !== ((es.lastCc + 1) & 0x0f)) {
        if (es.pes !== undefined) {
          this.warn(
            `mpegts: PID 0x${pid.toString(16)}: continuity counter ${header.continuityCounter} after ${es.lastCc} at offset ${offset}, PES dropped`,
          );
          this.dropPes(es);
        }
      }
    }
    es.lastCc = header.continuityCounter;
    if (header.scrambling !== 0) {
      this.warnOnce(`scrambled ${pid}`, `mpegts: PID 0x${pid.toString(16)} is scrambled: its packets are dropped`);
      return;
    }
    let markedEnd = false;
    if (this.onRelayMark !== undefined && header.privateData !== undefined) {
      const mark = parseRelayMark(header.privateData);
      if (mark !== undefined) {
        markedEnd = true;
        this.onRelayMark(mark);
      }
    }
    this.pesPacket(es, pkt.subarray(header.payloadOffset), header.payloadUnitStart, offset, markedEnd);
  }

  // ---- PES assembly ----

  private pesPacket(es: ElementaryStream, payload: Buffer, unitStart: boolean, offset: number, markedEnd = false): void {
    if (unitStart) {
      const previous = es.pes;
      this.dropPes(es);
      if (previous !== undefined) {
        if (previous.expected === undefined) this.processPes(es, previous.buf.subarray(0, previous.size), previous.offset);
        else
          this.warn(
            `mpegts: PID 0x${es.pid.toString(16)}: PES at offset ${previous.offset} cut at ${previous.size} of ${previous.expected} bytes`,
          );
      }
      let expected: number | undefined;
      if (payload.length >= 6) {
        const length = payload.readUInt16BE(4);
        if (length > 0) expected = 6 + length;
      }
      const capacity = Math.min(
        expected ?? Math.max(FIRST_UNBOUNDED_PES_BYTES, es.lastPesSize + (es.lastPesSize >> 1)),
        this.maxPesBytes,
      );
      if (!this.reservePes(capacity)) {
        this.refusePes(es, offset, capacity);
        return;
      }
      es.pes = { buf: Buffer.allocUnsafe(capacity), size: 0, expected, offset };
    }
    const pes = es.pes;
    if (pes === undefined) return; // waiting for the next PES start
    const needed = pes.size + payload.length;
    if (needed > pes.buf.length) {
      if (pes.expected !== undefined && pes.expected <= pes.buf.length) {
        // The last packet carries bytes past PES_packet_length: keep only the PES.
      } else if (needed > this.maxPesBytes) {
        this.warn(
          `mpegts: PID 0x${es.pid.toString(16)}: PES at offset ${pes.offset} is over ${this.maxPesBytes} bytes (maxPesBytes), dropped`,
        );
        this.dropPes(es);
        return;
      } else {
        const size = Math.min(Math.max(needed, pes.buf.length * 2), this.maxPesBytes);
        if (!this.reservePes(size - pes.buf.length)) {
          this.refusePes(es, pes.offset, size - pes.buf.length);
          this.dropPes(es);
          return;
        }
        const grown = Buffer.allocUnsafe(size);
        pes.buf.copy(grown, 0, 0, pes.size);
        pes.buf = grown;
      }
    }
    const n = Math.min(payload.length, pes.buf.length - pes.size);
    payload.copy(pes.buf, pes.size, 0, n);
    pes.size += n;
    if (pes.expected === undefined && pes.size >= 6 && pes.size - n < 6) {
      // The length field arrived only now (a PES starting with less than 6 payload bytes).
      const length = pes.buf.readUInt16BE(4);
      if (length > 0) pes.expected = 6 + length;
    }
    if (pes.expected !== undefined && pes.size >= pes.expected) {
      this.dropPes(es);
      this.processPes(es, pes.buf.subarray(0, pes.expected), pes.offset);
    } else if (markedEnd && pes.expected === undefined) {
      // An unbounded PES that the relay's sender marked as ended: no need to wait for the next one.
      this.dropPes(es);
      this.processPes(es, pes.buf.subarray(0, pes.size), pes.offset);
    }
  }

  /** One complete PES: header, times, then the codec's handler. */
  private processPes(es: ElementaryStream, buf: Buffer, offset: number): void {
    es.lastPesSize = buf.length;
    try {
      const r = new ByteReader(buf, 'mpegts pes');
      const header = parsePesHeader(r);
      if (header.streamId === StreamId.padding) return;
      let data = buf.subarray(header.payloadOffset);
      // Frames of these codecs are views into the PES buffer: an unbounded PES's buffer may be
      // far bigger than its content, so right-size it rather than pin the slack in every frame.
      // (H.264/H.265 frames are rebuilt anyway.)
      if (
        es.esKind !== 'h264' &&
        es.esKind !== 'h265' &&
        es.esKind !== 'av1' &&
        data.buffer.byteLength > 2 * data.length + 4096
      ) {
        data = Buffer.from(data);
      }
      let pts: number | undefined;
      let dts: number | undefined;
      if (header.pts !== undefined) {
        const rawDts = header.dts ?? header.pts;
        es.unwrapper ??= this.newUnwrapper();
        dts = es.unwrapper.unwrap(rawDts);
        pts = dts + wrapDiff(header.pts, rawDts);
        if (pts < dts) pts = dts;
        if (es.lastDts !== undefined && dts > es.lastDts) es.lastStep = dts - es.lastDts;
        es.lastDts = dts;
        this.timeRef = dts;
        this.checkHoldLimits(dts);
      }
      switch (es.esKind) {
        case 'h264':
        case 'h265':
          this.handleH26x(es, data, pts, dts);
          break;
        case 'mpeg-video':
          this.handleMpegVideo(es, data, pts, dts);
          break;
        case 'av1':
          this.handleAv1(es, data, pts, dts);
          break;
        case 'aac':
        case 'mpeg-audio':
          this.handleAudio(es, data, pts);
          break;
        case 'opus':
          this.handleOpus(es, data, pts);
          break;
      }
    } catch (err) {
      if (!(err instanceof MalformedInputError) && !(err instanceof FrameTooLargeError)) throw err;
      this.warn(`mpegts: PID 0x${es.pid.toString(16)}: PES at offset ${offset} dropped (${err.code}): ${err.message}`);
    }
  }

  private newUnwrapper(): Unwrapper {
    const u = new Unwrapper(TS_WRAP);
    if (this.timeRef !== undefined) u.unwrap(this.timeRef); // place the first value near the other tracks
    return u;
  }

  /** Video times of a PES without PTS: one step after the previous frame. */
  private videoTimes(es: ElementaryStream, pts: number | undefined, dts: number | undefined): [number, number] | undefined {
    if (pts !== undefined && dts !== undefined) return [pts, dts];
    if (es.lastDts === undefined) return undefined;
    es.lastDts += es.lastStep;
    return [es.lastDts, es.lastDts];
  }

  // ---- codecs ----

  private handleH26x(es: ElementaryStream, data: Buffer, pts: number | undefined, dts: number | undefined): void {
    const times = this.videoTimes(es, pts, dts);
    if (times === undefined) {
      this.warn(`mpegts: PID 0x${es.pid.toString(16)}: video PES without PTS before any timed one, dropped`);
      return;
    }
    const h265 = es.esKind === 'h265';
    const nals = splitAnnexB(data, MAX_NALS_PER_FRAME);
    const kept: Buffer[] = [];
    const vps: Buffer[] = [];
    const sps: Buffer[] = [];
    const pps: Buffer[] = [];
    let keyframe = false;
    for (const nal of nals) {
      if (h265) {
        const type = h265NalType(nal);
        if (type === H265Nal.aud) continue;
        if (type === H265Nal.vps) vps.push(nal);
        else if (type === H265Nal.sps) sps.push(nal);
        else if (type === H265Nal.pps) pps.push(nal);
        else if (type >= H265Nal.irapFirst && type <= H265Nal.irapLast) keyframe = true;
      } else {
        const type = h264NalType(nal);
        if (type === H264Nal.aud) continue;
        if (type === H264Nal.sps) sps.push(nal);
        else if (type === H264Nal.pps) pps.push(nal);
        else if (type === H264Nal.idr) keyframe = true;
        else if (type === H264Nal.sei && hasRecoveryPointSei(nal)) keyframe = true;
      }
      kept.push(nal);
    }
    if (kept.length === 0) return;
    let changed = false;
    if (vps.length > 0 && !sameNals(es.vps, vps)) [es.vps, changed] = [vps.map((n) => Buffer.from(n)), true];
    if (sps.length > 0 && !sameNals(es.sps, sps)) [es.sps, changed] = [sps.map((n) => Buffer.from(n)), true];
    if (pps.length > 0 && !sameNals(es.pps, pps)) [es.pps, changed] = [pps.map((n) => Buffer.from(n)), true];
    if (changed) {
      try {
        this.updateH26xTrack(es);
      } catch (err) {
        es.vps = [];
        es.sps = [];
        es.pps = []; // parse them again when they come back
        throw err;
      }
    }
    this.emit(es, { trackId: es.id, pts90k: times[0], dts90k: times[1], keyframe, data: joinLengthPrefixed(kept) });
  }

  private updateH26xTrack(es: ElementaryStream): void {
    const firstSps = es.sps[0];
    if (firstSps === undefined || es.pps.length === 0) return;
    if (es.esKind === 'h265') {
      if (es.vps.length === 0) return;
      const info = parseH265Sps(firstSps);
      this.setTrack(es, {
        id: es.id,
        kind: 'video',
        codec: 'h265',
        config: buildHvcc(es.vps, es.sps, es.pps),
        width: info.width,
        height: info.height,
        profile: describeH265Profile(info),
      });
    } else {
      const info = parseH264Sps(firstSps);
      this.setTrack(es, {
        id: es.id,
        kind: 'video',
        codec: 'h264',
        config: buildAvcc(es.sps, es.pps),
        width: info.width,
        height: info.height,
        profile: describeH264Profile(info),
      });
    }
  }

  /** One access unit of AV1 OBUs: the track from its sequence header, a Frame in Feedcast's layout. */
  private handleAv1(es: ElementaryStream, data: Buffer, pts: number | undefined, dts: number | undefined): void {
    const times = this.videoTimes(es, pts, dts);
    if (times === undefined) {
      this.warn(`mpegts: PID 0x${es.pid.toString(16)}: video PES without PTS before any timed one, dropped`);
      return;
    }
    const obus = readStartCodeObus(data);
    const sequence = obus.find((o) => o.type === ObuType.sequenceHeader);
    if (sequence !== undefined) {
      const key = sequence.payload.toString('hex');
      if (key !== es.configKey) {
        const info = parseSequenceHeader(sequence.payload);
        const config = buildAv1c(sequence);
        es.configKey = key;
        this.setTrack(es, { id: es.id, kind: 'video', codec: 'av1', config, width: info.width, height: info.height });
      }
    }
    const frame = writeObus(obus);
    if (frame.length === 0) return;
    this.emit(es, { trackId: es.id, pts90k: times[0], dts90k: times[1], keyframe: isKeyTemporalUnit(obus), data: frame });
  }

  private handleMpegVideo(es: ElementaryStream, data: Buffer, pts: number | undefined, dts: number | undefined): void {
    const times = this.videoTimes(es, pts, dts);
    if (times === undefined) {
      this.warn(`mpegts: PID 0x${es.pid.toString(16)}: video PES without PTS before any timed one, dropped`);
      return;
    }
    const info = inspectMpegVideoPicture(data);
    const seq = info.sequence;
    if (seq !== undefined) {
      // ffmpeg writes stream_type 0x02 for MPEG-1 too: the sequence extension tells them apart.
      const codec = info.mpeg2 ? 'mpeg2video' : 'mpeg1video';
      const key = `${codec} ${seq.width}x${seq.height}`;
      if (key !== es.configKey) {
        es.configKey = key;
        this.setTrack(es, { id: es.id, kind: 'video', codec, width: seq.width, height: seq.height });
      }
    }
    const keyframe = seq !== undefined || info.pictureCodingType === 1;
    if (data.length === 0) return;
    this.emit(es, { trackId: es.id, pts90k: times[0], dts90k: times[1], keyframe, data });
  }

  /** ADTS AAC or MPEG audio: one Frame per audio frame, frames cut by a PES end carried over. */
  private handleAudio(es: ElementaryStream, data: Buffer, pesPts: number | undefined): void {
    const tail = es.audioTail;
    es.audioTail = undefined;
    const buf = tail !== undefined ? Buffer.concat([tail.data, data]) : data;
    let nextPts: number;
    let ptsAfterTail: number | undefined;
    if (tail !== undefined) {
      nextPts = tail.pts;
      ptsAfterTail = pesPts;
    } else if (pesPts !== undefined) {
      nextPts = pesPts;
    } else if (es.nextAudioPts !== undefined) {
      nextPts = es.nextAudioPts;
    } else {
      this.warn(`mpegts: PID 0x${es.pid.toString(16)}: audio PES without PTS before any timed one, dropped`);
      return;
    }
    const aac = es.esKind === 'aac';
    const minHeader = aac ? 7 : 4;
    let pos = 0;
    let skippedFrom: number | undefined;
    while (pos < buf.length) {
      if (buf.length - pos < minHeader) {
        es.audioTail = { data: Buffer.from(buf.subarray(pos)), pts: nextPts };
        break;
      }
      const b1 = buf[pos + 1] as number;
      const syncLike = buf[pos] === 0xff && (aac ? (b1 & 0xf6) === 0xf0 : (b1 & 0xe0) === 0xe0);
      let frame: { headerLength: number; frameLength: number; samples: number; sampleRate: number } | undefined;
      if (syncLike) {
        try {
          if (aac) {
            const h = parseAdtsHeader(buf, pos);
            frame = {
              headerLength: h.headerLength,
              frameLength: h.frameLength,
              samples: AAC_FRAME_SAMPLES,
              sampleRate: h.sampleRate,
            };
            const key = `${h.objectType}/${h.samplingIndex}/${h.channels}`;
            if (key !== es.configKey && pos + h.frameLength <= buf.length) {
              es.configKey = key;
              this.setTrack(es, {
                id: es.id,
                kind: 'audio',
                codec: 'aac',
                config: buildAudioSpecificConfig(h.objectType, h.samplingIndex, h.channels),
                sampleRate: h.sampleRate,
                channels: h.channels === 0 ? undefined : h.channels,
              });
            }
          } else {
            const h = parseMpegAudioHeader(buf, pos);
            frame = { headerLength: 0, frameLength: h.frameLength, samples: h.samplesPerFrame, sampleRate: h.sampleRate };
            const key = `${h.version}/${h.layer}/${h.sampleRate}/${h.channels}`;
            if (key !== es.configKey && pos + h.frameLength <= buf.length) {
              es.configKey = key;
              this.setTrack(es, {
                id: es.id,
                kind: 'audio',
                codec: h.layer === 3 ? 'mp3' : 'mp2',
                sampleRate: h.sampleRate,
                channels: h.channels,
              });
            }
          }
        } catch (err) {
          if (!(err instanceof MalformedInputError)) throw err;
          frame = undefined;
        }
      }
      if (frame === undefined) {
        skippedFrom ??= pos;
        pos++;
        continue;
      }
      if (skippedFrom !== undefined) {
        this.warn(`mpegts: PID 0x${es.pid.toString(16)}: skipped ${pos - skippedFrom} bytes of audio without a frame header`);
        skippedFrom = undefined;
      }
      if (pos + frame.frameLength > buf.length) {
        es.audioTail = { data: Buffer.from(buf.subarray(pos)), pts: nextPts };
        break;
      }
      const payload = buf.subarray(pos + frame.headerLength, pos + frame.frameLength);
      const t = Math.round(nextPts);
      this.emit(es, { trackId: es.id, pts90k: t, dts90k: t, keyframe: true, data: payload });
      nextPts += (frame.samples * 90_000) / frame.sampleRate;
      if (ptsAfterTail !== undefined) {
        nextPts = ptsAfterTail; // the PES's PTS is that of the first frame starting in it
        ptsAfterTail = undefined;
      }
      pos += frame.frameLength;
    }
    if (skippedFrom !== undefined) {
      this.warn(
        `mpegts: PID 0x${es.pid.toString(16)}: skipped ${buf.length - skippedFrom} bytes of audio without a frame header`,
      );
    }
    es.nextAudioPts = nextPts;
  }

  private handleOpus(es: ElementaryStream, data: Buffer, pesPts: number | undefined): void {
    let nextPts = pesPts ?? es.nextAudioPts;
    if (nextPts === undefined) {
      this.warn(`mpegts: PID 0x${es.pid.toString(16)}: audio PES without PTS before any timed one, dropped`);
      return;
    }
    let pos = 0;
    while (pos < data.length) {
      const h = parseOpusControlHeader(data, pos);
      const start = pos + h.headerLength;
      if (start + h.auSize > data.length) {
        throw new MalformedInputError(
          'opus control header',
          pos,
          `au_size ${h.auSize} runs past the PES end (${data.length - start} bytes left)`,
        );
      }
      const packet = data.subarray(start, start + h.auSize);
      pos = start + h.auSize;
      if (packet.length === 0) continue;
      const t = Math.round(nextPts);
      this.emit(es, { trackId: es.id, pts90k: t, dts90k: t, keyframe: true, data: packet });
      nextPts += (opusPacketSamples(packet) * 90_000) / 48_000;
    }
    es.nextAudioPts = nextPts;
  }

  // ---- tracks and output ----

  private setTrack(es: ElementaryStream, track: Track): void {
    const previous = es.track;
    es.track = track;
    if (previous !== undefined && sameTrackConfig(previous, track) && previous.profile === track.profile) return;
    if (this.announced && !es.dropped) {
      es.listed = true;
      this.sink.onTracks(this.listedTracks());
    } else if (!this.announced && this.allReady()) {
      this.announce();
    }
  }

  private allReady(): boolean {
    if (this.streams.size === 0) return false;
    for (const es of this.streams.values()) if (!es.dropped && es.track === undefined) return false;
    return true;
  }

  private listedTracks(): Track[] {
    const tracks: Track[] = [];
    for (const es of [...this.streams.values()].sort((a, b) => a.id - b.id)) {
      if (es.listed && es.track !== undefined) tracks.push(es.track);
    }
    return tracks;
  }

  /** Lists the ready tracks, gives up on the others, and releases the frames held so far. */
  private announce(): void {
    const missing: string[] = [];
    for (const es of this.streams.values()) {
      if (es.dropped) continue;
      if (es.track === undefined) {
        es.dropped = true;
        this.dropPes(es);
        missing.push(`PID 0x${es.pid.toString(16)} (${es.esKind})`);
      } else {
        es.listed = true;
      }
    }
    if (missing.length > 0) this.warn(`mpegts: no codec config for ${missing.join(', ')} in time: dropped`);
    this.announced = true;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.sink.onTracks(this.listedTracks());
    for (const { es, frame } of held) if (es.listed) this.sink.onFrame(frame);
  }

  private checkHoldLimits(dts: number): void {
    if (this.announced) return;
    this.firstDts ??= dts;
    if (dts - this.firstDts > MAX_HOLD_90K && this.streams.size > 0) this.announce();
  }

  private emit(es: ElementaryStream, frame: Frame): void {
    if (es.dropped) return;
    if (es.kind === 'video' && !es.seenKeyframe) {
      if (!frame.keyframe || es.track === undefined) {
        es.droppedBeforeKeyframe++;
        if (es.droppedBeforeKeyframe === 1)
          this.warn(`mpegts: PID 0x${es.pid.toString(16)}: dropping video frames before the first keyframe`);
        return;
      }
      es.seenKeyframe = true;
    }
    if (this.announced) {
      if (es.listed) this.sink.onFrame(frame);
      return;
    }
    this.held.push({ es, frame });
    this.heldBytes += frame.data.length;
    if (this.heldBytes > MAX_HOLD_BYTES) this.announce();
  }

  // ---- PSI ----

  private psiPacket(pid: number, payload: Buffer, unitStart: boolean, offset: number): void {
    let s = this.sections.get(pid);
    if (s === undefined) {
      s = { buf: Buffer.allocUnsafe(SECTION_BUFFER_BYTES), size: 0, collecting: false };
      this.sections.set(pid, s);
    }
    let data = payload;
    if (unitStart) {
      const pointer = data[0] ?? 0;
      if (1 + pointer > data.length) {
        this.warn(`mpegts: PID 0x${pid.toString(16)}: pointer_field ${pointer} past the packet end at offset ${offset}`);
        s.collecting = false;
        return;
      }
      if (s.collecting) {
        this.appendSection(pid, s, data.subarray(1, 1 + pointer), offset);
      }
      s.collecting = true;
      s.size = 0;
      data = data.subarray(1 + pointer);
    }
    if (s.collecting) this.appendSection(pid, s, data, offset);
  }

  private appendSection(pid: number, s: SectionAssembly, data: Buffer, offset: number): void {
    if (s.size + data.length > s.buf.length) {
      this.warn(`mpegts: PID 0x${pid.toString(16)}: section over ${SECTION_BUFFER_BYTES} bytes at offset ${offset}, dropped`);
      s.collecting = false;
      s.size = 0;
      return;
    }
    data.copy(s.buf, s.size);
    s.size += data.length;
    // Complete sections are handled and removed from the front; several may share a packet.
    let start = 0;
    while (s.size - start >= 3) {
      if (s.buf[start] === 0xff) {
        s.collecting = false; // stuffing: no more sections in this unit
        break;
      }
      const length = 3 + (s.buf.readUInt16BE(start + 1) & 0x0fff);
      if (s.size - start < length) break;
      this.section(pid, Buffer.from(s.buf.subarray(start, start + length)), offset);
      start += length;
    }
    if (start > 0) {
      s.buf.copy(s.buf, 0, start, s.size);
      s.size -= start;
    }
    if (!s.collecting) s.size = 0;
  }

  private section(pid: number, buf: Buffer, offset: number): void {
    try {
      const section = parsePsiSection(buf);
      if (!section.currentNext) return;
      if (pid === PID_PAT) {
        if (section.tableId !== TableId.pat) return;
        this.handlePat(parsePat(section));
      } else if (section.tableId === TableId.pmt) {
        this.handlePmt(parsePmt(section));
      }
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
      this.warn(`mpegts: PID 0x${pid.toString(16)}: section at offset ${offset} dropped: ${err.message}`);
    }
  }

  private handlePat(programs: readonly { programNumber: number; pmtPid: number }[]): void {
    const first = programs[0];
    if (first === undefined) return;
    if (programs.length > 1) {
      this.warnOnce('programs', `mpegts: ${programs.length} programs in the PAT: only program ${first.programNumber} is read`);
    }
    if (first.programNumber === this.programNumber && first.pmtPid === this.pmtPid) return;
    if (first.pmtPid === PID_PAT || this.streams.has(first.pmtPid)) {
      this.warn(`mpegts: PAT points the PMT at PID 0x${first.pmtPid.toString(16)}, which is in use: ignored`);
      return;
    }
    this.programNumber = first.programNumber;
    if (this.pmtPid !== undefined) this.sections.delete(this.pmtPid);
    this.pmtPid = first.pmtPid;
    this.pmtVersion = undefined;
  }

  private handlePmt(pmt: Pmt): void {
    if (pmt.programNumber !== this.programNumber) return;
    if (pmt.version === this.pmtVersion) return;
    this.pmtVersion = pmt.version;
    const seen = new Set<number>();
    let changed = false;
    for (const stream of pmt.streams) {
      if (stream.pid === PID_PAT || stream.pid === this.pmtPid || seen.has(stream.pid)) continue;
      seen.add(stream.pid);
      const kind = esKindOf(stream);
      const existing = this.streams.get(stream.pid);
      if (existing !== undefined && existing.streamType === stream.streamType && kind === existing.esKind) continue;
      if (existing !== undefined) {
        this.dropPes(existing);
        this.streams.delete(stream.pid);
        changed = true;
      }
      if (kind === undefined) {
        this.warnOnce(
          `type ${stream.pid}/${stream.streamType}`,
          `mpegts: PID 0x${stream.pid.toString(16)} has stream_type 0x${stream.streamType.toString(16)}, which is not supported: skipped`,
        );
        continue;
      }
      this.streams.set(stream.pid, this.newStream(stream, kind));
    }
    for (const pid of [...this.streams.keys()]) {
      if (!seen.has(pid)) {
        const gone = this.streams.get(pid);
        if (gone !== undefined) this.dropPes(gone);
        this.streams.delete(pid);
        changed = true;
      }
    }
    if (changed && this.announced) this.sink.onTracks(this.listedTracks());
    if (!this.announced && this.allReady()) this.announce(); // e.g. Opus only: ready without data
  }

  private newStream(stream: PmtStream, esKind: EsKind): ElementaryStream {
    const kind: TrackKind =
      esKind === 'h264' || esKind === 'h265' || esKind === 'av1' || esKind === 'mpeg-video' ? 'video' : 'audio';
    const es: ElementaryStream = {
      pid: stream.pid,
      streamType: stream.streamType,
      id: this.nextTrackId++,
      esKind,
      kind,
      track: undefined,
      listed: false,
      dropped: false,
      pes: undefined,
      lastCc: undefined,
      lastPesSize: 0,
      unwrapper: undefined,
      lastDts: undefined,
      lastStep: kind === 'video' ? 3600 : 1920,
      seenKeyframe: false,
      droppedBeforeKeyframe: 0,
      audioTail: undefined,
      nextAudioPts: undefined,
      configKey: '',
      opusChannels: 2,
      vps: [],
      sps: [],
      pps: [],
    };
    if (esKind === 'opus') {
      es.opusChannels = opusChannels(stream.descriptors);
      es.track = { id: es.id, kind: 'audio', codec: 'opus' satisfies Codec, sampleRate: 48_000, channels: es.opusChannels };
    }
    return es;
  }

  private warn(message: string): void {
    this.sink.onWarning?.(message);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warn(message);
  }
}

function esKindOf(stream: PmtStream): EsKind | undefined {
  switch (stream.streamType) {
    case StreamType.h264:
      return 'h264';
    case StreamType.h265:
      return 'h265';
    case StreamType.aacAdts:
      return 'aac';
    case StreamType.mpeg1Audio:
    case StreamType.mpeg2Audio:
      return 'mpeg-audio';
    case StreamType.mpeg1Video:
    case StreamType.mpeg2Video:
      return 'mpeg-video';
    case StreamType.privatePes: {
      const format = registrationFormat(stream.descriptors);
      if (format === OPUS_FORMAT_ID) return 'opus';
      if (format === AV1_FORMAT_ID || format === AV1_DRAFT_FORMAT_ID) return 'av1';
      return undefined;
    }
    default:
      return undefined;
  }
}

/** a - b for 33-bit values, in -2^32 .. 2^32. */
function wrapDiff(a: number, b: number): number {
  let d = (a - b) % TS_WRAP;
  if (d > TS_WRAP / 2) d -= TS_WRAP;
  else if (d < -TS_WRAP / 2) d += TS_WRAP;
  return d;
}

function sameNals(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  return a.length === b.length && a.every((nal, i) => b[i] !== undefined && nal.equals(b[i]));
}

/**
 * True when an H.264 SEI NAL carries a recovery point (payloadType 6, H.264 D.1.8): a random
 * access point without an IDR picture.
 *
 *  sei_message: { payloadType: 0xFF bytes + last byte, summed } { payloadSize: same } payload
 */
function hasRecoveryPointSei(nal: Buffer): boolean {
  const rbsp = unescapeRbsp(nal.subarray(1));
  let pos = 0;
  while (pos < rbsp.length && rbsp[pos] !== 0x80) {
    let type = 0;
    let b: number | undefined;
    do {
      b = rbsp[pos++];
      if (b === undefined) return false;
      type += b;
    } while (b === 0xff);
    let size = 0;
    do {
      b = rbsp[pos++];
      if (b === undefined) return false;
      size += b;
    } while (b === 0xff);
    if (type === 6) return true;
    pos += size;
  }
  return false;
}
