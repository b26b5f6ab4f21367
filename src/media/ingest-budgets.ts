// Server-wide caps on what ingest holds for unfinished input (issue 25): one ByteBudget each, made
// once per server (ProtocolContext.ingestBudgets) and passed to every ingest of that kind, so that many
// connections together cannot hold more than the cap, whatever each one's own limit allows.

import { ByteBudget } from './byte-budget.js';

/** Unfinished MPEG-TS PES of every TS ingest (HTTP push, Launch/Source pulls, SRT...): each holds at most 32 MiB. */
export const SERVER_MAX_HELD_PES_BYTES = 256 * 1024 * 1024;
/** Incomplete RTMP messages of every RTMP and RTMPS connection: each holds at most 16 MiB. */
export const SERVER_MAX_HELD_RTMP_BYTES = 256 * 1024 * 1024;

export interface IngestBudgets {
  /** Give it to every MPEG-TS demuxer fed from outside: `new TsDemuxer(sink, { pesBudget })`. */
  readonly pes: ByteBudget;
  /** Give it to every RTMP chunk reader: `new ChunkStreamReader(onMessage, { budget })`. */
  readonly rtmp: ByteBudget;
}

export function createIngestBudgets(caps: { pesBytes?: number; rtmpBytes?: number } = {}): IngestBudgets {
  return {
    pes: new ByteBudget(caps.pesBytes ?? SERVER_MAX_HELD_PES_BYTES),
    rtmp: new ByteBudget(caps.rtmpBytes ?? SERVER_MAX_HELD_RTMP_BYTES),
  };
}
