// (feed, format, variant) -> MuxedOutput: the one place outputs are made, so that every reader
// of the same bytes shares one muxer. A format is a factory of muxers: FLV, MPEG-TS and RTMP are
// built in, and a protocol registers its own (RTSP: 'rtp', interleaved RTP packetised once per
// feed). An output is dropped when its last reader leaves.

import type { Feed } from '../feed/feed.js';
import type { Track } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import { FlvMuxer } from '../formats/flv/flv-muxer.js';
import { TsMuxer } from '../formats/mpegts/ts-muxer.js';
import { RTMP_PLAY_STREAM_ID, RtmpMuxer } from '../formats/rtmp/rtmp-muxer.js';
import type { EgressThreads } from './egress-threads.js';
import { MuxedOutput, type MuxerFactory } from './muxed-output.js';

/** Byte-stream formats served without encoding. */
export const PassthroughFormats = ['flv', 'mpegts'] as const;
export type PassthroughFormat = (typeof PassthroughFormats)[number];
/**
 * Every muxed output: the HTTP byte streams, RTMP play (FLV tag bodies in RTMP chunks), RTSP's interleaved RTP,
 * and the MPEG-TS a cluster node relays from another (`mpegts-relay`: each PES end marked, formats/mpegts/relay-mark.ts).
 */
export type OutputFormat = PassthroughFormat | 'rtmp' | 'rtp' | 'mpegts-relay';

/**
 * How one format's outputs are made: the muxer factory of an output of `feed`, for a variant and
 * the format's own parameter (RTMP's chunk size), and which parts of the variant tell its outputs apart.
 */
export interface OutputFormatFactory {
  muxer(feed: Feed, variant: OutputVariant, param: number | undefined): MuxerFactory;
  /** Whether `metadata` (FLV onMetaData) is part of the output's identity; RTP carries none. */
  keyedByMetadata: boolean;
  /** Its readers start at the newest keyframe, never earlier: a new output muxes the GOP cache only (MuxedOutputOptions.gopOnly). */
  gopOnly?: boolean;
}

/** RTMP play's chunk size when the RTMP server does not say (RTMPChunkSize). */
export const DEFAULT_RTMP_CHUNK_SIZE = 4096;

export interface OutputVariant {
  noAudio: boolean;
  noVideo: boolean;
  metadata: Readonly<Record<string, string>>;
}

/** Default write coalescing interval (ms) of outputs on TCP sockets: see docs/performance.md. */
export const DEFAULT_WRITE_COALESCE_MS = 10;

/**
 * The write coalescing interval when the config has no `WriteCoalesce`: `FEEDCAST_WRITE_COALESCE_MS`
 * (ms, or `off` for one write per chunk), else DEFAULT_WRITE_COALESCE_MS.
 */
export function writeCoalesceFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env['FEEDCAST_WRITE_COALESCE_MS']?.trim();
  if (raw === undefined || raw === '') return DEFAULT_WRITE_COALESCE_MS;
  if (raw === 'off') return undefined;
  const ms = Number(raw);
  return Number.isInteger(ms) && ms >= 0 && ms <= 1000 ? ms : DEFAULT_WRITE_COALESCE_MS;
}

/** The tracks a variant keeps: all but the audio of NoAudio and the video of NoVideo. */
export function variantFilter(variant: { noAudio: boolean; noVideo: boolean }): (t: { kind: 'video' | 'audio' }) => boolean {
  return (t) => !(t.kind === 'audio' && variant.noAudio) && !(t.kind === 'video' && variant.noVideo);
}

export const plainVariant: OutputVariant = { noAudio: false, noVideo: false, metadata: {} };

/** Whether `format` can carry at least one of these tracks (FLV cannot carry MPEG-1 video ...). */
export function canCarryAny(format: OutputFormat, tracks: readonly Track[]): boolean {
  if (format === 'flv' || format === 'rtmp') return tracks.some((t) => FlvMuxer.canCarry(t));
  return tracks.length > 0;
}

