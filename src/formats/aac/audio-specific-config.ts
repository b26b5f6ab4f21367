// AAC configuration: AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) and the ADTS header
// (14496-3 1.A.2.2) that MPEG-TS carries instead of it.

import { BitReader } from '../bytes/bit-reader.js';
import { MalformedInputError } from '../../errors.js';

export const AAC_SAMPLE_RATES = [
  96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
] as const;

export interface AacConfig {
  objectType: number;
  sampleRate: number;
  samplingIndex: number;
  channels: number;
}

export function parseAudioSpecificConfig(buf: Uint8Array): AacConfig {
  const r = new BitReader(buf, 'AudioSpecificConfig');
  let objectType = r.bits(5);
  if (objectType === 31) objectType = 32 + r.bits(6);
  const samplingIndex = r.bits(4);
  let sampleRate: number;
  if (samplingIndex === 15) sampleRate = r.bits(24);
  else {
    const rate = AAC_SAMPLE_RATES[samplingIndex];
    if (rate === undefined)
      throw new MalformedInputError('AudioSpecificConfig', 0, `sampling index ${samplingIndex} is reserved`);
    sampleRate = rate;
  }
  const channels = r.bits(4);
  return { objectType, sampleRate, samplingIndex, channels };
}

export function buildAudioSpecificConfig(objectType: number, samplingIndex: number, channels: number): Buffer {
  // 5 bits object type, 4 bits sampling index, 4 bits channel config, 3 bits GASpecificConfig (0)
  const v = ((objectType & 0x1f) << 11) | ((samplingIndex & 0x0f) << 7) | ((channels & 0x0f) << 3);
  return Buffer.from([v >> 8, v & 0xff]);
}

export interface AdtsHeader extends AacConfig {
  headerLength: number;
  frameLength: number;
}

/**
 *  12 syncword 0xFFF, 1 ID, 2 layer, 1 protection_absent, 2 profile, 4 sampling_frequency_index,
 *  1 private, 3 channel_configuration, 1 orig, 1 home, 1 copyright_id_bit, 1 copyright_id_start,
 *  13 aac_frame_length (header included), 11 buffer fullness, 2 number_of_raw_data_blocks - 1
 */
export function parseAdtsHeader(buf: Uint8Array, offset: number): AdtsHeader {
  if (buf.length - offset < 7) throw new MalformedInputError('adts', offset, 'header needs 7 bytes');
  const b1 = buf[offset + 1] as number;
  if (buf[offset] !== 0xff || (b1 & 0xf6) !== 0xf0) throw new MalformedInputError('adts', offset, 'no ADTS syncword');
  const protectionAbsent = b1 & 1;
  const b2 = buf[offset + 2] as number;
  const b3 = buf[offset + 3] as number;
  const objectType = ((b2 >> 6) & 3) + 1;
  const samplingIndex = (b2 >> 2) & 0x0f;
  const sampleRate = AAC_SAMPLE_RATES[samplingIndex];
  if (sampleRate === undefined) throw new MalformedInputError('adts', offset, `sampling index ${samplingIndex} is reserved`);
  const channels = ((b2 & 1) << 2) | (b3 >> 6);
  const frameLength = ((b3 & 3) << 11) | ((buf[offset + 4] as number) << 3) | ((buf[offset + 5] as number) >> 5);
  const headerLength = protectionAbsent ? 7 : 9;
  if (frameLength < headerLength)
    throw new MalformedInputError('adts', offset, `frame length ${frameLength} shorter than its header`);
  return { objectType, samplingIndex, sampleRate, channels, headerLength, frameLength };
}

/** The 7-byte ADTS header (no CRC) for a raw AAC frame of `payloadLength` bytes. */
export function buildAdtsHeader(config: AacConfig, payloadLength: number): Buffer {
  const frameLength = payloadLength + 7;
  const profile = Math.min(Math.max(config.objectType - 1, 0), 3);
  return Buffer.from([
    0xff,
    0xf1,
    (profile << 6) | ((config.samplingIndex & 0x0f) << 2) | ((config.channels >> 2) & 1),
    ((config.channels & 3) << 6) | ((frameLength >> 11) & 3),
    (frameLength >> 3) & 0xff,
    ((frameLength & 7) << 5) | 0x1f,
    0xfc,
  ]);
}

/** Samples per AAC frame (1024 for AAC-LC and HE-AAC core). */
export const AAC_FRAME_SAMPLES = 1024;
