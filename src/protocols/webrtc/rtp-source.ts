// The RTP payloads of one feed for every WebRTC viewer: each H.264 frame is packetised once
// (RFC 6184 with SPS/PPS in-band before keyframes, src/formats/rtp/nal-rtp.ts) and each Opus frame
// once (RFC 7587; AAC/MP3/MP2 audio first re-encoded to Opus by one shared ffmpeg, opus-transcoder.ts);
// viewers share the payload buffers and only write their own 12-byte headers.
// The packets of the current GOP are kept, so a new viewer (or a PLI/FIR) starts at its keyframe.

import type { Feed } from '../../feed/feed.js';
import type { Codec } from '../../media/codec.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { NalPacketizer } from '../../formats/rtp/nal-rtp.js';
import { Vp8Packetizer } from '../../formats/rtp/vp8-rtp.js';
import { Vp9Packetizer } from '../../formats/rtp/vp9-rtp.js';
import { isWebRtcVideoCodec } from './sdp-offer.js';
import { Av1Packetizer } from '../../formats/rtp/av1-rtp.js';
import type { RtpPacketizer } from '../../formats/rtp/payload.js';
import type { Logger } from '../../observability/logger.js';
import { TypedEmitter } from '../../typed-emitter.js';
import { OPUS_TRANSCODABLE, OpusTranscoder } from './opus-transcoder.js';
import { ReorderDetector, VideoReencoder } from './video-reencoder.js';
import { detach } from '../../observability/detach.js';

/**
 * How AAC/MP3/MP2 audio reaches WebRTC viewers (re-encoded to Opus by this ffmpeg) and H.264 with
 * B-frames (re-encoded without them, at most `videoMaxKbps`); without it, neither is re-encoded.
 */
export interface AudioTranscodeOptions {
  ffmpegPath: string;
  bitrateKbps?: number;
  videoMaxKbps?: number;
}

/** The note a viewer's answer and the log carry while a feed's video is re-encoded for WebRTC. */
export const REENCODE_NOTE =
  'video has B-frames, which browsers do not decode over WebRTC: it is re-encoded without them (H.264 Constrained Baseline, one shared ffmpeg)';

/** Constrained Baseline (profile_idc 66, constraint_set0+1): what the re-encode sends, for codec negotiation. */
const REENCODED_PROFILE = { profileIdc: 66, constraintFlags: 0xe0 } as const;

/** One RTP packet's payload and what its header needs; shared by every viewer of the feed. */
export interface SharedPacket {
  readonly payload: Buffer;
  readonly marker: boolean;
  /** Presentation time of its frame, 90 kHz, feed clock. */
  readonly pts90k: number;
  /** Index of its frame in the feed (consecutive packets of one frame share it). */
  readonly frame: number;
  /** Its frame decodes on its own: a video keyframe, or any audio frame (where a viewer that skipped resumes). */
  readonly keyframe: boolean;
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

export function sendableTracks(tracks: readonly Track[], opusFromOtherAudio = false): SendableTracks {
  const notes: string[] = [];
  let video: Track | undefined;
  let audio: Track | undefined;
  for (const t of tracks) {
    if (t.kind === 'video') {
      if (isWebRtcVideoCodec(t.codec) && (t.codec !== 'h264' || t.config !== undefined)) video ??= t;
      else
        notes.push(
          `video ${t.codec} is not sent over WebRTC (it sends H.264, VP8, VP9, AV1 and H.265; transcode the feed to H.264)`,
        );
    } else if (t.codec === 'opus') {
      audio ??= t;
    } else if (opusFromOtherAudio && OPUS_TRANSCODABLE.has(t.codec)) {
      if (audio === undefined) {
        // Viewers are offered Opus; the frames come from the shared transcoder, under the same track id.
        audio = { id: t.id, kind: 'audio', codec: 'opus', sampleRate: 48_000, channels: 2 };
        notes.push(`audio ${t.codec} is re-encoded to Opus for WebRTC`);
      }
    } else {
      notes.push(
        opusFromOtherAudio
          ? `audio ${t.codec} is not sent over WebRTC (only Opus, or AAC/MP3/MP2 re-encoded to Opus)`
          : `audio ${t.codec} is not sent over WebRTC: it needs an Opus transcode, and ffmpeg is not available`,
      );
    }
  }
  return { video, audio, notes };
}

export class FeedRtpSource extends TypedEmitter<RtpSourceEvents> {
  readonly feed: Feed;
  private readonly log: Logger;
  private videoTrack: Track | undefined;
  private audioTrack: Track | undefined;
  private readonly audioTranscode: AudioTranscodeOptions | undefined;
  /** Set while the feed's audio is AAC/MP3/MP2: makes the Opus the viewers get. */
  private opus: OpusTranscoder | undefined;
  private opusSource: Track | undefined;
  private packetizer: RtpPacketizer | undefined;
  /** Set once the feed's video shows B-frames: what finds them, and what re-encodes the video then. */
  private reorder = new ReorderDetector();
  private reencoder: VideoReencoder | undefined;
  private reencodedTrack: Track | undefined;
  private gop: SharedPacket[] = [];
  private frameIndex = 0;
  private readonly unsubscribe: (() => void)[] = [];
  private users = 0;
  private closed = false;
  /** Bounds the GOP kept in packet form (the feed's own GOP cache bounds frames the same way). */
  private readonly maxGopPackets: number;
  packetsBuilt = 0;

