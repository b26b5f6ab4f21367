// The codecs Feedcast knows by name, and what kind of track each one is.

export const VideoCodecs = ['h264', 'h265', 'av1', 'vp8', 'vp9', 'mpeg1video', 'mpeg2video', 'mjpeg'] as const;
export const AudioCodecs = ['aac', 'mp3', 'mp2', 'opus', 'ac3', 'pcm_alaw', 'pcm_mulaw'] as const;

export type VideoCodec = (typeof VideoCodecs)[number];
export type AudioCodec = (typeof AudioCodecs)[number];
export type Codec = VideoCodec | AudioCodec;

export type TrackKind = 'video' | 'audio';

export function kindOfCodec(codec: Codec): TrackKind {
  return (VideoCodecs as readonly string[]).includes(codec) ? 'video' : 'audio';
}
