// FFM2 demuxer (ffserver-reference.md §5.3-5.4): what an ffmpeg <= 3.4 publisher POSTs to
// `http://host:8090/feed1.ffm`: its FFM2 header block, then 4096-byte data packets whose frames
// span packets. A framer: any chunking of the body works.
//
// Decisions a caller may care about:
// - Streams whose codec Feedcast does not carry (flv1, msmpeg4v3, mpeg4, wmav2, vorbis ...) are
//   skipped, named in one warning; the others become tracks (track id = FFM stream index).
// - A packet that does not start with "fm", or whose frame offset disagrees with the frames before
//   it, is a desynchronized stream: push() throws MalformedInputError (ffserver disconnected too).
// - Timestamps are the publisher's wall clock in µs; they come out in 90 kHz relative to the first
//   frame (the Feed's clock then places them on its own timeline).
// - Frames are held until every carried stream has its config (H.264 SPS/PPS, AAC), for at most
//   2 s of input time or 8 MiB; then the ready tracks are announced and the others dropped.
// - Video frames before a stream's first keyframe are dropped.

import { MalformedInputError, UnsupportedError } from '../../errors.js';
import type { Codec } from '../../media/codec.js';
import type { Demuxer, DemuxerSink } from '../../media/demuxer.js';
import type { Frame } from '../../media/frame.js';
import { sameTrackConfig, type Track } from '../../media/track.js';
import { buildAudioSpecificConfig, parseAdtsHeader, parseAudioSpecificConfig } from '../aac/audio-specific-config.js';
import { buildAvcc, parseAvcc } from '../h264/avcc.js';
import { H264Nal, h264NalType, joinLengthPrefixed, MAX_NALS_PER_FRAME, splitAnnexB, splitLengthPrefixed } from '../h264/nal.js';
import { describeH264Profile, parseH264Sps } from '../h264/sps.js';
import { parseMpegAudioHeader } from '../mpeg-audio/mpeg-audio-header.js';
import { inspectMpegVideoPicture } from '../mpeg-video/sequence-header.js';
import {
  ffmCodecName,
  ffmHeaderLength,
  ffmOption,
  FFM_CODEC_IDS,
  FFM_MAX_HEADER_BYTES,
  FFM_PACKET_SIZE,
  parseFfmHeader,
  type FfmHeader,
  type FfmStreamHeader,
} from './ffm-header.js';
import { ffmFrameHeaderLength, parseFfmFrameHeader, parseFfmPacketHeader, type FfmFrameHeader } from './ffm-packet.js';

/** The FFM codecs Feedcast carries, and their Feedcast names. */
const CARRIED: ReadonlyMap<number, Codec> = new Map<number, Codec>([
  [FFM_CODEC_IDS.h264, 'h264'],
  [FFM_CODEC_IDS.mpeg1video, 'mpeg1video'],
  [FFM_CODEC_IDS.mpeg2video, 'mpeg2video'],
  [FFM_CODEC_IDS.mjpeg, 'mjpeg'],
  [FFM_CODEC_IDS.aac, 'aac'],
  [FFM_CODEC_IDS.mp3, 'mp3'],
  [FFM_CODEC_IDS.mp2, 'mp2'],
  [FFM_CODEC_IDS.ac3, 'ac3'],
]);

const MAX_HOLD_90K = 2 * 90_000;
const MAX_HELD_BYTES = 8 * 1024 * 1024;
/** The largest frame a publisher may declare (FFM's own limit is 16 MiB - 1). */
export const FFM_MAX_FRAME_BYTES = 8 * 1024 * 1024;

interface StreamState {
  readonly index: number;
  readonly header: FfmStreamHeader;
  /** undefined: skipped (a codec Feedcast does not carry). */
  readonly codec: Codec | undefined;
  track: Track | undefined;
  listed: boolean;
  dropped: boolean;
  seenKeyframe: boolean;
  /** H.264: NAL length size of avcC extradata (packets are then length-prefixed), else Annex B. */
  nalLengthSize: number | undefined;
  sps: Buffer[];
  pps: Buffer[];
  /** AAC without extradata: frames carry ADTS headers, stripped here. */
  adts: boolean;
}

interface PendingFrame {
  readonly header: FfmFrameHeader;
  readonly parts: Buffer[];
  remaining: number;
}

export interface FfmDemuxerOptions {
  maxFrameBytes?: number;
}

