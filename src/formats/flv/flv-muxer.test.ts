// FlvMuxer: round trip of the fixtures through FlvDemuxer -> FlvMuxer, checked with ffprobe and
// ffmpeg, byte-for-byte against ffmpeg's own tags, and by demuxing the output again.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteReader } from '../bytes/byte-reader.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { FlvDemuxer } from './flv-demuxer.js';
import { FlvMuxer } from './flv-muxer.js';
import { parseFlvAudioTag, parseFlvTagHeader, parseFlvVideoTag } from './flv-tag.js';

const FIXTURES = new URL('../../../test/fixtures/', import.meta.url);
const H264_AAC = readFileSync(new URL('h264-aac.flv', FIXTURES));
const H264_MP3 = readFileSync(new URL('h264-mp3.flv', FIXTURES));
const HAVE_FFMPEG = spawnSync('ffprobe', ['-version']).status === 0;
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

interface Demuxed {
  trackLists: (readonly Track[])[];
  frames: Frame[];
  metadata: unknown;
  warnings: string[];
}

function demux(...chunks: Buffer[]): Demuxed {
  const out: Demuxed = { trackLists: [], frames: [], metadata: undefined, warnings: [] };
  const d = new FlvDemuxer({
    onTracks: (t) => out.trackLists.push(t),
    onFrame: (f) => out.frames.push(f),
    onWarning: (m) => out.warnings.push(m),
  });
  for (const c of chunks) d.push(c);
  d.end();
  out.metadata = d.metadata;
  return out;
}

/** Offsets of the tags of an FLV file (a minimal walker, independent of the demuxer). */
function tagOffsets(buf: Buffer, start = 13): number[] {
  const offsets: number[] = [];
  let pos = start;
  while (pos + 11 <= buf.length) {
    offsets.push(pos);
    pos += 11 + buf.readUIntBE(pos + 1, 3) + 4;
  }
  return offsets;
}

function muxAll(
  input: Buffer,
  options?: { metadata?: Record<string, string> },
): { muxer: FlvMuxer; header: Buffer; body: Buffer[]; source: Demuxed } {
  const source = demux(input);
  const muxer = new FlvMuxer(source.trackLists[0] ?? [], options);
  const header = muxer.header();
  return { muxer, header, body: source.frames.map((f) => muxer.mux(f)), source };
}

function probe(file: string): { streams: Record<string, unknown>[]; packets: Record<string, unknown>[] } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_streams', '-show_packets', '-of', 'json', file], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { streams: Record<string, unknown>[]; packets: Record<string, unknown>[] };
}

const packetView = (p: Record<string, unknown>): unknown[] => [p['stream_index'], p['pts'], p['dts'], p['size'], p['flags']];

