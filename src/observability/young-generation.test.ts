// The young-generation cap read from node's arguments and NODE_OPTIONS, as the `ready` log line reports it,
// and the run-time setting bin/feedcast.js relies on when node was started without the cap.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describeYoungGeneration, semiSpaceCapMb } from './young-generation.js';

test('the cap comes from the arguments, else NODE_OPTIONS; absent, the log line says how to set it', () => {
  assert.equal(semiSpaceCapMb(['--max-semi-space-size=2', '--import', 'tsx'], undefined), 2);
  assert.equal(semiSpaceCapMb([], '--max-semi-space-size 4 --enable-source-maps'), 4);
  assert.equal(semiSpaceCapMb(['--max-semi-space-size=2'], '--max-semi-space-size=8'), 2);
  assert.equal(semiSpaceCapMb(['--max-old-space-size=512'], '--max-semi-space-sizes=3'), undefined);
  assert.equal(semiSpaceCapMb([], undefined), undefined);
  assert.match(describeYoungGeneration(['--max-semi-space-size=2'], undefined, true), /capped at 2 MB/);
  assert.match(describeYoungGeneration([], undefined, true), /held at V8's initial 1 MB/);
  assert.match(describeYoungGeneration([], '', false), /start with node --max-semi-space-size=2/);
});

/** The new space's size (MB) after a churn of short-lived objects, in a node started without any cap. */
function newSpaceAfterChurn(setAtRunTime: string | undefined): number {
  const script = `
    const v8 = require('node:v8');
    ${setAtRunTime !== undefined ? `v8.setFlagsFromString(${JSON.stringify(setAtRunTime)});` : ''}
    let keep = [];
    for (let i = 0; i < 2e6; i++) { keep.push({ i, a: [i, i, i, i] }); if (keep.length > 20000) keep = []; }
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    process.stdout.write(String(space.space_size / 1048576));`;
  const env = { ...process.env, NODE_OPTIONS: '' };
  return Number(execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8' }));
}

test('at run time the growth factor holds the new space at its initial size; the cap itself does not', () => {
  // What bin/feedcast.js does when node was started without --max-semi-space-size.
  assert.ok(newSpaceAfterChurn('--semi-space-growth-factor=1') <= 2, 'the growth factor set at run time held it');
  // V8's default grows it (16-32 MB here), and the cap set at run time is ignored: why bin does not use it.
  assert.ok(newSpaceAfterChurn(undefined) > 4);
  assert.ok(newSpaceAfterChurn('--max-semi-space-size=2') > 4);
});
