// Cuts one feed's frames into HLS segments and LL-HLS parts, kept in memory in a sliding window
// (RFC 8216bis 3, 4.4.4.9, 6.2.2): segments start at video keyframes once the target duration
// is reached; parts close as soon as one more frame would make them longer than PART-TARGET.

import { randomBytes } from 'node:crypto';
import type { Feed } from '../../feed/feed.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import type { Logger } from '../../observability/logger.js';
import { createPackager, type HlsContainer, type HlsSample, type Packager } from './packager.js';

export interface SegmenterOptions {
  container: HlsContainer;
  /** Segments are cut at the first keyframe at or after this duration. */
  segmentTargetMs: number;
  /** PART-TARGET: no part is longer. */
  partTargetMs: number;
  /** Complete segments kept (and listed) behind the live edge. */
  windowSegments: number;
  /** PART-HOLD-BACK in part targets: 3 (the spec's SHOULD) or down to 2 (its MUST) for less delay. */
  partHoldBackParts: number;
  noAudio: boolean;
  noVideo: boolean;
  /**
   * HLSDVRWindow: complete segments are kept (and listed) while they lie within this much of the
   * live edge, beyond `windowSegments`; undefined or 0: `windowSegments` only. A segmenter with a DVR
   * window is not stopped for want of requests (HlsOutputs.sweep).
   */
  dvrWindowMs?: number;
  /**
   * Cut a segment at every keyframe (of at least half a part target): for the renditions of an
   * encoder ladder, whose keyframes are forced on the same times, so that all renditions cut alike.
   */
  cutAtEveryKeyframe?: boolean;
}

export const DEFAULT_SEGMENTER_OPTIONS: SegmenterOptions = {
  container: 'fmp4',
  segmentTargetMs: 2000,
  partTargetMs: 500,
  windowSegments: 12,
  partHoldBackParts: 3,
  noAudio: false,
  noVideo: false,
};

export interface HlsPart {
  readonly index: number;
  readonly data: Buffer;
  readonly duration90k: number;
  /** Starts with a video keyframe (or the feed has no video). */
  readonly independent: boolean;
}

/** The frames of one track a segment holds: first and last DTS, and where the last one ends (90 kHz, feed clock). */
export interface TrackSpan {
  firstDts90k: number;
  lastDts90k: number;
  endDts90k: number;
}

/**
 * Where the older segments of a DVR window are read back from instead of being held in memory
 * (hls/dvr-store.ts: the feed's FeedFile ring). Frames come back with their feed-clock times.
 */
export interface SegmentStore {
  /**
   * Feed DTS of the oldest frame that can be read back for a while yet (a ring that overwrites
   * keeps a margin); undefined: nothing can be now.
   */
  oldestDts90k(): number | undefined;
  /** The frames of `spans` (per track, inclusive), or undefined when they are no longer held whole. */
  read(spans: ReadonlyMap<number, TrackSpan>, wallHintMs: number): Promise<HlsSample[] | undefined>;
}

export interface HlsSegment {
  readonly msn: number;
  /** Emptied when the segment is evicted (its bytes are then read back from the SegmentStore). */
  readonly parts: HlsPart[];
  duration90k: number;
  readonly startDts90k: number;
  /** EXT-X-PROGRAM-DATE-TIME: when the first frame reached the server, ms since the epoch. */
  readonly programDateMs: number;
  /** EXT-X-DISCONTINUITY before this segment (publisher reconnected or tracks changed). */
  readonly discontinuity: boolean;
  readonly initVersion: number;
  complete: boolean;
  /** What each track holds, to read the segment back from a SegmentStore once evicted. */
  readonly spans: Map<number, TrackSpan>;
  /** Bytes of its parts (kept when they are evicted: bit rates are measured over the window). */
  bytes: number;
  /** Its parts were dropped from memory: it is read back from the segmenter's store on request. */
  evicted: boolean;
}

/**
 * Shared by the renditions of one ladder or one simulcast publisher (RFC 8216bis 6.2.4: switching
 * needs aligned segments): the same keyframe gets the same media sequence number and program date
 * in every rendition, and `version` changes whenever any rendition's playlist does (their rendition
 * reports change too). A ladder's keyframes have the same DTS in every rendition; a simulcast
 * publisher's layers are encoded apart, so their keyframes for one picture match within
 * `matchWithin90k` (arrival jitter), and a layer's keyframe of its own (it was switched on, a viewer
 * asked for it) must not number a segment the others do not have.
 */
