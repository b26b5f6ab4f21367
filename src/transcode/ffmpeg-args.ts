// Pure argv builders for every ffmpeg child Feedcast runs: a <Stream>'s encoder settings (ffserver
// ref §2.6) turned into ffmpeg options, the transcoder command (MPEG-TS in on stdin, the stream's
// container out on stdout), Launch and pulled sources, and `feedcast publish`. No I/O here.

import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { StreamConfig, StreamEncoding } from '../config/config.js';
import { FFSERVER_ENCODER_DEFAULTS } from '../config/directives.js';
import { encoderName } from '../config/presets.js';

/** The codec (as Feedcast's Track names it) an encoder produces, when Feedcast can carry it in MPEG-TS/FLV. */
const ENCODER_CODECS: Readonly<Record<string, string>> = {
  libx264: 'h264',
  libx265: 'h265',
  mpeg1video: 'mpeg1video',
  mpeg2video: 'mpeg2video',
  aac: 'aac',
  libfdk_aac: 'aac',
  libmp3lame: 'mp3',
  mp2: 'mp2',
  libtwolame: 'mp2',
  libopus: 'opus',
  opus: 'opus',
};

/** Formats whose bytes come out of the transcoder as MPEG-TS and are re-muxed by Feedcast (shared outputs). */
const FEED_FORMATS = new Set(['flv', 'mpegts']);

export interface VideoSpec {
  encoder: string;
  /** Feedcast codec name when it can travel through MPEG-TS, else undefined. */
  codec: string | undefined;
  width: number;
  height: number;
  frameRate: number;
  bitRateKbps: number | undefined;
  gop: number;
  /** Encoder options after `-c:v ENC`, with stream specifiers already in place (`-b:v` ...). */
  options: string[];
}

export interface AudioSpec {
  encoder: string;
  codec: string | undefined;
  bitRateKbps: number | undefined;
  channels: number | undefined;
  sampleRate: number | undefined;
  options: string[];
}

export interface TranscodeProfile {
  /** Identity for sharing: two streams with the same key share one ffmpeg child. */
  readonly key: string;
  /** 'feed': ffmpeg writes MPEG-TS that Feedcast demuxes into a derived feed (served as FLV/TS/HLS...).
   *  'raw': ffmpeg writes the final container (webm, mpjpeg, mp3 ...) that readers share as bytes. */
  readonly output: 'feed' | 'raw';
  /** Feedcast format name (`webm`, `mpjpeg`, `flv` ...). */
  readonly format: string;
  /** The ffmpeg muxer that writes stdout. */
  readonly muxer: string;
  readonly muxerOptions: readonly string[];
  readonly video: VideoSpec | undefined;
  readonly audio: AudioSpec | undefined;
}

export function codecOfEncoder(encoder: string): string | undefined {
  return Object.hasOwn(ENCODER_CODECS, encoder) ? ENCODER_CODECS[encoder] : undefined;
}

/** Default encoders of feed-path outputs: FLV's ffserver defaults (flv1, mp3) are replaced by what players decode today. */
function defaultEncoders(stream: StreamConfig): { video: string | undefined; audio: string | undefined } {
  const f = stream.format;
  if (f.name === 'flv' || f.name === 'rtp') return { video: 'libx264', audio: 'aac' };
  return { video: f.defaultVideoCodec, audio: f.defaultAudioCodec };
}

/** Splits an AVOption key `codec:opt` into the option and whether it applies to `encoder`. */
function avOption(key: string, encoder: string): string | undefined {
  const colon = key.indexOf(':');
  if (colon < 0) return key;
  const codec = encoderName(key.slice(0, colon));
  return codec === encoder ? key.slice(colon + 1) : undefined;
}

