// WHIP publisher side (RFC 9725): the browser's H.264 (RFC 6184), VP8 (RFC 7741), VP9 (RFC 9628), AV1 or
// H.265 (RFC 7798) video and Opus (RFC 7587) RTP is
// depacketised into Frames for the feed's PublisherSession. Each track's RTP clock is placed on the
// server's clock at its first packet. The browser only sends keyframes when asked, so a PLI asks
// for one every `keyframeIntervalMs` (HLS segments and new viewers need them). A simulcast offer
// (RFC 8853) sends one video RTP stream per rid: each is written to its layer feed, and the largest
// also to the feed itself; audio goes to all of them.

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
import { LAYER_STALL_MS } from './layer-choice.js';

const VIDEO_ID = 0;
const AUDIO_ID = 1;

/** An incoming RTP stream: the audio, the video, or one simulcast layer of the video. */
interface InTrack {
  readonly id: number;
  readonly kind: 'video' | 'audio';
  readonly clockRate: number;
  readonly depacketizer: RtpDepacketizer;
  readonly unwrap: Unwrapper;
  /** RTP time of the first packet and the server time it arrived (ms). */
  origin: { rtp: number; atMs: number } | undefined;
  /** Video: the simulcast rid (undefined without simulcast), its SSRC once seen, and what its key frames said. */
  readonly rid?: string;
  ssrc?: number;
  /** H.264/H.265: avcC/hvcC; AV1: av1C. */
  config?: Buffer | undefined;
  /** VP8, VP9 and AV1 have no out-of-band config here: their size comes from the key frames. */
  size?: { width: number; height: number };
  /** When its last frame came (ms): a publisher pauses layers its bandwidth cannot carry. */
  lastFrameAt?: number;
}

/** A feed the ingest writes to: its publisher session and the video stream it carries. */
interface Sink {
  readonly session: PublisherSession;
  /** undefined: audio only, or (the feed of a simulcast publisher) its layer not chosen yet. */
  video: InTrack | undefined;
  announced: boolean;
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
  /** Simulcast: the session of each layer's feed, by rid, in the offer's order. */
  layers?: readonly { rid: string; session: PublisherSession }[];
}

export class WhipIngest {
  private readonly conn: ConnectionInfo;
  private readonly log: Logger;
  private readonly startedAtMs = Date.now();
  private readonly videoCodec: WebRtcVideoCodec;
  private readonly hasVideo: boolean;
  private readonly hasAudio: boolean;
  /** The video streams: one, or one per simulcast rid. */
  private readonly videos: InTrack[] = [];
  private readonly audio: InTrack | undefined;
  /** The feed's own session first, then one per layer. */
  private readonly sinks: Sink[] = [];
  /** Simulcast: when the first layer's size was known (the feed takes the largest known soon after). */
  private firstLayerAt: number | undefined;
  private readonly keyframeIntervalMs: number;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly pliTimer: NodeJS.Timeout;
  private readonly pc: RTCPeerConnection;
  private lastErrorLogAt = 0;
  private errors = 0;
  framesIn = 0;

  /** Construct before setRemoteDescription: werift announces the remote tracks there. */
  constructor(pc: RTCPeerConnection, session: PublisherSession, conn: ConnectionInfo, log: Logger, options: WhipIngestOptions) {
    this.pc = pc;
    this.conn = conn;
    this.log = log;
    this.hasVideo = options.video;
    this.hasAudio = options.audio;
    this.keyframeIntervalMs = options.keyframeIntervalMs;
    this.videoCodec = options.videoCodec ?? 'h264';
    const layers = options.video ? (options.layers ?? []) : [];
    if (options.video && layers.length === 0) this.videos.push(this.inTrack(VIDEO_ID, 'video', 90_000, undefined));
    for (const layer of layers) this.videos.push(this.inTrack(VIDEO_ID, 'video', 90_000, layer.rid));
    this.audio = options.audio ? this.inTrack(AUDIO_ID, 'audio', 48_000, undefined) : undefined;
    this.sinks.push({ session, video: layers.length === 0 ? this.videos[0] : undefined, announced: false });
    layers.forEach((layer, i) => this.sinks.push({ session: layer.session, video: this.videos[i], announced: false }));
    const sub = pc.onTrack.subscribe((remote: MediaStreamTrack) => {
      if (remote.kind === 'audio') {
        if (this.audio !== undefined) this.listen(remote, this.audio);
        return;
      }
      // Simulcast: werift announces the section once; its receiver has a track per rid.
      const receiver = pc.getTransceivers().find((t) => t.receiver.tracks.includes(remote))?.receiver;
      for (const track of receiver?.tracks ?? [remote]) {
        const video = this.videos.find((v) => v.rid === track.rid) ?? (track.rid === undefined ? this.videos[0] : undefined);
        if (video !== undefined) this.listen(track, video);
      }
    });
    this.unsubscribe.push(() => sub.unSubscribe());
    if (!this.hasVideo) this.announce(this.sinks[0] as Sink);
    this.pliTimer = setInterval(() => {
      for (const video of this.videos) this.requestKeyframe(video.rid);
    }, options.keyframeIntervalMs);
    this.pliTimer.unref();
  }

