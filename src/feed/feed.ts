// The hub of one live input: its tracks, its clock, the GOP cache (everything since the last
// video keyframe, so a new reader starts at once; with several video tracks, since the oldest of
// their last keyframes) and its listeners. A publisher writes frames through a PublisherSession;
// write() is synchronous and never waits for a reader.

import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import { sameTrackConfig } from '../media/track.js';
import type { Logger } from '../observability/logger.js';
import { RateMeter } from '../observability/rate-meter.js';
import { TypedEmitter } from '../typed-emitter.js';
import { FeedClock, type SharedClockOrigin } from './feed-clock.js';
import { FeedBusyError, FrameTooLargeError } from '../errors.js';
import { countLengthPrefixed, MAX_NALS_PER_FRAME } from '../formats/h264/nal.js';
import { throttledWarner } from '../observability/throttled-warn.js';

export type FeedEvents = {
  /** The track list changed (first publisher, or a publisher with other parameters). */
  tracks: [readonly Track[]];
  frame: [Frame];
  publisher: [PublisherInfo | undefined];
  /** The publisher that left, and why (after `publisher` with undefined). */
  unpublished: [PublisherInfo, string];
  /** No publisher came back within the grace period: readers should end. */
  idle: [];
  close: [];
};

export interface PublisherInfo {
  /** 'http', 'rtmp', 'demo' ... */
  readonly protocol: string;
  readonly remoteAddress: string;
  readonly startedAt: Date;
}

/** Why a stand-in stopped writing. */
export type StandInEnd = 'publisher started' | 'stopped';

export interface FeedOptions {
  /** A publisher silent this long may be replaced by a newcomer. */
  publisherTimeoutMs: number;
  /** How long readers wait for a publisher to come back before they are ended. */
  publisherGraceMs: number;
  /** Bounds of the GOP cache: past these the cache is dropped until the next keyframe. */
  maxGopBytes?: number;
  maxGopFrames?: number;
}

export interface FeedStats {
  framesIn: number;
  bytesIn: number;
  keyframesIn: number;
  publishers: number;
  /** Frames dropped at ingest before a session's first keyframe. */
  framesSkippedBeforeKeyframe: number;
  /** Frames dropped at ingest for being over a per-frame cap (FrameTooLargeError). */
  framesTooLarge: number;
}

const DEFAULT_MAX_GOP_BYTES = 32 * 1024 * 1024;
const DEFAULT_MAX_GOP_FRAMES = 3000;
/**
 * How much of the past the feed keeps for readers that start with a backlog (recentFrames):
 * ffmpeg's CLIs analyse 5 s of an MPEG-TS input before their first frame (docs/performance.md).
 */
export const RECENT_SECONDS = 6;

export class Feed extends TypedEmitter<FeedEvents> {
  /** The configured name (`feed1.ffm`). */
  readonly name: string;
  /** The name in URLs (`feed1`). */
  readonly key: string;
  private readonly options: FeedOptions;
  private readonly log: Logger;
  private readonly clock = new FeedClock();
  private currentTracks: Track[] = [];
  private gop: Frame[] = [];
  private gopBytes = 0;
  /** The last RECENT_SECONDS or more, from a start point (single-video and audio-only feeds). */
  private recent: Frame[] = [];
  private recentBytes = 0;
  /** Indices in `recent` of its start points (video keyframes); unused for audio-only feeds. */
  private recentStarts: number[] = [];
  /** Video tracks of the feed: with more than one, the GOP cache keeps every track's last keyframe. */
  private videoTrackCount = 0;
  /** Multi-video feeds: index in `gop` of each video track's last keyframe. */
  private readonly keyIndex = new Map<number, number>();
  /** The video track whose keyframe spacing is keyframeInterval90k (the first one). */
  private intervalTrackId: number | undefined;
  private session: PublisherSession | undefined;
  /**
   * The offline slate while the feed waits for its publisher: it writes only until a real publisher's
   * session starts (its first keyframe), and is neither `publisher` nor counted as one.
   */
  private standInSession: PublisherSession | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The server is stopping: a publisher that leaves now is not waited for (no grace period). */
  private stopping = false;
  readonly stats: FeedStats = {
    framesIn: 0,
    bytesIn: 0,
    keyframesIn: 0,
    publishers: 0,
    framesSkippedBeforeKeyframe: 0,
    framesTooLarge: 0,
  };
  readonly inputRate = new RateMeter();
  /** Input bit rate per feed track id. */
  readonly trackRates = new Map<number, RateMeter>();
  readonly createdAt = new Date();
  lastFrameAt: number | undefined;
  private lastKeyframeDts: number | undefined;
  /** Feed time between the last two video keyframes (the GOP length), once known. */
  keyframeInterval90k: number | undefined;

