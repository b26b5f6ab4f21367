// Opening a FeedFile: create it, or reopen an existing one after a clean stop or a crash. Checks
// the header (a foreign file or another version is refused, never overwritten), then finds the
// newest valid block by sequence number and CRC with a scan bounded from the header's checkpoint.

import { randomInt } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { ConfigError, FeedcastError, MalformedInputError, UnsupportedError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import {
  BLOCK_HEADER_BYTES,
  blockOffset,
  DEFAULT_BLOCK_SIZE,
  encodeHeader,
  FORMAT,
  geometryFor,
  identify,
  MAX_BLOCK_SIZE,
  MIN_BLOCK_SIZE,
  parseBlock,
  parseHeader,
  RecordType,
  type BlockHeader,
  type FileHeader,
  type Geometry,
} from './format.js';

export interface OpenOptions {
  /** 'write': create or reopen for appending; 'read': never changes the file (ReadOnlyFile, tools). */
  mode: 'write' | 'read';
  /** Ring size for a new file (FileMaxSize). An existing file keeps its own unless truncated. */
  maxSizeBytes?: number;
  blockSize?: number;
  /** Drop the recorded content (Truncate). Never applies to a file that is not ours. */
  truncate?: boolean;
  log?: Logger;
}

export interface RecoveryReport {
  created: boolean;
  truncated: boolean;
  /** Which header copy is in force (0 or 1), and whether the other one was unusable. */
  headerCopy: number;
  otherHeaderBad: boolean;
  blocksScanned: number;
  /** Blocks in the scanned window that failed their CRC or had the wrong sequence number. */
  badBlocks: number;
  durationMs: number;
}

export interface OpenedFeedFile {
  readonly path: string;
  readonly fh: FileHandle;
  readonly header: FileHeader;
  readonly geometry: Geometry;
  /** The newest valid block, or undefined when the file holds no data. */
  readonly newest: BlockHeader | undefined;
  /** Lowest sequence number that may still be in the file. */
  readonly oldestSeq: number;
  /** Where appending continues. */
  readonly nextSeq: number;
  /** Largest file-clock DTS and wall time seen in the newest block (to continue the clock after it). */
  readonly lastDts90k: number | undefined;
  readonly lastWallMs: number | undefined;
  readonly report: RecoveryReport;
}

/** Blocks read per pread during scans. */
const SCAN_CHUNK_BLOCKS = 256;
/** Consecutive bad blocks the forward scan tolerates (torn writes after a power cut). */
const SCAN_MAX_MISSES = 8;

export function newFileId(): number {
  return randomInt(1, 0xffff_ffff);
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Reads up to `length` bytes at `position`; missing bytes past the end of the file stay zero. */
export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf;
}

/** Creates or reopens the feed file at `path`. Throws a FeedcastError a user can act on. */
export async function openFeedFile(path: string, options: OpenOptions): Promise<OpenedFeedFile> {
  const started = Date.now();
  let fh: FileHandle;
  try {
    fh = await open(path, options.mode === 'read' ? 'r' : 'r+');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' && options.mode === 'write') {
      fh = await open(path, 'wx+');
    } else if (code === 'ENOENT') {
      throw new ConfigError(path, 'the feed file does not exist (ReadOnlyFile needs an existing file)');
    } else {
      throw new ConfigError(path, `cannot open the feed file (${code ?? String(err)})`);
    }
  }
  try {
    return await openHandle(path, fh, options, started);
  } catch (err) {
    await fh.close();
    throw err;
  }
}

