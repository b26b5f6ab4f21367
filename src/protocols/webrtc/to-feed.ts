// WHIP publisher side (RFC 9725): the browser's H.264 (RFC 6184), VP8 (RFC 7741), VP9 (RFC 9628), AV1 or
// H.265 (RFC 7798) video and Opus (RFC 7587) RTP is
// depacketised into Frames for the feed's PublisherSession. Each track's RTP clock is placed on the
// server's clock at its first packet. The browser only sends keyframes when asked, so a PLI asks
// for one every `keyframeIntervalMs` (HLS segments and new viewers need them).

import type { MediaStreamTrack, RTCPeerConnection, RtpPacket as WeriftRtpPacket } from 'werift';
import type { PublisherSession } from '../../feed/feed.js';
import { NalDepacketizer } from '../../formats/rtp/nal-rtp.js';
import { OpusDepacketizer } from '../../formats/rtp/audio-rtp.js';
import { Vp8Depacketizer } from '../../formats/rtp/vp8-rtp.js';
import { Vp9Depacketizer } from '../../formats/rtp/vp9-rtp.js';
import { Av1Depacketizer } from '../../formats/rtp/av1-rtp.js';
import { videoFieldsOf } from '../../formats/rtp/formats.js';
import type { RtpDepacketizer } from '../../formats/rtp/payload.js';
import type { RtpPacket } from '../../formats/rtp/rtp-packet.js';
import type { WebRtcVideoCodec } from './sdp-offer.js';
import type { ConnectionInfo } from '../../access/connections.js';
import { msTo90k, to90k, Unwrapper } from '../../media/timebase.js';
import type { Track } from '../../media/track.js';
import type { Logger } from '../../observability/logger.js';

const VIDEO_ID = 0;
const AUDIO_ID = 1;

interface InTrack {
  readonly id: number;
  readonly kind: 'video' | 'audio';
  readonly clockRate: number;
  readonly depacketizer: RtpDepacketizer;
  readonly unwrap: Unwrapper;
  /** RTP time of the first packet and the server time it arrived (ms). */
  origin: { rtp: number; atMs: number } | undefined;
}

/** werift's RTP packet as Feedcast's (the header fields depacketisers read, and the payload). */
export function rtpPacketOf(rtp: WeriftRtpPacket): RtpPacket {
  return {
    marker: rtp.header.marker,
    payloadType: rtp.header.payloadType,
    sequence: rtp.header.sequenceNumber,
    timestamp: rtp.header.timestamp,
    ssrc: rtp.header.ssrc,
    csrcs: [],
    extension: undefined,
    payload: rtp.payload,
  };
}

function videoDepacketizer(codec: WebRtcVideoCodec): RtpDepacketizer {
  switch (codec) {
    case 'h264':
    case 'h265':
      return new NalDepacketizer(codec);
    case 'vp8':
      return new Vp8Depacketizer();
    case 'vp9':
      return new Vp9Depacketizer();
    case 'av1':
      return new Av1Depacketizer();
  }
}

export interface WhipIngestOptions {
  keyframeIntervalMs: number;
  /** Which media the answer accepts (H.264, VP8, VP9, AV1 or H.265 video, Opus audio). */
  video: boolean;
  videoCodec?: WebRtcVideoCodec;
  audio: boolean;
}

export class WhipIngest {
  private readonly session: PublisherSession;
  private readonly conn: ConnectionInfo;
  private readonly log: Logger;
  private readonly startedAtMs = Date.now();
  private readonly tracks = new Map<number, InTrack>();
  private videoConfig: Buffer | undefined;
  /** VP8, VP9 and AV1 have no out-of-band config here: their size comes from the key frames. */
  private videoSize: { width: number; height: number } | undefined;
  private readonly videoCodec: WebRtcVideoCodec;
  private announced = false;
  private readonly hasVideo: boolean;
  private readonly hasAudio: boolean;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly pliTimer: NodeJS.Timeout;
  private lastErrorLogAt = 0;
  private errors = 0;
  framesIn = 0;

