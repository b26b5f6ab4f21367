// /stat.html: everything ffserver's status page showed (available streams with their formats,
// bit rates and codecs; each feed's tracks; the connection table; the generation time) plus what
// it lacked: publisher address and uptime, input bit rate, keyframe interval, timestamp repairs,
// per-output drops. Refreshes itself; every name is escaped; readable on a phone.

import { describeTrack, type Track } from '../media/track.js';
import type { ControlContext } from './control-context.js';
import type { WebRtcViewerView } from '../access/connections.js';
import { escapeHtml, formatBytes, formatDuration, hrefPath, htmlPage } from '../protocols/http/html.js';
import { connectionView, feedView, outputView } from './snapshot.js';

function kbps(bitsPerSecond: number): string {
  return String(Math.round(bitsPerSecond / 1000));
}

function trackParameters(t: Track): string {
  if (t.kind === 'video') {
    const size = t.width !== undefined && t.height !== undefined ? `${t.width}x${t.height}` : 'size unknown';
    return t.profile !== undefined ? `${size}, ${t.profile}` : size;
  }
  const ch = t.channels !== undefined ? `${t.channels} channel(s)` : 'channels unknown';
  return t.sampleRate !== undefined ? `${ch}, ${t.sampleRate} Hz` : ch;
}

function table(headers: string[], rows: string[], empty: string): string {
  const head = headers.map((h) => `<th>${h}</th>`).join('');
  const body = rows.length > 0 ? rows.join('\n') : `<tr><td colspan="${headers.length}" class="muted">${empty}</td></tr>`;
  return `<div class="scroll"><table><tr>${head}</tr>\n${body}\n</table></div>`;
}

function recordingState(state: string): string {
  if (state === 'recording') return '<span class="ok">on</span>';
  if (state === 'failed') return '<span class="warn">stopped by an error (retried every 10 s)</span>';
  if (state === 'waiting') return 'on, waiting for a publisher';
  return escapeHtml(state);
}

/** A WHEP viewer's simulcast layer and bandwidth estimate, after its protocol. */
function webrtcNote(w: WebRtcViewerView | undefined): string {
  if (w === undefined) return '';
  const parts = [
    ...(w.simulcastLayer !== null ? [`layer ${w.simulcastLayer}`] : []),
    `estimate ${w.bandwidthEstimateKbps !== null ? `${w.bandwidthEstimateKbps} kbit/s` : 'none yet'}`,
    ...(w.lastSwitch !== null ? [`last switch: ${w.lastSwitch}`] : []),
  ];
  return ` (${escapeHtml(parts.join(', '))})`;
}

