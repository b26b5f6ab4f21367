// RTSP publish (RFC 2326 10.3, 10.11): ANNOUNCE brings the SDP, SETUP (mode=record) binds each
// track to UDP ports or TCP interleaved channels, RECORD attaches the feed's publisher. Packets
// are depacketised into Frames; each track's RTP clock is placed on the publisher's wall clock by
// its first RTCP sender report, so audio and video stay in sync on the feed.

import { FeedcastError, MalformedInputError } from '../../errors.js';
import type { Feed, PublisherSession } from '../../feed/feed.js';
import { parseMpegAudioHeader } from '../../formats/mpeg-audio/mpeg-audio-header.js';
import { inspectMpegVideoPicture } from '../../formats/mpeg-video/sequence-header.js';
import { ingestFormatOf, reorderDepthOf, videoFieldsOf, type IngestFormat, type RtpFormat } from '../../formats/rtp/formats.js';
import type { DepacketizedFrame, RtpDepacketizer } from '../../formats/rtp/payload.js';
import { parseRtcp } from '../../formats/rtp/rtcp.js';
import { looksLikeRtcp, parseRtpPacket } from '../../formats/rtp/rtp-packet.js';
import { parseSdp, rtpFormatOfMedia } from '../../formats/sdp/sdp.js';
import type { ConnectionInfo } from '../../access/connections.js';
import { DtsFromPts } from '../../media/dts-from-pts.js';
import { Unwrapper } from '../../media/timebase.js';
import type { Track } from '../../media/track.js';
import type { Logger } from '../../observability/logger.js';
import type { ProtocolContext } from '../protocol-context.js';
import { RtspStatus, type TransportSpec } from './messages.js';
import { RtspError, throttled, type ControlConnection, type RtspSession } from './session.js';
import { bindUdpPair, type PortRange, type UdpPair } from './udp.js';

/** How long frames of a track wait for its first sender report before arrival time is used. */
const SR_WAIT_MS = 1500;
/** How long frames wait for every track's codec details (MPEG audio layer, ...) before the ready ones go. */
const TRACKS_WAIT_MS = 3000;
const MAX_HELD_FRAMES = 2000;
const MAX_HELD_BYTES = 16 * 1024 * 1024;

export interface AnnouncedMedia {
  control: string | undefined;
  format: RtpFormat;
  /** undefined: a format Feedcast does not take (the reason says which). */
  ingest: IngestFormat | undefined;
  unsupportedReason: string | undefined;
}

export interface Announcement {
  name: string;
  feed: Feed;
  media: AnnouncedMedia[];
}

/** Reads an ANNOUNCE body; throws RtspError (400 unreadable, 415 nothing Feedcast can take). */
export function readAnnouncement(name: string, feed: Feed, contentType: string | undefined, body: Buffer): Announcement {
  if (contentType !== undefined && !contentType.toLowerCase().startsWith('application/sdp')) {
    throw new RtspError(RtspStatus.unsupportedMediaType, `ANNOUNCE body is ${contentType}, expected application/sdp`);
  }
  let desc;
  try {
    desc = parseSdp(body.toString('utf8'));
  } catch (err) {
    if (err instanceof MalformedInputError) throw new RtspError(RtspStatus.badRequest, `ANNOUNCE: ${err.message}`);
    throw err;
  }
  const media: AnnouncedMedia[] = desc.media.map((m) => {
    const format = rtpFormatOfMedia(m);
    try {
      return { control: m.control, format, ingest: ingestFormatOf(format), unsupportedReason: undefined };
    } catch (err) {
      if (!(err instanceof FeedcastError)) throw err;
      return { control: m.control, format, ingest: undefined, unsupportedReason: err.message };
    }
  });
  if (!media.some((m) => m.ingest !== undefined)) {
    const reasons = media.map((m) => m.unsupportedReason).filter((r) => r !== undefined);
    throw new RtspError(
      RtspStatus.unsupportedMediaType,
      `ANNOUNCE: no track Feedcast can take${reasons.length > 0 ? `: ${reasons.join('; ')}` : ' (no media sections)'}`,
    );
  }
  return { name, feed, media };
}

