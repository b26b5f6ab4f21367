// MPEG-1/2/2.5 audio frame header (ISO/IEC 11172-3 2.4.1.3, 13818-3 2.4.2.3): version, layer,
// bitrate, sample rate, channels, and the frame length and sample count a framer needs.

import { MalformedInputError } from '../../errors.js';

export interface MpegAudioHeader {
  /** 1 (MPEG-1), 2 (MPEG-2 LSF) or 2.5 (MPEG-2.5). */
  version: 1 | 2 | 2.5;
  layer: 1 | 2 | 3;
  bitrateKbps: number;
  sampleRate: number;
  channels: number;
  /** Bytes of the whole frame, header included. */
  frameLength: number;
  samplesPerFrame: number;
}

// Bitrates in kbit/s by [table][bitrate_index]; index 0 (free format) and 15 are not usable.
const BITRATES_V1_L1 = [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448];
const BITRATES_V1_L2 = [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384];
const BITRATES_V1_L3 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const BITRATES_V2_L1 = [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256];
const BITRATES_V2_L23 = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

const SAMPLE_RATES_V1 = [44100, 48000, 32000];

/** Bytes needed to read a header. */
export const MPEG_AUDIO_HEADER_BYTES = 4;

/**
 * Parses the 4-byte header at `offset`.
 *
 *  11 frame sync (all 1) | 2 version (00 MPEG-2.5, 01 reserved, 10 MPEG-2, 11 MPEG-1)
 *  | 2 layer (01 III, 10 II, 11 I, 00 reserved) | 1 protection_bit
 *  4 bitrate_index | 2 sampling_frequency | 1 padding_bit | 1 private_bit
 *  2 mode (11 single channel) | 2 mode_extension | 1 copyright | 1 original | 2 emphasis
 */
export function parseMpegAudioHeader(buf: Uint8Array, offset = 0): MpegAudioHeader {
  if (buf.length - offset < MPEG_AUDIO_HEADER_BYTES) {
    throw new MalformedInputError('mpeg audio', offset, `header needs 4 bytes, ${Math.max(buf.length - offset, 0)} left`);
  }
  const b0 = buf[offset] as number;
  const b1 = buf[offset + 1] as number;
  const b2 = buf[offset + 2] as number;
  const b3 = buf[offset + 3] as number;
  if (b0 !== 0xff || (b1 & 0xe0) !== 0xe0) throw new MalformedInputError('mpeg audio', offset, 'no frame sync');
  const versionBits = (b1 >> 3) & 3;
  const layerBits = (b1 >> 1) & 3;
  if (versionBits === 1) throw new MalformedInputError('mpeg audio', offset, 'reserved version id 01');
  if (layerBits === 0) throw new MalformedInputError('mpeg audio', offset, 'reserved layer 00');
  const version = versionBits === 3 ? 1 : versionBits === 2 ? 2 : 2.5;
  const layer = (4 - layerBits) as 1 | 2 | 3;
  const bitrateIndex = b2 >> 4;
  const rateIndex = (b2 >> 2) & 3;
  const padding = (b2 >> 1) & 1;
  if (bitrateIndex === 0) throw new MalformedInputError('mpeg audio', offset, 'free-format bitrate is not supported');
  if (bitrateIndex === 15) throw new MalformedInputError('mpeg audio', offset, 'bad bitrate index 15');
  if (rateIndex === 3) throw new MalformedInputError('mpeg audio', offset, 'reserved sampling frequency 11');
  const table =
    version === 1
      ? layer === 1
        ? BITRATES_V1_L1
        : layer === 2
          ? BITRATES_V1_L2
          : BITRATES_V1_L3
      : layer === 1
        ? BITRATES_V2_L1
        : BITRATES_V2_L23;
  const bitrateKbps = table[bitrateIndex] as number;
  const sampleRate = (SAMPLE_RATES_V1[rateIndex] as number) / (version === 1 ? 1 : version === 2 ? 2 : 4);
  const channels = b3 >> 6 === 3 ? 1 : 2;
  let samplesPerFrame: number;
  let frameLength: number;
  if (layer === 1) {
    samplesPerFrame = 384;
    frameLength = (Math.floor((12 * bitrateKbps * 1000) / sampleRate) + padding) * 4;
  } else {
    samplesPerFrame = layer === 3 && version !== 1 ? 576 : 1152;
    frameLength = Math.floor(((samplesPerFrame / 8) * bitrateKbps * 1000) / sampleRate) + padding;
  }
  return { version, layer, bitrateKbps, sampleRate, channels, frameLength, samplesPerFrame };
}
