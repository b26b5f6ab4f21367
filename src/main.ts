// Entry point: parses the command line, loads the config, starts the server, handles signals.

import { defaultConfig, loadConfigFile, type ServerConfig } from './config/config.js';
import { describeConfig, portSetting } from './config/summary.js';
import { runTokenCommand } from './access/token-cli.js';
import { FeedcastError } from './errors.js';
import { runFeedfileCommand } from './feedfile/cli.js';
import { runRecordingsCommand } from './record/cli.js';
import { detach, installRejectionGuard } from './observability/detach.js';
import { watchLoopStallsFromEnv } from './observability/loop-stall.js';
import { createLogger, type Logger } from './observability/logger.js';
import { runPublishCommand } from './publish/cli.js';
import { startServer } from './server.js';
import { VERSION } from './version.js';
import { nativeFanoutStatus } from './streams/native-fanout.js';
import { describeYoungGeneration } from './observability/young-generation.js';
import { WORKER_ENV } from './cluster/worker-messages.js';
import type { WorkerIdentity } from './cluster/worker-node.js';

const HELP = `Feedcast: a live streaming media server (the successor of ffserver).

Usage:
  feedcast                     start the built-in demo: HTTP on 8090, a live test feed "demo"
                               (watch: ffplay http://127.0.0.1:8090/demo.flv)
  feedcast -f server.conf      start from a config file in ffserver's syntax
  feedcast check server.conf   validate a config and print what it would serve
  feedcast feedfile dump FILE  print a feed file's header, time range and block statistics
  feedcast feedfile export FILE [--from T] [--to T] OUT.ts
                               write a recorded time range as an MPEG-TS file
  feedcast recordings list http://HOST:8090/FEED
                               what a running server holds of FEED's past (spans, gaps, files)
  feedcast recordings export http://HOST:8090/FEED --from T [--to T] OUT.mp4
                               a recorded time range as one MP4 (T: ISO 8601, Unix time, -5m)
  feedcast publish INPUT... http://HOST:8090/feed1.ffm
                               encode INPUT as the feed's streams need (asks the server) and
                               push it; feedcast publish --help for the options
  feedcast token FEED --key KEY [--ttl 3600] [--url URL]
                               a signed read URL (?token=...&expires=...) for ReadTokenKey KEY;
                               feedcast token --jwt --key KEY --feeds a,b: an HS256 JWT
                               (feedcast token --help for the options)
  feedcast --version           print the version
  feedcast --help              this text

Publish:  ffmpeg -re -i INPUT -c copy -f mpegts http://HOST:8090/feed1.ffm   (or -f flv)
Watch:    http://HOST:8090/feed1.flv (HTTP-FLV), http://HOST:8090/feed1.ts (MPEG-TS)
Pages:    http://HOST:8090/ (feeds and streams), /stat.html (status)

Environment: FEEDCAST_HTTP_PORT, FEEDCAST_RTMP_PORT, FEEDCAST_RTSP_PORT, FEEDCAST_SRT_PORT (override
the config's ports; 0 turns RTMP/RTSP/SRT off), FEEDCAST_LOG_LEVEL=debug|info|warn|error, FEEDCAST_LOG_FORMAT=json|pretty.
Docs: README.md and docs/config.md.
`;

