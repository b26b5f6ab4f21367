// The young-generation cap read from node's arguments and NODE_OPTIONS, as the `ready` log line reports it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeYoungGeneration, semiSpaceCapMb } from './young-generation.js';

test('the cap comes from the arguments, else NODE_OPTIONS; absent, the log line says how to set it', () => {
  assert.equal(semiSpaceCapMb(['--max-semi-space-size=2', '--import', 'tsx'], undefined), 2);
  assert.equal(semiSpaceCapMb([], '--max-semi-space-size 4 --enable-source-maps'), 4);
  assert.equal(semiSpaceCapMb(['--max-semi-space-size=2'], '--max-semi-space-size=8'), 2);
  assert.equal(semiSpaceCapMb(['--max-old-space-size=512'], '--max-semi-space-sizes=3'), undefined);
  assert.equal(semiSpaceCapMb([], undefined), undefined);
  assert.match(describeYoungGeneration(['--max-semi-space-size=2'], undefined), /capped at 2 MB/);
  assert.match(describeYoungGeneration([], ''), /start with node --max-semi-space-size=2/);
});
