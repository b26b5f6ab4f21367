// RTSP play (RFC 2326 10.4-10.7, 10.10): a session SETs UP tracks of a feed (or of a declared
// `Format rtp` stream) over UDP unicast, TCP interleaved or the stream's multicast group, then
// PLAY walks the feed's shared RTP buffers with an OutputReader (GOP cache first, bounded lag),
// and RTCP sender reports go out every few seconds so players line audio up with video. A PLAY
// whose Range (or URL query) names a past time of a feed with a File plays the recording from
// there instead, at its recorded pace, then live (shifted-play.ts, docs/feed-file.md "RTSP").

import type { Socket } from 'node:net';
import type { MulticastConfig, StreamConfig } from '../../config/config.js';
import type { ConnectionInfo } from '../../access/connections.js';
import type { Feed } from '../../feed/feed.js';
import { RANGE_END_REASON, TimeShiftSource, type ShiftSource } from '../../feedfile/time-shift.js';
import { RecordedRangeSource } from '../../record/recorded-source.js';
import { buildBye, buildSenderReport, parseRtcp } from '../../formats/rtp/rtcp.js';
import { buildSdp, type SdpTrackDescription } from '../../formats/sdp/sdp.js';
import { variantFilter } from '../../streams/output-registry.js';
import type { Logger } from '../../observability/logger.js';
import type { ProtocolContext } from '../protocol-context.js';
import { OutputReader, type ByteSink } from '../../streams/output-reader.js';
import { RtspStatus, type TransportSpec } from './messages.js';
import { isoTime } from '../../feedfile/time-spec.js';
import { clockOf, type PlayStart } from './range.js';
import { forEachInterleaved, type RtpFeedPacketizer, type RtpPacketizers, type RtpVariant } from './rtp-output.js';
import { RtspError, throttled, type ControlConnection, type RtspSession } from './session.js';
import { ShiftedRtpMuxer } from './shifted-play.js';
import { TimeShiftOutput, timeShiftAheadBytes } from '../../streams/time-shift-output.js';
import {
  bindUdpPair,
  rtpPacketBounds,
  sendBounded,
  sendRtpPackets,
  UDP_PACE_MIN_BITS_PER_SECOND,
  UdpPacer,
  type PortRange,
  type UdpPair,
} from './udp.js';

export const SENDER_REPORT_INTERVAL_MS = 5000;

/** What a play URL names: a feed (all its tracks) or a declared stream of one. */
export interface PlayTarget {
  name: string;
  feed: Feed;
  variant: RtpVariant;
  stream: StreamConfig | undefined;
  multicast: MulticastConfig | undefined;
}

/** The multicast port of the i-th track of a stream (MulticastPort + 2i, ref §2.5). */
export function multicastPortOf(multicast: MulticastConfig, index: number, defaultPort: number): number {
  return (multicast.port ?? defaultPort) + 2 * index;
}

/** The SDP answering DESCRIBE for a target, from the tracks the feed has now. */
export function describeTarget(
  target: PlayTarget,
  packetizer: RtpFeedPacketizer,
  serverAddress: string,
  multicastDefaultPort: number,
): string {
  const tracks = packetizer.sendableTracks(variantFilter(target.variant));
  const descriptions: SdpTrackDescription[] = [];
  for (const [i, t] of tracks.entries()) {
    const sender = packetizer.sender(t.id);
    if (sender === undefined) continue;
    descriptions.push({
      kind: t.kind,
      format: sender.format,
      control: `streamid=${t.id}`,
      port: target.multicast !== undefined ? multicastPortOf(target.multicast, i, multicastDefaultPort) : 0,
    });
  }
  const mc = target.multicast;
  return buildSdp({
    sessionName: target.stream?.metadata['title'] ?? target.name,
    originAddress: serverAddress,
    connection:
      mc !== undefined
        ? { address: mc.address, ttl: mc.ttl }
        : { address: serverAddress.includes(':') ? '::' : '0.0.0.0', ttl: undefined },
    tracks: descriptions,
    sessionId: String(Date.now()),
  });
}

