// Issue 24 item 3: `npm install -g` of the packed tarball must give a working `feedcast` that runs the
// compiled code with plain node (tsx was a run-time dependency). Packs the tree (prepack builds dist/),
// installs the tarball into a temporary prefix, and plays the demo of the installed command with ffprobe.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { FFPROBE, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { freePort, waitFor } from '../helpers/test-server.js';

const ROOT = new URL('../../', import.meta.url).pathname;
/** npm as the test was started by it (npm test), else the one beside node. */
const NPM = process.env['npm_execpath'] ?? join(dirname(process.execPath), 'npm');
const npm = (args: string[], cwd: string) =>
  existsSync(NPM) && NPM.endsWith('.js') ? run(process.execPath, [NPM, ...args], 600_000, cwd) : run('npm', args, 600_000, cwd);

describe('the npm package', { skip: skipWithoutFfmpeg() }, () => {
  test('npm pack, npm install -g: feedcast runs the compiled demo without tsx', { timeout: 900_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-pack-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));

    const packed = await npm(['pack', '--pack-destination', dir, '--loglevel', 'warn'], ROOT);
    assert.equal(packed.code, 0, packed.stderr);
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball !== undefined, `no tarball in ${dir}: ${packed.stdout}`);

    const prefix = join(dir, 'prefix');
    const installed = await npm(
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--allow-scripts=feedcast',
        join(dir, tarball),
      ],
      dir,
    );
    assert.equal(installed.code, 0, installed.stderr);
    const pkg = join(prefix, 'lib', 'node_modules', 'feedcast');
    const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.equal(manifest.dependencies['tsx'], undefined, 'tsx is a dev dependency');
    assert.ok(!existsSync(join(pkg, 'node_modules', 'tsx')), 'tsx is not installed with the package');
    assert.ok(!existsSync(join(pkg, 'src')), 'no TypeScript sources are shipped');
    assert.ok(existsSync(join(pkg, 'dist', 'main.js')), 'the compiled server is shipped');

    const port = await freePort();
    const child = spawn(join(prefix, 'bin', 'feedcast'), [], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PATH: `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`,
        NODE_OPTIONS: '',
        FEEDCAST_HTTP_PORT: String(port),
        FEEDCAST_RTMP_PORT: '0',
        FEEDCAST_RTSP_PORT: '0',
        FEEDCAST_SRT_PORT: '0',
        FEEDCAST_LOG_FORMAT: 'json',
      },
    });
    const exited = once(child, 'exit');
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor('the installed demo to be ready', () => output.includes('"msg":"ready"') || child.exitCode !== null, 120_000);
    assert.equal(child.exitCode, null, output);
    const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
    assert.doesNotMatch(cmdline, /tsx/, cmdline);

    const probe = await run(
      FFPROBE,
      [
        ...['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-read_intervals', '%+2'],
        ...['-show_entries', 'stream=codec_name,nb_read_frames', '-of', 'csv=p=0', `http://127.0.0.1:${port}/demo.flv`],
      ],
      60_000,
    );
    assert.equal(probe.code, 0, probe.stderr);
    const [codec, frames] = probe.stdout.trim().split(',');
    assert.equal(codec, 'h264');
    assert.ok(Number(frames) > 0, probe.stdout);

    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, output.slice(-2000));
  });
});