const builtInFormats: ReadonlyMap<OutputFormat, OutputFormatFactory> = new Map<OutputFormat, OutputFormatFactory>([
  [
    'rtmp',
    {
      keyedByMetadata: true,
      muxer: (_feed, variant, chunkSize) => (tracks) =>
        new RtmpMuxer(tracks, {
          chunkSize: chunkSize ?? DEFAULT_RTMP_CHUNK_SIZE,
          streamId: RTMP_PLAY_STREAM_ID,
          metadata: { ...variant.metadata },
        }),
    },
  ],
  [
    'flv',
    { keyedByMetadata: true, muxer: (_feed, variant) => (tracks) => new FlvMuxer(tracks, { metadata: { ...variant.metadata } }) },
  ],
  ['mpegts', { keyedByMetadata: false, muxer: () => (tracks) => new TsMuxer(tracks) }],
  // A relay starts at the newest keyframe: a new output muxes only the GOP (a cold edge's first frame sooner).
  [
    'mpegts-relay',
    { keyedByMetadata: false, gopOnly: true, muxer: () => (tracks) => new TsMuxer(tracks, { relayClock: Date.now }) },
  ],
]);

export class OutputRegistry {
  private readonly outputs = new Map<string, MuxedOutput>();
  private readonly formats = new Map<OutputFormat, OutputFormatFactory>(builtInFormats);
  /** Read live by every output made here: a reload changes what they keep at once. */
  readonly settings: { retainBytes: number };
  private readonly log: Logger;
  /** Write coalescing of the outputs made here (MuxedOutputOptions.writeCoalesceMs). */
  readonly writeCoalesceMs: number | undefined;
  /** The server's egress threads (`EgressThreads N`), for the readers that may use them (HTTP progressive). */
  readonly egress: EgressThreads | undefined;

  /** `writeCoalesceMs`: the `WriteCoalesce` setting; 'off' = one write per chunk; undefined = the environment, else the default. */
  constructor(retainBytes: number, log: Logger, writeCoalesceMs?: number | 'off', egress?: EgressThreads) {
    this.settings = { retainBytes };
    this.log = log;
    this.writeCoalesceMs = writeCoalesceMs === 'off' ? undefined : (writeCoalesceMs ?? writeCoalesceFromEnv());
    this.egress = egress;
  }

  /** `ReaderMaxQueue` applies to the outputs that exist too (WriteCoalesce needs a restart). */
  applyConfig(next: { readerMaxQueueBytes: number }): void {
    this.settings.retainBytes = next.readerMaxQueueBytes;
  }

  /** A format whose muxers a protocol makes (RTSP's 'rtp'); replaces the factory of that format. */
  register(format: OutputFormat, factory: OutputFormatFactory): void {
    this.formats.set(format, factory);
  }

  /** The muxers of `format` for one reader's own output (a time-shifted reader: TimeShiftOutput). */
  muxerFactory(feed: Feed, format: OutputFormat, variant: OutputVariant = plainVariant, param?: number): MuxerFactory {
    const factory = this.formats.get(format);
    if (factory === undefined) throw new Error(`no output factory for format ${format}`);
    return factory.muxer(feed, variant, param);
  }

  /**
   * The shared output of (feed, format, variant, param), made at the first reader. `param` is the
   * format's own (RTMP's chunk size, default DEFAULT_RTMP_CHUNK_SIZE): players of different chunk
   * sizes get different outputs. Throws when no factory makes `format` (RTSP not started).
   */
  get(feed: Feed, format: OutputFormat, variant: OutputVariant = plainVariant, param?: number): MuxedOutput {
    const factory = this.formats.get(format);
    if (factory === undefined) throw new Error(`no output factory for format ${format}`);
    const keyed = factory.keyedByMetadata ? variant : { ...variant, metadata: {} };
    const p = format === 'rtmp' ? (param ?? DEFAULT_RTMP_CHUNK_SIZE) : param;
    const id = outputId(feed, format, keyed) + (p !== undefined ? `#${p}` : '');
    const existing = this.outputs.get(id);
    if (existing !== undefined && !existing.isEnded) return existing;
    const output = new MuxedOutput(
      id,
      feed,
      factory.muxer(feed, keyed, p),
      {
        settings: this.settings,
        writeCoalesceMs: this.writeCoalesceMs,
        trackFilter: variantFilter(variant),
        ...(factory.gopOnly === true ? { gopOnly: true } : {}),
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

function outputId(feed: Feed, format: OutputFormat, v: OutputVariant): string {
  const meta = Object.entries(v.metadata)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, val]) => `${k}=${val}`)
    .join('&');
  const flags = `${v.noAudio ? 'A' : ''}${v.noVideo ? 'V' : ''}`;
  return `${feed.key}.${format}${flags !== '' ? `:no${flags}` : ''}${meta !== '' ? `?${meta}` : ''}`;
}