export class FfmDemuxer implements Demuxer {
  private readonly sink: DemuxerSink;
  private readonly maxFrameBytes: number;
  /** Bytes not yet consumed: the header area, or less than one packet. */
  private pending: Buffer = Buffer.alloc(0);
  /** Absolute input offset of pending[0]. */
  private offset = 0;
  private header: FfmHeader | undefined;
  private streams: StreamState[] = [];
  private packetIndex = 0;
  private synced = false;
  private skippedUnsynced = 0;
  /** The frame header being gathered (it may span packets). */
  private frameHead: Buffer[] = [];
  private frameHeadBytes = 0;
  private frame: PendingFrame | undefined;
  /** µs: the first frame's dts; times come out relative to it. */
  private baseUs: number | undefined;
  private announced = false;
  private held: Array<{ stream: StreamState; frame: Frame }> = [];
  private heldBytes = 0;
  private firstHeldDts: number | undefined;

  constructor(sink: DemuxerSink, options: FfmDemuxerOptions = {}) {
    this.sink = sink;
    this.maxFrameBytes = options.maxFrameBytes ?? FFM_MAX_FRAME_BYTES;
  }

  /** The publisher's header, once read. */
  get ffmHeader(): FfmHeader | undefined {
    return this.header;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let pos = 0;
    if (this.header === undefined) {
      const length = ffmHeaderLength(buf);
      if (length === undefined) {
        this.keep(buf, 0);
        return;
      }
      if (buf.length < length) {
        if (length > FFM_MAX_HEADER_BYTES) throw new MalformedInputError('ffm', 0, `header area of ${length} bytes`);
        this.keep(buf, 0);
        return;
      }
      this.readHeader(parseFfmHeader(buf.subarray(0, length)));
      pos = length;
    }
    while (buf.length - pos >= FFM_PACKET_SIZE) {
      this.packet(buf, pos);
      pos += FFM_PACKET_SIZE;
    }
    this.keep(buf, pos);
  }

  end(): void {
    const leftover = this.pending.length;
    this.pending = Buffer.alloc(0);
    if (!this.announced && this.header !== undefined) this.announce();
    if (leftover > 0 || this.frame !== undefined || this.frameHeadBytes > 0) {
      this.warn(
        `ffm: input ended inside a packet or frame (${leftover} bytes of a packet, ${this.frame !== undefined ? 'a frame' : 'no frame'} unfinished)`,
      );
    }
    this.frame = undefined;
  }

  close(): void {
    this.pending = Buffer.alloc(0);
    this.frame = undefined;
    this.held = [];
    this.heldBytes = 0;
  }

  private keep(buf: Buffer, pos: number): void {
    this.offset += pos;
    // A copy of the tail (< one packet, or the header so far): the socket's chunk is not held on to.
    this.pending = pos >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
  }

  private warn(message: string): void {
    this.sink.onWarning?.(message);
  }

  // ---- header ----

  private readHeader(header: FfmHeader): void {
    this.header = header;
    const skipped: string[] = [];
    this.streams = header.streams.map((h, index) => {
      const codec = CARRIED.get(h.codecId);
      if (codec === undefined) skipped.push(`#${index} ${ffmCodecName(h.codecId)}`);
      const state: StreamState = {
        index,
        header: h,
        codec,
        track: undefined,
        listed: false,
        dropped: codec === undefined,
        seenKeyframe: false,
        nalLengthSize: undefined,
        sps: [],
        pps: [],
        adts: false,
      };
      if (codec !== undefined) this.initialTrack(state);
      return state;
    });
    if (skipped.length > 0) {
      this.warn(
        `ffm: skipping ${skipped.length} of ${header.streams.length} streams, in codecs Feedcast does not carry: ${skipped.join(', ')}`,
      );
    }
    if (this.streams.every((s) => s.dropped)) {
      throw new UnsupportedError(
        `ffm: none of the ${header.streams.length} streams is in a codec Feedcast carries (H.264, MPEG-1/2 video, MJPEG, AAC, MP3, MP2, AC-3)`,
      );
    }
    if (this.streams.every((s) => s.dropped || s.track !== undefined)) this.announce();
  }

