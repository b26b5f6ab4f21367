// With `Workers N` (docs/cluster.md, "Workers"): GET /api/v1/feeds, /api/v1/connections, /api/v1/server,
// /metrics and /stat.html answer for the whole server, whichever worker the request lands on. The worker asks every worker
// (itself too) for its own part over their internal ports, with a short timeout, and merges the parts; a worker
// that does not answer is named as missing, never silently left out.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo } from '../access/connections.js';
import { FORWARD_HEADERS } from '../cluster/worker-messages.js';
import { findByName } from '../config/names.js';
import { detach } from '../observability/detach.js';
import { escapeHtml, htmlPage } from '../protocols/http/html.js';
import { sendHtml } from '../protocols/http/respond.js';
import type { HttpRoute } from '../protocols/http/route.js';
import { sendJson } from './api.js';
import type { ControlContext } from './control-context.js';
import type { ConnectionView, FeedView } from './snapshot.js';

/** A request with this header (and the workers' secret) asks one worker for its own part only. */
export const WORKER_VIEW_HEADER = 'x-feedcast-view';
/** A worker that has not answered in this time is reported missing. */
const GATHER_TIMEOUT_MS = 1500;

/** One worker of this machine and the internal URL it serves at (undefined: not registered now). */
export interface WorkerTarget {
  readonly index: number;
  readonly url: string | undefined;
}

export interface WorkerPart {
  readonly worker: number;
  readonly body: string;
  readonly contentType: string;
}

export interface MissingWorker {
  readonly worker: number;
  readonly reason: string;
}

/** Which workers the merged answer holds. */
export interface WorkersAnswered {
  readonly count: number;
  readonly answered: number[];
  readonly missing: MissingWorker[];
}

export interface WorkersViewOptions {
  /** The workers' shared secret: a part request carries it. */
  readonly secret: string;
  /** Every worker slot 1..N, with its internal URL when it is registered. */
  readonly targets: () => WorkerTarget[];
}

/** Asks every worker for its own answer to `path` (with query) as from `client`. */
export async function gatherParts(
  targets: readonly WorkerTarget[],
  pathAndQuery: string,
  headers: Record<string, string>,
  timeoutMs = GATHER_TIMEOUT_MS,
): Promise<{ parts: WorkerPart[]; missing: MissingWorker[] }> {
  const answers = await Promise.all(
    targets.map(async (target): Promise<WorkerPart | MissingWorker> => {
      if (target.url === undefined)
        return { worker: target.index, reason: 'not registered (starting, or started again after a crash)' };
      try {
        const res = await fetch(`${target.url}${pathAndQuery}`, { headers, signal: AbortSignal.timeout(timeoutMs) });
        const body = await res.text();
        if (res.status !== 200) return { worker: target.index, reason: `answered ${res.status}: ${body.slice(0, 200).trim()}` };
        return { worker: target.index, body, contentType: res.headers.get('content-type') ?? 'text/plain' };
      } catch (err) {
        const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
        return {
          worker: target.index,
          reason: timedOut
            ? `no answer within ${timeoutMs} ms`
            : `unreachable (${err instanceof Error ? err.message : String(err)})`,
        };
      }
    }),
  );
  return {
    parts: answers.filter((a): a is WorkerPart => 'body' in a),
    missing: answers.filter((a): a is MissingWorker => 'reason' in a),
  };
}

/** What one worker has of a feed. */
export interface FeedOnWorker {
  readonly readers: number;
  /** `relay`: this worker relays it from the origin worker; null: no publisher here. */
  readonly publisher: string | null;
  /** Whether this worker writes its ring (File) or its recordings (worker 1's). */
  readonly file: boolean;
  readonly recording: boolean;
}

type MergedFeed = FeedView & {
  /** The worker the feed is published on (null: nowhere now). */
  readonly worker: number | null;
  readonly onWorkers: Record<string, FeedOnWorker>;
};

/**
 * One entry per feed: the origin worker's view (where it is published), its readers summed over the workers,
 * its ring and recordings from the worker that writes them (worker 1). A worker that relays the feed from the
 * origin is one reader there, not counted: `readers` are viewers.
 */
export function mergeFeeds(parts: readonly { worker: number; feeds: readonly FeedView[] }[]): MergedFeed[] {
  const merged = new Map<string, { views: { worker: number; view: FeedView }[] }>();
  for (const part of parts) {
    for (const view of part.feeds) {
      const entry = merged.get(view.key) ?? { views: [] };
      entry.views.push({ worker: part.worker, view });
      merged.set(view.key, entry);
    }
  }
  return [...merged.values()].flatMap(({ views }) => {
    const origin = views.find((v) => v.view.publisher !== null && v.view.publisher.protocol !== 'relay');
    const base = origin ?? views[0];
    if (base === undefined) return [];
    const relays = views.filter((v) => v.view.publisher?.protocol === 'relay').length;
    const sum = views.reduce((total, v) => total + v.view.readers, 0);
    const onWorkers: Record<string, FeedOnWorker> = {};
    for (const { worker, view } of views) {
      onWorkers[worker] = {
        readers: view.readers,
        publisher: view.publisher?.protocol ?? null,
        file: view.file !== null,
        recording: view.recording !== null,
      };
    }
    return [
      {
        ...base.view,
        readers: origin !== undefined ? Math.max(0, sum - relays) : sum,
        file: views.find((v) => v.view.file !== null)?.view.file ?? null,
        recording: views.find((v) => v.view.recording !== null)?.view.recording ?? null,
        worker: origin?.worker ?? null,
        onWorkers,
      },
    ];
  });
}

