// `feedcast feedfile dump FILE` (header, time range, block statistics) and `feedcast feedfile
// export FILE --from T1 --to T2 out.ts` (a time range as a normal MPEG-TS file). Never writes FILE.

import { open } from 'node:fs/promises';
import { FeedcastError } from '../errors.js';
import { TsMuxer } from '../formats/mpegts/ts-muxer.js';
import { describeTrack, type Track } from '../media/track.js';
import { FeedFileCursor, FileBlockSource } from './cursor.js';
import { BlockFlag, fileSizeOf, payloadCapacity, RecordType } from './format.js';
import { checkBlockAt, openFeedFile, readBlocks, runLength, type OpenedFeedFile } from './recovery.js';
import { isoTime, parseAbsoluteTime, parseRelativeTime, wallMsBack } from './time-spec.js';

const USAGE = `Usage:
  feedcast feedfile dump FILE
      header, time range held and block statistics of a feed file
  feedcast feedfile export FILE [--from T1] [--to T2] OUT.ts
      writes that range as MPEG-TS. T: a date (2024-05-01T12:00:00Z, 20240501 120000, now)
      or a duration back from the newest data (-30, -5m, -1:30). Default: everything.
`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

/**
 * A subcommand that is not one of the tool's: prints its usage (exit 0 when asked with help,
 * 2 otherwise, naming the mistake). Shared by `feedcast feedfile` and `feedcast recordings`.
 */
export function answerUsage(io: CliIo, tool: string, command: string | undefined, usage: string): number {
  const asked = command === undefined || command === 'help' || command === '--help';
  io.err(asked ? usage : `feedcast ${tool}: unknown or incomplete command\n\n${usage}`);
  return command === 'help' || command === '--help' ? 0 : 2;
}

const stdio: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

