// Property tests: random text, and random mutations of ffserver's sample config, never make the loader throw anything
// but ConfigErrors, and never hang.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { ConfigError } from '../errors.js';
import type { HostResolver } from './acl.js';
import { ConfigErrors, parseConfigText } from './config.js';
import { DIRECTIVES } from './directives.js';

// No network: host names resolve only in this fake, and sometimes slowly, so that ordering bugs would show.
const resolver: HostResolver = async (host) => {
  await new Promise((resolve) => setImmediate(resolve));
  if (host === 'localhost') return ['127.0.0.1', '::1'];
  if (host.length % 3 === 0) return [];
  throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};

async function loadsOrConfigErrors(text: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('parseConfigText did not settle within 2 s')), 2000);
  });
  try {
    const config = await Promise.race([parseConfigText(text, 'fuzz.conf', { resolveHost: resolver }), timeout]);
    assert.ok(Array.isArray(config.warnings));
    for (const w of config.warnings) assert.match(w.where, /^fuzz\.conf:\d+$/);
  } catch (err) {
    if (!(err instanceof ConfigErrors)) throw err;
    assert.ok(err instanceof ConfigError);
    assert.ok(err.errors.length > 0);
    for (const e of err.errors) assert.match(e.message, /^fuzz\.conf:\d+: \S/);
    assert.equal(err.message.split('\n').length, err.errors.length);
  } finally {
    clearTimeout(timer);
  }
}

const names = DIRECTIVES.map((d) => d.name);
const word = fc.oneof(
  fc.constantFrom(...names, ...names.map((n) => n.toLowerCase())),
  fc.constantFrom(
    '<Feed',
    '<Stream',
    '<Redirect',
    '</Feed>',
    '</Stream>',
    '</Redirect>',
    '<Feed>',
    '>',
    '#',
    '"',
    "'",
    'a.ffm>',
    's.flv>',
  ),
  fc.constantFrom(
    'allow',
    'deny',
    'localhost',
    '127.0.0.1',
    '::1',
    '10.0.0.0/8',
    'feed1.ffm',
    'flv',
    'status',
    '200K',
    '0.5M',
    '-1',
    '0',
    '65536',
    'on',
  ),
  fc.string({ maxLength: 12 }),
  fc.integer().map(String),
);
const line = fc.array(word, { maxLength: 6 }).map((ws) => ws.join(' '));
const configText = fc.array(line, { maxLength: 40 }).map((ls) => ls.join('\n'));

test('random directive soup never throws anything but ConfigErrors', async () => {
  await fc.assert(fc.asyncProperty(configText, loadsOrConfigErrors), { numRuns: 400 });
});

test('random unicode text never throws anything but ConfigErrors', async () => {
  await fc.assert(fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 400 }), loadsOrConfigErrors), { numRuns: 300 });
});

test('mutations of the ffserver sample config never throw anything but ConfigErrors', async () => {
  const sample = await readFile(new URL('../../examples/ffserver-sample.conf', import.meta.url), 'utf8');
  const lines = sample.split('\n');
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), other: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: line }),
    fc.record({ kind: fc.constant('uncomment' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('case' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), cut: fc.nat() }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 6 }), async (mutations) => {
      const ls = [...lines];
      for (const m of mutations) {
        const i = m.at % Math.max(1, ls.length);
        const current = ls[i] ?? '';
        switch (m.kind) {
          case 'delete':
            ls.splice(i, 1);
            break;
          case 'duplicate':
            ls.splice(i, 0, current);
            break;
          case 'swap': {
            const j = m.other % Math.max(1, ls.length);
            ls[i] = ls[j] ?? '';
            ls[j] = current;
            break;
          }
          case 'insert':
            ls.splice(i, 0, m.text);
            break;
          case 'uncomment':
            ls[i] = current.replace(/^#+/, '');
            break;
          case 'case':
            ls[i] = current.toUpperCase();
            break;
          case 'truncate':
            ls[i] = current.slice(0, m.cut % (current.length + 1));
            break;
        }
      }
      await loadsOrConfigErrors(ls.join('\n'));
    }),
    { numRuns: 300 },
  );
});
