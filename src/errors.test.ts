import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ErrorCode } from './errors.js';

test('docs/errors.md lists exactly the error codes of src/errors.ts', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const documented = new Set([...doc.matchAll(/`(FC_ERR_[A-Z_]+)`/g)].map((m) => m[1]));
  const defined = new Set(Object.values(ErrorCode));
  assert.deepEqual([...documented].sort(), [...defined].sort());
});
