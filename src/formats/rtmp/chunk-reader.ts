// RTMP chunk stream reader (Adobe RTMP specification 1.0, section 5.3): a framer that turns the
// bytes after the handshake into whole messages, whatever the chunk size and however the input is
// cut. Applies Set Chunk Size (5.4.1) and Abort (5.4.2) itself, since they change the framing.

import { LimitExceededError, MalformedInputError } from '../../errors.js';
import { RtmpType, type RtmpMessage } from './messages.js';
import type { ByteBudget } from '../../media/byte-budget.js';

const FORMAT = 'rtmp chunk';

export interface ChunkReaderOptions {
  /** Largest message accepted (default 8 MiB); a longer message length is an error before any wait. */
  maxMessageBytes?: number;
  /** Most chunk streams with state at once (default 64). */
  maxChunkStreams?: number;
  /**
   * Bytes of incomplete messages held across every chunk stream (default 16 MiB): what is retained,
   * not only the payload (a part kept as a view keeps its whole input buffer alive).
   */
  maxPendingBytes?: number;
  /**
   * What every RTMP connection of the server holds together (issue 25): each part is charged to it
   * too, and given back when its message completes or is aborted, or at release().
   */
  budget?: ByteBudget;
}

/** What one chunk stream id remembers from its previous chunk headers (5.3.1.2). */
interface StreamState {
  timestampMs: number;
  /** The last timestamp field (type 0: absolute, types 1/2: delta), reused by a type 3 message start. */
  lastField: number;
  length: number;
  typeId: number;
  streamId: number;
  /** The last type 0/1/2 header carried an extended timestamp: type 3 chunks carry one too (5.3.1.3). */
  extended: boolean;
  parts: Buffer[];
  received: number;
  /** What `parts` count against maxPendingBytes (a view is charged for the buffer it keeps alive). */
  charged: number;
}

type Phase = 'header' | 'payload' | 'failed';

export const RTMP_DEFAULT_CHUNK_SIZE = 128;

export class ChunkStreamReader {
  private readonly onMessage: (message: RtmpMessage) => void;
  private readonly maxMessageBytes: number;
  private readonly maxChunkStreams: number;
  private readonly maxPendingBytes: number;
  private readonly budget: ByteBudget | undefined;
  private readonly streams = new Map<number, StreamState>();
  private chunkSizeValue = RTMP_DEFAULT_CHUNK_SIZE;
  private phase: Phase = 'header';
  private failure: Error | undefined;
  /** A partial chunk header carried over from the previous push (at most 18 bytes). */
  private leftover: Buffer = Buffer.alloc(0);
  /** The chunk whose payload is being read. */
  private current: { csid: number; state: StreamState; remaining: number } | undefined;
  private pendingBytes = 0;
  /** Absolute count of bytes consumed: offsets in errors, and what Acknowledgements report. */
  private consumed = 0;

  constructor(onMessage: (message: RtmpMessage) => void, options: ChunkReaderOptions = {}) {
    this.onMessage = onMessage;
    this.maxMessageBytes = options.maxMessageBytes ?? 8 * 1024 * 1024;
    this.maxChunkStreams = options.maxChunkStreams ?? 64;
    this.maxPendingBytes = options.maxPendingBytes ?? 16 * 1024 * 1024;
    this.budget = options.budget;
  }

  /** Drops every incomplete message and gives its bytes back to the shared budget (the connection ended). Idempotent. */
  release(): void {
    for (const state of this.streams.values()) this.dropParts(state);
    this.current = undefined;
  }

  private dropParts(state: StreamState): void {
    this.pendingBytes -= state.charged;
    this.budget?.give(state.charged);
    state.parts = [];
    state.received = 0;
    state.charged = 0;
  }

  /** The peer's chunk size in force (5.4.1). */
  get chunkSize(): number {
    return this.chunkSizeValue;
  }

  /** Bytes held for incomplete messages, as charged against maxPendingBytes. */
  get pendingBytesHeld(): number {
    return this.pendingBytes;
  }

  /** Bytes pushed so far (all of them, complete or not). */
  get bytesIn(): number {
    return this.consumed + this.leftover.length;
  }