  private inTrack(id: number, kind: 'video' | 'audio', clockRate: number, rid: string | undefined): InTrack {
    const depacketizer = kind === 'video' ? videoDepacketizer(this.videoCodec) : new OpusDepacketizer();
    return {
      id,
      kind,
      clockRate,
      depacketizer,
      unwrap: new Unwrapper(2 ** 32),
      origin: undefined,
      ...(rid !== undefined ? { rid } : {}),
    };
  }

  private listen(remote: MediaStreamTrack, track: InTrack): void {
    const rtpSub = remote.onReceiveRtp.subscribe((rtp) => this.onRtp(track, rtp));
    this.unsubscribe.push(() => rtpSub.unSubscribe());
  }

  /** Asks the publisher for a key frame of the video (of simulcast layer `rid`) now (PLI, RFC 4585 6.3.1). */
  requestKeyframe(rid?: string): void {
    const video = this.videos.find((v) => v.rid === rid);
    const transceiver = this.pc.getTransceivers().find((t) => t.kind === 'video');
    const ssrc = video?.ssrc ?? (rid === undefined ? transceiver?.receiver.track.ssrc : undefined);
    if (transceiver !== undefined && ssrc !== undefined) transceiver.receiver.sendRtcpPLI(ssrc).catch(() => undefined);
  }

  /** The simulcast rids, in the offer's order (empty without simulcast). */
  get rids(): string[] {
    return this.videos.flatMap((v) => (v.rid !== undefined ? [v.rid] : []));
  }

  private announce(sink: Sink): void {
    const tracks: Track[] = [];
    const video = sink.video;
    const nal = this.videoCodec === 'h264' || this.videoCodec === 'h265' ? this.videoCodec : undefined;
    if (this.hasVideo && video === undefined) return;
    if (video !== undefined && nal === undefined) {
      if (video.size === undefined) return;
      tracks.push({
        id: VIDEO_ID,
        kind: 'video',
        codec: this.videoCodec,
        width: video.size.width,
        height: video.size.height,
        config: video.config, // AV1: av1C from the sequence header; VP8/VP9: none
      });
    } else if (video !== undefined && nal !== undefined) {
      if (video.config === undefined) return;
      tracks.push({ id: VIDEO_ID, kind: 'video', codec: nal, ...videoFieldsOf(nal, video.config) });
    }
    if (this.hasAudio) tracks.push({ id: AUDIO_ID, kind: 'audio', codec: 'opus', sampleRate: 48_000, channels: 2 });
    sink.session.setTracks(tracks);
    sink.announced = true;
    this.log.info('WHIP tracks', {
      ...(video?.rid !== undefined ? { layer: video.rid } : {}),
      tracks: tracks.map((x) => `${x.codec}${x.width !== undefined ? ` ${x.width}x${x.height ?? 0}` : ''}`).join(', '),
    });
  }

  /** A video stream's key frame told its config or size: the feeds it goes to announce their tracks again. */
  private videoChanged(video: InTrack, now: number): void {
    for (const sink of this.sinks) {
      if (sink.video !== video) continue;
      try {
        this.announce(sink);
      } catch (err) {
        this.log.warn('WHIP: unreadable SPS, waiting for the next one', { err });
        video.config = undefined;
        return;
      }
    }
    this.chooseFeedLayer(now);
  }

  /**
   * Simulcast: the feed itself carries the largest layer, chosen once every layer's size is known
   * (or one key frame interval after the first was, when a layer is not sent).
   */
  private chooseFeedLayer(now: number): void {
    const main = this.sinks[0] as Sink;
    if (main.video !== undefined || this.videos.length < 2) return;
    const area = (v: InTrack): number | undefined => this.area(v);
    const known = this.videos.filter((v) => area(v) !== undefined);
    if (known.length === 0) return;
    this.firstLayerAt ??= now;
    if (known.length < this.videos.length && now - this.firstLayerAt < this.keyframeIntervalMs) return;
    main.video = known.reduce((a, b) => ((area(b) ?? 0) > (area(a) ?? 0) ? b : a));
    this.log.info('WHIP simulcast: the feed carries the largest layer', { layer: main.video.rid });
    this.announce(main);
    this.requestKeyframe(main.video.rid);
  }