  private readonly warnTooLarge: (message: string) => void;

  constructor(name: string, key: string, options: FeedOptions, log: Logger) {
    super(log);
    this.name = name;
    this.key = key;
    this.options = options;
    this.log = log.child({ feed: key });
    this.warnTooLarge = throttledWarner(this.log);
  }

  /** @internal a publisher's frame was over a per-frame cap: dropped, counted, logged once a second. */
  frameTooLarge(err: FrameTooLargeError): void {
    this.stats.framesTooLarge++;
    this.warnTooLarge(`frame dropped (${err.code}): ${err.message}`);
  }

  get tracks(): readonly Track[] {
    return this.currentTracks;
  }

  get publisher(): PublisherInfo | undefined {
    return this.session?.info;
  }

  /** The stand-in (offline slate) writing now, if any. */
  get standIn(): PublisherInfo | undefined {
    return this.standInSession?.info;
  }

  /**
   * Attaches a stand-in publisher (the offline slate) while no real publisher has started: it ends
   * when a real publisher's first keyframe arrives, when the feed closes, or by its own end().
   */
  attachStandIn(info: PublisherInfo, nowMs = Date.now()): PublisherSession {
    if (this.closed) throw new FeedBusyError(this.key, 'the feed has been removed');
    this.standInSession?.end('replaced by another stand-in');
    const session = new PublisherSession(this, info, nowMs);
    this.standInSession = session;
    this.clock.startSession();
    this.log.info('stand-in attached', { protocol: info.protocol });
    return session;
  }

  /** Whether `session`'s tracks wait for its first keyframe: a stand-in other than it still writes. */
  holdsTracksOf(session: PublisherSession): boolean {
    return this.standInSession !== undefined && this.standInSession !== session;
  }

  /** @internal a publisher session's first frame (a video keyframe) is about to be written. */
  sessionStarted(session: PublisherSession): void {
    if (session === this.standInSession) return;
    this.standInSession?.end('publisher started');
    this.clock.startSession(session.clockOrigin);
  }

  get clockRepairs(): Readonly<{ nonMonotonic: number; jumps: number }> {
    return this.clock.repairs;
  }

  get hasVideo(): boolean {
    return this.currentTracks.some((t) => t.kind === 'video');
  }

  /**
   * What a new reader gets first, oldest first, starting on a video keyframe: the frames since the
   * last video keyframe. With several video tracks (variants), the frames since the oldest of the
   * tracks' last keyframes, so every track's last keyframe is in it; `videoTrackId` narrows that to
   * the frames since that track's last keyframe (empty when it has had none), for a reader of one
   * variant. The array is the cache itself: iterate it at once, do not keep it.
   */
  gopCache(videoTrackId?: number): readonly Frame[] {
    if (videoTrackId === undefined || this.videoTrackCount <= 1) return this.gop;
    const at = this.keyIndex.get(videoTrackId);
    if (at === undefined) return [];
    return at === 0 ? this.gop : this.gop.slice(at);
  }

  /**
   * The newest start point at least RECENT_SECONDS before the newest frame and everything after it
   * (less when the feed is younger or past the GOP cache's bounds), oldest first, for a reader that
   * wants a backlog. Feeds with several video tracks keep only their GOP cache. The array is the
   * cache itself: iterate it at once, do not keep it.
   */
  recentFrames(): readonly Frame[] {
    return this.videoTrackCount > 1 ? this.gop : this.recent;
  }