async function openHandle(path: string, fh: FileHandle, options: OpenOptions, started: number): Promise<OpenedFeedFile> {
  const size = (await fh.stat()).size;
  const head = await readAt(fh, 0, Math.min(size, 2 * MAX_BLOCK_SIZE));
  const kind = identify(head.subarray(0, Math.min(head.length, 8)));
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const report: RecoveryReport = {
    created: false,
    truncated: false,
    headerCopy: 0,
    otherHeaderBad: false,
    blocksScanned: 0,
    badBlocks: 0,
    durationMs: 0,
  };
  const create = async (): Promise<OpenedFeedFile> => {
    if (options.mode === 'read') throw new MalformedInputError(FORMAT, 0, `${path} is empty: not a Feedcast feed file`);
    const geometry = geometryFor(options.maxSizeBytes ?? 5 * 1024 * 1024, blockSize);
    const header: FileHeader = {
      version: 1,
      ...geometry,
      fileId: newFileId(),
      generation: 1,
      createdAtMs: Date.now(),
      checkpointSeq: 0,
      checkpointWallMs: 0,
      baseSeq: 0,
      tracks: [],
      tracksOmitted: false,
    };
    await fh.truncate(0);
    await fh.write(encodeHeader(header, 0), 0, geometry.blockSize, 0);
    await fh.write(encodeHeader(header, 1), 0, geometry.blockSize, geometry.blockSize);
    report.created = true;
    report.durationMs = Date.now() - started;
    return {
      path,
      fh,
      header,
      geometry,
      newest: undefined,
      oldestSeq: 0,
      nextSeq: 0,
      lastDts90k: undefined,
      lastWallMs: undefined,
      report,
    };
  };

  if (kind === 'empty') return create();
  if (kind === 'ffm') {
    throw new MalformedInputError(
      FORMAT,
      0,
      `${path} is an ffserver FFM feed file, not a Feedcast feed file; Feedcast never overwrites a file it does not recognise: move it away, delete it, or name another File`,
    );
  }
  if (kind === 'foreign') {
    throw new MalformedInputError(
      FORMAT,
      0,
      `${path} is not a Feedcast feed file (no "FEEDCAST" magic); Feedcast never overwrites a file it does not recognise: move it away, delete it, or name another File`,
    );
  }

  const copies = readHeaderCopies(head);
  const versionError = copies.errors.find((e) => !(e instanceof MalformedInputError));
  if (versionError !== undefined) throw new UnsupportedError(`${path}: ${versionError.message}`);
  const best = copies.valid.sort((a, b) => b.header.generation - a.header.generation)[0];
  if (best === undefined) {
    if (options.mode === 'write' && options.truncate === true) return create();
    const detail = copies.errors.map((e) => e.message).join('; ');
    throw new MalformedInputError(
      FORMAT,
      0,
      `${path}: both header copies are damaged (${detail}); the file is left untouched — delete it, or set Truncate to start it afresh`,
    );
  }
  report.headerCopy = best.copy;
  report.otherHeaderBad = copies.valid.length < 2;
  let header = best.header;
  const geometry: Geometry = { blockSize: header.blockSize, headerBlocks: header.headerBlocks, dataBlocks: header.dataBlocks };

  if (options.mode === 'write' && options.truncate === true) {
    if (options.maxSizeBytes !== undefined) {
      const wanted = geometryFor(options.maxSizeBytes, blockSize);
      if (wanted.dataBlocks !== geometry.dataBlocks || wanted.blockSize !== geometry.blockSize) return create();
    }
    // Keep the file (and its id); continue the sequence at the next lap so old blocks never count again.
    const nextSeq = Math.ceil((header.checkpointSeq + 1) / geometry.dataBlocks) * geometry.dataBlocks;
    header = { ...header, generation: header.generation + 1, checkpointSeq: nextSeq, baseSeq: nextSeq };
    await fh.truncate(geometry.headerBlocks * geometry.blockSize);
    await fh.write(encodeHeader(header, 0), 0, geometry.blockSize, 0);
    await fh.write(encodeHeader(header, 1), 0, geometry.blockSize, geometry.blockSize);
    report.truncated = true;
    report.durationMs = Date.now() - started;
    return {
      path,
      fh,
      header,
      geometry,
      newest: undefined,
      oldestSeq: nextSeq,
      nextSeq,
      lastDts90k: undefined,
      lastWallMs: undefined,
      report,
    };
  }
  if (options.maxSizeBytes !== undefined && options.mode === 'write') {
    const wanted = Math.floor(options.maxSizeBytes / geometry.blockSize) - geometry.headerBlocks;
    if (wanted !== geometry.dataBlocks) {
      options.log?.warn('the feed file keeps the size it was created with; delete it or set Truncate to resize it', {
        file: path,
        blocks: geometry.dataBlocks,
        configuredBlocks: wanted,
      });
    }
  }

  const found = await findNewest(fh, header, size, report);
  const newest = found?.block;
  const nextSeq = newest !== undefined ? newest.seq + 1 : Math.max(header.checkpointSeq, header.baseSeq);
  const oldestSeq = Math.max(header.baseSeq, nextSeq - geometry.dataBlocks, 0);
  let lastDts90k: number | undefined;
  let lastWallMs: number | undefined;
  if (found !== undefined) [lastDts90k, lastWallMs] = lastTimes(found.bytes, found.block);
  report.durationMs = Date.now() - started;
  options.log?.info('feed file reopened', {
    file: path,
    newestSeq: newest?.seq,
    scanned: report.blocksScanned,
    bad: report.badBlocks,
    ms: report.durationMs,
  });
  return { path, fh, header, geometry, newest, oldestSeq, nextSeq, lastDts90k, lastWallMs, report };
}

interface HeaderCopies {
  valid: { copy: number; header: FileHeader }[];
  errors: FeedcastError[];
}

/** Parses header copy 0 at offset 0 and copy 1 one block later (its block size from copy 0, or tried). */
function readHeaderCopies(head: Buffer): HeaderCopies {
  const out: HeaderCopies = { valid: [], errors: [] };
  const tryAt = (copy: number, start: number): FileHeader | undefined => {
    try {
      const header = parseHeader(head, start);
      out.valid.push({ copy, header });
      return header;
    } catch (err) {
      if (err instanceof FeedcastError) out.errors.push(err);
      else throw err;
      return undefined;
    }
  };
  const first = tryAt(0, 0);
  if (first !== undefined) {
    if (head.length >= 2 * first.blockSize) tryAt(1, first.blockSize);
    return out;
  }
  for (let bs = MIN_BLOCK_SIZE; bs <= MAX_BLOCK_SIZE; bs *= 2) {
    if (head.length < 2 * bs) break;
    const errors = out.errors.length;
    if (tryAt(1, bs) !== undefined) break;
    // Only a copy with our magic at this size tells something (another version); drop the rest.
    out.errors.splice(errors).forEach((e) => {
      if (!(e instanceof MalformedInputError)) out.errors.push(e);
    });
  }
  return out;
}

