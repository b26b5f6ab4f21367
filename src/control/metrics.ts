// /metrics in the Prometheus text format (prom-client): connections by protocol, bytes in and
// out per feed and output, publisher state, drops, timestamp repairs, plus Node's process and
// event-loop metrics. Values are read from the running server at scrape time.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConnectionInfo } from './connections.js';
import type { HttpRoute } from '../protocols/http/route.js';
import { feedFileOf } from '../feedfile/registry.js';
import type { ServerContext } from '../server-context.js';

/** Sets a counter to an absolute running total (prom-client counters only add). */
function setTotal(counter: Counter, labels: Record<string, string>, total: number): void {
  counter.inc(labels, total);
}

export function createMetricsRegistry(ctx: ServerContext): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'feedcast_' });

  new Gauge({
    name: 'feedcast_connections',
    help: 'Open connections by protocol and role.',
    labelNames: ['protocol', 'role'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of ctx.connections.list()) this.inc({ protocol: c.protocol, role: c.role });
    },
  });
  new Counter({
    name: 'feedcast_connections_refused_total',
    help: 'Connections refused at accept time because of MaxClients or MaxHTTPConnections.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(ctx.counters.refusedConnections);
    },
  });
  new Gauge({
    name: 'feedcast_feed_publisher_connected',
    help: '1 when the feed has a publisher.',
    labelNames: ['feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const f of ctx.feeds.all()) this.set({ feed: f.key }, f.publisher !== undefined ? 1 : 0);
    },
  });
  new Gauge({
    name: 'feedcast_feed_input_bits_per_second',
    help: 'Input bit rate of the feed over the last seconds.',
    labelNames: ['feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const f of ctx.feeds.all()) this.set({ feed: f.key }, f.inputRate.bitsPerSecond());
    },
  });
  new Counter({
    name: 'feedcast_feed_bytes_in_total',
    help: 'Media bytes received for the feed (frame payloads).',
    labelNames: ['feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const f of ctx.feeds.all()) setTotal(this, { feed: f.key }, f.stats.bytesIn);
    },
  });
  new Counter({
    name: 'feedcast_feed_frames_in_total',
    help: 'Frames received for the feed.',
    labelNames: ['feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const f of ctx.feeds.all()) setTotal(this, { feed: f.key }, f.stats.framesIn);
    },
  });
  new Counter({
    name: 'feedcast_feed_publishers_total',
    help: 'Publisher sessions the feed has had.',
    labelNames: ['feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const f of ctx.feeds.all()) setTotal(this, { feed: f.key }, f.stats.publishers);
    },
  });
  new Counter({
    name: 'feedcast_feed_timestamp_repairs_total',
    help: 'Input timestamps repaired, by kind (non_monotonic, jump).',
    labelNames: ['feed', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const f of ctx.feeds.all()) {
        setTotal(this, { feed: f.key, kind: 'non_monotonic' }, f.clockRepairs.nonMonotonic);
        setTotal(this, { feed: f.key, kind: 'jump' }, f.clockRepairs.jumps);
      }
    },
  });
  new Gauge({
    name: 'feedcast_output_readers',
    help: 'Readers of each muxed output (feed, format, variant).',
    labelNames: ['output', 'feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const o of ctx.outputs.all()) this.set({ output: o.id, feed: o.feed.key }, o.readers);
    },
  });
  new Counter({
    name: 'feedcast_output_bytes_out_total',
    help: 'Bytes written to readers of each output (current outputs only).',
    labelNames: ['output', 'feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const o of ctx.outputs.all()) setTotal(this, { output: o.id, feed: o.feed.key }, o.bytesServed);
    },
  });
  new Counter({
    name: 'feedcast_output_chunks_dropped_total',
    help: 'Chunks skipped by readers that fell behind and jumped to the newest keyframe.',
    labelNames: ['output', 'feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const o of ctx.outputs.all()) setTotal(this, { output: o.id, feed: o.feed.key }, o.chunksDropped);
    },
  });
  new Gauge({
    name: 'feedcast_ffmpeg_running',
    help: '1 while the ffmpeg child (transcoder, Launch or pulled source) runs.',
    labelNames: ['name', 'feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of [...(ctx.children?.transcoders() ?? []), ...(ctx.children?.sources() ?? [])]) {
        this.set({ name: c.name, feed: c.feed }, c.running ? 1 : 0);
      }
    },
  });
  new Counter({
    name: 'feedcast_ffmpeg_restarts_total',
    help: 'Restarts of each ffmpeg child after it died.',
    labelNames: ['name', 'feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of [...(ctx.children?.transcoders() ?? []), ...(ctx.children?.sources() ?? [])]) {
        setTotal(this, { name: c.name, feed: c.feed }, c.restarts);
      }
    },
  });
  new Counter({
    name: 'feedcast_feedfile_bytes_written_total',
    help: 'Bytes written to the feed file.',
    labelNames: ['feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const f of ctx.feeds.all()) {
        const status = feedFileOf(f)?.status;
        if (status !== undefined) setTotal(this, { feed: f.key }, status.bytesWritten);
      }
    },
  });
  new Gauge({
    name: 'feedcast_feedfile_seconds_held',
    help: 'Seconds of media the feed file holds (its time-shift window).',
    labelNames: ['feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const f of ctx.feeds.all()) {
        const status = feedFileOf(f)?.status;
        if (status !== undefined) this.set({ feed: f.key }, status.durationSeconds);
      }
    },
  });
  new Counter({
    name: 'feedcast_feedfile_frames_dropped_total',
    help: 'Frames not recorded because the disk could not keep up (the file has a gap).',
    labelNames: ['feed'],
    registers: [registry],
    collect() {
      this.reset();
      for (const f of ctx.feeds.all()) {
        const status = feedFileOf(f)?.status;
        if (status !== undefined) setTotal(this, { feed: f.key }, status.framesDropped);
      }
    },
  });
  new Gauge({
    name: 'feedcast_bandwidth_in_use_kbps',
    help: 'kbit/s promised to readers, counted against MaxBandwidth.',
    registers: [registry],
    collect() {
      this.set(ctx.bandwidthInUseKbps);
    },
  });
  return registry;
}

export class MetricsRoute implements HttpRoute {
  private readonly ctx: ServerContext;
  private readonly registry: Registry;

  constructor(ctx: ServerContext) {
    this.ctx = ctx;
    this.registry = createMetricsRegistry(ctx);
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, _url: URL, conn: ConnectionInfo): boolean {
    if (path !== 'metrics') return false;
    if (!this.ctx.config.statusAcl.allows(conn.remoteAddress)) {
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`Your address ${conn.remoteAddress} may not read /metrics (StatusACL).\n`);
      return true;
    }
    this.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': this.registry.contentType, 'Cache-Control': 'no-cache' });
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
