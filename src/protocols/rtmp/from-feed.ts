// RTMP play: a player's socket fed by an OutputReader over the feed's shared RTMP output (one muxed
// chunk sequence per feed and variant, identical bytes for every player), with the same
// slow-reader bound as the HTTP outputs.

import type { Socket } from 'node:net';
import type { ConnectionInfo } from '../../access/connections.js';
import type { Feed } from '../../feed/feed.js';
import type { ProtocolContext } from '../protocol-context.js';
import type { MuxedOutput } from '../../streams/muxed-output.js';
import { OutputReader } from '../../streams/output-reader.js';
import type { OutputVariant } from '../../streams/output-registry.js';
import { socketBytesWritten } from '../../streams/native-fanout.js';

export interface RtmpPlayRequest {
  feed: Feed;
  variant: OutputVariant;
  /** The name the player asked for (logs, status page). */
  name: string;
  chunkSize: number;
}

/** How long a player of an on-demand Launch/Source feed waits for the source's first tracks. */
export const SOURCE_START_TIMEOUT_MS = 20_000;

/** Waits until the feed has tracks, the socket (or any connection that emits 'close') closes or `timeoutMs` passes. */
export function waitForTracks(
  feed: Feed,
  timeoutMs: number,
  socket: { on(event: 'close', listener: () => void): unknown; off(event: 'close', listener: () => void): unknown },
): Promise<boolean> {
  if (feed.tracks.length > 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      off();
      socket.off('close', onClose);
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    const off = feed.on('tracks', () => done(true));
    const onClose = (): void => done(false);
    socket.on('close', onClose);
  });
}

export class RtmpFromFeed {
  readonly output: MuxedOutput;
  readonly reader: OutputReader;
  private readonly conn: ConnectionInfo;
  private readonly socket: Socket;
  private readonly stats: NodeJS.Timeout;
  private ended = false;

  /**
   * Joins the shared output. `onEnd` runs once when the reader stops (feed gone, too slow, close()).
   * The caller sends its own NetStream messages first, then calls start().
   */
  constructor(
    ctx: ProtocolContext,
    socket: Socket,
    conn: ConnectionInfo,
    play: RtmpPlayRequest,
    onEnd: (reason: string, error: Error | undefined) => void,
  ) {
    this.conn = conn;
    this.socket = socket;
    this.output = ctx.outputs.get(play.feed, 'rtmp', play.variant, play.chunkSize);
    this.reader = new OutputReader(this.output, socket, {
      maxQueueBytes: ctx.config.readerMaxQueueBytes,
      maxLagMs: ctx.config.readerMaxLagMs,
    });
    this.stats = setInterval(() => this.updateStats(), 1000);
    this.stats.unref();
    this.reader.on('end', (reason, error) => {
      if (this.ended) return;
      this.ended = true;
      clearInterval(this.stats);
      this.updateStats();
      onEnd(reason, error);
    });
  }

  /** Sends the output's header (onMetaData, sequence headers), then the GOP cache, then live. */
  start(): void {
    this.reader.start();
  }

  close(reason: string): void {
    this.reader.close(reason);
  }

  private updateStats(): void {
    this.conn.bytesOut = socketBytesWritten(this.socket);
    this.conn.counters['chunksDropped'] = this.reader.stats.chunksDropped;
    this.conn.counters['skips'] = this.reader.stats.skips;
  }
}
