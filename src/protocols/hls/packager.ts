// Turns the samples of one HLS part into bytes: fMP4 (CMAF: init segment + one moof/mdat per
// part) or MPEG-TS (PAT/PMT at each segment start, then PES packets, RFC 8216 3.2-3.3).

import { codecString } from '../../formats/fmp4/codec-string.js';
import { encodeFragment, type Fmp4Sample, type TrackRun } from '../../formats/fmp4/fragment.js';
import { encodeInitSegment, fmp4TrackOf, type Fmp4Track } from '../../formats/fmp4/init-segment.js';
import { TsMuxer } from '../../formats/mpegts/ts-muxer.js';
import { avcCodecString } from '../../formats/fmp4/codec-string.js';
import { parseAudioSpecificConfig } from '../../formats/aac/audio-specific-config.js';
import { from90k } from '../../media/timebase.js';
import type { Track } from '../../media/track.js';

export type HlsContainer = 'fmp4' | 'ts';

/** A frame whose duration is known (the next frame of its track has arrived). */
export interface HlsSample {
  readonly trackId: number;
  readonly dts90k: number;
  readonly pts90k: number;
  readonly keyframe: boolean;
  readonly data: Buffer;
  readonly duration90k: number;
}

export interface Packager {
  readonly container: HlsContainer;
  /** The feed tracks this packager carries. */
  readonly tracks: readonly Track[];
  /** The initialization segment (fMP4), or undefined (TS). */
  readonly init: Buffer | undefined;
  /** RFC 6381 codecs of the carried tracks, for the CODECS attribute; undefined when unknown. */
  readonly codecs: string | undefined;
  /** The bytes of one part; `segmentStart` is true for the first part of a segment. */
  part(samples: readonly HlsSample[], segmentStart: boolean): Buffer;
}

export function createPackager(container: HlsContainer, tracks: readonly Track[]): Packager | undefined {
  return container === 'fmp4' ? Fmp4Packager.create(tracks) : TsPackager.create(tracks);
}

class Fmp4Packager implements Packager {
  readonly container = 'fmp4' as const;
  readonly tracks: readonly Track[];
  readonly init: Buffer;
  readonly codecs: string;
  private readonly fmp4Tracks: readonly Fmp4Track[];
  private sequence = 1;

  static create(tracks: readonly Track[]): Fmp4Packager | undefined {
    const carried: Track[] = [];
    const fmp4: Fmp4Track[] = [];
    for (const t of tracks) {
      const f = fmp4TrackOf(t);
      if (f === undefined) continue;
      carried.push(t);
      fmp4.push(f);
    }
    return fmp4.length > 0 ? new Fmp4Packager(carried, fmp4) : undefined;
  }

  private constructor(tracks: readonly Track[], fmp4Tracks: readonly Fmp4Track[]) {
    this.tracks = tracks;
    this.fmp4Tracks = fmp4Tracks;
    this.init = encodeInitSegment(fmp4Tracks);
    this.codecs = fmp4Tracks.map(codecString).join(',');
  }

  part(samples: readonly HlsSample[]): Buffer {
    const runs: TrackRun[] = [];
    for (const t of this.fmp4Tracks) {
      const own = samples.filter((s) => s.trackId === t.feedTrackId);
      const first = own[0];
      if (first === undefined) continue;
      const out: Fmp4Sample[] = own.map((s) => {
        // Durations from rounded absolute times, so audio timescales never drift.
        const start = from90k(s.dts90k, t.timescale);
        return {
          duration: Math.max(1, from90k(s.dts90k + s.duration90k, t.timescale) - start),
          compositionOffset: from90k(s.pts90k, t.timescale) - start,
          keyframe: t.kind === 'audio' || s.keyframe,
          data: s.data,
        };
      });
      runs.push({ trackId: t.trackId, baseDecodeTime: from90k(first.dts90k, t.timescale), samples: out });
    }
    return encodeFragment(this.sequence++, runs);
  }
}

class TsPackager implements Packager {
  readonly container = 'ts' as const;
  readonly tracks: readonly Track[];
  readonly init = undefined;
  readonly codecs: string | undefined;
  private readonly muxer: TsMuxer;

  static create(tracks: readonly Track[]): TsPackager | undefined {
    const carried = tracks.filter((t) =>
      ['h264', 'h265', 'aac', 'mp3', 'mp2', 'mpeg1video', 'mpeg2video', 'opus', 'ac3'].includes(t.codec),
    );
    return carried.length > 0 ? new TsPackager(carried) : undefined;
  }

  private constructor(tracks: readonly Track[]) {
    this.tracks = tracks;
    this.muxer = new TsMuxer(tracks);
    this.codecs = tsCodecs(tracks);
  }

  part(samples: readonly HlsSample[], segmentStart: boolean): Buffer {
    const ordered = [...samples].sort((a, b) => a.dts90k - b.dts90k);
    const pieces: Buffer[] = segmentStart ? [this.muxer.header()] : [];
    for (const s of ordered) pieces.push(this.muxer.mux(s));
    return Buffer.concat(pieces);
  }
}

/** CODECS for TS segments, when every track has a known codec string. */
function tsCodecs(tracks: readonly Track[]): string | undefined {
  const out: string[] = [];
  for (const t of tracks) {
    if (t.codec === 'h264' && t.config !== undefined) out.push(avcCodecString(t.config));
    else if (t.codec === 'aac' && t.config !== undefined) out.push(`mp4a.40.${parseAudioSpecificConfig(t.config).objectType}`);
    else if (t.codec === 'mp3') out.push('mp4a.40.34');
    else return undefined;
  }
  return out.join(',');
}
