// One access unit of one track, the unit that flows from a publisher through the Feed to every
// reader. Frames are immutable once made: every reader shares the same object and bytes.

/**
 * Payload layout by codec:
 * - h264/h265: NAL units, each prefixed by a 4-byte big-endian length (the AVCC/HVCC layout of
 *   FLV, MP4 and fMP4; TS and RTP muxers rewrite the prefixes). No access unit delimiters.
 * - aac: one raw AAC frame (no ADTS header).
 * - mp3/mp2: one MPEG audio frame with its header.
 * - opus: one Opus packet (no TS control header).
 * - mpeg1video/mpeg2video: one picture, with the sequence header before keyframes.
 * - vp8/vp9: one VP8 frame (RFC 6386) or VP9 frame (superframe included), as in IVF or WebM.
 * - av1: the OBUs of one temporal unit, each with its obu_size field, without the temporal
 *   delimiter (the layout of an AV1 sample in MP4, AV1-ISOBMFF 2.4).
 */
export interface Frame {
  readonly trackId: number;
  /** Decode time, 90 kHz, on the feed's clock (monotonic per track). */
  readonly dts90k: number;
  /** Presentation time, 90 kHz, >= dts90k. */
  readonly pts90k: number;
  /** A video frame a decoder can start at; every audio frame is a keyframe. */
  readonly keyframe: boolean;
  readonly data: Buffer;
}

/** A frame whose times are moved by `offset90k`; the payload is shared, not copied. */
export function shiftFrame(frame: Frame, offset90k: number): Frame {
  if (offset90k === 0) return frame;
  return { ...frame, dts90k: frame.dts90k + offset90k, pts90k: frame.pts90k + offset90k };
}
