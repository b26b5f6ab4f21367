// Output formats a <Stream> may name with `Format`, or get from its name's extension (ffserver.conf, ref §2.5):
// the muxer, how Feedcast serves it today, the Content-Type, and the muxer's default codecs (used for bandwidth, ref §3.9).

/** How Feedcast serves a format: copied as-is, via an ffmpeg transcode, not at all, or by a dedicated server part. */
export type FormatSupport = 'passthrough' | 'needs-encoding' | 'obsolete' | 'status' | 'hls' | 'rtp';

export interface FormatInfo {
  /** Canonical name, as written in `Format` (`jpeg`, not `singlejpeg`). */
  readonly name: string;
  /** The ffmpeg muxer (`-f`) that produces it. */
  readonly muxer: string;
  readonly support: FormatSupport;
  readonly contentType: string;
  /** For obsolete formats: what to use instead (a sentence fragment shown in the warning). */
  readonly alternative?: string;
  /** The connection closes after the first frame (ffserver's `Format jpeg`). */
  readonly singleFrame: boolean;
  /** ffmpeg's default encoders for this muxer (undefined: the muxer carries no such track). */
  readonly defaultAudioCodec: string | undefined;
  readonly defaultVideoCodec: string | undefined;
}

const BROWSER_ALTERNATIVE = 'use Format flv or mpegts, or hls for browsers';

function entry(
  name: string,
  muxer: string,
  support: FormatSupport,
  contentType: string,
  codecs: [audio: string | undefined, video: string | undefined],
  extra: { alternative?: string; singleFrame?: boolean } = {},
): FormatInfo {
  const info: FormatInfo = {
    name,
    muxer,
    support,
    contentType,
    singleFrame: extra.singleFrame ?? false,
    defaultAudioCodec: codecs[0],
    defaultVideoCodec: codecs[1],
  };
  return extra.alternative !== undefined ? { ...info, alternative: extra.alternative } : info;
}

/** Every format name Feedcast knows, keyed by canonical name. */
export const FORMATS: Readonly<Record<string, FormatInfo>> = Object.freeze({
  // Served by copying the feed's frames into the container.
  flv: entry('flv', 'flv', 'passthrough', 'video/x-flv', ['mp3', 'flv1']),
  mpegts: entry('mpegts', 'mpegts', 'passthrough', 'video/MP2T', ['mp2', 'mpeg2video']),
  // Served by dedicated parts of the server.
  hls: entry('hls', 'hls', 'hls', 'application/vnd.apple.mpegurl', ['aac', 'h264']),
  rtp: entry('rtp', 'rtp', 'rtp', 'application/sdp', ['pcm_mulaw', 'mpeg4']),
  status: entry('status', 'status', 'status', 'text/html', [undefined, undefined]),
  // Need an ffmpeg transcode (a later piece of work).
  mpeg: entry('mpeg', 'mpeg', 'needs-encoding', 'video/mpeg', ['mp2', 'mpeg1video']),
  mpeg1video: entry('mpeg1video', 'mpeg1video', 'needs-encoding', 'video/mpeg', [undefined, 'mpeg1video']),
  mpjpeg: entry('mpjpeg', 'mpjpeg', 'needs-encoding', 'multipart/x-mixed-replace;boundary=ffserver', [undefined, 'mjpeg']),
  mjpeg: entry('mjpeg', 'mjpeg', 'needs-encoding', 'video/x-mjpeg', [undefined, 'mjpeg']),
  jpeg: entry('jpeg', 'mjpeg', 'needs-encoding', 'image/jpeg', [undefined, 'mjpeg'], { singleFrame: true }),
  webm: entry('webm', 'webm', 'needs-encoding', 'video/webm', ['libvorbis', 'libvpx']),
  ogg: entry('ogg', 'ogg', 'needs-encoding', 'application/ogg', ['libvorbis', 'libtheora']),
  mp3: entry('mp3', 'mp3', 'needs-encoding', 'audio/mpeg', ['libmp3lame', undefined]),
  mp2: entry('mp2', 'mp2', 'needs-encoding', 'audio/mpeg', ['mp2', undefined]),
  adts: entry('adts', 'adts', 'needs-encoding', 'audio/aac', ['aac', undefined]),
  mp4: entry('mp4', 'mp4', 'needs-encoding', 'video/mp4', ['aac', 'h264']),
  // Accepted so old configs load, but not served (a warning names the alternative).
  asf: entry('asf', 'asf_stream', 'obsolete', 'video/x-ms-asf', ['wmav2', 'msmpeg4v3'], {
    alternative: `asf is not served by Feedcast (no current player uses it); ${BROWSER_ALTERNATIVE}`,
  }),
  rm: entry('rm', 'rm', 'obsolete', 'application/x-pn-realmedia', ['ac3', 'rv10'], {
    alternative: `RealMedia is not served by Feedcast (RealPlayer is gone); ${BROWSER_ALTERNATIVE}`,
  }),
  swf: entry('swf', 'swf', 'obsolete', 'application/x-shockwave-flash', ['mp3', 'flv1'], {
    alternative: `swf is not served by Feedcast (browsers dropped Flash); ${BROWSER_ALTERNATIVE}`,
  }),
  avi: entry('avi', 'avi', 'obsolete', 'video/x-msvideo', ['libmp3lame', 'mpeg4'], {
    alternative: `avi is not served by Feedcast (it cannot be streamed live); ${BROWSER_ALTERNATIVE}`,
  }),
  ffm: entry('ffm', 'ffm', 'obsolete', 'application/octet-stream', [undefined, undefined], {
    alternative: 'ffm streams (ffserver to ffserver) are not served by Feedcast; relay with Format mpegts or flv instead',
  }),
});

