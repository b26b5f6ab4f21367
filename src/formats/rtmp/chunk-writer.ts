// RTMP chunk stream writer (Adobe RTMP specification 1.0, 5.3): one message as chunks of
// `chunkSize` payload bytes, a type 0 header on the first chunk and type 3 on the rest. Every
// message is self-contained (no header compression against earlier messages), so a reader that
// joins a shared chunk sequence at any message boundary can follow it. Sized first.

import { FrameTooLargeError, LimitExceededError } from '../../errors.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import type { RtmpMessage } from './messages.js';

const MAX_CSID = 65599;
/** Message length is a u24. */
export const RTMP_MAX_MESSAGE_BYTES = 0xff_ffff;

function basicHeaderSize(csid: number): number {
  if (csid < 2 || csid > MAX_CSID) throw new LimitExceededError('rtmp: chunk stream id', csid, MAX_CSID);
  return csid < 64 ? 1 : csid < 320 ? 2 : 3;
}

function writeBasicHeader(w: ByteWriter, fmt: number, csid: number): void {
  if (csid < 64) {
    w.u8((fmt << 6) | csid);
  } else if (csid < 320) {
    w.u8(fmt << 6).u8(csid - 64);
  } else {
    const v = csid - 64;
    w.u8((fmt << 6) | 1)
      .u8(v & 0xff)
      .u8(v >> 8);
  }
}

function timestamp32(ms: number): number {
  const m = Math.round(ms) % 0x1_0000_0000;
  return m < 0 ? m + 0x1_0000_0000 : m;
}

/** Bytes `writeRtmpMessage` writes for a message of `payloadBytes` at this chunk size. */
export function rtmpMessageSize(csid: number, timestampMs: number, payloadBytes: number, chunkSize: number): number {
  const basic = basicHeaderSize(csid);
  const ext = timestamp32(timestampMs) >= 0xff_ffff ? 4 : 0;
  const chunks = Math.max(1, Math.ceil(payloadBytes / chunkSize));
  return basic + 11 + ext + (chunks - 1) * (basic + ext) + payloadBytes;
}

/**
 * 5.3.1: first chunk fmt 0 (u24 timestamp or 0xFFFFFF, u24 length, u8 type, u32 LE stream id,
 * [u32 extended timestamp]), then fmt 3 chunks (basic header, [u32 extended timestamp again]).
 */
export function writeRtmpMessage(w: ByteWriter, m: RtmpMessage, chunkSize: number, payload: Buffer = m.payload): void {
  const length = payload.length;
  if (length > RTMP_MAX_MESSAGE_BYTES) throw new FrameTooLargeError('rtmp: message bytes', length, RTMP_MAX_MESSAGE_BYTES);
  const ts = timestamp32(m.timestampMs);
  const ext = ts >= 0xff_ffff;
  writeBasicHeader(w, 0, m.csid);
  w.u24(ext ? 0xff_ffff : ts)
    .u24(length)
    .u8(m.typeId);
  w.buf.writeUInt32LE(m.streamId >>> 0, w.pos);
  w.pos += 4;
  if (ext) w.u32(ts);
  let pos = 0;
  for (;;) {
    const n = Math.min(chunkSize, length - pos);
    w.bytes(payload.subarray(pos, pos + n));
    pos += n;
    if (pos >= length) break;
    writeBasicHeader(w, 3, m.csid);
    if (ext) w.u32(ts);
  }
}

/** One message as chunks, in a buffer of its own. */
export function encodeRtmpMessage(m: RtmpMessage, chunkSize: number): Buffer {
  const w = new ByteWriter(rtmpMessageSize(m.csid, m.timestampMs, m.payload.length, chunkSize));
  writeRtmpMessage(w, m, chunkSize);
  return w.done();
}

/** Several messages as one buffer (one socket write). */
export function encodeRtmpMessages(messages: readonly RtmpMessage[], chunkSize: number): Buffer {
  let size = 0;
  for (const m of messages) size += rtmpMessageSize(m.csid, m.timestampMs, m.payload.length, chunkSize);
  const w = new ByteWriter(size);
  for (const m of messages) writeRtmpMessage(w, m, chunkSize);
  return w.done();
}
