// The places a reader can start a recorded MPEG-TS file (a Feedcast recording: its TsMuxer writes
// PAT + PMT right before each video keyframe, or every second of an audio-only stream): the offset
// of each such PAT and the DTS of the PES that follows the PMT. Built incrementally from whole
// packets, without demuxing; a reader then starts a TS demuxer at any join's offset. Timestamps
// are unwrapped (33 bits) into one continuous 90 kHz count from the file's first join.

import { MalformedInputError } from '../../errors.js';
import { TS_WRAP, Unwrapper } from '../../media/timebase.js';
import { ByteReader } from '../bytes/byte-reader.js';
import { parsePesHeader } from './pes.js';
import { parseTsPacket, PID_PAT, TS_PACKET_SIZE, TS_SYNC_BYTE } from './ts-packet.js';

export interface TsJoinPoint {
  /** Byte offset of the PAT that begins it. */
  offset: number;
  /** DTS (or PTS) of its first PES: the keyframe. */
  dts90k: number;
}

export class TsJoinIndexer {
  readonly joins: TsJoinPoint[] = [];
  /** Bytes taken so far (whole packets). */
  bytes = 0;
  /** PID of the PES that follows PAT + PMT (the video PID, or the audio PID of an audio-only file). */
  joinPid: number | undefined;
  /** DTS of the last PES start on the join PID, and the step before it (a frame's duration). */
  lastDts90k: number | undefined;
  lastStep90k: number | undefined;
  private readonly unwrap = new Unwrapper(TS_WRAP);
  private tail = Buffer.alloc(0);
  /** After a PAT: the PMT packet is next ('pmt'), then the first PES start ('pes'). */
  private state: { at: 'pmt' | 'pes'; patOffset: number; pmtPid: number | undefined } | undefined;

  /** Takes the next bytes of the file (any cut: a partial packet waits for the rest). */
  push(chunk: Buffer): void {
    const buf = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
    let at = 0;
    for (; at + TS_PACKET_SIZE <= buf.length; at += TS_PACKET_SIZE) this.packet(buf, at, this.bytes + at);
    this.bytes += at;
    this.tail = Buffer.from(buf.subarray(at));
  }

  private packet(buf: Buffer, at: number, fileOffset: number): void {
    if (buf[at] !== TS_SYNC_BYTE) {
      throw new MalformedInputError(
        'mpegts recording',
        fileOffset,
        `no sync byte (0x${(buf[at] ?? 0).toString(16)}): not a whole-packet TS file`,
      );
    }
    const p = parseTsPacket(buf, at);
    if (p.pid === PID_PAT) {
      this.state = { at: 'pmt', patOffset: fileOffset, pmtPid: undefined };
      return;
    }
    const s = this.state;
    if (s?.at === 'pmt') {
      this.state = { ...s, at: 'pes', pmtPid: p.pid };
      return;
    }
    if (!p.payloadUnitStart || !p.hasPayload || p.pid === s?.pmtPid) return;
    const isJoin = s?.at === 'pes' && (this.joinPid === undefined || p.pid === this.joinPid);
    if (!isJoin && p.pid !== this.joinPid) return;
    let dts: number | undefined;
    try {
      const h = parsePesHeader(new ByteReader(buf, 'mpegts recording', at + p.payloadOffset, at + TS_PACKET_SIZE));
      dts = h.dts ?? h.pts;
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
    }
    if (dts === undefined) return; // a PES without a time: nothing to index
    const dts90k = this.unwrap.unwrap(dts);
    if (this.lastDts90k !== undefined && dts90k > this.lastDts90k) this.lastStep90k = dts90k - this.lastDts90k;
    this.lastDts90k = dts90k;
    if (isJoin && s !== undefined) {
      this.joinPid ??= p.pid;
      this.joins.push({ offset: s.patOffset, dts90k });
      this.state = undefined;
    }
  }
}
