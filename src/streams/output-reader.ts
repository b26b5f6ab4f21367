// One reader of a shared output (a ChunkLog): a cursor into its shared chunks, drained into a byte sink with
// backpressure. A reader that falls more than maxQueueBytes behind skips to the newest keyframe;
// one that stays behind longer than maxLagMs is closed with ClientTooSlowError.
//
// Write coalescing (docs/performance.md): readers of one source that write into byte-stream
// sockets join a FanoutGroup instead of listening for every chunk. The group gathers chunks,
// concatenates them once into one shared Buffer, and writes that Buffer to every reader that is
// at the live edge: one write() per reader per batch instead of one per frame, no per-reader
// copy. Batches follow the video: a video frame goes out at the end of the event-loop turn it
// came in (at most one batch per `coalesceMs`), taking along the audio that waited for it; audio
// and other chunks wait for the next video frame, at most about one video frame interval (50 ms
// at most; `coalesceMs` without video). So with 25-30 fps video a reader gets 25-30 writes a
// second (not one per audio and video frame, ~70), and video frames are not held back while they
// come less often than the interval.
// Readers elsewhere (just joined, draining, lagging) catch up chunk by chunk as before. The
// fan-out runs in slices of SLICE_READERS with setImmediate between them, so the event loop
// accepts new connections and answers requests while it writes to a thousand sockets.
//
// The writes to the readers at the live edge go out in one native loop of send() calls per
// slice (native-fanout.ts, native/fanout.c), or on an egress thread (egress-threads.ts); what the
// kernel does not take is queued in Node. Without the native module, each reader writes through
// its socket.

import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { TypedEmitter } from '../typed-emitter.js';
import type { Chunk, ChunkLog } from './chunk-log.js';
import type { EgressSlot, EgressThreads } from './egress-threads.js';
import { SlowReaderPolicy } from './slow-reader.js';
import { directTarget, nativeFanout, writableDirectly, type DirectTarget, type NativeFanout } from './native-fanout.js';

/** What a reader walks: a ChunkLog (MuxedOutput, RawOutput, TimeShiftOutput), or a test's fake. */
export type ChunkSource = Pick<
  ChunkLog,
  | 'id'
  | 'header'
  | 'joinSeq'
  | 'at'
  | 'headSeq'
  | 'firstSeq'
  | 'producedByteCount'
  | 'addReader'
  | 'removeReader'
  | 'on'
  | 'countServed'
  | 'chunksDropped'
  | 'readerSkips'
>;

/** What a reader writes into: a socket, an HTTP response. */
export interface ByteSink {
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  once(event: 'drain', listener: () => void): unknown;
  removeListener(event: 'drain', listener: () => void): unknown;
}

export interface OutputReaderOptions {
  maxQueueBytes: number;
  maxLagMs: number;
  /**
   * Write coalescing interval in ms for a byte-stream sink (0 = once per event-loop turn); chunks
   * written one by one as they come when undefined. When not given and the sink is a TCP socket,
   * the source's `writeCoalesceMs` (MuxedOutput) applies.
   */
  coalesceMs?: number;
  /**
   * The server's egress threads (`EgressThreads N`), given only when nothing but this reader
   * writes to the sink once it has started (HTTP progressive; not RTMP, whose session writes
   * control messages): its batches may then be sent by one of them.
   */
  egress?: EgressThreads | undefined;
}

/** Readers written per event-loop turn by a FanoutGroup before it yields (setImmediate). */
const SLICE_READERS = 200;

/**
 * The longest audio waits for the next video frame. Encoders spread audio evenly between video
 * frames (AAC every 21-23 ms, video every 33-40 ms), so with only `coalesceMs` (10) of wait most
 * audio frames went out alone: 42-63 sends a second per reader instead of 25-30, a third more CPU
 * (docs/performance.md, "Audio waits for the video"). Held until the next video frame, audio
 * reaches a player no later than the video it plays with, so what the player can present is not
 * delayed; 50 ms covers 24-30 fps (a slower video and audio-only feeds wait `coalesceMs`).
 */
const AUDIO_HOLD_MAX_MS = 50;