interface PlayTrack {
  trackId: number;
  transport: 'udp' | 'tcp' | 'multicast';
  clientAddress: string;
  clientPorts: [number, number];
  pair: UdpPair | undefined;
  /** The feed's SSRC for the track at SETUP: BYE still names it after the feed is gone. */
  ssrc: number | undefined;
  packets: number;
  octets: number;
}

/** What a PLAY answers: headers (Range, ...) and what starts sending once the answer is written. */
export interface PlayReply {
  headers: [string, string][];
  start: () => void;
}

export interface PlaySessionOptions {
  rtpPorts: PortRange;
  multicastDefaultPort: number;
  /** Called when the session ends, so the server can drop it from its table. */
  onClose: (session: PlaySession) => void;
  /** The query of the URL the session was set up with (`?start=-30` for a later PLAY). */
  query?: URLSearchParams;
}

/** A time-shifted play: the session's own TimeShiftOutput of RTP, walked by an OutputReader once PLAY is answered. */
interface ShiftedPlay {
  output: TimeShiftOutput;
  muxer: ShiftedRtpMuxer;
  reader: OutputReader | undefined;
  /** Where the range asked ends (undefined: on into live). */
  endWallMs: number | undefined;
}

/**
 * The Range a time-shifted PLAY answers (RFC 2326 12.29: the range actually played): where it
 * starts (the keyframe at or before the time asked) and the end asked, in the unit asked.
 */
function servedRange(start: Extract<PlayStart, { kind: 'at' }>, startWallMs: number, nowMs: number): string {
  const end = start.endWallMs;
  if (start.unit === 'npt') {
    const back = (nowMs - startWallMs) / 1000;
    return `npt=${back.toFixed(3)}-${end !== undefined ? (back + (end - startWallMs) / 1000).toFixed(3) : ''}`;
  }
  return `clock=${clockOf(startWallMs)}-${end !== undefined ? clockOf(end) : ''}`;
}

export class PlaySession implements RtspSession {
  readonly id: string;
  readonly mode = 'play';
  readonly name: string;
  readonly target: PlayTarget;
  lastSeenMs = Date.now();
  private readonly ctx: ProtocolContext;
  private readonly rtp: RtpPacketizers;
  private readonly options: PlaySessionOptions;
  private readonly log: Logger;
  private readonly tracks = new Map<number, PlayTrack>();
  private control: ControlConnection | undefined;
  private reader: OutputReader | undefined;
  /**
   * The live reader writes straight into the control socket (write coalescing and the native
   * send loop, as HTTP-FLV and RTMP readers): every track of the output is set up interleaved on
   * it, so no chunk needs filtering and no packet needs counting per reader. `bytesOut` (every
   * second) and the sender reports then come from the reader's and the shared sender's counters;
   * the connection's `direct` counter says which path a session takes.
   */
  private direct: { bytesBase: number; stats: NodeJS.Timeout } | undefined;
  /** A time-shifted play in progress (instead of `reader`): its own output, muxer and reader. */
  private shifted: ShiftedPlay | undefined;
  /** The Range answered by the PLAY in force (repeated to a PLAY while playing). */
  private playingRange = 'npt=now-';
  private pausing = false;
  /** A PLAY has been answered (a file stream rewinds only before its first). */
  played = false;
  private srTimer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly info: ConnectionInfo;
  private readonly warnDrop: (message: string, fields?: Record<string, unknown>) => void;
  udpDropped = 0;
  /** Frames sent to UDP tracks in one native sendmmsg() (the rest: one dgram send() per packet). */
  private readonly udpSends = { nativeSends: 0 };
  /** Packets the player says it lost (RTCP receiver reports, cumulative, per SSRC). */
  private readonly lostBySsrc = new Map<number, number>();
  /** Spreads what UDP tracks get when the reader catches up (the GOP cache at PLAY). */
  private readonly pacer = new UdpPacer(
    () => Math.max(UDP_PACE_MIN_BITS_PER_SECOND, 4 * this.target.feed.inputRate.bitsPerSecond()) / 8,
  );

