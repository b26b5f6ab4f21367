// Always-on multicast RTP for declared streams with MulticastAddress (ffserver ref §4.4): the i-th
// track goes to group:MulticastPort+2i (RTCP sender reports to the next port), with MulticastTTL,
// whether or not anyone is listening. Players join with the SDP from DESCRIBE (or SETUP multicast).

import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { MulticastConfig } from '../../config/config.js';
import { buildSenderReport } from '../../formats/rtp/rtcp.js';
import type { Logger } from '../../observability/logger.js';
import type { ProtocolContext } from '../protocol-context.js';
import { OutputReader, type ByteSink } from '../../streams/output-reader.js';
import { variantFilter } from '../../streams/output-registry.js';
import { multicastPortOf, SENDER_REPORT_INTERVAL_MS, type PlayTarget } from './from-feed.js';
import { forEachInterleaved, type RtpPacketizers } from './rtp-output.js';
import { throttled } from './session.js';
import { MAX_UDP_SEND_QUEUE } from './udp.js';

export interface MulticastSenderOptions {
  /** Port of the first track when the stream has no MulticastPort. */
  defaultPort: number;
  /** Local interface address to send from (IP_MULTICAST_IF); undefined: the system's choice. */
  interfaceAddress: string | undefined;
}

export class MulticastSender {
  readonly target: PlayTarget;
  private readonly mc: MulticastConfig;
  private readonly ctx: ProtocolContext;
  private readonly rtp: RtpPacketizers;
  private readonly options: MulticastSenderOptions;
  private readonly log: Logger;
  private readonly socket: Socket;
  private reader: OutputReader | undefined;
  private srTimer: NodeJS.Timeout | undefined;
  private readonly offs: (() => void)[] = [];
  private readonly stats = new Map<number, { packets: number; octets: number }>();
  private closed = false;
  private ready: Promise<void>;
  private readonly warn: (message: string, fields?: Record<string, unknown>) => void;
  packetsSent = 0;
  sendErrors = 0;

  constructor(
    ctx: ProtocolContext,
    rtp: RtpPacketizers,
    target: PlayTarget,
    mc: MulticastConfig,
    options: MulticastSenderOptions,
  ) {
    this.ctx = ctx;
    this.rtp = rtp;
    this.target = target;
    this.mc = mc;
    this.options = options;
    this.log = ctx.log.child({ stream: target.name, multicast: `${mc.address}:${mc.port ?? options.defaultPort}` });
    this.warn = throttled((m, f) => this.log.warn(m, f));
    this.socket = createSocket({ type: isIPv6(mc.address) ? 'udp6' : 'udp4' });
    this.socket.on('error', (err) => {
      this.sendErrors++;
      this.warn('multicast send failed', { err: err.message, errors: this.sendErrors });
    });
    this.ready = new Promise((resolve) => {
      this.socket.bind(0, () => {
        try {
          this.socket.setMulticastTTL(mc.ttl > 0 ? mc.ttl : 16);
          this.socket.setMulticastLoopback(true);
          if (options.interfaceAddress !== undefined) this.socket.setMulticastInterface(options.interfaceAddress);
        } catch (err) {
          this.log.warn('multicast socket options failed', { err });
        }
        resolve();
      });
    });
  }

  async start(): Promise<void> {
    await this.ready;
    const feed = this.target.feed;
    this.offs.push(
      feed.on('tracks', () => this.ensureRunning()),
      feed.on('publisher', (p) => {
        if (p !== undefined) setImmediate(() => this.ensureRunning());
      }),
    );
    this.ensureRunning();
    this.log.info('multicast sender started');
  }

  private trackIndex(trackId: number): number {
    return this.rtp
      .packetizerOf(this.target.feed)
      .sendableTracks(variantFilter(this.target.variant))
      .findIndex((t) => t.id === trackId);
  }

  private ensureRunning(): void {
    if (this.closed || this.reader !== undefined || this.target.feed.tracks.length === 0) return;
    const output = this.rtp.output(this.target.feed, this.target.variant);
    const sink: ByteSink = {
      write: (chunk) => {
        forEachInterleaved(chunk, (channel, packet) => {
          const trackId = channel >> 1;
          const index = this.trackIndex(trackId);
          if (index < 0) return;
          if (this.socket.getSendQueueCount() > MAX_UDP_SEND_QUEUE) {
            this.warn('multicast send queue full, packet dropped');
            return;
          }
          this.socket.send(packet, multicastPortOf(this.mc, index, this.options.defaultPort), this.mc.address);
          this.packetsSent++;
          const s = this.stats.get(trackId) ?? { packets: 0, octets: 0 };
          s.packets++;
          s.octets += packet.length - 12;
          this.stats.set(trackId, s);
        });
        return true;
      },
      cork: () => undefined,
      uncork: () => undefined,
      once: () => undefined,
      removeListener: () => undefined,
    };
    const reader = new OutputReader(output, sink, { maxQueueBytes: Number.MAX_SAFE_INTEGER, maxLagMs: Number.MAX_SAFE_INTEGER });
    this.reader = reader;
    reader.on('end', (reason) => {
      if (this.reader === reader) this.reader = undefined;
      this.log.info('multicast output ended; waiting for the feed to come back', { reason });
    });
    reader.start();
    if (this.srTimer === undefined) {
      this.srTimer = setInterval(() => this.sendReports(), SENDER_REPORT_INTERVAL_MS);
      this.srTimer.unref();
    }
  }

  private sendReports(): void {
    if (this.reader === undefined) return;
    const packetizer = this.rtp.packetizerOf(this.target.feed);
    const now = Date.now();
    for (const [trackId, s] of this.stats) {
      const clock = packetizer.clockOf(trackId, now);
      const index = this.trackIndex(trackId);
      if (clock === undefined || index < 0) continue;
      const sr = buildSenderReport(
        clock.ssrc,
        { ntpMs: now, rtpTimestamp: clock.rtpTimestamp, packetCount: s.packets, octetCount: s.octets },
        packetizer.cname,
      );
      this.socket.send(sr, multicastPortOf(this.mc, index, this.options.defaultPort) + 1, this.mc.address);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.offs.splice(0)) off();
    if (this.srTimer !== undefined) clearInterval(this.srTimer);
    this.reader?.close('server stopping');
    this.socket.close();
  }
}
