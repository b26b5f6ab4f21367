// Builds Feedcast's optional native modules (run by `npm install` / `npm ci` as the postinstall
// step), each with one `cc` call against the headers of the Node running it (no download, no
// node-gyp):
//   native/fanout.c -> build/native/fanout.node  the fan-out write loop (without it, Node's socket writes)
//   native/rtp-send.c -> build/native/rtp-send.node  WHEP: SRTP protection and sendmmsg() per frame, with
//                                                the OpenSSL inside Node (without it, node:crypto and dgram)
//   native/rtp-udp.c -> build/native/rtp-udp.node  RTSP readers over UDP: a frame's packets in one sendmmsg()
//                                                (without it, one dgram send() per packet); the bench's UDP receiver
//   native/srt.c    -> build/native/srt.node     the SRT listener, on libsrt (Debian libsrt-openssl-dev;
//                                                without it, SRT is off and the server says why)
// Optional by design: a module that cannot be built is skipped with the reason, and the script exits 0.
//
//   node scripts/build-native.mjs          build (FEEDCAST_NATIVE=off skips all of it)
//   node scripts/build-native.mjs --check  build, and exit 1 if a module could not be built

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--check');

const modules = [
  {
    name: 'native fan-out',
    source: 'native/fanout.c',
    output: 'build/native/fanout.node',
    libs: [],
    without: "Node's socket writes will be used instead",
  },
  {
    name: 'WHEP send module',
    source: 'native/rtp-send.c',
    output: 'build/native/rtp-send.node',
    libs: [],
    // Node's own OpenSSL headers (include/node/openssl); its symbols are the Node process's.
    needs: { file: 'openssl/evp.h', hint: "Node's headers carry no OpenSSL", nodeHeaders: true },
    without: 'WHEP viewers are protected with node:crypto and sent with dgram',
  },
  {
    name: 'RTP/UDP module',
    source: 'native/rtp-udp.c',
    output: 'build/native/rtp-udp.node',
    libs: [],
    without: 'RTSP readers over UDP are sent one dgram send() per packet',
  },
  {
    name: 'SRT module',
    source: 'native/srt.c',
    output: 'build/native/srt.node',
    libs: ['-lsrt'],
    // libsrt's headers: Debian's libsrt-openssl-dev (or libsrt-gnutls-dev) puts them here.
    needs: { file: 'srt/srt.h', hint: 'install libsrt-openssl-dev' },
    without: 'SRT stays off (SRTPort is refused with this reason)',
  },
];

let failed = false;
function skip(module, reason) {
  console.log(`feedcast: ${module.name} not built (${reason}); ${module.without}.`);
  failed = true;
}

function includeDirs() {
  return [process.env.CPATH, process.env.C_INCLUDE_PATH, '/usr/local/include', '/usr/include']
    .flatMap((d) => (d === undefined || d === '' ? [] : d.split(':')))
    .filter((d) => d !== '');
}

function build(module, headers) {
  const dirs = module.needs?.nodeHeaders === true ? [headers] : includeDirs();
  if (module.needs !== undefined && !dirs.some((d) => existsSync(join(d, module.needs.file)))) {
    skip(module, `${module.needs.file} not found: ${module.needs.hint}`);
    return;
  }
  const cc = process.env.CC ?? 'cc';
  const linkFlags = process.platform === 'darwin' ? ['-bundle', '-undefined', 'dynamic_lookup'] : ['-shared'];
  const output = join(root, module.output);
  mkdirSync(dirname(output), { recursive: true });
  const args = [
    '-O2',
    '-Wall',
    '-Wextra',
    '-fPIC',
    ...linkFlags,
    '-I',
    headers,
    '-o',
    output,
    join(root, module.source),
    ...module.libs,
  ];
  const run = spawnSync(cc, args, { encoding: 'utf8', timeout: 120_000 });
  if (run.error !== undefined) {
    skip(module, `${cc}: ${run.error.message}`);
    return;
  }
  if (run.status !== 0) {
    skip(module, `${cc} ${args.join(' ')} failed:\n${run.stderr}`);
    return;
  }
  console.log(`feedcast: ${module.name} built: ${output}`);
}

function main() {
  if (process.env.FEEDCAST_NATIVE === 'off') {
    for (const m of modules) skip(m, 'FEEDCAST_NATIVE=off');
    return;
  }
  if (process.platform !== 'linux' && process.platform !== 'darwin') {
    for (const m of modules) skip(m, `no build for ${process.platform}`);
    return;
  }
  // Node's headers: where npm is told they are (nodedir), else beside the node binary (/usr/bin/node → /usr/include/node).
  const headerDirs = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), '..')]
    .filter((d) => d !== undefined && d !== '')
    .map((d) => join(d, 'include/node'));
  const headers = headerDirs.find((d) => existsSync(join(d, 'node_api.h')));
  if (headers === undefined) {
    for (const m of modules) skip(m, `node_api.h not found in ${headerDirs.join(' or ')}`);
    return;
  }
  for (const m of modules) build(m, headers);
}

main();
process.exit(strict && failed ? 1 : 0);
