// Runs the relay path once, on a few tiny frames, when a node joins the cluster (issue 20 part 3). The first
// relay a node made or served took 0.2-0.3 s longer than the next ones (npm run bench:relay, cold edge), much
// of it the first run of the TS muxer and demuxer: V8 compiles each function at its first call. A node pays
// that here, at start, instead of its first viewer.

import { buildAudioSpecificConfig } from '../formats/aac/audio-specific-config.js';
import { buildAvcc } from '../formats/h264/avcc.js';
import { TsDemuxer } from '../formats/mpegts/ts-demuxer.js';
import { TsMuxer } from '../formats/mpegts/ts-muxer.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';

/** A 16x16 black H.264 Constrained Baseline picture (x264, SEI removed): SPS, PPS, an IDR and a P slice. */
const SPS = Buffer.from('6742c00ad91ec044000003000400000300c83c489920', 'hex');
const PPS = Buffer.from('68cb83cb20', 'hex');
const IDR = Buffer.from('6588840bf2628000abce', 'hex');
const P_SLICE = Buffer.from('419a3815ea', 'hex');
/** One AAC-LC frame of stereo silence (hls.js, src/remux/aac-helper.ts). */
const AAC_SILENCE = Buffer.from('210049900219002380', 'hex');
const FRAMES = 50;

/**
 * Muxes a second of tiny frames into the relay stream (what an origin sends) and demuxes them again (what an
 * edge reads), `rounds` times; returns the frames demuxed in the last round. Throws what the parts throw.
 */
export function warmUpRelayPath(rounds = 3): number {
  const tracks: Track[] = [
    { id: 1, kind: 'video', codec: 'h264', config: buildAvcc([SPS], [PPS]), width: 16, height: 16 },
    { id: 2, kind: 'audio', codec: 'aac', config: buildAudioSpecificConfig(2, 3, 2), sampleRate: 48_000, channels: 2 },
  ];
  const frames: Frame[] = [];
  for (let i = 0; i < FRAMES; i++) {
    const key = i % 25 === 0;
    const dts90k = i * 3600;
    frames.push({ trackId: 1, dts90k, pts90k: dts90k, keyframe: key, data: lengthPrefixed(key ? IDR : P_SLICE) });
    frames.push({ trackId: 2, dts90k: i * 1920, pts90k: i * 1920, keyframe: true, data: AAC_SILENCE });
  }
  frames.sort((a, b) => a.dts90k - b.dts90k);
  let demuxed = 0;
  for (let round = 0; round < rounds; round++) {
    const muxer = new TsMuxer(tracks, { relayClock: Date.now });
    const stream = Buffer.concat([muxer.header(), ...frames.map((f) => muxer.mux(f))]);
    demuxed = 0;
    const demuxer = new TsDemuxer({ onTracks: () => undefined, onFrame: () => demuxed++ }, { onRelayMark: () => undefined });
    demuxer.push(stream);
    demuxer.end();
    demuxer.close();
  }
  return demuxed;
}

function lengthPrefixed(nal: Buffer): Buffer {
  const out = Buffer.alloc(4 + nal.length);
  out.writeUInt32BE(nal.length, 0);
  nal.copy(out, 4);
  return out;
}
