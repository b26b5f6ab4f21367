// Mutation fuzzing of every parser over real captures (issue 11). First every input kept under
// test/fuzz/corpus/TARGET/ is replayed (the regression corpus: each once crashed a parser); then each
// target is fuzzed for FEEDCAST_FUZZ_SECONDS (default 2: CI) from a seeded PRNG (FEEDCAST_FUZZ_SEED).
// A crash is any error that is not a FeedcastError; it is written to the corpus and fails the test.
//
//   node --import tsx --test test/fuzz/fuzz.test.ts           # CI: a few seconds per parser
//   FEEDCAST_FUZZ_SECONDS=600 npm run fuzz                     # longer, on demand

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { FeedcastError } from '../../src/errors.js';
import { mutate, Rng } from './mutate.js';
import { TARGETS, type FuzzTarget } from './targets.js';

const SECONDS = Number(process.env['FEEDCAST_FUZZ_SECONDS'] ?? '2');
const SEED = Number(process.env['FEEDCAST_FUZZ_SEED'] ?? String(Date.now() % 1_000_000_007));
const ONLY = process.env['FEEDCAST_FUZZ_TARGET'];
const CORPUS = new URL('./corpus/', import.meta.url);

interface Outcome {
  crash: unknown;
}

async function runOne(target: FuzzTarget, input: Buffer): Promise<Outcome | undefined> {
  try {
    await target.run(input);
    return undefined;
  } catch (err) {
    if (err instanceof FeedcastError) return undefined;
    return { crash: err };
  }
}

function corpusFiles(name: string): { file: string; bytes: Buffer }[] {
  const dir = new URL(`${name}/`, CORPUS);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.'))
    .map((f) => ({ file: f, bytes: readFileSync(new URL(f, dir)) }));
}

function keep(name: string, input: Buffer): string {
  const dir = new URL(`${name}/`, CORPUS);
  mkdirSync(dir, { recursive: true });
  const file = `${createHash('sha1').update(input).digest('hex').slice(0, 16)}.bin`;
  writeFileSync(new URL(file, dir), input);
  return `test/fuzz/corpus/${name}/${file}`;
}

const totals = new Map<string, number>();

describe('fuzz: every parser over mutated real captures', () => {
  for (const target of TARGETS) {
    if (ONLY !== undefined && ONLY !== target.name) continue;
    test(`${target.name}: the regression corpus and the seeds parse or are refused cleanly`, async () => {
      for (const { file, bytes } of [
        ...corpusFiles(target.name),
        ...target.seeds().map((b, i) => ({ file: `seed ${i}`, bytes: b })),
      ]) {
        const outcome = await runOne(target, bytes);
        assert.equal(
          outcome,
          undefined,
          `${target.name} ${file}: ${String((outcome?.crash as Error | undefined)?.stack ?? outcome?.crash)}`,
        );
      }
    });

    test(`${target.name}: ${SECONDS} s of mutations (seed ${SEED})`, { timeout: SECONDS * 1000 + 60_000 }, async () => {
      const seeds = target.seeds();
      assert.ok(seeds.length > 0, `${target.name} has seeds`);
      const rng = new Rng(SEED ^ hash(target.name));
      const pool = [...seeds];
      const deadline = Date.now() + SECONDS * 1000;
      let tried = 0;
      const crashes: string[] = [];
      while (Date.now() < deadline) {
        const input = mutate(rng.pick(pool), rng, rng.pick(pool));
        tried++;
        const outcome = await runOne(target, input);
        if (outcome !== undefined) {
          const path = keep(target.name, input);
          crashes.push(
            `${path}: ${String((outcome.crash as Error).stack ?? outcome.crash)
              .split('\n')
              .slice(0, 4)
              .join(' | ')}`,
          );
          if (crashes.length >= 5) break;
        } else if (pool.length < 64 && rng.below(50) === 0) {
          pool.push(input); // keep some survivors: mutations of mutations reach further
        }
      }
      totals.set(target.name, tried);
      process.stderr.write(`fuzz ${target.name}: ${tried} inputs in ${SECONDS} s, ${crashes.length} crashes\n`);
      assert.deepEqual(crashes, [], `crashes were kept under test/fuzz/corpus/${target.name}/`);
    });
  }

  test('report', () => {
    const all = [...totals.values()].reduce((a, b) => a + b, 0);
    process.stderr.write(`fuzz total: ${all} inputs (${[...totals].map(([k, v]) => `${k} ${v}`).join(', ')})\n`);
  });
});

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