  constructor(feed: Feed, log: Logger, audioTranscode?: AudioTranscodeOptions, maxGopPackets = 20_000) {
    super(log);
    this.feed = feed;
    this.log = log.child({ feed: feed.key, part: 'webrtc-rtp' });
    this.maxGopPackets = maxGopPackets;
    this.audioTranscode = audioTranscode;
    this.setTracks(feed.tracks);
    // Start from the feed's GOP cache, so the first viewer starts at once too. Look for B-frames
    // first, so a re-encode starts with the cached keyframe rather than the next one: in the last
    // seconds, not only this GOP (a viewer arriving just after a keyframe would see none yet, and
    // be answered with the source's profile while the re-encode starts a moment later).
    const cached = feed.gopCache();
    const scan = new ReorderDetector();
    for (const frame of feed.recentFrames()) {
      if (frame.trackId === this.videoTrack?.id && mayReorder(this.videoTrack)) scan.push(frame);
    }
    if (scan.seen) {
      this.reorder = scan;
      this.startReencode();
    }
    for (const frame of cached) this.onFrame(frame);
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
    const sendable = sendableTracks(this.feed.tracks, this.audioTranscode !== undefined);
    if (this.reencoder !== undefined) sendable.notes.push(REENCODE_NOTE);
    else if (this.reorder.seen)
      sendable.notes.push('video has B-frames and ffmpeg is not available to re-encode it: browsers will show few frames');
    return sendable;
  }

  /** The H.264 profile viewers are sent (for the answer's profile-level-id), when it is not the feed's own. */
  get videoProfileHint(): { profileIdc: number; constraintFlags: number } | undefined {
    return this.reencoder !== undefined ? REENCODED_PROFILE : undefined;
  }

  /** The video codec viewers are sent: the feed's, or H.264 while it is re-encoded. */
  get videoCodec(): Codec | undefined {
    return this.reencoder !== undefined ? 'h264' : this.videoTrack?.codec;
  }