/** Every worker's connections, each with its worker (ids are per worker: DELETE goes to that worker's URL). */
export function mergeConnections(
  parts: readonly { worker: number; connections: readonly ConnectionView[] }[],
): (ConnectionView & { worker: number })[] {
  return parts.flatMap((p) => p.connections.map((c) => ({ ...c, worker: p.worker })));
}

interface ServerView {
  connections: number;
  bandwidthInUseKbps: number;
  refusedConnections: number;
  memory: { rssBytes: number };
  [field: string]: unknown;
}

/** This worker's server view with the counts summed over the workers. */
export function mergeServer(self: ServerView, parts: readonly { worker: number; server: ServerView }[]): ServerView {
  const sum = (read: (s: ServerView) => number): number => parts.reduce((total, p) => total + read(p.server), 0);
  return {
    ...self,
    connections: sum((s) => s.connections),
    bandwidthInUseKbps: sum((s) => s.bandwidthInUseKbps),
    refusedConnections: sum((s) => s.refusedConnections),
    memory: { rssBytes: sum((s) => s.memory.rssBytes) },
  };
}

/** One metric family of the text format: its HELP and TYPE lines and its samples, in order. */
interface Family {
  readonly comments: string[];
  readonly samples: string[];
}

const SAMPLE_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/** `name{a="b"} 1` -> `name{worker="2",a="b"} 1`; `name 1` -> `name{worker="2"} 1`. */
export function withWorkerLabel(sample: string, worker: number): string {
  const name = SAMPLE_NAME.exec(sample)?.[0];
  if (name === undefined) return sample;
  const rest = sample.slice(name.length);
  const label = `worker="${worker}"`;
  if (rest.startsWith('{}')) return `${name}{${label}}${rest.slice(2)}`;
  if (rest.startsWith('{')) return `${name}{${label},${rest.slice(1)}`;
  return `${name}{${label}}${rest}`;
}

function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) (\S+)/.exec(line);
    if (comment !== null) {
      const name = comment[2] as string;
      current = out.get(name);
      if (current === undefined) {
        current = { comments: [], samples: [] };
        out.set(name, current);
      }
      current.comments.push(line);
      continue;
    }
    if (line.startsWith('#')) continue;
    if (current === undefined) {
      // A sample with no HELP/TYPE: a family of its own.
      const name = SAMPLE_NAME.exec(line)?.[0] ?? line;
      current = { comments: [], samples: [] };
      out.set(name, current);
    }
    current.samples.push(line);
  }
  return out;
}

/**
 * Every worker's /metrics in one exposition: each series gets a `worker` label (a worker started again
 * restarts its own counters, which Prometheus's rate() handles per series; a sum would go backwards), the
 * families kept whole, and `feedcast_worker_up{worker}` says which workers answered (0: its series are missing).
 */
export function mergeMetrics(parts: readonly { worker: number; text: string }[], missing: readonly MissingWorker[]): string {
  const merged = new Map<string, Family>();
  for (const part of [...parts].sort((a, b) => a.worker - b.worker)) {
    for (const [name, family] of families(part.text)) {
      let into = merged.get(name);
      if (into === undefined) {
        into = { comments: family.comments, samples: [] };
        merged.set(name, into);
      }
      for (const sample of family.samples) into.samples.push(withWorkerLabel(sample, part.worker));
    }
  }
  const lines: string[] = [];
  for (const family of merged.values()) lines.push(...family.comments, ...family.samples);
  lines.push(
    '# HELP feedcast_worker_up Whether worker K answered this scrape (Workers N): 0 means its series are missing from it.',
    '# TYPE feedcast_worker_up gauge',
    ...[...parts.map((p) => [p.worker, 1] as const), ...missing.map((m) => [m.worker, 0] as const)]
      .sort((a, b) => a[0] - b[0])
      .map(([worker, up]) => `feedcast_worker_up{worker="${worker}"} ${up}`),
  );
  return lines.join('\n') + '\n';
}

/**
 * /stat.html for the whole server: each worker's own page, one section per worker (its feeds, outputs,
 * children and connections are its own), after a line naming the workers that did not answer.
 */
