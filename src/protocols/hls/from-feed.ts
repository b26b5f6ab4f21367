// HLS reader side: answers playlist, init, segment and part requests from a Segmenter's memory,
// with blocking playlist reload (_HLS_msn/_HLS_part), delta updates (_HLS_skip) and preload-hint
// parts held until they exist (RFC 8216bis 6.2.5-6.2.6), and headers an HTTP cache can follow.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo } from '../../access/connections.js';
import { renderPlaylist, type PlaylistSource, type PlaylistUris, type RenditionReport } from './playlist.js';
import type { HlsSegment, RenderedPlaylist, Segmenter } from './segmenter.js';

export const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
/** Parts, segments and init sections never change under their URI (it carries the segmenter's id). */
export const IMMUTABLE = 'public, max-age=31536000, immutable';
/** A blocking reload's answer holds what was asked for, so a cache may give it to other clients briefly. */
export const BLOCKING_PLAYLIST_CACHE = 'public, max-age=6';
/**
 * A plain reload changes at most once a part; 1 s lets a cache in front (docs/nginx-hls-cache.conf)
 * answer a crowd of plain-HLS pollers with one origin request a second, at most 1 s staler.
 */
export const LIVE_PLAYLIST_CACHE = 'public, max-age=1';

export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
  'Access-Control-Expose-Headers': 'Content-Length, Date, Age',
};

export function sendHls(
  res: ServerResponse,
  status: number,
  body: string | readonly Buffer[],
  contentType: string,
  cacheControl: string,
  conn: ConnectionInfo,
  extra: Record<string, string> = {},
): void {
  if (res.destroyed) return;
  const buffers = typeof body === 'string' ? [Buffer.from(body.endsWith('\n') ? body : body + '\n')] : body;
  const length = buffers.reduce((n, b) => n + b.length, 0);
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': String(length),
    'Cache-Control': cacheControl,
    ...CORS_HEADERS,
    ...extra,
  });
  if (res.req.method === 'HEAD') {
    res.end();
    return;
  }
  res.cork();
  for (const b of buffers) res.write(b);
  res.end();
  conn.bytesOut += length;
}

function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  conn: ConnectionInfo,
  extra: Record<string, string> = {},
): void {
  sendHls(res, status, message, 'text/plain; charset=utf-8', 'no-cache', conn, extra);
}

export interface PlaylistRequest {
  segmenter: Segmenter;
  /** The file URIs (a function: only called when the playlist is rendered, not for a cached one). */
  uris: PlaylistUris | (() => PlaylistUris);
  /**
   * What else, besides the segmenter's state and the delivery directives, makes two renderings
   * differ (the reader's credentials in the URIs): rendered playlists are shared per key.
   */
  formKey?: string;
  /** The other renditions' live edges (EXT-X-RENDITION-REPORT), when this is one of a ladder. */
  renditionReports?: () => readonly RenditionReport[];
  lowLatency: boolean;
  /** How long the first request waits for the first segment. */
  firstSegmentTimeoutMs: number;
  /** Why there is no segment, when the wait runs out (404 no publisher, 406 no carried track...). */
  whyEmpty: () => { status: number; message: string };
}

/** _HLS_msn / _HLS_part / _HLS_skip, checked (6.2.5). */
export function parseDeliveryDirectives(
  url: URL,
): { msn: number | undefined; part: number | undefined; skip: boolean } | { error: string } {
  const msnText = url.searchParams.get('_HLS_msn');
  const partText = url.searchParams.get('_HLS_part');
  const skipText = url.searchParams.get('_HLS_skip');
  const int = (text: string): number | undefined => (/^\d{1,15}$/.test(text) ? Number(text) : undefined);
  let msn: number | undefined;
  let part: number | undefined;
  if (msnText !== null) {
    msn = int(msnText);
    if (msn === undefined) return { error: `_HLS_msn=${msnText.slice(0, 40)} is not a decimal integer` };
  }
  if (partText !== null) {
    if (msn === undefined) return { error: '_HLS_part needs _HLS_msn' };
    part = int(partText);
    if (part === undefined) return { error: `_HLS_part=${partText.slice(0, 40)} is not a decimal integer` };
  }
  if (skipText !== null && skipText !== 'YES' && skipText !== 'v2') {
    return { error: `_HLS_skip=${skipText.slice(0, 40)} must be YES or v2` };
  }
  return { msn, part, skip: skipText !== null };
}

/** The playlist holds segment `msn` complete, or (with `part`) that part of it. */
export function hasReached(segmenter: Segmenter, msn: number, part: number | undefined): boolean {
  if (segmenter.ended) return true;
  const last = segmenter.segments[segmenter.segments.length - 1];
  if (last === undefined) return false;
  if (msn < segmenter.mediaSequence) return true;
  if (msn < last.msn) return true;
  if (msn > last.msn) return false;
  if (last.complete) return true;
  return part !== undefined && last.parts.length > part;
}