/** A block is ours when it parses, has the expected sequence number and this file's id. */
export function checkBlockAt(
  bytes: Buffer,
  start: number,
  g: Geometry,
  fileId: number,
  expectedSeq: number,
): BlockHeader | undefined {
  try {
    const h = parseBlock(bytes, start, g.blockSize, blockOffset(g, expectedSeq));
    return h.seq === expectedSeq && h.fileId === fileId ? h : undefined;
  } catch (err) {
    if (err instanceof FeedcastError) return undefined;
    throw err;
  }
}

/**
 * Reads the blocks of sequence numbers [from, from+count) that lie in consecutive slots without
 * wrapping (the caller splits at the ring's end). Missing bytes past the end of the file read as zeros.
 */
export async function readBlocks(fh: FileHandle, g: Geometry, from: number, count: number): Promise<Buffer> {
  return readAt(fh, blockOffset(g, from), count * g.blockSize);
}

/** How many blocks from `seq` can be read in one pread (no wrap), at most `max`. */
export function runLength(g: Geometry, seq: number, max: number): number {
  return Math.max(1, Math.min(max, g.dataBlocks - (seq % g.dataBlocks)));
}

/**
 * The newest valid block: scans forward from the checkpoint (the blocks written after the last
 * header update), tolerating a few bad blocks; if nothing is found there, scans back from it.
 */
async function findNewest(
  fh: FileHandle,
  header: FileHeader,
  fileSize: number,
  report: RecoveryReport,
): Promise<{ block: BlockHeader; bytes: Buffer } | undefined> {
  const g: Geometry = header;
  const base = header.baseSeq;
  const limit = g.dataBlocks;
  let best: { block: BlockHeader; bytes: Buffer } | undefined;
  let seq = Math.max(base, header.checkpointSeq - 1);
  let misses = 0;
  let scanned = 0;
  while (misses <= SCAN_MAX_MISSES && scanned < limit) {
    if (blockOffset(g, seq) >= fileSize) break; // past the end of a ring that never filled
    const n = runLength(g, seq, SCAN_CHUNK_BLOCKS);
    const bytes = await readBlocks(fh, g, seq, n);
    for (let i = 0; i < n && misses <= SCAN_MAX_MISSES; i++, seq++) {
      scanned++;
      const block = checkBlockAt(bytes, i * g.blockSize, g, header.fileId, seq);
      if (block === undefined) {
        misses++;
        continue;
      }
      report.badBlocks += misses;
      misses = 0;
      best = { block, bytes: bytes.subarray(i * g.blockSize, (i + 1) * g.blockSize) };
    }
  }
  if (best === undefined) {
    // The checkpoint is ahead of what reached the disk (a power cut): look back from it.
    let back = Math.max(base, header.checkpointSeq - 1);
    const stop = Math.max(base, header.checkpointSeq - limit);
    while (best === undefined && back >= stop && back > 0) {
      const from = Math.max(stop, back - SCAN_CHUNK_BLOCKS + 1, back - (back % g.dataBlocks));
      const n = back - from + 1;
      const bytes = await readBlocks(fh, g, from, n);
      for (let i = n - 1; i >= 0; i--) {
        scanned++;
        const block = checkBlockAt(bytes, i * g.blockSize, g, header.fileId, from + i);
        if (block !== undefined) {
          best = { block, bytes: bytes.subarray(i * g.blockSize, (i + 1) * g.blockSize) };
          break;
        }
        report.badBlocks++;
      }
      back = from - 1;
    }
  }
  report.blocksScanned += scanned;
  return best;
}

/** The largest DTS and wall time of the records that start in a block (the clock continues after them). */
function lastTimes(bytes: Buffer, block: BlockHeader): [number, number] {
  let dts = block.dts90k;
  let wall = block.wallMs;
  if (block.firstRecordOffset === 0) return [dts, wall];
  // Only headers matter: a record cut by the end of the block is still counted by its header.
  const slice = bytes.subarray(block.firstRecordOffset, BLOCK_HEADER_BYTES + block.payloadLength);
  let pos = 0;
  while (pos + 20 <= slice.length) {
    const type = slice[pos];
    if (type !== RecordType.frame && type !== RecordType.tracks) break;
    const length = slice.readUInt32BE(pos + 4);
    const recordDts = slice.readInt32BE(pos + 8) * 0x1_0000_0000 + slice.readUInt32BE(pos + 12);
    dts = Math.max(dts, recordDts);
    if (type === RecordType.tracks && pos + 28 <= slice.length) {
      wall = Math.max(wall, slice.readUInt32BE(pos + 20) * 0x1_0000_0000 + slice.readUInt32BE(pos + 24));
    }
    pos += 20 + length;
  }
  return [dts, wall];
}