  /** Construct before setRemoteDescription: werift announces the remote tracks there. */
  constructor(pc: RTCPeerConnection, session: PublisherSession, conn: ConnectionInfo, log: Logger, options: WhipIngestOptions) {
    this.session = session;
    this.conn = conn;
    this.log = log;
    this.hasVideo = options.video;
    this.hasAudio = options.audio;
    this.videoCodec = options.videoCodec ?? 'h264';
    if (options.video) {
      this.tracks.set(VIDEO_ID, this.inTrack(VIDEO_ID, 'video', 90_000, videoDepacketizer(this.videoCodec)));
    }
    if (options.audio) this.tracks.set(AUDIO_ID, this.inTrack(AUDIO_ID, 'audio', 48_000, new OpusDepacketizer()));
    const sub = pc.onTrack.subscribe((remote: MediaStreamTrack) => {
      const track = this.tracks.get(remote.kind === 'video' ? VIDEO_ID : AUDIO_ID);
      if (track === undefined) return;
      const rtpSub = remote.onReceiveRtp.subscribe((rtp) => this.onRtp(track, rtp));
      this.unsubscribe.push(() => rtpSub.unSubscribe());
    });
    this.unsubscribe.push(() => sub.unSubscribe());
    if (!this.hasVideo) this.announce();
    this.pliTimer = setInterval(() => {
      const video = pc.getTransceivers().find((t) => t.kind === 'video');
      const ssrc = video?.receiver.track.ssrc;
      if (video !== undefined && ssrc !== undefined) video.receiver.sendRtcpPLI(ssrc).catch(() => undefined);
    }, options.keyframeIntervalMs);
    this.pliTimer.unref();
  }

  private inTrack(id: number, kind: 'video' | 'audio', clockRate: number, depacketizer: RtpDepacketizer): InTrack {
    return { id, kind, clockRate, depacketizer, unwrap: new Unwrapper(2 ** 32), origin: undefined };
  }

  private announce(): void {
    const tracks: Track[] = [];
    const nal = this.videoCodec === 'h264' || this.videoCodec === 'h265' ? this.videoCodec : undefined;
    if (this.hasVideo && nal === undefined) {
      if (this.videoSize === undefined) return;
      tracks.push({
        id: VIDEO_ID,
        kind: 'video',
        codec: this.videoCodec,
        width: this.videoSize.width,
        height: this.videoSize.height,
        config: this.videoConfig, // AV1: av1C from the sequence header; VP8/VP9: none
      });
    } else if (this.hasVideo && nal !== undefined) {
      if (this.videoConfig === undefined) return;
      tracks.push({ id: VIDEO_ID, kind: 'video', codec: nal, ...videoFieldsOf(nal, this.videoConfig) });
    }
    if (this.hasAudio) tracks.push({ id: AUDIO_ID, kind: 'audio', codec: 'opus', sampleRate: 48_000, channels: 2 });
    this.session.setTracks(tracks);
    this.announced = true;
    this.log.info('WHIP tracks', {
      tracks: tracks.map((x) => `${x.codec}${x.width !== undefined ? ` ${x.width}x${x.height ?? 0}` : ''}`).join(', '),
    });
  }

  private onRtp(track: InTrack, rtp: WeriftRtpPacket): void {
    const now = Date.now();
    this.conn.bytesIn += rtp.payload.length + 12;
    this.session.touch(rtp.payload.length + 12, now);
    if (rtp.payload.length === 0) return; // padding-only packets (the browser's bandwidth probes)
    const packet = rtpPacketOf(rtp);
    let units;
    try {
      units = track.depacketizer.push(packet);
    } catch (err) {
      this.errors++;
      if (now - this.lastErrorLogAt > 1000) {
        this.log.warn('WHIP packet dropped', { track: track.kind, errors: this.errors, err });
        this.lastErrorLogAt = now;
      }
      return;
    }
    if (track.kind === 'video' && this.videoCodec !== 'h264' && this.videoCodec !== 'h265') {
      const config = track.depacketizer.takeConfig?.();
      if (config !== undefined) this.videoConfig = config;
      const size = track.depacketizer.takeSize?.();
      if (size !== undefined) this.videoSize = size;
      if (size !== undefined || config !== undefined) this.announce();
    } else if (track.kind === 'video') {
      const config = track.depacketizer.takeConfig?.();
      if (config !== undefined && (this.videoConfig === undefined || !config.equals(this.videoConfig))) {
        this.videoConfig = config;
        try {
          this.announce();
        } catch (err) {
          this.log.warn('WHIP: unreadable SPS, waiting for the next one', { err });
          this.videoConfig = undefined;
        }
      }
    }
    if (!this.announced) return;
    for (const unit of units) {
      const rtpTime = track.unwrap.unwrap(unit.timestamp);
      track.origin ??= { rtp: rtpTime, atMs: now };
      const t90k = msTo90k(track.origin.atMs - this.startedAtMs) + to90k(rtpTime - track.origin.rtp, track.clockRate);
      if (t90k < 0) continue;
      this.framesIn++;
      this.session.write({ trackId: track.id, dts90k: t90k, pts90k: t90k, keyframe: unit.keyframe, data: unit.data }, now);
    }
  }

  stop(): void {
    clearInterval(this.pliTimer);
    for (const u of this.unsubscribe.splice(0)) u();
  }
}