describe('FlvMuxer', () => {
  describe('with ffprobe and ffmpeg', { skip: HAVE_FFMPEG ? false : 'ffmpeg not installed' }, () => {
    for (const [name, input, video, audio] of [
      ['h264-aac.flv', H264_AAC, 'h264 320x240', 'aac 44100 1'],
      ['h264-mp3.flv', H264_MP3, 'h264 176x144', 'mp3 22050 1'],
    ] as const) {
      it(`${name}: demux -> mux -> ffprobe sees the same streams and packets; ffmpeg decodes cleanly`, (t) => {
        const dir = mkdtempSync(join(tmpdir(), 'feedcast-flv-'));
        t.after(() => rmSync(dir, { recursive: true, force: true }));
        const file = join(dir, 'out.flv');
        const { header, body } = muxAll(input);
        writeFileSync(file, Buffer.concat([header, ...body]));

        const ours = probe(file);
        const theirs = probe(new URL(name, FIXTURES).pathname);
        const describe = (s: Record<string, unknown>): string =>
          s['codec_type'] === 'video'
            ? `${String(s['codec_name'])} ${String(s['width'])}x${String(s['height'])}`
            : `${String(s['codec_name'])} ${String(s['sample_rate'])} ${String(s['channels'])}`;
        assert.deepStrictEqual(ours.streams.map(describe), [video, audio]);
        assert.deepStrictEqual(ours.packets.map(packetView), theirs.packets.map(packetView));

        const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
        assert.equal(decode.status, 0);
        assert.equal(decode.stdout + decode.stderr, '');
      });
    }
  });

  it('writes the same frame tags as ffmpeg, byte for byte', () => {
    const { body } = muxAll(H264_AAC);
    // ffmpeg's file: onMetaData, AVC sequence header, AAC sequence header, frames, AVC end of sequence.
    const offsets = tagOffsets(H264_AAC);
    const framesStart = offsets[3]!;
    const eosStart = offsets.at(-1)!;
    assert.deepStrictEqual(Buffer.concat(body), H264_AAC.subarray(framesStart, eosStart));
    assert.deepStrictEqual(H264_AAC.subarray(eosStart + 11, eosStart + 16), hex('17 02 000000'));
  });

  it('demuxing its output gives back the same tracks, frames and metadata', () => {
    const { header, body, source } = muxAll(H264_AAC, { metadata: { title: 'Test card' } });
    const again = demux(header, ...body);
    assert.deepStrictEqual(again.warnings, []);
    assert.deepStrictEqual(again.trackLists, source.trackLists);
    assert.deepStrictEqual(again.frames, source.frames);
    assert.deepStrictEqual(
      { ...(again.metadata as object) },
      {
        duration: 0,
        width: 320,
        height: 240,
        videocodecid: 7,
        audiosamplerate: 44100,
        audiosamplesize: 16,
        stereo: false,
        audiocodecid: 10,
        encoder: 'Feedcast',
        title: 'Test card',
      },
    );
  });

  it('header(): FLV header, PreviousTagSize0, onMetaData, then the sequence headers at time 0', () => {
    const { header, source } = muxAll(H264_AAC);
    assert.deepStrictEqual(header.subarray(0, 13), hex('464C56 01 05 00000009 00000000'));
    const offsets = tagOffsets(header);
    const tags = offsets.map((o) => parseFlvTagHeader(new ByteReader(header, 'flv', o, o + 11)));
    assert.deepStrictEqual(
      tags.map((t) => [t.tagType, t.timestampMs]),
      [
        [18, 0],
        [9, 0],
        [8, 0],
      ],
    );
    const videoBody = new ByteReader(header, 'flv', offsets[1]! + 11, offsets[1]! + 11 + tags[1]!.dataSize);
    assert.deepStrictEqual(parseFlvVideoTag(videoBody).data, source.trackLists[0]?.[0]?.config);
    // Each tag is followed by its PreviousTagSize.
    offsets.forEach((o, i) => assert.equal(header.readUInt32BE(o + 11 + tags[i]!.dataSize), 11 + tags[i]!.dataSize));
  });

  it('leaves out tracks FLV cannot carry', () => {
    const tracks: Track[] = [
      { id: 0, kind: 'video', codec: 'mpeg2video', width: 320, height: 240 },
      { id: 1, kind: 'audio', codec: 'aac', config: hex('1210'), sampleRate: 44100, channels: 2 },
      { id: 2, kind: 'audio', codec: 'ac3', sampleRate: 48000, channels: 2 },
    ];
    assert.deepStrictEqual(
      tracks.map((t) => FlvMuxer.canCarry(t)),
      [false, true, false],
    );
    for (const codec of ['h265', 'av1', 'vp9'] as const) assert.ok(FlvMuxer.canCarry({ id: 0, kind: 'video', codec }));
    assert.ok(FlvMuxer.canCarry({ id: 0, kind: 'audio', codec: 'opus' }));
    assert.ok(FlvMuxer.canCarry({ id: 0, kind: 'audio', codec: 'mp3' }));
    assert.ok(!FlvMuxer.canCarry({ id: 0, kind: 'audio', codec: 'mp2' }));
    const muxer = new FlvMuxer(tracks);
    assert.equal(muxer.contentType, 'video/x-flv');
    const header = muxer.header();
    assert.equal(header[4], 0x04, 'audio flag only');
    const out = demux(header);
    assert.deepStrictEqual(out.trackLists, [[tracks[1]]]);
    const frame = (trackId: number): Frame => ({ trackId, dts90k: 0, pts90k: 0, keyframe: true, data: hex('0102') });
    assert.equal(muxer.mux(frame(0)).length, 0);
    assert.equal(muxer.mux(frame(2)).length, 0);
    assert.equal(muxer.mux(frame(1)).length, 11 + 2 + 2 + 4);
  });

  it('writes 32-bit timestamps with TimestampExtended and rounds the composition time', () => {
    const track: Track = { id: 7, kind: 'video', codec: 'h264' };
    const muxer = new FlvMuxer([track]);
    const dtsMs = 2 ** 32 + 0x010203; // past the wrap
    const tag = muxer.mux({
      trackId: 7,
      dts90k: dtsMs * 90,
      pts90k: dtsMs * 90 + 3003,
      keyframe: false,
      data: hex('00000001 41'),
    });
    assert.deepStrictEqual(
      tag,
      hex(
        '09 00000A 010203 00 000000' + // video, DataSize 10, Timestamp 0x010203, ext 0 (wrapped), StreamID
          '27 01 000021' + // inter|AVC, NALU, CompositionTime 33 ms (3003 / 90 = 33.4)
          '00000001 41' + // payload
          '00000015', // PreviousTagSize 21
      ),
    );
    assert.deepStrictEqual(
      muxer.header().subarray(0, 13),
      hex('464C56 01 01 00000009 00000000'),
      'no sequence header without avcC',
    );
  });

  it('updateTracks(): sequence headers at the last timestamp when a config changed, else undefined', () => {
    const { muxer, header, body, source } = muxAll(H264_AAC);
    const tracks = source.trackLists[0] ?? [];
    assert.equal(muxer.updateTracks(tracks), undefined);
    const [video, audio] = tracks;
    assert.ok(video?.config && audio);
    const newAvcc = Buffer.from(video.config);
    newAvcc[newAvcc.length - 1] = (newAvcc[newAvcc.length - 1] ?? 0) ^ 1;
    const newAudio: Track = { ...audio, config: hex('1190'), sampleRate: 48000, channels: 2 };
    const update = muxer.updateTracks([{ ...video, config: newAvcc }, newAudio]);
    assert.ok(update);
    const offsets = tagOffsets(update, 0);
    assert.equal(offsets.length, 2);
    const lastMs = Math.round((source.frames.at(-1)?.dts90k ?? 0) / 90);
    const headers = offsets.map((o) => parseFlvTagHeader(new ByteReader(update, 'flv', o, o + 11)));
    assert.deepStrictEqual(
      headers.map((h) => [h.tagType, h.timestampMs]),
      [
        [9, lastMs],
        [8, lastMs],
      ],
    );
    const audioBody = new ByteReader(update, 'flv', offsets[1]! + 11, offsets[1]! + 11 + headers[1]!.dataSize);
    assert.deepStrictEqual(parseFlvAudioTag(audioBody).data, hex('1190'));
    // An in-line reader switches: it reports the new configs.
    const reader = demux(header, ...body, update);
    assert.equal(reader.trackLists.length, 3);
    assert.deepStrictEqual(
      reader.trackLists.at(-1)?.map((t) => t.config),
      [newAvcc, hex('1190')],
    );
    // The new configs are in force for new readers too.
    assert.equal(muxer.updateTracks([{ ...video, config: newAvcc }, newAudio]), undefined);
    assert.deepStrictEqual(
      demux(muxer.header()).trackLists[0]?.map((t) => t.config),
      [newAvcc, hex('1190')],
    );
  });
});
