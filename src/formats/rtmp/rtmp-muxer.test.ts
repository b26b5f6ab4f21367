// RtmpMuxer: frames -> RTMP chunks -> ChunkStreamReader -> FlvTagDemuxer gives the same frames back
// (H.264 + AAC from the FLV fixture, H.265 + AAC as Enhanced RTMP 'hvc1' from the TS fixture);
// the header is onMetaData + sequence headers; the chunk size holds; readers get identical bytes.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Demuxer, DemuxerSink } from '../../media/demuxer.js';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { FlvDemuxer } from '../flv/flv-demuxer.js';
import { FlvTagDemuxer } from '../flv/flv-tag-demuxer.js';
import { FlvTagType } from '../flv/flv-tag.js';
import { TsDemuxer } from '../mpegts/ts-demuxer.js';
import { ChunkStreamReader } from './chunk-reader.js';
import { encodeRtmpMessage, rtmpMessageSize } from './chunk-writer.js';
import { RtmpType, parseDataMessage, setChunkSizeMessage, type RtmpMessage } from './messages.js';
import { RtmpMuxer } from './rtmp-muxer.js';

const FIXTURES = new URL('../../../test/fixtures/', import.meta.url);

function demuxFixture(name: string, make: (sink: DemuxerSink) => Demuxer): { tracks: readonly Track[]; frames: Frame[] } {
  let tracks: readonly Track[] = [];
  const frames: Frame[] = [];
  const d = make({ onTracks: (t) => (tracks = t), onFrame: (f) => frames.push(f) });
  d.push(readFileSync(new URL(name, FIXTURES)));
  d.end();
  return { tracks, frames };
}

function readMessages(bytes: Buffer, chunkSize: number): RtmpMessage[] {
  const out: RtmpMessage[] = [];
  const reader = new ChunkStreamReader((m) => out.push(m));
  reader.push(encodeRtmpMessage(setChunkSizeMessage(chunkSize), 128));
  reader.push(bytes);
  return out.slice(1);
}

function toFrames(messages: readonly RtmpMessage[]): { tracks: readonly Track[]; frames: Frame[] } {
  let tracks: readonly Track[] = [];
  const frames: Frame[] = [];
  const d = new FlvTagDemuxer({ onTracks: (t) => (tracks = t), onFrame: (f) => frames.push(f) });
  for (const m of messages) {
    const type =
      m.typeId === RtmpType.video ? FlvTagType.video : m.typeId === RtmpType.audio ? FlvTagType.audio : FlvTagType.script;
    d.pushTag(type, m.timestampMs, m.payload);
  }
  d.end();
  return { tracks, frames };
}

const sameFrames = (a: readonly Frame[], b: readonly Frame[]): void => {
  assert.equal(a.length, b.length, 'frame count');
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as Frame;
    const y = b[i] as Frame;
    assert.deepEqual(
      [x.trackId, Math.round(x.dts90k / 90), Math.round(x.pts90k / 90), x.keyframe, x.data.equals(y.data)],
      [y.trackId, Math.round(y.dts90k / 90), Math.round(y.pts90k / 90), y.keyframe, true],
      `frame ${i}`,
    );
  }
};

describe('RtmpMuxer', () => {
  for (const chunkSize of [128, 4096]) {
    it(`H.264 + AAC at chunk size ${chunkSize}: header, frames and back`, () => {
      const src = demuxFixture('h264-aac.flv', (s) => new FlvDemuxer(s));
      const muxer = new RtmpMuxer(src.tracks, { chunkSize, streamId: 1 });
      const parts = [muxer.header(), ...src.frames.map((f) => muxer.mux(f))];
      const bytes = Buffer.concat(parts);
      const messages = readMessages(bytes, chunkSize);
      // onMetaData at time 0, then the video and audio sequence headers.
      const [meta, videoSeq, audioSeq] = messages;
      assert.equal(meta?.typeId, RtmpType.dataAmf0);
      assert.equal(meta?.timestampMs, 0);
      assert.equal(parseDataMessage(meta.payload, meta.typeId).name, 'onMetaData');
      assert.deepEqual([videoSeq?.typeId, videoSeq?.payload[0], videoSeq?.payload[1]], [RtmpType.video, 0x17, 0]);
      assert.deepEqual([audioSeq?.typeId, audioSeq?.payload[0], audioSeq?.payload[1]], [RtmpType.audio, 0xaf, 0]);
      for (const m of messages) assert.equal(m.streamId, 1);
      const back = toFrames(messages);
      assert.deepEqual(
        back.tracks.map((t) => [t.codec, t.config?.toString('hex')]),
        src.tracks.map((t) => [t.codec, t.config?.toString('hex')]),
      );
      sameFrames(back.frames, src.frames);
      // Chunked at exactly this size (a reader at another size could not have followed it anyway).
      let size = 0;
      for (const m of messages) size += rtmpMessageSize(m.csid, m.timestampMs, m.payload.length, chunkSize);
      assert.equal(bytes.length, size);
    });
  }

  it('H.265 + AAC go out as Enhanced RTMP (hvc1) and come back as H.265', () => {
    const src = demuxFixture('h265-aac.ts', (s) => new TsDemuxer(s));
    assert.ok(src.tracks.some((t) => t.codec === 'h265'));
    const muxer = new RtmpMuxer(src.tracks, { chunkSize: 4096, streamId: 1 });
    const messages = readMessages(Buffer.concat([muxer.header(), ...src.frames.map((f) => muxer.mux(f))]), 4096);
    const videoSeq = messages.find((m) => m.typeId === RtmpType.video);
    assert.equal(videoSeq?.payload.subarray(1, 5).toString('latin1'), 'hvc1');
    const back = toFrames(messages);
    const video = back.tracks.find((t) => t.kind === 'video');
    assert.equal(video?.codec, 'h265');
    assert.deepEqual(video?.config, src.tracks.find((t) => t.kind === 'video')?.config);
    assert.equal(
      back.frames.filter((f) => f.trackId === video?.id).length,
      src.frames.filter((f) => f.trackId === src.tracks.find((t) => t.kind === 'video')?.id).length,
    );
  });

  it('every reader gets the same header; it carries the newest keyframe time', () => {
    const src = demuxFixture('h264-aac.flv', (s) => new FlvDemuxer(s));
    const muxer = new RtmpMuxer(src.tracks, { chunkSize: 4096, streamId: 1 });
    for (const f of src.frames) muxer.mux(f);
    const a = muxer.header();
    assert.deepEqual(muxer.header(), a);
    const lastKey = [...src.frames].reverse().find((f) => f.keyframe && f.trackId === 0);
    const seq = readMessages(a, 4096).filter((m) => m.typeId === RtmpType.video);
    assert.equal(seq[0]?.timestampMs, Math.round((lastKey?.dts90k ?? -1) / 90));
  });
});
