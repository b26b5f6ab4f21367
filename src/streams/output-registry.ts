// (feed, format, variant) -> MuxedOutput: the one place outputs are made, so that every reader
// of the same bytes shares one muxer. An output is dropped when its last reader leaves.

import type { Feed } from '../feed/feed.js';
import type { Track } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import { FlvMuxer } from '../formats/flv/flv-muxer.js';
import { TsMuxer } from '../formats/mpegts/ts-muxer.js';
import { MuxedOutput, type MuxerFactory } from './muxed-output.js';

/** Byte-stream formats served without encoding. */
export const PassthroughFormats = ['flv', 'mpegts'] as const;
export type PassthroughFormat = (typeof PassthroughFormats)[number];

export interface OutputVariant {
  noAudio: boolean;
  noVideo: boolean;
  metadata: Readonly<Record<string, string>>;
}

export const plainVariant: OutputVariant = { noAudio: false, noVideo: false, metadata: {} };

/** Whether `format` can carry at least one of these tracks (FLV cannot carry MPEG-1 video ...). */
export function canCarryAny(format: PassthroughFormat, tracks: readonly Track[]): boolean {
  if (format === 'flv') return tracks.some((t) => FlvMuxer.canCarry(t));
  return tracks.length > 0;
}

function muxerFactory(format: PassthroughFormat, variant: OutputVariant): MuxerFactory {
  if (format === 'flv') return (tracks) => new FlvMuxer(tracks, { metadata: { ...variant.metadata } });
  return (tracks) => new TsMuxer(tracks);
}

export class OutputRegistry {
  private readonly outputs = new Map<string, MuxedOutput>();
  private readonly retainBytes: number;
  private readonly log: Logger;

  constructor(retainBytes: number, log: Logger) {
    this.retainBytes = retainBytes;
    this.log = log;
  }

  get(feed: Feed, format: PassthroughFormat, variant: OutputVariant = plainVariant): MuxedOutput {
    const id = outputId(feed, format, variant);
    const existing = this.outputs.get(id);
    if (existing !== undefined && !existing.isEnded) return existing;
    const output = new MuxedOutput(
      id,
      feed,
      muxerFactory(format, variant),
      {
        retainBytes: this.retainBytes,
        trackFilter: (t) => !(t.kind === 'audio' && variant.noAudio) && !(t.kind === 'video' && variant.noVideo),
      },
      this.log,
    );
    output.on('dispose', () => {
      if (this.outputs.get(id) === output) this.outputs.delete(id);
    });
    this.outputs.set(id, output);
    return output;
  }

  all(): MuxedOutput[] {
    return [...this.outputs.values()];
  }

  closeAll(): void {
    for (const output of [...this.outputs.values()]) output.dispose();
    this.outputs.clear();
  }
}

function outputId(feed: Feed, format: PassthroughFormat, v: OutputVariant): string {
  const meta = Object.entries(v.metadata)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, val]) => `${k}=${val}`)
    .join('&');
  const flags = `${v.noAudio ? 'A' : ''}${v.noVideo ? 'V' : ''}`;
  return `${feed.key}.${format}${flags !== '' ? `:no${flags}` : ''}${meta !== '' ? `?${meta}` : ''}`;
}
