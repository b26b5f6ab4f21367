// ffmpeg preset files for AVPresetVideo/AVPresetAudio (ffserver ref §2.6): found as ffmpeg's -vpre/-apre found them
// (cmdutils.c get_preset_file: NAME.ffpreset, then CODEC-NAME.ffpreset, in $FFMPEG_DATADIR, $HOME/.ffmpeg and the
// data directory), read as `key=value` lines with `#` comments, and turned into encoder options.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** ffserver.conf codec names that are not ffmpeg encoder names today, and the encoder to use. */
const ENCODER_ALIASES: Readonly<Record<string, string>> = {
  h264: 'libx264',
  x264: 'libx264',
  avc: 'libx264',
  h265: 'libx265',
  hevc: 'libx265',
  vp8: 'libvpx',
  vp9: 'libvpx-vp9',
  theora: 'libtheora',
  mp3: 'libmp3lame',
  vorbis: 'libvorbis',
  opus: 'libopus',
  // ffserver's default codecs by codec name (ref §2.6): the encoder that writes each.
  msmpeg4v3: 'msmpeg4',
  flv1: 'flv',
};

/** The ffmpeg encoder a codec name written in a config selects (`h264` → `libx264`). */
export function encoderName(written: string): string {
  const lower = written.toLowerCase();
  return Object.hasOwn(ENCODER_ALIASES, lower) ? (ENCODER_ALIASES[lower] ?? lower) : lower;
}

/** Where ffmpeg looks for NAME.ffpreset, in its order: $FFMPEG_DATADIR, $HOME/.ffmpeg, the data directory. */
export function presetSearchDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  const data = env['FFMPEG_DATADIR'];
  if (data !== undefined && data !== '') dirs.push(data);
  const home = env['HOME'];
  if (home !== undefined && home !== '') dirs.push(join(home, '.ffmpeg'));
  // ffmpeg's compiled-in FFMPEG_DATADIR: /usr/share/ffmpeg for Debian's package, /usr/local/share/ffmpeg from source.
  dirs.push('/usr/local/share/ffmpeg', '/usr/share/ffmpeg');
  return dirs;
}

export type PresetMedia = 'audio' | 'video';

export interface Preset {
  /** The file read, or `built-in` for the x264 names below. */
  readonly source: string;
  /** `vcodec=`/`acodec=` in the file: the encoder it switches to. */
  readonly codec: string | undefined;
  /** Encoder options in file order (`codec:opt` keys apply to that encoder only). */
  readonly options: readonly (readonly [key: string, value: string])[];
}

export type PresetResult = { ok: true; preset: Preset } | { ok: false; message: string };

const X264_PRESETS = new Set('ultrafast superfast veryfast faster fast medium slow slower veryslow placebo'.split(' '));
const X264_PROFILES = new Set('baseline main high high10 high422 high444'.split(' '));

/**
 * The libx264-NAME.ffpreset files that ffmpeg shipped until 2011 (ffserver's sample config names `default` and
 * `baseline`), now x264's own presets and profiles; `default` is every encoder's defaults. The keys carry the
 * encoder, so they reach libx264 only.
 */
function builtinPreset(name: string, encoder: string | undefined): Preset | undefined {
  if (name === 'default') return { source: 'built-in', codec: undefined, options: [] };
  if (encoder !== undefined && encoder !== 'libx264') return undefined;
  if (X264_PRESETS.has(name)) return { source: 'built-in', codec: undefined, options: [['libx264:preset', name]] };
  if (X264_PROFILES.has(name)) return { source: 'built-in', codec: undefined, options: [['libx264:profile', name]] };
  return undefined;
}

/** ffmpeg command-line spellings in preset files that are not encoder option names. */
const OPTION_ALIASES: Readonly<Record<string, string>> = { vprofile: 'profile', aprofile: 'profile' };

/** Reads a preset file's text: `key=value` lines; a line starting with `#` is a comment; blank lines are skipped. */
export function parsePresetText(text: string, media: PresetMedia, file: string): PresetResult {
  let codec: string | undefined;
  const aPreset = `${media === 'audio' ? 'an' : 'a'} ${media} preset`;
  const options: [string, string][] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq).trim() : '';
    const value = eq > 0 ? line.slice(eq + 1).trim() : '';
    if (key === '' || value === '' || !/^[A-Za-z0-9_:-]+$/.test(key)) {
      return { ok: false, message: `${file}:${i + 1}: "${line}" is not a key=value line` };
    }
    if (key === 'scodec' || key === 'dcodec')
      return { ok: false, message: `${file}:${i + 1}: ${key} has no place in ${aPreset}` };
    if (key === 'vcodec' || key === 'acodec') {
      if ((key === 'vcodec') !== (media === 'video')) {
        return {
          ok: false,
          message: `${file}:${i + 1}: ${key} in ${aPreset}; it belongs in AVPreset${key === 'vcodec' ? 'Video' : 'Audio'}`,
        };
      }
      if (!/^[A-Za-z0-9_.-]+$/.test(value))
        return { ok: false, message: `${file}:${i + 1}: ${key} "${value}" is not an encoder name` };
      codec = value;
      continue;
    }
    options.push([Object.hasOwn(OPTION_ALIASES, key) ? (OPTION_ALIASES[key] ?? key) : key, value]);
  }
  return { ok: true, preset: { source: file, codec, options } };
}

/**
 * Finds and reads preset `name` for `codec` (the encoder set so far, if any), as ffmpeg's -vpre did: in each
 * directory NAME.ffpreset, then CODEC-NAME.ffpreset. Falls back to the built-in x264 names.
 */
export function loadPreset(
  name: string,
  media: PresetMedia,
  codec: string | undefined,
  dirs: readonly string[],
  read: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): PresetResult {
  const encoder = codec !== undefined ? encoderName(codec) : undefined;
  if (!/^[A-Za-z0-9_.+-]+$/.test(name) || name.startsWith('.')) {
    return { ok: false, message: `preset "${name}" is not a preset name (ffmpeg reads NAME.ffpreset; a path is not allowed)` };
  }
  const tried: string[] = [];
  for (const dir of dirs) {
    const files = [join(dir, `${name}.ffpreset`)];
    if (encoder !== undefined) files.push(join(dir, `${encoder}-${name}.ffpreset`));
    for (const file of files) {
      tried.push(file);
      let text: string;
      try {
        text = read(file);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        return { ok: false, message: `preset file ${file} cannot be read (${code ?? String(err)})` };
      }
      return parsePresetText(text, media, file);
    }
  }
  const builtin = builtinPreset(name, encoder);
  if (builtin !== undefined) return { ok: true, preset: builtin };
  const flag = media === 'video' ? 'VideoCodec' : 'AudioCodec';
  const hint =
    encoder === undefined ? `; if it is named after its codec (CODEC-${name}.ffpreset), put ${flag} before this line` : '';
  return {
    ok: false,
    message: `preset ${name} not found: none of ${tried.join(', ')} exists${hint}`,
  };
}