  constructor(
    ctx: ProtocolContext,
    rtp: RtpPacketizers,
    id: string,
    target: PlayTarget,
    control: ControlConnection,
    options: PlaySessionOptions,
  ) {
    this.ctx = ctx;
    this.rtp = rtp;
    this.id = id;
    this.target = target;
    this.name = target.name;
    this.control = control;
    this.options = options;
    this.log = ctx.log.child({ rtspSession: id, reader: control.remoteAddress, stream: target.name });
    this.warnDrop = throttled((m, f) => this.log.warn(m, f));
    this.info = ctx.connections.open('RTSP/RTP', control.remoteAddress);
    this.info.role = 'reader';
    this.info.target = target.name;
    this.info.state = 'READY';
  }

  /** What the player reports lost (RTCP receiver reports), over all its tracks. */
  get packetsLost(): number {
    let n = 0;
    for (const lost of this.lostBySsrc.values()) n += lost;
    return n;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get state(): 'ready' | 'playing' {
    return this.reader !== undefined || this.shifted !== undefined ? 'playing' : 'ready';
  }

  /** UDP sessions live on without their control connection, until TEARDOWN or the timeout. */
  get expires(): boolean {
    return ![...this.tracks.values()].some((t) => t.transport === 'tcp');
  }

  /** The query of the URL the session was set up with. */
  get setupQuery(): URLSearchParams {
    return this.options.query ?? new URLSearchParams();
  }

  get trackIds(): number[] {
    return [...this.tracks.keys()];
  }

  /** Sets up one track; returns the Transport header of the answer. */
  async setupTrack(trackId: number, specs: readonly TransportSpec[], conn: ControlConnection): Promise<string> {
    if (this.tracks.has(trackId)) {
      throw new RtspError(
        RtspStatus.methodNotValidInThisState,
        `track ${trackId} of ${this.name} is already set up in session ${this.id}`,
      );
    }
    if (this.state === 'playing') {
      throw new RtspError(RtspStatus.methodNotValidInThisState, 'SETUP while playing: PAUSE or TEARDOWN first');
    }
    const packetizer = this.rtp.packetizerOf(this.target.feed);
    const sendable = packetizer.sendableTracks(variantFilter(this.target.variant));
    const index = sendable.findIndex((t) => t.id === trackId);
    if (index < 0) throw new RtspError(RtspStatus.notFound, `${this.name} has no track streamid=${trackId} that RTP can carry`);
    // The feed's sender of the track, made now if no DESCRIBE made it: its SSRC is what BYE names.
    const ssrc = packetizer.sender(trackId)?.ssrc;
    for (const spec of specs) {
      if (spec.mode !== 'play') continue;
      if (!spec.protocol.startsWith('RTP/AVP')) continue;
      if (spec.multicast) {
        const mc = this.target.multicast;
        if (mc === undefined) continue;
        const port = multicastPortOf(mc, index, this.options.multicastDefaultPort);
        this.tracks.set(trackId, {
          trackId,
          transport: 'multicast',
          clientAddress: mc.address,
          clientPorts: [port, port + 1],
          pair: undefined,
          ssrc,
          packets: 0,
          octets: 0,
        });
        return `RTP/AVP;multicast;destination=${mc.address};port=${port}-${port + 1};ttl=${mc.ttl}`;
      }
      if (spec.lower === 'tcp') {
        if (this.control !== conn) continue;
        const channel = trackId * 2;
        this.tracks.set(trackId, {
          trackId,
          transport: 'tcp',
          clientAddress: conn.remoteAddress,
          clientPorts: [channel, channel + 1],
          pair: undefined,
          ssrc,
          packets: 0,
          octets: 0,
        });
        conn.onChannel(channel + 1, (data) => this.onRtcp(data));
        conn.onChannel(channel, () => undefined);
        return `RTP/AVP/TCP;unicast;interleaved=${channel}-${channel + 1}`;
      }
      if (spec.clientPort === undefined) continue;
      const pair = await bindUdpPair(conn.localAddress, this.options.rtpPorts, (err) =>
        this.warnDrop('RTP send failed', { err: err.message }),
      );
      if (this.closed) {
        pair.close();
        throw new RtspError(RtspStatus.sessionNotFound, `session ${this.id} ended during SETUP`);
      }
      const clientAddress = conn.remoteAddress;
      const track: PlayTrack = {
        trackId,
        transport: 'udp',
        clientAddress,
        clientPorts: spec.clientPort,
        pair,
        ssrc,
        packets: 0,
        octets: 0,
      };
      pair.rtcp.on('message', (msg, rinfo) => {
        if (rinfo.address === clientAddress) this.onRtcp(msg);
      });
      pair.rtp.on('message', () => undefined); // players punch holes with dummy packets
      this.tracks.set(trackId, track);
      return `RTP/AVP/UDP;unicast;client_port=${spec.clientPort[0]}-${spec.clientPort[1]};server_port=${pair.ports[0]}-${pair.ports[1]};ssrc=${(ssrc ?? 0).toString(16).padStart(8, '0')}`;
    }
    const offered = specs.map((s) => `${s.protocol}${s.multicast ? ';multicast' : ''}`).join(', ') || 'nothing';
    const hint =
      this.target.multicast !== undefined
        ? 'RTP/AVP (UDP with client_port), RTP/AVP/TCP (interleaved) or multicast'
        : 'RTP/AVP (UDP with client_port) or RTP/AVP/TCP (interleaved)';
    throw new RtspError(RtspStatus.unsupportedTransport, `transport ${offered} is not supported for ${this.name}; use ${hint}`);
  }

  /**
   * Checks that PLAY is valid now and returns its answer's headers and what starts sending: the
   * caller runs it after writing the PLAY response, so no RTP reaches a TCP client before the answer
   * (ffmpeg drops interleaved data that comes before the reply, and with it the first keyframe).
   * Live plays start from the newest keyframe; a past time opens the feed file there first, so a
   * time the file does not hold is refused (457) before anything is sent.
   */
  async play(start: PlayStart): Promise<PlayReply> {
    if (this.tracks.size === 0) throw new RtspError(RtspStatus.methodNotValidInThisState, 'PLAY before any SETUP');
    this.played = true;
    if (start.kind === 'live') {
      // PLAY while playing: a no-op (RFC 2326 10.5 allows it).
      if (this.state === 'playing') return { headers: [['Range', this.playingRange]], start: () => undefined };
      const unicast = [...this.tracks.values()].some((t) => t.transport !== 'multicast');
      this.info.state = 'SEND_DATA';
      this.playingRange = 'npt=now-';
      // Multicast tracks are sent by the stream's always-on sender.
      return { headers: [['Range', this.playingRange]], start: unicast ? () => this.start() : () => undefined };
    }
    return this.playShifted(start);
  }

  private async playShifted(start: Extract<PlayStart, { kind: 'at' }>): Promise<PlayReply> {
    const feed = this.target.feed;
    if (![...this.tracks.values()].some((t) => t.transport !== 'multicast')) {
      throw new RtspError(
        RtspStatus.invalidRange,
        `${this.name}: a multicast session plays live only; set up unicast (UDP or TCP) to start at ${start.asked}`,
      );
    }
    const file = this.ctx.feedFiles.of(feed);
    const recordings = this.ctx.recordings.of(feed.key);
    if (file === undefined && recordings === undefined) {
      throw new RtspError(
        RtspStatus.invalidRange,
        `feed ${feed.key} keeps no feed file (File in its <Feed> section) and no recordings (Record on), so PLAY cannot start in the past (${start.asked}); without a Range, or with npt=0- or npt=now-, it plays live`,
      );
    }
    const nowMs = Date.now();
    if (start.wallMs > nowMs + 1000) {
      throw new RtspError(
        RtspStatus.invalidRange,
        `${start.asked} is ${isoTime(start.wallMs)}, in the future; the live edge is now (${isoTime(nowMs)})`,
      );
    }
    const opened =
      file !== undefined
        ? await TimeShiftSource.open(file, feed, start.wallMs, {
            maxQueueBytes: this.ctx.config.readerMaxQueueBytes,
            maxLagMs: this.ctx.config.readerMaxLagMs,
            pace: 'realtime', // RTP is sent in real time: players schedule by arrival, and UDP has no backpressure
            ...(start.endWallMs !== undefined ? { endWallMs: start.endWallMs } : {}),
          })
        : undefined;
    // Older than the ring (or no ring): the recordings, up to the end asked for or now.
    const recorded =
      recordings !== undefined && opened?.kind !== 'ok'
        ? await RecordedRangeSource.open(recordings, start.wallMs, {
            endWallMs: start.endWallMs ?? nowMs,
            pace: 'realtime',
          })
        : undefined;
    const chosen: { source: ShiftSource; startWallMs: number } | undefined =
      opened?.kind === 'ok' ? opened : recorded?.kind === 'ok' ? recorded : undefined;
    if (chosen === undefined && opened?.kind === 'out-of-range') {
      const r = opened.range;
      throw new RtspError(
        RtspStatus.invalidRange,
        `${start.asked} (${isoTime(start.wallMs)}) is outside what the feed file of ${feed.key} holds: ` +
          `from ${isoTime(r.oldestWallMs)} to ${isoTime(r.newestWallMs)} (${Math.round((r.newestWallMs - r.oldestWallMs) / 1000)} s)` +
          (recordings !== undefined ? ', and its recordings hold nothing of it' : ''),
        [
          ['Range', `clock=${clockOf(r.oldestWallMs)}-${clockOf(r.newestWallMs)}`],
          ['X-Feedcast-Available', `${isoTime(r.oldestWallMs)}/${isoTime(r.newestWallMs)}`],
        ],
      );
    }
    if (chosen === undefined) {
      throw new RtspError(
        RtspStatus.invalidRange,
        file !== undefined
          ? `the feed file of ${feed.key} holds nothing yet, so ${start.asked} cannot be served`
          : `the recordings of ${feed.key} hold nothing of ${start.asked} (${isoTime(start.wallMs)})`,
      );
    }
    const source = chosen.source;
    // The first item of a join point is its track list.
    const first = await source.next();
    if (this.closed) {
      source.close();
      throw new RtspError(RtspStatus.sessionNotFound, `session ${this.id} ended during PLAY`);
    }
    if (first === undefined || first.kind !== 'tracks') {
      source.close();
      throw new RtspError(
        RtspStatus.serviceUnavailable,
        `the feed file of ${feed.key} could not be read at ${start.asked}; try again`,
      );
    }
    const muxer = new ShiftedRtpMuxer(first.tracks, this.rtp.packetizerOf(feed), this.trackIds, this.log);
    if (muxer.playableTracks === 0) {
      source.close();
      throw new RtspError(
        RtspStatus.invalidRange,
        `at ${start.asked} the feed file of ${feed.key} holds ${first.tracks.map((t) => t.codec).join(', ') || 'no tracks'}, not the tracks this session set up`,
      );
    }
    const output = new TimeShiftOutput(
      `${feed.key}.rtp@${isoTime(chosen.startWallMs)}`,
      source,
      first.tracks,
      () => muxer,
      {
        settings: this.ctx.outputs.settings,
        trackFilter: () => true,
        aheadBytes: timeShiftAheadBytes(this.ctx.config.readerMaxQueueBytes),
      },
      this.log,
    );
    const playback: ShiftedPlay = { output, muxer, reader: undefined, endWallMs: start.endWallMs };
    this.stopPlayback(); // a PLAY with a Range while playing moves the session there
    this.shifted = playback;
    this.info.state = 'SEND_DATA';
    this.info.counters['timeShiftFromMs'] = chosen.startWallMs;
    this.playingRange = servedRange(start, chosen.startWallMs, nowMs);
    this.log.info('time-shift play', {
      source: opened?.kind === 'ok' ? 'feed file' : 'recordings',
      from: isoTime(chosen.startWallMs),
      ...(start.endWallMs !== undefined ? { to: isoTime(start.endWallMs) } : {}),
      asked: start.asked,
    });
    return {
      headers: [
        ['Range', this.playingRange],
        ['X-Feedcast-Start', isoTime(chosen.startWallMs)],
        ...(start.endWallMs !== undefined ? ([['X-Feedcast-End', isoTime(start.endWallMs)]] as [string, string][]) : []),
      ],
      start: () => this.startShifted(playback),
    };
  }

  private startShifted(playback: ShiftedPlay): void {
    if (this.closed || this.shifted !== playback) return;
    const { output } = playback;
    const reader = new OutputReader(output, this.sink, {
      maxQueueBytes: this.ctx.config.readerMaxQueueBytes,
      maxLagMs: this.ctx.config.readerMaxLagMs,
    });
    playback.reader = reader;
    reader.on('end', (reason, error) => {
      output.close(reason);
      this.info.counters['fileFrames'] = output.stats.fileFrames;
      this.info.counters['liveFrames'] = output.stats.liveFrames;
      this.info.counters['skips'] = reader.stats.skips;
      if (this.shifted !== playback) return; // paused, moved or closed: already let go
      this.shifted = undefined;
      const failure = error ?? output.failure;
      if (failure === undefined && playback.endWallMs !== undefined && reason === RANGE_END_REASON) {
        this.rangeEnded();
        return;
      }
      this.playbackEnded(reason, failure, reader.stats.chunksDropped);
    });
    reader.start();
    output.start();
    this.sendReports();
    this.srTimer = setInterval(() => this.sendReports(), SENDER_REPORT_INTERVAL_MS);
    this.srTimer.unref();
  }

  /** A reader or a shifted play ended by itself: the session ends with it. */
  private playbackEnded(reason: string, error: Error | undefined, dropped: number): void {
    this.stopReports();
    if (error !== undefined) {
      this.log.warn('RTSP reader closed', { reason, err: error, dropped });
      if (!this.expires) this.control?.socket.destroy();
      this.close(reason);
      return;
    }
    this.log.info('stream ended', { reason });
    this.sendBye();
    this.close(reason);
  }

  /**
   * A range played to its end: RTP stops, each track says BYE (RFC 3550 6.6, how RTSP 1.0 players
   * learn a stream ended), and the session stays, ready for another PLAY or TEARDOWN (RFC 2326
   * A.1: a PLAY that reaches the end of its range returns the session to Ready).
   */
  private rangeEnded(): void {
    this.stopReports();
    this.sendBye();
    this.info.state = 'READY';
    this.playingRange = 'npt=now-';
    this.log.info('time range played to its end');
  }

  /** Stops sending (PAUSE, a new PLAY position, close) without ending the session. */
  private stopPlayback(reason = 'paused'): void {
    if (this.reader !== undefined) {
      this.pausing = true;
      this.reader.close(reason);
      this.pausing = false;
    }
    const shifted = this.shifted;
    if (shifted !== undefined) {
      this.shifted = undefined;
      shifted.reader?.close(reason);
      shifted.output.close(reason);
      this.info.counters['fileFrames'] = shifted.output.stats.fileFrames;
      this.info.counters['liveFrames'] = shifted.output.stats.liveFrames;
      this.stopReports();
    }
  }

  private start(): void {
    if (this.closed || this.reader !== undefined) return;
    const feed = this.target.feed;
    const output = this.rtp.output(feed, this.target.variant);
    const socket = this.directSocket();
    const reader = new OutputReader(output, socket ?? this.sink, {
      maxQueueBytes: this.ctx.config.readerMaxQueueBytes,
      maxLagMs: this.ctx.config.readerMaxLagMs,
    });
    this.reader = reader;
    if (socket !== undefined) {
      const stats = setInterval(() => this.updateDirectBytes(reader), 1000);
      stats.unref();
      this.direct = { bytesBase: this.info.bytesOut, stats };
      this.info.counters['direct'] = 1;
    }
    reader.on('end', (reason, error) => {
      this.updateDirectBytes(reader);
      clearInterval(this.direct?.stats);
      this.direct = undefined;
      this.info.counters['direct'] = 0;
      this.reader = undefined;
      this.stopReports();
      if (this.pausing) return;
      this.playbackEnded(reason, error, reader.stats.chunksDropped);
    });
    // Sender reports go first, dated at the first frame the reader gets: a player (ffmpeg's
    // rtpdec) times packets that come before any report from each track's own first packet, and
    // shifts them when the first report comes, so audio went back by up to a frame ("non
    // monotonically increasing dts"). The report's mapping of RTP to wall clock is the same.
    const joinSeq = output.joinSeq();
    const first = joinSeq === undefined ? undefined : output.at(joinSeq);
    const packetizer = this.rtp.packetizerOf(feed);
    this.sendReports(first === undefined ? undefined : packetizer.wallMsOf(first.dts90k));
    reader.start();
    this.srTimer = setInterval(() => this.sendReports(), SENDER_REPORT_INTERVAL_MS);
    this.srTimer.unref();
  }

  /** The control socket, when every sendable track of the output is set up interleaved on it. */
  private directSocket(): Socket | undefined {
    const socket = this.control?.socket;
    if (socket === undefined || socket.destroyed) return undefined;
    if ([...this.tracks.values()].some((t) => t.transport !== 'tcp')) return undefined;
    const sendable = this.rtp.packetizerOf(this.target.feed).sendableTracks(variantFilter(this.target.variant));
    if (sendable.length === 0 || sendable.some((t) => !this.tracks.has(t.id))) return undefined;
    return socket;
  }

  private updateDirectBytes(reader: OutputReader): void {
    if (this.direct !== undefined) this.info.bytesOut = this.direct.bytesBase + reader.stats.bytesSent;
  }

  pause(): void {
    if (this.state !== 'playing') return;
    this.stopPlayback('paused');
    this.info.state = 'READY';
  }

  private readonly sink: ByteSink = {
    write: (chunk) => {
      if (chunk.length < 4) return true;
      const track = this.tracks.get((chunk[1] as number) >> 1);
      if (track === undefined || track.transport === 'multicast') return true;
      if (track.transport === 'tcp') {
        const socket = this.control?.socket;
        if (socket === undefined || socket.destroyed) return true;
        forEachInterleaved(chunk, (_, packet) => {
          track.packets++;
          track.octets += packet.length - 12;
        });
        this.info.bytesOut += chunk.length;
        return socket.write(chunk);
      }
      const pair = track.pair;
      if (pair === undefined) return true;
      const packets = rtpPacketBounds(chunk);
      const sent = sendRtpPackets(pair.rtp, chunk, packets, track.clientPorts[0], track.clientAddress, this.udpSends);
      this.info.counters['udpNativeSends'] = this.udpSends.nativeSends;
      let bytes = packets.bytes;
      let payloadOctets = packets.payloadOctets;
      if (sent < packets.count) {
        bytes = payloadOctets = 0;
        for (let i = 0; i < sent; i++) {
          const length = (packets.bounds[2 * i + 1] as number) - (packets.bounds[2 * i] as number);
          bytes += length;
          payloadOctets += Math.max(0, length - 12);
        }
        this.udpDropped += packets.count - sent;
        this.info.counters['udpDropped'] = this.udpDropped;
        this.warnDrop('UDP send queue full, packets dropped', { dropped: this.udpDropped });
      }
      track.packets += sent;
      track.octets += payloadOctets;
      this.info.bytesOut += bytes;
      return this.pacer.spend(bytes);
    },
    cork: () => this.control?.socket.cork(),
    uncork: () => this.control?.socket.uncork(),
    once: (event, listener) => {
      if (this.pacer.waiting) {
        this.pacer.whenReady(listener);
        return;
      }
      const socket = this.control?.socket;
      if (socket === undefined || socket.destroyed) setImmediate(listener);
      else socket.once(event, listener);
    },
    removeListener: (event, listener) => {
      this.pacer.off(listener);
      this.control?.socket.removeListener(event, listener);
    },
  };

  private onRtcp(data: Buffer): void {
    this.lastSeenMs = Date.now();
    try {
      for (const p of parseRtcp(data)) {
        if (p.type === 'rr') {
          for (const r of p.reports) {
            this.info.counters['fractionLost'] = r.fractionLost;
            this.info.counters['jitter'] = r.jitter;
            this.lostBySsrc.set(r.ssrc, r.cumulativeLost);
            this.info.counters['packetsLost'] = this.packetsLost;
          }
        } else if (p.type === 'bye') {
          this.log.debug('player sent RTCP BYE');
        }
      }
    } catch (err) {
      this.warnDrop('bad RTCP from player', { err: err instanceof Error ? err.message : String(err) });
    }
  }

  private sendRtcp(track: PlayTrack, packet: Buffer): void {
    if (track.transport === 'tcp') {
      const socket = this.control?.socket;
      if (socket === undefined || socket.destroyed) return;
      const frame = Buffer.allocUnsafe(4 + packet.length);
      frame[0] = 0x24;
      frame[1] = track.clientPorts[1];
      frame.writeUInt16BE(packet.length, 2);
      packet.copy(frame, 4);
      socket.write(frame);
    } else if (track.transport === 'udp' && track.pair !== undefined) {
      sendBounded(track.pair.rtcp, packet, track.clientPorts[1], track.clientAddress);
    }
  }

  /** A sender report per track, for the wall-clock time `atMs` (default now). */
  private sendReports(atMs?: number): void {
    const packetizer = this.rtp.packetizerOf(this.target.feed);
    const now = atMs ?? Date.now();
    for (const track of this.tracks.values()) {
      if (track.transport === 'multicast') continue;
      const clock = (this.shifted?.muxer ?? packetizer).clockOf(track.trackId, now);
      if (clock === undefined) continue;
      // A direct reader's packets are not counted one by one: its SSRC's, shared by every reader, are given.
      const sender = this.direct !== undefined && this.shifted === undefined ? packetizer.sender(track.trackId) : undefined;
      const counts = sender ?? track;
      const sr = buildSenderReport(
        clock.ssrc,
        { ntpMs: now, rtpTimestamp: clock.rtpTimestamp, packetCount: counts.packets, octetCount: counts.octets },
        packetizer.cname,
      );
      this.sendRtcp(track, sr);
    }
  }

  private sendBye(): void {
    for (const track of this.tracks.values()) {
      if (track.ssrc !== undefined && track.transport !== 'multicast') this.sendRtcp(track, buildBye(track.ssrc));
    }
  }

  private stopReports(): void {
    if (this.srTimer !== undefined) clearInterval(this.srTimer);
    this.srTimer = undefined;
  }

  connectionClosed(conn: ControlConnection): void {
    if (this.control !== conn) return;
    this.control = undefined;
    if (!this.expires) this.close('connection closed');
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stopReports();
    this.stopPlayback(reason);
    for (const t of this.tracks.values()) {
      // After what was just sent (the BYE): dgram resolves even an IP address on a later tick, and a socket
      // closed before that drops the datagram.
      const pair = t.pair;
      if (pair !== undefined) setImmediate(() => pair.close());
      if (t.transport === 'tcp') {
        this.control?.offChannel(t.clientPorts[0]);
        this.control?.offChannel(t.clientPorts[1]);
      }
    }
    this.ctx.connections.close(this.info);
    this.pacer.stop();
    this.log.info('RTSP session closed', { reason, udpDropped: this.udpDropped, packetsLost: this.packetsLost });
    this.options.onClose(this);
  }
}
