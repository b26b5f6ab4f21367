// Feedcast's relay stream (issue 20, per-hop delay): the end-of-PES mark in the last TS packet of each PES.
// Checked: its bytes; the muxer puts it on exactly the last packet of every PES whatever its size; our demuxer
// completes an unbounded PES (over 64 KiB) on it instead of waiting for the next PES; ffprobe/ffmpeg read the
// marked stream as they read the plain one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { encodeRelayMark, parseRelayMark, RELAY_MARK_BYTES, type RelayMark } from './relay-mark.js';
import { TsDemuxer, type TsDemuxerOptions } from './ts-demuxer.js';
import { TsMuxer } from './ts-muxer.js';
import { parseTsPacket } from './ts-packet.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const HAVE_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;
const SENT_AT = 1_765_000_000_123; // a time in 2025, in ms: needs more than 32 bits
const FEED_DTS = 2 ** 33 + 12_345; // a feed older than 26.5 h: more than a PES timestamp's 33 bits

function demux(data: Buffer, options: TsDemuxerOptions = {}): { tracks: Track[]; frames: Frame[]; warnings: string[] } {
  const out = { tracks: [] as Track[], frames: [] as Frame[], warnings: [] as string[] };
  const d = new TsDemuxer(
    { onTracks: (t) => (out.tracks = [...t]), onFrame: (f) => out.frames.push(f), onWarning: (w) => out.warnings.push(w) },
    options,
  );
  d.push(data);
  d.end();
  return out;
}

const h264Aac = demux(readFileSync(FIXTURES + 'h264-aac.ts'));
const [VIDEO] = h264Aac.tracks as [Track, Track];
const KEY = h264Aac.frames.find((f) => f.trackId === VIDEO.id && f.keyframe) as Frame;

/** The keyframe with a filler NAL (type 12) making its PES larger than PES_packet_length can say (64 KiB). */
function bigKeyframe(fillerBytes: number): Frame {
  const filler = Buffer.alloc(4 + 1 + fillerBytes, 0xff);
  filler.writeUInt32BE(1 + fillerBytes, 0);
  filler[4] = 0x0c; // nal_unit_type 12, filler data
  return { ...KEY, data: Buffer.concat([KEY.data, filler]) };
}

test('the mark: tag FCpe, a 48-bit time in ms and the 48-bit feed DTS', () => {
  const mark = encodeRelayMark(SENT_AT, FEED_DTS);
  assert.equal(mark.length, RELAY_MARK_BYTES);
  assert.deepEqual([...mark.subarray(0, 4)], [0x46, 0x43, 0x70, 0x65]); // 'FCpe'
  assert.equal(mark.readUIntBE(4, 6), SENT_AT); // sent_at_ms
  assert.equal(mark.readUIntBE(10, 6), FEED_DTS); // dts_90k
  assert.deepEqual(parseRelayMark(mark), { sentAtMs: SENT_AT, dts90k: FEED_DTS });
  // A node from before the DTS: tag and time only (a rolling upgrade).
  assert.deepEqual(parseRelayMark(mark.subarray(0, 10)), { sentAtMs: SENT_AT, dts90k: undefined });
  assert.equal(parseRelayMark(Buffer.from('FCpf\0\0\0\0\0\0')), undefined, 'another tag');
  assert.equal(parseRelayMark(mark.subarray(0, 9)), undefined, 'another length');
  assert.equal(parseRelayMark(mark.subarray(0, 15)), undefined, 'another length');
});

test('every PES, whatever its size, ends in a packet carrying the mark, and only there', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 70_000 }), fc.boolean(), (fillerBytes, key) => {
      const frame = { ...bigKeyframe(fillerBytes), keyframe: key };
      const out = new TsMuxer([VIDEO], { relayClock: () => SENT_AT }).mux(frame);
      assert.equal(out.length % 188, 0);
      const ours = [];
      for (let at = 0; at < out.length; at += 188) {
        const p = parseTsPacket(out, at);
        if (p.pid === 0x100) ours.push(p);
      }
      const marked = ours.map((p) => (p.privateData !== undefined ? parseRelayMark(p.privateData)?.sentAtMs : undefined));
      assert.equal(marked.at(-1), SENT_AT, 'the last packet of the PES is marked');
      assert.ok(
        marked.slice(0, -1).every((m) => m === undefined),
        'no other packet is',
      );
      assert.ok((ours.at(-1)?.payloadOffset ?? 188) < 188, 'the marked packet carries PES bytes');
    }),
    { numRuns: 60 },
  );
});

