// A real nginx (Debian's nginx-light) started by a test in a temporary prefix, stopped by PID when
// the test ends. The site configuration is given as text (an http{}-level snippet); every request
// is logged with nginx's cache status and whether it went to the upstream.

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { waitFor } from './test-server.js';

// Debian puts it in /usr/sbin, which a non-login PATH may lack.
const NGINX = process.env['FEEDCAST_NGINX'] ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx');

/** Why nginx tests cannot run here, or false. */
export function skipWithoutNginx(): string | false {
  const probe = spawnSync(NGINX, ['-v'], { stdio: 'ignore' });
  return probe.status === 0 ? false : 'nginx is not installed (apt-get install nginx-light)';
}

/** One request as nginx logged it. */
export interface NginxLogEntry {
  /** HIT, MISS, EXPIRED, UPDATING, STALE, BYPASS or '-' (not a cached location). */
  cacheStatus: string;
  /** True when nginx asked the upstream for it (its $upstream_addr is set). */
  wentUpstream: boolean;
  uri: string;
  status: number;
}

export interface RunningNginx {
  /** The folder its cache, temp files and logs live in. */
  readonly prefix: string;
  readonly pid: number;
  /** Every request logged so far. */
  log(): NginxLogEntry[];
}

/**
 * Starts nginx with `site` (http-context directives: upstreams, proxy_cache_path, server blocks;
 * `__PREFIX__` in it stands for nginx's temporary folder) and waits until `port` accepts
 * connections on 127.0.0.1.
 */
export async function startNginx(t: TestContext, site: string, port: number): Promise<RunningNginx> {
  const prefix = mkdtempSync(join(tmpdir(), 'feedcast-nginx-'));
  t.after(() => rmSync(prefix, { recursive: true, force: true }));
  writeFileSync(join(prefix, 'site.conf'), site.replaceAll('__PREFIX__', prefix));
  const accessLog = join(prefix, 'access.log');
  writeFileSync(accessLog, '');
  const temp = (name: string): string => join(prefix, name);
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `daemon off;
master_process on;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root;' : ''}
error_log ${temp('error.log')} warn;
pid ${temp('nginx.pid')};
events { worker_connections 2048; }
http {
  log_format feedcast_test '$upstream_cache_status\\t$upstream_addr\\t$request_uri\\t$status';
  access_log ${accessLog} feedcast_test;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  include ${join(prefix, 'site.conf')};
}
`,
  );
  const child = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  const accepting = (): Promise<boolean> =>
    new Promise((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  await waitFor('nginx to listen', async () => child.exitCode !== null || (await accepting()), 30_000);
  if (child.exitCode !== null) {
    let errors = '';
    try {
      errors = readFileSync(temp('error.log'), 'utf8');
    } catch {
      // nginx stopped before opening its error log: its output says why.
    }
    throw new Error(`nginx exited (${child.exitCode}):\n${output}\n${errors}`);
  }
  return {
    prefix,
    pid: child.pid ?? 0,
    log: () =>
      readFileSync(accessLog, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [cacheStatus = '', upstream = '', uri = '', status = ''] = l.split('\t');
          return { cacheStatus, wentUpstream: upstream !== '-' && upstream !== '', uri, status: Number(status) };
        }),
  };
}