function videoSpec(stream: StreamConfig, encoder: string): VideoSpec {
  const e: StreamEncoding = stream.encoding;
  const d = FFSERVER_ENCODER_DEFAULTS;
  const given = e.videoSize ?? (e.useDefaults ? d.videoSize : { width: 320, height: 240 });
  // RealVideo 1/2 encode only sizes that are multiples of 16.
  const size =
    encoder === 'rv10' || encoder === 'rv20'
      ? { width: Math.max(16, Math.round(given.width / 16) * 16), height: Math.max(16, Math.round(given.height / 16) * 16) }
      : given;
  const frameRate = e.frameRate ?? (e.useDefaults ? d.frameRate : 25);
  const bitRateKbps = e.videoBitRateKbps ?? (e.useDefaults && e.qscale === undefined ? d.videoBitRateKbps : undefined);
  const opts = e.videoAvOptions;
  // ffserver left the GOP to the encoder (x264: 250 frames); Feedcast defaults to 2 s so readers join fast.
  // An AVOptionVideo (or preset) `g` is the GOP then, and is passed with the other options below.
  const gopOption = Object.hasOwn(opts, 'g') ? Number(opts['g']) : NaN;
  const gop = e.intraOnly ? 1 : (e.gop ?? (gopOption > 0 ? gopOption : Math.max(1, Math.round(frameRate * 2))));
  // The fps filter makes the rate constant: it drops frames above it and repeats frames below it. `-r` alone
  // only drops (MPEG-TS and the other variable-rate muxers take fewer frames as they come), so a
  // VideoFrameRate above the feed's rate was never reached.
  const o: string[] = ['-s', `${size.width}x${size.height}`, '-r', String(frameRate), '-filter:v', `fps=${frameRate}`];
  if (!Object.hasOwn(opts, 'g')) o.push('-g', String(gop));
  if (bitRateKbps !== undefined) {
    o.push('-b:v', `${bitRateKbps}k`);
    if (e.videoBitRateRangeKbps === undefined && e.useDefaults && !Object.hasOwn(opts, 'maxrate')) {
      // ffserver's UseDefaults: maxrate = 2·b, bufsize = maxrate (ref §2.6).
      o.push('-maxrate:v', `${bitRateKbps * 2}k`);
      if (e.videoBufferSizeKiB === undefined) o.push('-bufsize:v', `${bitRateKbps * 2}k`);
    }
  }
  if (e.videoBitRateRangeKbps !== undefined) {
    o.push('-minrate:v', `${e.videoBitRateRangeKbps.min}k`, '-maxrate:v', `${e.videoBitRateRangeKbps.max}k`);
  }
  if (e.videoBitRateToleranceKbps !== undefined) o.push('-bt:v', `${e.videoBitRateToleranceKbps}k`);
  if (e.videoBufferSizeKiB !== undefined) o.push('-bufsize:v', String(e.videoBufferSizeKiB * 8192));
  const pixFmt = e.pixelFormat ?? (encoder === 'mjpeg' ? 'yuvj420p' : encoder.startsWith('lib') ? 'yuv420p' : undefined);
  if (pixFmt !== undefined) o.push('-pix_fmt', pixFmt);
  if (e.highQuality || e.fourMotionVector) o.push('-mbd:v', 'bits');
  const flags: string[] = [];
  if (e.fourMotionVector) flags.push('+mv4');
  if (e.bitExact) flags.push('+bitexact');
  if (e.qscale !== undefined) flags.push('+qscale');
  if (flags.length > 0) o.push('-flags:v', flags.join(''));
  if (e.qscale !== undefined) o.push('-global_quality:v', String(Math.round(e.qscale * 118)));
  if (e.videoTag !== undefined && e.videoTag.length === 4) o.push('-tag:v', e.videoTag);
  if (e.qmin !== undefined) o.push('-qmin:v', String(e.qmin));
  if (e.qmax !== undefined) o.push('-qmax:v', String(e.qmax));
  if (e.qdiff !== undefined) o.push('-qdiff:v', String(e.qdiff));
  if (e.lumiMask !== undefined) o.push('-lumi_mask:v', String(e.lumiMask));
  if (e.darkMask !== undefined) o.push('-dark_mask:v', String(e.darkMask));
  if (e.dctFastint) o.push('-dct:v', 'fastint');
  if (e.idctSimple) o.push('-idct:v', 'simple');
  if (e.debug !== undefined) o.push('-debug:v', e.debug);
  if (e.strict !== undefined) o.push('-strict:v', e.strict);
  // MPEG-1/2 video only has 24-60 fps officially; ffserver's default of 5 fps (and 10, 15 ...) needs
  // the unofficial frame-rate codes, which ffmpeg and players read.
  else if (encoder === 'mpeg1video' || encoder === 'mpeg2video') o.push('-strict:v', 'unofficial');
  // Live defaults per encoder, each overridable with AVOptionVideo.
  const live: Record<string, string> =
    encoder === 'libx264'
      ? { preset: 'veryfast', tune: 'zerolatency', sc_threshold: '0' }
      : encoder === 'libvpx' || encoder === 'libvpx-vp9'
        ? { deadline: 'realtime', 'cpu-used': '8', 'lag-in-frames': '0' }
        : {};
  for (const [k, val] of Object.entries(live)) if (!Object.hasOwn(opts, k)) o.push(`-${k}:v`, val);
  for (const [key, val] of Object.entries(opts)) {
    const name = avOption(key, encoder);
    if (name !== undefined) o.push(`-${name}:v`, val);
  }
  return { encoder, codec: codecOfEncoder(encoder), ...size, frameRate, bitRateKbps, gop, options: o };
}