  /**
   * Why a new publisher would be refused now (the feed is gone, or its publisher still sends), or
   * undefined when one may attach (a silent publisher is taken over).
   */
  busyReason(nowMs = Date.now()): string | undefined {
    if (this.closed) return 'the feed has been removed';
    const current = this.session;
    if (current === undefined || nowMs - current.lastDataAt >= this.options.publisherTimeoutMs) return undefined;
    // A relay from another node of the cluster yields to a publisher on this node (cluster/relay.ts stops).
    if (current.info.protocol === 'relay') return undefined;
    // The refusal goes to the client: it says how and since when, never from where (issue 25 item 9).
    return `already published by ${current.info.protocol} since ${current.info.startedAt.toISOString()}`;
  }

  /**
   * Attaches a publisher. One publisher per feed: a second one is refused with FeedBusyError
   * while the first is still sending, but takes over at once if the first has gone silent.
   */
  attachPublisher(info: PublisherInfo, nowMs = Date.now(), clockOrigin?: SharedClockOrigin): PublisherSession {
    const busy = this.busyReason(nowMs);
    if (busy !== undefined) throw new FeedBusyError(this.key, busy);
    const current = this.session;
    if (current !== undefined && current.info.protocol === 'relay') {
      this.log.info('a publisher on this node replaces the relay from another node', { new: info.remoteAddress });
      current.end('replaced by a publisher on this node');
    } else if (current !== undefined) {
      const silentMs = nowMs - current.lastDataAt;
      this.log.warn('publisher silent, new publisher takes over', {
        silentMs,
        old: current.info.remoteAddress,
        new: info.remoteAddress,
      });
      current.end('replaced by a new publisher after going silent');
    }
    if (this.graceTimer !== undefined) {
      clearTimeout(this.graceTimer);
      this.graceTimer = undefined;
    }
    // The feed clock starts the session at its first frame (sessionStarted): a stand-in may write until then.
    const session = new PublisherSession(this, info, nowMs, clockOrigin);
    this.session = session;
    this.stats.publishers++;
    this.log.info('publisher attached', { protocol: info.protocol, from: info.remoteAddress });
    this.safeEmit('publisher', info);
    return session;
  }

  /** @internal called by PublisherSession.end() */
  detach(session: PublisherSession, reason: string): void {
    if (session === this.standInSession) {
      this.standInSession = undefined;
      this.log.info('stand-in left', { reason });
      return;
    }
    if (this.session !== session) return;
    this.session = undefined;
    this.clearGop();
    const waiting = !this.closed && !this.stopping;
    this.log.info('publisher left', waiting ? { reason, graceMs: this.options.publisherGraceMs } : { reason });
    this.safeEmit('publisher', undefined);
    this.safeEmit('unpublished', session.info, reason);
    if (waiting) {
      this.graceTimer = setTimeout(() => {
        this.graceTimer = undefined;
        if (this.session === undefined) {
          this.log.info('no publisher within the grace period, ending readers');
          this.safeEmit('idle');
        }
      }, this.options.publisherGraceMs);
      this.graceTimer.unref();
    }
  }

  /** @internal maps a publisher's track list onto the feed's, keeping ids stable by kind order. */
  mapTracks(incoming: readonly Track[]): Map<number, number> {
    const mapping = new Map<number, number>();
    const next = [...this.currentTracks];
    const used = new Set<number>();
    let changed = false;
    for (const t of incoming) {
      const existing = next.find((f) => f.kind === t.kind && !used.has(f.id));
      const id = existing?.id ?? nextFreeId(next);
      used.add(id);
      mapping.set(t.id, id);
      const mapped: Track = { ...t, id };
      if (existing === undefined) {
        next.push(mapped);
        changed = true;
      } else if (!sameTrackConfig(existing, mapped)) {
        next[next.indexOf(existing)] = mapped;
        changed = true;
      }
    }
    if (changed) {
      this.currentTracks = next.sort((a, b) => a.id - b.id);
      const videos = this.currentTracks.filter((t) => t.kind === 'video');
      // The cache's layout depends on the number of video tracks: start it again when that changes.
      if (videos.length !== this.videoTrackCount) this.clearGop();
      this.videoTrackCount = videos.length;
      this.intervalTrackId = videos[0]?.id;
      this.log.info('tracks', { tracks: this.currentTracks.map((t) => `${t.id}:${t.codec}`).join(',') });
      this.safeEmit('tracks', this.currentTracks);
    }
    return mapping;
  }