/** Other spellings accepted in `Format` lines, mapped to their canonical name. */
const FORMAT_ALIASES: Readonly<Record<string, string>> = {
  singlejpeg: 'jpeg',
  asf_stream: 'asf',
  ts: 'mpegts',
  m3u8: 'hls',
  mpegvideo: 'mpeg1video',
  ra: 'rm',
};

/** Stream-name extensions and the format ffserver guessed from them (ref §2.5). */
const EXTENSIONS: Readonly<Record<string, string>> = {
  flv: 'flv',
  ts: 'mpegts',
  m2t: 'mpegts',
  mpg: 'mpeg',
  mpeg: 'mpeg',
  m1v: 'mpeg1video',
  asf: 'asf',
  wmv: 'asf',
  mjpg: 'mpjpeg',
  jpg: 'jpeg',
  jpeg: 'jpeg',
  webm: 'webm',
  ogg: 'ogg',
  mp3: 'mp3',
  mp2: 'mp2',
  aac: 'adts',
  mp4: 'mp4',
  m3u8: 'hls',
  rm: 'rm',
  ra: 'rm',
  swf: 'swf',
  avi: 'avi',
  ffm: 'ffm',
};

/** Looks up a `Format` value (case-insensitive, aliases included). */
export function lookupFormat(name: string): FormatInfo | undefined {
  const lower = name.toLowerCase();
  const canonical = Object.hasOwn(FORMAT_ALIASES, lower) ? FORMAT_ALIASES[lower] : lower;
  return canonical !== undefined && Object.hasOwn(FORMATS, canonical) ? FORMATS[canonical] : undefined;
}

/** The format ffserver would pick from a stream name's extension, or undefined when there is none. */
export function guessFormatFromName(streamName: string): FormatInfo | undefined {
  const dot = streamName.lastIndexOf('.');
  if (dot < 0) return undefined;
  const ext = streamName.slice(dot + 1).toLowerCase();
  const name = Object.hasOwn(EXTENSIONS, ext) ? EXTENSIONS[ext] : undefined;
  return name !== undefined ? FORMATS[name] : undefined;
}

/** Canonical format names, for error messages and docs. */
export function knownFormatNames(): string[] {
  return Object.keys(FORMATS);
}

/** Extension → format name pairs, for docs. */
export function extensionTable(): ReadonlyArray<readonly [string, string]> {
  return Object.entries(EXTENSIONS);
}
