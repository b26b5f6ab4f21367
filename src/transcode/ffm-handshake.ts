// The answer to an ffmpeg <= 3.4 publisher's first connection, `GET /feed1.ffm` (ffserver-reference.md
// §3.2): an FFM2 header listing the streams it must encode, each with its recommended encoder
// configuration (S2VI/S2AU, codec-private options in CPRV) from the <Stream> encoder directives.
//
// Unlike ffserver, which listed every distinct encoding of the feed's streams (flv1, msmpeg4v3,
// wmav2 ...), Feedcast lists the variants it carries (transcode/encodings.ts, the same ones
// `feedcast publish` encodes); the other streams are encoded by the server from the feed. A feed
// with no such variant asks for H.264 + AAC at the source's size and rate.

import type { ServerConfig } from '../config/config.js';
import { FFM_CODEC_IDS, type FfmHeader, type FfmStreamHeader } from '../formats/ffm/ffm-header.js';
import type { AudioSpec, VideoSpec } from './ffmpeg-args.js';
import { variantsOf } from './encodings.js';

/** AVCodecContext options (lavc 57) that go in S2VI/S2AU; any other option is codec-private (CPRV). */
const GENERIC_OPTIONS = new Set([
  'b',
  'ab',
  'bt',
  'maxrate',
  'minrate',
  'bufsize',
  'g',
  'keyint_min',
  'bf',
  'flags',
  'flags2',
  'mbd',
  'qmin',
  'qmax',
  'qdiff',
  'lumi_mask',
  'dark_mask',
  'dct',
  'idct',
  'debug',
  'strict',
  'global_quality',
  'sc_threshold',
  'refs',
  'threads',
  'profile',
  'level',
  'ar',
  'ac',
  'video_size',
  'time_base',
  'pixel_format',
]);

/** CLI options whose AVOption has another name. */
const RENAMED: Readonly<Record<string, string>> = { s: 'video_size', pix_fmt: 'pixel_format' };
/**
 * CLI options with no AVOption counterpart: `-tag:v` sets codec_tag through the CLI, `-r` is the
 * time base here, filters (`-filter:v fps=N`) run in ffmpeg, not in the encoder.
 */
const CLI_ONLY = new Set(['tag', 'r', 'filter', 'vf', 'af', 'fps_mode', 'vsync']);
/** Rate options whose values the CLI writes with an SI suffix (`400k`). */
const RATE_OPTIONS = new Set(['b', 'ab', 'bt', 'maxrate', 'minrate', 'bufsize']);

function plainNumber(value: string): string {
  const m = /^(\d+(?:\.\d+)?)([kKM]?)$/.exec(value);
  if (m === null) return value;
  const scale = m[2] === 'M' ? 1_000_000 : m[2] === '' ? 1 : 1000;
  return String(Math.round(Number(m[1]) * scale));
}

/** `1/25`, or `1000/29970` for a fractional rate. */
function timeBaseOf(frameRate: number): string {
  return Number.isInteger(frameRate) ? `1/${frameRate}` : `1000/${Math.round(frameRate * 1000)}`;
}

/** Splits ffmpeg CLI encoder options (`-b:v 400k -preset:v veryfast`) into generic and private AVOptions. */
export function avOptionsOfArgs(args: readonly string[]): { generic: Array<[string, string]>; priv: Array<[string, string]> } {
  const generic: Array<[string, string]> = [];
  const priv: Array<[string, string]> = [];
  for (let i = 0; i + 1 < args.length; i += 2) {
    const flag = args[i] as string;
    const value = args[i + 1] as string;
    if (!flag.startsWith('-')) continue;
    const bare = flag.slice(1).replace(/:[va]$/, '');
    if (CLI_ONLY.has(bare)) continue;
    const name = RENAMED[bare] ?? bare;
    const v = RATE_OPTIONS.has(name) ? plainNumber(value) : value;
    (GENERIC_OPTIONS.has(name) ? generic : priv).push([name, v]);
  }
  return { generic, priv };
}

function withoutKey(options: Array<[string, string]>, key: string): Array<[string, string]> {
  return options.filter(([k]) => k !== key);
}

function videoStream(spec: VideoSpec, codecId: number): FfmStreamHeader {
  const { generic, priv } = avOptionsOfArgs(spec.options);
  // ffserver's order: size, time base, then the rest (ref Appendix A.3).
  const options: Array<[string, string]> = [
    ['video_size', `${spec.width}x${spec.height}`],
    ['time_base', timeBaseOf(spec.frameRate)],
    ...withoutKey(withoutKey(generic, 'video_size'), 'time_base'),
  ];
  const bitRate = spec.bitRateKbps !== undefined ? spec.bitRateKbps * 1000 : 0;
  return { codecId, kind: 'video', bitRate, flags: 0, options, ...(priv.length > 0 ? { privateOptions: priv } : {}) };
}

function audioStream(spec: AudioSpec, codecId: number): FfmStreamHeader {
  const { generic, priv } = avOptionsOfArgs(spec.options);
  const bitRate = spec.bitRateKbps !== undefined ? spec.bitRateKbps * 1000 : 0;
  // S2AU may not be empty (the ffm demuxer refuses an empty one).
  const options = generic.length > 0 ? generic : [['b', String(bitRate || 128_000)] as [string, string]];
  return { codecId, kind: 'audio', bitRate, flags: 0, options, ...(priv.length > 0 ? { privateOptions: priv } : {}) };
}

function ffmCodecId(codec: string | undefined): number | undefined {
  return codec !== undefined && Object.hasOwn(FFM_CODEC_IDS, codec)
    ? FFM_CODEC_IDS[codec as keyof typeof FFM_CODEC_IDS]
    : undefined;
}

/** What a feed with no variant asks for: H.264 (libx264, live settings) + AAC, at the source's size and rate. */
export const DEFAULT_FFM_STREAMS: readonly FfmStreamHeader[] = [
  {
    codecId: FFM_CODEC_IDS.aac,
    kind: 'audio',
    bitRate: 128_000,
    flags: 0,
    options: [
      ['b', '128000'],
      ['strict', '-2'],
    ],
  },
  {
    codecId: FFM_CODEC_IDS.h264,
    kind: 'video',
    bitRate: 1_000_000,
    flags: 0,
    options: [
      ['b', '1000000'],
      ['g', '50'],
      ['pixel_format', 'yuv420p'],
    ],
    privateOptions: [
      ['preset', 'veryfast'],
      ['tune', 'zerolatency'],
    ],
  },
];

/**
 * The streams an old ffmpeg must publish to feed `feedKey`: per variant, audio then video (as
 * ffserver ordered a stream's pair). A variant in a codec FFM has no id for here (H.265, Opus) is
 * left out, and its streams are encoded by the server.
 */
export function ffmHandshakeHeader(config: ServerConfig, feedKey: string): FfmHeader {
  const streams: FfmStreamHeader[] = [];
  for (const variant of variantsOf(config, feedKey)) {
    const { video, audio } = variant.profile;
    const videoId = ffmCodecId(video?.codec);
    const audioId = ffmCodecId(audio?.codec);
    if ((video !== undefined && videoId === undefined) || (audio !== undefined && audioId === undefined)) continue;
    if (audio !== undefined && audioId !== undefined) streams.push(audioStream(audio, audioId));
    if (video !== undefined && videoId !== undefined) streams.push(videoStream(video, videoId));
  }
  return { writeIndex: 0, streams: streams.length > 0 ? streams : [...DEFAULT_FFM_STREAMS] };
}
