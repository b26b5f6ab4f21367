// Which RTP payload format carries which Feedcast codec (rtpmap/fmtp parameters for the SDP), and
// the way back: a Track and a depacketiser from an announced format (RTSP publish).

import { UnsupportedError, MalformedInputError } from '../../errors.js';
import type { Codec } from '../../media/codec.js';
import type { Track } from '../../media/track.js';
import { AAC_FRAME_SAMPLES, parseAudioSpecificConfig } from '../aac/audio-specific-config.js';
import { buildAvcc, parseAvcc } from '../h264/avcc.js';
import { H264Nal, H265Nal, h264NalType, h265NalType } from '../h264/nal.js';
import { describeH264Profile, parseH264Sps } from '../h264/sps.js';
import { buildHvcc, parseHvcc } from '../h265/hvcc.js';
import { describeH265Profile, parseH265Sps } from '../h265/sps.js';
import { parseAv1c } from '../av1/av1c.js';
import { AacDepacketizer, AacPacketizer, OpusDepacketizer, OpusPacketizer } from './audio-rtp.js';
import { Av1Depacketizer, Av1Packetizer } from './av1-rtp.js';
import {
  MPA_PAYLOAD_TYPE,
  MPV_PAYLOAD_TYPE,
  MpaDepacketizer,
  MpaPacketizer,
  MpvDepacketizer,
  MpvPacketizer,
} from './mpeg-rtp.js';
import { NalDepacketizer, NalPacketizer } from './nal-rtp.js';
import type { RtpDepacketizer, RtpPacketizer } from './payload.js';
import { Vp8Depacketizer, Vp8Packetizer } from './vp8-rtp.js';
import { Vp9Depacketizer, Vp9Packetizer } from './vp9-rtp.js';

/** An RTP payload format as the SDP describes it (a=rtpmap and a=fmtp). */
export interface RtpFormat {
  payloadType: number;
  /** Encoding name as written in rtpmap (case kept; compare case-insensitively). */
  encoding: string;
  clockRate: number;
  channels: number | undefined;
  /** fmtp parameters, keys lower-cased, in order. */
  fmtp: Map<string, string>;
}

/** Codecs Feedcast can send and receive over RTP. */
export const RTP_CODECS: readonly Codec[] = [
  'h264',
  'h265',
  'vp8',
  'vp9',
  'av1',
  'aac',
  'opus',
  'mp3',
  'mp2',
  'mpeg1video',
  'mpeg2video',
];

export function canSendOverRtp(track: Track): boolean {
  if (!RTP_CODECS.includes(track.codec)) return false;
  if ((track.codec === 'aac' || track.codec === 'h264' || track.codec === 'h265') && track.config === undefined) return false;
  return true;
}

