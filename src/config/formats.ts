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
  /** Served, but with a caveat (e.g. no browser plays it), shown by `feedcast check` and the status page. */
  readonly note?: string;
  /** The connection closes after the first frame (ffserver's `Format jpeg`). */
  readonly singleFrame: boolean;
  /** ffmpeg's default encoders for this muxer (undefined: the muxer carries no such track). */
  readonly defaultAudioCodec: string | undefined;
  readonly defaultVideoCodec: string | undefined;
  /** Stream-name extensions that select this format when a stream has no `Format` line (ffmpeg's av_guess_format). */
  readonly extensions: readonly string[];
  /** Other spellings accepted in `Format` lines. */
  readonly aliases: readonly string[];
}

const BROWSER_ALTERNATIVE = 'use Format flv or mpegts, or hls for browsers';

function entry(
  name: string,
  muxer: string,
  support: FormatSupport,
  contentType: string,
  codecs: [audio: string | undefined, video: string | undefined],
  extra: {
    alternative?: string;
    note?: string;
    singleFrame?: boolean;
    extensions?: readonly string[];
    aliases?: readonly string[];
  } = {},
): FormatInfo {
  const info: FormatInfo = {
    name,
    muxer,
    support,
    contentType,
    singleFrame: extra.singleFrame ?? false,
    defaultAudioCodec: codecs[0],
    defaultVideoCodec: codecs[1],
    extensions: extra.extensions ?? [],
    aliases: extra.aliases ?? [],
  };
  return {
    ...info,
    ...(extra.alternative !== undefined ? { alternative: extra.alternative } : {}),
    ...(extra.note !== undefined ? { note: extra.note } : {}),
  };
}

/**
 * Every format name Feedcast knows, keyed by canonical name: the one table behind `Format NAME`, its aliases and
 * the guess from a stream name's extension (ffserver used av_guess_format, preferring the `_stream` muxer, ref §2.5).
 */
