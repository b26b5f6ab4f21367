// /metrics in the Prometheus text format (prom-client): connections by protocol, bytes in and
// out per feed and output, publisher state, drops, timestamp repairs, plus Node's process and
// event-loop metrics. Values are read from the running server at scrape time.

import type { IncomingMessage, ServerResponse } from 'node:http';
// prom-client is loaded at the first scrape, not at start: a server nobody scrapes does not pay
// for it (its module graph, and collectDefaultMetrics' event-loop and GC observers).
import type * as PromClient from 'prom-client';
import type { Counter, Gauge, Registry } from 'prom-client';
import type { ConnectionInfo } from '../access/connections.js';
import type { HttpRoute } from '../protocols/http/route.js';
import type { SrtTotals } from '../protocols/srt/server.js';
import type { FeedRecordingsStatus } from '../record/recordings.js';
import type { ControlContext } from './control-context.js';
import type { HookStats } from './hooks.js';

type Labels = Record<string, string>;
type Sample = readonly [Labels, number];

/**
 * Registers one metric whose samples are read from the server at scrape time. Counters are
 * running totals kept by the server (prom-client counters only add, so each scrape resets and
 * adds the total).
 */
function scraped(
  prom: typeof PromClient,
  registry: Registry,
  type: 'counter' | 'gauge',
  name: string,
  help: string,
  labelNames: readonly string[],
  samples: () => Iterable<Sample>,
): void {
  const collect = (metric: Counter | Gauge): void => {
    metric.reset();
    for (const [labels, value] of samples()) metric.inc(labels, value);
  };
  const options = { name, help, labelNames: [...labelNames], registers: [registry] };
  if (type === 'counter')
    new prom.Counter({
      ...options,
      collect() {
        collect(this);
      },
    });
  else
    new prom.Gauge({
      ...options,
      collect() {
        collect(this);
      },
    });
}

/** Parts built beside the context whose figures /metrics also shows. */
export interface MetricsExtras {
  readonly hooks?: () => HookStats;
  /** libsrt's counters by feed and role (when the SRT listener is on). */
  readonly srt?: () => readonly SrtTotals[];
}

