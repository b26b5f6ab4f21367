// One elementary stream of a feed: its codec, codec configuration and the parameters a reader
// needs before the first frame (size, sample rate).

import type { Codec, TrackKind } from './codec.js';

/**
 * `config` is the codec's out-of-band configuration in its ISO/IEC 14496 form:
 * - h264: AVCDecoderConfigurationRecord (avcC, 14496-15 5.3.3)
 * - h265: HEVCDecoderConfigurationRecord (hvcC, 14496-15 8.3.3)
 * - av1: AV1CodecConfigurationRecord (av1C, AV1 ISOBMFF binding 2.3.3), its configOBUs the
 *   sequence header OBU (formats/av1/av1c.ts)
 * - vp9: VPCodecConfigurationRecord (vpcC payload with version and flags, VP codec ISO binding
 *   2.3) when the publisher sent one (Enhanced RTMP); absent from WebRTC
 * - aac: AudioSpecificConfig (14496-3 1.6.2.1)
 * - opus: none needed (RFC 7845 OpusHead may be given)
 * - others: absent (configuration travels in-band).
 */
export interface Track {
  /** Unique within its feed (or within one demuxer's output, before the Feed maps it). */
  readonly id: number;
  readonly kind: TrackKind;
  readonly codec: Codec;
  readonly config?: Buffer | undefined;
  readonly width?: number | undefined;
  readonly height?: number | undefined;
  readonly sampleRate?: number | undefined;
  readonly channels?: number | undefined;
  /** Codec profile/level string for display, e.g. "High 3.1". */
  readonly profile?: string | undefined;
}

export function describeTrack(t: Track): string {
  if (t.kind === 'video') {
    const size = t.width !== undefined && t.height !== undefined ? ` ${t.width}x${t.height}` : '';
    return `${t.codec}${size}`;
  }
  const rate = t.sampleRate !== undefined ? ` ${t.sampleRate} Hz` : '';
  const ch = t.channels !== undefined ? ` ${t.channels} ch` : '';
  return `${t.codec}${rate}${ch}`;
}

/** True when a reader muxing `a` must be told about `b` (new sequence header / codec change). */
export function sameTrackConfig(a: Track, b: Track): boolean {
  if (a.codec !== b.codec || a.width !== b.width || a.height !== b.height) return false;
  if (a.sampleRate !== b.sampleRate || a.channels !== b.channels) return false;
  if (a.config === undefined || b.config === undefined) return a.config === b.config;
  return a.config.equals(b.config);
}
