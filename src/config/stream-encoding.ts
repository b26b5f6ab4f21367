// The encoder settings of a <Stream> (ref §2.6), apart from config.ts so that directives.ts, which fills
// them, and config.ts, which holds them, need not import each other.

/** Encoder settings of a stream (ref §2.6), as given; unset values are undefined (see FFSERVER_ENCODER_DEFAULTS). */
export interface StreamEncoding {
  useDefaults: boolean;
  audioCodec: string | undefined;
  audioBitRateKbps: number | undefined;
  audioChannels: number | undefined;
  audioSampleRate: number | undefined;
  /** `AVOptionAudio` pairs as written (key may carry a `codec:` prefix). */
  audioAvOptions: Record<string, string>;
  audioPresets: string[];
  videoCodec: string | undefined;
  videoBitRateKbps: number | undefined;
  videoBitRateRangeKbps: { min: number; max: number } | undefined;
  videoBitRateToleranceKbps: number | undefined;
  videoBufferSizeKiB: number | undefined;
  /** Frames per second. */
  frameRate: number | undefined;
  videoSize: { width: number; height: number } | undefined;
  pixelFormat: string | undefined;
  gop: number | undefined;
  intraOnly: boolean;
  highQuality: boolean;
  fourMotionVector: boolean;
  videoTag: string | undefined;
  qmin: number | undefined;
  qmax: number | undefined;
  qdiff: number | undefined;
  qscale: number | undefined;
  lumiMask: number | undefined;
  darkMask: number | undefined;
  bitExact: boolean;
  dctFastint: boolean;
  idctSimple: boolean;
  debug: string | undefined;
  strict: string | undefined;
  videoAvOptions: Record<string, string>;
  videoPresets: string[];
}