test('a PES over 64 KiB (PES_packet_length 0) is complete at its mark, not when the next PES starts', () => {
  const big = bigKeyframe(80_000);
  const marks: RelayMark[] = [];
  const marked = new TsMuxer([VIDEO], { relayClock: () => SENT_AT });
  const frames: Frame[] = [];
  const d = new TsDemuxer({ onTracks: () => undefined, onFrame: (f) => frames.push(f) }, { onRelayMark: (m) => marks.push(m) });
  d.push(Buffer.concat([marked.header(), marked.mux(big)]));
  assert.equal(frames.length, 1, 'the frame is out as soon as its last packet is in');
  assert.deepEqual(marks, [{ sentAtMs: SENT_AT, dts90k: big.dts90k }]);
  assert.equal(frames[0]?.dts90k, big.dts90k);

  // Without the mark (a plain /FEED.ts), the same PES waits for the next one, or the end of the input.
  const plain = new TsMuxer([VIDEO]);
  const waiting: Frame[] = [];
  const p = new TsDemuxer({ onTracks: () => undefined, onFrame: (f) => waiting.push(f) }, { onRelayMark: () => undefined });
  p.push(Buffer.concat([plain.header(), plain.mux(big)]));
  assert.equal(waiting.length, 0);
  p.end();
  assert.equal(waiting.length, 1);
  assert.deepEqual(waiting[0]?.data, frames[0]?.data, 'the same frame either way');
});

test('a demuxer not told about marks ignores them: the same frames as from the plain stream', () => {
  const marked = new TsMuxer(h264Aac.tracks, { relayClock: () => SENT_AT });
  const plain = new TsMuxer(h264Aac.tracks);
  const a = demux(Buffer.concat([marked.header(), ...h264Aac.frames.map((f) => marked.mux(f))]));
  const b = demux(Buffer.concat([plain.header(), ...h264Aac.frames.map((f) => plain.mux(f))]));
  assert.deepEqual(a.warnings, []);
  assert.deepEqual(a.frames, b.frames);
  const c = demux(Buffer.concat([marked.header(), ...h264Aac.frames.map((f) => marked.mux(f))]), {
    onRelayMark: () => undefined,
  });
  assert.deepEqual(c.frames, h264Aac.frames, 'and one that is, the frames put in');
});

test(
  'ffprobe and ffmpeg read the marked stream: every packet, decoded without a message',
  { skip: !HAVE_FFMPEG && 'no ffmpeg' },
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-relay-ts-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const m = new TsMuxer(h264Aac.tracks, { relayClock: () => SENT_AT });
    const frames = h264Aac.frames.map((f) => (f === KEY ? bigKeyframe(70_000) : f));
    const path = join(dir, 'relay.ts');
    writeFileSync(path, Buffer.concat([m.header(), ...frames.map((f) => m.mux(f))]));
    const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-'], { encoding: 'utf8' });
    assert.equal(decode.status, 0);
    assert.equal(decode.stderr, '', 'ffmpeg decodes without a message');
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_packets', '-of', 'json', path], { encoding: 'utf8' });
    const packets = (JSON.parse(probe.stdout) as { packets: { stream_index: number; size: string }[] }).packets;
    h264Aac.tracks.forEach((track, i) => {
      const count = packets.filter((p) => p.stream_index === i).length;
      assert.equal(count, frames.filter((f) => f.trackId === track.id).length, `packets of ${track.codec}`);
    });
  },
);

test('the mark carries the feed DTS past the 33 bits of the PES timestamp', () => {
  const late = { ...KEY, dts90k: FEED_DTS, pts90k: FEED_DTS + 3600 };
  const marked = new TsMuxer([VIDEO], { relayClock: () => SENT_AT });
  const marks: RelayMark[] = [];
  const frames: Frame[] = [];
  const d = new TsDemuxer({ onTracks: () => undefined, onFrame: (f) => frames.push(f) }, { onRelayMark: (m) => marks.push(m) });
  d.push(Buffer.concat([marked.header(), marked.mux(late)]));
  assert.equal(frames[0]?.dts90k, FEED_DTS % 2 ** 33, 'the PES timestamp wraps');
  assert.deepEqual(marks, [{ sentAtMs: SENT_AT, dts90k: FEED_DTS }], 'the mark does not');
});
