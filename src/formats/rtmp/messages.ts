// RTMP messages (Adobe RTMP specification 1.0): protocol control messages (5.4: Set Chunk Size,
// Abort, Acknowledgement, Window Acknowledgement Size, Set Peer Bandwidth), User Control events
// (6.2 / 7.1.7), and command/data messages (7.1.1-7.1.2) encoded with AMF0.

import { MalformedInputError } from '../../errors.js';
import { amf0Size, decodeAmf0, newAmf0DecodeContext, writeAmf0, type Amf0Object, type Amf0Value } from '../amf/amf0.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';

/** Message type ids (5.4, 7.1). */
export const RtmpType = {
  setChunkSize: 1,
  abort: 2,
  ack: 3,
  userControl: 4,
  windowAckSize: 5,
  setPeerBandwidth: 6,
  audio: 8,
  video: 9,
  dataAmf3: 15,
  sharedObjectAmf3: 16,
  commandAmf3: 17,
  dataAmf0: 18,
  sharedObjectAmf0: 19,
  commandAmf0: 20,
  aggregate: 22,
} as const;

/** User Control event types (7.1.7). */
export const UserControlEvent = {
  streamBegin: 0,
  streamEof: 1,
  streamDry: 2,
  setBufferLength: 3,
  streamIsRecorded: 4,
  pingRequest: 6,
  pingResponse: 7,
} as const;

/** One whole RTMP message, as the chunk stream carries it (5.3.1.2 message header fields). */
export interface RtmpMessage {
  /** The chunk stream it came on / goes on (2..65599). */
  csid: number;
  typeId: number;
  /** Milliseconds, 32-bit, wrapping. */
  timestampMs: number;
  /** Message stream id (0 for control and NetConnection commands). */
  streamId: number;
  payload: Buffer;
}

/** Chunk stream ids Feedcast sends on (nginx-rtmp's choice): control, commands, data, audio, video. */
export const RtmpCsid = { control: 2, command: 3, data: 5, audio: 6, video: 7 } as const;

const FORMAT = 'rtmp';

// ---------------------------------------------------------------------------------------------
// Protocol control messages, 5.4: all on csid 2, message stream 0.

function control(typeId: number, payload: Buffer): RtmpMessage {
  return { csid: RtmpCsid.control, typeId, timestampMs: 0, streamId: 0, payload };
}

