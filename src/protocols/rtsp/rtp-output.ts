// RTP for RTSP readers, packetised once per (feed, track): each frame becomes one shared buffer of
// RTP packets already framed for TCP interleaving (`$`, channel 2·trackId, u16 length, packet).
// TCP readers write it as is; UDP readers send the packet views. The buffers flow through a
// MuxedOutput of the server's OutputRegistry (format 'rtp'), so readers get the GOP cache, a
// cursor, backpressure and the slow-reader policy.

import { randomInt } from 'node:crypto';
import type { Feed } from '../../feed/feed.js';
import { rtpTimestampOf } from '../../formats/rtp/audio-rtp.js';
import { canSendOverRtp, createPacketizer, rtpFormatOf, type RtpFormat } from '../../formats/rtp/formats.js';
import type { RtpPacketizer } from '../../formats/rtp/payload.js';
import { RTP_HEADER_BYTES, writeRtpPacket } from '../../formats/rtp/rtp-packet.js';
import { ByteWriter } from '../../formats/bytes/byte-writer.js';
import type { StreamMuxer } from '../../media/demuxer.js';
import type { Frame } from '../../media/frame.js';
import { sameTrackConfig, type Track } from '../../media/track.js';
import type { OutputRegistry } from '../../streams/output-registry.js';
import type { Logger } from '../../observability/logger.js';
import type { MuxedOutput } from '../../streams/muxed-output.js';

/** Feed track ids map to interleaved channels 2·id (RTP) and 2·id+1 (RTCP): ids above this cannot. */
export const MAX_RTP_TRACK_ID = 31;

/** One RTP stream: its payload format and packetiser, SSRC, next sequence number and timestamp base. */
export interface TrackSender {
  track: Track;
  format: RtpFormat;
  packetizer: RtpPacketizer;
  ssrc: number;
  seq: number;
  tsBase: number;
  /** RTP packets and payload octets made so far under this SSRC (sender reports of shared readers). */
  packets: number;
  octets: number;
}

/**
 * A frame as RTP packets framed for interleaving (`$`, channel 2·trackId, u16 length, packet); the
 * sender's sequence number advances by the packets made.
 */
export function interleavedRtp(frame: Frame, sender: TrackSender): Buffer {
  const units = sender.packetizer.packetize(frame);
  let size = 0;
  for (const u of units) {
    size += 4 + RTP_HEADER_BYTES;
    for (const p of u.parts) size += p.length;
  }
  const w = new ByteWriter(size);
  const timestamp = rtpTimestampOf(frame.pts90k, sender.packetizer.clockRate, sender.tsBase);
  const channel = frame.trackId * 2;
  for (const u of units) {
    let len = RTP_HEADER_BYTES;
    for (const p of u.parts) len += p.length;
    w.u8(0x24).u8(channel).u16(len);
    writeRtpPacket(
      w,
      {
        marker: u.marker,
        payloadType: sender.packetizer.payloadType,
        sequence: sender.seq,
        timestamp: (timestamp + (u.timestampOffset ?? 0)) % 0x1_0000_0000,
        ssrc: sender.ssrc,
      },
      u.parts,
    );
    sender.seq = (sender.seq + 1) & 0xffff;
    sender.packets++;
    sender.octets += len - RTP_HEADER_BYTES;
  }
  return w.done();
}

/** Walks the `$ ch len packet` entries of an interleaved buffer. */
export function forEachInterleaved(chunk: Buffer, visit: (channel: number, packet: Buffer) => void): void {
  let pos = 0;
  while (pos + 4 <= chunk.length && chunk[pos] === 0x24) {
    const len = chunk.readUInt16BE(pos + 2);
    if (pos + 4 + len > chunk.length) return;
    visit(chunk[pos + 1] as number, chunk.subarray(pos + 4, pos + 4 + len));
    pos += 4 + len;
  }
}

/** The RTP state of one feed: a sender (SSRC, sequence, timestamp base) per track, shared by every reader. */
export class RtpFeedPacketizer {
  readonly feed: Feed;
  private readonly log: Logger;
  private readonly senders = new Map<number, TrackSender>();
  private readonly cache = new WeakMap<Frame, Buffer>();
  /** Wall clock <-> feed clock, from the first live frame: what sender reports map. */
  private anchor: { wallMs: number; pts90k: number } | undefined;
  private readonly offFrame: () => void;
  readonly cname: string;

  constructor(feed: Feed, log: Logger) {
    this.feed = feed;
    this.log = log.child({ feed: feed.key, part: 'rtp' });
    this.cname = `feedcast-${feed.key}`;
    // Live already: the newest cached frame arrived at lastFrameAt.
    const newest = feed.gopCache().at(-1);
    if (newest !== undefined && feed.lastFrameAt !== undefined) this.anchor = { wallMs: feed.lastFrameAt, pts90k: newest.pts90k };
    this.offFrame = feed.on('frame', (frame) => {
      this.anchor ??= { wallMs: Date.now(), pts90k: frame.pts90k };
    });
  }

