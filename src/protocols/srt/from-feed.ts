// SRT reading: the feed (or a declared MPEG-TS passthrough stream) as MPEG-TS over SRT, from the
// same shared muxed TS output as /feed1.ts (one mux per feed and variant, whatever the protocol),
// walked by an OutputReader with the same bounds (ReaderMaxQueue, ReaderMaxLag) as every reader.
// The reader writes into an SRT socket through a ByteSink: each write goes out as SRT messages of
// up to 7 TS packets; what libsrt's send buffer does not take waits here, and the reader waits for
// 'drain' (SRT_EPOLL_OUT), as it does for a TCP socket.

import { EventEmitter } from 'node:events';
import type { Admission } from '../../access/access.js';
import type { ConnectionInfo } from '../../access/connections.js';
import { describeTrack } from '../../media/track.js';
import type { ServerConfig } from '../../config/config.js';
import type { Logger } from '../../observability/logger.js';
import type { OutputRegistry } from '../../streams/output-registry.js';
import { OutputReader, type ByteSink } from '../../streams/output-reader.js';
import { canCarryAny, plainVariant, type OutputVariant } from '../../streams/output-registry.js';
import { SOURCE_START_TIMEOUT_MS, waitForTracks } from '../rtmp/from-feed.js';
import type { NativeSrt, SrtPoller } from './native-srt.js';

/** An SRT socket as a reader's byte sink. */
class SrtSink implements ByteSink {
  private readonly srt: NativeSrt;
  private readonly poller: SrtPoller;
  private readonly sock: number;
  private readonly events = new EventEmitter();
  /** What libsrt did not take yet, from `pendingAt` on. */
  private pending: Buffer | undefined;
  private pendingAt = 0;
  bytesWritten = 0;
  broken = false;

  constructor(srt: NativeSrt, poller: SrtPoller, sock: number) {
    this.srt = srt;
    this.poller = poller;
    this.sock = sock;
  }

  write(chunk: Buffer): boolean {
    if (this.broken) return true;
    if (this.pending !== undefined) {
      // The reader waits for 'drain' after a false; a write in between (its header) joins the queue.
      this.pending = Buffer.concat([this.pending.subarray(this.pendingAt), chunk]);
      this.pendingAt = 0;
      return false;
    }
    const sent = this.srt.send(this.poller, this.sock, chunk, 0);
    if (sent < 0) {
      // The connection is gone: the ERR event closes it; until then the bytes go nowhere.
      this.broken = true;
      return true;
    }
    this.bytesWritten += sent;
    if (sent === chunk.length) return true;
    this.pending = chunk;
    this.pendingAt = sent;
    this.srt.watchWritable(this.poller, this.sock, true);
    return false;
  }

  /** SRT_EPOLL_OUT: libsrt's send buffer has room again. */
  onWritable(): void {
    const pending = this.pending;
    if (pending === undefined) {
      this.srt.watchWritable(this.poller, this.sock, false);
      return;
    }
    const sent = this.srt.send(this.poller, this.sock, pending, this.pendingAt);
    if (sent < 0) {
      this.broken = true;
      this.pending = undefined;
      return;
    }
    this.bytesWritten += sent;
    this.pendingAt += sent;
    if (this.pendingAt < pending.length) return;
    this.pending = undefined;
    this.srt.watchWritable(this.poller, this.sock, false);
    this.events.emit('drain');
  }

  cork(): void {}
  uncork(): void {}
  once(event: 'drain', listener: () => void): unknown {
    return this.events.once(event, listener);
  }
  removeListener(event: 'drain', listener: () => void): unknown {
    return this.events.removeListener(event, listener);
  }
}

/** What a reader uses of the running server. */
export interface SrtReadDeps {
  readonly config: ServerConfig;
  readonly outputs: OutputRegistry;
  readonly log: Logger;
}

