// The recordings page: `/recordings` lists every recorded feed (Record on) with the spans of time
// it holds (the listing of GET /api/v1/recordings/FEED), `/recordings/FEED` one feed. Each span has
// a download link (`/FEED.mp4?start=&end=`) and a play link (the player page from that time). Plain
// HTML with every name escaped: it works without JavaScript. Obeys StatusACL, like the API.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { credentialQuery, credentialsFrom } from '../access/auth.js';
import type { ConnectionInfo } from '../access/connections.js';
import { escapeHtml, formatBytes, formatDuration, hrefPath, htmlPage } from '../protocols/http/html.js';
import type { HttpRoute } from '../protocols/http/route.js';
import type { HeldSpan, RecordingsListing } from '../record/listing.js';
import type { ControlContext } from './control-context.js';
import { recordingsListing } from './snapshot.js';

/** The longest range one download may ask for (the MP4 route's limit): longer spans are offered by the hour. */
const MAX_DOWNLOAD_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;

function link(path: string, query: string, text: string): string {
  return `<a href="${escapeHtml(`${hrefPath(path)}?${query}`)}">${escapeHtml(text)}</a>`;
}

/** `start=…&end=…` (ISO 8601, exact to the ms), plus the page's own read credentials. */
function rangeQuery(startMs: number, endMs: number, authQuery: string): string {
  const q = `start=${new Date(startMs).toISOString()}&end=${new Date(endMs).toISOString()}`;
  return authQuery === '' ? q : `${q}&${authQuery}`;
}

/** Pieces of a span a download may take: the span itself, or its hours when it is longer than a day. */
function downloadPieces(span: HeldSpan): [number, number][] {
  if (span.endMs - span.startMs <= MAX_DOWNLOAD_MS) return [[span.startMs, span.endMs]];
  const out: [number, number][] = [];
  for (let t = span.startMs; t < span.endMs; t += HOUR_MS) out.push([t, Math.min(span.endMs, t + HOUR_MS)]);
  return out;
}

function time(ms: number): string {
  return escapeHtml(
    new Date(ms)
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, 'Z'),
  );
}

function spanRows(feed: string, listing: RecordingsListing, authQuery: string): string[] {
  return listing.spans.map((span) => {
    // The MP4 is made from recordings; a span only the FeedFile ring holds downloads as MPEG-TS.
    const ext = span.sources.includes('recordings') ? 'mp4' : 'ts';
    const downloads = downloadPieces(span)
      .map(([from, to], i, all) =>
        link(
          `${feed}.${ext}`,
          rangeQuery(from, to, authQuery),
          all.length === 1 ? `Download ${ext.toUpperCase()}` : `${ext.toUpperCase()} ${i + 1}`,
        ),
      )
      .join(' · ');
    const play = link(`watch/${feed}`, rangeQuery(span.startMs, span.endMs, authQuery), 'Play');
    return `<tr><td>${time(span.startMs)}</td><td>${time(span.endMs)}</td><td>${formatDuration(span.endMs - span.startMs)}</td><td>${formatBytes(span.bytes)}</td><td>${escapeHtml(span.sources.join(', '))}</td><td>${play} · ${downloads}</td></tr>`;
  });
}

function feedSection(feed: string, listing: RecordingsListing, authQuery: string): string {
  const r = listing.recording;
  const state =
    r === null
      ? 'not recorded (Record off): only its FeedFile ring is listed'
      : r.state === 'failed'
        ? `<span class="warn">recording stopped by an error</span>: ${escapeHtml(r.lastError ?? '')}`
        : r.state === 'recording'
          ? '<span class="ok">recording</span>'
          : escapeHtml(r.state);
  const rows = spanRows(feed, listing, authQuery);
  const body =
    rows.length > 0
      ? rows.join('\n')
      : '<tr><td colspan="6" class="muted">nothing held yet: the first file appears once a publisher sends a keyframe</td></tr>';
  const gaps = listing.gaps.length > 0 ? ` ${listing.gaps.length} gap(s) between them.` : '';
  return `<h2>${escapeHtml(feed)}</h2>
<p>${state}. ${listing.spans.length} span(s), ${formatBytes(listing.bytes)}.${gaps} <a href="${escapeHtml(hrefPath(`api/v1/recordings/${feed}`))}">JSON</a></p>
<div class="scroll"><table><tr><th>From (UTC)</th><th>To (UTC)</th><th>Length</th><th>Size</th><th>Held in</th><th>Links</th></tr>
${body}
</table></div>`;
}

export function renderRecordingsPage(ctx: ControlContext, feedKeys: readonly string[], authQuery: string, title: string): string {
  const sections = feedKeys.flatMap((key) => {
    const feed = ctx.feeds.get(key);
    return feed === undefined ? [] : [feedSection(feed.key, recordingsListing(ctx, feed), authQuery)];
  });
  const body = `<h1>${escapeHtml(title)}</h1>
<p class="muted"><a href="/">Feeds and streams</a> · <a href="/stat.html">Server status</a>. Download gives one file of the span (an MP4 made from the recordings, MPEG-TS for what only the FeedFile ring holds); Play opens the player page at its start. Times are UTC.</p>
${sections.length > 0 ? sections.join('\n') : '<p class="muted">No feed is recorded: add <code>Record on</code> to a &lt;Feed&gt; (docs/recording.md).</p>'}`;
  return htmlPage(title, body);
}

export class RecordingsPageRoute implements HttpRoute {
  private readonly ctx: ControlContext;

  constructor(ctx: ControlContext) {
    this.ctx = ctx;
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL, conn: ConnectionInfo): boolean {
    const m = /^recordings(?:\/([^/]+))?\/?$/.exec(path);
    if (m === null) return false;
    const ctx = this.ctx;
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', `/${path} accepts GET and HEAD only.\n`, { Allow: 'GET, HEAD' });
      return true;
    }
    if (!ctx.config.statusAcl.allows(conn.remoteAddress)) {
      send(res, 403, 'text/plain; charset=utf-8', `Your address ${conn.remoteAddress} may not list recordings (StatusACL).\n`);
      return true;
    }
    const authQuery = credentialQuery(credentialsFrom(url.searchParams, undefined));
    const name = m[1];
    if (name === undefined) {
      const keys = ctx.feeds
        .all()
        .filter((f) => ctx.recordings.of(f.key) !== undefined || ctx.feedFiles.of(f) !== undefined)
        .map((f) => f.key);
      send(res, 200, 'text/html; charset=utf-8', renderRecordingsPage(ctx, keys, authQuery, 'Recordings'));
      return true;
    }
    const feed = ctx.feeds.get(name);
    if (feed === undefined) {
      send(
        res,
        404,
        'text/plain; charset=utf-8',
        `No feed named "${name.slice(0, 100)}". /recordings lists the recorded ones.\n`,
      );
      return true;
    }
    send(res, 200, 'text/html; charset=utf-8', renderRecordingsPage(ctx, [feed.key], authQuery, `Recordings of ${feed.key}`));
    return true;
  }
}

function send(res: ServerResponse, status: number, type: string, text: string, extra: Record<string, string> = {}): void {
  const body = Buffer.from(text);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(body.length), 'Cache-Control': 'no-cache', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
