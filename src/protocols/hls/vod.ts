// HLS VOD over a time range of what a feed holds (docs/hls.md, "Time ranges"):
// `/KEY/index.m3u8?start=T&end=T2` is an EXT-X-PLAYLIST-TYPE:VOD playlist (fMP4, ENDLIST) made from
// the feed's fMP4 recordings or, when they hold nothing of it, its FeedFile ring; `/KEY/vod/NAME`
// are its init section and segments, named by where they lie in that media (any server answers them).

import { MalformedInputError } from '../../errors.js';
import type { Feed } from '../../feed/feed.js';
import { isoTime } from '../../feedfile/time-spec.js';
import { parseTimePoint } from '../../record/time-point.js';
import { RecordedVod } from '../../record/vod-recordings.js';
import { parseVodFileName, vodInitName, vodSegmentName, type VodPlan } from '../../record/vod-plan.js';
import type { ProtocolContext } from '../protocol-context.js';
import { IMMUTABLE, PLAYLIST_TYPE } from './from-feed.js';
import { planRingVod, ringVodInit, ringVodSegment } from './vod-ring.js';

/** Longest range one playlist may span: a day (as /FEED.mp4). */
const MAX_RANGE_MS = 24 * 3600 * 1000;
const TEXT = 'text/plain; charset=utf-8';

export interface VodAnswer {
  status: number;
  body: string | Buffer;
  contentType: string;
  cacheControl: string;
  headers?: Record<string, string>;
}

function refuse(status: number, message: string): VodAnswer {
  return { status, body: message, contentType: TEXT, cacheControl: 'no-cache' };
}

/** The VOD playlist of a plan (RFC 8216bis 4.4.3.5: PLAYLIST-TYPE VOD, 4.4.3.4 ENDLIST). */
export function renderVodPlaylist(plan: VodPlan, uri: (name: string) => string): string {
  const first = plan.segments[0];
  const longest = Math.max(...plan.segments.map((s) => s.dur90k / 90_000));
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${Math.max(1, Math.ceil(longest))}`,
    '#EXT-X-MEDIA-SEQUENCE:0',
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-INDEPENDENT-SEGMENTS',
  ];
  if (first !== undefined) lines.push(`#EXT-X-MAP:URI="${uri(vodInitName(plan.source, first.at))}"`);
  for (const s of plan.segments) {
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(Math.round(s.wallMs)).toISOString()}`);
    lines.push(`#EXTINF:${(s.dur90k / 90_000).toFixed(5)},`, uri(vodSegmentName(plan.source, s)));
  }
  lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}

export class HlsVod {
  private readonly ctx: ProtocolContext;
  private readonly recorded = new RecordedVod();

  constructor(ctx: ProtocolContext) {
    this.ctx = ctx;
  }