export async function servePlaylist(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  request: PlaylistRequest,
  conn: ConnectionInfo,
): Promise<void> {
  const { segmenter } = request;
  const directives = parseDeliveryDirectives(url);
  if ('error' in directives) return sendError(res, 400, `Bad request: ${directives.error}.`, conn);

  if (segmenter.completeSegments === 0 && !segmenter.ended) {
    conn.state = 'WAIT_FEED';
    await segmenter.waitUntil(() => segmenter.completeSegments > 0, request.firstSegmentTimeoutMs);
    if (req.destroyed || res.destroyed) return;
  }
  if (segmenter.completeSegments === 0) {
    const why = request.whyEmpty();
    return sendError(res, why.status, why.message, conn, why.status === 503 ? { 'Retry-After': '2' } : {});
  }

  const blocking = request.lowLatency && directives.msn !== undefined;
  if (blocking && directives.msn !== undefined) {
    const last = segmenter.segments[segmenter.segments.length - 1];
    const lastMsn = last?.msn ?? segmenter.mediaSequence;
    if (directives.msn > lastMsn + 2) {
      return sendError(
        res,
        400,
        `Bad request: _HLS_msn=${directives.msn} is more than two segments past the last one in the playlist (${lastMsn}).`,
        conn,
      );
    }
    const { msn, part } = directives;
    conn.state = 'HLS_BLOCKING_RELOAD';
    const timeoutMs = 3 * segmenter.targetDurationS * 1000;
    const ok = await segmenter.waitUntil(() => hasReached(segmenter, msn, part), timeoutMs);
    if (req.destroyed || res.destroyed) return;
    if (!ok) {
      return sendError(
        res,
        503,
        `Segment ${msn}${part !== undefined ? ` part ${part}` : ''} did not become available within ${timeoutMs / 1000} s (three target durations).`,
        conn,
      );
    }
  }
  const rendered = renderedPlaylist(segmenter, request, directives.skip, blocking);
  conn.state = 'SEND_DATA';
  sendRendered(res, rendered, conn);
}

const PLAYLIST_HEADERS = (cacheControl: string): string[] => [
  'Content-Type',
  PLAYLIST_TYPE,
  'Cache-Control',
  cacheControl,
  ...Object.entries(CORS_HEADERS).flat(),
];
const LIVE_HEADERS = PLAYLIST_HEADERS(LIVE_PLAYLIST_CACHE);
const BLOCKING_HEADERS = PLAYLIST_HEADERS(BLOCKING_PLAYLIST_CACHE);

/** What a segmenter's playlist is rendered from, as it stands now. */
export function playlistSourceOf(segmenter: Segmenter): PlaylistSource {
  return {
    container: segmenter.options.container,
    segments: segmenter.segments,
    mediaSequence: segmenter.mediaSequence,
    discontinuitySequence: segmenter.discontinuitySequence,
    targetDurationS: segmenter.targetDurationS,
    partTargetS: segmenter.partTargetS,
    partHoldBackParts: segmenter.options.partHoldBackParts,
    ended: segmenter.ended,
  };
}

/**
 * The playlist in this form, rendered at most once per change of the segmenter (or of its ladder:
 * rendition reports), so that the many blocked requests a new part releases cost one render.
 */
