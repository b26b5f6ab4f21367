// FLV demuxer: a framer over the FLV byte stream (Adobe FLV spec v10.1 Annex E: E.2 header,
// E.3 body of PreviousTagSize + tag) that turns AVC/HEVC/AAC/MP3 (legacy and Enhanced RTMP) and
// AV1/VP9/Opus (Enhanced RTMP, Multitrack tracks included) tags into Tracks and Frames.

import { ByteReader } from '../bytes/byte-reader.js';
import { MalformedInputError } from '../../errors.js';
import type { TrackKind } from '../../media/codec.js';
import type { Demuxer, DemuxerSink } from '../../media/demuxer.js';
import type { Frame } from '../../media/frame.js';
import { FLV_WRAP, Unwrapper, msTo90k } from '../../media/timebase.js';
import { sameTrackConfig, type Track } from '../../media/track.js';
import type { Amf0Object, Amf0Value } from '../amf/amf0.js';
import {
  FLV_HEADER_BYTES,
  FLV_PREVIOUS_TAG_SIZE_BYTES,
  FLV_TAG_HEADER_BYTES,
  FlvExAudioPacketType,
  FlvFrameType,
  FlvTagType,
  flvAudioCodec,
  flvAudioCodecName,
  flvAudioPacket,
  flvVideoCodec,
  flvVideoCodecName,
  flvVideoPacket,
  parseFlvAudioTags,
  parseFlvHeader,
  parseFlvScriptTag,
  parseFlvTagHeader,
  parseFlvVideoTags,
  type FlvAudioTag,
  type FlvTagHeader,
  type FlvVideoTag,
} from './flv-tag.js';
import {
  aacTrack,
  av1FrameData,
  av1Track,
  av1TrackFromFrame,
  inBandAudioTrack,
  nalVideoTrack,
  opusTrack,
  toLengthPrefixed4,
  vp9Track,
  type FlvTrackState,
} from './flv-tracks.js';

const FORMAT = 'flv';

export const FLV_VIDEO_TRACK_ID = 0;
export const FLV_AUDIO_TRACK_ID = 1;

export interface FlvDemuxerOptions {
  /** Largest tag body accepted (default 16 MiB); a bigger DataSize is a MalformedInputError. */
  maxTagBytes?: number;
  /** How long (tag time) to hold frames while a hinted track has not shown up (default 1000). */
  trackWaitMs?: number;
  /** How many bytes of frames to hold while waiting for a hinted track (default 8 MiB). */
  maxHeldBytes?: number;
}

type Phase = 'header' | 'headerPadding' | 'previousTagSize' | 'tagHeader' | 'tagBody' | 'failed';

/** Feed track ids of Enhanced RTMP multitrack tracks other than each kind's track 0 start here. */
const FIRST_EXTRA_TRACK_ID = 2;

interface Hints {
  video: boolean;
  audio: boolean;
}

export class FlvDemuxer implements Demuxer {
  private readonly sink: DemuxerSink;
  private readonly maxTagBytes: number;
  private readonly trackWait90k: number;
  private readonly maxHeldBytes: number;

  private phase: Phase = 'header';
  private failure: MalformedInputError | undefined;
  /** Input not consumed yet: a queue of chunks, the first one read from `headPos`. */
  private chunks: Buffer[] = [];
  private headPos = 0;
  private buffered = 0;
  /** Absolute input offset of the next byte to consume. */
  private offset = 0;
  private paddingBytes = 0;
  private tag: FlvTagHeader | undefined;
  private tagOffset = 0;

  private readonly unwrapper = new Unwrapper(FLV_WRAP);
  private lastTagDts90k: number | undefined;

  /** Tracks by `${kind}:${flvTrackId}`; a tag outside a Multitrack packet is its kind's track 0. */
  private readonly tracks = new Map<string, FlvTrackState>();
  /** Feed track ids of the multitrack tracks beyond each kind's track 0, in order of appearance. */
  private readonly extraIds = new Map<string, number>();
  /** VP9 sequence starts (vpcC) waiting for the key frame that gives the picture size. */
  private readonly pendingVp9 = new Map<string, Buffer>();
  /** Tracks hinted by the header flags, replaced by onMetaData's; undefined without hints. */
  private hints: Hints | undefined;
  private announced = false;
  private held: Frame[] = [];
  private heldBytes = 0;
  private readonly warnedOnce = new Set<string>();
  private metadataValue: Amf0Object | undefined;

