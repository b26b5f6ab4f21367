// A time-shifted RTSP play (docs/feed-file.md, "RTSP"): the frames of a TimeShiftSource (the feed
// file from the join point at or before the time asked, at the pace they were recorded, then live)
// made into RTP for one session, by this muxer of the session's TimeShiftOutput. Each track keeps the SSRC and timestamp base of the feed's shared
// RTP sender, so RTP timestamps are the feed clock's, as a live reader's are; the sequence numbers
// are the session's own, since its packets are not the live readers'.

import { randomInt } from 'node:crypto';
import { rtpTimestampOf } from '../../formats/rtp/audio-rtp.js';
import { createPacketizer } from '../../formats/rtp/formats.js';
import { sameTrackConfig, type Track } from '../../media/track.js';
import type { Logger } from '../../observability/logger.js';
import type { StreamMuxer } from '../../media/demuxer.js';
import type { Frame } from '../../media/frame.js';
import { interleavedRtp, type RtpFeedPacketizer, type TrackSender } from './rtp-output.js';

/** The feed's sender of a track, as the session's SDP and SETUP announced it. */
type Announced = Pick<TrackSender, 'track' | 'format' | 'ssrc' | 'tsBase'>;

/**
 * The muxer of a session's TimeShiftOutput (streams/time-shift-output.ts): recorded frames as
 * interleaved RTP, walked by the session's OutputReader like a live RTP output, so a time-shifted
 * RTSP reader gets the same backpressure and slow-reader policy.
 */
export class ShiftedRtpMuxer implements StreamMuxer {
  readonly contentType = 'application/x-rtsp-interleaved';
  private readonly log: Logger;
  private readonly announced = new Map<number, Announced>();
  private readonly senders = new Map<number, TrackSender>();
  /** Wall clock <-> media time of what is being sent, from the first frame muxed (sender reports). */
  private anchor: { wallMs: number; pts90k: number } | undefined;
  private readonly warned = new Set<number>();
  framesSent = 0;

  /**
   * `tracks` is the track list at the join point (the source's first item); `trackIds` are the
   * tracks the session set up. Throws nothing; a track the recording cannot fill is left silent.
   */
  constructor(tracks: readonly Track[], feedPacketizer: RtpFeedPacketizer, trackIds: readonly number[], log: Logger) {
    this.log = log;
    for (const id of trackIds) {
      const shared = feedPacketizer.sender(id);
      if (shared !== undefined)
        this.announced.set(id, { track: shared.track, format: shared.format, ssrc: shared.ssrc, tsBase: shared.tsBase });
    }
    this.useTracks(tracks);
  }

  /** How many of the set-up tracks the recording at the start can fill (0: nothing to play). */
  get playableTracks(): number {
    return this.senders.size;
  }

  header(): Buffer {
    return Buffer.alloc(0);
  }

  updateTracks(tracks: readonly Track[]): Buffer | undefined {
    this.useTracks(tracks);
    return undefined;
  }

  carries(track: Track): boolean {
    return this.senders.has(track.id);
  }

  mux(frame: Frame): Buffer {
    const sender = this.senders.get(frame.trackId);
    if (sender === undefined) return Buffer.alloc(0);
    const chunk = interleavedRtp(frame, sender);
    if (chunk.length > 0) {
      this.anchor ??= { wallMs: Date.now(), pts90k: frame.pts90k };
      this.framesSent++;
    }
    return chunk;
  }

  /** SSRC and the RTP timestamp of the media being sent at `wallMs` (for sender reports). */
  clockOf(trackId: number, wallMs: number): { ssrc: number; rtpTimestamp: number } | undefined {
    const sender = this.senders.get(trackId) ?? this.announcedSender(trackId);
    if (sender === undefined || this.anchor === undefined) return undefined;
    const pts90k = this.anchor.pts90k + (wallMs - this.anchor.wallMs) * 90;
    return { ssrc: sender.ssrc, rtpTimestamp: rtpTimestampOf(pts90k, sender.format.clockRate, sender.tsBase) };
  }

  private announcedSender(trackId: number): Announced | undefined {
    return this.announced.get(trackId);
  }

  /** A packetiser per set-up track the recording carries with the codec (and audio config) announced. */
  private useTracks(tracks: readonly Track[]): void {
    for (const [id, announced] of this.announced) {
      const track = tracks.find((t) => t.id === id);
      const fits =
        track !== undefined &&
        track.codec === announced.track.codec &&
        (track.kind === 'video' || sameTrackConfig(track, announced.track));
      if (!fits) {
        this.senders.delete(id);
        if (!this.warned.has(id)) {
          this.warned.add(id);
          this.log.warn('the recording has no track that fits this session: left silent', {
            track: id,
            announced: announced.track.codec,
            recorded: track?.codec,
          });
        }
        continue;
      }
      const existing = this.senders.get(id);
      if (existing !== undefined && sameTrackConfig(existing.track, track)) continue;
      // Video parameter sets go in-band before each keyframe (NalPacketizer), so a recorded
      // resolution change still decodes under the SDP of today's tracks.
      this.senders.set(id, {
        track,
        format: announced.format,
        packetizer: createPacketizer(track, announced.format),
        ssrc: announced.ssrc,
        seq: existing?.seq ?? randomInt(0, 0x8000),
        tsBase: announced.tsBase,
        packets: existing?.packets ?? 0,
        octets: existing?.octets ?? 0,
      });
    }
  }
}
