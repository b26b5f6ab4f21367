// WHEP viewer side: one RTCPeerConnection that sends a feed's shared RTP payloads (rtp-source.ts)
// with its own headers. A new viewer, and any later PLI/FIR, gets the current GOP from its
// keyframe at once, with its timestamps squeezed just behind the live edge so the browser shows
// it without adding delay. NACKs are answered by werift from its last 128 packets per sender.
// A viewer follows the readers' slow-reader policy (streams/slow-reader.ts) over the bytes its
// ICE-TCP connection has not sent: past the bound it skips frames and resumes at a keyframe, and
// one still behind after ReaderMaxLag is closed with ClientTooSlowError. Over UDP nothing queues:
// what the network cannot carry is lost, and the browser asks for a keyframe (PLI). The viewer of a
// simulcast feed gets the video of one layer feed, moved to another at that layer's next keyframe
// (asked of the publisher) when its bandwidth estimate (REMB) no longer fits the layer or has allowed
// a larger one for a while, or its receiver reports show sustained loss or a long clean spell
// (layer-choice.ts).
// Once DTLS is up, packets go past werift's RTP sender (srtp-sender.ts): per viewer and frame one
// buffer holds its headers, the shared payloads and the SRTP tags, protected in place and sent as
// one batch; NACKs are answered from a ring of those protected packets. werift's sender is the
// fallback (an SRTP profile or header extension this path does not write).

import { RtpHeader, RtpPacket, type RTCDtlsTransport, type RTCPeerConnection, type RTCRtpSender } from 'werift';
import { randomInt } from 'node:crypto';
import type { ConnectionInfo } from '../../access/connections.js';
import { detach } from '../../observability/detach.js';
import type { Logger } from '../../observability/logger.js';
import { SlowReaderPolicy, type SlowReaderLimits } from '../../streams/slow-reader.js';
import type { FeedRtpSource, SharedPacket } from './rtp-source.js';
import { BitrateMeter, PACKET_OVERHEAD_BYTES, rembOf } from './bandwidth-estimate.js';
import { LAYER_STALL_MS, LayerChoice } from './layer-choice.js';
import { noteSent, SrtpSender } from './srtp-sender.js';

/** A WHEP viewer's bound on unsent bytes is ReaderMaxQueue, at most this (the UDP mux drops past 1 MiB). */
export const WHEP_MAX_BACKLOG_BYTES = 512 * 1024;

const TS_SPAN = 2 ** 32;
/** PLIs closer together than this replay the GOP once. */
const MIN_REPLAY_INTERVAL_MS = 500;

/** RTP header extension URIs werift writes on what it sends (werift's RTP_EXTENSION_URI). */
const SDES_MID_URI = 'urn:ietf:params:rtp-hdrext:sdes:mid';
const ABS_SEND_TIME_URI = 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time';
const TWCC_URI = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';

/** Protected packets kept per stream for NACKs (werift kept 128 too). */
const NACK_HISTORY = 128;
/** The direct path's buffer size: about a quarter of a second of a 2 Mb/s feed. */
const SLAB_BYTES = 64 * 1024;

/**
 * An RTP header with one-byte extensions (RFC 8285 4.2) laid out once per stream: the SSRC, the
 * extensions that never change (mid, playout-delay) and where the per-packet ones go.
 */
interface HeaderTemplate {
  bytes: Buffer;
  /** Offset in the header of abs-send-time's 3 bytes, and of transport-wide-cc's 2, or -1. */
  absSendTimeAt: number;
  twccAt: number;
}

/**
 * The header werift would write for `sender` (its negotiated extensions, plus `extra`), or why this
 * path cannot: an extension id or size the one-byte form cannot carry, or one it does not know.
 */
