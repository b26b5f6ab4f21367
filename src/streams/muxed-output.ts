// One output format of one stream, muxed once and shared by every reader ("mux once, send
// many"): the feed's frames, each muxed once into a chunk of a ChunkLog that readers walk.

import type { Feed } from '../feed/feed.js';
import type { StreamMuxer } from '../media/demuxer.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import { FeedcastError } from '../errors.js';
import { throttledWarner } from '../observability/throttled-warn.js';
import { ChunkLog, type ChunkLogOptions } from './chunk-log.js';

export interface MuxedOutputOptions extends ChunkLogOptions {
  /** Which of the feed's tracks this output carries (NoAudio / NoVideo). */
  trackFilter?: (track: Track) => boolean;
  /** Its readers never ask for a backlog (a cluster relay): it starts with the GOP cache, not the feed's recent seconds. */
  gopOnly?: boolean;
}

export type MuxerFactory = (tracks: readonly Track[]) => StreamMuxer;

export class MuxedOutput extends ChunkLog {
  readonly feed: Feed;
  private readonly makeMuxer: MuxerFactory;
  private readonly trackFilter: ((track: Track) => boolean) | undefined;
  private muxer: StreamMuxer | undefined;
  private tracks: readonly Track[] = [];
  private readonly unsubscribe: (() => void)[] = [];
  /** Frames this format could not carry (FrameTooLargeError and other mux errors): dropped, not the output. */
  framesTooLarge = 0;
  private readonly warnMux: (message: string) => void;

  constructor(id: string, feed: Feed, makeMuxer: MuxerFactory, options: MuxedOutputOptions, log: Logger) {
    super(id, options, log);
    this.feed = feed;
    this.makeMuxer = makeMuxer;
    this.trackFilter = options.trackFilter;
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
      for (const frame of options.gopOnly === true ? feed.gopCache() : feed.recentFrames()) this.onFrame(frame);
    }
  }

  get contentType(): string | undefined {
    return this.muxer?.contentType;
  }
  get carriedTracks(): readonly Track[] {
    return this.tracks;
  }

  header(): Buffer | undefined {
    return this.muxer?.header();
  }

  /**
   * Where a reader with `Preroll` starts (ffserver ref §3.4): the newest join point at least
   * `seconds` of media before the newest chunk, else the oldest one still kept (retention is
   * ReaderMaxQueue bytes; a new output holds only the feed's GOP cache).
   */
  prerollJoinSeq(seconds: number): number | undefined {
    const newest = this.newestDts90k;
    if (seconds <= 0 || newest === undefined) return this.joinSeq();
    return this.joinAtOrBefore(newest - seconds * 90_000);
  }

  /** The last reader gone: the output lets go of its feed. */
  protected override lastReaderLeft(): void {
    this.dispose();
  }

  private onTracks(feedTracks: readonly Track[]): void {
    const filter = this.trackFilter;
    const tracks = filter === undefined ? feedTracks : feedTracks.filter(filter);
    this.tracks = tracks;
    if (this.muxer === undefined) {
      this.muxer = this.makeMuxer(tracks);
      return;
    }
    const inline = this.muxer.updateTracks(tracks);
    if (inline !== undefined && inline.length > 0) this.append(inline, false, this.newestDts90k ?? 0, true);
  }

  private onFrame(frame: Frame): void {
    if (this.muxer === undefined || this.isEnded) return;
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

  /** Releases the feed subscription. Idempotent. */
  dispose(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    this.release('output closed');
  }
}