export class RenditionTimeline {
  /** Where a rendition cut, newest last (a bounded list: only the live edge is looked up). */
  private readonly cuts: { dts90k: number; msn: number }[] = [];
  private nextMsn = 0;
  anchor: { dts90k: number; wallMs: number } | undefined;
  version = 0;
  /** When a request last kept the other renditions running (not at every request). */
  siblingsTouchedAtMs = 0;

  constructor(readonly matchWithin90k = 0) {}

  private find(dts90k: number): { dts90k: number; msn: number } | undefined {
    for (let i = this.cuts.length - 1; i >= 0; i--) {
      const cut = this.cuts[i] as { dts90k: number; msn: number };
      if (Math.abs(cut.dts90k - dts90k) <= this.matchWithin90k) return cut;
    }
    return undefined;
  }

  /** The MSN of the segment starting at `dts90k`, given by the first rendition that cut there. */
  msnAt(dts90k: number, proposed: number | undefined): number {
    const known = this.find(dts90k);
    if (known !== undefined) return known.msn;
    const msn = Math.max(proposed ?? this.nextMsn, this.nextMsn);
    this.cuts.push({ dts90k, msn });
    this.nextMsn = msn + 1;
    if (this.cuts.length > 64) this.cuts.shift();
    return msn;
  }

  /** Whether a simulcast layer cut at this keyframe (a ladder's renditions cut by their own rule). */
  cutNear(dts90k: number): boolean {
    return this.matchWithin90k > 0 && this.find(dts90k) !== undefined;
  }

  /**
   * Whether a simulcast layer may cut at a keyframe no other layer has cut at: only where a common
   * keyframe is due, a segment target (less the tolerance) after the newest cut. A keyframe one
   * layer got alone (it resumed after a pause, a viewer asked for it) is not a cut.
   */
  mayCutAlone(dts90k: number, target90k: number): boolean {
    const newest = this.cuts[this.cuts.length - 1];
    return this.matchWithin90k === 0 || newest === undefined || dts90k - newest.dts90k >= target90k - this.matchWithin90k;
  }

  /**
   * Whether a rendition with no segment yet may begin at a keyframe at `dts90k`. A ladder's may begin
   * anywhere (its keyframes are everyone's); a simulcast layer begins where another layer cut, unless
   * none has cut within `quietMs90k` (it is alone, or the others stopped).
   */
  mayBeginAt(dts90k: number, quiet90k: number): boolean {
    if (this.matchWithin90k === 0 || this.find(dts90k) !== undefined) return true;
    const newest = this.cuts[this.cuts.length - 1];
    return newest === undefined || Math.abs(dts90k - newest.dts90k) > quiet90k;
  }
}

/** A playlist as sent: the body and every header, made once per (segmenter version, form). */
export interface RenderedPlaylist {
  readonly body: Buffer;
  /** Flat [name, value, ...] list for writeHead, Content-Length included. */
  readonly headers: readonly string[];
}

interface Waiter {
  check: () => boolean;
  resolve: (ok: boolean) => void;
  deadlineMs: number;
}

/**
 * How often held requests are checked for their deadline: one timer per segmenter rather than
 * one per request (1000 LL-HLS pollers hold 1000 requests, renewed at every part).
 */
const WAITER_TICK_MS = 100;

/** The earliest DTS a segment holds (any track). */
function firstDtsOf(s: HlsSegment): number {
  let first = Infinity;
  for (const span of s.spans.values()) first = Math.min(first, span.firstDts90k);
  return first;
}

/** Per-track frame duration used when a publisher leaves and the last frame's successor never comes. */
const FALLBACK_DURATION_90K = 3600;

