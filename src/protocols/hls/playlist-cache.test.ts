// Issue 10 (LL-HLS poller CPU): each playlist form is rendered once per change of the segmenter,
// so the N blocked reloads one part releases cost one render; a sibling rendition's change (its
// rendition report) invalidates too. Also: rendition timelines and the multivariant playlist.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { fixtureFrames } from '../../../test/helpers/fixture-frames.js';
import { Feed } from '../../feed/feed.js';
import { shiftFrame } from '../../media/frame.js';
import { silentLogger } from '../../observability/logger.js';
import { hlsFileUris, renderedPlaylist, servePlaylist } from './from-feed.js';
import { liveEdgeOf, renderMultivariantPlaylist } from './playlist.js';
import { DEFAULT_SEGMENTER_OPTIONS, RenditionTimeline, Segmenter } from './segmenter.js';

const fixture = fixtureFrames('h264-aac.ts');
const T0 = 1_700_000_000_000;

function newFeed(): Feed {
  return new Feed('f.ffm', 'f', { publisherTimeoutMs: 10_000, publisherGraceMs: 10_000 }, silentLogger);
}

/** One publisher of the 2 s fixture: `(from, loops)` writes loops from..from+loops-1 (each shifted by 2 s). */
function publisher(feed: Feed, setNowMs?: (ms: number) => void): (from: number, loops: number) => void {
  const session = feed.attachPublisher({ protocol: 'test', remoteAddress: '127.0.0.1', startedAt: new Date() });
  session.setTracks(fixture.tracks);
  const first = Math.min(...fixture.frames.map((f) => f.dts90k));
  return (from, loops) => {
    for (let i = from; i < from + loops; i++) {
      for (const f of fixture.frames) {
        const shifted = shiftFrame(f, i * 180_000);
        const atMs = T0 + (shifted.dts90k - first) / 90;
        setNowMs?.(atMs);
        session.write(shifted, atMs);
      }
    }
  };
}

function segmenterOn(feed: Feed, timeline?: RenditionTimeline): Segmenter {
  const s = new Segmenter(
    feed,
    { ...DEFAULT_SEGMENTER_OPTIONS, segmentTargetMs: 1000, partTargetMs: 500 },
    silentLogger,
    timeline !== undefined ? { timeline } : {},
  );
  s.start();
  return s;
}

describe('HLS playlist cache', () => {
  test('N blocked reloads released by one change cost one render, and all get the same bytes', async (t) => {
    const feed = newFeed();
    const seg = segmenterOn(feed);
    const publishLoops = publisher(feed);
    publishLoops(0, 2);
    const conns: { state: string; bytesOut: number }[] = [];
    const server = createServer((req, res) => {
      const conn = { bytesOut: 0, state: '', counters: {} };
      conns.push(conn);
      void servePlaylist(
        req,
        res,
        new URL(req.url ?? '/', 'http://x'),
        {
          segmenter: seg,
          uris: () => hlsFileUris(seg.sid, 'fmp4', ''),
          lowLatency: true,
          firstSegmentTimeoutMs: 100,
          whyEmpty: () => ({ status: 404, message: 'none' }),
        },
        conn as never,
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

    const next = (seg.segments[seg.segments.length - 1]?.msn ?? 0) + 1;
    const n = 25;
    const answers = Array.from({ length: n }, () => fetch(`${base}?_HLS_msn=${next}&_HLS_part=0`));
    await waitUntil(() => conns.length === n && conns.every((c) => c.state === 'HLS_BLOCKING_RELOAD'));
    const before = seg.renders;
    publishLoops(2, 1);
    const bodies = await Promise.all(answers.map(async (a) => ((await a).status === 200 ? (await a).text() : 'failed')));
    assert.equal(seg.renders - before, 1, 'one render for every blocked request');
    assert.ok(
      bodies.every((b) => b === bodies[0] && b.includes(`-${next}.0.m4s`)),
      'the same playlist, with the part asked for',
    );

    // A plain reload is another form (kept 1 s by caches): one more render, then cached too.
    const plain = [await fetch(base), await fetch(base)];
    assert.deepEqual(
      plain.map((r) => r.headers.get('cache-control')),
      ['public, max-age=1', 'public, max-age=1'],
    );
    assert.equal(seg.renders - before, 2);
    // A new part invalidates.
    publishLoops(3, 1);
    await fetch(base);
    assert.equal(seg.renders - before, 3);
    seg.dispose();
  });

  test('renditions: a sibling’s change re-renders (its report moved); MSNs and dates are shared', (t) => {
    // Frames arrive in real time, as from a ladder: the clock follows their timestamps.
    t.mock.timers.enable({ apis: ['Date'], now: T0 });
    // Two renditions of one carrier feed (a ladder's), the second started 4 s later (from the feed's
    // recent frames, so it lists the same first segments).
    const timeline = new RenditionTimeline();
    const feed = newFeed();
    const publishLoops = publisher(feed, (ms) => t.mock.timers.setTime(ms));
    const a = segmenterOn(feed, timeline);
    publishLoops(0, 2);
    const request = { uris: hlsFileUris(a.sid, 'fmp4', ''), lowLatency: true, renditionReports: () => [] };
    const first = renderedPlaylist(a, request, false, false);
    assert.equal(renderedPlaylist(a, request, false, false), first, 'cached while nothing changed');
    // A rendition started later on the same timeline numbers and dates the same keyframe alike.
    const b = segmenterOn(feed, timeline);
    const rendersOfA = a.renders;
    publishLoops(2, 2);
    assert.equal(a.renders, rendersOfA);
    assert.notEqual(renderedPlaylist(a, request, false, false), first, 'the sibling moved: rendered again');
    const common = b.segments.filter((s) => s.complete).map((s) => [s.msn, s.startDts90k, s.programDateMs]);
    const inA = a.segments.filter((s) => s.complete).map((s) => [s.msn, s.startDts90k, s.programDateMs]);
    assert.ok(common.length >= 2, JSON.stringify(common));
    for (const c of common)
      assert.ok(
        inA.some((x) => x[0] === c[0] && x[1] === c[1] && x[2] === c[2]),
        JSON.stringify({ c, inA }),
      );
    assert.deepEqual(liveEdgeOf(b.segments), {
      lastMsn: b.segments.at(-1)?.parts.length === 0 ? b.segments.at(-2)?.msn : b.segments.at(-1)?.msn,
      lastPart: (b.segments.filter((s) => s.parts.length > 0).at(-1)?.parts.length ?? 0) - 1,
    });
    a.dispose();
    b.dispose();
  });

  test('multivariant playlist: STREAM-INF attributes in RFC 8216bis 4.4.6.2 form', () => {
    const text = renderMultivariantPlaylist([
      {
        uri: 'r0/index.m3u8',
        bandwidthBps: 348_000.4,
        averageBandwidthBps: 300_000,
        width: 320,
        height: 180,
        frameRate: 25,
        codecs: 'avc1.64000d,mp4a.40.2',
      },
      {
        uri: 'r1/index.m3u8',
        bandwidthBps: 848_000,
        averageBandwidthBps: undefined,
        width: undefined,
        height: undefined,
        frameRate: undefined,
        codecs: undefined,
      },
    ]);
    assert.equal(
      text,
      '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n' +
        '#EXT-X-STREAM-INF:BANDWIDTH=348000,AVERAGE-BANDWIDTH=300000,RESOLUTION=320x180,FRAME-RATE=25.000,CODECS="avc1.64000d,mp4a.40.2"\nr0/index.m3u8\n' +
        '#EXT-X-STREAM-INF:BANDWIDTH=848000\nr1/index.m3u8\n',
    );
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