export function headerTemplate(
  ssrc: number,
  negotiated: readonly { id: number; uri: string }[],
  mid: string | undefined,
  extra: readonly { id: number; payload: Buffer }[],
): HeaderTemplate | string {
  const elements = new Map<number, { payload: Buffer; kind: 'fixed' | 'abs' | 'twcc' }>();
  for (const e of negotiated) {
    if (e.uri === SDES_MID_URI && mid !== undefined) elements.set(e.id, { payload: Buffer.from(mid, 'utf8'), kind: 'fixed' });
    else if (e.uri === ABS_SEND_TIME_URI) elements.set(e.id, { payload: Buffer.alloc(3), kind: 'abs' });
    else if (e.uri === TWCC_URI) elements.set(e.id, { payload: Buffer.alloc(2), kind: 'twcc' });
  }
  for (const e of extra) elements.set(e.id, { payload: e.payload, kind: 'fixed' });
  let extBytes = 0;
  for (const [id, e] of elements) {
    if (id < 1 || id > 14 || e.payload.length < 1 || e.payload.length > 16)
      return `header extension ${id} (${e.payload.length} bytes)`;
    extBytes += 1 + e.payload.length;
  }
  const words = Math.ceil(extBytes / 4);
  const bytes = Buffer.alloc(12 + (elements.size > 0 ? 4 + words * 4 : 0));
  bytes[0] = elements.size > 0 ? 0x90 : 0x80; // version 2, extension bit
  bytes.writeUInt32BE(ssrc >>> 0, 8);
  let absSendTimeAt = -1;
  let twccAt = -1;
  if (elements.size > 0) {
    bytes.writeUInt16BE(0xbede, 12);
    bytes.writeUInt16BE(words, 14);
    let at = 16;
    for (const [id, e] of [...elements].sort((a, b) => a[0] - b[0])) {
      bytes[at++] = (id << 4) | (e.payload.length - 1);
      if (e.kind === 'abs') absSendTimeAt = at;
      if (e.kind === 'twcc') twccAt = at;
      e.payload.copy(bytes, at);
      at += e.payload.length;
    }
  }
  return { bytes, absSendTimeAt, twccAt };
}

/** abs-send-time (6.18 fixed-point seconds, 24 bits): the low 6 bits of the seconds, NTP or Unix alike. */
function absSendTime(nowMs: number): number {
  return Math.floor((nowMs / 1000) * 262_144) % 16_777_216;
}

/** One outgoing RTP stream of a viewer: its own sequence numbers and timestamp mapping. */
class OutStream {
  private readonly sender: RTCRtpSender;
  private readonly clockRate: number;
  private readonly conn: ConnectionInfo;
  private readonly extensions: { id: number; payload: Buffer }[];
  private seq = randomInt(0, 0x10000);
  /** Times the sequence number wrapped (the SRTP rollover counter, RFC 3711 3.3.1). */
  private roc = 0;
  private readonly tsBase = randomInt(0, 2 ** 31);
  /** Added to live timestamps after a replay pushed the output past them. */
  private tsShift = 0;
  /** Last timestamp sent (unwrapped), and the frame it belonged to. */
  private lastTs: number | undefined;
  private lastFrame = -1;
  packetsSent = 0;
  sendErrors = 0;
  /** Set by direct(): packets go past werift's sender. */
  private srtp: SrtpSender | undefined;
  private template: HeaderTemplate | undefined;
  private payloadType = 0;
  /** The packets of the frame (or replay) being written, sent together by flush(). */
  private readonly pending: SharedPacket[] = [];
  private readonly pendingTs: number[] = [];
  private ends = new Int32Array(64);
  /** Per pending packet: its start, header bytes, payload bytes and rollover counter (SrtpProtector.protectAll). */
  private layout = new Int32Array(256);
  /** Where flush() writes: one allocation per SLAB_BYTES sent rather than one per frame. */
  private slab = Buffer.alloc(0);
  private slabAt = 0;
  /** NACK history: the protected packet of each of the last NACK_HISTORY sequence numbers. */
  private readonly ringSeq = new Int32Array(NACK_HISTORY).fill(-1);
  private readonly ringBuf: (Buffer | undefined)[] = new Array<Buffer | undefined>(NACK_HISTORY);
  private readonly ringStart = new Int32Array(NACK_HISTORY);
  private readonly ringEnd = new Int32Array(NACK_HISTORY);
  /** 1 once the packet in the slot was NACKed. */
  private readonly ringNacked = new Uint8Array(NACK_HISTORY);
  retransmits = 0;

  constructor(sender: RTCRtpSender, clockRate: number, conn: ConnectionInfo, extensions: { id: number; payload: Buffer }[]) {
    this.sender = sender;
    this.clockRate = clockRate;
    this.conn = conn;
    this.extensions = extensions;
  }