interface IngestTrack {
  index: number;
  ingest: IngestFormat;
  depacketizer: RtpDepacketizer;
  unwrap: Unwrapper;
  track: Track;
  ready: boolean;
  transport: 'udp' | 'tcp' | undefined;
  pair: UdpPair | undefined;
  /** First sender report: RTP time (unwrapped) <-> publisher wall clock. */
  sr: { rtp: number; ntpMs: number } | undefined;
  firstArrival: { rtp: number; localMs: number } | undefined;
  /** H.264/H.265: RTP carries only PTS; DTS are derived from them with the SPS's reorder depth. */
  dts: DtsFromPts | undefined;
}

interface HeldFrame {
  track: IngestTrack;
  rtp: number;
  data: Buffer;
  keyframe: boolean;
}

export interface RecordSessionOptions {
  rtpPorts: PortRange;
  onClose: (session: RecordSession) => void;
}

export class RecordSession implements RtspSession {
  readonly id: string;
  readonly mode = 'record';
  readonly name: string;
  readonly expires = true;
  lastSeenMs = Date.now();
  private readonly ctx: ProtocolContext;
  private readonly announcement: Announcement;
  private readonly options: RecordSessionOptions;
  private readonly log: Logger;
  private readonly tracks = new Map<number, IngestTrack>();
  private control: ControlConnection | undefined;
  private publisher: PublisherSession | undefined;
  private announced = false;
  private startedMs = 0;
  private held: HeldFrame[] = [];
  private heldBytes = 0;
  /** Publisher NTP minus local clock, from the first sender report (for tracks that never send one). */
  private ntpOffsetMs: number | undefined;
  private ntpBaseMs: number | undefined;
  private closed = false;
  readonly info: ConnectionInfo;
  private readonly warn: (message: string, fields?: Record<string, unknown>) => void;
  packetsIn = 0;
  badPackets = 0;

