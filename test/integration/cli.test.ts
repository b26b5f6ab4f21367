// The command line as a user runs it: the built-in demo, config checking, bad configs.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { probePackets, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { freePort } from '../helpers/test-server.js';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

function feedcast(args: string[], timeoutMs = 20_000) {
  return run(process.execPath, ['--import', 'tsx', MAIN, ...args], timeoutMs);
}

describe('feedcast command line', () => {
  test('--help explains the commands', async () => {
    const { code, stdout } = await feedcast(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /feedcast -f server\.conf/);
    assert.match(stdout, /feedcast check/);
  });

  test('a bad config fails at start-up with file:line for every error and exit status 1', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'bad.conf');
    writeFileSync(file, 'HTTPPort 8090\nFileMaxSize 5M\nBogusDirective 1\n<Feed feed1.ffm>\nFileMaxSize abc\n</Feed>\n');
    const { code, stderr } = await feedcast(['-f', file]);
    assert.equal(code, 1);
    assert.match(stderr, /bad\.conf:3: /);
    assert.match(stderr, /bad\.conf:5: /);
  });

  test('check prints what a config would serve', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'ok.conf');
    writeFileSync(file, 'HTTPPort 8091\n<Feed feed1.ffm>\n</Feed>\n<Stream live.flv>\nFeed feed1.ffm\n</Stream>\n');
    const { code, stdout } = await feedcast(['check', file]);
    assert.equal(code, 0, stdout);
    assert.match(stdout, /feed1/);
    assert.match(stdout, /live\.flv/);
  });

  test('the built-in demo serves a live stream right after start-up', { skip: skipWithoutFfmpeg() }, async (t) => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // The demo is `feedcast` with no arguments; to use a free port the test gives the same
    // feed through a config with the demo's settings instead of port 8090.
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        FEEDCAST_HTTP_PORT: String(port),
        FEEDCAST_RTMP_PORT: '0',
        FEEDCAST_RTSP_PORT: '0',
        FEEDCAST_SRT_PORT: '0',
        FEEDCAST_LOG_FORMAT: 'json',
      },
    });
    t.after(() => child.kill('SIGTERM'));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('"msg":"ready"')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`feedcast exited with ${String(code)}: ${out}`)));
    });
    const probe = await probePackets(`http://127.0.0.1:${port}/demo.flv`, 1);
    assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
    assert.ok(probe.packets.some((p) => p.codec_type === 'video' && p.flags.startsWith('K')));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, 'SIGTERM stops the server cleanly');
  });
});