  /**
   * Sends past werift's sender from now on, through `srtp`; returns why not when this stream's
   * header cannot be written here (werift goes on sending it).
   */
  direct(srtp: SrtpSender): string | undefined {
    const codec = this.sender.codec;
    if (codec === undefined) return 'no codec negotiated';
    // werift keeps these private; they are what its own sendRtp writes.
    const negotiated = this.sender as unknown as { headerExtensions: { id: number; uri: string }[]; mid?: string };
    const template = headerTemplate(this.sender.ssrc, negotiated.headerExtensions, negotiated.mid, this.extensions);
    if (typeof template === 'string') return template;
    this.srtp = srtp;
    this.template = template;
    this.payloadType = codec.payloadType;
    return undefined;
  }

  /**
   * werift decoded a NACK (RFC 4585 6.2.1): the packets still in the ring go again, as they were.
   * Returns how many of them were asked for the first time (the loss the layer choice counts).
   */
  nacked(lost: readonly number[]): number {
    const srtp = this.srtp;
    if (srtp === undefined) return 0;
    let first = 0;
    for (const seq of lost) {
      const i = seq % NACK_HISTORY;
      const buf = this.ringBuf[i];
      if (this.ringSeq[i] !== seq || buf === undefined) continue;
      srtp.resend(buf, this.ringStart[i] as number, this.ringEnd[i] as number);
      this.retransmits++;
      if (this.ringNacked[i] === 0) first++;
      this.ringNacked[i] = 1;
    }
    return first;
  }

  private liveTs(pts90k: number): number {
    return this.tsBase + Math.round((pts90k * this.clockRate) / 90_000) + this.tsShift;
  }

  /** Live packets: timestamps follow the feed clock, never going back behind what was sent. */
  sendLive(packets: readonly SharedPacket[]): void {
    for (const p of packets) {
      let ts = this.liveTs(p.pts90k);
      if (p.frame !== this.lastFrame && this.lastTs !== undefined && ts <= this.lastTs) {
        this.tsShift += this.lastTs + 1 - ts;
        ts = this.lastTs + 1;
      } else if (p.frame === this.lastFrame && this.lastTs !== undefined) {
        ts = this.lastTs;
      }
      this.write(p, ts);
    }
    this.flush();
  }

  /**
   * The GOP from its keyframe, each frame one tick after the previous one, ending at the newest
   * frame's own time (first start) or just after what was sent (a later keyframe request).
   */
  sendReplay(packets: readonly SharedPacket[]): void {
    if (packets.length === 0) return;
    const frames = new Set(packets.map((p) => p.frame)).size;
    const newest = packets[packets.length - 1] as SharedPacket;
    let ts = this.lastTs !== undefined ? this.lastTs + 1 : this.liveTs(newest.pts90k) - (frames - 1);
    let frame = (packets[0] as SharedPacket).frame;
    for (const p of packets) {
      if (p.frame !== frame) {
        frame = p.frame;
        ts++;
      }
      this.write(p, ts);
    }
    this.flush();
    this.lastFrame = -1; // the next live packet starts a new frame even if it repeats an index
  }

  private write(p: SharedPacket, ts: number): void {
    this.lastTs = ts;
    this.lastFrame = p.frame;
    this.packetsSent++;
    this.conn.bytesOut += p.payload.length + 12;
    if (this.srtp !== undefined) {
      this.pending.push(p);
      this.pendingTs.push(ts);
      return;
    }
    const header = new RtpHeader({
      payloadType: 0, // werift writes the negotiated type and the sender's SSRC
      sequenceNumber: this.seq,
      timestamp: ts % TS_SPAN,
      marker: p.marker,
      ssrc: 0,
    });
    if (this.extensions.length > 0) {
      header.extension = true;
      header.extensions = this.extensions.map((e) => ({ id: e.id, payload: e.payload }));
    }
    this.seq = (this.seq + 1) & 0xffff;
    this.sender.sendRtp(new RtpPacket(header, p.payload)).catch(() => {
      this.sendErrors++;
    });
  }

