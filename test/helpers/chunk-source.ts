// A ChunkSource that tests fill by hand: what OutputReader walks, without a feed or a muxer.

import type { Chunk, ChunkLogEvents } from '../../src/streams/chunk-log.js';
import type { ChunkSource } from '../../src/streams/output-reader.js';
import { TypedEmitter } from '../../src/typed-emitter.js';

export class FakeChunkSource extends TypedEmitter<ChunkLogEvents> implements ChunkSource {
  readonly id = 'fake.flv';
  private readonly chunks: Chunk[] = [];
  private produced = 0;
  private join: number | undefined;
  readers = 0;
  bytesServed = 0;
  chunksDropped = 0;
  readerSkips = 0;

  private readonly headerText: string;

  constructor(headerText = 'HEAD') {
    super();
    this.headerText = headerText;
  }

  header(): Buffer {
    return Buffer.from(this.headerText);
  }
  joinSeq(): number | undefined {
    return this.join;
  }
  at(seq: number): Chunk | undefined {
    return this.chunks[seq];
  }
  get headSeq(): number {
    return this.chunks.length;
  }
  get firstSeq(): number {
    return 0;
  }
  get producedByteCount(): number {
    return this.produced;
  }
  countServed(bytes: number): void {
    this.bytesServed += bytes;
  }
  addReader(): void {
    this.readers++;
  }
  removeReader(): void {
    this.readers--;
  }
  /** Ends the output, as a ChunkLog does when its feed or file ends. */
  end(reason: string): void {
    this.safeEmit('end', reason);
  }

  /** Appends a chunk and announces it, as a MuxedOutput does; a joinable one becomes the join point. */
  push(data: string | Buffer, joinable = false, video = false): void {
    const chunk: Chunk = {
      seq: this.chunks.length,
      data: typeof data === 'string' ? Buffer.from(data) : data,
      joinable,
      startByte: this.produced,
      dts90k: 0,
      video,
    };
    this.produced += chunk.data.length;
    this.chunks.push(chunk);
    if (joinable) this.join = chunk.seq;
    this.safeEmit('chunk', chunk);
  }
}