/** The readers of one source that share its coalesced writes. */
class FanoutGroup {
  private readonly source: ChunkSource;
  private readonly coalesceMs: number;
  private readonly members = new Set<OutputReader>();
  /** Snapshot of members for the fan-out in progress; rebuilt when membership changed. */
  private list: OutputReader[] = [];
  private listDirty = true;
  /** Chunks below this sequence number have been handed to the readers. */
  private flushedTo: number;
  /** A flush is queued for the end of this event-loop turn. */
  private flushQueued = false;
  /** Holds the gathered chunks until holdDeadline (performance.now() time). */
  private holdTimer: NodeJS.Timeout | undefined;
  private holdDeadline = 0;
  private lastFlushAt = -Infinity;
  /** When the last video chunk came, and the gap before it (ms): how long audio waits for the next. */
  private lastVideoAt = -Infinity;
  private videoGapMs = Infinity;
  private readonly offChunk: () => void;
  private readonly onDispose: () => void;
  /** The batch being fanned out (possibly over several slices). */
  private batch: Buffer | undefined;
  private batchFrom = 0;
  private batchTo = 0;
  private sliceAt = 0;
  private slicing = false;
  /** A slice's readers written by the native loop (native-fanout.ts): descriptors, readers, results. */
  private readonly directFds = new Int32Array(SLICE_READERS);
  private readonly directReaders: (OutputReader | undefined)[] = new Array<OutputReader | undefined>(SLICE_READERS);
  private readonly directResults = new Int32Array(SLICE_READERS);

  constructor(source: ChunkSource, coalesceMs: number, onDispose: () => void) {
    this.source = source;
    this.coalesceMs = coalesceMs;
    this.onDispose = onDispose;
    this.flushedTo = source.headSeq;
    this.offChunk = source.on('chunk', this.onChunk);
  }

  add(reader: OutputReader): void {
    this.members.add(reader);
    this.listDirty = true;
  }

  remove(reader: OutputReader): void {
    if (!this.members.delete(reader)) return;
    this.listDirty = true;
    if (this.members.size === 0) {
      this.offChunk();
      this.cancelHold();
      this.onDispose();
    }
  }

  /**
   * When the chunks gathered so far go out: a video frame at the end of this event-loop turn if
   * the last batch left at least coalesceMs ago, else when that interval is over (so at most one
   * batch per interval); any other chunk (audio, data) waits for the next video frame to take it
   * along: at most the gap between the last two video frames plus a quarter (up to
   * AUDIO_HOLD_MAX_MS), and at least coalesceMs, from its arrival.
   */
  private readonly onChunk = (chunk: Chunk): void => {
    const now = performance.now();
    if (chunk.video === true) {
      this.videoGapMs = now - this.lastVideoAt;
      this.lastVideoAt = now;
    }
    if (this.flushQueued) return;
    if (chunk.video !== true && this.coalesceMs > 0) {
      this.holdUntil(now + this.audioHoldMs(now));
      return;
    }
    const due = this.lastFlushAt + this.coalesceMs;
    if (due > now) {
      this.holdUntil(due);
      return;
    }
    this.cancelHold();
    this.flushQueued = true;
    setImmediate(this.flush);
  };

  /** How long a non-video chunk arriving at `now` may wait for the next video frame. */
  private audioHoldMs(now: number): number {
    if (!Number.isFinite(this.videoGapMs)) return this.coalesceMs;
    const untilVideo = this.videoGapMs * 1.25 - (now - this.lastVideoAt);
    return Math.max(this.coalesceMs, Math.min(AUDIO_HOLD_MAX_MS, untilVideo));
  }

  /** Flushes at `deadline` (performance.now() time) unless a flush is already due sooner. */
  private holdUntil(deadline: number): void {
    if (this.holdTimer !== undefined && this.holdDeadline <= deadline) return;
    this.cancelHold();
    this.holdDeadline = deadline;
    this.holdTimer = setTimeout(this.onHoldEnd, Math.max(0, Math.ceil(deadline - performance.now())));
  }

  private readonly onHoldEnd = (): void => {
    this.holdTimer = undefined;
    if (!this.flushQueued) this.flush();
  };

  private cancelHold(): void {
    if (this.holdTimer === undefined) return;
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    this.cancelHold();
    if (this.slicing) {
      // The previous fan-out is still going: take the new chunks after it.
      this.flushQueued = true;
      setImmediate(this.flush);
      return;
    }
    this.lastFlushAt = performance.now();
    const from = this.flushedTo;
    const to = this.source.headSeq;
    this.flushedTo = to;
    if (from >= to || this.members.size === 0) return;
    this.batch = this.concat(from, to);
    this.batchFrom = from;
    this.batchTo = to;
    if (this.listDirty) {
      this.list = [...this.members];
      this.listDirty = false;
    }
    this.sliceAt = 0;
    this.slicing = true;
    this.runSlice();
  };

