// A time-shifted range read by an OutputReader ends when its source does, with every byte the
// reader could use written: also when the source's first frames come before a join point (audio
// ahead of the first video keyframe), which the reader never sees (the range once never ended).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ShiftItem, ShiftSource, TimeShiftStats } from '../feedfile/time-shift.js';
import type { StreamMuxer } from '../media/demuxer.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import { silentLogger } from '../observability/logger.js';
import { OutputReader, type ByteSink } from './output-reader.js';
import { TimeShiftOutput } from './time-shift-output.js';

const TRACKS: Track[] = [
  { id: 0, kind: 'video', codec: 'h264', timescale: 90_000 } as Track,
  { id: 1, kind: 'audio', codec: 'aac', timescale: 90_000 } as Track,
];

class ListSource implements ShiftSource {
  readonly isLive = false;
  ended: { reason: string; error: Error | undefined } | undefined;
  readonly stats: TimeShiftStats = { fileFrames: 0, liveFrames: 0, joinedLiveAt: undefined, framesDropped: 0 };
  constructor(private readonly items: ShiftItem[]) {}
  next(): Promise<ShiftItem | undefined> {
    const item = this.items.shift();
    if (item === undefined) this.ended = { reason: 'the range ends here', error: undefined };
    return Promise.resolve(item);
  }
  close(): void {
    this.items.length = 0;
  }
}

/** Each frame muxes to its own bytes, so what the reader got is readable. */
const textMuxer = (): StreamMuxer => ({
  contentType: 'text/plain',
  header: () => Buffer.from('H|'),
  updateTracks: () => undefined,
  mux: (f: Frame) => Buffer.from(`${f.data.toString()}|`),
});

class Sink implements ByteSink {
  readonly writes: Buffer[] = [];
  write(chunk: Buffer): boolean {
    this.writes.push(chunk);
    return true;
  }
  cork(): void {}
  uncork(): void {}
  once(): unknown {
    return this;
  }
  removeListener(): unknown {
    return this;
  }
}

const frame = (trackId: number, dts: number, keyframe: boolean, name: string): ShiftItem => ({
  kind: 'frame',
  frame: { trackId, dts90k: dts, pts90k: dts, keyframe, data: Buffer.from(name) },
});

test('a range whose first frames precede the first keyframe ends, and the reader gets it from the keyframe', async () => {
  const source = new ListSource([
    frame(1, 0, true, 'a0'),
    frame(1, 1920, true, 'a1'),
    frame(0, 3600, true, 'K'),
    frame(1, 3840, true, 'a2'),
    frame(0, 7200, false, 'P'),
  ]);
  const output = new TimeShiftOutput(
    't',
    source,
    TRACKS,
    textMuxer,
    {
      settings: { retainBytes: 1 << 20 },
      trackFilter: () => true,
      aheadBytes: 1 << 16,
    },
    silentLogger,
  );
  const sink = new Sink();
  const reader = new OutputReader(output, sink, { maxQueueBytes: 1 << 20, maxLagMs: 60_000 });
  const ended = new Promise<string>((resolve) => reader.on('end', (reason) => resolve(reason)));
  reader.start();
  output.start();
  assert.equal(await ended, 'the range ends here');
  assert.equal(Buffer.concat(sink.writes).toString(), 'H|K|a2|P|');
});
