// The JSON API under /api/v1 (docs/api.md): feeds, streams, connections (with kick), config,
// server info, health, reload. Reads obey StatusACL; control endpoints need ControlUser.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo } from '../access/connections.js';
import { sameSecret } from '../access/secrets.js';
import { connectionView, feedView, outputView } from './snapshot.js';
import type { ServerConfig, StreamConfig } from '../config/config.js';
import type { HttpRoute } from '../protocols/http/route.js';
import type { ControlContext } from './control-context.js';
import { findByName } from '../config/names.js';
import { recordingsListing } from './snapshot.js';

const PREFIX = 'api/v1';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    'Cache-Control': 'no-cache',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { status, error: message }, headers);
}

/** Compares HTTP Basic credentials in constant time. */
export function basicAuthMatches(header: string | undefined, user: string, password: string): boolean {
  if (header === undefined || !header.startsWith('Basic ')) return false;
  return sameSecret(Buffer.from(header.slice(6).trim(), 'base64').toString('utf8'), `${user}:${password}`);
}

function streamView(s: StreamConfig) {
  return {
    name: s.name,
    url: `/${s.name}`,
    feed: s.feed ?? null,
    file: s.file ?? null,
    format: s.format.name,
    support: s.format.support,
    needsTranscode: s.needsTranscode,
    bandwidthKbps: s.bandwidthKbps,
    noAudio: s.noAudio,
    noVideo: s.noVideo,
    maxTimeSeconds: s.maxTimeSeconds,
    metadata: s.metadata,
    acl: s.acl.describe(),
    where: s.where,
  };
}

/** The config in force, as JSON: ACLs described, the ControlUser password never shown. */
export function configView(config: ServerConfig) {
  return {
    source: config.source,
    http: config.http,
    rtsp: config.rtsp,
    rtmp: config.rtmp,
    maxHttpConnections: config.maxHttpConnections,
    maxClients: config.maxClients,
    maxBandwidthKbps: config.maxBandwidthKbps,
    customLog: config.customLog ?? null,
    publisherTimeoutMs: config.publisherTimeoutMs,
    publisherGraceMs: config.publisherGraceMs,
    dynamicFeeds: config.dynamicFeeds,
    readerMaxQueueBytes: config.readerMaxQueueBytes,
    readerMaxLagMs: config.readerMaxLagMs,
    statusAcl: config.statusAcl.describe(),
    controlUser: config.control?.user ?? null,
    feeds: config.feeds.map((f) => ({
      name: f.name,
      key: f.key,
      file: f.file ?? null,
      fileMaxSizeBytes: f.fileMaxSizeBytes,
      readOnly: f.readOnly,
      truncate: f.truncate,
      launch: f.launch ?? null,
      publishSecret: f.publishSecret !== undefined ? '(set)' : null,
      acl: f.acl.describe(),
      where: f.where,
    })),
    streams: config.streams.map(streamView),
    redirects: config.redirects,
    warnings: config.warnings,
  };
}

export class ApiRoute implements HttpRoute {
  private readonly ctx: ControlContext;

  constructor(ctx: ControlContext) {
    this.ctx = ctx;
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string, _url: URL, conn: ConnectionInfo): boolean {
    if (path !== PREFIX && !path.startsWith(PREFIX + '/')) return false;
    const parts = path
      .slice(PREFIX.length)
      .split('/')
      .filter((p) => p !== '');
    const method = req.method ?? 'GET';
    // Health is for load balancers, which may sit outside StatusACL.
    if (parts[0] === 'health') {
      sendJson(res, 200, { status: 'ok', uptimeSeconds: this.uptimeSeconds(), feeds: this.ctx.feeds.all().length });
      return true;
    }
    if (!this.ctx.config.statusAcl.allows(conn.remoteAddress)) {
      sendError(res, 403, `Your address ${conn.remoteAddress} may not use the API (StatusACL).`);
      return true;
    }
    // Credentials before anything else: a request that changes something learns nothing (not even
    // whether its target exists) until it has them.
    if (method !== 'GET' && method !== 'HEAD' && !this.authorised(req, res, conn.remoteAddress)) return true;
    try {
      this.dispatch(req, res, method, parts);
    } catch (err) {
      this.ctx.log.error('API request failed', { path, err });
      sendError(res, 500, 'Internal error; the server log has the details.');
    }
    return true;
  }