export async function createMetricsRegistry(ctx: ControlContext, extras: MetricsExtras = {}): Promise<Registry> {
  const prom = await import('prom-client');
  const registry = new prom.Registry();
  // prom-client's CPU counters count from their registration (the first scrape here): start them at
  // what the process used before, so they count from process start as Prometheus expects.
  const cpuBefore = process.cpuUsage();
  prom.collectDefaultMetrics({ register: registry, prefix: 'feedcast_' });
  const cpu = (name: string): Counter | undefined =>
    registry.getSingleMetric(`feedcast_process_cpu_${name}`) as Counter | undefined;
  cpu('user_seconds_total')?.inc(cpuBefore.user / 1e6);
  cpu('system_seconds_total')?.inc(cpuBefore.system / 1e6);
  cpu('seconds_total')?.inc((cpuBefore.user + cpuBefore.system) / 1e6);
  const metric = (
    type: 'counter' | 'gauge',
    name: string,
    help: string,
    labelNames: readonly string[],
    samples: () => Iterable<Sample>,
  ): void => scraped(prom, registry, type, name, help, labelNames, samples);
  const perFeed = (value: (feed: ReturnType<ControlContext['feeds']['all']>[number]) => number | undefined) =>
    function* (): Iterable<Sample> {
      for (const f of ctx.feeds.all()) {
        const v = value(f);
        if (v !== undefined) yield [{ feed: f.key }, v];
      }
    };
  const perOutput = (value: (output: ReturnType<ControlContext['outputs']['all']>[number]) => number) =>
    function* (): Iterable<Sample> {
      for (const o of ctx.outputs.all()) yield [{ output: o.id, feed: o.feed.key }, value(o)];
    };
  const perChild = (value: (child: { name: string; feed: string; running: boolean; restarts: number }) => number) =>
    function* (): Iterable<Sample> {
      for (const c of [...(ctx.children?.transcoders() ?? []), ...(ctx.children?.sources() ?? [])]) {
        yield [{ name: c.name, feed: c.feed }, value(c)];
      }
    };

  const hookStats = extras.hooks;
  if (hookStats !== undefined) {
    metric(
      'counter',
      'feedcast_hooks_total',
      'Lifecycle hooks finished, by result (succeeded, failed, dropped).',
      ['result'],
      () => {
        const s = hookStats();
        return [
          [{ result: 'succeeded' }, s.succeeded],
          [{ result: 'failed' }, s.failed],
          [{ result: 'dropped' }, s.dropped],
        ];
      },
    );
    metric('gauge', 'feedcast_hooks_pending', 'Lifecycle hooks running or queued.', ['state'], () => {
      const s = hookStats();
      return [
        [{ state: 'running' }, s.running],
        [{ state: 'queued' }, s.queued],
      ];
    });
  }
  const srtTotals = extras.srt;
  if (srtTotals !== undefined) {
    const perFeedRole = (value: (t: SrtTotals) => number) => (): Sample[] =>
      srtTotals().map((t): Sample => [{ feed: t.feed, role: t.role }, value(t)]);
    metric(
      'gauge',
      'feedcast_srt_connections',
      'Open SRT connections by feed and role (publisher, reader).',
      ['feed', 'role'],
      perFeedRole((t) => t.connections),
    );
    metric(
      'counter',
      'feedcast_srt_packets_lost_total',
      'SRT packets lost on the way (received by publishers, sent to readers), recovered or not.',
      ['feed', 'role'],
      perFeedRole((t) => t.packetsLost),
    );
    metric(
      'counter',
      'feedcast_srt_packets_retransmitted_total',
      'SRT packets sent again (by publishers, or to readers).',
      ['feed', 'role'],
      perFeedRole((t) => t.packetsRetransmitted),
    );
    metric(
      'counter',
      'feedcast_srt_packets_dropped_total',
      'SRT packets given up on: too late to recover within the latency.',
      ['feed', 'role'],
      perFeedRole((t) => t.packetsDropped),
    );
  }
  metric(
    'counter',
    'feedcast_webrtc_inbound_rejected_total',
    'Inbound WebRTC SRTP/SRTCP packets dropped before werift read them, by kind (srtp, srtcp) and reason (auth, replay, too-old, malformed).',
    ['kind', 'reason'],
    () =>
      Object.entries(ctx.counters.webrtcInboundRejected).flatMap(([kind, byReason]) =>
        Object.entries(byReason).map(([reason, count]): Sample => [{ kind, reason }, count]),
      ),
  );
  metric('gauge', 'feedcast_connections', 'Open connections by protocol and role.', ['protocol', 'role'], () =>
    ctx.connections.list().map((c): Sample => [{ protocol: c.protocol, role: c.role }, 1]),
  );
  metric(
    'counter',
    'feedcast_connections_refused_total',
    'Connections refused at accept time because of MaxClients or MaxHTTPConnections.',
    [],
    () => [[{}, ctx.counters.refusedConnections]],
  );
  metric(
    'gauge',
    'feedcast_feed_publisher_connected',
    '1 when the feed has a publisher.',
    ['feed'],
    perFeed((f) => (f.publisher !== undefined ? 1 : 0)),
  );
  metric(
    'gauge',
    'feedcast_feed_input_bits_per_second',
    'Input bit rate of the feed over the last seconds.',
    ['feed'],
    perFeed((f) => f.inputRate.bitsPerSecond()),
  );
  metric(
    'counter',
    'feedcast_feed_bytes_in_total',
    'Media bytes received for the feed (frame payloads).',
    ['feed'],
    perFeed((f) => f.stats.bytesIn),
  );
  metric(
    'counter',
    'feedcast_feed_frames_in_total',
    'Frames received for the feed.',
    ['feed'],
    perFeed((f) => f.stats.framesIn),
  );
  metric(
    'counter',
    'feedcast_feed_publishers_total',
    'Publisher sessions the feed has had.',
    ['feed'],
    perFeed((f) => f.stats.publishers),
  );
  metric(
    'counter',
    'feedcast_feed_timestamp_repairs_total',
    'Input timestamps repaired, by kind (non_monotonic, jump).',
    ['feed', 'kind'],
    () =>
      ctx.feeds.all().flatMap((f): Sample[] => [
        [{ feed: f.key, kind: 'non_monotonic' }, f.clockRepairs.nonMonotonic],
        [{ feed: f.key, kind: 'jump' }, f.clockRepairs.jumps],
      ]),
  );
  metric(
    'gauge',
    'feedcast_output_readers',
    'Readers of each muxed output (feed, format, variant).',
    ['output', 'feed'],
    perOutput((o) => o.readers),
  );
  metric(
    'counter',
    'feedcast_output_bytes_out_total',
    'Bytes written to readers of each output (current outputs only).',
    ['output', 'feed'],
    perOutput((o) => o.bytesServed),
  );
  metric(
    'counter',
    'feedcast_output_chunks_dropped_total',
    'Chunks skipped by readers that fell behind and jumped to the newest keyframe.',
    ['output', 'feed'],
    perOutput((o) => o.chunksDropped),
  );
  metric(
    'gauge',
    'feedcast_ffmpeg_running',
    '1 while the ffmpeg child (transcoder, Launch or pulled source) runs.',
    ['name', 'feed'],
    perChild((c) => (c.running ? 1 : 0)),
  );
  metric(
    'counter',
    'feedcast_ffmpeg_restarts_total',
    'Restarts of each ffmpeg child after it died.',
    ['name', 'feed'],
    perChild((c) => c.restarts),
  );
  metric(
    'counter',
    'feedcast_feedfile_bytes_written_total',
    'Bytes written to the feed file.',
    ['feed'],
    perFeed((f) => ctx.feedFiles.of(f)?.status.bytesWritten),
  );
  metric(
    'gauge',
    'feedcast_feedfile_seconds_held',
    'Seconds of media the feed file holds (its time-shift window).',
    ['feed'],
    perFeed((f) => ctx.feedFiles.of(f)?.status.durationSeconds),
  );
  metric(
    'counter',
    'feedcast_feedfile_frames_dropped_total',
    'Frames not recorded because the disk could not keep up (the file has a gap).',
    ['feed'],
    perFeed((f) => ctx.feedFiles.of(f)?.status.framesDropped),
  );
  const perRecording =
    (value: (s: FeedRecordingsStatus) => number): (() => Sample[]) =>
    () =>
      ctx.recordings.all().map((r) => [{ feed: r.feed.key }, value(r.status)] as const);
  metric(
    'gauge',
    'feedcast_recording_active',
    'Whether the feed is being recorded now (1) or not (0: waiting for a publisher, or stopped by an error).',
    ['feed'],
    perRecording((s) => (s.state === 'recording' ? 1 : 0)),
  );
  metric(
    'gauge',
    'feedcast_recording_failed',
    'Whether the recording is stopped by a write error (1; it is retried every 10 s) or not (0).',
    ['feed'],
    perRecording((s) => (s.state === 'failed' ? 1 : 0)),
  );
  metric(
    'counter',
    'feedcast_recording_bytes_written_total',
    'Bytes written to the recordings.',
    ['feed'],
    perRecording((s) => s.bytesWritten),
  );
  metric(
    'gauge',
    'feedcast_recording_bytes_held',
    'Bytes the recordings take on disk.',
    ['feed'],
    perRecording((s) => s.bytesHeld),
  );
  metric(
    'gauge',
    'feedcast_recording_files',
    'Recording files held.',
    ['feed'],
    perRecording((s) => s.files),
  );
  metric(
    'counter',
    'feedcast_recording_errors_total',
    'Recording write errors (each stops the recording until it is retried).',
    ['feed'],
    perRecording((s) => s.writeErrors),
  );
  metric(
    'counter',
    'feedcast_recording_frames_dropped_total',
    'Frames not recorded (disk too slow, or recording stopped by an error).',
    ['feed'],
    perRecording((s) => s.framesDropped),
  );
  metric(
    'counter',
    'feedcast_recording_retention_deleted_files_total',
    'Recording files deleted by RecordRetention.',
    ['feed'],
    perRecording((s) => s.retentionDeletedFiles),
  );
  metric(
    'counter',
    'feedcast_recording_retention_deleted_bytes_total',
    'Bytes of recordings deleted by RecordRetention.',
    ['feed'],
    perRecording((s) => s.retentionDeletedBytes),
  );
  const cluster = ctx.cluster;
  if (cluster !== undefined) {
    metric('gauge', 'feedcast_cluster_redis_up', '1 while the cluster registry (ClusterRedis) answers, else 0.', [], () => [
      [{}, cluster.registry.connected ? 1 : 0],
    ]);
    metric(
      'counter',
      'feedcast_cluster_redis_outages_total',
      'Times the connection to the cluster registry was lost (the node then serves its own feeds only).',
      [],
      () => [[{}, cluster.registry.outages]],
    );
    metric('counter', 'feedcast_relay_bytes_total', 'Bytes this node relayed from other nodes, per feed.', ['feed'], () =>
      cluster.relays.totals().map((t): Sample => [{ feed: t.feed }, t.bytes]),
    );
    metric(
      'counter',
      'feedcast_relay_reconnects_total',
      'Relay connections made again to an origin (it restarted, moved, or the network failed), per feed.',
      ['feed'],
      () => cluster.relays.totals().map((t): Sample => [{ feed: t.feed }, t.reconnects]),
    );
    metric(
      'gauge',
      'feedcast_relay_delay_seconds',
      "Delay a running relay adds (origin feed to this node's feed), per feed and origin node.",
      ['feed', 'from'],
      () =>
        cluster.relays
          .status()
          .flatMap((r): Sample[] => (r.delayMs !== undefined ? [[{ feed: r.feed, from: r.from ?? '' }, r.delayMs / 1000]] : [])),
    );
  }
  metric('gauge', 'feedcast_bandwidth_in_use_kbps', 'kbit/s promised to readers, counted against MaxBandwidth.', [], () => [
    [{}, ctx.access.bandwidthInUseKbps],
  ]);
  return registry;
}

export class MetricsRoute implements HttpRoute {
  private readonly ctx: ControlContext;
  /** Made at the first scrape (see the import above). */
  private registry: Promise<Registry> | undefined;
  private readonly extras: MetricsExtras;

  constructor(ctx: ControlContext, extras: MetricsExtras = {}) {
    this.ctx = ctx;
    this.extras = extras;
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, _url: URL, conn: ConnectionInfo): boolean {
    if (path !== 'metrics') return false;
    if (!this.ctx.config.statusAcl.allows(conn.remoteAddress)) {
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`Your address ${conn.remoteAddress} may not read /metrics (StatusACL).\n`);
      return true;
    }
    this.registry ??= createMetricsRegistry(this.ctx, this.extras);
    this.registry
      .then(async (registry) => [await registry.metrics(), registry.contentType] as const)
      .then(
        ([text, contentType]) => {
          res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-cache' });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => {
          this.ctx.log.error('metrics collection failed', { err });
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end('metrics collection failed; see the server log\n');
        },
      );
    return true;
  }
}