  /** The pending packets, headed, protected and sent in one buffer of this viewer's (direct path). */
  private flush(): void {
    const srtp = this.srtp;
    const template = this.template;
    const count = this.pending.length;
    if (srtp === undefined || template === undefined || count === 0) return;
    const headerBytes = template.bytes.length;
    const tagBytes = srtp.tagBytes;
    let total = 0;
    let payloadBytes = 0;
    for (const p of this.pending) {
      total += headerBytes + p.payload.length + tagBytes;
      payloadBytes += p.payload.length;
    }
    // Each frame gets bytes of the slab never handed out before: datagrams Node still queues and
    // the NACK ring keep referring to earlier ones. A full slab is left to them and the GC.
    if (this.slab.length - this.slabAt < total) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, total));
      this.slabAt = 0;
    }
    const buf = this.slab.subarray(this.slabAt, this.slabAt + total);
    this.slabAt += total;
    if (this.ends.length < count) this.ends = new Int32Array(Math.max(count, this.ends.length * 2));
    const ends = this.ends;
    const nowMs = Date.now();
    const abs = absSendTime(nowMs);
    const dtls = this.sender.dtlsTransport as RTCDtlsTransport & { transportSequenceNumber: number };
    if (this.layout.length < count * 4) this.layout = new Int32Array(Math.max(count * 4, this.layout.length * 2));
    const layout = this.layout;
    let at = 0;
    let ts = 0;
    for (let i = 0; i < count; i++) {
      const p = this.pending[i] as SharedPacket;
      ts = (this.pendingTs[i] as number) % TS_SPAN;
      template.bytes.copy(buf, at);
      buf[at + 1] = (p.marker ? 0x80 : 0) | this.payloadType;
      buf.writeUInt16BE(this.seq, at + 2);
      buf.writeUInt32BE(ts, at + 4);
      if (template.absSendTimeAt >= 0) {
        buf[at + template.absSendTimeAt] = abs >>> 16;
        buf[at + template.absSendTimeAt + 1] = (abs >>> 8) & 0xff;
        buf[at + template.absSendTimeAt + 2] = abs & 0xff;
      }
      if (template.twccAt >= 0) {
        dtls.transportSequenceNumber = (dtls.transportSequenceNumber + 1) & 0xffff;
        buf.writeUInt16BE(dtls.transportSequenceNumber, at + template.twccAt);
      }
      p.payload.copy(buf, at + headerBytes);
      layout[4 * i] = at;
      layout[4 * i + 1] = headerBytes;
      layout[4 * i + 2] = p.payload.length;
      layout[4 * i + 3] = this.roc;
      const end = at + headerBytes + p.payload.length + tagBytes;
      const slot = this.seq % NACK_HISTORY;
      this.ringSeq[slot] = this.seq;
      this.ringBuf[slot] = buf;
      this.ringStart[slot] = at;
      this.ringEnd[slot] = end;
      this.ringNacked[slot] = 0;
      ends[i] = end;
      at = end;
      this.seq = (this.seq + 1) & 0xffff;
      if (this.seq === 0) this.roc++;
    }
    srtp.protector.protectAll(buf, layout, count);
    this.pending.length = 0;
    this.pendingTs.length = 0;
    srtp.send(buf, ends, count);
    noteSent(this.sender, ts, count, payloadBytes, nowMs);
  }
}

export interface WhepViewerOptions {
  /** Ask the browser to render at once (playout-delay 0/0) when it accepted the extension. */
  playoutDelayExtensionId: number | undefined;
  /** Which of the negotiated sections carry the feed (others were only answered). */
  video: boolean;
  audio: boolean;
  /** Simulcast: the video comes from one of these layer feeds (largest first) instead of the feed. */
  layers?: {
    readonly rids: readonly string[];
    readonly sources: readonly FeedRtpSource[];
    /** The layer to start with. */
    readonly start: number;
    /** Follow the viewer's receiver reports (false: stay on `start`). */
    readonly adaptive: boolean;
    /** Asks the publisher for a keyframe of layer `rid` (PLI), so that a switch happens soon. */
    readonly requestKeyframe: (rid: string) => void;
  };
  /**
   * Send past werift's RTP sender once DTLS is up (srtp-sender.ts). Default true; false keeps
   * werift's sender (the comparison in bench/, and a fallback).
   */
  directSend?: boolean;
  /** The slow-reader policy, when the viewer's packets can queue (ICE-TCP through the mux). */
  slow?: {
    limits: SlowReaderLimits;
    /** Bytes sent to the viewer and not on the network yet. */
    backlog: () => number;
    /** The viewer stayed behind too long: the owner closes it. */
    onTooSlow: (error: Error) => void;
  };
}

