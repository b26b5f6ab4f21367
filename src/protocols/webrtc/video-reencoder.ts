// Browsers decode no reordered H.264 over RTP: a source with B-frames plays at a few frames per
// second in Chromium, with a picture-loss request after each. For such a feed (H.264 or H.265) one
// supervised ffmpeg (a PipeTranscoder) re-encodes the video once for all its WebRTC viewers: H.264
// Constrained Baseline, no B-frames, keyframes where the source has them, at most `maxKbps`.

import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import type { Logger } from '../../observability/logger.js';
import { PipeTranscoder } from './pipe-transcoder.js';

/** Video frames that may wait in ffmpeg's stdin before frames are dropped until the next keyframe (about 2 s at 4 Mb/s). */
const MAX_STDIN_BACKLOG_BYTES = 1024 * 1024;

export function webRtcVideoArgs(maxKbps: number): string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'warning',
    '-fflags',
    '+nobuffer',
    '-probesize',
    '65536',
    '-analyzeduration',
    '0',
    '-f',
    'mpegts',
    '-i',
    'pipe:0',
    '-copyts',
    '-map',
    '0:v:0',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-tune',
    'zerolatency',
    '-profile:v',
    'baseline',
    '-pix_fmt',
    'yuv420p',
    // A keyframe for each of the source's, so viewers join and recover where they would have.
    '-force_key_frames',
    'source',
    '-crf',
    '23',
    '-maxrate',
    `${maxKbps}k`,
    '-bufsize',
    `${Math.max(100, Math.round(maxKbps / 2))}k`,
    '-flush_packets',
    '1',
    '-muxdelay',
    '0',
    '-f',
    'mpegts',
    'pipe:1',
  ];
}

export class VideoReencoder extends PipeTranscoder {
  private waitForKeyframe = true;

  constructor(source: Track, ffmpegPath: string, log: Logger, onVideo: (frame: Frame, track: Track) => void, maxKbps = 4000) {
    super({
      name: 'webrtc h264',
      source,
      ffmpegPath,
      args: webRtcVideoArgs(maxKbps),
      log: log.child({ part: 'webrtc-h264' }),
      maxBacklogBytes: MAX_STDIN_BACKLOG_BYTES,
      onFrame: (frame, track) => {
        if (track !== undefined && track.kind === 'video' && track.config !== undefined) onVideo(frame, track);
      },
    });
  }

  /** A video frame of the source; after a drop (ffmpeg behind) the input resumes at a keyframe. */
  override write(frame: Frame): boolean {
    if (this.waitForKeyframe && !frame.keyframe) return false;
    this.waitForKeyframe = !super.write(frame);
    return !this.waitForKeyframe;
  }
}

/**
 * Whether a video track's frames are reordered (B-frames): some frame, in decode order, is shown
 * before the one decoded ahead of it. Fed each frame of the track; `seen` turns true at the first.
 */
export class ReorderDetector {
  private lastPts90k: number | undefined;
  seen = false;

  push(frame: Frame): boolean {
    if (this.lastPts90k !== undefined && frame.pts90k < this.lastPts90k) this.seen = true;
    this.lastPts90k = frame.pts90k;
    return this.seen;
  }
}