  private readonly runSlice = (): void => {
    const list = this.list;
    const end = Math.min(list.length, this.sliceAt + SLICE_READERS);
    const batch = this.batch;
    if (nativeFanout !== undefined && batch !== undefined) this.sendSlice(nativeFanout, list, end, batch);
    else for (let i = this.sliceAt; i < end; i++) list[i]?.deliver(batch, this.batchFrom, this.batchTo);
    this.sliceAt = end;
    if (end < list.length) {
      setImmediate(this.runSlice);
      return;
    }
    this.slicing = false;
    this.batch = undefined;
  };

  /**
   * The readers [sliceAt, end) at the live edge with nothing queued in Node get the batch by one
   * native loop of send() calls: on their egress thread when they have one, else here. The
   * others take it through deliver() (catching up, waiting for drain, joining).
   */
  private sendSlice(native: NativeFanout, list: OutputReader[], end: number, batch: Buffer): void {
    const from = this.batchFrom;
    // The egress threads of the readers that have a slot on one (the server's, given to each reader).
    let egress: EgressThreads | undefined;
    let byThread: Map<number, OutputReader[]> | undefined;
    let count = 0;
    for (let i = this.sliceAt; i < end; i++) {
      const reader = list[i];
      if (reader === undefined) continue;
      const slot = reader.egressSlotFor(from);
      if (slot !== undefined && (egress === undefined || egress === slot.threads)) {
        egress = slot.threads;
        byThread ??= new Map<number, OutputReader[]>();
        const onThread = byThread.get(slot.thread);
        if (onThread === undefined) byThread.set(slot.thread, [reader]);
        else onThread.push(reader);
        continue;
      }
      const fd = reader.directFdFor(from);
      if (fd < 0) {
        reader.deliver(batch, from, this.batchTo);
        continue;
      }
      this.directFds[count] = fd;
      this.directReaders[count++] = reader;
    }
    if (count > 0) native.writeAll(this.directFds, count, batch, this.directResults);
    for (let k = 0; k < count; k++) {
      this.directReaders[k]?.afterDirectWrite(batch, from, this.batchTo, this.directResults[k] ?? 0);
      this.directReaders[k] = undefined;
    }
    if (egress !== undefined && byThread !== undefined) {
      for (const [thread, readers] of byThread) this.sendOnThread(egress, thread, readers, batch);
    }
  }

  /** Hands the batch to an egress thread for `readers` (all at its start); each hears back when it is sent. */
  private sendOnThread(egress: EgressThreads, thread: number, readers: OutputReader[], batch: Buffer): void {
    const from = this.batchFrom;
    const to = this.batchTo;
    const fds = new Int32Array(readers.length);
    for (let k = 0; k < readers.length; k++) fds[k] = readers[k]?.beginEgressSend() ?? -1;
    egress.send(thread, batch, fds, readers.length, (results) => {
      for (let k = 0; k < readers.length; k++) readers[k]?.afterEgressSend(batch, from, to, results?.[k]);
    });
  }

  /** The chunks [from, to) as one Buffer (the chunk itself when there is one); undefined if some were trimmed. */
  private concat(from: number, to: number): Buffer | undefined {
    if (to - from === 1) return this.source.at(from)?.data;
    const parts: Buffer[] = [];
    let total = 0;
    for (let seq = from; seq < to; seq++) {
      const chunk = this.source.at(seq);
      if (chunk === undefined) return undefined;
      parts.push(chunk.data);
      total += chunk.data.length;
    }
    return Buffer.concat(parts, total);
  }
}

const groups = new WeakMap<ChunkSource, Map<number, FanoutGroup>>();

function joinGroup(source: ChunkSource, coalesceMs: number, reader: OutputReader): FanoutGroup {
  let byInterval = groups.get(source);
  if (byInterval === undefined) {
    byInterval = new Map();
    groups.set(source, byInterval);
  }
  let group = byInterval.get(coalesceMs);
  if (group === undefined) {
    const map = byInterval;
    group = new FanoutGroup(source, coalesceMs, () => map.delete(coalesceMs));
    byInterval.set(coalesceMs, group);
  }
  group.add(reader);
  return group;
}

export interface ReaderStats {
  bytesSent: number;
  chunksSent: number;
  /** Chunks skipped because the reader fell behind. */
  chunksDropped: number;
  /** Times the reader was moved forward to the newest keyframe. */
  skips: number;
}

export type OutputReaderEvents = {
  /** The reader is done: `error` set when it was closed for a fault (too slow). */
  end: [reason: string, error: Error | undefined];
};