function audioSpec(stream: StreamConfig, encoder: string): AudioSpec {
  const e = stream.encoding;
  const d = FFSERVER_ENCODER_DEFAULTS;
  const bitRateKbps = e.audioBitRateKbps ?? (e.useDefaults ? d.audioBitRateKbps : undefined);
  let sampleRate = e.audioSampleRate ?? (e.useDefaults ? d.audioSampleRate : undefined);
  // Opus only runs at 48 kHz (and 8/12/16/24); ffserver's 22050 default would make ffmpeg fail.
  if (encoder === 'libopus' && sampleRate !== undefined && ![8000, 12000, 16000, 24000, 48000].includes(sampleRate)) {
    sampleRate = 48000;
  }
  // AC-3 (RealMedia's default audio) only runs at 32, 44.1 or 48 kHz.
  if (encoder === 'ac3' && sampleRate !== undefined && ![32000, 44100, 48000].includes(sampleRate)) sampleRate = 44100;
  const channels = e.audioChannels ?? (e.useDefaults ? d.audioChannels : undefined);
  const o: string[] = [];
  if (bitRateKbps !== undefined) o.push('-b:a', `${bitRateKbps}k`);
  if (channels !== undefined) o.push('-ac', String(channels));
  if (sampleRate !== undefined) o.push('-ar', String(sampleRate));
  if (e.bitExact) o.push('-flags:a', '+bitexact');
  if (e.debug !== undefined) o.push('-debug:a', e.debug);
  if (e.strict !== undefined) o.push('-strict:a', e.strict);
  for (const [key, val] of Object.entries(e.audioAvOptions)) {
    const name = avOption(key, encoder);
    if (name !== undefined) o.push(`-${name}:a`, val);
  }
  return { encoder, codec: codecOfEncoder(encoder), bitRateKbps, channels, sampleRate, options: o };
}