export function mergeStatusPages(parts: readonly { worker: number; html: string }[], workers: WorkersAnswered): string {
  const sections = [...parts]
    .sort((a, b) => a.worker - b.worker)
    .map((p) => {
      const body = /<body>([\s\S]*)<\/body>/.exec(p.html)?.[1] ?? '';
      // Each worker's page starts with its own title: a section heading here.
      return `<section id="worker-${p.worker}">\n${body.replace('<h1>Feedcast status</h1>', `<h1>Worker ${p.worker}</h1>`)}\n</section>`;
    });
  const missing =
    workers.missing.length > 0
      ? `<p class="warn">Missing from this page: ${workers.missing.map((m) => `worker ${m.worker} (${escapeHtml(m.reason)})`).join('; ')}.</p>`
      : '';
  return htmlPage(
    'Feedcast status',
    `<h1>Feedcast status: ${workers.count} workers</h1>\n<p class="muted">One section per worker (<code>Workers ${workers.count}</code>): ${workers.answered
      .map((w) => `<a href="#worker-${w}">worker ${w}</a>`)
      .join(' · ')}.</p>\n${missing}\n${sections.join('\n')}`,
    { refreshSeconds: 10 },
  );
}

type ViewKind = 'feeds' | 'connections' | 'server' | 'metrics' | 'status';

const VIEW_PATHS: Record<string, ViewKind> = {
  'api/v1/feeds': 'feeds',
  'api/v1/connections': 'connections',
  'api/v1/server': 'server',
  metrics: 'metrics',
  'stat.html': 'status',
};

/** Answers the whole server's view; a part request (the header and the secret) goes on to this worker's own routes. */
export class WorkersViewRoute implements HttpRoute {
  private readonly ctx: ControlContext;
  private readonly options: WorkersViewOptions;

  constructor(ctx: ControlContext, options: WorkersViewOptions) {
    this.ctx = ctx;
    this.options = options;
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL, conn: ConnectionInfo): boolean {
    const kind = VIEW_PATHS[path];
    const method = req.method ?? 'GET';
    if (kind === undefined || (method !== 'GET' && method !== 'HEAD')) return false;
    if (this.isPartRequest(req)) return false;
    // ffserver's `<Stream stat.html>` (Format status) has its own ACL: served per worker, by its route.
    if (kind === 'status' && findByName(this.ctx.config.streams, path) !== undefined) return false;
    // Refused as usual by the worker's own route (StatusACL).
    if (!this.ctx.config.statusAcl.allows(conn.remoteAddress)) return false;
    const answered = this.answer(kind, path + url.search, res, conn.remoteAddress).catch((err: unknown) => {
      this.ctx.log.error('workers: summed view failed', { path, err });
      if (!res.headersSent) sendJson(res, 500, { status: 500, error: 'Internal error; the server log has the details.' });
      else res.destroy();
    });
    detach(answered, this.ctx.log, 'workers: summed view', { path });
    return true;
  }

  private isPartRequest(req: IncomingMessage): boolean {
    return req.headers[WORKER_VIEW_HEADER] === 'worker' && req.headers[FORWARD_HEADERS.secret] === this.options.secret;
  }

  private async answer(kind: ViewKind, pathAndQuery: string, res: ServerResponse, client: string): Promise<void> {
    const targets = this.options.targets();
    const { parts, missing } = await gatherParts(targets, `/${pathAndQuery}`, {
      [WORKER_VIEW_HEADER]: 'worker',
      [FORWARD_HEADERS.secret]: this.options.secret,
      [FORWARD_HEADERS.client]: client,
    });
    if (res.destroyed) return;
    if (missing.length > 0) this.ctx.log.debug('workers: summed view without some workers', { missing });
    const workers: WorkersAnswered = {
      count: targets.length,
      answered: parts.map((p) => p.worker).sort((a, b) => a - b),
      missing,
    };
    if (kind === 'status') {
      sendHtml(
        res,
        200,
        mergeStatusPages(
          parts.map((p) => ({ worker: p.worker, html: p.body })),
          workers,
        ),
      );
      return;
    }
    if (kind === 'metrics') {
      const text = mergeMetrics(
        parts.map((p) => ({ worker: p.worker, text: p.body })),
        missing,
      );
      res.writeHead(200, {
        'Content-Type': parts[0]?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8',
        'Cache-Control': 'no-cache',
      });
      res.end(res.req.method === 'HEAD' ? undefined : text);
      return;
    }
    const json = parts.map((p) => ({ worker: p.worker, body: JSON.parse(p.body) as Record<string, unknown> }));
    if (kind === 'feeds') {
      const feeds = mergeFeeds(json.map((p) => ({ worker: p.worker, feeds: (p.body['feeds'] ?? []) as FeedView[] })));
      sendJson(res, 200, { feeds, workers });
    } else if (kind === 'connections') {
      const connections = mergeConnections(
        json.map((p) => ({ worker: p.worker, connections: (p.body['connections'] ?? []) as ConnectionView[] })),
      );
      sendJson(res, 200, { connections, workers });
    } else {
      const views = json.map((p) => ({ worker: p.worker, server: p.body as unknown as ServerView }));
      const self = views[0]?.server;
      if (self === undefined) {
        sendJson(res, 503, { status: 503, error: 'No worker answered; try again.', workers });
        return;
      }
      sendJson(res, 200, { ...mergeServer(self, views), workers });
    }
  }
}