export function renderStatusPage(ctx: ControlContext): string {
  const now = Date.now();
  const feeds = ctx.feeds.all();

  // Available streams: every feed's own outputs, then the declared <Stream>s (ffserver's table).
  const served = (name: string): { conns: number; bytes: number } => ctx.counters.served.get(name) ?? { conns: 0, bytes: 0 };
  const streamRows: string[] = [];
  for (const feed of feeds) {
    const rate = (kind: 'video' | 'audio'): string => {
      const tracks = feed.tracks.filter((t) => t.kind === kind);
      const bits = tracks.reduce((sum, t) => sum + (feed.trackRates.get(t.id)?.bitsPerSecond(now) ?? 0), 0);
      return tracks.length === 0 ? '-' : `${kbps(bits)} ${escapeHtml(tracks.map((t) => t.codec).join(', '))}`;
    };
    for (const [ext, format] of [
      ['flv', 'flv'],
      ['ts', 'mpegts'],
    ] as const) {
      const name = `${feed.key}.${ext}`;
      const s = served(name);
      streamRows.push(
        `<tr><td><a href="${escapeHtml(hrefPath(name))}">${escapeHtml(name)}</a></td><td>${s.conns}</td><td>${formatBytes(s.bytes)}</td><td>${format}</td><td>${kbps(feed.inputRate.bitsPerSecond(now))}</td><td>${rate('video')}</td><td>${rate('audio')}</td><td>${escapeHtml(feed.name)}</td></tr>`,
      );
    }
  }
  for (const stream of ctx.config.streams) {
    const s = served(stream.name);
    const e = stream.encoding;
    const video =
      e.videoCodec !== undefined || e.videoBitRateKbps !== undefined
        ? `${e.videoBitRateKbps ?? '-'} ${escapeHtml(e.videoCodec ?? '')}`
        : '-';
    const audio =
      e.audioCodec !== undefined || e.audioBitRateKbps !== undefined
        ? `${e.audioBitRateKbps ?? '-'} ${escapeHtml(e.audioCodec ?? '')}`
        : '-';
    streamRows.push(
      `<tr><td><a href="${escapeHtml(hrefPath(stream.name))}">${escapeHtml(stream.name)}</a></td><td>${s.conns}</td><td>${formatBytes(s.bytes)}</td><td>${escapeHtml(stream.format.name)}${stream.format.note !== undefined ? ` <span class="muted" title="${escapeHtml(stream.format.note)}">(not for browsers)</span>` : ''}</td><td>${stream.bandwidthKbps > 0 ? stream.bandwidthKbps : '-'}</td><td>${video}</td><td>${audio}</td><td>${escapeHtml(stream.feed ?? stream.file ?? '-')}</td></tr>`,
    );
  }

  const feedSections = feeds
    .map((feed) => {
      const view = feedView(ctx, feed, now);
      const pub = view.publisher;
      const publisher =
        pub !== null
          ? `<span class="ok">${escapeHtml(pub.protocol)} from ${escapeHtml(pub.remoteAddress)}</span>, up ${formatDuration(pub.uptimeSeconds * 1000)}`
          : '<span class="muted">none</span>';
      const gop = view.keyframeIntervalSeconds !== null ? `${view.keyframeIntervalSeconds} s` : '-';
      const trackRows = feed.tracks.map(
        (t) =>
          `<tr><td>${t.id}</td><td>${t.kind}</td><td>${kbps(feed.trackRates.get(t.id)?.bitsPerSecond(now) ?? 0)}</td><td>${escapeHtml(t.codec)}</td><td>${escapeHtml(trackParameters(t))}</td></tr>`,
      );
      const f = view.file;
      const fileLine =
        f === null
          ? ''
          : `<br>Feed file ${escapeHtml(f.path)}: ${formatBytes(f.sizeBytes)} of ${formatBytes(f.maxSizeBytes)}, holds ${formatDuration(f.durationSeconds * 1000)}${f.oldest !== null ? ` (${escapeHtml(f.oldest)} to ${escapeHtml(f.newest ?? '')})` : ''}, writing ${f.writeKbps} kbit/s${f.framesDropped > 0 ? `, <span class="warn">${f.framesDropped} frames not recorded</span>` : ''}${f.lastError !== null ? `, <span class="warn">last error: ${escapeHtml(f.lastError)}</span>` : ''}.`;
      const r = view.recording;
      const recordLine =
        r === null
          ? ''
          : `<br>Recording (${r.format}): ${recordingState(r.state)}${r.currentPath !== null ? `, writing ${escapeHtml(r.currentPath)}` : ''}; ${formatBytes(r.bytesWritten)} written; ${r.files} file(s) held, ${formatBytes(r.bytesHeld)}; retention deleted ${r.retentionDeletedFiles} file(s), ${formatBytes(r.retentionDeletedBytes)}; ${r.writeErrors > 0 ? `<span class="warn">${r.writeErrors} write error(s)</span>` : '0 write errors'}${r.framesDropped > 0 ? `, <span class="warn">${r.framesDropped} frames not recorded</span>` : ''}${r.lastError !== null ? `, <span class="warn">last error: ${escapeHtml(r.lastError)}</span>` : ''}. <a href="${escapeHtml(hrefPath(`recordings/${feed.key}`))}">Recordings</a>.`;
      return `<h2>Feed ${escapeHtml(feed.key)}</h2>
<p>${clusterLine(ctx, feed.key)}Publisher: ${publisher}. Input ${view.inputKbps} kbit/s; keyframe interval ${gop}; ${formatBytes(view.bytesIn)} in ${view.framesIn} frames (${view.keyframesIn} keyframes) from ${view.publishers} publisher session(s). Readers: ${view.readers}.
Timestamp repairs: ${view.timestampRepairs.nonMonotonic} non-monotonic, ${view.timestampRepairs.jumps} jumps; frames skipped before a keyframe: ${view.framesSkippedBeforeKeyframe}.${fileLine}${recordLine}</p>
${table(['Track', 'Type', 'kbit/s', 'Codec', 'Parameters'], trackRows, 'no tracks yet: nothing published')}`;
    })
    .join('\n');

  const outputRows = ctx.outputs.all().map((o) => {
    const v = outputView(o);
    return `<tr><td>${escapeHtml(v.id)}</td><td>${escapeHtml(v.contentType ?? '')}</td><td>${v.readers}</td><td>${formatBytes(v.bytesServed)}</td><td>${v.chunksDropped}</td><td>${v.skips}</td><td>${escapeHtml(o.carriedTracks.map(describeTrack).join(', '))}</td></tr>`;
  });

  const children = [...(ctx.children?.transcoders() ?? []), ...(ctx.children?.sources() ?? [])];
  const childRows = children.map((c) => {
    const what = 'format' in c ? `${c.kind} ${c.format}` : c.kind;
    const last = c.lastError ?? c.stderrTail.at(-1) ?? '';
    return `<tr><td>${escapeHtml(c.name)}</td><td>${escapeHtml(c.feed)}</td><td>${escapeHtml(what)}</td><td>${c.running ? `<span class="ok">running</span> (pid ${c.pid ?? '?'})` : 'stopped'}</td><td>${c.restarts}</td><td>${c.readers}</td><td>${escapeHtml(last)}</td></tr>`;
  });

  const conns = ctx.connections.list();
  const connRows = conns.map((c, i) => {
    const v = connectionView(c, now);
    return `<tr><td>${i + 1}</td><td>${escapeHtml(v.target)}${v.role === 'publisher' ? ' (input)' : ''}</td><td>${escapeHtml(v.remoteAddress)}${v.proxyAddress !== null ? ` (via ${escapeHtml(v.proxyAddress)})` : ''}</td><td>${escapeHtml(v.protocol)}${webrtcNote(c.webrtc)}</td><td>${escapeHtml(v.state)}</td><td>${formatDuration(v.seconds * 1000)}</td><td>${v.targetKbps > 0 ? v.targetKbps : '-'}</td><td>${v.actualKbps}</td><td>${formatBytes(v.bytesIn + v.bytesOut)}</td><td>${v.chunksDropped}</td></tr>`;
  });

  const srtRows = conns.flatMap((c) => {
    const v = connectionView(c, now);
    if (v.srt === undefined) return [];
    const s = v.srt;
    return [
      `<tr><td>${escapeHtml(v.target)}${v.role === 'publisher' ? ' (input)' : ''}</td><td>${escapeHtml(v.remoteAddress)}</td><td>${s.packetsLost}</td><td>${s.packetsRetransmitted}</td><td>${s.packetsDropped}</td><td>${s.rttMs}</td><td>${s.encrypted ? 'yes' : 'no'}</td></tr>`,
    ];
  });

  const body = `<h1>Feedcast status</h1>
<p class="muted">Feedcast ${escapeHtml(ctx.version)}, up ${formatDuration(now - ctx.startedAt.getTime())}. <a href="/">Feeds and streams</a> · <a href="/recordings">Recordings</a> · <a href="/api/v1">API</a> · <a href="/metrics">metrics</a>. This page refreshes every 10 s.</p>
<h2>Available streams</h2>
${table(['Path', 'Served conns', 'Bytes', 'Format', 'Bit rate kbit/s', 'Video kbit/s, codec', 'Audio kbit/s, codec', 'Feed'], streamRows, 'no feeds or streams')}
${feedSections}
<h2>Outputs being muxed</h2>
${table(['Output', 'Content type', 'Readers', 'Bytes served', 'Chunks dropped', 'Skips to keyframe', 'Tracks'], outputRows, 'none: no reader right now')}
<h2>Transcoders and sources (ffmpeg)</h2>
${table(['Name', 'Feed', 'Kind', 'State', 'Restarts', 'Readers', 'Last error or stderr'], childRows, 'none running')}
${clusterSection(ctx)}<h2>Connection status</h2>
<p>Number of connections: ${conns.length} / ${ctx.config.maxClients}. Bandwidth in use: ${Math.round(ctx.access.bandwidthInUseKbps)}k / ${ctx.config.maxBandwidthKbps}k. Refused (server full): ${ctx.counters.refusedConnections}.</p>
${table(['#', 'File', 'IP', 'Proto', 'State', 'Time', 'Target kbit/s', 'Actual kbit/s', 'Bytes transferred', 'Dropped'], connRows, 'none')}
${srtRows.length > 0 ? `<h2>SRT connections</h2>\n${table(['File', 'IP', 'Packets lost', 'Retransmitted', 'Dropped (too late)', 'RTT ms', 'Encrypted'], srtRows, 'none')}\n` : ''}<p class="muted">Generated at ${escapeHtml(new Date(now).toString())}</p>`;
  return htmlPage('Feedcast status', body, { refreshSeconds: 10 });
}

