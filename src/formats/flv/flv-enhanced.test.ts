// FlvDemuxer on Enhanced RTMP input made from real encoded streams (libx265, libaom-av1,
// libvpx-vp9 through ffmpeg, configs from ffmpeg's own hvcC/av1C/vpcC): every frame comes back
// as encoded, with its track's config and picture size; Multitrack tracks become feed tracks;
// ModEx TimestampOffsetNano moves the frame time.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Frame } from '../../media/frame.js';
import type { Track } from '../../media/track.js';
import { encodeVideo, type EncodedStream } from '../../../test/helpers/encoded-streams.js';
import { enhancedAudioTags, enhancedVideoTags, flv, type TagSpec } from '../../../test/helpers/flv-bytes.js';
import { fixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { haveFfmpeg } from '../../../test/helpers/media-tools.js';
import { FlvDemuxer } from './flv-demuxer.js';

interface Output {
  tracks: readonly Track[];
  frames: Frame[];
  warnings: string[];
}

function demux(bytes: Buffer): Output {
  const out: Output = { tracks: [], frames: [], warnings: [] };
  const d = new FlvDemuxer({
    onTracks: (t) => (out.tracks = t),
    onFrame: (f) => out.frames.push(f),
    onWarning: (m) => out.warnings.push(m),
  });
  d.push(bytes);
  d.end();
  return out;
}

const byTime = (a: TagSpec, b: TagSpec): number => a.ms - b.ms;
const SKIP = haveFfmpeg() ? false : 'ffmpeg not installed';

describe('FlvDemuxer: Enhanced RTMP', { skip: SKIP }, () => {
  const streams: Record<string, EncodedStream> = SKIP
    ? {}
    : { h265: encodeVideo('h265', 30), av1: encodeVideo('av1', 30), vp9: encodeVideo('vp9', 30) };

  for (const codec of ['h265', 'av1', 'vp9']) {
    it(`${codec}: the track (config, size) and every frame come back as ffmpeg encoded them`, () => {
      const stream = streams[codec];
      assert.ok(stream);
      const out = demux(flv({ audio: false, video: true }, enhancedVideoTags(stream)));
      assert.deepStrictEqual(out.warnings, []);
      assert.deepStrictEqual(
        out.tracks.map((t) => [t.id, t.codec, t.width, t.height, t.config]),
        [[0, codec, 320, 240, stream.track.config]],
      );
      assert.equal(out.frames.length, stream.frames.length);
      assert.deepStrictEqual(out.frames, stream.frames);
    });
  }

  it('Multitrack: video tracks 0 and 1 and two AAC tracks in ManyTracks packets become four feed tracks', () => {
    const h265 = streams['h265'];
    const av1 = streams['av1'];
    assert.ok(h265 && av1);
    const aac = fixtureFrames('h264-aac.ts');
    const audioTrack = aac.tracks.find((t) => t.kind === 'audio');
    assert.ok(audioTrack);
    const audioFrames = aac.frames.filter((f) => f.trackId === audioTrack.id).slice(0, 40);
    const tags = [
      ...enhancedVideoTags(h265, { trackId: 0 }),
      ...enhancedVideoTags(av1, { trackId: 1 }),
      ...enhancedAudioTags({ track: audioTrack, frames: audioFrames }, [0, 1]),
    ].sort(byTime);
    const out = demux(flv({ audio: true, video: true }, tags));
    assert.deepStrictEqual(out.warnings, []);
    assert.deepStrictEqual(
      out.tracks.map((t) => [t.id, t.kind, t.codec]),
      [
        [0, 'video', 'h265'],
        [1, 'audio', 'aac'],
        [2, 'video', 'av1'],
        [3, 'audio', 'aac'],
      ],
    );
    const count = (id: number): number => out.frames.filter((f) => f.trackId === id).length;
    assert.deepStrictEqual([count(0), count(1), count(2), count(3)], [30, 40, 30, 40]);
    assert.deepStrictEqual(
      out.frames.filter((f) => f.trackId === 2).map((f) => f.data),
      av1.frames.map((f) => f.data),
    );
  });

  it('ModEx TimestampOffsetNano moves the frame time by its nanoseconds (500 µs = 45 ticks of 90 kHz)', () => {
    const stream = streams['vp9'];
    assert.ok(stream);
    const out = demux(flv({ audio: false, video: true }, enhancedVideoTags(stream, { timestampOffsetNs: 500_000 })));
    assert.deepStrictEqual(
      out.frames.map((f) => f.dts90k),
      stream.frames.map((f) => f.dts90k + 45),
    );
  });

  it('a VP9 sequence start waits for the key frame that gives the picture size', () => {
    const stream = streams['vp9'];
    assert.ok(stream);
    const tags = enhancedVideoTags(stream);
    // Drop the first key frame: nothing can be announced until the next one (frame 25).
    const out = demux(
      flv(
        { audio: false, video: true },
        tags.filter((_, i) => i !== 2),
      ),
    );
    assert.equal(out.frames[0]?.dts90k, stream.frames[25]?.dts90k);
    assert.equal(out.tracks[0]?.width, 320);
  });
});
