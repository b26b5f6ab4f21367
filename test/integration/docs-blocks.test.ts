// Issue 24 item 1: the README's own example config failed `feedcast check` with 7 errors, and nothing
// noticed. Every config block of README.md, docs/*.md and examples/ goes through `feedcast check`, and
// every safe command block (`feedcast --help`, `--version`, `check ...`) is run as written.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { findDirective } from '../../src/config/directives.js';

const ROOT = new URL('../../', import.meta.url).pathname;
// The sources through tsx (bin/feedcast.js would first transpile src/ into dist/).
const MAIN = join(ROOT, 'src', 'main.ts');

interface Block {
  /** file:line of the opening fence. */
  where: string;
  /** The fence's info string (`sh`, `conf`, ``). */
  lang: string;
  text: string;
}

/** The fenced code blocks of a Markdown file (``` fences at the start of a line). */
function fencedBlocks(file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i] ?? '');
    if (open === null) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] ?? ''); i++) body.push(lines[i] ?? '');
    blocks.push({ where: `${file}:${start + 1}`, lang: open[1] ?? '', text: body.join('\n') + '\n' });
  }
  return blocks;
}

/**
 * A block is a config when it says so (```conf) or, unlabelled, when its first line that is not a
 * comment starts with a directive or a section tag. Grammar and templates are fenced as ```text.
 */
function isConfig(block: Block): boolean {
  if (block.lang === 'conf') return true;
  if (block.lang !== '') return false;
  const first = block.text.split('\n').find((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  const word = first?.trim().split(/\s+/)[0] ?? '';
  return /^<\/?(feed|stream|redirect)\b/i.test(word) || findDirective(word) !== undefined;
}

/** The commands of a shell block that are safe to run here, `\` continuations joined. */
function safeCommands(block: Block): string[][] {
  if (block.lang !== 'sh') return [];
  const joined = block.text.replace(/\\\n/g, ' ');
  const commands: string[][] = [];
  for (const raw of joined.split('\n')) {
    const line = raw
      .replace(/^\$\s+/, '')
      .replace(/\s+#.*$/, '')
      .trim();
    const words = line.split(/\s+/);
    if (words[0] !== 'feedcast') continue;
    if (['--help', '-h', '--version', 'check'].includes(words[1] ?? '')) commands.push(words.slice(1));
  }
  return commands;
}

function feedcast(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const docs = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const blocks = docs.flatMap(fencedBlocks);
const configBlocks = blocks.filter(isConfig);
const examples = readdirSync(join(ROOT, 'examples'))
  .filter((f) => f.endsWith('.conf'))
  .map((f) => `examples/${f}`);
const commands = blocks.flatMap((b) => safeCommands(b).map((args) => ({ where: b.where, args })));

describe('the docs as written', () => {
  test('the extractor finds the README example, the examples and the commands', () => {
    assert.ok(
      configBlocks.some((b) => b.where.startsWith('README.md') && b.text.includes('<Feed feed1.ffm>')),
      'the README example config is a config block',
    );
    assert.ok(examples.length >= 2, examples.join(', '));
    assert.ok(
      commands.some((c) => c.args[0] === 'check'),
      'some shell block runs feedcast check',
    );
  });

  for (const block of configBlocks) {
    test(`config block ${block.where} passes feedcast check`, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'feedcast-docs-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'block.conf');
      writeFileSync(file, block.text);
      const { code, stdout, stderr } = await feedcast(['check', file]);
      assert.equal(code, 0, `${block.where}: feedcast check failed:\n${stderr}`);
      assert.match(stdout, /^Config /);
    });
  }

  for (const example of examples) {
    test(`${example} passes feedcast check`, async () => {
      const { code, stdout, stderr } = await feedcast(['check', example]);
      assert.equal(code, 0, `${example}: ${stderr}`);
      assert.match(stdout, /^Config /);
    });
  }

  for (const { where, args } of commands) {
    test(`${where}: feedcast ${args.join(' ')} runs as written`, async () => {
      const { code, stdout, stderr } = await feedcast(args);
      assert.equal(code, 0, `feedcast ${args.join(' ')}: ${stderr}`);
      assert.notEqual(stdout, '');
    });
  }
});
