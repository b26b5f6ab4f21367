// An AV1 publisher over HTTP: ffmpeg encodes AV1 (libaom, real-time) as a low-overhead OBU stream
// and Feedcast's TsMuxer carries it as MPEG-TS (AOM's carriage), POSTed to a feed. Debian's
// ffmpeg 5.1 cannot write AV1 into MPEG-TS itself (no registration descriptor, no start codes).

import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { buildAv1c } from '../../src/formats/av1/av1c.js';
import { isKeyTemporalUnit, ObuType, parseSequenceHeader, readObu, writeObus, type Obu } from '../../src/formats/av1/obu.js';
import { TsMuxer } from '../../src/formats/mpegts/ts-muxer.js';
import type { Track } from '../../src/media/track.js';
import { FFMPEG } from './media-tools.js';

export interface Av1TsPublisher {
  /** Temporal units sent so far. */
  sent(): number;
  stderr(): string;
  stop(): Promise<void>;
}

/** Publishes `size` AV1 at 25 fps to `url` (a feed's publish URL) until stopped. */
export function publishAv1Ts(url: string, size = '320x240'): Av1TsPublisher {
  const ffmpeg = spawn(
    FFMPEG,
    [
      ...['-hide_banner', '-loglevel', 'error', '-nostdin', '-re'],
      ...['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`],
      ...['-c:v', 'libaom-av1', '-usage', 'realtime', '-cpu-used', '8', '-lag-in-frames', '0', '-g', '25', '-b:v', '300k'],
      ...['-f', 'obu', 'pipe:1'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  ffmpeg.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const post = request(url, { method: 'POST', headers: { 'Content-Type': 'video/mp2t' } });
  post.on('error', () => undefined);
  post.on('response', (res) => res.resume());

  let pending = Buffer.alloc(0);
  let unit: Obu[] | undefined;
  let muxer: TsMuxer | undefined;
  let count = 0;
  const send = (obus: Obu[]): void => {
    if (muxer === undefined) {
      const sequence = obus.find((o) => o.type === ObuType.sequenceHeader);
      if (sequence === undefined) return; // wait for the first key frame's sequence header
      const info = parseSequenceHeader(sequence.payload);
      const track: Track = {
        id: 0,
        kind: 'video',
        codec: 'av1',
        config: buildAv1c(sequence),
        width: info.width,
        height: info.height,
      };
      muxer = new TsMuxer([track]);
      post.write(muxer.header());
    }
    const t = 9000 + count * 3600;
    post.write(muxer.mux({ trackId: 0, pts90k: t, dts90k: t, keyframe: isKeyTemporalUnit(obus), data: writeObus(obus) }));
    count++;
  };
  ffmpeg.stdout.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    let pos = 0;
    // Whole OBUs only (each has its size field); a temporal delimiter ends the unit before it.
    while (pos + 2 <= pending.length) {
      let got: { obu: Obu; length: number };
      try {
        got = readObu(pending, pos);
      } catch {
        break; // the rest of this OBU has not come yet
      }
      if (got.obu.type === ObuType.temporalDelimiter) {
        if (unit !== undefined && unit.length > 0) send(unit);
        unit = [];
      } else {
        unit?.push({ ...got.obu, payload: Buffer.from(got.obu.payload) });
      }
      pos += got.length;
    }
    pending = pending.subarray(pos);
  });
  const exited = new Promise<void>((resolve) => ffmpeg.on('exit', () => resolve()));
  return {
    sent: () => count,
    stderr: () => err,
    stop: async () => {
      if (ffmpeg.exitCode === null && ffmpeg.signalCode === null) {
        ffmpeg.kill('SIGTERM');
        await exited;
      }
      post.destroy();
    },
  };
}