export class Segmenter {
  /** Prefix of every URI of this instance, so caches never mix two runs' segment numbers. */
  readonly sid: string;
  readonly options: SegmenterOptions;
  private readonly feed: Feed;
  private readonly log: Logger;
  private readonly unsubscribe: (() => void)[] = [];
  private packager: Packager | undefined;
  private readonly inits = new Map<number, Buffer>();
  /** The tracks of each init version (an evicted segment is packaged again with them). */
  private readonly initTracks = new Map<number, readonly Track[]>();
  /** HLSDVRWindow: where segments older than `windowSegments` are read back from; undefined: memory. */
  private readonly store: SegmentStore | undefined;
  private initVersionNow = 0;
  private cutTrackId: number | undefined;
  private readonly pending = new Map<number, { frame: Frame; arrivedMs: number }>();
  private readonly lastDuration = new Map<number, number>();
  private current: HlsSegment | undefined;
  private partSamples: HlsSample[] = [];
  private partDuration90k = 0;
  private nextMsn = 0;
  private needDiscontinuity = false;
  private anchor: { dts90k: number; wallMs: number } | undefined;
  private waiters: Waiter[] = [];
  private waiterTimer: NodeJS.Timeout | undefined;
  private maxSegmentDurationS = 0;
  private readonly pickTracks: ((tracks: readonly Track[]) => readonly Track[]) | undefined;
  private readonly onDispose: (() => void)[] = [];
  /** Shared with the other renditions of a ladder, if this is one. */
  readonly timeline: RenditionTimeline | undefined;
  /** Changes whenever the playlist would (a part or segment added, the end): keys the rendered playlists. */
  version = 0;
  /** Rendered playlists of the current version, by form (see from-feed.ts); cleared when the version changes. */
  readonly rendered = new Map<string, RenderedPlaylist>();
  renderedVersion = -1;
  /** Playlists rendered so far (a cache miss each). */
  renders = 0;
  /** Window of segments, oldest first; the last one may be open (parts only). */
  readonly segments: HlsSegment[] = [];
  discontinuitySequence = 0;
  ended = false;
  lastRequestAt = Date.now();

  constructor(
    feed: Feed,
    options: SegmenterOptions,
    log: Logger,
    extra: {
      /** The tracks to carry, from the feed's (a ladder's feed carries every rendition). */
      pickTracks?: (tracks: readonly Track[]) => readonly Track[];
      timeline?: RenditionTimeline;
      /** Serve the DVR window's older segments from this store instead of memory. */
      store?: SegmentStore;
    } = {},
  ) {
    this.store = extra.store;
    this.feed = feed;
    this.options = options;
    this.pickTracks = extra.pickTracks;
    this.timeline = extra.timeline;
    this.log = log.child({ hls: feed.key, container: options.container });
    this.sid = Date.now().toString(36) + randomBytes(3).toString('hex');
  }

  /**
   * Subscribes to the feed and starts from its recent frames (the last 6 s from a keyframe), so the
   * first playlist of a running feed already holds the three target durations a player starts
   * back from, instead of one segment (issue 24, item 11); a new feed's first segment is ready
   * within a GOP.
   */
  start(): void {
    this.onTracks(this.feed.tracks);
    const gop = this.feed.recentFrames();
    const last = gop[gop.length - 1];
    const lastAt = this.feed.lastFrameAt ?? Date.now();
    for (const f of gop) this.onFrame(f, last === undefined ? lastAt : lastAt - (last.dts90k - f.dts90k) / 90);
    this.unsubscribe.push(
      this.feed.on('tracks', (tracks) => this.onTracks(tracks)),
      this.feed.on('frame', (frame) => this.onFrame(frame, Date.now())),
      this.feed.on('publisher', (info) => {
        if (info === undefined) this.onPublisherLeft();
      }),
      this.feed.on('idle', () => this.end('no publisher')),
      this.feed.on('close', () => this.end('feed closed')),
    );
    this.log.info('HLS segmenter started', { sid: this.sid });
  }

  /** Runs `release` when the segmenter is disposed (what it holds: a source, a ladder). */
  holdUntilDisposed(release: () => void): void {
    if (this.unsubscribe.length === 0 && this.ended) release();
    else this.onDispose.push(release);
  }

  private changed(): void {
    this.version++;
    if (this.timeline !== undefined) this.timeline.version++;
  }

  get tracks(): readonly Track[] {
    return this.packager?.tracks ?? [];
  }
  get codecs(): string | undefined {
    return this.packager?.codecs;
  }
  get partTargetS(): number {
    return this.options.partTargetMs / 1000;
  }
  /** EXT-X-TARGETDURATION: the configured target, or the longest segment seen (it never shrinks). */
  get targetDurationS(): number {
    return Math.max(Math.ceil(this.options.segmentTargetMs / 1000), this.maxSegmentDurationS);
  }
  get mediaSequence(): number {
    return this.segments[0]?.msn ?? this.nextMsn;
  }
  get completeSegments(): number {
    return this.segments.filter((s) => s.complete).length;
  }

