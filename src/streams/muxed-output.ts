// One output format of one stream, muxed once and shared by every reader ("mux once, send
// many"): a log of immutable chunks (one per frame) that readers walk with a cursor.

import type { Feed } from '../feed/feed.js';
import type { StreamMuxer } from '../media/demuxer.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import { TypedEmitter } from '../typed-emitter.js';
import { FeedcastError } from '../errors.js';
import { throttledWarner } from '../observability/throttled-warn.js';

export interface Chunk {
  readonly seq: number;
  readonly data: Buffer;
  /** A reader may start here (the chunk begins a video keyframe, or the feed is audio-only). */
  readonly joinable: boolean;
  /** Bytes produced before this chunk: lag in bytes is measured against it. */
  readonly startByte: number;
  readonly dts90k: number;
  /**
   * The chunk carries a video frame. Coalesced writes (OutputReader) go out at once for it and
   * take along whatever waits; other chunks wait for it up to the coalescing interval.
   */
  readonly video?: boolean;
}

/** The newest join point at or before `before90k`, else the oldest one in `chunks` (Preroll). */
export function prerollJoin(chunks: readonly Chunk[], before90k: number): number | undefined {
  let oldest: number | undefined;
  for (let i = chunks.length - 1; i >= 0; i--) {
    const c = chunks[i];
    if (c === undefined || !c.joinable) continue;
    if (c.dts90k <= before90k) return c.seq;
    oldest = c.seq;
  }
  return oldest;
}

export type MuxedOutputEvents = {
  chunk: [Chunk];
  /** No more chunks will come (feed gone or publisher did not come back). */
  end: [string];
  /** The last reader left and the output released its feed subscription. */
  dispose: [];
};

export interface MuxedOutputOptions {
  /** Bytes behind the newest chunk that are kept for lagging readers: read at every trim (reload). */
  settings: OutputSettings;
  /** Which of the feed's tracks this output carries (NoAudio / NoVideo). */
  trackFilter?: (track: Track) => boolean;
  /**
   * Write coalescing for readers on TCP sockets (OutputReader): gather this many ms of chunks and
   * write them in one batch; 0 = once per event-loop turn; undefined = one write per chunk.
   */
  writeCoalesceMs?: number | undefined;
}

/** Settings shared by every output of a registry and read when used, so that a reload applies at once. */
export interface OutputSettings {
  /** `ReaderMaxQueue`: bytes behind the newest chunk kept for lagging readers. */
  readonly retainBytes: number;
}

export type MuxerFactory = (tracks: readonly Track[]) => StreamMuxer;

export class MuxedOutput extends TypedEmitter<MuxedOutputEvents> {
  readonly id: string;
  readonly feed: Feed;
  private readonly makeMuxer: MuxerFactory;
  private readonly options: MuxedOutputOptions;
  private readonly log: Logger;
  private muxer: StreamMuxer | undefined;
  private tracks: readonly Track[] = [];
  private chunks: Chunk[] = [];
  private nextSeq = 0;
  private producedBytes = 0;
  private lastJoinSeq: number | undefined;
  private readerCount = 0;
  private readonly unsubscribe: (() => void)[] = [];
  private ended = false;
  bytesServed = 0;
  /** See MuxedOutputOptions.writeCoalesceMs. */
  readonly writeCoalesceMs: number | undefined;
  /** Chunks skipped by readers that fell behind, and how many times readers skipped. */
  chunksDropped = 0;
  readerSkips = 0;
  /** Frames this format could not carry (FrameTooLargeError and other mux errors): dropped, not the output. */
  framesTooLarge = 0;
  private readonly warnMux: (message: string) => void;

  constructor(id: string, feed: Feed, makeMuxer: MuxerFactory, options: MuxedOutputOptions, log: Logger) {
    super(log);
    this.id = id;
    this.feed = feed;
    this.makeMuxer = makeMuxer;
    this.options = options;
    this.writeCoalesceMs = options.writeCoalesceMs;
    this.log = log.child({ output: id });
    this.warnMux = throttledWarner(this.log);
    this.unsubscribe.push(
      feed.on('tracks', (tracks) => this.onTracks(tracks)),
      feed.on('frame', (frame) => this.onFrame(frame)),
      feed.on('idle', () => this.finish('the publisher left and did not come back')),
      feed.on('close', () => this.finish('the feed was removed')),
    );
    if (feed.tracks.length > 0) {
      this.onTracks(feed.tracks);
      // Instant start: the feed's recent frames (its GOP cache and a few seconds before it) become
      // the first chunks, so a first reader starts at once, at the newest keyframe, and a reader
      // that wants a backlog (prerollJoinSeq) has one.
      for (const frame of feed.recentFrames()) this.onFrame(frame);
    }
  }