/** What `packets` cost on the wire (bandwidth-estimate.ts). */
function wireBytes(packets: readonly SharedPacket[]): number {
  let bytes = 0;
  for (const p of packets) bytes += p.payload.length + PACKET_OVERHEAD_BYTES;
  return bytes;
}

/** Sends one feed to one connected peer until closed. */
export class WhepViewer {
  private readonly source: FeedRtpSource;
  private readonly log: Logger;
  private readonly video: OutStream | undefined;
  private readonly audio: OutStream | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private running = false;
  private lastReplayAt = 0;
  replays = 0;
  private readonly conn: ConnectionInfo;
  private readonly slow: WhepViewerOptions['slow'];
  private readonly policy: SlowReaderPolicy | undefined;
  /** Behind: frames are skipped until a keyframe finds the viewer within its bound. */
  private skipping = false;
  private tooSlow = false;
  /** Times the viewer fell behind and skipped to a keyframe, and the frames it skipped. */
  skips = 0;
  framesSkipped = 0;
  private readonly layers: WhepViewerOptions['layers'];
  private readonly choice: LayerChoice | undefined;
  /** Simulcast: the layer sent, and the one being switched to (at its next keyframe). */
  private layer = 0;
  private pendingLayer: { index: number; off: () => void } | undefined;
  private offVideo: (() => void) | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly layerVideoAt: number[] = [];
  layerSwitches = 0;
  /** What each layer's video and the audio sent measure (bandwidth-estimate.ts), from start(). */
  private readonly layerMeters: BitrateMeter[] = [];
  private audioMeter: BitrateMeter | undefined;
  /** The browser's last bandwidth estimate (REMB), bit/s. */
  bandwidthEstimate: number | undefined;
  /** Why the viewer was last moved. */
  lastSwitch: string | undefined;
  private readonly directSend: boolean;
  /** The video and audio senders (werift's), when those sections are sent. */
  private readonly senders: [RTCRtpSender | undefined, RTCRtpSender | undefined];
  /** The viewer's SRTP session past werift's sender, once DTLS is up (undefined: werift sends). */
  private srtp: SrtpSender | undefined;

  constructor(pc: RTCPeerConnection, source: FeedRtpSource, conn: ConnectionInfo, log: Logger, options: WhepViewerOptions) {
    this.source = source;
    this.log = log;
    this.conn = conn;
    this.slow = options.slow;
    this.policy = options.slow !== undefined ? new SlowReaderPolicy(options.slow.limits, 'WebRTC viewer') : undefined;
    this.layers = options.layers;
    if (this.layers !== undefined) {
      this.layer = this.layers.start;
      if (this.layers.adaptive) this.choice = new LayerChoice(this.layers.sources.length, this.layers.start, Date.now());
    }
    const transceivers = pc.getTransceivers();
    const videoT = options.video ? transceivers.find((t) => t.kind === 'video' && t.direction === 'sendonly') : undefined;
    const audioT = options.audio ? transceivers.find((t) => t.kind === 'audio' && t.direction === 'sendonly') : undefined;
    const playout =
      options.playoutDelayExtensionId !== undefined ? [{ id: options.playoutDelayExtensionId, payload: Buffer.alloc(3) }] : [];
    this.video = videoT !== undefined ? new OutStream(videoT.sender, 90_000, conn, playout) : undefined;
    this.audio = audioT !== undefined ? new OutStream(audioT.sender, 48_000, conn, []) : undefined;
    this.directSend = options.directSend ?? true;
    this.senders = [videoT?.sender, audioT?.sender];
    if (videoT !== undefined) {
      const sub = videoT.sender.onPictureLossIndication.subscribe(() => this.keyframeRequested('PLI'));
      const fir = videoT.sender.onRtcp.subscribe((packet) => {
        // FIR (RFC 5104 4.3.1): payload-specific feedback, FMT 4.
        const p = packet as {
          type?: number;
          feedback?: { count?: number };
          reports?: { ssrc: number; highestSequence: number; fractionLost: number }[];
        };
        if (p.type === 206 && p.feedback?.count === 4) this.keyframeRequested('FIR');
        // Sender or receiver report (RFC 3550 6.4): the loss the viewer saw of this video.
        if ((p.type === 200 || p.type === 201) && this.choice !== undefined) {
          for (const r of p.reports ?? []) if (r.ssrc === videoT.sender.ssrc) this.lossReported(r);
        }
        this.rembReported(packet);
      });
      this.unsubscribe.push(
        () => sub.unSubscribe(),
        () => fir.unSubscribe(),
      );
    }
    // werift hands a REMB to the sender of the first SSRC it names, which may be the audio's.
    if (audioT !== undefined) {
      const remb = audioT.sender.onRtcp.subscribe((packet) => this.rembReported(packet));
      this.unsubscribe.push(() => remb.unSubscribe());
    }
    this.updateView();
  }