  init(version: number): Buffer | undefined {
    return this.inits.get(version);
  }
  segment(msn: number): HlsSegment | undefined {
    const first = this.segments[0];
    return first === undefined ? undefined : this.segments[msn - first.msn];
  }
  /** The segment being filled (it has parts but no EXTINF yet). */
  get openSegment(): HlsSegment | undefined {
    const last = this.segments[this.segments.length - 1];
    return last !== undefined && !last.complete ? last : undefined;
  }

  /** Requests held until something is there (a first segment, a blocking reload, a coming part). */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves true once `check()` holds, false after `timeoutMs` (or at once if it holds now). */
  waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.waiters.push({ check, resolve, deadlineMs: Date.now() + timeoutMs });
      this.waiterTimer ??= setInterval(() => this.expireWaiters(Date.now()), WAITER_TICK_MS);
    });
  }

  private expireWaiters(nowMs: number): void {
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.deadlineMs <= nowMs) w.resolve(w.check());
      else still.push(w);
    }
    this.waiters = still;
    this.stopWaiterTimerIfIdle();
  }

  private stopWaiterTimerIfIdle(): void {
    if (this.waiters.length > 0 || this.waiterTimer === undefined) return;
    clearInterval(this.waiterTimer);
    this.waiterTimer = undefined;
  }

  private notify(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (this.ended || w.check()) w.resolve(w.check());
      else still.push(w);
    }
    this.waiters = still;
    this.stopWaiterTimerIfIdle();
  }

  private onTracks(tracks: readonly Track[]): void {
    const picked = this.pickTracks !== undefined ? this.pickTracks(tracks) : tracks;
    const wanted = picked.filter(
      (t) => !(this.options.noAudio && t.kind === 'audio') && !(this.options.noVideo && t.kind === 'video'),
    );
    const packager = createPackager(this.options.container, wanted);
    const signature = (p: Packager | undefined): string =>
      p === undefined ? '' : p.tracks.map((t) => `${t.id}:${t.codec}:${t.config?.toString('hex') ?? ''}`).join('|');
    if (signature(packager) === signature(this.packager)) return;
    if (this.current !== undefined) {
      this.flushPending();
      this.closeSegment();
    }
    this.pending.clear();
    this.partSamples = [];
    this.packager = packager;
    if (packager === undefined) {
      this.log.warn('no track of this feed can go into HLS', { tracks: tracks.map((t) => t.codec).join(',') });
      this.cutTrackId = undefined;
      return;
    }
    this.initVersionNow++;
    if (packager.init !== undefined) this.inits.set(this.initVersionNow, packager.init);
    this.initTracks.set(this.initVersionNow, packager.tracks);
    this.cutTrackId = (packager.tracks.find((t) => t.kind === 'video') ?? packager.tracks[0])?.id;
    if (this.segments.length > 0) this.needDiscontinuity = true;
    this.anchor = undefined;
    this.log.info('HLS tracks', { codecs: packager.codecs ?? '?', init: this.initVersionNow });
  }

  private onPublisherLeft(): void {
    if (this.current === undefined) return;
    this.flushPending();
    this.closeSegment();
    this.partSamples = [];
    this.needDiscontinuity = true;
    this.anchor = undefined;
  }

  private onFrame(frame: Frame, arrivedMs: number): void {
    if (this.ended || this.packager === undefined || !this.packager.tracks.some((t) => t.id === frame.trackId)) return;
    const prev = this.pending.get(frame.trackId);
    if (prev !== undefined) {
      const duration90k = Math.max(1, frame.dts90k - prev.frame.dts90k);
      this.lastDuration.set(frame.trackId, duration90k);
      this.commit({ ...prev.frame, duration90k });
    }
    if (frame.trackId === this.cutTrackId && frame.keyframe) {
      // A simulcast layer cuts up to the match tolerance early, so a keyframe that all layers got
      // together (the publisher was asked for one every segment target) cuts all of them.
      const minimum90k =
        this.options.cutAtEveryKeyframe === true
          ? (this.options.partTargetMs * 90) / 2
          : this.options.segmentTargetMs * 90 - (this.timeline?.matchWithin90k ?? 0);
      if (this.current === undefined) {
        if (this.timeline === undefined || this.timeline.mayBeginAt(frame.dts90k, 2 * this.options.segmentTargetMs * 90)) {
          this.beginSegment(frame, arrivedMs);
        }
      } else if (this.cutsHere(frame.dts90k, this.current.duration90k + this.partDuration90k, minimum90k)) {
        this.closeSegment();
        this.beginSegment(frame, arrivedMs);
      }
    }
    this.pending.set(frame.trackId, { frame, arrivedMs });
  }

  /** Whether the keyframe at `dts90k` ends the current segment, now `duration90k` long. */
  private cutsHere(dts90k: number, duration90k: number, minimum90k: number): boolean {
    const timeline = this.timeline;
    if (timeline === undefined || timeline.matchWithin90k === 0) return duration90k >= minimum90k;
    // A simulcast layer: where another layer cut (not the cut this segment began at), or alone
    // where a cut is due.
    const began = this.current?.startDts90k ?? -Infinity;
    if (timeline.cutNear(dts90k) && dts90k - began > timeline.matchWithin90k) {
      return duration90k >= (this.options.partTargetMs * 90) / 2;
    }
    return duration90k >= minimum90k && timeline.mayCutAlone(dts90k, this.options.segmentTargetMs * 90);
  }

  /** The publisher left: its last frames get the duration of the frame before them. */
  private flushPending(): void {
    const all = [...this.pending.values()].sort((a, b) => a.frame.dts90k - b.frame.dts90k);
    this.pending.clear();
    for (const { frame } of all) {
      this.commit({ ...frame, duration90k: this.lastDuration.get(frame.trackId) ?? FALLBACK_DURATION_90K });
    }
  }

  private beginSegment(frame: Frame, arrivedMs: number): void {
    if (this.anchor === undefined) {
      // A new timeline (first segment, reconnect, new tracks): dates never go back.
      const last = this.segments[this.segments.length - 1];
      const lastEndMs = last === undefined ? 0 : last.programDateMs + last.duration90k / 90;
      const shared = this.timeline?.anchor;
      const sharedMs = shared === undefined ? undefined : shared.wallMs + (frame.dts90k - shared.dts90k) / 90;
      // Renditions date a frame alike (one anchor), unless it is far off (the ladder restarted).
      if (shared !== undefined && sharedMs !== undefined && Math.abs(sharedMs - arrivedMs) < 3000 && sharedMs >= lastEndMs) {
        this.anchor = shared;
      } else {
        this.anchor = { dts90k: frame.dts90k, wallMs: Math.max(arrivedMs, lastEndMs) };
        if (this.timeline !== undefined) this.timeline.anchor = this.anchor;
      }
    }
    if (this.timeline !== undefined) {
      // Same keyframe, same MSN in every rendition; an MSN never jumps within one playlist.
      const shared = this.timeline.msnAt(frame.dts90k, this.segments.length === 0 ? undefined : this.nextMsn);
      if (this.segments.length === 0 || shared === this.nextMsn) this.nextMsn = shared;
    }
    const segment: HlsSegment = {
      msn: this.nextMsn++,
      parts: [],
      duration90k: 0,
      startDts90k: frame.dts90k,
      programDateMs: Math.round(this.anchor.wallMs + (frame.dts90k - this.anchor.dts90k) / 90),
      discontinuity: this.needDiscontinuity,
      initVersion: this.initVersionNow,
      complete: false,
      spans: new Map(),
      bytes: 0,
      evicted: false,
    };
    this.needDiscontinuity = false;
    this.current = segment;
    this.segments.push(segment);
  }

  private commit(sample: HlsSample): void {
    if (this.current === undefined) return; // before the first keyframe
    const partTarget90k = this.options.partTargetMs * 90;
    const isCut = sample.trackId === this.cutTrackId;
    if (isCut && this.partDuration90k > 0 && this.partDuration90k + sample.duration90k > partTarget90k) this.flushPart();
    this.partSamples.push(sample);
    if (!isCut) return;
    this.partDuration90k += sample.duration90k;
    // Close the part now if one more frame like this one would not fit: it is complete.
    if (this.partDuration90k + sample.duration90k > partTarget90k) this.flushPart();
  }

  private flushPart(): void {
    const segment = this.current;
    if (segment === undefined || this.packager === undefined || this.partDuration90k === 0) return;
    const firstCut = this.partSamples.find((s) => s.trackId === this.cutTrackId);
    const part: HlsPart = {
      index: segment.parts.length,
      data: this.packager.part(this.partSamples, segment.parts.length === 0),
      duration90k: this.partDuration90k,
      independent: firstCut?.keyframe === true,
    };
    segment.parts.push(part);
    segment.bytes += part.data.length;
    // What the segment holds, track by track: its parts' samples (audio committed after the last
    // video frame of the previous segment is in this one's first part).
    for (const sample of this.partSamples) {
      const span = segment.spans.get(sample.trackId);
      const endDts90k = sample.dts90k + sample.duration90k;
      if (span === undefined)
        segment.spans.set(sample.trackId, { firstDts90k: sample.dts90k, lastDts90k: sample.dts90k, endDts90k });
      else {
        span.lastDts90k = sample.dts90k;
        span.endDts90k = endDts90k;
      }
    }
    segment.duration90k += part.duration90k;
    this.partSamples = [];
    this.partDuration90k = 0;
    this.changed();
    this.notify();
  }

  private closeSegment(): void {
    const segment = this.current;
    if (segment === undefined) return;
    this.flushPart();
    // Audio committed after the last video frame stays for the next segment's first part.
    this.current = undefined;
    if (segment.parts.length === 0) {
      this.segments.pop();
      this.nextMsn--;
      return;
    }
    segment.complete = true;
    this.maxSegmentDurationS = Math.max(this.maxSegmentDurationS, Math.round(segment.duration90k / 90_000));
    this.trimWindow();
    this.changed();
    this.notify();
  }

  private trimWindow(): void {
    const dvr90k = (this.options.dvrWindowMs ?? 0) * 90;
    let complete90k = 0;
    if (dvr90k > 0) for (const s of this.segments) if (s.complete) complete90k += s.duration90k;
    while (this.completeSegments > this.options.windowSegments) {
      const oldest = this.segments[0];
      // With a DVR window, the oldest segment stays while the others hold less than the window.
      if (dvr90k > 0 && oldest !== undefined && complete90k - oldest.duration90k < dvr90k) break;
      if (oldest?.complete === true) complete90k -= oldest.duration90k;
      const removed = this.segments.shift();
      if (removed?.discontinuity === true) this.discontinuitySequence++;
    }
    if (this.store !== undefined && dvr90k > 0) this.evictToStore(this.store);
    const inUse = new Set(this.segments.map((s) => s.initVersion));
    inUse.add(this.initVersionNow);
    for (const v of this.inits.keys()) if (!inUse.has(v)) this.inits.delete(v);
    for (const v of this.initTracks.keys()) if (!inUse.has(v)) this.initTracks.delete(v);
  }

  /**
   * HLSDVRWindow with a store: the complete segments older than the newest `windowSegments` drop
   * their bytes (the store holds the same frames); those the store no longer holds leave the window.
   */
  private evictToStore(store: SegmentStore): void {
    const oldest90k = store.oldestDts90k();
    if (oldest90k === undefined) return; // nothing readable yet: keep them in memory for now
    let kept = 0;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i] as HlsSegment;
      if (!s.complete || s.evicted) continue;
      if (++kept <= this.options.windowSegments) continue;
      if (firstDtsOf(s) >= oldest90k) {
        s.parts.length = 0;
        s.evicted = true;
      }
    }
    while (this.completeSegments > 1) {
      const head = this.segments[0];
      if (head === undefined || !head.evicted || firstDtsOf(head) >= oldest90k) break;
      this.segments.shift();
      if (head.discontinuity) this.discontinuitySequence++;
    }
  }

  /** The bytes of a complete segment: its parts, or (evicted) read back from the store and packaged again. */
  async segmentBytes(segment: HlsSegment): Promise<Buffer[] | undefined> {
    if (!segment.evicted) return segment.parts.map((p) => p.data);
    const tracks = this.initTracks.get(segment.initVersion);
    if (this.store === undefined || tracks === undefined) return undefined;
    const samples = await this.store.read(segment.spans, segment.programDateMs);
    const packager = samples === undefined ? undefined : createPackager(this.options.container, tracks);
    if (samples === undefined || packager === undefined) return undefined;
    return [packager.part(samples, true)];
  }

  /** The feed went away: the last segment is closed and playlists get EXT-X-ENDLIST. */
  end(reason: string): void {
    if (this.ended) return;
    this.flushPending();
    this.closeSegment();
    this.ended = true;
    this.changed();
    this.log.info('HLS segmenter ended', { reason });
    this.notify();
    this.dispose();
  }

  /** Unsubscribes from the feed and releases every waiting request. Idempotent. */
  dispose(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    for (const release of this.onDispose.splice(0)) release();
    if (!this.ended) this.changed();
    this.ended = true;
    const waiters = this.waiters;
    this.waiters = [];
    this.stopWaiterTimerIfIdle();
    for (const w of waiters) w.resolve(w.check());
  }
}