  /** @internal places a mapped frame on the feed clock and fans it out. */
  writeMapped(trackId: number, frame: Frame, nowMs: number): void {
    const track = this.currentTracks.find((t) => t.id === trackId);
    if (track === undefined) return;
    const [dts90k, pts90k] = this.clock.place(trackId, track.kind, frame.dts90k, frame.pts90k, nowMs);
    const out: Frame = { trackId, dts90k, pts90k, keyframe: frame.keyframe, data: frame.data };
    this.stats.framesIn++;
    this.stats.bytesIn += out.data.length;
    this.inputRate.add(out.data.length, nowMs);
    let trackRate = this.trackRates.get(trackId);
    if (trackRate === undefined) {
      trackRate = new RateMeter();
      this.trackRates.set(trackId, trackRate);
    }
    trackRate.add(out.data.length, nowMs);
    this.lastFrameAt = nowMs;
    this.cache(out, track.kind);
    this.safeEmit('frame', out);
  }

  private cache(frame: Frame, kind: 'video' | 'audio'): void {
    if (this.videoTrackCount <= 1) this.remember(frame, kind);
    if (this.videoTrackCount === 0) return; // audio-only: any frame is a start point, nothing to cache
    if (kind === 'video' && frame.keyframe) {
      this.stats.keyframesIn++;
      if (frame.trackId === this.intervalTrackId) {
        if (this.lastKeyframeDts !== undefined) this.keyframeInterval90k = frame.dts90k - this.lastKeyframeDts;
        this.lastKeyframeDts = frame.dts90k;
      }
      if (this.videoTrackCount === 1) {
        this.gop = [];
        this.gopBytes = 0;
      } else {
        this.keyIndex.set(frame.trackId, this.gop.length);
        this.trimToOldestKeyframe();
      }
    } else if (this.gop.length === 0) {
      return; // no keyframe yet: nothing a new reader could start from
    }
    this.gop.push(frame);
    this.gopBytes += frame.data.length;
    const maxBytes = this.options.maxGopBytes ?? DEFAULT_MAX_GOP_BYTES;
    const maxFrames = this.options.maxGopFrames ?? DEFAULT_MAX_GOP_FRAMES;
    if (this.gopBytes > maxBytes || this.gop.length > maxFrames) this.overflow();
  }

  /** Multi-video feeds: drops what comes before the oldest of the video tracks' last keyframes. */
  private trimToOldestKeyframe(): void {
    let start = Infinity;
    for (const at of this.keyIndex.values()) start = Math.min(start, at);
    if (start === Infinity || start === 0) return;
    for (let i = 0; i < start; i++) this.gopBytes -= this.gop[i]?.data.length ?? 0;
    this.gop.splice(0, start);
    for (const [id, at] of this.keyIndex) this.keyIndex.set(id, at - start);
  }

  /**
   * The cache went past its bounds. With several video tracks, the track whose last keyframe is
   * the oldest (a stalled variant, a long GOP) is forgotten first; otherwise the cache is dropped
   * and new readers wait for the next keyframe.
   */
  private overflow(): void {
    const bytes = this.gopBytes;
    const frames = this.gop.length;
    const maxBytes = this.options.maxGopBytes ?? DEFAULT_MAX_GOP_BYTES;
    const maxFrames = this.options.maxGopFrames ?? DEFAULT_MAX_GOP_FRAMES;
    while (this.keyIndex.size > 1 && (this.gopBytes > maxBytes || this.gop.length > maxFrames)) {
      let oldest: number | undefined;
      let oldestAt = Infinity;
      for (const [id, at] of this.keyIndex) {
        if (at < oldestAt) {
          oldest = id;
          oldestAt = at;
        }
      }
      if (oldest === undefined) break;
      this.keyIndex.delete(oldest);
      this.trimToOldestKeyframe();
    }
    if (this.gopBytes > maxBytes || this.gop.length > maxFrames) this.clearGop();
    this.log.warn('GOP too long for the cache; new readers wait for the next keyframe', { bytes, frames });
  }

