// GET /api/v1/events: the lifecycle events as server-sent events, for dashboards (docs/api.md). Obeys StatusACL
// like the rest of the API's reads. `?feed=` and `?type=` filter; Last-Event-ID (or `?since=`) replays the
// newest events the server still holds. A client that stops reading is dropped, never buffered without bound.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo } from '../access/connections.js';
import type { ServerConfig } from '../config/config.js';
import { sameName } from '../config/names.js';
import type { HttpRoute } from '../protocols/http/route.js';
import { sendJson } from './api.js';
import type { LifecycleEvent, LifecycleEvents, LifecycleEventType } from './lifecycle-events.js';

const PATH = 'api/v1/events';
const KEEPALIVE_MS = 15_000;
/** Unsent bytes past which a dashboard that does not read is dropped. */
const MAX_BACKLOG_BYTES = 1024 * 1024;
const TYPES: readonly LifecycleEventType[] = ['publish', 'unpublish', 'read', 'read-end', 'read-refused', 'record-segment'];

export class EventsRoute implements HttpRoute {
  private readonly events: LifecycleEvents;
  private readonly config: () => ServerConfig;

  constructor(events: LifecycleEvents, config: () => ServerConfig) {
    this.events = events;
    this.config = config;
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL, conn: ConnectionInfo): boolean {
    if (path !== PATH) return false;
    if (!this.config().statusAcl.allows(conn.remoteAddress)) {
      sendJson(res, 403, { status: 403, error: `Your address ${conn.remoteAddress} may not use the API (StatusACL).` });
      return true;
    }
    if (req.method !== 'GET') {
      sendJson(res, 405, { status: 405, error: `${req.method ?? '?'} is not allowed on /${PATH}: use GET` }, { Allow: 'GET' });
      return true;
    }
    const filter = parseFilter(url);
    if (typeof filter === 'string') {
      sendJson(res, 400, { status: 400, error: filter });
      return true;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    const send = (event: LifecycleEvent): void => {
      if (!filter.matches(event)) return;
      if (res.writableLength > MAX_BACKLOG_BYTES) {
        res.destroy();
        return;
      }
      res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    };
    const lastId = Number(req.headers['last-event-id'] ?? url.searchParams.get('since') ?? NaN);
    if (Number.isSafeInteger(lastId) && lastId >= 0) for (const event of this.events.since(lastId)) send(event);
    const off = this.events.on('event', send);
    const keepalive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
    res.once('close', () => {
      off();
      clearInterval(keepalive);
    });
    return true;
  }
}

interface Filter {
  matches(event: LifecycleEvent): boolean;
}

function parseFilter(url: URL): Filter | string {
  const feed = url.searchParams.get('feed');
  const typeParam = url.searchParams.get('type');
  const types = typeParam !== null ? typeParam.split(',').map((t) => t.trim()) : undefined;
  const unknown = types?.filter((t) => !(TYPES as readonly string[]).includes(t));
  if (unknown !== undefined && unknown.length > 0) {
    return `unknown event type ${unknown.map((t) => JSON.stringify(t.slice(0, 40))).join(', ')}: use ${TYPES.join(', ')}`;
  }
  return {
    matches: (event) =>
      (feed === null || sameName(event.feed, feed) || sameName(event.name, feed)) &&
      (types === undefined || types.includes(event.type)),
  };
}