/** The payload format for a track, with a dynamic payload type where the format has no static one. */
export function rtpFormatOf(track: Track, dynamicPayloadType: number): RtpFormat {
  const fmtp = new Map<string, string>();
  switch (track.codec) {
    case 'h264': {
      const avcc = parseAvcc(requireConfig(track));
      const sps = avcc.sps[0] as Buffer;
      fmtp.set('packetization-mode', '1');
      fmtp.set('sprop-parameter-sets', [...avcc.sps, ...avcc.pps].map((n) => n.toString('base64')).join(','));
      fmtp.set('profile-level-id', sps.subarray(1, 4).toString('hex').toUpperCase());
      return { payloadType: dynamicPayloadType, encoding: 'H264', clockRate: 90_000, channels: undefined, fmtp };
    }
    case 'h265': {
      const hvcc = parseHvcc(requireConfig(track));
      const b64 = (nals: Buffer[]): string => nals.map((n) => n.toString('base64')).join(',');
      if (hvcc.vps.length > 0) fmtp.set('sprop-vps', b64(hvcc.vps));
      fmtp.set('sprop-sps', b64(hvcc.sps));
      if (hvcc.pps.length > 0) fmtp.set('sprop-pps', b64(hvcc.pps));
      return { payloadType: dynamicPayloadType, encoding: 'H265', clockRate: 90_000, channels: undefined, fmtp };
    }
    case 'vp8':
      // RFC 7741 6.1: no required parameters.
      return { payloadType: dynamicPayloadType, encoding: 'VP8', clockRate: 90_000, channels: undefined, fmtp };
    case 'vp9':
      // RFC 9628 6.1: profile-id is optional (0 when absent); the packetiser sends what it is given.
      return { payloadType: dynamicPayloadType, encoding: 'VP9', clockRate: 90_000, channels: undefined, fmtp };
    case 'av1': {
      // AV1 RTP format 7.2.1: profile, level-idx and tier (all optional) from the sequence header.
      if (track.config !== undefined) {
        const c = parseAv1c(track.config);
        fmtp.set('profile', String(c.profile));
        fmtp.set('level-idx', String(c.level));
        fmtp.set('tier', String(c.tier));
      }
      return { payloadType: dynamicPayloadType, encoding: 'AV1', clockRate: 90_000, channels: undefined, fmtp };
    }
    case 'aac': {
      const config = requireConfig(track);
      const asc = parseAudioSpecificConfig(config);
      const sampleRate = track.sampleRate ?? asc.sampleRate;
      const channels = track.channels ?? asc.channels;
      fmtp.set('streamtype', '5');
      fmtp.set('profile-level-id', '1');
      fmtp.set('mode', 'AAC-hbr');
      fmtp.set('sizelength', '13');
      fmtp.set('indexlength', '3');
      fmtp.set('indexdeltalength', '3');
      fmtp.set('config', config.toString('hex'));
      return { payloadType: dynamicPayloadType, encoding: 'MPEG4-GENERIC', clockRate: sampleRate, channels, fmtp };
    }
    case 'opus':
      // RFC 7587 6.1: always opus/48000/2; sprop-stereo says what the sender really sends.
      fmtp.set('sprop-stereo', (track.channels ?? 2) >= 2 ? '1' : '0');
      return { payloadType: dynamicPayloadType, encoding: 'opus', clockRate: 48_000, channels: 2, fmtp };
    case 'mp3':
    case 'mp2':
      return { payloadType: MPA_PAYLOAD_TYPE, encoding: 'MPA', clockRate: 90_000, channels: undefined, fmtp };
    case 'mpeg1video':
    case 'mpeg2video':
      return { payloadType: MPV_PAYLOAD_TYPE, encoding: 'MPV', clockRate: 90_000, channels: undefined, fmtp };
    default:
      throw new UnsupportedError(`rtp: no payload format for ${track.codec} (supported: ${RTP_CODECS.join(', ')})`);
  }
}

function requireConfig(track: Track): Buffer {
  if (track.config === undefined) throw new UnsupportedError(`rtp: the ${track.codec} track has no codec config yet`);
  return track.config;
}

export function createPacketizer(track: Track, format: RtpFormat): RtpPacketizer {
  switch (track.codec) {
    case 'h264':
    case 'h265':
      return new NalPacketizer(track, format.payloadType);
    case 'vp8':
      return new Vp8Packetizer(format.payloadType);
    case 'vp9':
      return new Vp9Packetizer(format.payloadType);
    case 'av1':
      return new Av1Packetizer(format.payloadType);
    case 'aac':
      return new AacPacketizer(format.clockRate, format.payloadType);
    case 'opus':
      return new OpusPacketizer(format.payloadType);
    case 'mp3':
    case 'mp2':
      return new MpaPacketizer();
    case 'mpeg1video':
    case 'mpeg2video':
      return new MpvPacketizer();
    default:
      throw new UnsupportedError(`rtp: no packetiser for ${track.codec}`);
  }
}

/**
 * What an announced format becomes: the track (complete, or `pending` until the first frames tell
 * what the SDP does not: MPEG audio layer, MPEG video version, H.264 without sprop parameters).
 */
export interface IngestFormat {
  track: Omit<Track, 'id'>;
  pending: boolean;
  clockRate: number;
  createDepacketizer(): RtpDepacketizer;
}

