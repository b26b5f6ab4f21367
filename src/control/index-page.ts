// The page at `/`: every feed and stream, with the URLs a viewer can open (carrying the page's own
// read credentials, so `/?jwt=...` lists links that play feeds needing a read token).

import { describeTrack } from '../media/track.js';
import type { ControlContext } from './control-context.js';
import { escapeHtml, hrefPath, htmlPage } from '../protocols/http/html.js';

/** The RTMP and RTSP URLs of a feed, for the listeners that are on, with the host the browser used. */
function protocolUrls(ctx: ControlContext, host: string, key: string, authQuery: string): string[] {
  const urls: string[] = [];
  const { rtmp, rtsp } = ctx.config;
  if (rtmp.port !== 0) urls.push(`rtmp://${host}:${rtmp.port}/live/${key}`);
  if (rtsp.port !== undefined) urls.push(`rtsp://${host}:${rtsp.port}/${key}`);
  return urls.map((u) => withQuery(u, authQuery));
}

function withQuery(url: string, query: string): string {
  return query === '' ? url : `${url}?${query}`;
}

/**
 * `authQuery`: the page's own read credentials (`token=...&expires=...` or `jwt=...`, from
 * credentialQuery: never a publish secret), appended to every link to a feed or stream.
 */
export function renderIndexPage(ctx: ControlContext, hostHeader?: string, authQuery = ''): string {
  const feeds = ctx.feeds.all();
  // The host name the viewer reached us by (without the port), so the copied URLs work for them.
  const hostAndPort = (hostHeader ?? '').replace(/[^A-Za-z0-9.\-[\]:]/g, '');
  const host = hostAndPort.replace(/:\d+$/, '') || 'HOST';
  // The HTTP URLs keep the port the browser used (a Host header without one means the scheme's default).
  const httpHost = hostAndPort !== '' ? hostAndPort : `HOST:${ctx.config.http.port}`;
  const feedRows = feeds
    .map((feed) => {
      const state =
        feed.publisher !== undefined
          ? `<span class="ok">live</span> (${escapeHtml(feed.publisher.protocol)})`
          : '<span class="muted">no publisher</span>';
      const tracks = feed.tracks.map(describeTrack).join(', ') || '—';
      const watch = `<a href="${escapeHtml(withQuery(hrefPath(`watch/${feed.key}`), authQuery))}"><b>Watch</b></a>`;
      const recorded = ctx.recordings.of(feed.key) !== undefined;
      const links = [
        watch,
        ...[`${feed.key}/index.m3u8`, `${feed.key}.flv`, `${feed.key}.ts`].map(
          (path) => `<a href="${escapeHtml(withQuery(hrefPath(path), authQuery))}">${escapeHtml(path)}</a>`,
        ),
        ...(recorded ? [`<a href="${escapeHtml(withQuery(hrefPath(`recordings/${feed.key}`), authQuery))}">recordings</a>`] : []),
      ].join(' · ');
      const players = protocolUrls(ctx, host, feed.key, authQuery)
        .map((u) => `<code>${escapeHtml(u)}</code>`)
        .join(' ');
      return `<tr><td><b>${escapeHtml(feed.key)}</b></td><td>${state}</td><td>${escapeHtml(tracks)}</td><td>${links}${players !== '' ? `<br>${players}` : ''}</td></tr>`;
    })
    .join('\n');
  const streamRows = ctx.config.streams
    .map((s) => {
      const source = s.feed !== undefined ? `feed ${s.feed}` : s.file !== undefined ? `file ${s.file}` : '';
      const watch =
        s.format.name === 'hls'
          ? ` · <a href="${escapeHtml(withQuery(hrefPath(`watch/${s.name}`), authQuery))}"><b>Watch</b></a>`
          : '';
      return `<tr><td><a href="${escapeHtml(withQuery(hrefPath(s.name), authQuery))}">${escapeHtml(s.name)}</a>${watch}</td><td>${escapeHtml(s.format.name)}</td><td>${escapeHtml(source)}</td></tr>`;
    })
    .join('\n');
  const body = `<h1>Feedcast</h1>
<p class="muted">Live feeds on this server. Watch in the browser, or open a link in ffplay, VLC or mpv, e.g. <code>ffplay http://${escapeHtml(httpHost)}/${escapeHtml(feeds[0]?.key ?? 'feed1')}.flv</code>. <a href="/stat.html">Server status</a> · <a href="${escapeHtml(withQuery('/recordings', authQuery))}">Recordings</a>.</p>
<h2>Feeds</h2>
<div class="scroll"><table><tr><th>Feed</th><th>State</th><th>Tracks</th><th>Watch</th></tr>
${feedRows || `<tr><td colspan="4" class="muted">No feeds. Publish one: <code>ffmpeg -re -i INPUT -c copy -f mpegts http://${escapeHtml(httpHost)}/feed1.ffm</code></td></tr>`}
</table></div>
${streamRows !== '' ? `<h2>Streams</h2><div class="scroll"><table><tr><th>Stream</th><th>Format</th><th>Source</th></tr>\n${streamRows}\n</table></div>` : ''}`;
  return htmlPage('Feedcast', body);
}
