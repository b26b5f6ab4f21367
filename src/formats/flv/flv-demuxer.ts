// FLV demuxer: a framer over the FLV byte stream (Adobe FLV spec v10.1 Annex E: E.2 header,
// E.3 body of PreviousTagSize + tag) that turns AVC/HEVC/AAC/MP3 (legacy and Enhanced RTMP)
// tags into Tracks and Frames for a DemuxerSink.

import { ByteReader } from '../bytes/byte-reader.js';
import { MalformedInputError } from '../../errors.js';
import type { Codec, TrackKind } from '../../media/codec.js';
import type { Demuxer, DemuxerSink } from '../../media/demuxer.js';
import type { Frame } from '../../media/frame.js';
import { FLV_WRAP, Unwrapper, msTo90k } from '../../media/timebase.js';
import { sameTrackConfig, type Track } from '../../media/track.js';
import { parseAudioSpecificConfig } from '../aac/audio-specific-config.js';
import type { Amf0Object, Amf0Value } from '../amf/amf0.js';
import { parseAvcc } from '../h264/avcc.js';
import { describeH264Profile, parseH264Sps } from '../h264/sps.js';
import { parseHvcc } from '../h265/hvcc.js';
import { parseH265Sps } from '../h265/sps.js';
import { parseMpegAudioHeader } from '../mpeg-audio/mpeg-audio-header.js';
import {
  FLV_HEADER_BYTES,
  FLV_PREVIOUS_TAG_SIZE_BYTES,
  FLV_SOUND_RATES,
  FLV_TAG_HEADER_BYTES,
  FlvFrameType,
  FlvSoundFormat,
  FlvTagType,
  flvAudioCodec,
  flvAudioCodecName,
  flvAudioPacket,
  flvVideoCodec,
  flvVideoCodecName,
  flvVideoPacket,
  parseFlvAudioTag,
  parseFlvHeader,
  parseFlvScriptTag,
  parseFlvTagHeader,
  parseFlvVideoTag,
  type FlvAudioTag,
  type FlvTagHeader,
  type FlvVideoTag,
} from './flv-tag.js';

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