function u32Payload(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

/** 5.4.1 Set Chunk Size: u32 with the top bit 0, 1..0x7FFFFFFF. */
export function setChunkSizeMessage(size: number): RtmpMessage {
  return control(RtmpType.setChunkSize, u32Payload(size & 0x7fff_ffff));
}
/** 5.4.3 Acknowledgement: u32 sequence number (bytes received so far, wrapping). */
export function ackMessage(bytesReceived: number): RtmpMessage {
  return control(RtmpType.ack, u32Payload(bytesReceived % 0x1_0000_0000));
}
/** 5.4.4 Window Acknowledgement Size: u32. */
export function windowAckSizeMessage(size: number): RtmpMessage {
  return control(RtmpType.windowAckSize, u32Payload(size));
}
/** 5.4.5 Set Peer Bandwidth: u32 window size, u8 limit type (0 hard, 1 soft, 2 dynamic). */
export function setPeerBandwidthMessage(size: number, limitType: 0 | 1 | 2): RtmpMessage {
  const b = Buffer.allocUnsafe(5);
  b.writeUInt32BE(size >>> 0, 0);
  b[4] = limitType;
  return control(RtmpType.setPeerBandwidth, b);
}
/** 7.1.7 User Control: u16 event type, then event data (a u32 stream id or timestamp, or two u32s). */
export function userControlMessage(event: number, value: number, value2?: number): RtmpMessage {
  const b = Buffer.allocUnsafe(value2 === undefined ? 6 : 10);
  b.writeUInt16BE(event, 0);
  b.writeUInt32BE(value >>> 0, 2);
  if (value2 !== undefined) b.writeUInt32BE(value2 >>> 0, 6);
  return control(RtmpType.userControl, b);
}

/** A control message's u32 field (Set Chunk Size, Abort, Ack, Window Ack Size). */
export function parseU32Control(payload: Buffer, what: string): number {
  const r = new ByteReader(payload, `${FORMAT} ${what}`);
  return r.u32();
}

export interface UserControl {
  event: number;
  /** The first u32 of the event data (stream id, or the timestamp of a ping), if present. */
  value: number | undefined;
  /** SetBufferLength's buffer length in ms. */
  value2: number | undefined;
}

export function parseUserControl(payload: Buffer): UserControl {
  const r = new ByteReader(payload, `${FORMAT} user control`);
  const event = r.u16();
  const value = r.remaining >= 4 ? r.u32() : undefined;
  const value2 = r.remaining >= 4 ? r.u32() : undefined;
  return { event, value, value2 };
}

// ---------------------------------------------------------------------------------------------
// Command and data messages, 7.1.1-7.1.2, 7.2.

export interface RtmpCommand {
  name: string;
  transactionId: number;
  /** The command object (null for most NetStream commands). */
  commandObject: Amf0Value;
  args: Amf0Value[];
}

/**
 * 7.1.1 Command message: AMF0 values: string command name, number transaction id, command object
 * (object or null), optional arguments. Type 17 (AMF3 command) starts with one 0x00 byte and then
 * carries AMF0 values (what every client sends in practice).
 */
export function parseCommand(payload: Buffer, typeId: number): RtmpCommand {
  const r: ByteReader = new ByteReader(payload, `${FORMAT} command`);
  if (typeId === RtmpType.commandAmf3) r.skip(1);
  const ctx = newAmf0DecodeContext();
  const name = decodeAmf0(r, ctx);
  if (typeof name !== 'string') r.fail('command does not start with its name (an AMF0 string)');
  if (name.length === 0 || name.length > 256) r.fail(`command name of ${name.length} characters`);
  let transactionId = 0;
  let commandObject: Amf0Value = null;
  const args: Amf0Value[] = [];
  if (r.remaining > 0) {
    const at = r.pos;
    const tid = decodeAmf0(r, ctx);
    if (typeof tid !== 'number' || !Number.isFinite(tid)) {
      throw new MalformedInputError(`${FORMAT} command`, at, `"${name}": transaction id is not a finite number`);
    }
    transactionId = tid;
  }
  if (r.remaining > 0) commandObject = decodeAmf0(r, ctx);
  while (r.remaining > 0) args.push(decodeAmf0(r, ctx));
  return { name, transactionId, commandObject, args };
}

/** Data message (type 18, or 15 with a leading 0x00): AMF0 values, the first a handler name. */
export function parseDataMessage(payload: Buffer, typeId: number): { name: string; args: Amf0Value[]; amf0: Buffer } {
  const r: ByteReader = new ByteReader(payload, `${FORMAT} data`);
  if (typeId === RtmpType.dataAmf3) r.skip(1);
  const amf0 = payload.subarray(r.pos);
  const ctx = newAmf0DecodeContext();
  const name = decodeAmf0(r, ctx);
  if (typeof name !== 'string') r.fail('data message does not start with a handler name (an AMF0 string)');
  const args: Amf0Value[] = [];
  while (r.remaining > 0) args.push(decodeAmf0(r, ctx));
  return { name, args, amf0 };
}

/** An AMF0 command/data payload: the values one after the other, sized first. */
export function encodeAmf0Payload(values: readonly Amf0Value[]): Buffer {
  const w = new ByteWriter(amf0Size(values));
  writeAmf0(w, values);
  return w.done();
}

export function commandMessage(
  streamId: number,
  name: string,
  transactionId: number,
  commandObject: Amf0Value,
  ...args: Amf0Value[]
): RtmpMessage {
  return {
    csid: RtmpCsid.command,
    typeId: RtmpType.commandAmf0,
    timestampMs: 0,
    streamId,
    payload: encodeAmf0Payload([name, transactionId, commandObject, ...args]),
  };
}

/** NetStream onStatus (7.2.2): `onStatus(0, null, {level, code, description, ...})` on the stream. */
export function onStatusMessage(
  streamId: number,
  level: 'status' | 'error' | 'warning',
  code: string,
  description: string,
  extra: Amf0Object = {},
): RtmpMessage {
  const info: Amf0Object = { level, code, description, ...extra };
  return { ...commandMessage(streamId, 'onStatus', 0, null, info), csid: RtmpCsid.data };
}

export function dataMessage(streamId: number, values: readonly Amf0Value[]): RtmpMessage {
  return { csid: RtmpCsid.data, typeId: RtmpType.dataAmf0, timestampMs: 0, streamId, payload: encodeAmf0Payload(values) };
}

/** A readable name for a message type, for logs. */
export function rtmpTypeName(typeId: number): string {
  for (const [name, id] of Object.entries(RtmpType)) if (id === typeId) return name;
  return `type ${typeId}`;
}
