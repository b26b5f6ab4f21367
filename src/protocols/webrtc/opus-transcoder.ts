// Browsers take only Opus audio over WebRTC: a feed's AAC (or MP3/MP2) track is re-encoded by one
// supervised ffmpeg per feed (a PipeTranscoder), shared by all its WebRTC viewers.

import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import type { Logger } from '../../observability/logger.js';
import { PipeTranscoder } from './pipe-transcoder.js';

/** Audio codecs this transcoder turns into Opus. */
export const OPUS_TRANSCODABLE = new Set(['aac', 'mp3', 'mp2']);

/** Input bytes that may wait in ffmpeg's stdin before audio is dropped (about 2 s of AAC). */
const MAX_STDIN_BACKLOG_BYTES = 64 * 1024;

export function opusTranscodeArgs(bitrateKbps: number): string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'warning',
    // Start at once: no probing beyond the program tables and first packets, no input buffering.
    '-fflags',
    '+nobuffer',
    '-probesize',
    '8192',
    '-analyzeduration',
    '0',
    '-f',
    'mpegts',
    '-i',
    'pipe:0',
    '-copyts',
    '-map',
    '0:a:0',
    '-c:a',
    'libopus',
    '-b:a',
    `${bitrateKbps}k`,
    '-ar',
    '48000',
    '-ac',
    '2',
    '-application',
    'lowdelay',
    '-frame_duration',
    '20',
    '-flush_packets',
    '1',
    '-muxdelay',
    '0',
    '-f',
    'mpegts',
    'pipe:1',
  ];
}

/** The feed's AAC/MP3/MP2 track as Opus frames (48 kHz stereo, 20 ms), for every WebRTC viewer of the feed. */
export class OpusTranscoder extends PipeTranscoder {
  constructor(source: Track, ffmpegPath: string, log: Logger, onOpus: (frame: Frame) => void, bitrateKbps = 64) {
    super({
      name: 'webrtc opus',
      source,
      ffmpegPath,
      args: opusTranscodeArgs(bitrateKbps),
      log: log.child({ part: 'webrtc-opus' }),
      maxBacklogBytes: MAX_STDIN_BACKLOG_BYTES,
      onFrame: (frame) => onOpus(frame),
    });
  }
}