/** What the demuxer knows about one of its (at most two) tracks. */
interface TrackState {
  track: Track;
  /** NAL unit length size of the avcC/hvcC (h264/h265). */
  lengthSize: number;
}

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

  private video: TrackState | undefined;
  private audio: TrackState | undefined;
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
        if (tag.tagType === FlvTagType.video) this.onVideo(parseFlvVideoTag(reader), dts90k, owned);
        else this.onAudio(parseFlvAudioTag(reader), dts90k, owned);
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
    if (codec !== 'h264' && codec !== 'h265') {
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
    if (packet === 'sequenceStart') {
      this.setTrack('video', videoTrack(codec, Buffer.from(tag.data)));
      return;
    }
    const state = this.video;
    if (state === undefined || state.track.codec !== codec) {
      this.warnOnce(`noConfig:${codec}`, `${codec} frames before their sequence header; dropping them`);
      return;
    }
    if (tag.data.length === 0) return;
    const data = toLengthPrefixed4(tag.data, state.lengthSize, owned);
    if (data === undefined) {
      this.warn(
        `${codec} frame at offset ${this.tagOffset}: NAL unit lengths do not add up to the ${tag.data.length}-byte payload; dropped`,
      );
      return;
    }
    let cts90k = msTo90k(tag.compositionTimeMs);
    if (cts90k < 0) {
      this.warnOnce(
        'negativeCts',
        `negative CompositionTime ${tag.compositionTimeMs} ms at offset ${this.tagOffset}; using pts = dts`,
      );
      cts90k = 0;
    }
    const keyframe = tag.frameType === FlvFrameType.key;
    this.deliver({ trackId: FLV_VIDEO_TRACK_ID, dts90k, pts90k: dts90k + cts90k, keyframe, data });
  }

  private onAudio(tag: FlvAudioTag, dts90k: number, owned: boolean): void {
    const packet = flvAudioPacket(tag);
    if (packet === 'sequenceEnd') return;
    const codec = flvAudioCodec(tag);
    if (codec === undefined || packet === 'other' || packet === 'command') {
      const name = codec === undefined ? flvAudioCodecName(tag) : `${codec} packet type`;
      this.warnOnce(`audio:${name}`, `unsupported audio ${name}; skipping such tags`);
      return;
    }
    if (packet === 'sequenceStart') {
      if (codec === 'aac') this.setTrack('audio', aacTrack(Buffer.from(tag.data), tag));
      else if (codec === 'opus') this.setTrack('audio', opusTrack(Buffer.from(tag.data)));
      // Sequence headers of other codecs (MP3 has none) carry nothing Feedcast needs.
      return;
    }
    if (tag.data.length === 0) return;
    if (codec === 'aac') {
      if (this.audio?.track.codec !== 'aac') {
        this.warnOnce('noConfig:aac', 'aac frames before their sequence header (AudioSpecificConfig); dropping them');
        return;
      }
    } else if (codec === 'opus') {
      if (this.audio?.track.codec !== 'opus') this.setTrack('audio', opusTrack(undefined));
    } else {
      const current = this.audio?.track;
      const track = inBandAudioTrack(codec, tag, current);
      if (current === undefined || !sameTrackConfig(current, track)) this.setTrack('audio', { track, lengthSize: 0 });
    }
    const data = owned ? tag.data : Buffer.from(tag.data);
    this.deliver({ trackId: FLV_AUDIO_TRACK_ID, dts90k, pts90k: dts90k, keyframe: true, data });
  }

  // --- tracks and readiness ------------------------------------------------------------------

  private setTrack(kind: TrackKind, state: TrackState): void {
    const current = kind === 'video' ? this.video : this.audio;
    if (current !== undefined && sameTrackConfig(current.track, state.track)) return;
    // Held frames belong to the config in force when they came: announce it before changing it.
    if (current !== undefined && this.held.length > 0) this.announce();
    if (kind === 'video') this.video = state;
    else this.audio = state;
    if (state.track.kind === 'video' && state.track.width === undefined) {
      this.warn(`${state.track.codec} sequence header at offset ${this.tagOffset}: picture size unknown`);
    }
    if (this.announced) this.sink.onTracks(this.trackList());
  }

  private trackList(): Track[] {
    const list: Track[] = [];
    if (this.video !== undefined) list.push(this.video.track);
    if (this.audio !== undefined) list.push(this.audio.track);
    return list;
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
    if (this.announced || (this.video === undefined && this.audio === undefined)) return;
    const hints = this.hints;
    const haveHinted =
      hints !== undefined && (!hints.video || this.video !== undefined) && (!hints.audio || this.audio !== undefined);
    const haveBoth = this.video !== undefined && this.audio !== undefined;
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

// --- track construction (pure) ---------------------------------------------------------------

function videoTrack(codec: 'h264' | 'h265', config: Buffer): TrackState {
  if (codec === 'h264') {
    const avcc = parseAvcc(config);
    const base = { id: FLV_VIDEO_TRACK_ID, kind: 'video' as const, codec, config };
    const sps = avcc.sps[0];
    try {
      const parsed = parseH264Sps(sps ?? Buffer.alloc(0));
      return {
        track: { ...base, width: parsed.width, height: parsed.height, profile: describeH264Profile(parsed) },
        lengthSize: avcc.lengthSize,
      };
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
      return { track: base, lengthSize: avcc.lengthSize };
    }
  }
  const hvcc = parseHvcc(config);
  const base = { id: FLV_VIDEO_TRACK_ID, kind: 'video' as const, codec, config };
  try {
    const sps = parseH265Sps(hvcc.sps[0] ?? Buffer.alloc(0));
    return { track: { ...base, width: sps.width, height: sps.height }, lengthSize: hvcc.lengthSize };
  } catch (err) {
    if (!(err instanceof MalformedInputError)) throw err;
    return { track: base, lengthSize: hvcc.lengthSize };
  }
}

function aacTrack(config: Buffer, tag: FlvAudioTag): TrackState {
  const asc = parseAudioSpecificConfig(config);
  const flagChannels = tag.enhanced ? undefined : tag.stereo ? 2 : 1;
  const channels = asc.channels !== 0 ? asc.channels : flagChannels;
  return {
    track: { id: FLV_AUDIO_TRACK_ID, kind: 'audio', codec: 'aac', config, sampleRate: asc.sampleRate, channels },
    lengthSize: 0,
  };
}

/** Opus: the optional SequenceStart is an OpusHead (RFC 7845 5.1): 'OpusHead', u8 version, u8 channels, ... */
function opusTrack(head: Buffer | undefined): TrackState {
  let channels: number | undefined;
  if (head !== undefined) {
    if (head.length < 19 || head.toString('latin1', 0, 8) !== 'OpusHead') {
      throw new MalformedInputError('OpusHead', 0, `Opus sequence start of ${head.length} bytes is not an OpusHead`);
    }
    channels = head[9];
  }
  const config = head !== undefined && head.length > 0 ? head : undefined;
  return {
    track: { id: FLV_AUDIO_TRACK_ID, kind: 'audio', codec: 'opus', config, sampleRate: 48000, channels },
    lengthSize: 0,
  };
}

/**
 * MP3 and G.711: no sequence header; rate and channels from the MP3 frame header, else the
 * current track's (when the codec is unchanged), else the tag flags.
 */
function inBandAudioTrack(codec: Codec, tag: FlvAudioTag, current: Track | undefined): Track {
  let sampleRate: number | undefined;
  let channels: number | undefined;
  if (!tag.enhanced) {
    channels = tag.stereo ? 2 : 1;
    sampleRate = tag.soundFormat === FlvSoundFormat.mp3At8k ? 8000 : FLV_SOUND_RATES[tag.soundRateIndex];
    if (codec === 'pcm_alaw' || codec === 'pcm_mulaw') sampleRate = 8000;
  }
  if (codec === 'mp3') {
    try {
      const header = parseMpegAudioHeader(tag.data);
      sampleRate = header.sampleRate;
      channels = header.channels;
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
      if (current?.codec === codec) return current;
    }
  }
  return { id: FLV_AUDIO_TRACK_ID, kind: 'audio', codec, sampleRate, channels };
}

/**
 * NAL units with `lengthSize`-byte prefixes -> the Frame layout (4-byte prefixes), checking that
 * the lengths add up to the payload exactly. Returns a buffer the caller may keep (a copy unless
 * `owned`), or undefined when the lengths are inconsistent.
 */
function toLengthPrefixed4(data: Buffer, lengthSize: number, owned: boolean): Buffer | undefined {
  let pos = 0;
  let count = 0;
  while (pos < data.length) {
    if (pos + lengthSize > data.length) return undefined;
    const len = data.readUIntBE(pos, lengthSize);
    pos += lengthSize + len;
    count++;
  }
  if (pos !== data.length) return undefined;
  if (lengthSize === 4) return owned ? data : Buffer.from(data);
  const out = Buffer.allocUnsafe(data.length + count * (4 - lengthSize));
  let src = 0;
  let dst = 0;
  while (src < data.length) {
    const len = data.readUIntBE(src, lengthSize);
    out.writeUInt32BE(len, dst);
    data.copy(out, dst + 4, src + lengthSize, src + lengthSize + len);
    src += lengthSize + len;
    dst += 4 + len;
  }
  return out;
}
