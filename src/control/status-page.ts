// /stat.html, ffserver's status page: streams with formats and codecs, each feed's tracks and
// publisher, and every live connection. Every name is escaped.

import { describeTrack } from '../media/track.js';
import type { ServerContext } from '../server-context.js';
import { escapeHtml, formatBytes, formatDuration, hrefPath, htmlPage } from './html.js';

export function renderStatusPage(ctx: ServerContext): string {
  const now = Date.now();
  const feeds = ctx.feeds.all();
  const feedSections = feeds
    .map((feed) => {
      const pub = feed.publisher;
      const publisher =
        pub !== undefined
          ? `${escapeHtml(pub.protocol)} from ${escapeHtml(pub.remoteAddress)}, for ${formatDuration(now - pub.startedAt.getTime())}`
          : 'none';
      const rate = Math.round(feed.inputRate.bitsPerSecond(now) / 1000);
      const repairs = feed.clockRepairs;
      const tracks = feed.tracks
        .map(
          (t) =>
            `<tr><td>${t.id}</td><td>${t.kind}</td><td>${escapeHtml(t.codec)}</td><td>${escapeHtml(describeTrack(t))}${t.profile !== undefined ? ` (${escapeHtml(t.profile)})` : ''}</td></tr>`,
        )
        .join('');
      return `<h2>Feed ${escapeHtml(feed.key)}</h2>
<p>Publisher: ${publisher}. Input: ${rate} kbit/s, ${formatBytes(feed.stats.bytesIn)} in ${feed.stats.framesIn} frames, ${feed.stats.keyframesIn} keyframes.
Timestamp repairs: ${repairs.nonMonotonic} non-monotonic, ${repairs.jumps} jumps.</p>
<div class="scroll"><table><tr><th>Track</th><th>Type</th><th>Codec</th><th>Parameters</th></tr>${tracks || '<tr><td colspan="4" class="muted">no tracks yet</td></tr>'}</table></div>`;
    })
    .join('\n');

  const outputs = ctx.outputs.all();
  const outputRows = outputs
    .map(
      (o) =>
        `<tr><td>${escapeHtml(o.id)}</td><td>${escapeHtml(o.contentType ?? '')}</td><td>${o.readers}</td><td>${formatBytes(o.bytesServed)}</td><td>${escapeHtml(o.carriedTracks.map((t) => t.codec).join(', '))}</td></tr>`,
    )
    .join('');
  const streamRows = ctx.config.streams
    .map(
      (s) =>
        `<tr><td><a href="${escapeHtml(hrefPath(s.name))}">${escapeHtml(s.name)}</a></td><td>${escapeHtml(s.format.name)}</td><td>${escapeHtml(s.feed ?? s.file ?? '-')}</td><td>${s.bandwidthKbps > 0 ? s.bandwidthKbps : '-'}</td></tr>`,
    )
    .join('');

  const conns = ctx.connections.list();
  const connRows = conns
    .map((c, i) => {
      const dropped = c.counters['chunksDropped'] ?? 0;
      return `<tr><td>${i + 1}</td><td>${escapeHtml(c.target)}${c.role === 'publisher' ? ' (input)' : ''}</td><td>${escapeHtml(c.remoteAddress)}</td><td>${escapeHtml(c.protocol)}</td><td>${escapeHtml(c.state)}</td><td>${formatDuration(now - c.openedAt)}</td><td>${formatBytes(c.bytesIn + c.bytesOut)}</td><td>${dropped}</td></tr>`;
    })
    .join('');

  const body = `<h1>Feedcast status</h1>
<p class="muted">Up ${formatDuration(now - ctx.startedAt.getTime())}. <a href="/">Feeds and streams</a>.</p>
<h2>Outputs being served</h2>
<div class="scroll"><table><tr><th>Output</th><th>Content type</th><th>Readers</th><th>Bytes served</th><th>Tracks</th></tr>${outputRows || '<tr><td colspan="5" class="muted">none</td></tr>'}</table></div>
<h2>Declared streams</h2>
<div class="scroll"><table><tr><th>Path</th><th>Format</th><th>Feed</th><th>kbit/s</th></tr>${streamRows || '<tr><td colspan="4" class="muted">none</td></tr>'}</table></div>
${feedSections}
<h2>Connections</h2>
<p>Number of connections: ${conns.length} / ${ctx.config.maxClients}. Bandwidth in use: ${Math.round(ctx.bandwidthInUseKbps)}k / ${ctx.config.maxBandwidthKbps}k.</p>
<div class="scroll"><table><tr><th>#</th><th>File</th><th>IP</th><th>Proto</th><th>State</th><th>Time</th><th>Bytes</th><th>Dropped</th></tr>${connRows}</table></div>
<p class="muted">Generated at ${escapeHtml(new Date(now).toISOString())}</p>`;
  return htmlPage('Feedcast status', body, { refreshSeconds: 10 });
}
