// The RTP payloads of one feed for every WebRTC viewer: each H.264 frame is packetised once
// (RFC 6184 with SPS/PPS in-band before keyframes, src/formats/rtp/nal-rtp.ts) and each Opus frame
// once (RFC 7587); viewers share the payload buffers and only write their own 12-byte headers.
// The packets of the current GOP are kept, so a new viewer (or a PLI/FIR) starts at its keyframe.

import type { Feed } from '../../feed/feed.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { NalPacketizer } from '../../formats/rtp/nal-rtp.js';
import type { Logger } from '../../observability/logger.js';
import { TypedEmitter } from '../../typed-emitter.js';

/** One RTP packet's payload and what its header needs; shared by every viewer of the feed. */
export interface SharedPacket {
  readonly payload: Buffer;
  readonly marker: boolean;
  /** Presentation time of its frame, 90 kHz, feed clock. */
  readonly pts90k: number;
  /** Index of its frame in the feed (consecutive packets of one frame share it). */
  readonly frame: number;
}

export type RtpSourceEvents = {
  video: [SharedPacket[]];
  audio: [SharedPacket[]];
  /** The feed's tracks changed: viewers whose negotiated codecs no longer fit should end. */
  tracks: [readonly Track[]];
  close: [string];
};

/** What a viewer can be sent for a feed's track list. */
export interface SendableTracks {
  video: Track | undefined;
  audio: Track | undefined;
  /** Why a track of the feed is not sent, for the response header and the log. */
  notes: string[];
}

export function sendableTracks(tracks: readonly Track[]): SendableTracks {
  const notes: string[] = [];
  let video: Track | undefined;
  let audio: Track | undefined;
  for (const t of tracks) {
    if (t.kind === 'video') {
      if (t.codec === 'h264' && t.config !== undefined) video ??= t;
      else notes.push(`video ${t.codec} is not sent over WebRTC (browsers need H.264; transcode the feed to H.264)`);
    } else if (t.codec === 'opus') {
      audio ??= t;
    } else {
      notes.push(`audio ${t.codec} is not sent over WebRTC (only Opus; publish Opus audio)`);
    }
  }
  return { video, audio, notes };
}

export class FeedRtpSource extends TypedEmitter<RtpSourceEvents> {
  readonly feed: Feed;
  private readonly log: Logger;
  private videoTrack: Track | undefined;
  private audioTrack: Track | undefined;
  private packetizer: NalPacketizer | undefined;
  private gop: SharedPacket[] = [];
  private frameIndex = 0;
  private readonly unsubscribe: (() => void)[] = [];
  private users = 0;
  private closed = false;
  /** Bounds the GOP kept in packet form (the feed's own GOP cache bounds frames the same way). */
  private readonly maxGopPackets: number;
  packetsBuilt = 0;

  constructor(feed: Feed, log: Logger, maxGopPackets = 20_000) {
    super(log);
    this.feed = feed;
    this.log = log.child({ feed: feed.key, part: 'webrtc-rtp' });
    this.maxGopPackets = maxGopPackets;
    this.setTracks(feed.tracks);
    // Start from the feed's GOP cache, so the first viewer starts at once too.
    for (const frame of feed.gopCache()) this.onFrame(frame);
    this.unsubscribe.push(
      feed.on('frame', (f) => this.onFrame(f)),
      feed.on('tracks', (t) => {
        this.setTracks(t);
        this.safeEmit('tracks', t);
      }),
      feed.on('idle', () => this.close('the feed has no publisher any more')),
      feed.on('close', () => this.close('the feed was removed')),
    );
  }

  get tracks(): SendableTracks {
    return sendableTracks(this.feed.tracks);
  }

  /** Packets of the current GOP, from its keyframe (empty until the first keyframe). */
  gopPackets(): readonly SharedPacket[] {
    return this.gop;
  }

  acquire(): void {
    this.users++;
  }

  /** Returns true when this was the last user (the owner then closes the source). */
  release(): boolean {
    this.users = Math.max(0, this.users - 1);
    return this.users === 0;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const u of this.unsubscribe.splice(0)) u();
    this.gop = [];
    this.safeEmit('close', reason);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private setTracks(tracks: readonly Track[]): void {
    const sendable = sendableTracks(tracks);
    if (sendable.video !== this.videoTrack) {
      this.videoTrack = sendable.video;
      this.packetizer = sendable.video !== undefined ? new NalPacketizer(sendable.video) : undefined;
      this.gop = [];
    }
    this.audioTrack = sendable.audio;
  }

  private onFrame(frame: Frame): void {
    if (this.closed) return;
    if (this.videoTrack !== undefined && frame.trackId === this.videoTrack.id && this.packetizer !== undefined) {
      if (!frame.keyframe && this.gop.length === 0) return; // nothing decodable yet
      let units;
      try {
        units = this.packetizer.packetize(frame);
      } catch (err) {
        this.log.warn('frame not packetised', { err });
        return;
      }
      const index = this.frameIndex++;
      const packets = units.map((u): SharedPacket => ({
        payload: u.parts.length === 1 ? (u.parts[0] as Buffer) : Buffer.concat(u.parts),
        marker: u.marker,
        pts90k: frame.pts90k,
        frame: index,
      }));
      this.packetsBuilt += packets.length;
      if (frame.keyframe) this.gop = [];
      if (this.gop.length + packets.length <= this.maxGopPackets) this.gop.push(...packets);
      this.safeEmit('video', packets);
      return;
    }
    if (this.audioTrack !== undefined && frame.trackId === this.audioTrack.id) {
      if (frame.data.length === 0) return;
      const index = this.frameIndex++;
      this.packetsBuilt++;
      this.safeEmit('audio', [{ payload: frame.data, marker: false, pts90k: frame.pts90k, frame: index }]);
    }
  }
}

/** One FeedRtpSource per feed while it has viewers. */
export class RtpSourceRegistry {
  private readonly sources = new Map<string, FeedRtpSource>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  acquire(feed: Feed): FeedRtpSource {
    let source = this.sources.get(feed.key);
    if (source === undefined || source.isClosed || source.feed !== feed) {
      source = new FeedRtpSource(feed, this.log);
      this.sources.set(feed.key, source);
    }
    source.acquire();
    return source;
  }

  release(source: FeedRtpSource): void {
    if (source.release()) {
      source.close('no viewer left');
      if (this.sources.get(source.feed.key) === source) this.sources.delete(source.feed.key);
    }
  }

  get size(): number {
    return this.sources.size;
  }

  closeAll(): void {
    for (const s of this.sources.values()) s.close('server stopping');
    this.sources.clear();
  }
}
