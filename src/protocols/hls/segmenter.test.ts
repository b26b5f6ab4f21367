// The segmenter and playlists against RFC 8216bis rules: part durations within PART-TARGET,
// segments starting on keyframes, preload hints, blocking reload (and its 503 timeout), delta
// updates, discontinuities on reconnect; delivery-directive and file-name parsers fuzzed.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { fixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { Feed } from '../../feed/feed.js';
import { shiftFrame } from '../../media/frame.js';
import { silentLogger } from '../../observability/logger.js';
import { hasReached, hlsFileUris, parseDeliveryDirectives, parseHlsFile, playlistSourceOf, servePlaylist } from './from-feed.js';
import { renderPlaylist, skippableSegments, type PlaylistSource } from './playlist.js';
import { DEFAULT_SEGMENTER_OPTIONS, RenditionTimeline, Segmenter, type HlsSegment } from './segmenter.js';

const fixture = fixtureFrames('h264-aac.ts');

function newFeed(): Feed {
  return new Feed('f.ffm', 'f', { publisherTimeoutMs: 10_000, publisherGraceMs: 10_000 }, silentLogger);
}

/** Publishes the 2 s fixture `loops` times in a row (each loop shifted by 2 s). */
function publishFixture(feed: Feed, loops: number, startMs = 0): () => void {
  const session = feed.attachPublisher({ protocol: 'test', remoteAddress: '127.0.0.1', startedAt: new Date() });
  session.setTracks(fixture.tracks);
  const first = Math.min(...fixture.frames.map((f) => f.dts90k));
  for (let i = 0; i < loops; i++) {
    for (const f of fixture.frames) {
      const shifted = shiftFrame(f, i * 180_000);
      session.write(shifted, startMs + (shifted.dts90k - first) / 90);
    }
  }
  return () => session.end('test over');
}

function segmenterOn(feed: Feed, options: Partial<typeof DEFAULT_SEGMENTER_OPTIONS> = {}): Segmenter {
  const s = new Segmenter(
    feed,
    { ...DEFAULT_SEGMENTER_OPTIONS, segmentTargetMs: 1000, partTargetMs: 500, ...options },
    silentLogger,
  );
  s.start();
  return s;
}