/** In a cluster: where the feed comes from (this node, or relayed from its origin) and which nodes relay it. */
function clusterLine(ctx: ControlContext, feedKey: string): string {
  const cluster = ctx.cluster;
  if (cluster === undefined) return '';
  const key = feedKey.toLowerCase();
  const relay = cluster.relays.status().find((r) => r.feed.toLowerCase() === key);
  const record = cluster.registry.feeds().find((f) => f.feed.toLowerCase() === key);
  const relayedBy = cluster.registry
    .relays()
    .filter((r) => r.feed.toLowerCase() === key && r.from === cluster.node.name)
    .map((r) => `${escapeHtml(r.node)}${r.delayMs !== undefined && r.delayMs !== null ? ` (+${Math.round(r.delayMs)} ms)` : ''}`);
  let origin: string;
  if (relay !== undefined) {
    origin = `Origin: node ${escapeHtml(relay.from ?? '?')} (${escapeHtml(relay.url ?? '?')}), relayed here: ${escapeHtml(relay.state)}, ${relay.readers} reader(s), ${formatBytes(relay.bytes)}, ${relay.reconnects} reconnect(s)${relay.delayMs !== undefined ? `, +${Math.round(relay.delayMs)} ms` : ''}.`;
  } else if (record !== undefined) {
    origin = `Origin: node ${escapeHtml(record.node)}${record.node === cluster.node.name ? ' (this node)' : ''}.`;
  } else {
    origin = 'Origin: not published in the cluster.';
  }
  return `${origin} Relayed by: ${relayedBy.length > 0 ? relayedBy.join(', ') : 'no other node'}.<br>\n`;
}

