// The player page `/watch/NAME` (a feed key or a declared stream) and its scripts under `/web/`:
// web/player.js, and hls.js and mpegts.js served from node_modules (never a CDN); and /favicon.ico.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ControlContext } from './control-context.js';
import type { HttpRoute } from '../protocols/http/route.js';
import { credentialQuery, credentialsFrom } from '../access/auth.js';
import type { ConnectionInfo } from '../access/connections.js';
import { escapeHtml, hrefPath } from '../protocols/http/html.js';
import { sameName } from '../config/names.js';

/** URL path under /web/ -> file, resolved once. */
function staticFiles(): Map<string, { path: string; type: string }> {
  const require = createRequire(import.meta.url);
  // The repository (or package) root holds web/: src/control -> ../..; dist/src/control -> ../../..
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'web', 'player.js')) && dirname(dir) !== dir) dir = dirname(dir);
  const js = 'text/javascript; charset=utf-8';
  return new Map([
    ['web/player.js', { path: join(dir, 'web', 'player.js'), type: js }],
    ['favicon.ico', { path: join(dir, 'web', 'favicon.ico'), type: 'image/x-icon' }],
    ['web/vendor/hls.min.js', { path: require.resolve('hls.js/dist/hls.min.js'), type: js }],
    ['web/vendor/mpegts.js', { path: require.resolve('mpegts.js/dist/mpegts.js'), type: js }],
  ]);
}

export interface WatchTarget {
  /** What the page shows as the title. */
  name: string;
  /** URL of the LL-HLS (fMP4) playlist. */
  hls: string;
  /** URL of the MPEG-TS HLS playlist, for feeds. */
  hlsTs: string | undefined;
  /** URL of the HTTP-FLV output, for feeds. */
  flv: string | undefined;
  /** URL of the WHEP endpoint (WebRTC), when the server serves WebRTC. */
  whep?: string | undefined;
  /** What the feed holds of its past (GET /api/v1/recordings/KEY), for the timeline; feeds only. */
  recordings?: string | undefined;
}

/** The sources of `/watch/NAME`: a declared `Format hls` stream, else a feed. */
export function watchTarget(ctx: ControlContext, name: string): WatchTarget | undefined {
  const stream = ctx.config.streams.find((s) => sameName(s.name, name) && s.format.name === 'hls');
  if (stream !== undefined) return { name, hls: hrefPath(stream.name), hlsTs: undefined, flv: undefined };
  const feed = ctx.feeds.get(name);
  if (feed === undefined) return undefined;
  return {
    name: feed.key,
    hls: hrefPath(`${feed.key}/index.m3u8`),
    hlsTs: hrefPath(`${feed.key}/ts/index.m3u8`),
    flv: hrefPath(`${feed.key}.flv`),
    recordings: hrefPath(`api/v1/recordings/${feed.key}`),
  };
}

/** `url` with a query appended (after its own, if it has one). */
function withQuery(url: string, query: string): string {
  if (query === '') return url;
  return `${url}${url.includes('?') ? '&' : '?'}${query}`;
}

/**
 * The player page. `authQuery` (the page's own read credentials: `token=...&expires=...` or `jwt=...`,
 * never a publish secret) is appended to every media URL it loads, so a signed page URL plays a
 * feed that needs a read token; HLS then carries it on to every segment and part.
 */
export function renderPlayerPage(target: WatchTarget, authQuery = ''): string {
  const media = (url: string | undefined): string | undefined => (url === undefined ? undefined : withQuery(url, authQuery));
  const config = JSON.stringify({
    name: target.name,
    hls: media(target.hls),
    hlsTs: media(target.hlsTs),
    flv: media(target.flv),
    whep: media(target.whep),
    recordings: target.recordings,
  }).replace(/</g, '\\u003c');
  const sources = [
    target.whep !== undefined ? `<option value="webrtc">WebRTC</option>` : '',
    `<option value="ll">LL-HLS</option>`,
    `<option value="hls">HLS</option>`,
    target.hlsTs !== undefined ? `<option value="ts">HLS (MPEG-TS)</option>` : '',
    target.flv !== undefined ? `<option value="flv">HTTP-FLV</option>` : '',
  ].join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(target.name)} · Feedcast</title>