  private clearGop(): void {
    this.gop = [];
    this.gopBytes = 0;
    this.keyIndex.clear();
    this.recent = [];
    this.recentBytes = 0;
    this.recentStarts = [];
  }

  /** Keeps `frame` in the recent window, then drops what lies before the window's start point. */
  private remember(frame: Frame, kind: 'video' | 'audio'): void {
    const audioOnly = this.videoTrackCount === 0;
    const start = audioOnly || (kind === 'video' && frame.keyframe);
    if (this.recent.length === 0 && !start) return;
    if (start && !audioOnly) this.recentStarts.push(this.recent.length);
    this.recent.push(frame);
    this.recentBytes += frame.data.length;
    const maxBytes = this.options.maxGopBytes ?? DEFAULT_MAX_GOP_BYTES;
    const maxFrames = this.options.maxGopFrames ?? DEFAULT_MAX_GOP_FRAMES;
    if (!start && this.recentBytes <= maxBytes && this.recent.length <= maxFrames) return;
    // The newest start point at least RECENT_SECONDS old becomes the first frame.
    const cutoff = start ? frame.dts90k - RECENT_SECONDS * 90_000 : -Infinity;
    const nextStart = (at: number): number | undefined =>
      audioOnly ? (at + 1 < this.recent.length ? at + 1 : undefined) : this.recentStarts.find((s) => s > at);
    let drop = 0;
    let bytes = this.recentBytes;
    const dropTo = (at: number): void => {
      for (let i = drop; i < at; i++) bytes -= this.recent[i]?.data.length ?? 0;
      drop = at;
    };
    for (
      let next = nextStart(0);
      next !== undefined && (this.recent[next]?.dts90k ?? Infinity) <= cutoff;
      next = nextStart(next)
    ) {
      dropTo(next);
    }
    // Bounded as the GOP cache is: past the bounds the oldest start points go first, and a GOP
    // longer than the bounds is forgotten until the next keyframe.
    while (bytes > maxBytes || this.recent.length - drop > maxFrames) {
      const next = nextStart(drop);
      if (next === undefined) {
        dropTo(this.recent.length);
        break;
      }
      dropTo(next);
    }
    // Audio-only feeds start anywhere: drop in batches rather than one frame per frame.
    if (audioOnly && drop < 32 && this.recentBytes <= maxBytes && this.recent.length <= maxFrames) return;
    if (drop === 0) return;
    this.recentBytes = bytes;
    this.recent.splice(0, drop);
    this.recentStarts = this.recentStarts.filter((at) => at >= drop).map((at) => at - drop);
    if (this.recent.length === 0) this.recentBytes = 0;
  }

  /** The server is stopping: from now on a leaving publisher starts no grace period (and the log does not say it waits). */
  beginStop(): void {
    this.stopping = true;
  }

  /** Ends the publisher and tells every listener the feed is gone. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.standInSession?.end('feed closed');
    this.session?.end('feed closed');
    this.safeEmit('close');
  }
}

function nextFreeId(tracks: readonly Track[]): number {
  let id = 0;
  while (tracks.some((t) => t.id === id)) id++;
  return id;
}

export type PublisherSessionEvents = { end: [string] };

/**
 * One publisher's connection to a feed. Maps the publisher's track ids to the feed's, drops what
 * comes before its first video keyframe, and hands frames to the feed.
 */
export class PublisherSession extends TypedEmitter<PublisherSessionEvents> {
  readonly info: PublisherInfo;
  private readonly feed: Feed;
  private mapping = new Map<number, number>();
  /** Tracks held back while a stand-in still writes: mapped onto the feed at this session's first keyframe. */
  private pendingTracks: readonly Track[] | undefined;
  private incomingKinds = new Map<number, 'video' | 'audio'>();
  /** Incoming track ids whose frames are length-prefixed NAL units (H.264, H.265). */
  private nalTracks = new Set<number>();
  private started = false;
  /** Input DTS of the session's first frame: audio from before it is dropped. */
  private startDts = 0;
  private hasVideo = false;
  private ended = false;
  /** The newest DTS delivered (90 kHz): media time credits lastDataAt only when it moves on. */
  private newestDts: number | undefined;
  /**
   * Wall time the publisher's media covers: moved on by the media time of its frames (twice it, so
   * a publisher whose clock runs a little slow is never taken for silent), never past now. Bytes do
   * not count (issue 25: one byte every 4 s kept PublisherTimeout from firing), nor do frames
   * whose time stands still.
   */
  lastDataAt: number;
  bytesIn = 0;
  framesIn = 0;