export function renderedPlaylist(
  segmenter: Segmenter,
  request: Pick<PlaylistRequest, 'uris' | 'formKey' | 'renditionReports' | 'lowLatency'>,
  skip: boolean,
  blocking: boolean,
): RenderedPlaylist {
  const version = segmenter.timeline?.version ?? segmenter.version;
  const cache = segmenter.rendered;
  if (segmenter.renderedVersion !== version) {
    cache.clear();
    segmenter.renderedVersion = version;
  }
  const key = `${request.lowLatency ? 'l' : 'n'}${skip ? 's' : 'f'}${blocking ? 'b' : 'p'}${request.formKey ?? ''}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const uris = typeof request.uris === 'function' ? request.uris() : request.uris;
  const text = renderPlaylist(playlistSourceOf(segmenter), uris, {
    lowLatency: request.lowLatency,
    skip,
    ...(request.renditionReports !== undefined ? { renditionReports: request.renditionReports() } : {}),
  });
  const body = Buffer.from(text);
  const rendered: RenderedPlaylist = {
    body,
    headers: [...(blocking ? BLOCKING_HEADERS : LIVE_HEADERS), 'Content-Length', String(body.length)],
  };
  // Keys vary only by form; a handful of credentials at most per part interval.
  if (cache.size < 64) cache.set(key, rendered);
  segmenter.renders++;
  return rendered;
}

function sendRendered(res: ServerResponse, rendered: RenderedPlaylist, conn: ConnectionInfo): void {
  if (res.destroyed) return;
  res.writeHead(200, rendered.headers as string[]);
  if (res.req.method === 'HEAD') {
    res.end();
    return;
  }
  res.end(rendered.body);
  conn.bytesOut += rendered.body.length;
}

/** `{sid}-init{v}.mp4`, `{sid}-{msn}.m4s|ts`, `{sid}-{msn}.{part}.m4s|ts` */
export type HlsFile =
  | { kind: 'init'; sid: string; version: number }
  | { kind: 'segment'; sid: string; msn: number }
  | { kind: 'part'; sid: string; msn: number; part: number };

const FILE_RE = /^([a-z0-9]{4,24})-(?:init(\d{1,9})\.mp4|(\d{1,15})(?:\.(\d{1,6}))?\.(m4s|ts))$/;

export function parseHlsFile(name: string, container: 'fmp4' | 'ts'): HlsFile | undefined {
  const m = FILE_RE.exec(name);
  if (m === null) return undefined;
  const [, sid = '', init, msn, part, ext] = m;
  if (init !== undefined) return container === 'fmp4' ? { kind: 'init', sid, version: Number(init) } : undefined;
  if ((ext === 'm4s') !== (container === 'fmp4')) return undefined;
  if (part !== undefined) return { kind: 'part', sid, msn: Number(msn), part: Number(part) };
  return { kind: 'segment', sid, msn: Number(msn) };
}

export function hlsFileUris(sid: string, container: 'fmp4' | 'ts', prefix: string): PlaylistUris {
  const ext = container === 'fmp4' ? 'm4s' : 'ts';
  return {
    init: (v) => `${prefix}${sid}-init${v}.mp4`,
    segment: (msn) => `${prefix}${sid}-${msn}.${ext}`,
    part: (msn, i) => `${prefix}${sid}-${msn}.${i}.${ext}`,
  };
}

function nextMsnOf(segmenter: Segmenter): number {
  const last = segmenter.segments[segmenter.segments.length - 1];
  return last === undefined ? segmenter.mediaSequence : last.complete ? last.msn + 1 : last.msn;
}

/** A part that will exist soon: in the open segment or the next one, at most a few parts ahead (the preload hint). */
function partIsComing(segmenter: Segmenter, msn: number, part: number): boolean {
  const next = nextMsnOf(segmenter);
  const open = segmenter.openSegment;
  if (open !== undefined && msn === open.msn) return part <= open.parts.length + 2;
  return msn === next || (msn === next + 1 && part <= 2);
}

export async function serveFile(
  req: IncomingMessage,
  res: ServerResponse,
  segmenter: Segmenter | undefined,
  file: HlsFile,
  conn: ConnectionInfo,
): Promise<void> {
  if (segmenter === undefined || file.sid !== segmenter.sid) {
    return sendError(res, 404, 'Not found: this HLS segment belongs to an earlier run of the stream; reload the playlist.', conn);
  }
  const contentType = segmenter.options.container === 'ts' ? 'video/mp2t' : 'video/mp4';
  const waitMs = 3 * segmenter.targetDurationS * 1000;
  if (file.kind === 'init') {
    const init = segmenter.init(file.version);
    if (init === undefined)
      return sendError(res, 404, `Not found: init section ${file.version} is not in the playlist any more.`, conn);
    return sendHls(res, 200, [init], contentType, IMMUTABLE, conn);
  }
  if (file.kind === 'part') {
    const find = (): Buffer | undefined => segmenter.segment(file.msn)?.parts[file.part]?.data;
    if (find() === undefined && !segmenter.ended && partIsComing(segmenter, file.msn, file.part)) {
      conn.state = 'HLS_WAIT_PART';
      await segmenter.waitUntil(() => find() !== undefined || segmenter.segment(file.msn)?.complete === true, waitMs);
      if (req.destroyed || res.destroyed) return;
    }
    const data = find();
    if (data === undefined)
      return sendError(res, 404, `Not found: part ${file.part} of segment ${file.msn} is not available.`, conn);
    return sendHls(res, 200, [data], contentType, IMMUTABLE, conn);
  }
  const isComplete = (): HlsSegment | undefined => {
    const s = segmenter.segment(file.msn);
    return s?.complete === true ? s : undefined;
  };
  if (
    isComplete() === undefined &&
    !segmenter.ended &&
    (file.msn === nextMsnOf(segmenter) || segmenter.openSegment?.msn === file.msn)
  ) {
    conn.state = 'HLS_WAIT_SEGMENT';
    await segmenter.waitUntil(() => isComplete() !== undefined, waitMs);
    if (req.destroyed || res.destroyed) return;
  }
  const segment = isComplete();
  if (segment === undefined) return sendError(res, 404, `Not found: segment ${file.msn} is not in the playlist.`, conn);
  // An older segment of a DVR window is read back from the feed file (HLSDVRWindow with File).
  const body = await segmenter.segmentBytes(segment);
  if (req.destroyed || res.destroyed) return;
  if (body === undefined) {
    return sendError(
      res,
      404,
      `Not found: segment ${file.msn} is no longer held (the feed file overwrote it); reload the playlist.`,
      conn,
    );
  }
  sendHls(res, 200, body, contentType, IMMUTABLE, conn);
}