  /** Feeds more input. Throws MalformedInputError / LimitExceededError when the stream cannot be followed. */
  push(data: Buffer): void {
    if (this.failure !== undefined) throw this.failure;
    if (data.length === 0) return;
    let buf = data;
    if (this.leftover.length > 0) {
      buf = Buffer.concat([this.leftover, data]);
      this.consumed -= this.leftover.length;
      this.leftover = Buffer.alloc(0);
    }
    try {
      let pos = 0;
      while (pos < buf.length) {
        if (this.phase === 'header') {
          const used = this.readHeader(buf, pos);
          if (used === 0) {
            this.leftover = Buffer.from(buf.subarray(pos));
            break;
          }
          pos += used;
          this.consumed += used;
        } else if (this.phase === 'payload') {
          const used = this.readPayload(buf, pos);
          pos += used;
          this.consumed += used;
        } else {
          return;
        }
      }
    } catch (err) {
      this.phase = 'failed';
      this.failure = err instanceof Error ? err : new MalformedInputError(FORMAT, this.consumed, String(err));
      throw err;
    }
  }

  private fail(at: number, detail: string): never {
    throw new MalformedInputError(FORMAT, at, detail);
  }

  /**
   * 5.3.1 Chunk header:
   *   basic header: UB[2] fmt | UB[6] csid (2..63); csid 0: u8 + 64; csid 1: u16 little-endian + 64
   *   fmt 0 (11 bytes): u24 timestamp | u24 message length | u8 type id | u32 LE message stream id
   *   fmt 1 (7 bytes):  u24 timestamp delta | u24 message length | u8 type id
   *   fmt 2 (3 bytes):  u24 timestamp delta
   *   fmt 3 (0 bytes)
   *   then u32 extended timestamp when the 24-bit field is 0xFFFFFF (and, for fmt 3, when the
   *   chunk stream's last fmt 0/1/2 header had one)
   * Returns the header bytes consumed, or 0 when the header is not complete yet.
   */
  private readHeader(buf: Buffer, start: number): number {
    const at = this.consumed;
    const avail = buf.length - start;
    const b0 = buf[start] as number;
    const fmt = b0 >> 6;
    let csid = b0 & 0x3f;
    let p = start + 1;
    if (csid === 0) {
      if (avail < 2) return 0;
      csid = (buf[p] as number) + 64;
      p += 1;
    } else if (csid === 1) {
      if (avail < 3) return 0;
      csid = (buf[p] as number) + (buf[p + 1] as number) * 256 + 64;
      p += 2;
    }
    const headerBytes = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
    if (buf.length - p < headerBytes) return 0;

    let state = this.streams.get(csid);
    if (state === undefined) {
      if (fmt !== 0) this.fail(at, `chunk stream ${csid} starts with a type ${fmt} header (the first must be type 0)`);
      if (this.streams.size >= this.maxChunkStreams) {
        throw new LimitExceededError(
          `rtmp: chunk streams in use (chunk stream ${csid} at offset ${at})`,
          this.streams.size + 1,
          this.maxChunkStreams,
        );
      }
    }
    const inMessage = state !== undefined && state.received > 0;
    if (inMessage && fmt !== 3) {
      this.fail(
        at,
        `type ${fmt} header on chunk stream ${csid} while its message is ${state?.received}/${state?.length} bytes in`,
      );
    }

    let field = 0;
    let length = state?.length ?? 0;
    let typeId = state?.typeId ?? 0;
    let streamId = state?.streamId ?? 0;
    if (fmt <= 2) {
      field = buf.readUIntBE(p, 3);
      if (fmt <= 1) {
        length = buf.readUIntBE(p + 3, 3);
        typeId = buf[p + 6] as number;
      }
      if (fmt === 0) streamId = buf.readUInt32LE(p + 7);
      p += headerBytes;
    }
    const extended = fmt <= 2 ? field === 0xff_ffff : (state?.extended ?? false);
    if (extended) {
      if (buf.length - p < 4) return 0;
      const ext = buf.readUInt32BE(p);
      p += 4;
      // A type 3 chunk repeats the extended field of its stream's last header; one that starts a
      // message adds it as the delta, as the type 3 without one adds the last 24-bit field.
      field = ext;
    } else if (fmt === 3) {
      field = state?.lastField ?? 0;
    }

    if (length > this.maxMessageBytes) {
      throw new LimitExceededError(
        `rtmp: message on chunk stream ${csid} (type ${typeId}, offset ${at}) declares bytes`,
        length,
        this.maxMessageBytes,
      );
    }

    // Commit: the whole header is here.
    if (state === undefined) {
      state = {
        timestampMs: 0,
        lastField: 0,
        length: 0,
        typeId: 0,
        streamId: 0,
        extended: false,
        parts: [],
        received: 0,
        charged: 0,
      };
      this.streams.set(csid, state);
    }
    if (!inMessage) {
      if (fmt === 0) state.timestampMs = field;
      else state.timestampMs = (state.timestampMs + field) % 0x1_0000_0000;
      if (fmt <= 2) state.lastField = field;
      state.length = length;
      state.typeId = typeId;
      state.streamId = streamId;
      if (fmt <= 2) state.extended = extended;
    }
    if (state.length === 0) {
      this.deliver(csid, state);
      return p - start;
    }
    const remaining = Math.min(this.chunkSizeValue, state.length - state.received);
    this.current = { csid, state, remaining };
    this.phase = 'payload';
    return p - start;
  }

