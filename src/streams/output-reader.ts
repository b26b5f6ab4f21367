// One reader of a MuxedOutput: a cursor into its shared chunks, drained into a byte sink with
// backpressure. A reader that falls more than maxQueueBytes behind skips to the newest keyframe;
// one that stays behind longer than maxLagMs is closed with ClientTooSlowError.

import { ClientTooSlowError } from '../errors.js';
import { TypedEmitter } from '../typed-emitter.js';
import type { Chunk, MuxedOutput } from './muxed-output.js';

/** What a reader walks: a MuxedOutput, or a RawOutput of container bytes muxed by ffmpeg (streams/raw-output.ts). */
export type ChunkSource = Pick<
  MuxedOutput,
  | 'id'
  | 'header'
  | 'joinSeq'
  | 'at'
  | 'headSeq'
  | 'firstSeq'
  | 'producedByteCount'
  | 'addReader'
  | 'removeReader'
  | 'on'
  | 'bytesServed'
  | 'chunksDropped'
  | 'readerSkips'
>;

/** What a reader writes into: a socket, an HTTP response. */
export interface ByteSink {
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  once(event: 'drain', listener: () => void): unknown;
  removeListener(event: 'drain', listener: () => void): unknown;
}

export interface OutputReaderOptions {
  maxQueueBytes: number;
  maxLagMs: number;
}

export interface ReaderStats {
  bytesSent: number;
  chunksSent: number;
  /** Chunks skipped because the reader fell behind. */
  chunksDropped: number;
  /** Times the reader was moved forward to the newest keyframe. */
  skips: number;
}

export type OutputReaderEvents = {
  /** The reader is done: `error` set when it was closed for a fault (too slow). */
  end: [reason: string, error: Error | undefined];
};

export class OutputReader extends TypedEmitter<OutputReaderEvents> {
  private readonly output: ChunkSource;
  private readonly sink: ByteSink;
  private readonly options: OutputReaderOptions;
  /** Next chunk to write; undefined while waiting for a join point. */
  private pos: number | undefined;
  private waitingDrain = false;
  private behindSince: number | undefined;
  private closed = false;
  private readonly offChunk: () => void;
  private readonly offEnd: () => void;
  readonly stats: ReaderStats = { bytesSent: 0, chunksSent: 0, chunksDropped: 0, skips: 0 };
  readonly startedAt = Date.now();

  constructor(output: ChunkSource, sink: ByteSink, options: OutputReaderOptions) {
    super();
    this.output = output;
    this.sink = sink;
    this.options = options;
    output.addReader();
    this.offChunk = output.on('chunk', (chunk) => this.onChunk(chunk));
    this.offEnd = output.on('end', (reason) => this.close(reason));
  }

  /** Sends the header, then starts at the newest join point (the GOP cache) and follows live. */
  start(): void {
    const header = this.output.header();
    if (header !== undefined) this.send(header);
    this.pos = this.output.joinSeq();
    this.pump();
  }

  /** Bytes between this reader's cursor and the newest chunk. */
  get lagBytes(): number {
    if (this.pos === undefined) return 0;
    const chunk = this.output.at(this.pos);
    return chunk === undefined ? 0 : this.output.producedByteCount - chunk.startByte;
  }

  private onChunk(chunk: Chunk): void {
    if (this.closed) return;
    if (this.pos === undefined) {
      if (!chunk.joinable) return;
      this.pos = chunk.seq;
    }
    if (this.waitingDrain) {
      this.checkLag();
      return;
    }
    this.pump();
  }

  private checkLag(): void {
    if (this.pos === undefined) return;
    const evicted = this.pos < this.output.firstSeq;
    if (!evicted && this.lagBytes <= this.options.maxQueueBytes) return;
    const now = Date.now();
    this.behindSince ??= now;
    if (now - this.behindSince > this.options.maxLagMs) {
      this.close(
        'reader too slow',
        new ClientTooSlowError(
          `reader of ${this.output.id} stayed more than ${this.options.maxQueueBytes} bytes behind for ${now - this.behindSince} ms`,
        ),
      );
      return;
    }
    const join = this.output.joinSeq();
    if (join === undefined || join <= this.pos) return;
    this.stats.chunksDropped += join - this.pos;
    this.stats.skips++;
    this.output.chunksDropped += join - this.pos;
    this.output.readerSkips++;
    this.pos = join;
  }

  private pump(): void {
    if (this.closed || this.pos === undefined) return;
    this.checkLag();
    if (this.closed) return;
    const head = this.output.headSeq;
    if (this.pos >= head) return;
    this.sink.cork();
    let ok = true;
    while (ok && this.pos < head) {
      const chunk = this.output.at(this.pos);
      this.pos++;
      if (chunk === undefined) continue;
      ok = this.send(chunk.data);
      this.stats.chunksSent++;
    }
    this.sink.uncork();
    if (this.pos >= head) this.behindSince = undefined;
    if (!ok) {
      this.waitingDrain = true;
      this.sink.once('drain', this.onDrain);
    }
  }

  private readonly onDrain = (): void => {
    this.waitingDrain = false;
    this.pump();
  };

  private send(data: Buffer): boolean {
    this.stats.bytesSent += data.length;
    this.output.bytesServed += data.length;
    return this.sink.write(data);
  }

  /** Stops reading. Idempotent; the owner ends its socket on the 'end' event. */
  close(reason: string, error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.offChunk();
    this.offEnd();
    this.sink.removeListener('drain', this.onDrain);
    this.output.removeReader();
    this.safeEmit('end', reason, error);
  }
}
