// Egress threads (`EgressThreads N`, off by default): the fan-out's send() calls for HTTP
// progressive readers run on N worker threads, so the kernel's share of serving them (four fifths
// of the server's time at 1000 readers, docs/performance.md) is spread over other cores while the
// main thread keeps accepting, parsing and muxing.
//
// What a thread does and does not do: it gets a copy of each batch and the descriptors to send it
// to, sends, and answers with what each send() returned (WORKER_SOURCE below). Each reader's socket
// is given to a thread as a dup of its descriptor, which only that thread closes (after its last
// batch, in message order): so the main thread may close a socket at any moment without the thread
// ever writing into another socket that reused the number. While a reader's batch is in flight,
// nothing else is written to its socket (OutputReader waits for the answer), and the main thread
// writes whatever the kernel did not take. Only readers whose socket nobody else writes to (HTTP
// progressive) are handed over; RTMP sessions write control messages of their own.

import { Worker } from 'node:worker_threads';
import { ConfigError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { NATIVE_MODULE_PATH, nativeFanout, nativeFanoutStatus } from './native-fanout.js';
import { detach } from '../observability/detach.js';

/** A reader's socket as one thread sees it: the thread, and the descriptor it owns. */
export interface EgressSlot {
  /** The threads the slot belongs to. */
  threads: EgressThreads;
  thread: number;
  fd: number;
}

/** To a thread. */
type EgressRequest =
  { kind: 'batch'; id: number; data: Uint8Array; fds: Int32Array; count: number } | { kind: 'close'; fds: number[] };

/** From a thread. */
interface EgressReply {
  kind: 'sent';
  id: number;
  results: Int32Array;
}

/**
 * A thread's whole program: plain JavaScript given to `new Worker(…, { eval: true })`, so it runs
 * the same from the TypeScript sources and from the build. It loads the native module, sends each
 * batch with writeAll, answers with the results, and closes the descriptors it is told to close.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const native = require(workerData.modulePath);
parentPort.on('message', (request) => {
  if (request.kind === 'close') {
    for (const fd of request.fds) native.closeFd(fd);
    return;
  }
  const results = new Int32Array(request.count);
  native.writeAll(request.fds, request.count, request.data, results);
  parentPort.postMessage({ kind: 'sent', id: request.id, results }, [results.buffer]);
});
`;

export class EgressThreads {
  readonly count: number;
  private readonly workers: Worker[] = [];
  private readonly log: Logger;
  private next = 0;
  private nextBatch = 1;
  /** Batches sent and not answered yet: their callbacks, by id. */
  private readonly pending = new Map<number, (results: Int32Array | undefined) => void>();
  /** Descriptors the threads own, so that none is left open when they stop or fail. */
  private readonly open = new Set<EgressSlot>();
  private failed = false;
  private stopping = false;
  /** Batches handed to the threads so far. */
  batches = 0;

  private constructor(count: number, log: Logger) {
    this.count = count;
    this.log = log;
  }

  /** Throws a ConfigError when `count` threads cannot run here (the native module is not loaded). */
  static check(count: number): void {
    if (nativeFanout !== undefined) return;
    throw new ConfigError(
      `EgressThreads ${count}`,
      `needs the native fan-out module, which is not loaded (${nativeFanoutStatus}): build it with \`node scripts/build-native.mjs\` (it needs a C compiler), or remove EgressThreads`,
    );
  }

  /** Starts `count` threads (see check()). */
  static start(count: number, log: Logger): EgressThreads {
    EgressThreads.check(count);
    const threads = new EgressThreads(count, log);
    for (let i = 0; i < count; i++) threads.workers.push(threads.spawn(i));
    return threads;
  }

  private spawn(index: number): Worker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      name: `feedcast-egress-${index}`,
      workerData: { modulePath: NATIVE_MODULE_PATH },
    });
    worker.on('message', (reply: EgressReply) => {
      const done = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      done?.(reply.results);
    });
    worker.on('error', (err) => this.fail(index, err));
    worker.on('exit', (code) => {
      if (!this.stopping) this.fail(index, new Error(`exited with code ${code}`));
    });
    worker.unref();
    return worker;
  }

  /** A thread died: readers whose batch it held are told (undefined), and no reader is handed over again. */
  private fail(index: number, err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.log.error('egress thread failed: HTTP readers are written by the main thread from now on', {
      thread: index,
      error: err.message,
    });
    const callbacks = [...this.pending.values()];
    this.pending.clear();
    for (const done of callbacks) done(undefined);
    detach(this.stop(), this.log, 'egress threads stop');
  }

  /** Readers whose socket a thread holds now. */
  get readers(): number {
    return this.open.size;
  }

  /** Batches sent and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** True while the threads take readers. */
  get usable(): boolean {
    return !this.failed && !this.stopping;
  }

  /** Hands a socket (its descriptor) to the next thread; undefined when it cannot be. */
  attach(fd: number): EgressSlot | undefined {
    if (!this.usable || nativeFanout === undefined) return undefined;
    const copy = nativeFanout.dupFd(fd);
    if (copy < 0) return undefined;
    const slot: EgressSlot = { threads: this, thread: this.next, fd: copy };
    this.next = (this.next + 1) % this.count;
    this.open.add(slot);
    return slot;
  }

  /** The reader is done: its thread closes the descriptor after the batches already sent to it. */
  detach(slot: EgressSlot): void {
    if (!this.open.delete(slot)) return;
    const worker = this.workers[slot.thread];
    if (worker === undefined || !this.usable) {
      nativeFanout?.closeFd(slot.fd);
      return;
    }
    const request: EgressRequest = { kind: 'close', fds: [slot.fd] };
    worker.postMessage(request);
  }

  /**
   * Sends `data` to the first `count` of `fds` (descriptors of slots of `thread`) on that thread;
   * `done` gets what each send() returned, or undefined if the thread failed first.
   */
  send(thread: number, data: Buffer, fds: Int32Array, count: number, done: (results: Int32Array | undefined) => void): void {
    const worker = this.workers[thread];
    if (worker === undefined || !this.usable) {
      done(undefined);
      return;
    }
    const id = this.nextBatch++;
    this.batches++;
    this.pending.set(id, done);
    // One copy of exactly the batch, moved to the thread (a Buffer can be a view into a larger
    // pooled ArrayBuffer, which a plain postMessage would copy whole): the thread never sees
    // memory the main thread reuses.
    const bytes = new Uint8Array(data.length);
    bytes.set(data);
    const targets = fds.slice(0, count);
    const request: EgressRequest = { kind: 'batch', id, data: bytes, fds: targets, count };
    worker.postMessage(request, [bytes.buffer, targets.buffer]);
  }

  /** Stops the threads and closes every descriptor they still own. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const done of this.pending.values()) done(undefined);
    this.pending.clear();
    for (const slot of this.open) nativeFanout?.closeFd(slot.fd);
    this.open.clear();
  }
}
