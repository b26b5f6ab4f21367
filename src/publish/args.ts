// The command line of `feedcast publish [OPTIONS] INPUT... URL` (docs/transcoding.md, "feedcast
// publish"): our options are the `--` ones, everything else before the URL is ffmpeg input
// options and inputs. Pure: no I/O, so every rule is unit-tested.

import { isFileSource, type VariantInputs } from '../transcode/ffmpeg-args.js';

export const PUBLISH_USAGE = `Usage: feedcast publish [OPTIONS] INPUT... http://HOST:8090/FEED.ffm[?secret=S]

Asks the server which encodings the feed's streams need (GET FEED.ffm?config), runs ffmpeg to
encode all of them from INPUT, and pushes them as one multi-track MPEG-TS (a long POST). When the
server goes away it reconnects with backoff, keeping ffmpeg running.

INPUT is either one file, device or URL (camera.mp4, /dev/video0, rtsp://cam/1), or ffmpeg input
options with their -i (e.g. -f lavfi -i testsrc2=size=1280x720:rate=25 -f lavfi -i sine).

Options:
  --re / --no-re        read the input in real time (default: on for files and lavfi, off otherwise)
  --loop                start file inputs over at their end
  --video-map SPEC      the input stream every video variant encodes (default 0:v:0)
  --audio-map SPEC      the input stream every audio variant encodes (default LAST_INPUT:a:0?)
  --no-handshake        do not ask the server; publish H.264 + AAC as is
  --ffmpeg PATH         the ffmpeg program (default: $FEEDCAST_FFMPEG, then ffmpeg on PATH)
  --max-backoff SEC     longest wait between reconnection attempts (default 30)
  --retries N           give up after N failed attempts in a row (default: never)
  --dry-run             print the ffmpeg command line and exit
`;

export interface PublishCommand {
  /** ffmpeg input options and inputs, `-i` included, with -re / -stream_loop applied. */
  inputArgs: string[];
  /** The feed URL (publish secret included), http: or https:. */
  url: URL;
  handshake: boolean;
  maps: Partial<VariantInputs>;
  ffmpeg: string | undefined;
  maxBackoffMs: number;
  /** Consecutive failed attempts before giving up; undefined: never. */
  retries: number | undefined;
  dryRun: boolean;
}

export type ParsedPublish = { ok: true; command: PublishCommand } | { ok: false; message: string };

const fail = (message: string): ParsedPublish => ({ ok: false, message });

/** Inserts `flag` (with its value) before every `-i` of `args` that has not got it already. */
function beforeEachInput(args: readonly string[], flag: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '-i') {
      // Input options of this input: from the previous input's name (or the start) to here.
      let from = out.length;
      while (from > 0 && out[from - 1] !== undefined && !isInputName(out, from - 1)) from--;
      if (!out.slice(from).includes(flag[0] ?? '')) out.push(...flag);
    }
    out.push(a);
  }
  return out;
}

/** Whether out[i] is the argument of a `-i` (an input name). */
function isInputName(out: readonly string[], i: number): boolean {
  return i > 0 && out[i - 1] === '-i';
}

/** Whether the input wants -re by default: files and lavfi generators produce faster than real time. */
function realtimeByDefault(args: readonly string[]): boolean {
  const names: string[] = [];
  let lavfi = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-i' && args[i + 1] !== undefined) names.push(args[i + 1] ?? '');
    if (args[i] === '-f' && args[i + 1] === 'lavfi') lavfi = true;
  }
  return lavfi || names.some((n) => isFileSource(n) && !n.startsWith('/dev/'));
}

export function parsePublishArgs(argv: readonly string[]): ParsedPublish {
  let re: boolean | undefined;
  let loop = false;
  let handshake = true;
  let dryRun = false;
  let ffmpeg: string | undefined;
  let maxBackoffMs = 30_000;
  let retries: number | undefined;
  const maps: Partial<VariantInputs> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (!a.startsWith('--')) {
      rest.push(a);
      continue;
    }
    const value = (): string | undefined => {
      const v = argv[i + 1];
      i++;
      return v;
    };
    switch (a) {
      case '--re':
        re = true;
        break;
      case '--no-re':
        re = false;
        break;
      case '--loop':
        loop = true;
        break;
      case '--no-handshake':
        handshake = false;
        break;
      case '--dry-run':
        dryRun = true;
        break;
      case '--ffmpeg': {
        const v = value();
        if (v === undefined || v === '') return fail('--ffmpeg needs the path of the ffmpeg program');
        ffmpeg = v;
        break;
      }
      case '--video-map':
      case '--audio-map': {
        const v = value();
        if (v === undefined || !/^\d+(:[a-z0-9]+)*\??$/i.test(v)) {
          return fail(`${a} needs an ffmpeg stream specifier such as 0:v:0 or 1:a:0? (got ${v ?? 'nothing'})`);
        }
        if (a === '--video-map') maps.video = v;
        else maps.audio = v;
        break;
      }
      case '--max-backoff': {
        const v = Number(value());
        if (!Number.isFinite(v) || v < 0.1 || v > 3600) return fail('--max-backoff needs seconds between 0.1 and 3600');
        maxBackoffMs = Math.round(v * 1000);
        break;
      }
      case '--retries': {
        const v = Number(value());
        if (!Number.isInteger(v) || v < 0) return fail('--retries needs a whole number (0: give up at the first failure)');
        retries = v;
        break;
      }
      default:
        return fail(`unknown option ${a}`);
    }
  }
  const last = rest.pop();
  if (last === undefined) return fail('name the input and the feed URL');
  let url: URL;
  try {
    url = new URL(last);
  } catch {
    return fail(`the last argument must be the feed URL (http://HOST:PORT/FEED.ffm), not "${last}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return fail(`the feed URL must be http:// or https:// (got ${url.protocol}); RTMP publishers can use ffmpeg directly`);
  }
  if (url.pathname === '/' || url.pathname === '') return fail(`the feed URL names no feed: ${last}`);
  if (rest.length === 0) return fail('name the input before the feed URL');
  let inputArgs: string[];
  if (rest.includes('-i')) {
    if (rest[rest.length - 1] === '-i') return fail('-i at the end needs an input name');
    inputArgs = [...rest];
  } else if (rest.length === 1) {
    inputArgs = ['-i', rest[0] ?? ''];
  } else {
    return fail(`several words without -i (${rest.join(' ')}): give one input, or ffmpeg input options with -i`);
  }
  if (loop) inputArgs = beforeEachInput(inputArgs, ['-stream_loop', '-1']);
  if (re ?? realtimeByDefault(inputArgs)) inputArgs = beforeEachInput(inputArgs, ['-re']);
  return {
    ok: true,
    command: { inputArgs, url, handshake, maps, ffmpeg, maxBackoffMs, retries, dryRun },
  };
}

/** The handshake URL: the feed URL with `config` added to its query (secret kept). */
export function handshakeUrl(feedUrl: URL): URL {
  const u = new URL(feedUrl.href);
  u.searchParams.set('config', '');
  return u;
}