async function main(argv: readonly string[]): Promise<number> {
  const log = createLogger();
  const [first, second] = argv;
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (first === '--version' || first === '-v' || first === '-version') {
    process.stdout.write(`feedcast ${VERSION}\n`);
    return 0;
  }
  if (first === 'check') {
    if (second === undefined) {
      process.stderr.write('feedcast check: name the config file, e.g. feedcast check /etc/feedcast.conf\n');
      return 2;
    }
    const config = await loadConfigFile(second);
    process.stdout.write(describeConfig(config) + '\n');
    return 0;
  }

  if (first === 'feedfile') return runFeedfileCommand(argv.slice(1));
  if (first === 'recordings') return runRecordingsCommand(argv.slice(1));
  if (first === 'publish') return runPublishCommand(argv.slice(1));
  if (first === 'token') return runTokenCommand(argv.slice(1));

  let config: ServerConfig;
  let configPath: string | undefined;
  let demoFeeds: string[] = [];
  if (first === '-f' || first === '--config') {
    if (second === undefined) {
      process.stderr.write(`feedcast: ${first} needs a config file name\n`);
      return 2;
    }
    config = await loadConfigFile(second);
    configPath = second;
  } else if (first === undefined) {
    config = defaultConfig({ dynamicFeeds: true });
    demoFeeds = ['demo'];
  } else {
    process.stderr.write(`feedcast: unknown argument "${first}"\n\n${HELP}`);
    return 2;
  }

  // Environment overrides of the listener ports (tests and containers use them).
  const ports: [string, (c: ServerConfig, port: number) => ServerConfig][] = [
    ['FEEDCAST_HTTP_PORT', (c, port) => ({ ...c, http: { ...c.http, port } })],
    ['FEEDCAST_RTMP_PORT', (c, port) => ({ ...c, rtmp: { ...c.rtmp, port } })],
    ['FEEDCAST_RTSP_PORT', (c, port) => ({ ...c, rtsp: { ...c.rtsp, port: port === 0 ? undefined : port } })],
    ['FEEDCAST_SRT_PORT', (c, port) => ({ ...c, srt: { ...c.srt, port: port === 0 ? undefined : port } })],
  ];
  for (const [name, apply] of ports) {
    const value = process.env[name];
    if (value === undefined || value === '') continue;
    const port = Number(value);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`feedcast: ${name}="${value}" is not a port number (0-65535)\n`);
      return 2;
    }
    config = apply(config, port);
  }
  installRejectionGuard(log);
  // Workers N: this process becomes the primary that runs the workers (docs/cluster.md, "Workers").
  const worker = workerFromEnv();
  if (worker === undefined && config.workers > 1) return runPrimary(config.workers, log);
  const serverLog = worker !== undefined ? log.child({ worker: worker.index }) : log;
  watchLoopStallsFromEnv(serverLog);
  const started = config;
  const server = await startServer(config, {
    log: serverLog,
    demoFeeds,
    ...(configPath !== undefined ? { configPath } : {}),
    ...(worker !== undefined ? { worker } : {}),
  }).catch((err: unknown) => {
    // Name the directive that sets the busy port, not always HTTPPort.
    const e = err as NodeJS.ErrnoException & { port?: number };
    if (e.code === 'EADDRINUSE' && typeof e.port === 'number') {
      const setting = portSetting(started, e.port);
      throw new ListenError(
        `${e.message}: another program uses port ${e.port}; ${setting !== undefined ? `change ${setting}` : 'change the port'}${configPath !== undefined ? ` in ${configPath}` : ''}`,
      );
    }
    throw err;
  });
  const base = `http://${config.http.bindAddress === '0.0.0.0' ? '127.0.0.1' : config.http.bindAddress}:${server.httpPort}`;
  serverLog.info('ready', {
    index: `${base}/`,
    ...(demoFeeds.length > 0 ? { demo: `${base}/demo.flv` } : {}),
    fanoutWrites: nativeFanoutStatus,
    youngGeneration: describeYoungGeneration(
      process.execArgv,
      process.env['NODE_OPTIONS'],
      process.env['FEEDCAST_YOUNG_GENERATION'] === 'held',
    ),
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      serverLog.warn('second signal, exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    serverLog.info('stopping', { signal });
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        serverLog.error('stopping failed', { err });
        process.exit(1);
      },
    );
  };
  // A worker stops when the primary says so (SIGTERM): Ctrl-C reaches the whole process group, and the
  // primary's SIGTERM after it would be a second signal.
  process.on('SIGINT', () => (worker !== undefined ? undefined : stop('SIGINT')));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    detach(server.reloadCertificates(), log, 'certificate reload');
    if (configPath === undefined) {
      serverLog.warn('SIGHUP ignored: the server was started without a config file');
      return;
    }
    server.reload().catch((err: unknown) => {
      serverLog.error('config reload rejected; the running config stays', {
        reason: err instanceof Error ? err.message : String(err),
      });
    });
  });
  return -1; // keep running
}

/** This process's place among `Workers N`, from the environment the primary gave it; undefined: not a worker. */
function workerFromEnv(): WorkerIdentity | undefined {
  const index = Number(process.env[WORKER_ENV.index] ?? '');
  const count = Number(process.env[WORKER_ENV.count] ?? '');
  const secret = process.env[WORKER_ENV.secret] ?? '';
  if (!Number.isInteger(index) || index < 1 || !Number.isInteger(count) || secret === '') return undefined;
  return { index, count, secret };
}

/** Runs the workers (node:cluster is loaded only here) until SIGINT/SIGTERM; SIGHUP reaches every worker. */
async function runPrimary(count: number, log: Logger): Promise<number> {
  const { WorkerPool } = await import('./cluster/workers.js');
  const pool = new WorkerPool(count, log);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping the workers', { signal });
    pool.stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error('stopping failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    log.info('SIGHUP: the workers reload their config');
    pool.reload();
  });
  try {
    await pool.start();
  } catch (err) {
    await pool.stop();
    throw err;
  }
  log.info('workers ready', { workers: count, pids: pool.status().map((w) => w.pid) });
  return -1;
}

/** A listener could not bind; the message names the directive that sets its port. */
class ListenError extends Error {}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof FeedcastError || err instanceof ListenError) {
      process.stderr.write(`feedcast: ${err.message}\n`);
    } else if (err instanceof Error && 'code' in err && err.code === 'EADDRINUSE') {
      process.stderr.write(`feedcast: ${err.message}: another program uses that port; change its port in the config\n`);
    } else {
      process.stderr.write(`feedcast: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    process.exit(1);
  },
);