  private uptimeSeconds(): number {
    return Math.round((Date.now() - this.ctx.startedAt.getTime()) / 1000);
  }

  private dispatch(req: IncomingMessage, res: ServerResponse, method: string, parts: string[]): void {
    const ctx = this.ctx;
    const [resource, id, ...rest] = parts;
    const read = method === 'GET' || method === 'HEAD';
    if (rest.length > 0) return sendError(res, 404, `No such API resource: /${PREFIX}/${parts.join('/')}.`);
    switch (resource) {
      case undefined:
        if (!read) return this.notAllowed(res, 'GET');
        return sendJson(res, 200, {
          endpoints: [
            'GET /api/v1/health',
            'GET /api/v1/server',
            'GET /api/v1/feeds',
            'GET /api/v1/feeds/KEY',
            'GET /api/v1/streams',
            'GET /api/v1/streams/NAME',
            'GET /api/v1/outputs',
            'GET /api/v1/transcoders',
            'GET /api/v1/recordings',
            'GET /api/v1/recordings/FEED',
            'GET /api/v1/connections',
            'DELETE /api/v1/connections/ID (ControlUser)',
            'GET /api/v1/cluster',
            'GET /api/v1/config',
            'POST /api/v1/reload (ControlUser)',
            'GET /api/v1/events (server-sent events: publish, unpublish, read, read-end, read-refused, record-segment)',
          ],
        });
      case 'server':
        if (!read || id !== undefined) return this.notAllowedOrMissing(res, read, parts);
        return sendJson(res, 200, {
          name: 'feedcast',
          version: ctx.version,
          startedAt: ctx.startedAt.toISOString(),
          uptimeSeconds: this.uptimeSeconds(),
          node: process.version,
          configSource: ctx.config.source,
          listeners: { http: ctx.config.http },
          connections: ctx.connections.size,
          maxClients: ctx.config.maxClients,
          bandwidthInUseKbps: Math.round(ctx.access.bandwidthInUseKbps),
          maxBandwidthKbps: ctx.config.maxBandwidthKbps,
          refusedConnections: ctx.counters.refusedConnections,
          memory: { rssBytes: process.memoryUsage().rss },
        });
      case 'feeds': {
        if (!read) return this.notAllowed(res, 'GET');
        if (id === undefined) return sendJson(res, 200, { feeds: ctx.feeds.all().map((f) => feedView(ctx, f)) });
        const feed = ctx.feeds.get(id);
        if (feed === undefined) return sendError(res, 404, `No feed "${id}". GET /api/v1/feeds lists them.`);
        return sendJson(res, 200, {
          ...feedView(ctx, feed),
          outputs: ctx.outputs
            .all()
            .filter((o) => o.feed === feed)
            .map(outputView),
        });
      }
      case 'streams': {
        if (!read) return this.notAllowed(res, 'GET');
        if (id === undefined) return sendJson(res, 200, { streams: ctx.config.streams.map(streamView) });
        const stream = findByName(ctx.config.streams, id);
        if (stream === undefined) return sendError(res, 404, `No stream "${id}". GET /api/v1/streams lists them.`);
        return sendJson(res, 200, streamView(stream));
      }
      case 'outputs':
        if (!read || id !== undefined) return this.notAllowedOrMissing(res, read, parts);
        return sendJson(res, 200, { outputs: ctx.outputs.all().map(outputView) });
      case 'connections': {
        if (id === undefined) {
          if (!read) return this.notAllowed(res, 'GET');
          return sendJson(res, 200, { connections: ctx.connections.list().map((c) => connectionView(c)) });
        }
        const conn = /^\d+$/.test(id) ? ctx.connections.get(Number(id)) : undefined;
        if (conn === undefined) return sendError(res, 404, `No connection ${id}. GET /api/v1/connections lists them.`);
        if (read) return sendJson(res, 200, connectionView(conn));
        if (method !== 'DELETE') return this.notAllowed(res, 'GET, DELETE');
        if (conn.kick === undefined)
          return sendError(res, 409, `Connection ${id} cannot be closed from the API (it has no stream yet).`);
        ctx.log.info('connection kicked via API', { id: conn.id, from: conn.remoteAddress, target: conn.target });
        conn.kick('closed by an operator (API)');
        return sendJson(res, 200, { closed: conn.id });
      }
      case 'transcoders':
        if (!read || id !== undefined) return this.notAllowedOrMissing(res, read, parts);
        return sendJson(res, 200, {
          transcoders: ctx.children?.transcoders() ?? [],
          sources: ctx.children?.sources() ?? [],
        });
      case 'recordings': {
        if (!read) return this.notAllowed(res, 'GET');
        if (id === undefined) return sendJson(res, 200, { recordings: ctx.recordings.all().map((r) => r.status) });
        const feed = ctx.feeds.get(id);
        if (feed === undefined) return sendError(res, 404, `No feed "${id}". GET /api/v1/feeds lists them.`);
        return sendJson(res, 200, recordingsListing(ctx, feed));
      }
      case 'cluster': {
        if (!read || id !== undefined) return this.notAllowedOrMissing(res, read, parts);
        const cluster = ctx.cluster;
        if (cluster === undefined) {
          return sendError(res, 404, 'This node is not part of a cluster: set ClusterRedis in the config (docs/cluster.md).');
        }
        cluster.status().then(
          (status) => sendJson(res, 200, status),
          (err: unknown) => {
            ctx.log.error('API request failed', { path: 'cluster', err });
            sendError(res, 500, 'Internal error; the server log has the details.');
          },
        );
        return;
      }
      case 'config':
        if (!read || id !== undefined) return this.notAllowedOrMissing(res, read, parts);
        return sendJson(res, 200, configView(ctx.config));
      case 'reload':
        if (id !== undefined) return sendError(res, 404, `No such API resource: /${PREFIX}/${parts.join('/')}.`);
        if (method !== 'POST') return this.notAllowed(res, 'POST');
        this.reload(res);
        return;
      default:
        return sendError(res, 404, `No such API resource: /${PREFIX}/${parts.join('/')}. GET /api/v1 lists them.`);
    }
  }