  constructor(sink: DemuxerSink, options: FlvDemuxerOptions = {}) {
    this.sink = sink;
    this.maxTagBytes = options.maxTagBytes ?? 16 * 1024 * 1024;
    this.trackWait90k = msTo90k(options.trackWaitMs ?? 1000);
    this.maxHeldBytes = options.maxHeldBytes ?? 8 * 1024 * 1024;
  }

  /** The last onMetaData object seen (title, encoder, ...), if any. */
  get metadata(): Amf0Object | undefined {
    return this.metadataValue;
  }

  push(chunk: Buffer): void {
    if (this.failure !== undefined) throw this.failure;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      this.run();
    } catch (err) {
      if (err instanceof MalformedInputError) {
        this.phase = 'failed';
        this.failure = err;
      }
      throw err;
    }
  }

  end(): void {
    if (this.failure !== undefined) return;
    if (this.phase === 'tagBody' || (this.phase === 'tagHeader' && this.buffered > 0)) {
      this.warn(`input ended inside a tag at offset ${this.tagOffset} (${this.buffered} bytes left over)`);
    }
    this.announce();
    this.chunks = [];
    this.buffered = 0;
  }

  // --- framing ---------------------------------------------------------------------------

  private run(): void {
    for (;;) {
      switch (this.phase) {
        case 'header': {
          if (this.buffered < FLV_HEADER_BYTES) return;
          const at = this.offset;
          const { buf } = this.take(FLV_HEADER_BYTES);
          const header = parseFlvHeader(new ByteReader(buf, FORMAT));
          if (header.dataOffset - FLV_HEADER_BYTES > this.maxTagBytes) {
            throw new MalformedInputError(FORMAT, at + 5, `DataOffset ${header.dataOffset} is implausibly large`);
          }
          if (header.hasAudio || header.hasVideo) this.hints = { video: header.hasVideo, audio: header.hasAudio };
          this.paddingBytes = header.dataOffset - FLV_HEADER_BYTES;
          this.phase = 'headerPadding';
          break;
        }
        case 'headerPadding': {
          if (this.buffered < this.paddingBytes) return;
          if (this.paddingBytes > 0) this.take(this.paddingBytes);
          this.phase = 'previousTagSize';
          break;
        }
        case 'previousTagSize': {
          if (this.buffered < FLV_PREVIOUS_TAG_SIZE_BYTES) return;
          this.take(FLV_PREVIOUS_TAG_SIZE_BYTES); // not checked: writers get it wrong, and it adds nothing
          this.phase = 'tagHeader';
          break;
        }
        case 'tagHeader': {
          if (this.buffered < FLV_TAG_HEADER_BYTES) return;
          this.tagOffset = this.offset;
          const { buf } = this.take(FLV_TAG_HEADER_BYTES);
          const tag = parseFlvTagHeader(new ByteReader(buf, FORMAT));
          if (tag.dataSize > this.maxTagBytes) {
            throw new MalformedInputError(
              FORMAT,
              this.tagOffset,
              `tag declares ${tag.dataSize} bytes (limit ${this.maxTagBytes})`,
            );
          }
          this.tag = tag;
          this.phase = 'tagBody';
          break;
        }
        case 'tagBody': {
          const tag = this.tag;
          if (tag === undefined) throw new MalformedInputError(FORMAT, this.offset, 'tag body without a tag header');
          if (this.buffered < tag.dataSize) return;
          const bodyOffset = this.offset;
          const body = this.take(tag.dataSize);
          this.phase = 'previousTagSize';
          this.tag = undefined;
          this.onTag(tag, body.buf, body.owned, bodyOffset);
          break;
        }
        case 'failed':
          return;
      }
    }
  }

  /** Consumes n buffered bytes: a view of the input when they lie in one chunk, else a copy. */
  private take(n: number): { buf: Buffer; owned: boolean } {
    this.buffered -= n;
    this.offset += n;
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.headPos >= n) {
      const buf = first.subarray(this.headPos, this.headPos + n);
      this.headPos += n;
      if (this.headPos === first.length) {
        this.chunks.shift();
        this.headPos = 0;
      }
      return { buf, owned: false };
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let used = 0;
    while (filled < n) {
      const chunk = this.chunks[used];
      if (chunk === undefined) throw new MalformedInputError(FORMAT, this.offset, 'internal: took more bytes than buffered');
      const count = Math.min(chunk.length - this.headPos, n - filled);
      chunk.copy(out, filled, this.headPos, this.headPos + count);
      filled += count;
      this.headPos += count;
      if (this.headPos === chunk.length) {
        used++;
        this.headPos = 0;
      }
    }
    if (used > 0) this.chunks.splice(0, used);
    return { buf: out, owned: true };
  }

  // --- tags ----------------------------------------------------------------------------------

  private onTag(tag: FlvTagHeader, body: Buffer, owned: boolean, bodyOffset: number): void {
    if (tag.dataSize === 0) return;
    if (tag.filtered) {
      this.warnOnce('filtered', `tag at offset ${this.tagOffset} is encrypted (Filter bit set); skipping such tags`);
      return;
    }
    if (tag.tagType !== FlvTagType.audio && tag.tagType !== FlvTagType.video && tag.tagType !== FlvTagType.script) {
      this.warnOnce(`tagType:${tag.tagType}`, `unknown tag type ${tag.tagType} at offset ${this.tagOffset}; skipping such tags`);
      return;
    }
    const reader = new ByteReader(body, FORMAT);
    try {
      if (tag.tagType === FlvTagType.script) {
        this.onScript(reader);
      } else {
        const dts90k = msTo90k(this.unwrapper.unwrap(tag.timestampMs));
        this.lastTagDts90k = dts90k;
        if (tag.tagType === FlvTagType.video) {
          for (const t of parseFlvVideoTags(reader)) this.onVideo(t, withNanoOffset(dts90k, t), owned);
        } else {
          for (const t of parseFlvAudioTags(reader)) this.onAudio(t, withNanoOffset(dts90k, t), owned);
        }
      }
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
      // One bad tag body does not lose the framing: skip the tag and let the sink count it.
      this.warn(`tag at offset ${this.tagOffset} (body at ${bodyOffset}, offsets below within the body) skipped: ${err.message}`);
    }
    this.maybeAnnounce();
  }

  private onScript(reader: ByteReader): void {
    const script = parseFlvScriptTag(reader);
    if (script.name !== 'onMetaData') return;
    const meta = script.args[0];
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta) || meta instanceof Date) return;
    this.metadataValue = meta;
    if (this.announced) return;
    const hasCodec = (v: Amf0Value): boolean => v !== undefined && v !== null && v !== 0 && v !== '';
    const video = hasCodec(meta['videocodecid']);
    const audio = hasCodec(meta['audiocodecid']);
    if (video || audio) this.hints = { video, audio };
  }

  private onVideo(tag: FlvVideoTag, dts90k: number, owned: boolean): void {
    const packet = flvVideoPacket(tag);
    if (packet === 'command' || packet === 'sequenceEnd') return;
    const codec = flvVideoCodec(tag);
    if (codec !== 'h264' && codec !== 'h265' && codec !== 'av1' && codec !== 'vp9') {
      const name = flvVideoCodecName(tag);
      this.warnOnce(
        `video:${name}`,
        `unsupported video codec ${name}${codec === undefined ? '' : ` (${codec})`}; skipping its tags`,
      );
      return;
    }
    if (packet === 'other') {
      this.warnOnce(
        `videoPacket:${tag.enhanced ? tag.packetType : String(tag.avcPacketType)}`,
        `unsupported video packet type in a ${codec} tag; skipping such tags`,
      );
      return;
    }
    const key = trackKey('video', tag);
    const id = this.trackId('video', key);
    if (packet === 'sequenceStart') {
      // ffmpeg 7 writes an empty sequence start in its header, the real one with the first frame.
      if (tag.data.length === 0) return;
      const config = Buffer.from(tag.data);
      if (codec === 'vp9') this.pendingVp9.set(key, config);
      else this.setTrack(key, codec === 'av1' ? av1Track(id, config) : nalVideoTrack(id, codec, config));
      return;
    }
    if (tag.data.length === 0) return;
    const keyframe = tag.frameType === FlvFrameType.key;
    let state = this.tracks.get(key);
    if (keyframe && (state === undefined || state.track.codec !== codec))
      state = this.trackFromKeyframe(key, id, codec, tag.data);
    if (state === undefined || state.track.codec !== codec) {
      this.warnOnce(`noConfig:${key}:${codec}`, `${codec} frames before their sequence header; dropping them`);
      return;
    }
    const data = this.videoPayload(codec, tag.data, state.lengthSize, owned);
    if (data === undefined) return;
    let cts90k = msTo90k(tag.compositionTimeMs);
    if (cts90k < 0) {
      this.warnOnce(
        'negativeCts',
        `negative CompositionTime ${tag.compositionTimeMs} ms at offset ${this.tagOffset}; using pts = dts`,
      );
      cts90k = 0;
    }
    this.deliver({ trackId: state.track.id, dts90k, pts90k: dts90k + cts90k, keyframe, data });
  }

  /** A VP9 track waits for its first key frame (the picture size); AV1 without an av1C takes the in-band sequence header. */
  private trackFromKeyframe(key: string, id: number, codec: string, frame: Buffer): FlvTrackState | undefined {
    let state: FlvTrackState | undefined;
    if (codec === 'vp9') {
      const vpcc = this.pendingVp9.get(key);
      if (vpcc === undefined) return undefined;
      state = vp9Track(id, vpcc, frame);
      this.pendingVp9.delete(key);
    } else if (codec === 'av1') {
      state = av1TrackFromFrame(id, frame);
    }
    if (state !== undefined) this.setTrack(key, state);
    return state;
  }

  /** The Frame payload of a coded video frame, or undefined (with a warning) when it does not add up. */
  private videoPayload(codec: string, data: Buffer, lengthSize: number, owned: boolean): Buffer | undefined {
    if (codec === 'av1') return av1FrameData(data);
    if (codec === 'vp9') return owned ? data : Buffer.from(data);
    const out = toLengthPrefixed4(data, lengthSize, owned);
    if (out === undefined) {
      this.warn(
        `${codec} frame at offset ${this.tagOffset}: NAL unit lengths do not add up to the ${data.length}-byte payload; dropped`,
      );
    }
    return out;
  }

  private onAudio(tag: FlvAudioTag, dts90k: number, owned: boolean): void {
    const packet = flvAudioPacket(tag);
    if (packet === 'sequenceEnd') return;
    // MultichannelConfig names the speakers; Feedcast passes the channels through as they are.
    if (tag.enhanced && tag.packetType === FlvExAudioPacketType.multichannelConfig) return;
    const codec = flvAudioCodec(tag);
    if (codec === undefined || packet === 'other' || packet === 'command') {
      const name = codec === undefined ? flvAudioCodecName(tag) : `${codec} packet type`;
      this.warnOnce(`audio:${name}`, `unsupported audio ${name}; skipping such tags`);
      return;
    }
    const key = trackKey('audio', tag);
    const id = this.trackId('audio', key);
    if (packet === 'sequenceStart') {
      if (codec === 'aac') this.setTrack(key, aacTrack(id, Buffer.from(tag.data), tag));
      else if (codec === 'opus') this.setTrack(key, opusTrack(id, Buffer.from(tag.data)));
      // Sequence headers of other codecs (MP3 has none) carry nothing Feedcast needs.
      return;
    }
    if (tag.data.length === 0) return;
    const current = this.tracks.get(key)?.track;
    if (codec === 'aac') {
      if (current?.codec !== 'aac') {
        this.warnOnce(`noConfig:${key}:aac`, 'aac frames before their sequence header (AudioSpecificConfig); dropping them');
        return;
      }
    } else if (codec === 'opus') {
      if (current?.codec !== 'opus') this.setTrack(key, opusTrack(id, undefined));
    } else {
      const track = inBandAudioTrack(id, codec, tag, current);
      if (current === undefined || !sameTrackConfig(current, track)) this.setTrack(key, { track, lengthSize: 0 });
    }
    const data = owned ? tag.data : Buffer.from(tag.data);
    this.deliver({ trackId: id, dts90k, pts90k: dts90k, keyframe: true, data });
  }

  // --- tracks and readiness ------------------------------------------------------------------

  /** The feed track id of a track: 0 (video) and 1 (audio) for each kind's track 0, then 2, 3... */
  private trackId(kind: TrackKind, key: string): number {
    if (key === `${kind}:0`) return kind === 'video' ? FLV_VIDEO_TRACK_ID : FLV_AUDIO_TRACK_ID;
    let id = this.extraIds.get(key);
    if (id === undefined) {
      id = FIRST_EXTRA_TRACK_ID + this.extraIds.size;
      this.extraIds.set(key, id);
    }
    return id;
  }

  private setTrack(key: string, state: FlvTrackState): void {
    const current = this.tracks.get(key);
    if (current !== undefined && sameTrackConfig(current.track, state.track)) return;
    // Held frames belong to the config in force when they came: announce it before changing it.
    if (current !== undefined && this.held.length > 0) this.announce();
    this.tracks.set(key, state);
    if (state.track.kind === 'video' && state.track.width === undefined) {
      this.warn(`${state.track.codec} sequence header at offset ${this.tagOffset}: picture size unknown`);
    }
    if (this.announced) this.sink.onTracks(this.trackList());
  }

  private trackList(): Track[] {
    return [...this.tracks.values()].map((s) => s.track).sort((a, b) => a.id - b.id);
  }

  private deliver(frame: Frame): void {
    if (this.announced) {
      this.sink.onFrame(frame);
      return;
    }
    this.held.push(frame);
    this.heldBytes += frame.data.length;
  }

  /** Announces once every hinted track has its config, or the wait for them has run out. */
  private maybeAnnounce(): void {
    if (this.announced || this.tracks.size === 0) return;
    const hints = this.hints;
    const video = this.tracks.has('video:0');
    const audio = this.tracks.has('audio:0');
    const haveHinted = hints !== undefined && (!hints.video || video) && (!hints.audio || audio);
    const haveBoth = video && audio;
    const first = this.held[0];
    const waitedOut =
      first !== undefined &&
      ((this.lastTagDts90k !== undefined && this.lastTagDts90k - first.dts90k >= this.trackWait90k) ||
        this.heldBytes >= this.maxHeldBytes);
    if (haveHinted || haveBoth || waitedOut) this.announce();
  }

  private announce(): void {
    if (this.announced) return;
    const tracks = this.trackList();
    if (tracks.length === 0) return;
    this.announced = true;
    this.sink.onTracks(tracks);
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const frame of held) this.sink.onFrame(frame);
  }

  private warn(message: string): void {
    this.sink.onWarning?.(`${FORMAT}: ${message}`);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warnedOnce.has(key)) return;
    this.warnedOnce.add(key);
    this.warn(message);
  }
}

function trackKey(kind: TrackKind, tag: { enhanced: boolean; trackId?: number }): string {
  return `${kind}:${tag.enhanced ? (tag.trackId ?? 0) : 0}`;
}

/** E-RTMP ModEx TimestampOffsetNano: the message time plus up to a millisecond, in 90 kHz. */
function withNanoOffset(dts90k: number, tag: { enhanced: boolean; timestampOffsetNs?: number }): number {
  const ns = tag.enhanced ? tag.timestampOffsetNs : undefined;
  return ns === undefined ? dts90k : dts90k + Math.round((ns * 90) / 1_000_000);
}