/** The payload format as announced; throws UnsupportedError for formats Feedcast does not take. */
export function ingestFormatOf(format: RtpFormat): IngestFormat {
  const name = format.encoding.toUpperCase();
  const pt = format.payloadType;
  if (name === 'H264') {
    const config = spropToAvcc(format.fmtp.get('sprop-parameter-sets'));
    const mode = format.fmtp.get('packetization-mode') ?? '0';
    if (mode !== '0' && mode !== '1') throw new UnsupportedError(`rtp: H.264 packetization-mode ${mode} (only 0 and 1)`);
    return {
      track: { kind: 'video', codec: 'h264', ...videoFieldsOf('h264', config) },
      pending: config === undefined,
      clockRate: 90_000,
      createDepacketizer: () => new NalDepacketizer('h264', config),
    };
  }
  if (name === 'H265') {
    if (format.fmtp.has('sprop-max-don-diff') && format.fmtp.get('sprop-max-don-diff') !== '0') {
      throw new UnsupportedError('rtp: H.265 with sprop-max-don-diff > 0 (DONL fields) is not supported');
    }
    const config = spropToHvcc(format.fmtp);
    return {
      track: { kind: 'video', codec: 'h265', ...videoFieldsOf('h265', config) },
      pending: config === undefined,
      clockRate: 90_000,
      createDepacketizer: () => new NalDepacketizer('h265', config),
    };
  }
  if (name === 'VP8' || name === 'VP9' || name === 'AV1') {
    // No out-of-band config: the size (VP8, VP9: key frame headers) and the av1C (the sequence
    // header) come from the first key frame.
    const codec = name === 'VP8' ? 'vp8' : name === 'VP9' ? 'vp9' : 'av1';
    return {
      track: { kind: 'video', codec },
      pending: true,
      clockRate: 90_000,
      createDepacketizer: () =>
        codec === 'vp8' ? new Vp8Depacketizer() : codec === 'vp9' ? new Vp9Depacketizer() : new Av1Depacketizer(),
    };
  }
  if (name === 'MPEG4-GENERIC') {
    const mode = (format.fmtp.get('mode') ?? '').toLowerCase();
    if (mode !== 'aac-hbr' && mode !== 'aac-lbr')
      throw new UnsupportedError(`rtp: mpeg4-generic mode "${mode}" (only AAC-hbr and AAC-lbr)`);
    const hex = format.fmtp.get('config') ?? '';
    if (!/^([0-9a-fA-F]{2}){2,64}$/.test(hex))
      throw new MalformedInputError('sdp', 0, `AAC config "${hex.slice(0, 40)}" is not hex`);
    const config = Buffer.from(hex, 'hex');
    const asc = parseAudioSpecificConfig(config);
    const int = (key: string, fallback: number): number => {
      const v = Number(format.fmtp.get(key) ?? fallback);
      if (!Number.isInteger(v) || v < 0 || v > 16)
        throw new MalformedInputError('sdp', 0, `AAC ${key}=${format.fmtp.get(key) ?? ''}`);
      return v;
    };
    const options = {
      sizeLength: int('sizelength', mode === 'aac-hbr' ? 13 : 6),
      indexLength: int('indexlength', mode === 'aac-hbr' ? 3 : 2),
      indexDeltaLength: int('indexdeltalength', mode === 'aac-hbr' ? 3 : 2),
      frameSamples: Number(format.fmtp.get('constantduration') ?? AAC_FRAME_SAMPLES) || AAC_FRAME_SAMPLES,
    };
    return {
      track: { kind: 'audio', codec: 'aac', config, sampleRate: asc.sampleRate, channels: asc.channels },
      pending: false,
      clockRate: format.clockRate,
      createDepacketizer: () => new AacDepacketizer(options),
    };
  }
  if (name === 'OPUS') {
    const stereo = format.fmtp.get('sprop-stereo') ?? format.fmtp.get('stereo');
    return {
      track: { kind: 'audio', codec: 'opus', sampleRate: 48_000, channels: stereo === '0' ? 1 : 2 },
      pending: false,
      clockRate: 48_000,
      createDepacketizer: () => new OpusDepacketizer(),
    };
  }
  if (name === 'MPA' || (name === '' && pt === MPA_PAYLOAD_TYPE)) {
    return {
      track: { kind: 'audio', codec: 'mp2' },
      pending: true,
      clockRate: 90_000,
      createDepacketizer: () => new MpaDepacketizer(),
    };
  }
  if (name === 'MPV' || (name === '' && pt === MPV_PAYLOAD_TYPE)) {
    return {
      track: { kind: 'video', codec: 'mpeg1video' },
      pending: true,
      clockRate: 90_000,
      createDepacketizer: () => new MpvDepacketizer(),
    };
  }
  throw new UnsupportedError(
    `rtp: payload format ${format.encoding || `type ${pt}`} is not supported (H264, H265, VP8, VP9, AV1, MPEG4-GENERIC AAC, opus, MPA, MPV are)`,
  );
}