  /** The track as far as the header tells it (undefined while the codec config must come in-band). */
  private initialTrack(s: StreamState): void {
    const h = s.header;
    const codec = s.codec as Codec;
    const size = /^(\d+)x(\d+)$/.exec(ffmOption(h, 'video_size') ?? '');
    const width = size !== null ? Number(size[1]) : undefined;
    const height = size !== null ? Number(size[2]) : undefined;
    const num = (key: string): number | undefined => {
      const v = Number(ffmOption(h, key));
      return Number.isInteger(v) && v > 0 ? v : undefined;
    };
    switch (codec) {
      case 'h264': {
        const extra = h.extradata;
        if (extra === undefined || extra.length === 0) return;
        if (extra[0] === 1) {
          const avcc = parseAvcc(extra);
          s.nalLengthSize = avcc.lengthSize;
          s.sps = avcc.sps.map((n) => Buffer.from(n));
          s.pps = avcc.pps.map((n) => Buffer.from(n));
        } else {
          this.collectParameterSets(s, splitAnnexB(extra, MAX_NALS_PER_FRAME));
        }
        this.updateH264Track(s);
        return;
      }
      case 'aac': {
        const extra = h.extradata;
        if (extra === undefined || extra.length < 2) return; // ADTS in-band, read at the first frame
        const asc = parseAudioSpecificConfig(extra);
        this.setTrack(s, {
          id: s.index,
          kind: 'audio',
          codec,
          config: Buffer.from(extra),
          sampleRate: asc.sampleRate,
          channels: asc.channels,
        });
        return;
      }
      case 'mp2':
      case 'mp3':
      case 'ac3': {
        const sampleRate = num('ar');
        const channels = num('ac');
        if (sampleRate === undefined || channels === undefined) return; // read from the first frame
        this.setTrack(s, { id: s.index, kind: 'audio', codec, sampleRate, channels });
        return;
      }
      default:
        this.setTrack(s, { id: s.index, kind: 'video', codec, width, height });
    }
  }

  // ---- packets and frames ----

  private packet(buf: Buffer, pos: number): void {
    const index = this.packetIndex++;
    const at = this.offset + pos;
    const ph = parseFfmPacketHeader(buf, pos, index);
    const payloadEnd = pos + FFM_PACKET_SIZE - ph.fillSize;
    let p = pos + 14;
    if (ph.discontinuity && this.synced && (this.frame !== undefined || this.frameHeadBytes > 0)) {
      this.warn(`ffm: packet ${index} starts a new muxer run: the unfinished frame before it is dropped`);
      this.frame = undefined;
      this.frameHead = [];
      this.frameHeadBytes = 0;
    }
    if (!this.synced || ph.discontinuity) {
      if (ph.frameOffset === 0) {
        if (this.skippedUnsynced++ === 0) this.warn(`ffm: packet ${index} has no frame start: skipped until one does`);
        return;
      }
      this.synced = true;
      p = pos + ph.frameOffset;
    }
    let headerSeen = false;
    while (p < payloadEnd) {
      const frame = this.frame;
      if (frame !== undefined) {
        const n = Math.min(frame.remaining, payloadEnd - p);
        frame.parts.push(buf.subarray(p, p + n));
        frame.remaining -= n;
        p += n;
        if (frame.remaining === 0) {
          this.frame = undefined;
          this.deliver(frame);
        }
        continue;
      }
      if (this.frameHeadBytes === 0) {
        if (!headerSeen && ph.frameOffset !== 0 && p - pos !== ph.frameOffset) {
          throw new MalformedInputError(
            'ffm',
            at + 12,
            `data packet ${index} says its first frame starts at byte ${ph.frameOffset}, but the frames before it end at byte ${p - pos}: the stream is desynchronized`,
          );
        }
        headerSeen = true;
      }
      // The frame header: its flags (2nd byte) say whether it is 16 or 20 bytes.
      const gathered = this.frameHeadBytes;
      const want = gathered < 2 ? 2 : ffmFrameHeaderLength(this.headByte(1));
      const n = Math.min(want - gathered, payloadEnd - p);
      this.frameHead.push(buf.subarray(p, p + n));
      this.frameHeadBytes += n;
      p += n;
      if (this.frameHeadBytes < 2 || this.frameHeadBytes < ffmFrameHeaderLength(this.headByte(1))) continue;
      const headBuf = Buffer.concat(this.frameHead, this.frameHeadBytes);
      this.frameHead = [];
      this.frameHeadBytes = 0;
      this.startFrame(parseFfmFrameHeader(headBuf, at + (p - pos) - headBuf.length), at + (p - pos));
    }
    if (!headerSeen && ph.frameOffset !== 0) {
      throw new MalformedInputError(
        'ffm',
        at + 12,
        `data packet ${index} says a frame starts at byte ${ph.frameOffset}, but the frame before it runs past the packet: the stream is desynchronized`,
      );
    }
  }