/** Container options that make each format streamable from a pipe, with clean join points. */
function muxerFor(format: string): { muxer: string; options: string[] } {
  switch (format) {
    case 'flv':
    case 'mpegts':
      return { muxer: 'mpegts', options: ['-muxdelay', '0', '-muxpreload', '0', '-flush_packets', '1'] };
    case 'mpjpeg':
    case 'jpeg':
    case 'mjpeg':
      // Raw concatenated JPEGs: Feedcast frames them and writes the multipart boundaries itself.
      return { muxer: 'mjpeg', options: ['-flush_packets', '1'] };
    case 'webm':
    case 'matroska':
    case 'mka':
      return {
        muxer: format === 'webm' ? 'webm' : 'matroska',
        options: ['-live', '1', '-cluster_time_limit', '1000', '-flush_packets', '1'],
      };
    case 'mp4':
      return {
        muxer: 'mp4',
        options: ['-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '1000000', '-flush_packets', '1'],
      };
    case 'mp3':
      return { muxer: 'mp3', options: ['-id3v2_version', '0', '-write_xing', '0', '-flush_packets', '1'] };
    case 'mpeg':
      return { muxer: 'mpeg', options: ['-muxdelay', '0.1', '-flush_packets', '1'] };
    case 'asf':
      // asf_stream: live ASF (broadcast flag, no index) in MMS-over-HTTP chunks; the framer strips them.
      return { muxer: 'asf_stream', options: ['-flush_packets', '1'] };
    default:
      return { muxer: format, options: ['-flush_packets', '1'] };
  }
}

/** The encoding a feed-backed stream needs; undefined for passthrough streams. */
export function needsEncoding(stream: StreamConfig): boolean {
  return stream.feed !== undefined && (stream.needsTranscode || stream.format.support === 'needs-encoding');
}

/** A stream's transcode profile (ffserver's UseDefaults filled in, ref §2.6). */
export function profileOf(stream: StreamConfig): TranscodeProfile {
  // A `Format rtp` stream with its own encoding is encoded as its FLV twin would be: the output feed is the RTP
  // source of the RTSP server (ffserver's RTSP recipe; MPEG-4 Part 2 and mu-law, its defaults, are not used).
  const format = stream.format.name === 'rtp' ? 'flv' : stream.format.name;
  const defaults = defaultEncoders(stream);
  const e = stream.encoding;
  const videoEncoder = stream.noVideo ? undefined : e.videoCodec !== undefined ? encoderName(e.videoCodec) : defaults.video;
  const audioEncoder = stream.noAudio ? undefined : e.audioCodec !== undefined ? encoderName(e.audioCodec) : defaults.audio;
  const video = videoEncoder !== undefined ? videoSpec(stream, videoEncoder) : undefined;
  const audio = audioEncoder !== undefined ? audioSpec(stream, audioEncoder) : undefined;
  // FLV with a codec MPEG-TS cannot carry (Sorenson Spark `VideoCodec flv`, Nellymoser ...): ffmpeg writes the
  // FLV itself and readers share its bytes, like webm.
  const tsCarries = (video === undefined || video.codec !== undefined) && (audio === undefined || audio.codec !== undefined);
  const output = FEED_FORMATS.has(format) && (format !== 'flv' || tsCarries) ? 'feed' : 'raw';
  const { muxer, options } =
    output === 'raw' && format === 'flv'
      ? { muxer: 'flv', options: ['-flvflags', 'no_duration_filesize', '-flush_packets', '1'] }
      : muxerFor(format);
  // Title, Author, Comment, Copyright (Metadata): in the container ffmpeg writes (Ogg comments, Matroska tags,
  // ID3v2, FLV onMetaData). The feed path's FLV gets them from Feedcast's own muxer (the stream's variant).
  const metadata = output === 'raw' ? metadataArgs(stream.metadata, muxer) : [];
  // jpeg and mjpeg/mpjpeg are the same bytes from ffmpeg: they share one child.
  const sharedFormat = format === 'jpeg' || format === 'mpjpeg' ? 'mjpeg' : output === 'feed' ? 'ts' : format;
  const key = JSON.stringify([sharedFormat, video?.encoder, video?.options, audio?.encoder, audio?.options, metadata]);
  return { key, output, format, muxer, muxerOptions: [...options, ...metadata], video, audio };
}

/** `-metadata key=value` for each entry; MP3 carries them in an ID3v2.3 tag (which muxerFor leaves out otherwise). */
function metadataArgs(metadata: Readonly<Record<string, string>>, muxer: string): string[] {
  const entries = Object.entries(metadata);
  if (entries.length === 0) return [];
  const args = entries.flatMap(([k, val]) => ['-metadata', `${k}=${val}`]);
  return muxer === 'mp3' ? ['-id3v2_version', '3', ...args] : args;
}

/** `-c:v ENC opts... -c:a ENC opts...` (or -vn / -an). */
export function encoderArgs(profile: Pick<TranscodeProfile, 'video' | 'audio'>): string[] {
  const args: string[] = [];
  if (profile.video !== undefined) args.push('-c:v', profile.video.encoder, ...profile.video.options);
  else args.push('-vn');
  if (profile.audio !== undefined) args.push('-c:a', profile.audio.encoder, ...profile.audio.options);
  else args.push('-an');
  return args;
}

/** Options that keep ffmpeg quiet on stderr except for what matters, and fast to start on a live pipe. */
const COMMON = ['-hide_banner', '-nostats', '-loglevel', 'warning'];
// probesize must hold a 1080p keyframe plus the first audio frames (the GOP cache comes at once);
// analyzeduration bounds the wait when the feed is slow. No `-fflags nobuffer`: it throws away
// what probing read, which is the GOP cache's keyframe, so the video started a whole GOP after
// the audio; a ladder's TS demuxer then gave up on the video tracks (issue #7, ladder restarts).
const LIVE_INPUT = ['-fflags', '+genpts', '-probesize', '2000000', '-analyzeduration', '500000'];

/** The transcoder: the feed's frames as MPEG-TS on stdin, the profile's container on stdout. */
export function transcodeArgs(profile: TranscodeProfile, input: { hasVideo: boolean; hasAudio: boolean }): string[] {
  const maps: string[] = [];
  const video = profile.video !== undefined && input.hasVideo ? profile.video : undefined;
  const audio = profile.audio !== undefined && input.hasAudio ? profile.audio : undefined;
  if (video !== undefined) maps.push('-map', '0:v:0');
  if (audio !== undefined) maps.push('-map', '0:a:0');
  return [
    ...COMMON,
    ...LIVE_INPUT,
    '-f',
    'mpegts',
    '-i',
    'pipe:0',
    ...maps,
    ...encoderArgs({ video, audio }),
    '-max_muxing_queue_size',
    '1024',
    '-f',
    profile.muxer,
    ...profile.muxerOptions,
    'pipe:1',
  ];
}

/** Launch (ffserver ref §2.3): the arguments as written minus argv[0], publishing MPEG-TS on stdout. */
export function launchArgs(launch: readonly string[]): string[] {
  const args = launch.slice(1);
  const hasOutputCodec = args.some((a, i) => /^-(c|codec|vcodec|acodec|c:[va]|codec:[va])$/.test(a) && i < args.length - 1);
  const codecs = hasOutputCodec
    ? []
    : ['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '50', '-c:a', 'aac'];
  return [...COMMON, '-nostdin', ...args, ...codecs, '-f', 'mpegts', '-muxdelay', '0', '-flush_packets', '1', 'pipe:1'];
}

export interface PullOptions {
  /** Loop a file source at its end (off with NoLoop). */
  loop: boolean;
  /** Re-encode to H.264/AAC instead of copying (sources in codecs Feedcast cannot carry). */
  transcode: boolean;
}

/** Whether a Source URL names a local file (or device) rather than a network stream. */
export function isFileSource(url: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || url.startsWith('file://');
}

/** A pulled source (`Source URL`): rtsp/rtmp/http/srt/udp, a v4l2 device or a file, copied into MPEG-TS on stdout. */
export function pullArgs(url: string, options: PullOptions): string[] {
  const input: string[] = [];
  if (url.startsWith('rtsp://') || url.startsWith('rtsps://')) input.push('-rtsp_transport', 'tcp', '-timeout', '10000000');
  else if (/^(https?|rtmps?):\/\//.test(url)) input.push('-rw_timeout', '10000000');
  if (url.startsWith('/dev/video')) input.push('-f', 'v4l2');
  const file = isFileSource(url) && !url.startsWith('/dev/');
  if (file) {
    input.push('-re');
    if (options.loop) input.push('-stream_loop', '-1');
  }
  const codecs = options.transcode
    ? ['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '50', '-c:a', 'aac']
    : ['-c', 'copy'];
  return [
    ...COMMON,
    '-nostdin',
    ...input,
    '-i',
    url.startsWith('file://') ? url.slice('file://'.length) : url,
    '-map',
    '0:v:0?',
    '-map',
    '0:a:0?',
    ...codecs,
    '-f',
    'mpegts',
    '-muxdelay',
    '0',
    '-flush_packets',
    '1',
    'pipe:1',
  ];
}

/** One variant of a multi-track published feed, as the handshake lists it (see encodings.ts). */
export interface PublishVariant {
  video: Pick<VideoSpec, 'encoder' | 'options'> | undefined;
  audio: Pick<AudioSpec, 'encoder' | 'options'> | undefined;
}

/** Which input stream every variant encodes: ffmpeg `-map` specifiers (`?` makes one optional). */
export interface VariantInputs {
  video: string;
  audio: string;
}

const PIPE_INPUTS: VariantInputs = { video: '0:v:0', audio: '0:a:0' };

/**
 * The outputs of a multi-variant encode: video tracks first in variant order, then audio tracks
 * in variant order (the server maps variant k to the k-th video and k-th audio track of the feed).
 * All videos get keyframes forced on the same input times, so renditions stay keyframe-aligned.
 */
export function variantOutputArgs(
  variants: readonly PublishVariant[],
  input: { hasVideo: boolean; hasAudio: boolean },
  keyframeSeconds = 2,
  maps: VariantInputs = PIPE_INPUTS,
): string[] {
  const args: string[] = [];
  let vi = 0;
  for (const v of variants) {
    if (v.video === undefined || !input.hasVideo) continue;
    args.push('-map', maps.video, `-c:v:${vi}`, v.video.encoder, ...specify(v.video.options, 'v', vi));
    vi++;
  }
  let ai = 0;
  for (const v of variants) {
    if (v.audio === undefined || !input.hasAudio) continue;
    args.push('-map', maps.audio, `-c:a:${ai}`, v.audio.encoder, ...specify(v.audio.options, 'a', ai));
    ai++;
  }
  if (vi > 0) args.push('-force_key_frames', `expr:gte(t,n_forced*${keyframeSeconds})`);
  return args;
}

/** What `feedcast publish` sends when the feed declares no encodings: H.264 + AAC for every passthrough output. */
export const PLAIN_PUBLISH_VARIANT: PublishVariant = {
  video: {
    encoder: 'libx264',
    options: ['-preset:v', 'veryfast', '-tune:v', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '50', '-sc_threshold:v', '0'],
  },
  audio: { encoder: 'aac', options: [] },
};

export interface PublishOptions {
  /** ffmpeg input options and inputs, `-i` included (e.g. `-re -f lavfi -i testsrc2`). */
  inputArgs: readonly string[];
  /** Input streams to encode; default: video from input 0, audio (if any) from the last input. */
  maps?: VariantInputs;
  keyframeSeconds?: number;
}

/** The default maps for `inputs` inputs: video from the first, optional audio from the last. */
export function defaultPublishMaps(inputs: number): VariantInputs {
  return { video: '0:v:0', audio: `${Math.max(0, inputs - 1)}:a:0?` };
}

/**
 * `feedcast publish`: encodes every variant from the input into one MPEG-TS written to `target`
 * (`pipe:1` for the CLI, which does the POST itself; an http URL makes ffmpeg POST it).
 */
export function publishArgs(variants: readonly PublishVariant[], target: string, options: PublishOptions): string[] {
  const inputs = options.inputArgs.filter((a) => a === '-i').length;
  const list = variants.length > 0 ? variants : [PLAIN_PUBLISH_VARIANT];
  return [
    ...COMMON,
    '-nostdin',
    ...options.inputArgs,
    ...variantOutputArgs(
      list,
      { hasVideo: true, hasAudio: true },
      options.keyframeSeconds ?? 2,
      options.maps ?? defaultPublishMaps(inputs),
    ),
    '-max_muxing_queue_size',
    '1024',
    '-f',
    'mpegts',
    '-muxdelay',
    '0',
    '-muxpreload',
    '0',
    '-flush_packets',
    '1',
    ...(/^https?:/.test(target) ? ['-method', 'POST'] : []),
    target,
  ];
}

/** The server-side ladder: the feed as MPEG-TS on stdin, every variant as one multi-track MPEG-TS on stdout. */
export function ladderArgs(variants: readonly PublishVariant[], input: { hasVideo: boolean; hasAudio: boolean }): string[] {
  return [
    ...COMMON,
    ...LIVE_INPUT,
    '-f',
    'mpegts',
    '-i',
    'pipe:0',
    ...variantOutputArgs(variants, input),
    '-max_muxing_queue_size',
    '1024',
    '-f',
    'mpegts',
    '-muxdelay',
    '0',
    '-muxpreload',
    '0',
    '-flush_packets',
    '1',
    'pipe:1',
  ];
}

/**
 * Rewrites per-kind options (`-b:v`, `-s`) to address output stream `index` of that kind
 * (`-b:v:1`, `-s:v:1`), so several encodes of one kind can share a command line.
 */
export function specify(options: readonly string[], kind: 'v' | 'a', index: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < options.length; i++) {
    const opt = options[i] ?? '';
    const isFlag = opt.startsWith('-') && i + 1 < options.length;
    if (!isFlag) {
      out.push(opt);
      continue;
    }
    const bare = opt.endsWith(`:${kind}`) ? opt.slice(0, -2) : opt;
    out.push(`${bare}:${kind}:${index}`, options[i + 1] ?? '');
    i++;
  }
  return out;
}

/**
 * A file-backed `<Stream>` (ffserver's `File`, ref §2.5) for one viewer: the file from its start at its own pace
 * (`-re`), looping when asked, its streams copied as they are into the stream's container on stdout.
 */
export function fileStreamArgs(
  file: string,
  output: { muxer: string; loop: boolean; inputFormat: string | undefined; noAudio: boolean; noVideo: boolean },
): string[] {
  const muxerOptions =
    output.muxer === 'mpegts'
      ? ['-muxdelay', '0', '-muxpreload', '0']
      : output.muxer === 'flv'
        ? ['-flvflags', 'no_duration_filesize']
        : output.muxer === 'mp4'
          ? ['-movflags', 'frag_keyframe+empty_moov+default_base_moof']
          : output.muxer === 'webm' || output.muxer === 'matroska'
            ? ['-live', '1']
            : [];
  return [
    ...COMMON,
    '-nostdin',
    '-re',
    ...(output.loop ? ['-stream_loop', '-1'] : []),
    ...(output.inputFormat !== undefined ? ['-f', output.inputFormat] : []),
    '-i',
    file,
    '-map',
    '0:v?',
    '-map',
    '0:a?',
    ...(output.noVideo ? ['-vn'] : []),
    ...(output.noAudio ? ['-an'] : []),
    '-c',
    'copy',
    ...muxerOptions,
    '-flush_packets',
    '1',
    '-f',
    output.muxer,
    'pipe:1',
  ];
}

/** The ffmpeg program: FFmpegPath from the config, then $FEEDCAST_FFMPEG, then `ffmpeg` on PATH. */
export type FfmpegLocation = { ok: true; path: string } | { ok: false; reason: string };

export function resolveFfmpeg(configPath: string | undefined, env: NodeJS.ProcessEnv = process.env): FfmpegLocation {
  const candidates: [string, string][] = [];
  if (configPath !== undefined && configPath !== '') candidates.push([configPath, 'FFmpegPath']);
  const fromEnv = env['FEEDCAST_FFMPEG'];
  if (fromEnv !== undefined && fromEnv !== '') candidates.push([fromEnv, 'FEEDCAST_FFMPEG']);
  for (const [path, origin] of candidates) {
    if (path.includes('/') || isAbsolute(path)) {
      return executable(path)
        ? { ok: true, path }
        : { ok: false, reason: `ffmpeg not found: ${origin} names ${path}, which is not an executable file` };
    }
    const found = searchPath(path, env);
    return found !== undefined
      ? { ok: true, path: found }
      : { ok: false, reason: `ffmpeg not found: ${origin} names "${path}", which is not on PATH` };
  }
  const found = searchPath('ffmpeg', env);
  return found !== undefined
    ? { ok: true, path: found }
    : {
        ok: false,
        reason: 'ffmpeg not found on PATH; install it (apt-get install ffmpeg) or set FFmpegPath in the config',
      };
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function searchPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}