function decodeSprop(value: string, what: string): Buffer[] {
  const nals: Buffer[] = [];
  for (const part of value.split(',')) {
    const text = part.trim();
    if (text === '') continue;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text))
      throw new MalformedInputError('sdp', 0, `${what} "${text.slice(0, 40)}" is not base64`);
    const nal = Buffer.from(text, 'base64');
    if (nal.length > 0) nals.push(nal);
    if (nals.length > 32) throw new MalformedInputError('sdp', 0, `${what} lists more than 32 NAL units`);
  }
  return nals;
}

/** sprop-parameter-sets (RFC 6184 8.1) -> avcC; undefined when absent or incomplete. */
export function spropToAvcc(value: string | undefined): Buffer | undefined {
  if (value === undefined) return undefined;
  const nals = decodeSprop(value, 'sprop-parameter-sets');
  const sps = nals.filter((n) => h264NalType(n) === H264Nal.sps);
  const pps = nals.filter((n) => h264NalType(n) === H264Nal.pps);
  if (sps.length === 0 || pps.length === 0) return undefined;
  parseH264Sps(sps[0] as Buffer); // throws on an SPS we cannot read
  return buildAvcc(sps, pps);
}

/** sprop-vps/sps/pps (RFC 7798 7.1) -> hvcC; undefined when absent or incomplete. */
export function spropToHvcc(fmtp: ReadonlyMap<string, string>): Buffer | undefined {
  const vpsText = fmtp.get('sprop-vps');
  const spsText = fmtp.get('sprop-sps');
  const ppsText = fmtp.get('sprop-pps');
  if (vpsText === undefined || spsText === undefined || ppsText === undefined) return undefined;
  const vps = decodeSprop(vpsText, 'sprop-vps').filter((n) => h265NalType(n) === H265Nal.vps);
  const sps = decodeSprop(spsText, 'sprop-sps').filter((n) => h265NalType(n) === H265Nal.sps);
  const pps = decodeSprop(ppsText, 'sprop-pps').filter((n) => h265NalType(n) === H265Nal.pps);
  if (vps.length === 0 || sps.length === 0 || pps.length === 0) return undefined;
  return buildHvcc(vps, sps, pps);
}

/** Picture size and profile from an avcC/hvcC, for the Track. */
/**
 * The reorder depth of H.264/H.265 video from its avcC/hvcC (how many frames a frame may follow in
 * output order): what RTP ingest derives DTS with. 0 when the SPS does not say (DtsFromPts grows it).
 */
export function reorderDepthOf(codec: 'h264' | 'h265', config: Buffer): number {
  if (codec === 'h264') return parseH264Sps(parseAvcc(config).sps[0] as Buffer).maxNumReorderFrames ?? 0;
  return parseH265Sps(parseHvcc(config).sps[0] as Buffer).maxNumReorderPics;
}

export function videoFieldsOf(codec: 'h264' | 'h265', config: Buffer | undefined): Partial<Track> {
  if (config === undefined) return {};
  if (codec === 'h264') {
    const sps = parseH264Sps(parseAvcc(config).sps[0] as Buffer);
    return { config, width: sps.width, height: sps.height, profile: describeH264Profile(sps) };
  }
  const sps = parseH265Sps(parseHvcc(config).sps[0] as Buffer);
  return { config, width: sps.width, height: sps.height, profile: describeH265Profile(sps) };
}