export class OutputReader extends TypedEmitter<OutputReaderEvents> {
  private readonly output: ChunkSource;
  private readonly sink: ByteSink;
  private readonly options: OutputReaderOptions;
  /** Next chunk to write; undefined while waiting for a join point. */
  private pos: number | undefined;
  private waitingDrain = false;
  private readonly policy: SlowReaderPolicy;
  private closed = false;
  private readonly offChunk: () => void;
  private readonly offEnd: () => void;
  private readonly group: FanoutGroup | undefined;
  /** The sink as a socket the group's batches may be written to past Node (native-fanout.ts). */
  private readonly direct: DirectTarget | undefined;
  /** The egress threads and the slot (thread, descriptor) that send this reader's batches (egress-threads.ts). */
  private readonly egress: EgressThreads | undefined;
  private readonly egressSlot: EgressSlot | undefined;
  /** A batch is on an egress thread: nothing else may be written to the sink until it answers. */
  private egressInFlight = false;
  readonly stats: ReaderStats = { bytesSent: 0, chunksSent: 0, chunksDropped: 0, skips: 0 };
  readonly startedAt = Date.now();

  constructor(output: ChunkSource, sink: ByteSink, options: OutputReaderOptions) {
    super();
    this.output = output;
    this.sink = sink;
    this.options = options;
    this.policy = new SlowReaderPolicy(options, `reader of ${output.id}`);
    output.addReader();
    const coalesceMs =
      options.coalesceMs ?? (sink instanceof Socket ? (output as { writeCoalesceMs?: number }).writeCoalesceMs : undefined);
    if (coalesceMs === undefined) {
      this.offChunk = output.on('chunk', (chunk) => this.onChunk(chunk));
    } else {
      this.group = joinGroup(output, coalesceMs, this);
      this.direct = directTarget(sink);
      const egress = this.direct !== undefined ? options.egress : undefined;
      this.egressSlot = egress !== undefined && this.direct !== undefined ? egress.attach(this.direct.fd) : undefined;
      if (this.egressSlot !== undefined) this.egress = egress;
      this.offChunk = () => this.group?.remove(this);
    }
    this.offEnd = output.on('end', (reason) => {
      this.writeRest();
      this.close(reason);
    });
  }

  /**
   * The output ended (a file played out, a feed removed): what it muxed and this reader has not
   * written yet (chunks a coalesced write was still holding) goes out before the reader ends, so a
   * finite stream ends with its last frame. Node queues what the socket does not take now.
   */
  private writeRest(): void {
    if (this.closed || this.pos === undefined || this.egressInFlight) return;
    const head = this.output.headSeq;
    if (this.pos >= head) return;
    this.sink.cork();
    for (; this.pos < head; this.pos++) {
      const chunk = this.output.at(this.pos);
      if (chunk === undefined) continue;
      this.send(chunk.data);
      this.stats.chunksSent++;
    }
    this.sink.uncork();
  }

  /**
   * Sends the header, then starts at the newest join point (the GOP cache), or at `fromSeq` (an
   * older join point, for Preroll), and follows live.
   */
  start(fromSeq?: number): void {
    const header = this.output.header();
    if (header !== undefined) this.send(header);
    this.pos = fromSeq ?? this.output.joinSeq();
    this.pump();
  }

  /** Bytes between this reader's cursor and the newest chunk. */
  get lagBytes(): number {
    if (this.pos === undefined) return 0;
    const chunk = this.output.at(this.pos);
    return chunk === undefined ? 0 : this.output.producedByteCount - chunk.startByte;
  }

  private onChunk(chunk: Chunk): void {
    if (this.closed) return;
    if (this.pos === undefined) {
      if (!chunk.joinable) return;
      this.pos = chunk.seq;
    }
    if (this.waitingDrain) {
      this.checkLag();
      return;
    }
    this.pump();
  }

  /**
   * From the FanoutGroup: the chunks [from, to) are out, `batch` holds them all (undefined when
   * some were trimmed). A reader at `from` gets the batch in one write; any other catches up.
   */
  deliver(batch: Buffer | undefined, from: number, to: number): void {
    if (this.closed || this.egressInFlight) return; // after the thread answers, the reader catches up
    if (this.pos === undefined) {
      for (let seq = from; seq < to; seq++) {
        if (this.output.at(seq)?.joinable === true) {
          this.pos = seq;
          break;
        }
      }
      if (this.pos === undefined) return;
    }
    if (this.waitingDrain) {
      this.checkLag();
      return;
    }
    if (batch === undefined || this.pos !== from || this.policy.behind) {
      this.pump();
      return;
    }
    this.pos = to;
    this.stats.chunksSent += to - from;
    if (!this.send(batch)) {
      this.waitingDrain = true;
      this.sink.once('drain', this.onDrain);
    }
  }