  /** True while the feed's video is re-encoded for WebRTC viewers (B-frames in the source). */
  get reencoding(): boolean {
    return this.reencoder !== undefined;
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
    if (this.opus !== undefined) detach(this.opus.close(), this.log, 'Opus transcoder close');
    this.opus = undefined;
    this.stopReencode();
    this.safeEmit('close', reason);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private setTracks(tracks: readonly Track[]): void {
    const sendable = sendableTracks(tracks, this.audioTranscode !== undefined);
    if (sendable.video !== this.videoTrack) {
      this.videoTrack = sendable.video;
      this.packetizer = packetizerFor(sendable.video);
      this.gop = [];
      this.stopReencode();
      this.reorder = new ReorderDetector();
    }
    this.audioTrack = sendable.audio;
    this.updateOpusTranscoder(tracks);
  }

  /** Starts, keeps or stops the shared Opus transcoder as the feed's audio track requires. */
  private updateOpusTranscoder(tracks: readonly Track[]): void {
    const source = this.audioTrack !== undefined ? tracks.find((t) => t.id === this.audioTrack?.id) : undefined;
    const needed = source !== undefined && source.codec !== 'opus' && this.audioTranscode !== undefined ? source : undefined;
    const same =
      needed !== undefined &&
      this.opusSource !== undefined &&
      needed.codec === this.opusSource.codec &&
      needed.sampleRate === this.opusSource.sampleRate &&
      needed.channels === this.opusSource.channels;
    if (same) return;
    if (this.opus !== undefined) detach(this.opus.close(), this.log, 'Opus transcoder close');
    this.opus = undefined;
    this.opusSource = needed;
    if (needed === undefined || this.audioTranscode === undefined) return;
    const opus = new OpusTranscoder(
      needed,
      this.audioTranscode.ffmpegPath,
      this.log,
      (frame) => this.emitAudio(frame),
      this.audioTranscode.bitrateKbps,
    );
    this.opus = opus;
    opus.start();
  }

  private emitAudio(frame: Frame): void {
    if (this.closed || frame.data.length === 0) return;
    const index = this.frameIndex++;
    this.packetsBuilt++;
    this.safeEmit('audio', [{ payload: frame.data, marker: false, pts90k: frame.pts90k, frame: index, keyframe: true }]);
  }

  /** B-frames found: one shared ffmpeg re-encodes the video without them, announced in the log. */
  private startReencode(): void {
    if (this.reencoder !== undefined || this.videoTrack === undefined || this.closed) return;
    if (this.audioTranscode === undefined) {
      this.log.warn('video has B-frames and ffmpeg is not available: WebRTC viewers will see few frames');
      return;
    }
    this.log.warn(REENCODE_NOTE);
    this.gop = [];
    const reencoder = new VideoReencoder(
      this.videoTrack,
      this.audioTranscode.ffmpegPath,
      this.log,
      (frame, track) => this.onReencoded(frame, track),
      this.audioTranscode.videoMaxKbps,
    );
    this.reencoder = reencoder;
    reencoder.start();
  }

  private stopReencode(): void {
    if (this.reencoder !== undefined) detach(this.reencoder.close(), this.log, 'H.264 re-encoder close');
    this.reencoder = undefined;
    this.reencodedTrack = undefined;
  }

  private onReencoded(frame: Frame, track: Track): void {
    if (this.closed || this.reencoder === undefined) return;
    if (track !== this.reencodedTrack) {
      // The first output, or a restarted ffmpeg: its own SPS/PPS go before its keyframes.
      this.reencodedTrack = track;
      this.packetizer = new NalPacketizer(track);
      this.gop = [];
    }
    this.sendVideo(frame);
  }

  private onFrame(frame: Frame): void {
    if (this.closed) return;
    if (this.videoTrack !== undefined && frame.trackId === this.videoTrack.id) {
      // VP8, VP9 and AV1 frames keep presentation order (hidden frames are decoded, not shown): no re-encode.
      if (mayReorder(this.videoTrack) && !this.reorder.seen && this.reorder.push(frame)) {
        if (this.videoTrack.codec !== 'h264' && this.users > 0) {
          // Its viewers negotiated H.265; the re-encode is H.264: they must negotiate again.
          this.log.warn(`${REENCODE_NOTE}; the viewers that negotiated H.265 are ended`);
          this.close('the H.265 video has B-frames: WebRTC viewers get it re-encoded to H.264 from now on, connect again');
          return;
        }
        this.startReencode();
      }
      if (this.reencoder !== undefined) this.reencoder.write(frame);
      else this.sendVideo(frame);
      return;
    }
    if (this.audioTrack !== undefined && frame.trackId === this.audioTrack.id) {
      if (this.opus !== undefined) this.opus.write(frame);
      else this.emitAudio(frame);
    }
  }

  /** Packetises a video frame (the feed's own, or the re-encoded one) once for every viewer. */
  private sendVideo(frame: Frame): void {
    if (this.packetizer !== undefined) {
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
        keyframe: frame.keyframe,
      }));
      this.packetsBuilt += packets.length;
      if (frame.keyframe) this.gop = [];
      if (this.gop.length + packets.length <= this.maxGopPackets) this.gop.push(...packets);
      this.safeEmit('video', packets);
    }
  }
}

/** H.264 and H.265 may carry B-frames (frames shown before one decoded ahead of them). */
function mayReorder(track: Track): boolean {
  return track.codec === 'h264' || track.codec === 'h265';
}

function packetizerFor(track: Track | undefined): RtpPacketizer | undefined {
  if (track === undefined) return undefined;
  if (track.codec === 'vp8') return new Vp8Packetizer();
  if (track.codec === 'vp9') return new Vp9Packetizer();
  if (track.codec === 'av1') return new Av1Packetizer();
  return new NalPacketizer(track);
}

/** One FeedRtpSource per feed while it has viewers. */
export class RtpSourceRegistry {
  private readonly sources = new Map<string, FeedRtpSource>();
  private readonly log: Logger;
  private readonly audioTranscode: AudioTranscodeOptions | undefined;

  constructor(log: Logger, audioTranscode?: AudioTranscodeOptions) {
    this.log = log;
    this.audioTranscode = audioTranscode;
  }

  acquire(feed: Feed): FeedRtpSource {
    let source = this.sources.get(feed.key);
    if (source === undefined || source.isClosed || source.feed !== feed) {
      source = new FeedRtpSource(feed, this.log, this.audioTranscode);
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
