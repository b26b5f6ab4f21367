// The VPCodecConfigurationRecord (vpcC, VP Codec ISO Media File Format Binding 2.3) of a VP8/VP9
// track: the one its publisher sent (Enhanced RTMP), else one made for 8-bit 4:2:0 at the level
// its picture size needs (WebRTC sends none).

import type { Track } from '../../media/track.js';

/** vpcC payload bytes: version and flags (4), then at least 8 bytes of fields. */
const VPCC_MIN_BYTES = 12;

/** Whether `config` is a version 1 vpcC payload. */
export function isVpcc(config: Buffer | undefined): boolean {
  return config !== undefined && config.length >= VPCC_MIN_BYTES && config[0] === 1;
}

/** The track's own vpcC, or the default one for its size. */
export function vpccOf(track: Track): Buffer {
  return track.config !== undefined && isVpcc(track.config)
    ? track.config
    : defaultVpcc(vpLevel(track.width ?? 0, track.height ?? 0));
}

/**
 * The payload of a vpcC box (VP codec binding 2.3, version 1) for 8-bit 4:2:0 profile 0, what
 * browsers send over WebRTC (VP8 has no profile here; WHIP prefers VP9 profile 0):
 *   version(8) = 1, flags(24); profile(8), level(8), bitDepth(4), chromaSubsampling(3),
 *   videoFullRangeFlag(1), colourPrimaries(8), transferCharacteristics(8), matrixCoefficients(8)
 *   (2: unspecified), codecInitializationDataSize(16) = 0.
 */
function defaultVpcc(level: number): Buffer {
  return Buffer.from([1, 0, 0, 0, 0, level, (8 << 4) | (0 << 1) | 0, 2, 2, 2, 0, 0]);
}

/** The VP9 level (Annex A: 10, 11, 20 ... as tens and units) whose picture size holds WxH. */
export function vpLevel(width: number, height: number): number {
  const samples = width * height;
  const levels: [number, number][] = [
    [36_864, 10],
    [73_728, 11],
    [122_880, 20],
    [245_760, 21],
    [552_960, 30],
    [983_040, 31],
    [2_228_224, 41],
    [8_912_896, 52],
    [35_651_584, 62],
  ];
  return levels.find(([max]) => samples <= max)?.[1] ?? 62;
}