  /**
   * The descriptor the FanoutGroup may write the batch starting at `from` to, past Node: when this
   * reader is at `from`, keeping up, and Node holds nothing for its socket. -1: use deliver().
   */
  directFdFor(from: number): number {
    const direct = this.direct;
    if (
      direct === undefined ||
      this.closed ||
      this.egressInFlight ||
      this.pos !== from ||
      this.waitingDrain ||
      this.policy.behind
    )
      return -1;
    return writableDirectly(direct.socket) ? direct.fd : -1;
  }

  /** This reader's egress slot when the batch starting at `from` may go to its thread now (as directFdFor). */
  egressSlotFor(from: number): EgressSlot | undefined {
    return this.egressSlot !== undefined && this.egressSlot.threads.usable && this.directFdFor(from) >= 0
      ? this.egressSlot
      : undefined;
  }

  /** The batch goes to the egress thread: holds every other write until afterEgressSend; the thread's descriptor. */
  beginEgressSend(): number {
    this.egressInFlight = true;
    return this.egressSlot?.fd ?? -1;
  }

  /**
   * The egress thread sent the batch [from, to): `result` as in afterDirectWrite, or undefined
   * when the thread failed before (what reached the viewer is unknown: the reader is closed).
   * Chunks that came meanwhile follow.
   */
  afterEgressSend(batch: Buffer, from: number, to: number, result: number | undefined): void {
    this.egressInFlight = false;
    if (this.closed) return;
    if (result === undefined) {
      this.close('egress thread failed', new Error('the egress thread failed with a batch of this reader in flight'));
      return;
    }
    this.afterDirectWrite(batch, from, to, result);
    if (!this.waitingDrain) this.pump();
  }

  /**
   * From the FanoutGroup: the batch [from, to) was written to this reader's descriptor, and
   * write() returned `result` (bytes taken, or -errno). What the kernel did not take is queued in
   * Node: on EAGAIN all of it, and a broken connection is then reported by the socket as usual.
   */
  afterDirectWrite(batch: Buffer, from: number, to: number, result: number): void {
    this.pos = to;
    this.stats.chunksSent += to - from;
    this.stats.bytesSent += batch.length;
    this.output.countServed(batch.length);
    let ok = true;
    if (result >= 0) {
      if (this.direct !== undefined) this.direct.written.bytes += result;
      if (result < batch.length) ok = this.sink.write(batch.subarray(result));
    } else {
      ok = this.sink.write(batch);
    }
    if (!ok) {
      this.waitingDrain = true;
      this.sink.once('drain', this.onDrain);
    }
  }

  private checkLag(): void {
    if (this.pos === undefined) return;
    const verdict = this.policy.check(this.lagBytes, this.pos < this.output.firstSeq);
    if (verdict === 'ok') return;
    if (verdict !== 'skip') {
      this.close('reader too slow', verdict);
      return;
    }
    const join = this.output.joinSeq();
    if (join === undefined || join <= this.pos) return;
    this.stats.chunksDropped += join - this.pos;
    this.stats.skips++;
    this.output.chunksDropped += join - this.pos;
    this.output.readerSkips++;
    this.pos = join;
  }

  private pump(): void {
    if (this.closed || this.pos === undefined || this.egressInFlight) return;
    this.checkLag();
    if (this.closed) return;
    const head = this.output.headSeq;
    if (this.pos >= head) return;
    this.sink.cork();
    let ok = true;
    while (ok && this.pos < head) {
      const chunk = this.output.at(this.pos);
      this.pos++;
      if (chunk === undefined) continue;
      ok = this.send(chunk.data);
      this.stats.chunksSent++;
    }
    this.sink.uncork();
    if (this.pos >= head) this.policy.caughtUp();
    if (!ok) {
      this.waitingDrain = true;
      this.sink.once('drain', this.onDrain);
    }
  }

  private readonly onDrain = (): void => {
    this.waitingDrain = false;
    this.pump();
  };

  private send(data: Buffer): boolean {
    this.stats.bytesSent += data.length;
    this.output.countServed(data.length);
    return this.sink.write(data);
  }

  /** Stops reading. Idempotent; the owner ends its socket on the 'end' event. */
  close(reason: string, error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.offChunk();
    this.offEnd();
    this.sink.removeListener('drain', this.onDrain);
    // The thread closes its descriptor after any batch of ours it still has.
    if (this.egressSlot !== undefined) this.egress?.detach(this.egressSlot);
    this.output.removeReader();
    this.safeEmit('end', reason, error);
  }
}