  /** Shared with the other feeds this publisher writes (simulcast layers): see SharedClockOrigin. */
  readonly clockOrigin: SharedClockOrigin | undefined;

  constructor(feed: Feed, info: PublisherInfo, nowMs: number, clockOrigin?: SharedClockOrigin) {
    super();
    this.feed = feed;
    this.info = info;
    this.clockOrigin = clockOrigin;
    this.lastDataAt = nowMs;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Counts raw bytes received (silence is measured in media time, by write()). */
  touch(bytes: number, _nowMs = Date.now()): void {
    this.bytesIn += bytes;
  }

  /** Credits the publisher with the media time `dts90k` adds (see lastDataAt). */
  private creditMediaTime(dts90k: number, nowMs: number): void {
    const newest = this.newestDts;
    if (newest === undefined || dts90k < newest - 10 * 90_000) {
      // The first frame, or a timeline that started again: it counts as now.
      this.newestDts = dts90k;
      this.lastDataAt = nowMs;
      return;
    }
    if (dts90k <= newest) return;
    this.newestDts = dts90k;
    this.lastDataAt = Math.min(nowMs, this.lastDataAt + (2 * (dts90k - newest)) / 90);
  }

  setTracks(tracks: readonly Track[]): void {
    if (this.ended) return;
    if (!this.started && this.feed.holdsTracksOf(this)) {
      // The offline slate goes on until this publisher's first keyframe; its tracks (codec config) change the
      // feed's then, not while the slate's pictures still need the slate's config.
      this.pendingTracks = tracks;
      this.mapping = new Map();
    } else {
      this.pendingTracks = undefined;
      this.mapping = this.feed.mapTracks(tracks);
    }
    this.incomingKinds = new Map(tracks.map((t) => [t.id, t.kind]));
    this.nalTracks = new Set(tracks.filter((t) => t.codec === 'h264' || t.codec === 'h265').map((t) => t.id));
    this.hasVideo = tracks.some((t) => t.kind === 'video');
  }

  write(frame: Frame, nowMs = Date.now()): void {
    if (this.ended) return;
    if (!this.incomingKinds.has(frame.trackId)) return;
    if (this.nalTracks.has(frame.trackId)) {
      // Every ingest path (TS, FLV/RTMP, RTP, WHIP) passes here: a frame of a million tiny NAL units
      // would cost every output and reader; it is dropped, the publisher goes on.
      const nals = countLengthPrefixed(frame.data, MAX_NALS_PER_FRAME + 1);
      if (nals > MAX_NALS_PER_FRAME) {
        this.feed.frameTooLarge(new FrameTooLargeError('h26x: NAL units in one access unit', nals, MAX_NALS_PER_FRAME));
        return;
      }
    }
    if (!this.started) {
      // A session starts at its first video keyframe: readers cannot use what comes before.
      const isVideoKey = this.incomingKinds.get(frame.trackId) === 'video' && frame.keyframe;
      if (this.hasVideo && !isVideoKey) {
        this.feed.stats.framesSkippedBeforeKeyframe++;
        return;
      }
      this.started = true;
      this.startDts = frame.dts90k;
      this.feed.sessionStarted(this);
      if (this.pendingTracks !== undefined) {
        this.mapping = this.feed.mapTracks(this.pendingTracks);
        this.pendingTracks = undefined;
      }
    } else if (frame.dts90k < this.startDts && this.incomingKinds.get(frame.trackId) !== 'video') {
      return; // audio from before the session's first picture
    }
    const feedTrackId = this.mapping.get(frame.trackId);
    if (feedTrackId === undefined) return;
    this.framesIn++;
    this.creditMediaTime(frame.dts90k, nowMs);
    this.feed.writeMapped(feedTrackId, frame, nowMs);
  }

  /** Ends this publisher's session (connection closed, replaced, feed removed). Idempotent. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.feed.detach(this, reason);
    this.safeEmit('end', reason);
  }
}
