// Builds native/fanout.c into build/native/fanout.node (run by `npm install` / `npm ci` as the
// postinstall step). Optional by design: without a C compiler or Node's headers, it says why and
// exits 0, and Feedcast writes through Node's sockets instead (a little more CPU per reader, same
// behaviour). No download, no node-gyp: one `cc` call against the headers of the Node running it.
//
//   node scripts/build-native.mjs          build (FEEDCAST_NATIVE=off skips it)
//   node scripts/build-native.mjs --check  build, and exit 1 if it could not

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native/fanout.c');
const output = join(root, 'build/native/fanout.node');
const strict = process.argv.includes('--check');

function skip(reason) {
  console.log(`feedcast: native fan-out not built (${reason}); Node's socket writes will be used instead.`);
  process.exit(strict ? 1 : 0);
}

if (process.env.FEEDCAST_NATIVE === 'off') skip('FEEDCAST_NATIVE=off');
if (process.platform !== 'linux' && process.platform !== 'darwin') skip(`no build for ${process.platform}`);

// Node's headers: where npm is told they are (nodedir), else beside the node binary (/usr/bin/node → /usr/include/node).
const headerDirs = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), '..')]
  .filter((d) => d !== undefined && d !== '')
  .map((d) => join(d, 'include/node'));
const headers = headerDirs.find((d) => existsSync(join(d, 'node_api.h')));
if (headers === undefined) skip(`node_api.h not found in ${headerDirs.join(' or ')}`);

const cc = process.env.CC ?? 'cc';
const linkFlags = process.platform === 'darwin' ? ['-bundle', '-undefined', 'dynamic_lookup'] : ['-shared'];
mkdirSync(dirname(output), { recursive: true });
const args = ['-O2', '-Wall', '-Wextra', '-fPIC', ...linkFlags, '-I', headers, '-o', output, source];
const run = spawnSync(cc, args, { encoding: 'utf8', timeout: 120_000 });
if (run.error !== undefined) skip(`${cc}: ${run.error.message}`);
if (run.status !== 0) skip(`${cc} ${args.join(' ')} failed:\n${run.stderr}`);
console.log(`feedcast: native fan-out built: ${output}`);
