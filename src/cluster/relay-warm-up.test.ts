// Issue 20 part 3: the warm-up a node runs at start must really go through the relay path (the muxer and the
// demuxer with marks): every frame put in comes out, on every round.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmUpRelayPath } from './relay-warm-up.js';

test('the relay warm-up muxes and demuxes its 50 video and 50 audio frames', () => {
  assert.equal(warmUpRelayPath(1), 100);
  assert.equal(warmUpRelayPath(3), 100);
});