  /** `/KEY/index.m3u8?start=T&end=T2`; `query` (the reader's credentials) is added to every URI. */
  async playlist(feed: Feed, url: URL, segmentTargetMs: number, query: string): Promise<VodAnswer> {
    const nowMs = Date.now();
    let startMs: number;
    let endMs: number;
    try {
      const start = url.searchParams.get('start');
      const end = url.searchParams.get('end');
      if (start === null)
        throw new MalformedInputError('time', 0, 'start= is missing: say where the range begins (e.g. start=-10m)');
      startMs = parseTimePoint(start, nowMs);
      endMs = end === null ? nowMs : parseTimePoint(end, nowMs);
    } catch (err) {
      if (!(err instanceof MalformedInputError)) throw err;
      return refuse(400, `${feed.key}: ${err.message}`);
    }
    if (endMs <= startMs) return refuse(400, `${feed.key}: end (${isoTime(endMs)}) must come after start (${isoTime(startMs)}).`);
    if (endMs - startMs > MAX_RANGE_MS) {
      return refuse(400, `${feed.key}: a range may span at most 24 h; ${isoTime(startMs)} to ${isoTime(endMs)} is longer.`);
    }
    if (startMs > nowMs + 1000) {
      return refuse(416, `${feed.key}: start (${isoTime(startMs)}) is in the future; the live edge is now (${isoTime(nowMs)}).`);
    }
    const recordings = this.ctx.recordings.of(feed.key);
    const ring = this.ctx.feedFiles.of(feed);
    if (recordings === undefined && ring === undefined) {
      return refuse(
        404,
        `${feed.key} keeps no past: add Record on (docs/recording.md) or a File (docs/feed-file.md) to its <Feed> to play time ranges.`,
      );
    }
    let plan = recordings !== undefined ? await this.recorded.plan(recordings, startMs, endMs, segmentTargetMs) : undefined;
    let held: { fromMs: number; toMs: number } | undefined;
    const status = recordings?.status;
    if (status?.oldestWallMs !== undefined && status.newestWallMs !== undefined) {
      held = { fromMs: status.oldestWallMs, toMs: status.newestWallMs };
    }
    if (plan === undefined && ring !== undefined) {
      const r = await planRingVod(ring, startMs, endMs, segmentTargetMs);
      if (r.kind === 'ok') plan = r.plan;
      else if (r.kind === 'outside') {
        held = {
          fromMs: Math.min(held?.fromMs ?? Infinity, r.range.oldestWallMs),
          toMs: Math.max(held?.toMs ?? 0, r.range.newestWallMs),
        };
      }
    }
    if (plan === undefined) {
      const asked = `${isoTime(startMs)} to ${isoTime(endMs)}`;
      if (held === undefined) return refuse(404, `${feed.key} holds nothing yet (${asked} asked).`);
      const holds = `it holds ${isoTime(held.fromMs)} to ${isoTime(held.toMs)}`;
      if (endMs <= held.fromMs || startMs >= held.toMs) return refuse(416, `${feed.key}: ${asked} is outside what ${holds}.`);
      return refuse(
        404,
        `Nothing of ${feed.key} is held between ${asked} (a gap); GET /api/v1/recordings/${feed.key} lists what is.`,
      );
    }
    const suffix = query === '' ? '' : `?${query}`;
    // A range wholly in the past, given as absolute times, lists the same segments for a while.
    const fixed = !/^\s*-|now/.test(url.searchParams.get('start') ?? '') && url.searchParams.has('end') && endMs < nowMs - 10_000;
    return {
      status: 200,
      body: renderVodPlaylist(plan, (name) => `vod/${name}${suffix}`),
      contentType: PLAYLIST_TYPE,
      cacheControl: fixed && !/^\s*-|now/.test(url.searchParams.get('end') ?? '') ? 'public, max-age=60' : 'no-cache',
      headers: { 'X-Feedcast-Start': isoTime(plan.startWallMs), 'X-Feedcast-End': isoTime(plan.endWallMs) },
    };
  }

  /** `/KEY/vod/NAME`: an init section or a segment of a VOD playlist. */
  async file(feed: Feed, name: string): Promise<VodAnswer> {
    const file = parseVodFileName(name);
    if (file === undefined) return refuse(404, `Not found: ${name.slice(0, 100)} is not a VOD file name of this server.`);
    let body: Buffer | undefined;
    if (file.source === 'rec') {
      const recordings = this.ctx.recordings.of(feed.key);
      if (recordings !== undefined) {
        body =
          file.kind === 'init'
            ? await this.recorded.init(recordings, file.at)
            : await this.recorded.segment(recordings, file.at, file.out90k, file.dur90k);
      }
    } else {
      const ring = this.ctx.feedFiles.of(feed);
      if (ring !== undefined) {
        body =
          file.kind === 'init' ? await ringVodInit(ring, file.at) : await ringVodSegment(ring, file.at, file.out90k, file.dur90k);
      }
    }
    if (body === undefined) {
      return refuse(
        404,
        `${feed.key} no longer holds ${name.slice(0, 100)} (retention or the ring overwrote it); ask for the playlist again.`,
      );
    }
    return { status: 200, body, contentType: 'video/mp4', cacheControl: IMMUTABLE };
  }
}
