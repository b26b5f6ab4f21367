// Starts Feedcast in-process on a free loopback port from a config text, for integration tests.

import { request } from 'node:http';
import { createServer } from 'node:net';
import type { TestContext } from 'node:test';
import { parseConfigText, type ParseOptions, type ServerConfig } from '../../src/config/config.js';
import { createLogger, silentLogger, type Logger } from '../../src/observability/logger.js';
import { startServer, type RunningServer, type StartOptions } from '../../src/server.js';
import type { IngestBudgets } from '../../src/media/ingest-budgets.js';

export interface TestServer extends RunningServer {
  url(path: string): string;
}

/** `configText` is ffserver syntax; the HTTP port is replaced by a free one on 127.0.0.1. */
export async function startTestServer(
  t: TestContext,
  configText = '',
  options: { demoFeeds?: string[]; log?: Logger; ingestBudgets?: IngestBudgets; parse?: ParseOptions } = {},
): Promise<TestServer> {
  const config = onLoopback(await parseConfigText(configText, 'test.conf', options.parse));
  const log =
    options.log ??
    (process.env['FEEDCAST_TEST_LOG'] !== undefined
      ? createLogger({ format: 'pretty', write: (l) => process.stderr.write(l + '\n') })
      : silentLogger);
  const server = await startServer(config, {
    log,
    ...(options.demoFeeds !== undefined ? { demoFeeds: options.demoFeeds } : {}),
    ...(options.ingestBudgets !== undefined ? { ingestBudgets: options.ingestBudgets } : {}),
  });
  t.after(() => server.close());
  return { ...server, url: (path) => `http://127.0.0.1:${server.httpPort}${path}` };
}

/**
 * `config` with free ports only: HTTP on an ephemeral port of 127.0.0.1, RTMP on an ephemeral port,
 * RTSP off (tests that want it start their own listener on port 0).
 */
export function onLoopback(config: ServerConfig): ServerConfig {
  return {
    ...config,
    http: { port: 0, bindAddress: '127.0.0.1' },
    rtmp: { ...config.rtmp, port: 0 },
    rtsp: { ...config.rtsp, port: undefined },
  };
}

/** Feedcast from a config text, on free loopback ports (onLoopback), for child processes and scripts. */
export async function startLoopbackServer(configText: string, source: string, options: StartOptions): Promise<RunningServer> {
  return startServer(onLoopback(await parseConfigText(configText, source)), options);
}

/** Polls `condition` every 50 ms until it holds or `timeoutMs` passes (then throws `what`). */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** POSTs `body` with a Content-Length and returns the status and body of the answer. */
export function postBytes(url: string, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'Content-Length': String(body.length) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The server may answer and close before the whole body is sent (409, 415).
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    req.end(body);
  });
}

/**
 * `count` different TCP ports free on 127.0.0.1 right now: all are held open until each is known, so
 * the kernel cannot hand the same one out twice (calls of freePort() one after the other can).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const s = createServer().listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** A TCP port that is free on 127.0.0.1 right now, for servers started as child processes. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
