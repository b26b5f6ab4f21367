// Janus (Debian's `janus` package) as a WebRTC peer in bench/peers.ts: started by the bench with a
// generated minimal config in a temp dir (HTTP API on loopback, the streaming plugin alone, one
// RTP mountpoint for H.264, no STUN), in a network namespace of its own (Janus gathers no ICE
// candidates on loopback interfaces), stopped by its PID.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { track } from './bench-util.js';

export const JANUS = '/usr/bin/janus';
const LIB = '/usr/lib/x86_64-linux-gnu/janus';
/** The mountpoint id the viewers watch. */
export const JANUS_MOUNTPOINT = 1;

export interface JanusSetup {
  dir: string;
  version: string;
  /** The janus command line (run it pinned like the other servers). */
  args: string[];
  /** The HTTP API base URL, e.g. http://127.0.0.1:PORT/janus. */
  apiUrl: string;
  /** Where ffmpeg sends the H.264 RTP (payload type 96). */
  rtpPort: number;
}

/** Every .so in a Janus module folder except `keep`, as a `disable` list. */
function allBut(folder: string, keep: string[]): string {
  let names: string[] = [];
  try {
    names = readdirSync(join(LIB, folder)).filter((n) => n.endsWith('.so') && !keep.includes(n));
  } catch {
    names = [];
  }
  return names.join(',');
}

export function janusVersion(): string | undefined {
  try {
    const r = spawnSync(JANUS, ['--version'], { timeout: 10_000 });
    const m = /Janus version: \d+ \(([^)]+)\)/.exec(r.stdout?.toString() ?? '');
    return m?.[1];
  } catch {
    return undefined;
  }
}

/** Writes the config files for a Janus on `httpPort` relaying H.264 RTP received on `rtpPort`. */
export function janusConfig(httpPort: number, rtpPort: number): JanusSetup {
  const dir = mkdtempSync(join(os.tmpdir(), 'janus-bench-'));
  const version = janusVersion() ?? 'unknown';
  writeFileSync(
    join(dir, 'janus.jcfg'),
    [
      'general: {',
      `  configs_folder = "${dir}"`,
      `  plugins_folder = "${LIB}/plugins"`,
      `  transports_folder = "${LIB}/transports"`,
      `  events_folder = "${LIB}/events"`,
      `  loggers_folder = "${LIB}/loggers"`,
      '  debug_level = 3',
      '  # Sessions end when the bench destroys them; no keep-alive traffic needed.',
      '  session_timeout = 0',
      '}',
      'media: {',
      '}',
      'nat: {',
      '  nice_debug = false',
      '  # Only the namespace address (startNetns), no STUN server, no mDNS candidates.',
      '  ice_enforce_list = "fcb0"',
      '  ignore_mdns = true',
      '}',
      `plugins: { disable = "${allBut('plugins', ['libjanus_streaming.so'])}" }`,
      `transports: { disable = "${allBut('transports', ['libjanus_http.so'])}" }`,
      `loggers: { disable = "${allBut('loggers', [])}" }`,
      'events: { broadcast = false }',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'janus.transport.http.jcfg'),
    [
      'general: {',
      '  json = "plain"',
      '  base_path = "/janus"',
      '  http = true',
      `  port = ${httpPort}`,
      '  ip = "127.0.0.1"',
      '  https = false',
      '}',
      'admin: {',
      '  admin_http = false',
      '  admin_https = false',
      '}',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'janus.plugin.streaming.jcfg'),
    [
      'general: {',
      '}',
      'feed1: {',
      '  type = "rtp"',
      `  id = ${JANUS_MOUNTPOINT}`,
      '  description = "the bench feed"',
      '  media = (',
      '    {',
      '      type = "video"',
      '      mid = "v"',
      `      port = ${rtpPort}`,
      '      iface = "127.0.0.1"',
      '      pt = 96',
      '      codec = "h264"',
      '      fmtp = "profile-level-id=42e01f;packetization-mode=1"',
      '    }',
      '  )',
      '}',
      '',
    ].join('\n'),
  );
  return {
    dir,
    version,
    args: ['-C', join(dir, 'janus.jcfg'), '-F', dir, '-o'],
    apiUrl: `http://127.0.0.1:${httpPort}/janus`,
    rtpPort,
  };
}

/** The address the Janus row's ICE runs on: Janus gathers no candidates on loopback interfaces. */
export const NETNS_ADDRESS = '10.254.0.1';

/**
 * A network namespace for the Janus row, with lo and a veth pair whose one end holds
 * NETNS_ADDRESS (both ends inside: nothing reaches the machine's network). Root only.
 */
export async function startNetns(): Promise<{ holder: ChildProcess; wrap: (cmd: string, args: string[]) => [string, string[]] }> {
  const setup = [
    'ip link set lo up',
    'ip link add fcb0 type veth peer name fcb1',
    `ip addr add ${NETNS_ADDRESS}/24 dev fcb0`,
    'ip link set fcb0 up',
    'ip link set fcb1 up',
  ].join(' && ');
  const holder = track(
    spawn('unshare', ['-n', 'sh', '-c', `${setup} && echo ready && exec sleep 86400`], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  let err = '';
  holder.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the network namespace was not ready in 20 s: ${err}`)), 20_000);
    holder.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    holder.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`unshare -n failed (exit ${code}): ${err}`));
    });
  });
  const ns = `--net=/proc/${holder.pid}/ns/net`;
  return { holder, wrap: (cmd, args) => ['nsenter', [ns, '--', cmd, ...args]] };
}
