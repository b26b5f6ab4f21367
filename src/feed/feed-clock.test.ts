import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FeedClock, type SharedClockOrigin } from './feed-clock.js';

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

test('feeds sharing a publisher clock (simulcast layers) place the same input time alike, whenever each starts', () => {
  const origin: SharedClockOrigin = {};
  const [h, m, l] = [new FeedClock(), new FeedClock(), new FeedClock()];
  for (const c of [h, m, l]) c.startSession(origin);
  assert.deepEqual(h.place(0, 'video', 27_000, 27_000, 300), [27_000, 27_000], 'fresh: the publisher origin is kept');
  assert.deepEqual(m.place(0, 'video', 27_500, 27_500, 306), [27_500, 27_500]);
  assert.deepEqual(l.place(0, 'video', 450_000, 450_000, 5000), [450_000, 450_000], 'a layer starting 5 s later');
  // The publisher reconnects: the first feed to start places the session, the others follow it.
  const again: SharedClockOrigin = {};
  for (const c of [h, m, l]) c.startSession(again);
  const [hd] = h.place(0, 'video', 9000, 9000, 8000);
  const [md] = m.place(0, 'video', 9500, 9500, 8010);
  assert.ok(hd > 450_000, `after the old end (${hd})`);
  assert.equal(md - hd, 500, 'same offset in both');
  // A feed whose old end lies past the shared placement keeps its own (it never goes back).
  const late: SharedClockOrigin = { offset90k: -1_000_000 };
  const solo = new FeedClock();
  solo.startSession();
  solo.place(0, 'video', 0, 0, 0);
  solo.place(0, 'video', 500_000, 500_000, 0);
  solo.startSession(late);
  const [sd] = solo.place(0, 'video', 1_100_000, 1_100_000, 10);
  assert.ok(sd > 500_000, `placed at ${sd}, after its own end, not at the shared 100000`);
});

test("a relay of another node's feed (issue 20): keeps the origin's times and jumps, never goes back", () => {
  const clock = new FeedClock();
  clock.startSession({ offset90k: 0, keepsJumps: true });
  assert.deepEqual(clock.place(0, 'video', 900_000, 903_600, 0), [900_000, 903_600], "the origin's time, not 0");
  // The origin's publisher came back after 60 s: its timeline jumps forward and the relay follows.
  const [jumped] = clock.place(0, 'video', 900_000 + 60 * 90_000, 900_000 + 60 * 90_000, 100);
  assert.equal(jumped, 900_000 + 60 * 90_000);
  assert.equal(clock.repairs.jumps, 0);
  // The relay reconnects to the same origin: still its time.
  clock.startSession({ offset90k: 0, keepsJumps: true });
  assert.deepEqual(clock.place(0, 'video', 7_000_000, 7_000_000, 2000), [7_000_000, 7_000_000]);
  // The feed moved to a node whose timeline starts near 0 (failover): after the end, never back.
  clock.startSession({ offset90k: 0, keepsJumps: true });
  const [moved] = clock.place(0, 'video', 3600, 3600, 3000);
  assert.ok(moved > 7_000_000, `placed after the old end (${moved})`);
  // A backwards jump within the session is still repaired.
  const [back] = clock.place(0, 'video', 0, 0, 3040);
  assert.ok(back > moved);
});