  /**
   * Simulcast, at a keyframe of layer `track`: the feed moves to it when it is larger than the layer
   * the feed carries, or that layer has stalled (the publisher paused it). Returns whether it moved.
   */
  private followLayer(track: InTrack, now: number): boolean {
    const main = this.sinks[0] as Sink;
    const current = main.video;
    if (current === undefined || current === track || this.videos.length < 2) return false;
    const stalled = current.lastFrameAt === undefined || now - current.lastFrameAt > LAYER_STALL_MS;
    const larger = (this.area(track) ?? 0) > (this.area(current) ?? 0);
    if (!larger && !stalled) return false;
    if (!larger) {
      // Stalled: only to the largest of the layers still sent.
      const better = this.videos.find(
        (v) =>
          v !== track &&
          v.lastFrameAt !== undefined &&
          now - v.lastFrameAt <= LAYER_STALL_MS &&
          (this.area(v) ?? 0) > (this.area(track) ?? 0),
      );
      if (better !== undefined) return false;
    }
    main.video = track;
    try {
      this.announce(main);
    } catch (err) {
      main.video = current;
      this.log.warn('WHIP simulcast: layer not taken', { layer: track.rid, err });
      return false;
    }
    this.log.info('WHIP simulcast: the feed moves to another layer', {
      from: current.rid,
      to: track.rid,
      why: stalled ? 'stalled' : 'larger',
    });
    return true;
  }

  /** A video stream's picture size in pixels, once a key frame told it. */
  private area(v: InTrack): number | undefined {
    if (v.size !== undefined) return v.size.width * v.size.height;
    if (v.config === undefined) return undefined;
    try {
      const f = videoFieldsOf(this.videoCodec === 'h265' ? 'h265' : 'h264', v.config);
      return f.width !== undefined && f.height !== undefined ? f.width * f.height : undefined;
    } catch {
      return undefined;
    }
  }

  private onRtp(track: InTrack, rtp: WeriftRtpPacket): void {
    const now = Date.now();
    const main = this.sinks[0] as Sink;
    this.conn.bytesIn += rtp.payload.length + 12;
    main.session.touch(rtp.payload.length + 12, now);
    if (rtp.payload.length === 0) return; // padding-only packets (the browser's bandwidth probes)
    if (track.kind === 'video') track.ssrc = rtp.header.ssrc;
    const packet = rtpPacketOf(rtp);
    let units;
    try {
      units = track.depacketizer.push(packet);
    } catch (err) {
      this.errors++;
      if (now - this.lastErrorLogAt > 1000) {
        this.log.warn('WHIP packet dropped', { track: track.rid ?? track.kind, errors: this.errors, err });
        this.lastErrorLogAt = now;
      }
      return;
    }
    if (track.kind === 'video') {
      const config = track.depacketizer.takeConfig?.();
      const size = track.depacketizer.takeSize?.();
      let changed = false;
      if (config !== undefined && (track.config === undefined || !config.equals(track.config))) {
        track.config = config;
        changed = true;
      }
      if (size !== undefined) {
        track.size = size;
        changed = true;
      }
      if (changed) this.videoChanged(track, now);
      else if ((this.sinks[0] as Sink).video === undefined) this.chooseFeedLayer(now);
    }
    if (units.length === 0) return;
    for (const unit of units) {
      const rtpTime = track.unwrap.unwrap(unit.timestamp);
      track.origin ??= { rtp: rtpTime, atMs: now };
      const t90k = msTo90k(track.origin.atMs - this.startedAtMs) + to90k(rtpTime - track.origin.rtp, track.clockRate);
      if (t90k < 0) continue;
      this.framesIn++;
      if (track.kind === 'video') {
        if (unit.keyframe && this.videos.length > 1) this.followLayer(track, now);
        track.lastFrameAt = now;
      }
      const frame = { trackId: track.id, dts90k: t90k, pts90k: t90k, keyframe: unit.keyframe, data: unit.data };
      for (const sink of this.sinks) {
        if (sink.announced && (track.kind === 'audio' || sink.video === track)) sink.session.write(frame, now);
      }
    }
  }

  stop(): void {
    clearInterval(this.pliTimer);
    for (const u of this.unsubscribe.splice(0)) u();
  }
}