export async function runFeedfileCommand(args: string[], io: CliIo = stdio): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === 'dump' && rest.length === 1 && rest[0] !== undefined) return await dump(rest[0], io);
    if (command === 'export') return await exportRange(rest, io);
    return answerUsage(io, 'feedfile', command, USAGE);
  } catch (err) {
    if (err instanceof FeedcastError) {
      io.err(`feedcast feedfile: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function sourceOf(f: OpenedFeedFile): FileBlockSource {
  const range = f.newest !== undefined ? { oldestSeq: f.oldestSeq, newestSeq: f.newest.seq } : undefined;
  return new FileBlockSource(f.fh, f.geometry, f.header.fileId, range);
}

async function dump(path: string, io: CliIo): Promise<number> {
  const f = await openFeedFile(path, { mode: 'read' });
  try {
    const h = f.header;
    const g = f.geometry;
    const lines = [
      `file        ${path}`,
      `format      Feedcast feed file, version ${h.version}`,
      `blocks      ${g.blockSize} bytes; ${g.dataBlocks} data blocks (ring of ${fileSizeOf(g)} bytes, ${payloadCapacity(g)} payload bytes a block)`,
      `file id     ${h.fileId.toString(16).padStart(8, '0')}, created ${isoTime(h.createdAtMs)}, header generation ${h.generation} (copy ${f.report.headerCopy}${f.report.otherHeaderBad ? ', the other copy is damaged' : ''})`,
      `checkpoint  next seq ${h.checkpointSeq}${h.checkpointWallMs > 0 ? ` at ${isoTime(h.checkpointWallMs)}` : ''}; base seq ${h.baseSeq}`,
      `tracks      ${h.tracks.length === 0 ? (h.tracksOmitted ? '(too large for the header)' : '(none yet)') : h.tracks.map((t: Track) => `${t.id}:${describeTrack(t)}`).join(', ')}`,
    ];
    const cursor = new FeedFileCursor(sourceOf(f));
    const range = await cursor.timeRange();
    lines.push(
      range === undefined
        ? 'time range  (empty)'
        : `time range  ${isoTime(range.oldestWallMs)} .. ${isoTime(range.newestWallMs)} (${((range.newestWallMs - range.oldestWallMs) / 1000).toFixed(1)} s; feed clock ${(range.oldestDts90k / 90_000).toFixed(3)} .. ${(range.newestDts90k / 90_000).toFixed(3)} s)`,
    );
    // Block statistics: every block of the range the file may hold, checked.
    const stats = { valid: 0, bad: 0, key: 0, partial: 0, payload: 0 };
    if (f.newest !== undefined) {
      const size = (await f.fh.stat()).size;
      for (let seq = f.oldestSeq; seq <= f.newest.seq;) {
        const n = runLength(g, seq, Math.min(256, f.newest.seq - seq + 1));
        const bytes = await readBlocks(f.fh, g, seq, n);
        for (let i = 0; i < n; i++, seq++) {
          const offset = (g.headerBlocks + (seq % g.dataBlocks)) * g.blockSize;
          if (offset >= size) continue; // a ring that never filled
          const b = checkBlockAt(bytes, i * g.blockSize, g, h.fileId, seq);
          if (b === undefined) {
            stats.bad++;
            continue;
          }
          stats.valid++;
          stats.payload += b.payloadLength;
          if (b.flags & BlockFlag.key) stats.key++;
          if (b.payloadLength < payloadCapacity(g)) stats.partial++;
        }
      }
      lines.push(`sequence    ${f.oldestSeq} .. ${f.newest.seq} (newest found in ${f.report.blocksScanned} blocks scanned)`);
    }
    lines.push(
      `block stats ${stats.valid} valid, ${stats.bad} damaged or missing, ${stats.key} with a join point, ${stats.partial} partial; ${stats.payload} payload bytes`,
    );
    io.out(lines.join('\n') + '\n');
    return 0;
  } finally {
    await f.fh.close();
  }
}

function parseTimeArg(text: string, newestWallMs: number): number {
  return text.startsWith('-') ? wallMsBack(newestWallMs, parseRelativeTime(text)) : parseAbsoluteTime(text);
}

async function exportRange(args: string[], io: CliIo): Promise<number> {
  let from: string | undefined;
  let to: string | undefined;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--from' || a === '--to') {
      const v = args[++i];
      if (v === undefined) {
        io.err(`feedcast feedfile export: ${a} needs a time\n`);
        return 2;
      }
      if (a === '--from') from = v;
      else to = v;
    } else {
      positional.push(a);
    }
  }
  const [path, outPath] = positional;
  if (path === undefined || outPath === undefined || positional.length !== 2) {
    io.err(`feedcast feedfile export: name the feed file and the output file\n\n${USAGE}`);
    return 2;
  }
  const f = await openFeedFile(path, { mode: 'read' });
  try {
    const cursor = new FeedFileCursor(sourceOf(f));
    const range = await cursor.timeRange();
    if (range === undefined) {
      io.err(`feedcast feedfile export: ${path} holds nothing\n`);
      return 1;
    }
    const fromMs = from !== undefined ? parseTimeArg(from, range.newestWallMs) : range.oldestWallMs;
    const toMs = to !== undefined ? parseTimeArg(to, range.newestWallMs) : Number.POSITIVE_INFINITY;
    if (toMs < fromMs) {
      io.err(`feedcast feedfile export: --to ${isoTime(toMs)} is before --from ${isoTime(fromMs)}\n`);
      return 2;
    }
    const found = await cursor.seek(fromMs);
    if (found.kind !== 'ok') {
      io.err(
        `feedcast feedfile export: ${isoTime(fromMs)} is outside what ${path} holds (${isoTime(range.oldestWallMs)} .. ${isoTime(range.newestWallMs)})\n`,
      );
      return 1;
    }
    const out = await open(outPath, 'w');
    let muxer: TsMuxer | undefined;
    let frames = 0;
    let bytes = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      await out.writev(pending);
      pending = [];
      pendingBytes = 0;
    };
    const emit = async (b: Buffer | undefined): Promise<void> => {
      if (b === undefined || b.length === 0) return;
      pending.push(b);
      pendingBytes += b.length;
      bytes += b.length;
      if (pendingBytes >= 1 << 20) await flush();
    };
    // Wall time of a frame: the last join point's wall time plus the DTS elapsed since it.
    let joinWall = found.wallMs;
    let joinDts = found.dts90k;
    try {
      for (let r = await cursor.next(); r !== undefined; r = await cursor.next()) {
        if (r.type === RecordType.tracks) {
          if (r.join) {
            joinWall = r.wallMs;
            joinDts = r.dts90k;
          }
          if (muxer === undefined) {
            muxer = new TsMuxer(r.tracks);
            await emit(muxer.header());
          } else {
            await emit(muxer.updateTracks(r.tracks));
          }
          continue;
        }
        if (muxer === undefined) continue;
        if (joinWall + (r.frame.dts90k - joinDts) / 90 > toMs) break;
        await emit(muxer.mux(r.frame));
        frames++;
      }
      await flush();
    } finally {
      await out.close();
    }
    const s = cursor.stats;
    io.out(
      `exported ${frames} frames (${bytes} bytes) from ${isoTime(found.wallMs)} to ${outPath}` +
        (s.badBlocks + s.overtaken > 0 ? `; skipped ${s.badBlocks} damaged blocks` : '') +
        '\n',
    );
    return 0;
  } finally {
    await f.fh.close();
  }
}