  /** The tracks of the feed an RTP reader can get (codec with a payload format, config known). */
  sendableTracks(filter?: (t: Track) => boolean): Track[] {
    return this.feed.tracks.filter((t) => t.id <= MAX_RTP_TRACK_ID && canSendOverRtp(t) && (filter === undefined || filter(t)));
  }

  /** The sender of a feed track (made, or remade when the track's config changed). */
  sender(trackId: number): TrackSender | undefined {
    const track = this.feed.tracks.find((t) => t.id === trackId);
    if (track === undefined || track.id > MAX_RTP_TRACK_ID || !canSendOverRtp(track)) return undefined;
    const existing = this.senders.get(trackId);
    if (existing !== undefined && sameTrackConfig(existing.track, track)) return existing;
    const format = rtpFormatOf(track, 96 + track.id);
    const sender: TrackSender = {
      track,
      format,
      packetizer: createPacketizer(track, format),
      ssrc: existing?.ssrc ?? randomInt(1, 0xffff_ffff),
      seq: existing?.seq ?? randomInt(0, 0x8000),
      tsBase: existing?.tsBase ?? randomInt(0, 0x7fff_ffff),
      packets: existing?.packets ?? 0,
      octets: existing?.octets ?? 0,
    };
    if (existing !== undefined) this.log.info('track changed, new RTP packetiser', { track: trackId, codec: track.codec });
    this.senders.set(trackId, sender);
    return sender;
  }

  /** The frame as interleaved RTP packets; made once, then the same buffer for every output of the feed. */
  chunkFor(frame: Frame): Buffer {
    const cached = this.cache.get(frame);
    if (cached !== undefined) return cached;
    const sender = this.sender(frame.trackId);
    if (sender === undefined) return Buffer.alloc(0);
    const chunk = interleavedRtp(frame, sender);
    this.cache.set(frame, chunk);
    return chunk;
  }

  /** SSRC and the RTP timestamp that corresponds to wall-clock `wallMs` (for sender reports). */
  clockOf(trackId: number, wallMs: number): { ssrc: number; rtpTimestamp: number } | undefined {
    const sender = this.senders.get(trackId);
    if (sender === undefined || this.anchor === undefined) return undefined;
    const pts90k = this.anchor.pts90k + (wallMs - this.anchor.wallMs) * 90;
    return { ssrc: sender.ssrc, rtpTimestamp: rtpTimestampOf(pts90k, sender.packetizer.clockRate, sender.tsBase) };
  }

  /** The wall-clock time at which feed time `pts90k` was live, once the feed clock is anchored. */
  wallMsOf(pts90k: number): number | undefined {
    return this.anchor === undefined ? undefined : this.anchor.wallMs + (pts90k - this.anchor.pts90k) / 90;
  }

  dispose(): void {
    this.offFrame();
  }
}

/** A StreamMuxer whose "bytes" are the shared interleaved RTP buffers of the feed's packetiser. */
class RtpMuxer implements StreamMuxer {
  readonly contentType = 'application/x-rtsp-interleaved';
  private readonly packetizer: RtpFeedPacketizer;
  constructor(packetizer: RtpFeedPacketizer) {
    this.packetizer = packetizer;
  }
  header(): Buffer {
    return Buffer.alloc(0);
  }
  updateTracks(): Buffer | undefined {
    return undefined;
  }
  mux(frame: Frame): Buffer {
    return this.packetizer.chunkFor(frame);
  }
}

export interface RtpVariant {
  noAudio: boolean;
  noVideo: boolean;
}

/**
 * Feed -> its shared RTP packetiser, and the 'rtp' format of the server's OutputRegistry: an RTP
 * output is a MuxedOutput like any other, made and kept there, whose chunks are the packetiser's
 * interleaved buffers.
 */
export class RtpPacketizers {
  private readonly packetizers = new Map<Feed, RtpFeedPacketizer>();
  private readonly registry: OutputRegistry;
  private readonly log: Logger;

  constructor(registry: OutputRegistry, log: Logger) {
    this.registry = registry;
    this.log = log;
    registry.register('rtp', {
      keyedByMetadata: false,
      muxer: (feed) => {
        const packetizer = this.packetizerOf(feed);
        return () => new RtpMuxer(packetizer);
      },
    });
  }

  packetizerOf(feed: Feed): RtpFeedPacketizer {
    let p = this.packetizers.get(feed);
    if (p === undefined) {
      const made = new RtpFeedPacketizer(feed, this.log);
      p = made;
      this.packetizers.set(feed, made);
      feed.on('close', () => {
        made.dispose();
        if (this.packetizers.get(feed) === made) this.packetizers.delete(feed);
      });
    }
    return p;
  }

  /** The shared RTP output of (feed, variant), from the server's registry. */
  output(feed: Feed, variant: RtpVariant): MuxedOutput {
    return this.registry.get(feed, 'rtp', { noAudio: variant.noAudio, noVideo: variant.noVideo, metadata: {} });
  }

  closeAll(): void {
    for (const p of this.packetizers.values()) p.dispose();
    this.packetizers.clear();
  }
}
