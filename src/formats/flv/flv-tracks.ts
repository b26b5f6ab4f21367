// The Track of an FLV (legacy or Enhanced RTMP) audio or video track, built from its sequence
// start (avcC, hvcC, av1C, vpcC, AudioSpecificConfig, OpusHead) or its in-band frames, and the
// FLV payload of a coded frame as a Frame payload (frame.ts). Pure functions.

import { MalformedInputError } from '../../errors.js';
import type { Codec } from '../../media/codec.js';
import type { Track } from '../../media/track.js';
import { parseAudioSpecificConfig } from '../aac/audio-specific-config.js';
import { buildAv1c, parseAv1c } from '../av1/av1c.js';
import { ObuType, readObus, writeObus } from '../av1/obu.js';
import { parseAvcc } from '../h264/avcc.js';
import { describeH264Profile, parseH264Sps } from '../h264/sps.js';
import { parseHvcc } from '../h265/hvcc.js';
import { parseH265Sps } from '../h265/sps.js';
import { parseMpegAudioHeader } from '../mpeg-audio/mpeg-audio-header.js';
import { parseVp9FrameHeader } from '../rtp/vp9-rtp.js';
import { isVpcc } from '../vp9/vpcc.js';
import { FLV_SOUND_RATES, FlvSoundFormat, type FlvAudioTag } from './flv-tag.js';

/** What a demuxer knows about one track: the Track, and the NAL unit length size of h264/h265. */
export interface FlvTrackState {
  track: Track;
  lengthSize: number;
}

/** H.264 or H.265 from its avcC/hvcC; the picture size from the first SPS when it parses. */
export function nalVideoTrack(id: number, codec: 'h264' | 'h265', config: Buffer): FlvTrackState {
  const base = { id, kind: 'video' as const, codec, config };
  if (codec === 'h264') {
    const avcc = parseAvcc(config);
    try {
      const sps = parseH264Sps(avcc.sps[0] ?? Buffer.alloc(0));
      return {
        track: { ...base, width: sps.width, height: sps.height, profile: describeH264Profile(sps) },
        lengthSize: avcc.lengthSize,
      };
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
      return { track: base, lengthSize: avcc.lengthSize };
    }
  }
  const hvcc = parseHvcc(config);
  try {
    const sps = parseH265Sps(hvcc.sps[0] ?? Buffer.alloc(0));
    return { track: { ...base, width: sps.width, height: sps.height }, lengthSize: hvcc.lengthSize };
  } catch (err) {
    if (!(err instanceof MalformedInputError)) throw err;
    return { track: base, lengthSize: hvcc.lengthSize };
  }
}

/** AV1 from an av1C whose configOBUs hold the sequence header (what ffmpeg and OBS send). */
export function av1Track(id: number, av1c: Buffer): FlvTrackState {
  const c = parseAv1c(av1c);
  return { track: { id, kind: 'video', codec: 'av1', config: av1c, width: c.width, height: c.height }, lengthSize: 0 };
}

/** AV1 from the sequence header OBU of a key temporal unit, when no usable av1C came. */
export function av1TrackFromFrame(id: number, frame: Buffer): FlvTrackState | undefined {
  const sequence = readObus(frame).find((o) => o.type === ObuType.sequenceHeader);
  return sequence === undefined ? undefined : av1Track(id, buildAv1c(sequence));
}

/** VP9 from its vpcC and its first key frame (the picture size is only in the frame header). */
export function vp9Track(id: number, vpcc: Buffer, keyframe: Buffer): FlvTrackState {
  if (!isVpcc(vpcc)) {
    const detail = `${vpcc.byteLength}-byte record of version ${vpcc.at(0) ?? 'none'} (want version 1, 12+ bytes)`;
    throw new MalformedInputError('vpcC', 0, detail);
  }
  const header = parseVp9FrameHeader(keyframe);
  if (!header.keyframe) throw new MalformedInputError('vp9', 0, 'the first frame after the sequence start is not a key frame');
  return {
    track: { id, kind: 'video', codec: 'vp9', config: vpcc, width: header.width, height: header.height },
    lengthSize: 0,
  };
}

/** An AV1 coded frame as a Frame payload: its OBUs with size fields, temporal delimiters and padding dropped. */
export function av1FrameData(data: Buffer): Buffer {
  return writeObus(readObus(data));
}

export function aacTrack(id: number, config: Buffer, tag: FlvAudioTag): FlvTrackState {
  const asc = parseAudioSpecificConfig(config);
  const flagChannels = tag.enhanced ? undefined : tag.stereo ? 2 : 1;
  const channels = asc.channels !== 0 ? asc.channels : flagChannels;
  return { track: { id, kind: 'audio', codec: 'aac', config, sampleRate: asc.sampleRate, channels }, lengthSize: 0 };
}

/** Opus: the optional SequenceStart is an OpusHead (RFC 7845 5.1): 'OpusHead', u8 version, u8 channels, ... */
export function opusTrack(id: number, head: Buffer | undefined): FlvTrackState {
  let channels: number | undefined;
  if (head !== undefined) {
    if (head.length < 19 || head.toString('latin1', 0, 8) !== 'OpusHead') {
      throw new MalformedInputError('OpusHead', 0, `Opus sequence start of ${head.length} bytes is not an OpusHead`);
    }
    channels = head[9];
  }
  const config = head !== undefined && head.length > 0 ? head : undefined;
  return { track: { id, kind: 'audio', codec: 'opus', config, sampleRate: 48000, channels }, lengthSize: 0 };
}

/**
 * MP3 and G.711: no sequence header; rate and channels from the MP3 frame header, else the
 * current track's (when the codec is unchanged), else the tag flags.
 */
export function inBandAudioTrack(id: number, codec: Codec, tag: FlvAudioTag, current: Track | undefined): Track {
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
  return { id, kind: 'audio', codec, sampleRate, channels };
}

/**
 * NAL units with `lengthSize`-byte prefixes -> the Frame layout (4-byte prefixes), checking that
 * the lengths add up to the payload exactly. Returns a buffer the caller may keep (a copy unless
 * `owned`), or undefined when the lengths are inconsistent.
 */
export function toLengthPrefixed4(data: Buffer, lengthSize: number, owned: boolean): Buffer | undefined {
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