<link rel="icon" href="/favicon.ico">
<style>
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#101214;color:#e8eaed}
header{display:flex;align-items:center;gap:.75rem;padding:.6rem 1rem;flex-wrap:wrap}
header a{color:#9cc3ff;text-decoration:none}h1{font-size:1.1rem;margin:0;flex:1;min-width:8rem;overflow-wrap:anywhere}
main{max-width:72rem;margin:0 auto;padding:0 .5rem 1rem}
.stage{position:relative;background:#000;aspect-ratio:16/9;width:100%;border-radius:6px;overflow:hidden}
video{width:100%;height:100%;display:block;background:#000}
.bar{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.6rem .25rem;font-size:.9rem;color:#b8bec6}
.delay{font-variant-numeric:tabular-nums;color:#fff;font-weight:600}.state{color:#8fd19e}.error{color:#ff9c8f}
select,button{font:inherit;background:#1d2126;color:#e8eaed;border:1px solid #39414a;border-radius:4px;padding:.25rem .5rem}
code{background:#1d2126;padding:0 .3rem;border-radius:3px;overflow-wrap:anywhere}
.timeline{position:relative;height:1.6rem;margin:.4rem .25rem 0}.timeline[hidden]{display:none}
.held{position:absolute;inset:.55rem 0;background:#2a2f35;border-radius:3px}.held span{position:absolute;top:0;bottom:0;background:#3f6fb0;border-radius:3px}
.timeline input{position:absolute;inset:0;width:100%;margin:0;background:transparent}
</style></head><body>
<header><a href="/">← Feedcast</a><h1>${escapeHtml(target.name)}</h1>
<label>Source <select id="source">${sources}</select></label></header>
<main>
<div class="stage"><video id="video" muted autoplay playsinline controls></video></div>
<div class="timeline" id="timeline" hidden title="What this feed holds: drag back to play the past"><div class="held" id="held"></div>
<input type="range" id="seek" min="0" max="1" step="1000" value="1" aria-label="Play from this time"></div>
<div class="bar"><span id="at"></span><span>Behind live: <span class="delay" id="delay">—</span></span>
<span id="state" class="state">starting…</span><span id="engine"></span>
<button id="live" type="button">Go live</button></div>
<p class="bar">Playlist: <code>${escapeHtml(target.hls)}</code></p>
</main>
<script>window.FEEDCAST_WATCH=${config};</script>
<script src="/web/vendor/hls.min.js"></script>
<script src="/web/vendor/mpegts.js"></script>
<script src="/web/player.js"></script>
</body></html>
`;
}

export interface PlayerPageOptions {
  /** The server serves WHEP at /KEY/whep (WebRtcRoute): the page offers WebRTC first. */
  whep: boolean;
}

export class PlayerPageRoute implements HttpRoute {
  private readonly ctx: ControlContext;
  private readonly options: PlayerPageOptions;
  private files: Map<string, { path: string; type: string }> | undefined;
  private readonly cache = new Map<string, Buffer>();

  constructor(ctx: ControlContext, options: Partial<PlayerPageOptions> = {}) {
    this.ctx = ctx;
    this.options = { whep: false, ...options };
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL, conn: ConnectionInfo): boolean {
    const method = req.method ?? 'GET';
    if (path.startsWith('watch/')) {
      const found = watchTarget(this.ctx, path.slice('watch/'.length));
      const target =
        found !== undefined && this.options.whep && found.flv !== undefined
          ? { ...found, whep: hrefPath(`${found.name}/whep`) }
          : found;
      if (target === undefined) {
        this.send(
          res,
          404,
          'text/plain; charset=utf-8',
          Buffer.from(`No feed or HLS stream named "${path.slice(6)}". The list is at /.\n`),
          'no-cache',
        );
        return true;
      }
      if (method !== 'GET' && method !== 'HEAD') return this.notAllowed(res, path);
      conn.target = path;
      const authQuery = credentialQuery(credentialsFrom(url.searchParams, undefined));
      this.send(res, 200, 'text/html; charset=utf-8', Buffer.from(renderPlayerPage(target, authQuery)), 'no-cache');
      return true;
    }
    if (!path.startsWith('web/') && path !== 'favicon.ico') return false;
    this.files ??= staticFiles();
    const file = this.files.get(path);
    if (file === undefined) {
      this.send(res, 404, 'text/plain; charset=utf-8', Buffer.from(`Not found: /${path}.\n`), 'no-cache');
      return true;
    }
    if (method !== 'GET' && method !== 'HEAD') return this.notAllowed(res, path);
    let body = this.cache.get(path);
    if (body === undefined) {
      try {
        body = readFileSync(file.path);
      } catch (err) {
        this.ctx.log.error('player asset missing', { path: file.path, err });
        this.send(
          res,
          500,
          'text/plain; charset=utf-8',
          Buffer.from(`/${path} is missing from this installation (${file.path}).\n`),
          'no-cache',
        );
        return true;
      }
      this.cache.set(path, body);
    }
    conn.bytesOut += body.length;
    this.send(res, 200, file.type, body, 'public, max-age=3600');
    return true;
  }

  private notAllowed(res: ServerResponse, path: string): true {
    this.send(res, 405, 'text/plain; charset=utf-8', Buffer.from(`/${path} accepts GET and HEAD only.\n`), 'no-cache', {
      Allow: 'GET, HEAD',
    });
    return true;
  }

  private send(
    res: ServerResponse,
    status: number,
    type: string,
    body: Buffer,
    cache: string,
    extra: Record<string, string> = {},
  ): void {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(body.length), 'Cache-Control': cache, ...extra });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }
}