  private readPayload(buf: Buffer, start: number): number {
    const cur = this.current;
    if (cur === undefined) this.fail(this.consumed, 'internal: payload without a chunk header');
    const n = Math.min(cur.remaining, buf.length - start);
    // A part that is a small piece of a large input buffer would keep all of it alive until its
    // message completes (issue 25: 620 MiB pinned by 1-byte chunks, one per socket read): such a
    // part is copied out; a view is kept only when it is at least half of what it keeps alive, and
    // is charged for all of it.
    const view = buf.subarray(start, start + n);
    const backing = view.buffer.byteLength;
    const keepView = n * 2 >= backing;
    const charge = keepView ? backing : n;
    if (this.pendingBytes + charge > this.maxPendingBytes) {
      throw new LimitExceededError('rtmp: bytes of incomplete messages held', this.pendingBytes + charge, this.maxPendingBytes);
    }
    if (this.budget !== undefined && !this.budget.take(charge)) {
      throw new LimitExceededError(
        `rtmp: bytes of incomplete messages held by every RTMP connection of the server (this one holds ${this.pendingBytes})`,
        this.budget.held + charge,
        this.budget.maxBytes,
      );
    }
    cur.state.parts.push(keepView ? view : Buffer.from(view));
    cur.state.received += n;
    cur.state.charged += charge;
    this.pendingBytes += charge;
    cur.remaining -= n;
    if (cur.remaining === 0) {
      this.current = undefined;
      this.phase = 'header';
      if (cur.state.received === cur.state.length) this.deliver(cur.csid, cur.state);
    }
    return n;
  }

  private deliver(csid: number, state: StreamState): void {
    const parts = state.parts;
    const payload = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, state.received);
    this.dropParts(state);
    const message: RtmpMessage = {
      csid,
      typeId: state.typeId,
      timestampMs: state.timestampMs,
      streamId: state.streamId,
      payload,
    };
    if (message.typeId === RtmpType.setChunkSize && message.streamId === 0) this.applyChunkSize(payload);
    else if (message.typeId === RtmpType.abort && message.streamId === 0) this.applyAbort(payload);
    this.onMessage(message);
  }

  /** 5.4.1: u32, top bit 0, 1..0x7FFFFFFF; applies to the chunks that follow. */
  private applyChunkSize(payload: Buffer): void {
    if (payload.length < 4) this.fail(this.consumed, `Set Chunk Size of ${payload.length} bytes`);
    const size = payload.readUInt32BE(0);
    if (size < 1 || size > 0x7fff_ffff) this.fail(this.consumed, `Set Chunk Size ${size} (allowed 1..2147483647)`);
    this.chunkSizeValue = size;
  }

  /** 5.4.2: u32 chunk stream id whose partial message is dropped. */
  private applyAbort(payload: Buffer): void {
    if (payload.length < 4) this.fail(this.consumed, `Abort of ${payload.length} bytes`);
    const state = this.streams.get(payload.readUInt32BE(0));
    if (state === undefined) return;
    this.dropParts(state);
  }
}
