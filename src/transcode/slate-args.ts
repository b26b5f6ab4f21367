// The ffmpeg command that encodes a feed's offline slate once: a picture (or a clip's first seconds) and silence,
// at the feed's size and frame rate, in the feed's codecs, as MPEG-TS on stdout. Pure: no I/O here.

import type { Track } from '../media/track.js';

/** Encoders for the codecs a slate can be made in (the feed's own); others get no slate (video) or no sound. */
const VIDEO_ENCODERS: Readonly<Record<string, string[]>> = {
  h264: ['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'stillimage', '-profile:v', 'high', '-pix_fmt', 'yuv420p'],
  h265: ['-c:v', 'libx265', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-x265-params', 'log-level=error'],
  mpeg1video: ['-c:v', 'mpeg1video', '-q:v', '4'],
  mpeg2video: ['-c:v', 'mpeg2video', '-q:v', '4'],
};
const AUDIO_ENCODERS: Readonly<Record<string, string[]>> = {
  aac: ['-c:a', 'aac', '-b:a', '64k'],
  mp3: ['-c:a', 'libmp3lame', '-b:a', '64k'],
  mp2: ['-c:a', 'mp2', '-b:a', '128k'],
  opus: ['-c:a', 'libopus', '-b:a', '48k'],
  ac3: ['-c:a', 'ac3', '-b:a', '96k'],
};

/** Picture files are looped as a still; anything else is read as a clip. */
const PICTURE = /\.(png|jpe?g|bmp|gif|webp|tiff?)$/i;

export interface SlatePlan {
  readonly video: Track;
  /** The feed's audio track, when the slate can carry its codec. */
  readonly audio: Track | undefined;
  readonly framesPerSecond: number;
  readonly seconds: number;
}

/** What a slate for these tracks would be, or why there can be none. */
export function planSlate(tracks: readonly Track[], framesPerSecond: number, seconds = 2): SlatePlan | string {
  const video = tracks.find((t) => t.kind === 'video');
  if (video === undefined) return 'the feed has no video track';
  if (VIDEO_ENCODERS[video.codec] === undefined) return `no slate encoder for ${video.codec} video`;
  if (video.width === undefined || video.height === undefined) return 'the video size is not known yet';
  const audio = tracks.find((t) => t.kind === 'audio');
  const fps = Number.isFinite(framesPerSecond) && framesPerSecond >= 1 && framesPerSecond <= 120 ? framesPerSecond : 25;
  return {
    video,
    audio: audio !== undefined && AUDIO_ENCODERS[audio.codec] !== undefined ? audio : undefined,
    framesPerSecond: Math.round(fps * 1000) / 1000,
    seconds,
  };
}

/** The same plan gives the same slate: a key to tell when the feed's parameters changed. */
export function slateKey(source: string, plan: SlatePlan): string {
  const a = plan.audio;
  return [
    source,
    plan.video.codec,
    plan.video.width,
    plan.video.height,
    plan.framesPerSecond,
    a?.codec,
    a?.sampleRate,
    a?.channels,
  ].join('/');
}

/** ffmpeg arguments: `source` (a picture or clip) and silence, one GOP of `plan.seconds`, MPEG-TS on stdout. */
export function slateArgs(source: string, plan: SlatePlan): string[] {
  const { video, audio, framesPerSecond: fps, seconds } = plan;
  const width = video.width ?? 1280;
  const height = video.height ?? 720;
  const input = PICTURE.test(source)
    ? ['-loop', '1', '-framerate', String(fps), '-i', source]
    : ['-stream_loop', '-1', '-i', source];
  const silence =
    audio !== undefined
      ? ['-f', 'lavfi', '-i', `anullsrc=r=${audio.sampleRate ?? 48_000}:cl=${(audio.channels ?? 2) === 1 ? 'mono' : 'stereo'}`]
      : [];
  const frames = Math.max(2, Math.round(fps * seconds));
  return [
    '-hide_banner',
    '-loglevel',
    'error',
    '-nostdin',
    ...input,
    ...silence,
    '-map',
    '0:v:0',
    ...(audio !== undefined ? ['-map', '1:a:0'] : []),
    '-vf',
    `scale=${width}:${height}:force_original_aspect_ratio=decrease,pad=${width}:${height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=${fps}`,
    '-frames:v',
    String(frames),
    ...(VIDEO_ENCODERS[video.codec] ?? []),
    // One GOP: the loop starts on its keyframe each time round; no B-frames, so no reordering across loops.
    '-g',
    String(frames),
    '-bf',
    '0',
    ...(audio !== undefined
      ? [
          ...(AUDIO_ENCODERS[audio.codec] ?? []),
          '-ar',
          String(audio.sampleRate ?? 48_000),
          '-ac',
          String(audio.channels ?? 2),
          '-t',
          String(seconds),
        ]
      : []),
    '-f',
    'mpegts',
    'pipe:1',
  ];
}