describe('HLS segmenter and playlist rules', () => {
  test('HLSDVRWindow (issue 21, part 3): the window keeps segments by duration beyond HLSWindow, parts only at the live edge', () => {
    const feed = newFeed();
    const plain = segmenterOn(feed, { windowSegments: 3 });
    const dvr = segmenterOn(feed, { windowSegments: 3, dvrWindowMs: 12_000 });
    publishFixture(feed, 12); // 24 s of media, 1 s segments
    const seconds = (s: Segmenter): number =>
      s.segments.filter((x) => x.complete).reduce((n, x) => n + x.duration90k, 0) / 90_000;
    assert.equal(plain.completeSegments, 3);
    assert.ok(seconds(dvr) >= 12 && seconds(dvr) < 14, `the DVR window holds ${seconds(dvr)} s`);
    const text = renderPlaylist(playlistSourceOf(dvr), hlsFileUris(dvr.sid, 'fmp4', ''), { lowLatency: true, skip: false });
    const withParts = text.split('#EXTINF').filter((chunk) => chunk.includes('#EXT-X-PART:')).length;
    assert.ok(withParts <= 3, `${withParts} segments list parts`);
    assert.ok((text.match(/#EXTINF/g) ?? []).length >= 12);
  });

  test('parts never exceed PART-TARGET, are at least 85 % of it except a segment’s last, and segments start on keyframes', () => {
    const feed = newFeed();
    const seg = segmenterOn(feed);
    publishFixture(feed, 3);
    const complete = seg.segments.filter((s) => s.complete);
    assert.ok(complete.length >= 4, `${complete.length} complete segments`);
    for (const s of seg.segments) {
      s.parts.forEach((p, i) => {
        assert.ok(p.duration90k <= 45_000, `segment ${s.msn} part ${i}: ${p.duration90k / 90} ms`);
        if (i < s.parts.length - 1 && !p.independent)
          assert.ok(p.duration90k >= 0.85 * 45_000, `part ${i} is ${p.duration90k / 90} ms`);
      });
      assert.equal(s.parts[0]?.independent, true, `segment ${s.msn} starts on a keyframe`);
      assert.equal(
        s.parts.reduce((n, p) => n + p.duration90k, 0),
        s.duration90k,
      );
    }
    const text = renderPlaylist(playlistSourceOf(seg), hlsFileUris(seg.sid, 'fmp4', ''), { lowLatency: true, skip: false });
    const target = Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(text)?.[1]);
    for (const m of text.matchAll(/#EXTINF:([\d.]+),/g)) assert.ok(Math.round(Number(m[1])) <= target);
    for (const m of text.matchAll(/#EXT-X-PART:DURATION=([\d.]+)/g)) assert.ok(Number(m[1]) <= 0.5);
    // The preload hint names the next part of the open segment.
    const open = seg.openSegment;
    assert.ok(open !== undefined);
    assert.match(text, new RegExp(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${seg.sid}-${open.msn}\\.${open.parts.length}\\.m4s"\\n$`));
    assert.match(text, /#EXT-X-PART-INF:PART-TARGET=0\.500/);
    assert.match(text, /PART-HOLD-BACK=1\.500/);
    // Without LL: no part, no hint, and the open segment is not listed.
    const plain = renderPlaylist(playlistSourceOf(seg), hlsFileUris(seg.sid, 'fmp4', ''), { lowLatency: false, skip: false });
    assert.doesNotMatch(plain, /EXT-X-PART|PRELOAD-HINT|SERVER-CONTROL/);
    assert.equal((plain.match(/#EXTINF/g) ?? []).length, complete.length);
    seg.dispose();
  });

  test('blocking reload: waits for msn/part, answers at once when already there, 503 after three target durations', async (t) => {
    const feed = newFeed();
    const seg = segmenterOn(feed);
    const stop = publishFixture(feed, 1);
    const last = seg.segments[seg.segments.length - 1]!;
    assert.equal(hasReached(seg, last.msn, 0), true);
    assert.equal(hasReached(seg, last.msn + 1, undefined), false);
    assert.equal(await seg.waitUntil(() => hasReached(seg, last.msn + 1, 0), 30), false, 'times out when nothing comes');
    const waiting = seg.waitUntil(() => hasReached(seg, last.msn + 1, 0), 5000);
    stop();
    publishFixture(feed, 1, 5000);
    assert.equal(await waiting, true, 'released once the next segment has a part');

    // Over HTTP: a request for a segment that never comes gets 503 after 3 x TARGETDURATION.
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      void servePlaylist(
        req,
        res,
        url,
        {
          segmenter: seg,
          uris: hlsFileUris(seg.sid, 'fmp4', ''),
          lowLatency: true,
          firstSegmentTimeoutMs: 100,
          whyEmpty: () => ({ status: 404, message: 'none' }),
        },
        { bytesOut: 0, state: '', counters: {} } as never,
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const next = seg.segments[seg.segments.length - 1]!.msn + 1;
    const started = Date.now();
    const res = await fetch(`${base}?_HLS_msn=${next}&_HLS_part=0`);
    assert.equal(res.status, 503);
    assert.ok(Date.now() - started >= 3 * seg.targetDurationS * 1000 - 50, 'held for three target durations');
    assert.equal((await fetch(`${base}?_HLS_msn=${next + 3}`)).status, 400, 'more than two segments ahead');
    const now = await fetch(`${base}?_HLS_msn=${next - 1}&_HLS_part=0`);
    assert.equal(now.status, 200);
    assert.equal(now.headers.get('cache-control'), 'public, max-age=6');
    seg.dispose();
  });

  test('a reconnecting publisher gets EXT-X-DISCONTINUITY; new tracks get a new EXT-X-MAP', () => {
    const feed = newFeed();
    const seg = segmenterOn(feed);
    publishFixture(feed, 2)();
    const before = seg.segments.length;
    publishFixture(feed, 2, 10_000);
    const after = seg.segments.slice(before);
    assert.equal(after[0]?.discontinuity, true);
    assert.equal(seg.segments.filter((s) => s.discontinuity).length, 1, 'one discontinuity per reconnect');
    const text = renderPlaylist(playlistSourceOf(seg), hlsFileUris(seg.sid, 'fmp4', ''), { lowLatency: true, skip: false });
    assert.equal((text.match(/#EXT-X-DISCONTINUITY\n/g) ?? []).length, 1);
    assert.equal((text.match(/#EXT-X-MAP/g) ?? []).length, 1, 'same tracks: same init section');
    // PDT never goes back across the reconnect.
    const pdts = [...text.matchAll(/#EXT-X-PROGRAM-DATE-TIME:(.+)/g)].map((m) => Date.parse(m[1]!));
    for (let i = 1; i < pdts.length; i++) assert.ok(pdts[i]! >= pdts[i - 1]!);
    seg.dispose();
  });

  test('delta update: EXT-X-SKIP replaces the segments older than CAN-SKIP-UNTIL (6 target durations)', () => {
    const segments: HlsSegment[] = Array.from({ length: 10 }, (_, i) => ({
      msn: 20 + i,
      parts: [{ index: 0, data: Buffer.alloc(1), duration90k: 90_000, independent: true }],
      duration90k: 90_000,
      startDts90k: i * 90_000,
      programDateMs: 1_700_000_000_000 + i * 1000,
      discontinuity: false,
      initVersion: 1,
      complete: true,
      spans: new Map(),
      bytes: 1,
      evicted: false,
    }));
    const src: PlaylistSource = {
      container: 'fmp4',
      segments,
      mediaSequence: 20,
      discontinuitySequence: 0,
      targetDurationS: 1,
      partTargetS: 0.5,
      ended: false,
    };
    assert.equal(skippableSegments(src), 4);
    const uris = hlsFileUris('abcd', 'fmp4', '');
    const delta = renderPlaylist(src, uris, { lowLatency: true, skip: true });
    assert.match(delta, /#EXT-X-VERSION:9\n/);
    assert.match(delta, /#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n#EXT-X-MAP:URI="abcd-init1\.mp4"\n/);
    assert.match(delta, /#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6\.0,/);
    assert.doesNotMatch(delta, /abcd-2[0-3]\.m4s/);
    assert.match(delta, /abcd-24\.m4s/);
    const full = renderPlaylist(src, uris, { lowLatency: true, skip: false });
    assert.doesNotMatch(full, /EXT-X-SKIP/);
    // Parts are listed only for the last three target durations.
    assert.equal((full.match(/#EXT-X-PART:/g) ?? []).length, 3);
  });

  test('delivery directives and file names: parsed or refused, never thrown (fast-check)', () => {
    assert.deepEqual(parseDeliveryDirectives(new URL('http://x/i.m3u8?_HLS_msn=5&_HLS_part=2&_HLS_skip=YES')), {
      msn: 5,
      part: 2,
      skip: true,
    });
    assert.ok('error' in parseDeliveryDirectives(new URL('http://x/i.m3u8?_HLS_part=2')));
    assert.deepEqual(parseHlsFile('abcd12-7.3.m4s', 'fmp4'), { kind: 'part', sid: 'abcd12', msn: 7, part: 3 });
    assert.deepEqual(parseHlsFile('abcd12-init2.mp4', 'fmp4'), { kind: 'init', sid: 'abcd12', version: 2 });
    assert.deepEqual(parseHlsFile('abcd12-9.ts', 'ts'), { kind: 'segment', sid: 'abcd12', msn: 9 });
    assert.equal(parseHlsFile('abcd12-9.ts', 'fmp4'), undefined);
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), (name, msn, part) => {
        parseHlsFile(name, 'fmp4');
        parseHlsFile(name, 'ts');
        const url = new URL('http://x/i.m3u8');
        url.searchParams.set('_HLS_msn', msn);
        url.searchParams.set('_HLS_part', part);
        const r = parseDeliveryDirectives(url);
        if (!('error' in r)) assert.ok(Number.isSafeInteger(r.msn) && Number.isSafeInteger(r.part));
      }),
      { numRuns: 300 },
    );
  });
});

// Issue 24, item 11: the first HLS viewer after the idle timeout got a one-segment playlist (the
// segmenter started from the GOP cache) and VLC rebuffered twice.
test('a segmenter started on a running feed lists its recent seconds at once, from a keyframe', () => {
  const feed = newFeed();
  const stop = publishFixture(feed, 6);
  const seg = segmenterOn(feed, { segmentTargetMs: 2000 });
  const complete = seg.segments.filter((s) => s.complete);
  const listed90k = complete.reduce((n, s) => n + s.duration90k, 0);
  assert.ok(complete.length >= 2, `${complete.length} complete segments at the first request`);
  assert.ok(listed90k >= 3 * seg.targetDurationS * 90_000 - 90_000, `${listed90k / 90_000} s listed`);
  assert.equal(seg.segments[0]?.parts[0]?.independent, true, 'the first segment starts on a keyframe');
  const dates = seg.segments.map((s) => s.programDateMs);
  for (let i = 1; i < dates.length; i++) assert.ok((dates[i] ?? 0) > (dates[i - 1] ?? 0), 'dates move forward');
  stop();
  seg.dispose();
});

// Issue 22: a simulcast publisher's layers are encoded apart. Asked for a keyframe of every layer at
// once, each layer's arrives at its own pace; a layer switched on late starts with a keyframe of its
// own, and a WHEP viewer's switch asks one layer for an extra one. The layers' segments must still
// line up (same MSN for the same picture, RFC 8216bis 6.2.4), on one timeline (SharedClockOrigin).
test('simulcast layers: segments line up across layers despite jitter, a late layer and an extra keyframe', () => {
  const video = fixture.frames.filter((f) => f.trackId === 0);
  const timeline = new RenditionTimeline(250 * 90);
  const origin = {};
  const layers = ['h', 'm', 'l'].map((rid) => {
    const feed = new Feed(`cam~${rid}`, `cam~${rid}`, { publisherTimeoutMs: 10_000, publisherGraceMs: 10_000 }, silentLogger);
    const seg = new Segmenter(feed, { ...DEFAULT_SEGMENTER_OPTIONS, segmentTargetMs: 2000, partTargetMs: 500 }, silentLogger, {
      timeline,
    });
    seg.start();
    const session = feed.attachPublisher({ protocol: 'webrtc', remoteAddress: '127.0.0.1', startedAt: new Date() }, 0, origin);
    session.setTracks(fixture.tracks.filter((t) => t.id === 0));
    return { rid, seg, session };
  });
  // 20 s at 25 fps. Every 2 s the publisher is asked for keyframes: h sends its on that frame, m one
  // frame later, l two. l is switched on at 3.1 s (a keyframe of its own); m gets an extra one at 9.3 s;
  // m is paused from 11 s and resumes at 14.5 s with a keyframe of its own.
  const paused = (n: number): boolean => n >= 275 && n < 362;
  const keyAt = (rid: string, n: number): boolean => {
    const lag = rid === 'h' ? 0 : rid === 'm' ? 1 : 2;
    return ((n - lag) % 50 === 0 && n >= lag) || (rid === 'l' && n === 78) || (rid === 'm' && (n === 233 || n === 362));
  };
  for (let n = 0; n < 500; n++) {
    for (const { rid, session } of layers) {
      if ((rid === 'l' && n < 78) || (rid === 'm' && paused(n))) continue;
      const data = (video[n % video.length] as { data: Buffer }).data;
      // Each layer's RTP arrival jitters by up to 8 ms; times are the publisher's shared origin.
      const t90k = 3000 + n * 3600 + (rid === 'h' ? 0 : rid === 'm' ? 500 : 700);
      session.write({ trackId: 0, dts90k: t90k, pts90k: t90k, keyframe: keyAt(rid, n), data }, t90k / 90);
    }
  }
  const byMsn = layers.map(({ seg }) => new Map(seg.segments.filter((x) => x.complete).map((x) => [x.msn, x.startDts90k])));
  const [h, m, l] = byMsn as [Map<number, number>, Map<number, number>, Map<number, number>];
  assert.ok(h.size >= 8, `layer h has ${h.size} complete segments`);
  // Every layer, the resumed one too, cuts only where the others do (within the tolerance).
  const hStarts = [...h.values()];
  for (const [name, other] of [
    ['m', m],
    ['l', l],
  ] as const) {
    for (const start of other.values()) {
      assert.ok(
        hStarts.some((hs) => Math.abs(hs - start) <= 250 * 90),
        `${name} cut at ${start / 90} ms, where h did not`,
      );
    }
  }
  const mAfterPause = [...m.values()].filter((start) => start > 3000 + 362 * 3600);
  assert.ok(mAfterPause.length >= 1, 'm cuts again after its pause');
  for (const [name, other] of [['l', l]] as const) {
    let shared = 0;
    for (const [msn, start] of other) {
      const hs = h.get(msn);
      if (hs === undefined) continue;
      shared++;
      assert.ok(Math.abs(hs - start) <= 250 * 90, `segment ${msn}: h starts at ${hs / 90} ms, ${name} at ${start / 90} ms`);
    }
    assert.ok(shared >= other.size - 1 && shared >= 5, `${name}: ${shared} of ${other.size} segments line up with h`);
  }
  // The late layer began where the others cut (4 s, its keyframe two frames late), not at its own (3.1 s).
  const lFirst = layers[2]?.seg.segments[0];
  assert.ok(
    lFirst !== undefined && Math.abs(lFirst.startDts90k - (3000 + 102 * 3600 + 700)) < 90,
    `l began at ${(lFirst?.startDts90k ?? 0) / 90} ms`,
  );
  // One timeline: the same picture has the same time in every layer (no per-feed restart at 0).
  assert.ok(
    Math.abs((h.get(lFirst?.msn ?? -1) ?? 0) - (lFirst?.startDts90k ?? 0)) <= 250 * 90,
    "l's first segment lies on h's timeline",
  );
  for (const { seg, session } of layers) {
    session.end('test over');
    seg.dispose();
  }
});
