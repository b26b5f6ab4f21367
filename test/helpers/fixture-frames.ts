// Demuxes a fixture file (MPEG-TS, or the AV1 OBU stream) into its tracks and frames, for muxer tests.

import { readFileSync } from 'node:fs';
import { buildAv1c } from '../../src/formats/av1/av1c.js';
import { isKeyTemporalUnit, ObuType, readObu, writeObus, type Obu } from '../../src/formats/av1/obu.js';
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

/**
 * The temporal units of test/fixtures/av1-160x120.obu (a low-overhead OBU stream, temporal
 * delimiters included) as Feedcast frames at 25 fps, and its track with the av1C of its sequence header.
 */
export function av1FixtureFrames(): { track: Track; frames: Frame[] } {
  const bytes = readFileSync(new URL('../fixtures/av1-160x120.obu', import.meta.url));
  const units: Obu[][] = [];
  for (let pos = 0; pos < bytes.length;) {
    const { obu, length } = readObu(bytes, pos);
    if (obu.type === ObuType.temporalDelimiter) units.push([]);
    else units.at(-1)?.push(obu);
    pos += length;
  }
  const sequence = units.flat().find((o) => o.type === ObuType.sequenceHeader);
  if (sequence === undefined) throw new Error('av1 fixture: no sequence header');
  const track: Track = { id: 0, kind: 'video', codec: 'av1', config: buildAv1c(sequence), width: 160, height: 120 };
  const frames = units.map((obus, i) => ({
    trackId: 0,
    dts90k: 3600 * i,
    pts90k: 3600 * i,
    keyframe: isKeyTemporalUnit(obus),
    data: writeObus(obus),
  }));
  return { track, frames };
}