  /** Byte `i` of the frame header gathered so far. */
  private headByte(i: number): number {
    let at = i;
    for (const part of this.frameHead) {
      if (at < part.length) return part[at] as number;
      at -= part.length;
    }
    return 0;
  }

  private startFrame(h: FfmFrameHeader, at: number): void {
    if (h.streamIndex >= this.streams.length) {
      throw new MalformedInputError(
        'ffm',
        at,
        `frame for stream ${h.streamIndex}, the header declares ${this.streams.length} streams`,
      );
    }
    if (h.size > this.maxFrameBytes) {
      throw new MalformedInputError(
        'ffm',
        at,
        `frame of stream ${h.streamIndex} declares ${h.size} bytes (limit ${this.maxFrameBytes})`,
      );
    }
    const frame: PendingFrame = { header: h, parts: [], remaining: h.size };
    if (h.size === 0) this.deliver(frame);
    else this.frame = frame;
  }

  private deliver(pending: PendingFrame): void {
    const h = pending.header;
    const s = this.streams[h.streamIndex] as StreamState;
    if (s.dropped) return;
    const data = Buffer.concat(pending.parts, h.size);
    const dtsUs = h.pts - h.ptsDtsDelta;
    this.baseUs ??= dtsUs;
    const dts90k = Math.round((dtsUs - this.baseUs) * 0.09);
    const pts90k = Math.max(dts90k, Math.round((h.pts - this.baseUs) * 0.09));
    try {
      this.decode(s, data, h.keyframe, dts90k, pts90k);
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
      // One bad frame (a corrupt SPS, ADTS or MPEG audio header) is dropped; the stream goes on.
      this.warn(`ffm: stream ${s.index} (${s.codec ?? '?'}): frame dropped: ${err.message}`);
    }
  }

  private decode(s: StreamState, data: Buffer, key: boolean, dts90k: number, pts90k: number): void {
    switch (s.codec) {
      case 'h264':
        return this.decodeH264(s, data, key, dts90k, pts90k);
      case 'aac': {
        let payload = data;
        if (s.track === undefined || s.adts) {
          if (data.length >= 2 && data[0] === 0xff && ((data[1] as number) & 0xf6) === 0xf0) {
            const adts = parseAdtsHeader(data, 0);
            s.adts = true;
            payload = data.subarray(adts.headerLength);
            if (s.track === undefined) {
              this.setTrack(s, {
                id: s.index,
                kind: 'audio',
                codec: 'aac',
                config: buildAudioSpecificConfig(adts.objectType, adts.samplingIndex, adts.channels),
                sampleRate: adts.sampleRate,
                channels: adts.channels,
              });
            }
          } else if (s.track === undefined) {
            throw new MalformedInputError('ffm', 0, 'AAC without extradata and without an ADTS header: no AudioSpecificConfig');
          }
        }
        return this.emit(s, { trackId: s.index, dts90k, pts90k, keyframe: true, data: payload });
      }
      case 'mp2':
      case 'mp3':
        if (s.track === undefined) {
          const mh = parseMpegAudioHeader(data, 0);
          this.setTrack(s, { id: s.index, kind: 'audio', codec: s.codec, sampleRate: mh.sampleRate, channels: mh.channels });
        }
        return this.emit(s, { trackId: s.index, dts90k, pts90k, keyframe: true, data });
      case 'mpeg1video':
      case 'mpeg2video': {
        const info = key ? inspectMpegVideoPicture(data) : undefined;
        const seq = info?.sequence;
        if (seq !== undefined && (s.track?.width !== seq.width || s.track.height !== seq.height)) {
          this.setTrack(s, { id: s.index, kind: 'video', codec: s.codec, width: seq.width, height: seq.height });
        }
        return this.emit(s, { trackId: s.index, dts90k, pts90k, keyframe: key, data });
      }
      case 'ac3':
        if (s.track === undefined) throw new MalformedInputError('ffm', 0, 'AC-3 stream without ar/ac options');
        return this.emit(s, { trackId: s.index, dts90k, pts90k, keyframe: true, data });
      default:
        return this.emit(s, { trackId: s.index, dts90k, pts90k, keyframe: key, data });
    }
  }