  private reload(res: ServerResponse): void {
    const reload = this.ctx.reload;
    if (reload === undefined) {
      sendError(res, 409, 'This server was started without a config file (the built-in demo); there is nothing to reload.');
      return;
    }
    reload().then(
      (summary) => sendJson(res, 200, summary),
      (err: unknown) =>
        sendError(
          res,
          400,
          `The new config was rejected; the running one stays. ${err instanceof Error ? err.message : String(err)}`,
        ),
    );
  }

  /** ControlUser (HTTP Basic), with failed logins throttled per address (429 + Retry-After). */
  private authorised(req: IncomingMessage, res: ServerResponse, address: string): boolean {
    const control = this.ctx.config.control;
    if (control === undefined) {
      sendError(res, 403, 'Control endpoints are off: set ControlUser NAME PASSWORD in the config to enable them.');
      return false;
    }
    const logins = this.ctx.access.controlLogins;
    const wait = logins.retryAfterSeconds(address);
    if (wait !== undefined) {
      sendError(res, 429, `Too many failed logins from your address: try again in ${wait} s.`, { 'Retry-After': String(wait) });
      return false;
    }
    if (!basicAuthMatches(req.headers.authorization, control.user, control.password)) {
      const blocked = req.headers.authorization !== undefined ? logins.failed(address) : 0;
      if (blocked > 0) {
        this.ctx.log.warn('control login failed: address shut out', { from: address, seconds: blocked });
        sendError(res, 429, `Too many failed logins from your address: try again in ${blocked} s.`, {
          'Retry-After': String(blocked),
        });
        return false;
      }
      sendError(res, 401, 'This endpoint needs the ControlUser credentials (HTTP Basic).', {
        'WWW-Authenticate': 'Basic realm="feedcast control", charset="UTF-8"',
      });
      return false;
    }
    logins.succeeded(address);
    return true;
  }

  private notAllowed(res: ServerResponse, allow: string): void {
    sendError(res, 405, `This endpoint accepts ${allow}.`, { Allow: allow });
  }

  private notAllowedOrMissing(res: ServerResponse, read: boolean, parts: string[]): void {
    if (!read) return this.notAllowed(res, 'GET');
    sendError(res, 404, `No such API resource: /${PREFIX}/${parts.join('/')}.`);
  }
}
