// Reads a live MPEG-TS URL with Feedcast's own demuxer until enough frames came, for codecs the
// machine's ffprobe cannot demux from TS (AV1: Debian's ffmpeg 5.1 sees a bin_data PID).

import { get } from 'node:http';
import { TsDemuxer } from '../../src/formats/mpegts/ts-demuxer.js';
import type { Frame } from '../../src/media/frame.js';
import type { Track } from '../../src/media/track.js';

export interface LiveTs {
  tracks: Track[];
  frames: Frame[];
  warnings: string[];
}

/** GETs `url` and demuxes it until `enough` says so (then closes the request), or fails after `timeoutMs`. */
export function readLiveTs(url: string, enough: (got: LiveTs) => boolean, timeoutMs = 30_000): Promise<LiveTs> {
  const got: LiveTs = { tracks: [], frames: [], warnings: [] };
  return new Promise((resolve, reject) => {
    const req = get(url, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        finish(new Error(`GET ${url}: ${res.statusCode}`));
        return;
      }
      const demuxer = new TsDemuxer({
        onTracks: (t) => (got.tracks = [...t]),
        onFrame: (f) => got.frames.push({ ...f, data: Buffer.from(f.data) }),
        onWarning: (w) => got.warnings.push(w),
      });
      res.on('data', (chunk: Buffer) => {
        demuxer.push(chunk);
        if (enough(got)) finish(undefined);
      });
      res.on('end', () => finish(new Error(`GET ${url}: ended with ${got.frames.length} frames`)));
    });
    const timer = setTimeout(
      () => finish(new Error(`GET ${url}: not enough after ${timeoutMs} ms (${got.frames.length} frames)`)),
      timeoutMs,
    );
    req.on('error', (err) => finish(err));
    let done = false;
    function finish(err: Error | undefined): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      if (err === undefined) resolve(got);
      else reject(err);
    }
  });
}