  constructor(
    ctx: ProtocolContext,
    id: string,
    announcement: Announcement,
    control: ControlConnection,
    options: RecordSessionOptions,
  ) {
    this.ctx = ctx;
    this.id = id;
    this.announcement = announcement;
    this.name = announcement.name;
    this.control = control;
    this.options = options;
    this.log = ctx.log.child({ rtspSession: id, feed: announcement.feed.key, publisher: control.remoteAddress });
    this.warn = throttled((m, f) => this.log.warn(m, f));
    this.info = control.info;
    this.info.role = 'publisher';
    this.info.target = announcement.feed.name;
    this.info.state = 'READY';
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get feed(): Feed {
    return this.announcement.feed;
  }

  /** The announced media a SETUP URL names: by its a=control, or by streamid=N / position. */
  mediaIndexFor(lastSegment: string, trackId: number | undefined): number {
    const media = this.announcement.media;
    const byControl = media.findIndex(
      (m) => m.control !== undefined && (m.control === lastSegment || m.control.endsWith(`/${lastSegment}`)),
    );
    if (byControl >= 0) return byControl;
    if (trackId !== undefined && trackId < media.length) return trackId;
    if (media.length === 1) return 0;
    throw new RtspError(
      RtspStatus.aggregateNotAllowed,
      `SETUP of "${lastSegment}" does not name one of the ${media.length} announced tracks`,
    );
  }

  async setupTrack(index: number, specs: readonly TransportSpec[], conn: ControlConnection): Promise<string> {
    if (this.publisher !== undefined) throw new RtspError(RtspStatus.methodNotValidInThisState, 'SETUP after RECORD');
    const media = this.announcement.media[index];
    if (media === undefined) throw new RtspError(RtspStatus.notFound, `no announced track ${index}`);
    if (media.ingest === undefined)
      throw new RtspError(RtspStatus.unsupportedMediaType, media.unsupportedReason ?? 'unsupported track');
    if (this.tracks.has(index)) throw new RtspError(RtspStatus.methodNotValidInThisState, `track ${index} is already set up`);
    const ingest = media.ingest;
    const track: IngestTrack = {
      index,
      ingest,
      depacketizer: ingest.createDepacketizer(),
      unwrap: new Unwrapper(2 ** 32),
      track: { id: index, ...ingest.track },
      ready: !ingest.pending,
      transport: undefined,
      pair: undefined,
      sr: undefined,
      firstArrival: undefined,
      dts: undefined,
    };
    for (const spec of specs) {
      if (!spec.protocol.startsWith('RTP/AVP') || spec.multicast) continue;
      if (spec.lower === 'tcp') {
        const [rtpChannel, rtcpChannel] = spec.interleaved ?? [index * 2, index * 2 + 1];
        track.transport = 'tcp';
        conn.onChannel(rtpChannel, (data) => this.onRtp(track, data));
        conn.onChannel(rtcpChannel, (data) => this.onRtcp(track, data));
        this.tracks.set(index, track);
        return `RTP/AVP/TCP;unicast;interleaved=${rtpChannel}-${rtcpChannel};mode=record`;
      }
      if (spec.clientPort === undefined) continue;
      const pair = await bindUdpPair(conn.localAddress, this.options.rtpPorts, (err) =>
        this.warn('UDP socket error', { err: err.message }),
      );
      if (this.closed) {
        pair.close();
        throw new RtspError(RtspStatus.sessionNotFound, `session ${this.id} ended during SETUP`);
      }
      const publisherAddress = conn.remoteAddress;
      track.transport = 'udp';
      track.pair = pair;
      pair.rtp.on('message', (msg, rinfo) => {
        if (rinfo.address !== publisherAddress) return;
        // RFC 5761: some senders multiplex RTCP on the RTP port.
        if (looksLikeRtcp(msg)) this.onRtcp(track, msg);
        else this.onRtp(track, msg);
      });
      pair.rtcp.on('message', (msg, rinfo) => {
        if (rinfo.address === publisherAddress) this.onRtcp(track, msg);
      });
      this.tracks.set(index, track);
      return `RTP/AVP/UDP;unicast;client_port=${spec.clientPort[0]}-${spec.clientPort[1]};server_port=${pair.ports[0]}-${pair.ports[1]};mode=record`;
    }
    const offered = specs.map((s) => s.protocol).join(', ') || 'nothing';
    throw new RtspError(
      RtspStatus.unsupportedTransport,
      `transport ${offered} cannot be recorded; use RTP/AVP (UDP with client_port) or RTP/AVP/TCP (interleaved)`,
    );
  }

  /** RECORD: the feed's one publisher slot is taken now. Throws FeedBusyError when it is not free. */
  record(): void {
    if (this.tracks.size === 0) throw new RtspError(RtspStatus.methodNotValidInThisState, 'RECORD before any SETUP');
    if (this.publisher !== undefined) return;
    const remote = this.control?.remoteAddress ?? this.info.remoteAddress;
    this.publisher = this.feed.attachPublisher({ protocol: 'rtsp', remoteAddress: remote, startedAt: new Date() });
    this.publisher.on('end', (reason) => {
      if (!this.closed && reason.startsWith('replaced')) {
        this.log.warn('publisher replaced, closing its connection', { reason });
        this.control?.socket.destroy();
        this.close(reason);
      }
    });
    this.startedMs = Date.now();
    this.info.state = 'RECEIVE_DATA';
    this.log.info('RTSP publishing', {
      tracks: [...this.tracks.values()].map((t) => `${t.index}:${t.track.codec}/${t.transport ?? '?'}`).join(','),
    });
  }

  private onRtp(track: IngestTrack, data: Buffer): void {
    const now = Date.now();
    this.lastSeenMs = now;
    this.info.bytesIn += data.length;
    const publisher = this.publisher;
    if (publisher === undefined || this.closed) return;
    publisher.touch(data.length, now);
    this.packetsIn++;
    let units: DepacketizedFrame[];
    try {
      units = track.depacketizer.push(parseRtpPacket(data));
    } catch (err) {
      if (!(err instanceof FeedcastError)) throw err;
      this.badPackets++;
      this.info.counters['badPackets'] = this.badPackets;
      this.warn('RTP packet dropped', { track: track.index, err: err.message, badPackets: this.badPackets });
      return;
    }
    const config = track.depacketizer.takeConfig?.();
    const size = track.depacketizer.takeSize?.();
    for (const unit of units) {
      const rtp = track.unwrap.unwrap(unit.timestamp);
      track.firstArrival ??= { rtp, localMs: now };
      this.learn(track, unit, config, size);
      this.hold({ track, rtp, data: unit.data, keyframe: unit.keyframe });
    }
    this.release(now);
  }

  /** Fills in what the SDP did not say from the first frames (ref: IngestFormat.pending). */
  private learn(
    track: IngestTrack,
    unit: DepacketizedFrame,
    config: Buffer | undefined,
    size: { width: number; height: number } | undefined,
  ): void {
    const before = track.track;
    const codec = track.track.codec;
    try {
      if (codec === 'h264' || codec === 'h265') {
        if (config !== undefined) track.track = { ...track.track, ...videoFieldsOf(codec, config) };
      } else if (codec === 'vp8' || codec === 'vp9' || codec === 'av1') {
        // Size from key frames (VP8, VP9) or the sequence header (AV1, with its av1C as config).
        if (size !== undefined && (size.width !== track.track.width || size.height !== track.track.height)) {
          track.track = { ...track.track, width: size.width, height: size.height };
        }
        if (config !== undefined) track.track = { ...track.track, config };
      } else if (track.track.codec === 'mp2' || track.track.codec === 'mp3') {
        if (!track.ready) {
          const h = parseMpegAudioHeader(unit.data);
          track.track = { ...track.track, codec: h.layer === 3 ? 'mp3' : 'mp2', sampleRate: h.sampleRate, channels: h.channels };
        }
      } else if ((track.track.codec === 'mpeg1video' || track.track.codec === 'mpeg2video') && !track.ready && unit.keyframe) {
        const info = inspectMpegVideoPicture(unit.data);
        if (info.sequence !== undefined) {
          track.track = {
            ...track.track,
            codec: info.mpeg2 ? 'mpeg2video' : 'mpeg1video',
            width: info.sequence.width,
            height: info.sequence.height,
          };
        }
      }
    } catch (err) {
      if (!(err instanceof FeedcastError)) throw err;
      this.warn('cannot read codec details from a frame', { track: track.index, err: err.message });
      return;
    }
    let learnt: boolean;
    if (codec === 'h264' || codec === 'h265') learnt = track.track.config !== undefined;
    else if (codec === 'vp8' || codec === 'vp9') learnt = track.track.width !== undefined;
    else if (codec === 'av1') learnt = track.track.width !== undefined && track.track.config !== undefined;
    else learnt = track.track !== before || track.ready;
    if (learnt && !track.ready) track.ready = true;
    if (track.track !== before && this.announced) this.publisher?.setTracks(this.readyTracks());
  }

  private readyTracks(): Track[] {
    return [...this.tracks.values()].filter((t) => t.ready).map((t) => t.track);
  }

  private hold(frame: HeldFrame): void {
    this.held.push(frame);
    this.heldBytes += frame.data.length;
    while (this.held.length > MAX_HELD_FRAMES || this.heldBytes > MAX_HELD_BYTES) {
      const dropped = this.held.shift();
      if (dropped === undefined) break;
      this.heldBytes -= dropped.data.length;
      this.warn('frames waiting for track details or timing dropped', { held: this.held.length });
    }
  }

  /** Publisher-clock time (ms) of an RTP time on a track, or undefined while its clock is unknown. */
  private ntpOf(track: IngestTrack, rtp: number, nowMs: number): number | undefined {
    const rate = track.ingest.clockRate;
    if (track.sr === undefined) {
      const first = track.firstArrival;
      if (first === undefined || nowMs - first.localMs < SR_WAIT_MS) return undefined;
      // No sender report in time: place the track by arrival (publisher clock if another track told it).
      track.sr = { rtp: first.rtp, ntpMs: first.localMs + (this.ntpOffsetMs ?? 0) };
      this.log.info('no RTCP sender report, timing the track by arrival', { track: track.index });
    }
    return track.sr.ntpMs + ((rtp - track.sr.rtp) * 1000) / rate;
  }

  private release(nowMs: number): void {
    const publisher = this.publisher;
    if (publisher === undefined) return;
    if (!this.announced) {
      const all = [...this.tracks.values()];
      const waited = nowMs - this.startedMs;
      if (!all.every((t) => t.ready) && waited < TRACKS_WAIT_MS) return;
      const ready = this.readyTracks();
      if (ready.length === 0) return;
      const missing = all.filter((t) => !t.ready);
      if (missing.length > 0)
        this.log.warn('tracks without codec details are left out', { tracks: missing.map((t) => t.index).join(',') });
      publisher.setTracks(ready);
      this.announced = true;
    }
    const keep: HeldFrame[] = [];
    for (const f of this.held) {
      if (!f.track.ready) {
        keep.push(f);
        continue;
      }
      const ntp = this.ntpOf(f.track, f.rtp, nowMs);
      if (ntp === undefined) {
        keep.push(f);
        continue;
      }
      this.ntpBaseMs ??= ntp;
      const t90k = Math.round((ntp - this.ntpBaseMs) * 90);
      const dts90k = this.dtsOf(f.track, t90k);
      publisher.write({ trackId: f.track.index, dts90k, pts90k: t90k, keyframe: f.keyframe, data: f.data }, nowMs);
    }
    if (keep.length !== this.held.length) {
      this.held = keep;
      this.heldBytes = keep.reduce((n, f) => n + f.data.length, 0);
    }
  }

  /** The DTS of a frame with PTS `pts90k`: derived for H.264/H.265 (B-frames), the PTS otherwise. */
  private dtsOf(track: IngestTrack, pts90k: number): number {
    const codec = track.track.codec;
    if (codec !== 'h264' && codec !== 'h265') return pts90k;
    if (track.dts === undefined) {
      let depth = 0;
      try {
        if (track.track.config !== undefined) depth = reorderDepthOf(codec, track.track.config);
      } catch (err) {
        if (!(err instanceof FeedcastError)) throw err;
      }
      track.dts = new DtsFromPts(depth);
      this.log.debug('video DTS derived from PTS', { track: track.index, reorderDepth: depth });
    }
    const late = track.dts.lateFrames;
    const dts = track.dts.next(pts90k);
    if (track.dts.lateFrames !== late)
      this.warn('video reorders deeper than its SPS says; reorder depth raised', { track: track.index, depth: track.dts.depth });
    return dts;
  }

  private onRtcp(track: IngestTrack, data: Buffer): void {
    const now = Date.now();
    this.lastSeenMs = now;
    try {
      for (const p of parseRtcp(data)) {
        if (p.type === 'sr' && track.sr === undefined) {
          track.sr = { rtp: track.unwrap.unwrap(p.sender.rtpTimestamp), ntpMs: p.sender.ntpMs };
          this.ntpOffsetMs ??= p.sender.ntpMs - now;
        } else if (p.type === 'bye') {
          this.log.info('publisher sent RTCP BYE', { track: track.index });
        }
      }
    } catch (err) {
      if (!(err instanceof FeedcastError)) throw err;
      this.warn('bad RTCP from publisher', { err: err.message });
    }
    this.release(now);
  }

  connectionClosed(conn: ControlConnection): void {
    if (this.control !== conn) return;
    this.control = undefined;
    this.close('connection closed');
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.tracks.values()) t.pair?.close();
    this.publisher?.end(reason);
    this.info.role = 'request';
    this.info.state = 'RTSP_WAIT_REQUEST';
    this.log.info('RTSP publisher session closed', { reason, packets: this.packetsIn, badPackets: this.badPackets });
    this.options.onClose(this);
  }
}
