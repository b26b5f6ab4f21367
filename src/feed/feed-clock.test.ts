import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FeedClock } from './feed-clock.js';

test('first session starts the feed clock at 0 and keeps input spacing', () => {
  const clock = new FeedClock();
  clock.startSession();
  assert.deepEqual(clock.place(0, 'video', 126_000, 129_600, 1000), [0, 3600]);
  assert.deepEqual(clock.place(1, 'audio', 126_000 + 1920, 126_000 + 1920, 1000), [1920, 1920]);
  assert.deepEqual(clock.place(0, 'video', 129_600, 133_200, 1040), [3600, 7200]);
  assert.deepEqual(clock.repairs, { nonMonotonic: 0, jumps: 0 });
});

test('a new publisher session continues after the old end plus the real gap, never going back', () => {
  const clock = new FeedClock();
  clock.startSession();
  clock.place(0, 'video', 0, 0, 10_000);
  clock.place(0, 'video', 90_000, 90_000, 11_000); // feed time 1 s
  clock.startSession();
  // Reconnect 2.5 s later with timestamps starting over at 1.4 s (ffmpeg's TS start).
  const [dts] = clock.place(0, 'video', 126_000, 126_000, 13_500);
  assert.equal(dts, 90_000 + 2.5 * 90_000);
  const [next] = clock.place(0, 'video', 129_600, 129_600, 13_540);
  assert.equal(next, dts + 3600);
});

test('an immediate reconnect still moves forward by at least one frame', () => {
  const clock = new FeedClock();
  clock.startSession();
  clock.place(0, 'video', 500, 500, 1000);
  clock.startSession();
  const [dts] = clock.place(0, 'video', 999_999, 999_999, 1000);
  assert.ok(dts > 0);
});

test('non-monotonic DTS is repaired per track and counted; PTS never before DTS', () => {
  const clock = new FeedClock();
  clock.startSession();
  clock.place(0, 'video', 0, 0, 0);
  clock.place(0, 'video', 3600, 3600, 0);
  const [dts, pts] = clock.place(0, 'video', 3000, 3000, 0);
  assert.equal(dts, 3601);
  assert.ok(pts >= dts);
  assert.equal(clock.repairs.nonMonotonic, 1);
});

test('a timestamp jump is closed to one frame step and later frames follow it', () => {
  const clock = new FeedClock();
  clock.startSession();
  clock.place(1, 'audio', 0, 0, 0);
  clock.place(1, 'audio', 1920, 1920, 0);
  const [jumped] = clock.place(1, 'audio', 1920 + 3600 * 90_000, 1920 + 3600 * 90_000, 0);
  assert.equal(jumped, 3840);
  const [after] = clock.place(1, 'audio', 1920 + 3600 * 90_000 + 1920, 0, 0);
  assert.equal(after, 5760);
  // and a jump backwards (source restarted its clock) too
  const [back] = clock.place(1, 'audio', 5, 5, 0);
  assert.equal(back, 7680);
  assert.equal(clock.repairs.jumps, 2);
});