  get contentType(): string | undefined {
    return this.muxer?.contentType;
  }
  get isEnded(): boolean {
    return this.ended;
  }
  get carriedTracks(): readonly Track[] {
    return this.tracks;
  }
  get readers(): number {
    return this.readerCount;
  }
  /** Sequence number the next chunk will get. */
  get headSeq(): number {
    return this.nextSeq;
  }
  get firstSeq(): number {
    return this.chunks[0]?.seq ?? this.nextSeq;
  }
  get producedByteCount(): number {
    return this.producedBytes;
  }

  /** What a new reader receives before any chunk; undefined until the feed has tracks. */
  header(): Buffer | undefined {
    return this.muxer?.header();
  }

  /** The newest chunk a reader may start at, if any is retained. */
  joinSeq(): number | undefined {
    return this.lastJoinSeq;
  }

  /**
   * Where a reader with `Preroll` starts (ffserver ref §3.4): the newest join point at least
   * `seconds` of media before the newest chunk, else the oldest one still kept (retention is
   * ReaderMaxQueue bytes; a new output holds only the feed's GOP cache).
   */
  prerollJoinSeq(seconds: number): number | undefined {
    const newest = this.chunks.at(-1);
    if (seconds <= 0 || newest === undefined) return this.lastJoinSeq;
    const before90k = newest.dts90k - seconds * 90_000;
    return prerollJoin(this.chunks, before90k) ?? this.lastJoinSeq;
  }

  at(seq: number): Chunk | undefined {
    const first = this.chunks[0];
    if (first === undefined) return undefined;
    return this.chunks[seq - first.seq];
  }

  addReader(): void {
    this.readerCount++;
  }

  removeReader(): void {
    this.readerCount--;
    if (this.readerCount <= 0) this.dispose();
  }

  private onTracks(feedTracks: readonly Track[]): void {
    const filter = this.options.trackFilter;
    const tracks = filter === undefined ? feedTracks : feedTracks.filter(filter);
    this.tracks = tracks;
    if (this.muxer === undefined) {
      this.muxer = this.makeMuxer(tracks);
      return;
    }
    const inline = this.muxer.updateTracks(tracks);
    if (inline !== undefined && inline.length > 0) this.append(inline, false, this.chunks.at(-1)?.dts90k ?? 0, true);
  }

  private onFrame(frame: Frame): void {
    if (this.muxer === undefined || this.ended) return;
    const track = this.tracks.find((t) => t.id === frame.trackId);
    if (track === undefined) return;
    let data: Buffer;
    try {
      data = this.muxer.mux(frame);
    } catch (err) {
      // This runs inside the feed's frame event: a frame the format cannot carry (over FLV's 24-bit
      // tag size, say) is dropped and counted; it must not unwind into the feed or other outputs.
      this.framesTooLarge++;
      if (err instanceof FeedcastError) this.warnMux(`frame dropped (${err.code}): ${err.message}`);
      else this.log.error('muxer failed on a frame; frame dropped', { err });
      return;
    }
    if (data.length === 0) return;
    // Readers join at a video keyframe when this output carries video (a VP8 feed's TS carries its audio only).
    const muxer = this.muxer;
    const hasVideo = this.tracks.some((t) => t.kind === 'video' && (muxer.carries?.(t) ?? true));
    const joinable = hasVideo ? track.kind === 'video' && frame.keyframe : true;
    this.append(data, joinable, frame.dts90k, track.kind === 'video');
  }

  private append(data: Buffer, joinable: boolean, dts90k: number, video: boolean): void {
    const chunk: Chunk = { seq: this.nextSeq++, data, joinable, startByte: this.producedBytes, dts90k, video };
    this.producedBytes += data.length;
    this.chunks.push(chunk);
    if (joinable) this.lastJoinSeq = chunk.seq;
    this.trim();
    this.safeEmit('chunk', chunk);
  }

  /** Keeps everything from the newest join point, and whatever lies within retainBytes of the head. */
  private trim(): void {
    const join = this.lastJoinSeq ?? this.nextSeq;
    let drop = 0;
    for (const c of this.chunks) {
      if (c.seq >= join || this.producedBytes - c.startByte <= this.options.settings.retainBytes) break;
      drop++;
    }
    // Splice in batches: shifting one element per frame is O(n) each time.
    if (drop > 64 || (drop > 0 && drop === this.chunks.length)) this.chunks.splice(0, drop);
    else if (drop > 0 && this.chunks.length > 4096) this.chunks.splice(0, drop);
  }

  private finish(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.log.debug('output ended', { reason });
    this.safeEmit('end', reason);
  }

  /** Releases the feed subscription. Idempotent. */
  dispose(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    this.chunks = [];
    this.finish('output closed');
    this.safeEmit('dispose');
  }
}
