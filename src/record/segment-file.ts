// One recording file being written: appends are queued synchronously (the hot path only keeps
// references) and written by one async loop in batches, each piece laid out (`encode`) just
// before it is written. A write error ends the file and is handed to the recorder; it never throws.

import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import { sliceBuffers } from '../feedfile/writer.js';

/** What is appended: laid out when the loop writes it (off the hot path). */
export interface PendingWrite {
  /** Bytes it will take (for the queue bound and the counters). */
  bytes: number;
  /** Wall-clock end of the media it holds (what the listing shows as recorded once it is written). */
  endWallMs: number;
  encode(): Buffer[];
}

export interface SegmentFileEvents {
  /** The file could not be opened or written: it is closed, later appends are dropped. */
  onError(err: Error): void;
  /** Bytes that reached the file. */
  onWritten(bytes: number): void;
}

/** Pieces per write call: a few hundred frames (IOV_MAX is 1024). */
const MAX_BATCH_BUFFERS = 512;

export class SegmentFile {
  /** The path asked for, or with `-1`, `-2`… before the extension if it existed (a restart in the same second). */
  path: string;
  readonly startWallMs: number;
  private fh: FileHandle | undefined;
  private readonly opening: Promise<void>;
  private queue: PendingWrite[] = [];
  private queueBytes = 0;
  private loop: Promise<void> | undefined;
  private position = 0;
  /** Wall-clock end of what is on disk (startWallMs until the first write). */
  writtenEndWallMs: number;
  private failed = false;
  private closed = false;
  private readonly events: SegmentFileEvents;

  constructor(path: string, startWallMs: number, events: SegmentFileEvents) {
    this.path = path;
    this.startWallMs = startWallMs;
    this.writtenEndWallMs = startWallMs;
    this.events = events;
    this.opening = this.openFile().catch((err: unknown) => this.fail(err));
  }

  private async openFile(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const ext = extname(this.path);
    const stem = this.path.slice(0, this.path.length - ext.length);
    for (let n = 0; ; n++) {
      const path = n === 0 ? this.path : `${stem}-${n}${ext}`;
      try {
        this.fh = await open(path, 'wx');
        this.path = path;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n >= 100) throw err;
      }
    }
  }

  /** Bytes queued and not written yet. */
  get pendingBytes(): number {
    return this.queueBytes;
  }

  get bytesWritten(): number {
    return this.position;
  }

  get isFailed(): boolean {
    return this.failed;
  }

  /** Queues a piece (synchronous, no copy); the loop lays it out and writes it. */
  append(piece: PendingWrite): void {
    if (this.failed || this.closed) return;
    this.queue.push(piece);
    this.queueBytes += piece.bytes;
    this.kick();
  }

  private kick(): void {
    if (this.loop !== undefined) return;
    this.loop = this.run().finally(() => {
      this.loop = undefined;
      if (this.queue.length > 0 && !this.failed) this.kick();
    });
  }

  private async run(): Promise<void> {
    await this.opening;
    // Let the frames of this tick arrive first: one write takes what a whole tick queued.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queue.length > 0 && !this.failed) {
      const fh = this.fh;
      if (fh === undefined) return;
      const buffers: Buffer[] = [];
      let taken = 0;
      let bytes = 0;
      let endWallMs = this.writtenEndWallMs;
      while (taken < this.queue.length && buffers.length < MAX_BATCH_BUFFERS) {
        const piece = this.queue[taken] as PendingWrite;
        for (const b of piece.encode()) {
          buffers.push(b);
          bytes += b.length;
        }
        endWallMs = Math.max(endWallMs, piece.endWallMs);
        taken++;
      }
      this.queue.splice(0, taken);
      try {
        let done = 0;
        while (done < bytes) {
          const { bytesWritten } = await fh.writev(done === 0 ? buffers : sliceBuffers(buffers, done), this.position + done);
          if (bytesWritten <= 0) throw new Error(`record: a write of ${bytes - done} bytes to ${this.path} wrote nothing`);
          done += bytesWritten;
        }
      } catch (err) {
        this.fail(err);
        return;
      } finally {
        this.queueBytes = this.queue.reduce((n, p) => n + p.bytes, 0);
      }
      this.position += bytes;
      this.writtenEndWallMs = endWallMs;
      this.events.onWritten(bytes);
    }
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.queue = [];
    this.queueBytes = 0;
    this.events.onError(err instanceof Error ? err : new Error(String(err)));
    const fh = this.fh;
    this.fh = undefined;
    fh?.close().catch(() => undefined);
  }

  /** Writes what is queued, syncs and closes. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.opening;
    while (this.loop !== undefined) await this.loop;
    const fh = this.fh;
    this.fh = undefined;
    if (fh === undefined) return;
    try {
      await fh.datasync();
      await fh.close();
    } catch (err) {
      this.fail(err);
    }
  }
}