/** In a cluster: this node, the registry's state, the nodes and every relay. */
function clusterSection(ctx: ControlContext): string {
  const cluster = ctx.cluster;
  if (cluster === undefined) return '';
  const up = cluster.registry.connected;
  const nodeRows = cluster.registry
    .nodes()
    .map(
      (n) =>
        `<tr><td>${escapeHtml(n.name)}${n.name === cluster.node.name ? ' (this node)' : ''}</td><td>${escapeHtml(n.url)}</td><td>${escapeHtml(n.startedAt)}</td></tr>`,
    );
  const relayRows = cluster.registry
    .relays()
    .map(
      (r) =>
        `<tr><td>${escapeHtml(r.feed)}</td><td>${escapeHtml(r.from)}</td><td>${escapeHtml(r.node)}</td><td>${formatBytes(r.bytes)}</td><td>${r.reconnects}</td><td>${r.delayMs !== undefined && r.delayMs !== null ? Math.round(r.delayMs) : '-'}</td></tr>`,
    );
  return `<h2>Cluster</h2>
<p>This node: ${escapeHtml(cluster.node.name)} (${escapeHtml(cluster.node.url)}). ${
    cluster.registryKind === 'workers'
      ? "Registry: the primary process of <code>Workers</code> (this section is this worker's own view)."
      : `Registry (Redis): ${up ? '<span class="ok">up</span>' : '<span class="warn">unreachable: serving this node\'s own feeds only</span>'}; lost ${cluster.registry.outages} time(s).`
  }</p>
${table(['Node', 'URL', 'Started'], nodeRows, 'none seen yet')}
${table(['Feed', 'From (origin)', 'To (relaying node)', 'Bytes', 'Reconnects', 'Delay ms'], relayRows, 'no relays')}
`;
}