  private decodeH264(s: StreamState, data: Buffer, key: boolean, dts90k: number, pts90k: number): void {
    const nals =
      s.nalLengthSize !== undefined ? splitLengthPrefixed(data, s.nalLengthSize) : splitAnnexB(data, MAX_NALS_PER_FRAME);
    const kept: Buffer[] = [];
    let idr = false;
    const sps: Buffer[] = [];
    const pps: Buffer[] = [];
    for (const nal of nals) {
      const type = h264NalType(nal);
      if (type === H264Nal.aud) continue;
      if (type === H264Nal.sps) sps.push(nal);
      else if (type === H264Nal.pps) pps.push(nal);
      else if (type === H264Nal.idr) idr = true;
      kept.push(nal);
    }
    if (kept.length === 0) return;
    if ((sps.length > 0 && !sameNals(s.sps, sps)) || (pps.length > 0 && !sameNals(s.pps, pps))) {
      this.collectParameterSets(s, [...sps, ...pps]);
      this.updateH264Track(s);
    }
    this.emit(s, { trackId: s.index, dts90k, pts90k, keyframe: key || idr, data: joinLengthPrefixed(kept) });
  }

  private collectParameterSets(s: StreamState, nals: readonly Buffer[]): void {
    const sps = nals.filter((n) => h264NalType(n) === H264Nal.sps).map((n) => Buffer.from(n));
    const pps = nals.filter((n) => h264NalType(n) === H264Nal.pps).map((n) => Buffer.from(n));
    if (sps.length > 0) s.sps = sps;
    if (pps.length > 0) s.pps = pps;
  }

  private updateH264Track(s: StreamState): void {
    const first = s.sps[0];
    if (first === undefined || s.pps.length === 0) return;
    const info = parseH264Sps(first);
    this.setTrack(s, {
      id: s.index,
      kind: 'video',
      codec: 'h264',
      config: buildAvcc(s.sps, s.pps),
      width: info.width,
      height: info.height,
      profile: describeH264Profile(info),
    });
  }

  // ---- tracks and output (as in the MPEG-TS demuxer: hold until every track is known) ----

  private setTrack(s: StreamState, track: Track): void {
    const previous = s.track;
    s.track = track;
    if (previous !== undefined && sameTrackConfig(previous, track) && previous.profile === track.profile) return;
    if (this.announced && s.listed) this.sink.onTracks(this.listedTracks());
    else if (!this.announced && this.streams.length > 0 && this.streams.every((x) => x.dropped || x.track !== undefined))
      this.announce();
  }

  private listedTracks(): Track[] {
    return this.streams.filter((s) => s.listed && s.track !== undefined).map((s) => s.track as Track);
  }

  private announce(): void {
    if (this.announced) return;
    const missing: string[] = [];
    for (const s of this.streams) {
      if (s.dropped) continue;
      if (s.track === undefined) {
        s.dropped = true;
        missing.push(`#${s.index} ${s.codec ?? '?'}`);
      } else {
        s.listed = true;
      }
    }
    if (missing.length > 0) this.warn(`ffm: no codec configuration in time for ${missing.join(', ')}: dropped`);
    this.announced = true;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.sink.onTracks(this.listedTracks());
    for (const { stream, frame } of held) if (stream.listed) this.sink.onFrame(frame);
  }

  private emit(s: StreamState, frame: Frame): void {
    if (s.dropped) return;
    if (s.track?.kind === 'video' || (s.track === undefined && s.header.kind === 'video')) {
      if (!s.seenKeyframe) {
        if (!frame.keyframe || s.track === undefined) return;
        s.seenKeyframe = true;
      }
    }
    if (this.announced) {
      if (s.listed) this.sink.onFrame(frame);
      return;
    }
    if (s.track === undefined) return; // not usable until its config is known
    this.held.push({ stream: s, frame });
    this.heldBytes += frame.data.length;
    this.firstHeldDts ??= frame.dts90k;
    if (this.heldBytes > MAX_HELD_BYTES || frame.dts90k - this.firstHeldDts > MAX_HOLD_90K) this.announce();
  }
}

function sameNals(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  return a.length === b.length && a.every((n, i) => n.equals(b[i] as Buffer));
}
