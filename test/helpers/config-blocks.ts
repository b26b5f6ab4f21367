// Config text shared by tests: a `<Stream>` that transcodes a feed (libx264 + AAC) and the Launch
// line of a small on-demand test source.

export interface EncodedStreamOptions {
  /** The `Format` of the stream (flv, mpegts, hls...). */
  format?: string;
  /** WxH */
  size?: string;
  fps?: number;
  kbps?: number;
  /** More directives, one a line, after the encoding ones. */
  extra?: string[];
}

/** A `<Stream>` block encoding feed1.ffm with libx264 + mono 44.1 kHz AAC at 48 kb/s (160x120, 10 fps, 150 kb/s by default). */
export function encodedStream(name: string, options: EncodedStreamOptions = {}): string {
  const { format = 'flv', size = '160x120', fps = 10, kbps = 150, extra = [] } = options;
  return [
    `<Stream ${name}>`,
    '  Feed feed1.ffm',
    `  Format ${format}`,
    '  VideoCodec libx264',
    `  VideoSize ${size}`,
    `  VideoFrameRate ${fps}`,
    `  VideoBitRate ${kbps}`,
    '  AudioCodec aac',
    '  AudioBitRate 48',
    '  AudioSampleRate 44100',
    '  AudioChannels 1',
    ...extra.map((line) => `  ${line}`),
    '</Stream>',
  ].join('\n');
}

/** An on-demand feed source: 160x120 test pattern at 10 fps and a sine, in real time. */
export const LAUNCH_TEST_SOURCE =
  'Launch ffmpeg -re -f lavfi -i testsrc2=size=160x120:rate=10 -f lavfi -i sine=sample_rate=44100';
