// Real clients for integration tests: ffmpeg publishers from lavfi sources and ffprobe as the
// oracle of what a viewer would decode.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FFMPEG = process.env['FEEDCAST_FFMPEG'] ?? 'ffmpeg';
export const FFPROBE = process.env['FEEDCAST_FFPROBE'] ?? 'ffprobe';

export function haveFfmpeg(): boolean {
  const a = spawnSync(FFMPEG, ['-version'], { stdio: 'ignore' });
  const b = spawnSync(FFPROBE, ['-version'], { stdio: 'ignore' });
  return a.status === 0 && b.status === 0;
}

/** In CI the real clients are required; elsewhere tests skip with a message when they are missing. */
export function skipWithoutFfmpeg(): string | false {
  if (haveFfmpeg()) return false;
  if (process.env['CI'] !== undefined) throw new Error('ffmpeg/ffprobe are required in CI (apt-get install -y ffmpeg)');
  return 'ffmpeg/ffprobe not installed (apt-get install -y ffmpeg)';
}

export type SourceCodecs = 'h264-aac' | 'mpeg1-mp2' | 'h264-only' | 'aac-only' | 'mp3-only';

export function lavfiArgs(
  codecs: SourceCodecs,
  opts: { size?: string; rate?: number; bitrateK?: number; gop?: number } = {},
): string[] {
  const size = opts.size ?? '320x240';
  const rate = opts.rate ?? 25;
  const gop = String(opts.gop ?? rate);
  const vb = `${opts.bitrateK ?? 400}k`;
  const video = ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}`];
  const audio = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];
  switch (codecs) {
    case 'h264-aac':
      return [
        ...video,
        ...audio,
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-tune',
        'zerolatency',
        '-g',
        gop,
        '-b:v',
        vb,
        '-c:a',
        'aac',
        '-b:a',
        '64k',
      ];
    case 'h264-only':
      return [...video, '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', gop, '-b:v', vb];
    case 'aac-only':
      return [...audio, '-c:a', 'aac', '-b:a', '64k'];
    case 'mp3-only':
      return [...audio, '-c:a', 'libmp3lame', '-b:a', '64k', '-ar', '44100'];
    case 'mpeg1-mp2':
      return [...video, ...audio, '-c:v', 'mpeg1video', '-g', gop, '-b:v', vb, '-c:a', 'mp2', '-b:a', '128k', '-ar', '44100'];
  }
}

export interface Publisher {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts `ffmpeg -re <lavfi sources> ... -f FORMAT URL`, in real time, for `seconds`. */
export function publish(
  url: string,
  options: {
    codecs?: SourceCodecs;
    format?: 'mpegts' | 'flv';
    seconds?: number;
    extra?: string[];
    size?: string;
    bitrateK?: number;
  } = {},
): Publisher {
  const args = [
    '-hide_banner',
    '-loglevel',
    'error',
    '-nostdin',
    '-re',
    ...lavfiArgs(options.codecs ?? 'h264-aac', {
      ...(options.size !== undefined ? { size: options.size } : {}),
      ...(options.bitrateK !== undefined ? { bitrateK: options.bitrateK } : {}),
    }),
    '-t',
    String(options.seconds ?? 30),
    ...(options.extra ?? []),
    '-f',
    options.format ?? 'mpegts',
    url,
  ];
  const child = spawn(FFMPEG, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

export interface ProbePacket {
  codec_type: 'video' | 'audio';
  stream_index: number;
  pts_time?: string;
  dts_time?: string;
  flags: string;
  size: string;
}
export interface ProbeStream {
  index: number;
  codec_name: string;
  codec_type: 'video' | 'audio';
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
}
export interface ProbeResult {
  streams: ProbeStream[];
  packets: ProbePacket[];
}

/** Runs a command and collects stdout, killing it after `timeoutMs`. */
export function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
  cwd?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(cwd !== undefined ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** ffprobe's view of `seconds` of a live URL: streams and every packet read. */
export async function probePackets(url: string, seconds: number, timeoutMs = 30_000): Promise<ProbeResult> {
  const { code, stdout, stderr } = await run(
    FFPROBE,
    ['-v', 'error', '-read_intervals', `%+${seconds}`, '-show_streams', '-show_packets', '-of', 'json', url],
    timeoutMs,
  );
  if (code !== 0) throw new Error(`ffprobe ${url} failed (${String(code)}): ${stderr}`);
  const parsed = JSON.parse(stdout) as Partial<ProbeResult>;
  return { streams: parsed.streams ?? [], packets: parsed.packets ?? [] };
}

/** The first video stream's packets as ffprobe reads them (seconds), and the container's duration. */
export interface VideoPackets {
  pts: number[];
  dts: number[];
  durations: number[];
  keys: boolean[];
  /** format=duration (0 when ffprobe gives none). */
  duration: number;
}

/** ffprobe's packets of the first video stream of `url`; a packet without a duration gets `missingDurationS`. */
export async function probeVideoPackets(url: string, missingDurationS = NaN): Promise<VideoPackets> {
  const { code, stdout, stderr } = await run(
    FFPROBE,
    [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-show_entries',
      'packet=pts_time,dts_time,duration_time,flags:format=duration',
      '-of',
      'json',
      url,
    ],
    60_000,
  );
  if (code !== 0) throw new Error(`ffprobe ${url} failed (${String(code)}): ${stderr}`);
  const probe = JSON.parse(stdout) as {
    packets?: { pts_time: string; dts_time: string; duration_time?: string; flags: string }[];
    format?: { duration?: string };
  };
  const packets = probe.packets ?? [];
  return {
    pts: packets.map((p) => Number(p.pts_time)),
    dts: packets.map((p) => Number(p.dts_time)),
    durations: packets.map((p) => (p.duration_time === undefined ? missingDurationS : Number(p.duration_time))),
    keys: packets.map((p) => p.flags.startsWith('K')),
    duration: Number(probe.format?.duration ?? 0),
  };
}

/** Decodes `seconds` of a URL with ffmpeg and returns the number of decoded video frames and any decode errors. */
export async function decodeFrames(
  url: string,
  seconds: number,
  timeoutMs = 30_000,
): Promise<{ videoFrames: number; audioFrames: number; errors: string }> {
  const { stdout, stderr } = await run(
    FFMPEG,
    ['-hide_banner', '-nostdin', '-v', 'error', '-t', String(seconds), '-i', url, '-f', 'framecrc', '-'],
    timeoutMs,
  );
  let videoFrames = 0;
  let audioFrames = 0;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const stream = line.split(',')[0]?.trim();
    if (stream === '0') videoFrames++;
    else if (stream === '1') audioFrames++;
  }
  return { videoFrames, audioFrames, errors: stderr.trim() };
}

/** Whether VLC's command-line player is installed (apt-get install -y vlc-bin vlc-plugin-base). */
export function haveVlc(): boolean {
  // VLC refuses to run as root (exit 1, even for --version): ask it as `nobody`, as vlcDecodedFrames runs it.
  const asRoot = process.getuid?.() === 0;
  const probe = asRoot
    ? spawnSync('runuser', ['-u', 'nobody', '--', 'env', 'HOME=/tmp', 'cvlc', '--version'], { stdio: 'ignore' })
    : spawnSync('cvlc', ['--version'], { stdio: 'ignore' });
  return probe.status === 0;
}

/**
 * Plays `seconds` of `url` in VLC, which decodes it and re-encodes it to MPEG-1/MP2 in an MPEG-TS file, and
 * returns how many video and audio frames ffprobe counts in that file: frames VLC decoded. VLC refuses to run as
 * root, so as root it runs as `nobody`.
 */
export async function vlcDecodedFrames(
  url: string,
  seconds: number,
  timeoutMs = 60_000,
): Promise<{ videoFrames: number; audioFrames: number; log: string }> {
  const out = join(tmpdir(), `feedcast-vlc-${process.pid}-${Date.now()}.ts`);
  const vlcArgs = [
    '-I',
    'dummy',
    '--no-video-title-show',
    `--run-time=${seconds}`,
    '--play-and-exit',
    '--sout',
    `#transcode{vcodec=mp1v,vb=400,acodec=mpga,ab=64}:std{access=file,mux=ts,dst=${out}}`,
    url,
  ];
  const asRoot = process.getuid?.() === 0;
  const { stderr } = await run(
    asRoot ? 'runuser' : 'cvlc',
    asRoot ? ['-u', 'nobody', '--', 'env', 'HOME=/tmp', 'cvlc', ...vlcArgs] : vlcArgs,
    timeoutMs,
  );
  try {
    const count = await run(
      FFPROBE,
      ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,nb_read_frames', '-of', 'csv=p=0', out],
      timeoutMs,
    );
    let videoFrames = 0;
    let audioFrames = 0;
    for (const line of count.stdout.split('\n')) {
      const [type, frames] = line.split(',');
      if (type === 'video') videoFrames += Number(frames) || 0;
      if (type === 'audio') audioFrames += Number(frames) || 0;
    }
    return { videoFrames, audioFrames, log: stderr };
  } finally {
    await rm(out, { force: true });
  }
}

