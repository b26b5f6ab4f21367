// Demuxes a fixture file (MPEG-TS) into its tracks and frames, for muxer tests.

import { readFileSync } from 'node:fs';
import { TsDemuxer } from '../../src/formats/mpegts/ts-demuxer.js';
import type { Frame } from '../../src/media/frame.js';
import type { Track } from '../../src/media/track.js';

export function fixtureFrames(name: string): { tracks: Track[]; frames: Frame[] } {
  let tracks: Track[] = [];
  const frames: Frame[] = [];
  const demuxer = new TsDemuxer({
    onTracks: (t) => {
      tracks = [...t];
    },
    onFrame: (f) => frames.push(f),
  });
  demuxer.push(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));
  demuxer.end();
  return { tracks, frames };
}
