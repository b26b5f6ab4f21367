// The stall watch's verdict (issue 25): where the main thread's time went during a late heartbeat.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stallCause, type LoopStall, type StallCause } from './loop-stall.js';

const cases: [string, LoopStall, StallCause][] = [
  ['running all along: its own work', { lateMs: 900, wallMs: 1000, cpuMs: 950, runQueueMs: 20 }, 'busy'],
  ['in the run queue: no core free', { lateMs: 900, wallMs: 1000, cpuMs: 60, runQueueMs: 900 }, 'waiting'],
  ['neither: asleep in a system call', { lateMs: 900, wallMs: 1000, cpuMs: 30, runQueueMs: 40 }, 'blocked'],
  ['half running, half waiting: running wins a tie', { lateMs: 400, wallMs: 500, cpuMs: 250, runQueueMs: 250 }, 'busy'],
  ['no schedstat, little CPU: waiting', { lateMs: 400, wallMs: 500, cpuMs: 100, runQueueMs: undefined }, 'waiting'],
  ['no schedstat, CPU most of the time: busy', { lateMs: 400, wallMs: 500, cpuMs: 400, runQueueMs: undefined }, 'busy'],
];

for (const [name, stall, cause] of cases) {
  test(`stallCause: ${name}`, () => assert.equal(stallCause(stall), cause));
}