/**
 * Decodes the first picture of an input (ffmpeg input options and `-i URL`) and reads the capture clock burned into
 * it by `clockBarcodeFilter()` (test/helpers/browser.ts: 24 boxes of 20x20 px, bit 0 first, 24 px apart from x=10,
 * y=10, on a 640-wide picture): the capture time in ms since the epoch, the one nearest before `nearMs`.
 */
export function firstPictureClock(input: readonly string[], nearMs: number, timeoutMs = 30_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const width = 640;
    const height = 360;
    const child = spawn(
      FFMPEG,
      [
        '-v',
        'error',
        '-nostdin',
        ...input,
        '-frames:v',
        '1',
        '-vf',
        `scale=${width}:${height}`,
        '-pix_fmt',
        'gray',
        '-f',
        'rawvideo',
        'pipe:1',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const chunks: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.on('close', () => {
      clearTimeout(timer);
      const picture = Buffer.concat(chunks);
      if (picture.length < width * height) {
        reject(new Error(`no picture from ${input.join(' ')}: ${err}`));
        return;
      }
      let low = 0;
      for (let i = 0; i < 24; i++) if ((picture[20 * width + 20 + i * 24] ?? 0) > 128) low += 2 ** i;
      const span = 2 ** 24;
      resolve(nearMs - ((((nearMs - low) % span) + span) % span));
    });
  });
}