export class SrtFromFeed {
  private readonly ctx: SrtReadDeps;
  private readonly conn: ConnectionInfo;
  private readonly admission: Admission;
  private readonly sink: SrtSink;
  private readonly onEnd: (reason: string) => void;
  private readonly closing = new EventEmitter();
  private reader: OutputReader | undefined;
  private ended = false;

  /** `onEnd` runs once when the reader stops on its own (feed gone, too slow, no publisher): the connection closes. */
  constructor(
    ctx: SrtReadDeps,
    srt: NativeSrt,
    poller: SrtPoller,
    sock: number,
    conn: ConnectionInfo,
    admission: Admission,
    onEnd: (reason: string) => void,
  ) {
    this.ctx = ctx;
    this.conn = conn;
    this.admission = admission;
    this.onEnd = onEnd;
    this.sink = new SrtSink(srt, poller, sock);
    admission.cutAtExpiry(() => this.end('read token expired'));
  }

  /** Waits for the feed's tracks (a publisher within PublisherGracePeriod), then reads from the GOP cache on. */
  async start(): Promise<void> {
    const { feed, stream } = this.admission.target;
    this.conn.target = this.admission.target.name;
    if (
      stream !== undefined &&
      (stream.format.name !== 'mpegts' || stream.format.support !== 'passthrough' || stream.needsTranscode)
    ) {
      this.end(
        `${stream.name} is not an MPEG-TS passthrough stream (Format ${stream.format.name}); read feed ${feed.key} instead`,
      );
      return;
    }
    if (feed.tracks.length === 0) {
      this.conn.state = 'WAIT_FEED';
      const waitMs = this.admission.sourced
        ? Math.max(SOURCE_START_TIMEOUT_MS, this.ctx.config.publisherGraceMs)
        : this.ctx.config.publisherGraceMs;
      const ok = await waitForTracks(feed, waitMs, this.closing);
      if (this.ended) return;
      if (!ok) {
        this.end(`feed ${feed.key} has no publisher: nothing was published to it within ${Math.round(waitMs / 1000)} s`);
        return;
      }
    }
    if (!canCarryAny('mpegts', feed.tracks)) {
      this.end(`MPEG-TS cannot carry this feed's tracks (${feed.tracks.map(describeTrack).join(', ')})`);
      return;
    }
    const variant: OutputVariant =
      stream !== undefined ? { noAudio: stream.noAudio, noVideo: stream.noVideo, metadata: stream.metadata } : plainVariant;
    const output = this.ctx.outputs.get(feed, 'mpegts', variant);
    const coalesceMs = this.ctx.outputs.writeCoalesceMs;
    const reader = new OutputReader(output, this.sink, {
      maxQueueBytes: this.ctx.config.readerMaxQueueBytes,
      maxLagMs: this.ctx.config.readerMaxLagMs,
      ...(coalesceMs !== undefined ? { coalesceMs } : {}),
    });
    this.reader = reader;
    reader.on('end', (reason, error) => {
      this.updateStats();
      if (error !== undefined) this.ctx.log.warn('srt reader closed', { reason, err: error, from: this.conn.remoteAddress });
      this.end(reason);
    });
    this.conn.state = 'SEND_DATA';
    reader.start();
    this.ctx.log.info('srt reading', { target: this.admission.target.name, from: this.conn.remoteAddress });
  }

  onWritable(): void {
    this.sink.onWritable();
  }

  updateStats(): void {
    this.conn.bytesOut = this.sink.bytesWritten;
    if (this.reader !== undefined) {
      this.conn.counters['chunksDropped'] = this.reader.stats.chunksDropped;
      this.conn.counters['skips'] = this.reader.stats.skips;
    }
  }

  /** The connection is closing (by the server): stop reading and give the admission back. Idempotent. */
  close(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.updateStats();
    this.closing.emit('close');
    this.reader?.close(reason);
    this.admission.release();
  }

  /** The reader stopped on its own: the server closes the connection, which calls close(). */
  private end(reason: string): void {
    if (this.ended) return;
    this.onEnd(reason);
  }
}