export const FORMATS: Readonly<Record<string, FormatInfo>> = Object.freeze({
  // Served by copying the feed's frames into the container.
  flv: entry('flv', 'flv', 'passthrough', 'video/x-flv', ['mp3', 'flv1'], { extensions: ['flv'] }),
  mpegts: entry('mpegts', 'mpegts', 'passthrough', 'video/MP2T', ['mp2', 'mpeg2video'], {
    extensions: ['ts', 'm2t', 'm2ts', 'mts'],
    aliases: ['ts'],
  }),
  // Served by dedicated parts of the server.
  hls: entry('hls', 'hls', 'hls', 'application/vnd.apple.mpegurl', ['aac', 'h264'], { extensions: ['m3u8'], aliases: ['m3u8'] }),
  rtp: entry('rtp', 'rtp', 'rtp', 'application/sdp', ['pcm_mulaw', 'mpeg4']),
  status: entry('status', 'status', 'status', 'text/html', [undefined, undefined]),
  // Made by one shared ffmpeg per stream from the feed.
  mpeg: entry('mpeg', 'mpeg', 'needs-encoding', 'video/mpeg', ['mp2', 'mpeg1video'], { extensions: ['mpg', 'mpeg'] }),
  mpeg1video: entry('mpeg1video', 'mpeg1video', 'needs-encoding', 'video/mpeg', [undefined, 'mpeg1video'], {
    extensions: ['m1v'],
    aliases: ['mpegvideo'],
  }),
  mpjpeg: entry('mpjpeg', 'mpjpeg', 'needs-encoding', 'multipart/x-mixed-replace;boundary=ffserver', [undefined, 'mjpeg'], {
    extensions: ['mjpg'],
  }),
  mjpeg: entry('mjpeg', 'mjpeg', 'needs-encoding', 'video/x-mjpeg', [undefined, 'mjpeg'], { extensions: ['mjpeg'] }),
  jpeg: entry('jpeg', 'mjpeg', 'needs-encoding', 'image/jpeg', [undefined, 'mjpeg'], {
    singleFrame: true,
    extensions: ['jpg', 'jpeg'],
    aliases: ['singlejpeg'],
  }),
  webm: entry('webm', 'webm', 'needs-encoding', 'video/webm', ['libvorbis', 'libvpx'], { extensions: ['webm'] }),
  matroska: entry('matroska', 'matroska', 'needs-encoding', 'video/x-matroska', ['libvorbis', 'libx264'], {
    extensions: ['mkv'],
    aliases: ['mkv'],
  }),
  mka: entry('mka', 'matroska', 'needs-encoding', 'audio/x-matroska', ['libvorbis', undefined], { extensions: ['mka'] }),
  ogg: entry('ogg', 'ogg', 'needs-encoding', 'application/ogg', ['libvorbis', 'libtheora'], { extensions: ['ogg', 'ogv'] }),
  // ffmpeg's oga muxer defaults to FLAC; a radio stream wants Vorbis, which it carries too.
  oga: entry('oga', 'oga', 'needs-encoding', 'audio/ogg', ['libvorbis', undefined], { extensions: ['oga'] }),
  opus: entry('opus', 'opus', 'needs-encoding', 'audio/ogg', ['libopus', undefined], { extensions: ['opus'] }),
  mp3: entry('mp3', 'mp3', 'needs-encoding', 'audio/mpeg', ['libmp3lame', undefined], { extensions: ['mp3'] }),
  mp2: entry('mp2', 'mp2', 'needs-encoding', 'audio/mpeg', ['mp2', undefined], { extensions: ['mp2'] }),
  adts: entry('adts', 'adts', 'needs-encoding', 'audio/aac', ['aac', undefined], { extensions: ['aac'] }),
  mp4: entry('mp4', 'mp4', 'needs-encoding', 'video/mp4', ['aac', 'h264'], { extensions: ['mp4'] }),
  // ffserver's formats for Windows Media, RealPlayer, Flash and AVI clients: made by ffmpeg like the ones above
  // (no browser plays them, which the status page and `feedcast check` say in a note).
  asf: entry('asf', 'asf_stream', 'needs-encoding', 'video/x-ms-asf', ['wmav2', 'msmpeg4v3'], {
    note: `no browser plays asf (VLC, ffplay and Windows Media Player do); ${BROWSER_ALTERNATIVE}`,
    extensions: ['asf', 'wmv'],
    aliases: ['asf_stream'],
  }),
  rm: entry('rm', 'rm', 'needs-encoding', 'application/vnd.rn-realmedia', ['ac3', 'rv10'], {
    note: `no browser plays RealMedia (VLC and ffplay do); ${BROWSER_ALTERNATIVE}`,
    extensions: ['rm', 'ra'],
    aliases: ['ra'],
  }),
  swf: entry('swf', 'swf', 'needs-encoding', 'application/x-shockwave-flash', ['mp3', 'flv1'], {
    note: `browsers dropped Flash (VLC and ffplay play swf); ${BROWSER_ALTERNATIVE}`,
    extensions: ['swf'],
  }),
  avi: entry('avi', 'avi', 'needs-encoding', 'video/x-msvideo', ['libmp3lame', 'mpeg4'], {
    note: `no browser plays AVI (VLC and ffplay do); ${BROWSER_ALTERNATIVE}`,
    extensions: ['avi'],
  }),
  // Accepted so old configs load, but not served (a warning names the alternative).
  ffm: entry('ffm', 'ffm', 'obsolete', 'application/octet-stream', [undefined, undefined], {
    alternative: 'ffm streams (ffserver to ffserver) are not served by Feedcast; relay with Format mpegts or flv instead',
    extensions: ['ffm'],
  }),
});

function indexBy(key: 'aliases' | 'extensions'): Readonly<Record<string, string>> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const f of Object.values(FORMATS)) for (const k of f[key]) out[k] = f.name;
  return Object.freeze(out);
}

/** Other spellings accepted in `Format` lines, mapped to their canonical name. */
const FORMAT_ALIASES = indexBy('aliases');

/** Stream-name extensions and the format ffserver guessed from them (ref §2.5). */
const EXTENSIONS = indexBy('extensions');

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