  /** Called once DTLS is up: the GOP first, then live packets. */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.directSend) this.openDirect();
    if (this.video !== undefined) {
      this.video.sendReplay(this.videoSource.gopPackets());
      this.lastReplayAt = Date.now();
      const video = this.video;
      this.offVideo = this.videoSource.on('video', (packets) => this.sendFrame(video, packets));
      if (this.choice !== undefined && this.layers !== undefined) {
        // When each layer last had a video frame (the layer feeds' audio goes on when a layer pauses),
        // and what its video measures.
        const startedAt = Date.now(); // a layer counts as sent for LAYER_STALL_MS before its first frame
        this.layers.sources.forEach((source, i) => {
          this.layerVideoAt[i] = startedAt;
          const meter = new BitrateMeter(startedAt);
          this.layerMeters[i] = meter;
          this.unsubscribe.push(
            source.on('video', (packets) => {
              const now = Date.now();
              this.layerVideoAt[i] = now;
              meter.add(wireBytes(packets), now);
            }),
          );
        });
        // (also what the layers measure, for the API, between REMBs or without any)
        this.stallTimer = setInterval(() => {
          this.checkStalled(Date.now());
          this.updateView();
        }, 500);
        this.stallTimer.unref();
      }
    }
    if (this.audio !== undefined) {
      const audio = this.audio;
      const meter = new BitrateMeter(Date.now());
      this.audioMeter = meter;
      this.unsubscribe.push(
        this.source.on('audio', (packets) => {
          meter.add(wireBytes(packets), Date.now());
          this.sendFrame(audio, packets);
        }),
      );
    }
  }

  /** Where the video comes from: the feed, or the layer feed sent now. */
  private get videoSource(): FeedRtpSource {
    return this.layers?.sources[this.layer] ?? this.source;
  }

  /** The simulcast layer sent now (its rid), undefined for a feed without layers. */
  get layerRid(): string | undefined {
    return this.layers?.rids[this.layer];
  }

  private lossReported(r: { highestSequence: number; fractionLost: number }): void {
    const choice = this.choice;
    if (choice === undefined) return;
    // fraction lost is 8 bits, fixed point (RFC 3550 6.4.1)
    const next = choice.receiverReport(r.highestSequence, r.fractionLost / 256, Date.now());
    if (next === undefined) return;
    const why =
      next < this.layer
        ? 'a clean spell (receiver reports): trying the larger layer'
        : `${Math.round(choice.lastLoss * 100)}% lost (receiver reports)`;
    this.switchLayer(next, 'loss', why);
  }

  /** A REMB from the browser (bandwidth-estimate.ts): shown, and for an adaptive viewer the first signal of its layer. */
  private rembReported(packet: unknown): void {
    const remb = rembOf(packet);
    if (remb === undefined || !this.running) return;
    this.bandwidthEstimate = remb.bitsPerSecond;
    const choice = this.choice;
    const layers = this.layers;
    if (choice !== undefined && layers !== undefined) {
      const now = Date.now();
      const rates = layers.sources.map((_, i) => this.layerMeters[i]?.bitsPerSecond(now));
      const audio = this.audioMeter?.bitsPerSecond(now) ?? 0;
      const next = choice.estimate(remb.bitsPerSecond, rates, audio, now);
      if (next !== undefined) {
        const kbps = (bps: number): string => `${Math.round(bps / 1000)} kbit/s`;
        const down = next > this.layer;
        const judged = down ? this.layer : next; // the layer that no longer fits, or the one that now does
        const need = kbps((rates[judged] ?? 0) + audio);
        this.switchLayer(
          next,
          'estimate',
          `estimate ${kbps(remb.bitsPerSecond)}: ${layers.rids[judged] ?? '?'} ${down ? 'no longer fits' : 'fits'} (${need} with audio, x${choice.headroom})`,
        );
      }
    }
    this.updateView();
  }

  /** The connection's view for the API and the status page. */
  private updateView(): void {
    const now = Date.now();
    const layerKbps: Record<string, number> = {};
    this.layers?.rids.forEach((rid, i) => {
      const bps = this.layerMeters[i]?.bitsPerSecond(now);
      if (bps !== undefined) layerKbps[rid] = Math.round(bps / 1000);
    });
    this.conn.webrtc = {
      simulcastLayer: this.layerRid ?? null,
      bandwidthEstimateKbps: this.bandwidthEstimate !== undefined ? Math.round(this.bandwidthEstimate / 1000) : null,
      layerKbps,
      layerSwitches: this.layerSwitches,
      lastSwitch: this.lastSwitch ?? null,
    };
  }

  /**
   * Adaptive viewers: when the layer sent (or the one switched to) has stalled (the publisher paused
   * it), the viewer moves to the nearest layer still sent, smaller ones first.
   */
  private checkStalled(now: number): void {
    const layers = this.layers;
    if (layers === undefined || this.choice === undefined) return;
    const sent = (i: number): boolean => {
      const at = this.layerVideoAt[i];
      return at !== undefined && now - at <= LAYER_STALL_MS;
    };
    const pending = this.pendingLayer;
    if (pending !== undefined && !sent(pending.index)) {
      pending.off();
      this.pendingLayer = undefined;
      this.choice.moveTo(this.layer, now);
    }
    if (this.pendingLayer !== undefined || sent(this.layer)) return;
    const order = [...layers.sources.keys()]
      .filter((i) => i !== this.layer)
      .sort((a, b) => {
        const below = (i: number): number => (i > this.layer ? 0 : 1);
        return below(a) - below(b) || Math.abs(a - this.layer) - Math.abs(b - this.layer);
      });
    const next = order.find(sent);
    if (next === undefined) return;
    this.choice.moveTo(next, now);
    this.switchLayer(next, 'stall', 'the layer stalled');
  }

  /**
   * Moves the viewer to layer `index` at that layer's next keyframe (asked of the publisher now);
   * until then the current layer goes on.
   */
  switchLayer(index: number, reason: 'estimate' | 'loss' | 'stall', why: string): void {
    const layers = this.layers;
    const video = this.video;
    if (layers === undefined || video === undefined || !this.running) return;
    this.pendingLayer?.off();
    this.pendingLayer = undefined;
    if (index === this.layer || layers.sources[index] === undefined) return;
    const source = layers.sources[index];
    const off = source.on('video', (packets) => {
      if (packets[0]?.keyframe !== true || this.pendingLayer?.index !== index) return;
      const from = this.layerRid;
      if (index < this.layer) this.choice?.layerChanged(); // its rate reaches the browser from now on
      this.offVideo?.();
      this.offVideo = off;
      this.pendingLayer = undefined;
      this.layer = index;
      this.layerSwitches++;
      this.conn.counters['layerSwitches'] = this.layerSwitches;
      this.lastSwitch = `${reason}: ${why}`;
      this.log.info('WHEP viewer switched simulcast layer', { from, to: this.layerRid, reason, why });
      this.updateView();
      this.sendFrame(video, packets);
    });
    this.pendingLayer = { index, off };
    layers.requestKeyframe(layers.rids[index] as string);
  }

  /** One live frame, unless the viewer is behind (skipped, and resumed at a keyframe). */
  private sendFrame(out: OutStream, packets: readonly SharedPacket[]): void {
    if (this.tooSlow) return;
    if (this.behind()) {
      if (!this.skipping) {
        this.skipping = true;
        this.skips++;
        this.conn.counters['skips'] = this.skips;
      }
      this.framesSkipped++;
      this.conn.counters['framesSkipped'] = this.framesSkipped;
      return;
    }
    if (this.skipping) {
      // Resume at a video keyframe (audio waits for it too, so both start together).
      if (packets[0]?.keyframe !== true || (out !== this.video && this.video !== undefined)) {
        this.framesSkipped++;
        return;
      }
      this.skipping = false;
    }
    out.sendLive(packets);
  }

  /** Whether the viewer's unsent bytes are past its bound now; closes it once it stayed behind too long. */
  private behind(): boolean {
    if (this.slow === undefined || this.policy === undefined) return false;
    const verdict = this.policy.check(this.slow.backlog());
    if (verdict === 'ok') {
      this.policy.caughtUp();
      return false;
    }
    if (verdict !== 'skip') {
      this.tooSlow = true;
      this.slow.onTooSlow(verdict);
    }
    return true;
  }

  private keyframeRequested(kind: string): void {
    if (!this.running || this.video === undefined || this.skipping || this.tooSlow) return;
    const now = Date.now();
    if (now - this.lastReplayAt < MIN_REPLAY_INTERVAL_MS) return;
    this.lastReplayAt = now;
    this.replays++;
    this.log.debug('keyframe request answered from the GOP', { kind, packets: this.videoSource.gopPackets().length });
    this.video.sendReplay(this.videoSource.gopPackets());
  }

  /**
   * DTLS is up: the streams send past werift's sender (srtp-sender.ts) when its SRTP profile and
   * their headers allow; werift's RTCP loop, started here, goes on sending the sender reports.
   */
  private openDirect(): void {
    const streams: [OutStream | undefined, RTCRtpSender | undefined][] = [
      [this.video, this.senders[0]],
      [this.audio, this.senders[1]],
    ];
    const opened = new Map<RTCDtlsTransport, SrtpSender | string>();
    const why: string[] = [];
    for (const [out, sender] of streams) {
      if (out === undefined || sender === undefined) continue;
      const transport = sender.dtlsTransport as RTCDtlsTransport | undefined;
      if (transport === undefined) {
        why.push('no DTLS transport');
        continue;
      }
      let srtp = opened.get(transport);
      if (srtp === undefined) {
        try {
          srtp = SrtpSender.open(transport);
        } catch (err) {
          srtp = err instanceof Error ? err.message : String(err);
        }
        opened.set(transport, srtp);
      }
      const not = typeof srtp === 'string' ? srtp : out.direct(srtp);
      if (not !== undefined) {
        why.push(not);
        continue;
      }
      this.srtp = srtp as SrtpSender;
      const nack = sender.onGenericNack.subscribe((feedback) => {
        const first = out.nacked(feedback.lost);
        if (out === this.video && first > 0) this.choice?.nacked(first);
      });
      this.unsubscribe.push(() => nack.unSubscribe());
      detach(sender.runRtcp(), this.log, 'WHEP sender reports');
    }
    if (why.length > 0) this.log.info('WHEP viewer sends through werift', { why: why.join('; ') });
  }

  /** How this viewer's packets leave: "srtp PROFILE by ENGINE via PATH" past werift's sender, or "werift". */
  get sendPath(): string {
    const srtp = this.srtp;
    if (srtp === undefined) return 'werift';
    return `srtp ${srtp.protector.profileName} by ${srtp.protector.engine} via ${srtp.path}`;
  }

  /** Whether DTLS came up and sending began. */
  get started(): boolean {
    return this.running;
  }

  /** NACKed packets sent again from the viewer's ring (direct path). */
  get retransmits(): number {
    return (this.video?.retransmits ?? 0) + (this.audio?.retransmits ?? 0);
  }

  get packetsSent(): number {
    return (this.video?.packetsSent ?? 0) + (this.audio?.packetsSent ?? 0);
  }

  stop(): void {
    clearInterval(this.stallTimer);
    this.offVideo?.();
    this.offVideo = undefined;
    this.pendingLayer?.off();
    this.pendingLayer = undefined;
    for (const u of this.unsubscribe.splice(0)) u();
  }
}
