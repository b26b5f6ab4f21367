// Issue 24, item 10: LL-HLS kept parts listed 6-8 s from the end, which strict parsers reject.
// Every playlist form (media, LL-HLS with parts, delta update, blocking reload, multivariant) is
// parsed by hls-parser in strict mode, at every step of a live run.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as HLS from 'hls-parser';
import { fixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { strictParse } from '../../../test/helpers/hls-strict.js';
import { Feed } from '../../feed/feed.js';
import { shiftFrame } from '../../media/frame.js';
import { silentLogger } from '../../observability/logger.js';
import { hlsFileUris, playlistSourceOf } from './from-feed.js';
import { renderMultivariantPlaylist, renderPlaylist, type RenditionReport } from './playlist.js';
import { DEFAULT_SEGMENTER_OPTIONS, Segmenter } from './segmenter.js';

const fixture = fixtureFrames('h264-aac.ts');

describe('every playlist form passes a strict parser (issue 24, item 10)', () => {
  for (const [container, segmentTargetMs] of [
    ['fmp4', 2000],
    ['fmp4', 1000],
    ['ts', 2000],
  ] as const) {
    test(`${container} segments of ${segmentTargetMs} ms: media, LL-HLS (a blocking reload's answer is the same text), delta update, at every frame`, () => {
      const feed = new Feed('f.ffm', 'f', { publisherTimeoutMs: 10_000, publisherGraceMs: 10_000 }, silentLogger);
      const seg = new Segmenter(
        feed,
        { ...DEFAULT_SEGMENTER_OPTIONS, container, segmentTargetMs, partTargetMs: 500 },
        silentLogger,
      );
      seg.start();
      const uris = hlsFileUris(seg.sid, container, '');
      const reports: RenditionReport[] = [{ uri: 'low/index.m3u8', lastMsn: 3, lastPart: 1 }];
      let checked = 0;
      let maxPartSegments = 0;
      let failure: Error | undefined;
      // The feed's emitter logs a listener's exception and goes on: keep the first one.
      feed.on('frame', () => {
        if (seg.completeSegments === 0 || failure !== undefined) return;
        try {
          check();
        } catch (err) {
          failure = err instanceof Error ? err : new Error(String(err));
        }
      });
      const check = (): void => {
        const src = playlistSourceOf(seg);
        strictParse(renderPlaylist(src, uris, { lowLatency: false, skip: false }), 'media playlist');
        if (container === 'fmp4') {
          const ll = strictParse(
            renderPlaylist(src, uris, { lowLatency: true, skip: false, renditionReports: reports }),
            'LL-HLS',
          );
          if (!(ll instanceof HLS.types.MediaPlaylist)) throw new Error('LL-HLS: not a media playlist');
          const withParts = ll.segments.filter((s) => s.parts.length > 0);
          maxPartSegments = Math.max(maxPartSegments, withParts.length);
          // No part starts more than three target durations from the end (RFC 8216bis 4.4.4.9).
          let fromEnd = 0;
          for (let i = ll.segments.length - 1; i >= 0; i--) {
            const s = ll.segments[i];
            if (s === undefined) continue;
            for (let p = s.parts.length - 1; p >= 0; p--) {
              fromEnd += s.parts[p]?.duration ?? 0;
              assert.ok(
                fromEnd <= 3 * seg.targetDurationS + 1e-6,
                `part ${p} of ${s.mediaSequenceNumber} starts ${fromEnd} s from the end`,
              );
            }
            if (s.parts.length === 0) fromEnd += s.duration;
          }
          strictParse(renderPlaylist(src, uris, { lowLatency: true, skip: true, renditionReports: reports }), 'delta update');
        }
        checked++;
      };
      const session = feed.attachPublisher({ protocol: 'test', remoteAddress: '127.0.0.1', startedAt: new Date() });
      session.setTracks(fixture.tracks);
      const first = Math.min(...fixture.frames.map((f) => f.dts90k));
      for (let i = 0; i < 12; i++) {
        for (const f of fixture.frames) {
          const shifted = shiftFrame(f, i * 180_000);
          session.write(shifted, (shifted.dts90k - first) / 90);
        }
      }
      if (failure !== undefined) throw failure;
      assert.ok(checked > 500, `${checked} states checked`);
      if (container === 'fmp4') assert.ok(maxPartSegments >= 2, 'parts are listed for the live edge');
      session.end('over');
      seg.dispose();
    });
  }

  test('multivariant playlist of a ladder', () => {
    const text = renderMultivariantPlaylist([
      {
        uri: 'high/index.m3u8',
        bandwidthBps: 2_500_000,
        averageBandwidthBps: 2_000_000,
        width: 1280,
        height: 720,
        frameRate: 25,
        codecs: 'avc1.64001f,mp4a.40.2',
      },
      {
        uri: 'low/index.m3u8',
        bandwidthBps: 600_000,
        averageBandwidthBps: undefined,
        width: 640,
        height: 360,
        frameRate: 25,
        codecs: 'avc1.42c01e,mp4a.40.2',
      },
    ]);
    const parsed = strictParse(text, 'multivariant');
    assert.equal(parsed.isMasterPlaylist, true);
  });
});
