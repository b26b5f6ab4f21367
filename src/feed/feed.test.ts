import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FeedBusyError } from '../errors.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import { silentLogger } from '../observability/logger.js';
import { Feed, RECENT_SECONDS } from './feed.js';

const video: Track = { id: 7, kind: 'video', codec: 'h264', width: 320, height: 240, config: Buffer.from([1, 2]) };
const audio: Track = { id: 9, kind: 'audio', codec: 'aac', sampleRate: 48000, channels: 2, config: Buffer.from([0x11, 0x90]) };

function frame(trackId: number, dts: number, keyframe = false): Frame {
  return { trackId, dts90k: dts, pts90k: dts, keyframe, data: Buffer.from([dts & 0xff]) };
}

function newFeed(): Feed {
  return new Feed('feed1.ffm', 'feed1', { publisherTimeoutMs: 5000, publisherGraceMs: 60_000 }, silentLogger);
}

const who = { protocol: 'test', remoteAddress: '127.0.0.1', startedAt: new Date(0) };

test('a second publisher is refused while the first sends, and takes over once it is silent', () => {
  const feed = newFeed();
  const first = feed.attachPublisher(who, 1000);
  assert.throws(() => feed.attachPublisher(who, 3000), FeedBusyError);
  const second = feed.attachPublisher(who, 1000 + 5000);
  assert.equal(first.isEnded, true);
  assert.equal(second.isEnded, false);
  assert.equal(feed.publisher, second.info);
  feed.close();
});

test('a relay from another node of the cluster yields at once to a publisher on this node; a relay yields to none', () => {
  const feed = newFeed();
  const relay = feed.attachPublisher({ ...who, protocol: 'relay' }, 1000);
  const reasons: string[] = [];
  relay.on('end', (reason) => reasons.push(reason));
  const local = feed.attachPublisher(who, 1001);
  assert.equal(relay.isEnded, true);
  assert.deepEqual(reasons, ['replaced by a publisher on this node']);
  assert.equal(feed.publisher, local.info);
  assert.throws(
    () => feed.attachPublisher({ ...who, protocol: 'relay' }, 1002),
    FeedBusyError,
    'a relay does not replace a publisher',
  );
  feed.close();
});

test('issue 25: silence is media time, not bytes: bytes or frames whose time stands still do not keep a publisher', () => {
  const feed = newFeed();
  const first = feed.attachPublisher(who, 0);
  first.setTracks([video]);
  first.write(frame(7, 0, true), 0);
  // Bytes every second, and frames that claim 40 ms each every 4 s: 80 ms of credit per 4 s.
  for (let t = 1000; t <= 12_000; t += 1000) {
    first.touch(1, t);
    if (t % 4000 === 0) first.write(frame(7, (t / 4000) * 3600), t);
  }
  const second = feed.attachPublisher(who, 12_000);
  assert.equal(first.isEnded, true);
  // A publisher sending in real time is never silent, even with a clock 5 % slow.
  const third = feed.attachPublisher(who, 20_000);
  third.setTracks([video]);
  for (let t = 20_000, dts = 0; t <= 80_000; t += 40, dts += 3420) third.write(frame(7, dts, dts === 0), t);
  assert.throws(() => feed.attachPublisher(who, 80_000), FeedBusyError);
  assert.equal(second.isEnded, true);
  feed.close();
});

test('issue 25: a frame of more than 1024 NAL units is dropped and counted; the session goes on', () => {
  const feed = newFeed();
  const out: Frame[] = [];
  feed.on('frame', (f) => out.push(f));
  const p = feed.attachPublisher(who, 0);
  p.setTracks([video]);
  p.write(frame(7, 0, true));
  const many = Buffer.alloc(2000 * 5);
  for (let i = 0; i < many.length; i += 5) many.set([0, 0, 0, 1, 0x01], i); // 2000 one-byte NAL units
  p.write({ trackId: 7, dts90k: 3600, pts90k: 3600, keyframe: false, data: many });
  p.write(frame(7, 7200));
  assert.equal(feed.stats.framesTooLarge, 1);
  assert.deepEqual(
    out.map((f) => f.data.length),
    [1, 1],
  );
  assert.equal(p.isEnded, false);
  feed.close();
});

test('publisher tracks are mapped by kind onto stable feed ids, also across reconnects', () => {
  const feed = newFeed();
  const seen: (readonly Track[])[] = [];
  feed.on('tracks', (t) => seen.push(t));
  const p1 = feed.attachPublisher(who, 0);
  p1.setTracks([audio, video]);
  const ids1 = feed.tracks.map((t) => `${t.id}:${t.kind}`);
  p1.end('bye');
  const p2 = feed.attachPublisher(who, 0);
  p2.setTracks([
    { ...video, id: 0 },
    { ...audio, id: 1 },
  ]);
  assert.deepEqual(
    feed.tracks.map((t) => `${t.id}:${t.kind}`),
    ids1,
  );
  assert.equal(seen.length, 1, 'same parameters after a reconnect are not a track change');
  p2.setTracks([
    { ...video, id: 0, width: 640 },
    { ...audio, id: 1 },
  ]);
  assert.equal(seen.length, 2);
  feed.close();
});

test('a session starts at its first video keyframe and the GOP cache holds frames since the last keyframe', () => {
  const feed = newFeed();
  const out: Frame[] = [];
  feed.on('frame', (f) => out.push(f));
  const p = feed.attachPublisher(who, 0);
  p.setTracks([video, audio]);
  p.write(frame(9, 0)); // audio before any picture: dropped
  p.write(frame(7, 0)); // not a keyframe: dropped
  p.write(frame(7, 3600, true));
  p.write(frame(9, 3000)); // audio from before the first picture: dropped
  p.write(frame(9, 5000));
  p.write(frame(7, 7200));
  assert.equal(out.length, 3);
  assert.equal(out[0]?.keyframe, true);
  assert.equal(out[0]?.dts90k, 0);
  assert.equal(feed.gopCache().length, 3);
  p.write(frame(7, 10_800, true));
  assert.equal(feed.gopCache().length, 1, 'a keyframe starts a new cache');
  assert.equal(feed.stats.framesSkippedBeforeKeyframe, 2);
  feed.close();
});

test('readers hear "idle" when no publisher comes back within the grace period', async () => {
  const feed = new Feed('f', 'f', { publisherTimeoutMs: 10, publisherGraceMs: 20 }, silentLogger);
  const idle = new Promise<void>((resolve) => feed.on('idle', resolve));
  feed.attachPublisher(who).end('gone');
  const keepAlive = setTimeout(() => undefined, 5000); // the grace timer is unref'd
  await idle;
  clearTimeout(keepAlive);
  feed.close();
});

test('with several video tracks the GOP cache keeps each track last keyframe, and a reader of one starts there', () => {
  const feed = newFeed();
  const p = feed.attachPublisher(who, 0);
  p.setTracks([{ ...video, id: 7 }, { ...video, id: 8, width: 160, height: 120 }, audio]);
  const [v0, v1] = feed.tracks.filter((t) => t.kind === 'video').map((t) => t.id);
  assert.ok(v0 !== undefined && v1 !== undefined);
  p.write(frame(7, 0, true));
  p.write(frame(8, 0, true));
  p.write(frame(9, 100));
  p.write(frame(7, 3600));
  p.write(frame(8, 3600));
  p.write(frame(8, 7200, true)); // v1's keyframes are not aligned with v0's
  p.write(frame(9, 7300));
  p.write(frame(7, 7200));
  const dts = (frames: readonly Frame[]): string =>
    frames.map((f) => `${f.trackId === v0 ? 'v0' : f.trackId === v1 ? 'v1' : 'a'}@${f.dts90k}${f.keyframe ? 'K' : ''}`).join(' ');
  assert.equal(
    dts(feed.gopCache()),
    'v0@0K v1@0K a@100 v0@3600 v1@3600 v1@7200K a@7300 v0@7200',
    'from the oldest last keyframe (v0 at 0)',
  );
  assert.equal(dts(feed.gopCache(v1)), 'v1@7200K a@7300 v0@7200', "v1's reader starts at v1's last keyframe, audio from there");
  assert.equal(dts(feed.gopCache(v0)), dts(feed.gopCache()));
  p.write(frame(7, 10_800, true));
  assert.equal(dts(feed.gopCache()), 'v1@7200K a@7300 v0@7200 v0@10800K', "v0's new keyframe trims to v1's");
  assert.equal(dts(feed.gopCache(v0)), 'v0@10800K');
  assert.equal(feed.keyframeInterval90k, 10_800, 'measured on the first video track only');
  feed.close();
});

test('a multi-video GOP cache past its bounds forgets the track with the oldest keyframe first', () => {
  const feed = new Feed('f', 'f', { publisherTimeoutMs: 5000, publisherGraceMs: 60_000, maxGopFrames: 6 }, silentLogger);
  const p = feed.attachPublisher(who, 0);
  p.setTracks([
    { ...video, id: 7 },
    { ...video, id: 8, width: 160, height: 120 },
  ]);
  const [v0, v1] = feed.tracks.map((t) => t.id);
  p.write(frame(7, 0, true));
  p.write(frame(8, 0, true));
  for (let i = 1; i <= 2; i++) p.write(frame(8, i * 3600)); // v0 stalls
  p.write(frame(8, 3 * 3600, true));
  p.write(frame(8, 4 * 3600));
  assert.equal(feed.gopCache().length, 6);
  p.write(frame(8, 5 * 3600)); // a 7th frame: v0's keyframe at 0 is forgotten
  assert.deepEqual(
    feed.gopCache().map((f) => f.dts90k),
    [3 * 3600, 4 * 3600, 5 * 3600],
  );
  assert.equal(feed.gopCache(v0).length, 0, 'no keyframe of v0 left to start from');
  assert.equal(feed.gopCache(v1)[0]?.dts90k, 3 * 3600);
  feed.close();
});

test('recentFrames keeps the newest keyframe at least RECENT_SECONDS back, and is bounded like the GOP cache', () => {
  const feed = new Feed('f', 'f', { publisherTimeoutMs: 5000, publisherGraceMs: 60_000, maxGopFrames: 400 }, silentLogger);
  const p = feed.attachPublisher(who, 0);
  p.setTracks([video, audio]);
  // 25 fps, a keyframe every second, 12 s.
  for (let i = 0; i < 300; i++) p.write(frame(7, i * 3600, i % 25 === 0));
  const recent = feed.recentFrames();
  const first = recent[0];
  const last = recent.at(-1);
  assert.ok(first?.keyframe, 'starts on a keyframe');
  const span = ((last?.dts90k ?? 0) - (first?.dts90k ?? 0)) / 90_000;
  assert.ok(span >= RECENT_SECONDS && span < RECENT_SECONDS + 1, `spans ${span} s`);
  assert.equal(feed.gopCache()[0], recent.at(-feed.gopCache().length), 'the GOP cache is its tail');

  // A GOP longer than the bounds is forgotten until the next keyframe.
  for (let i = 300; i < 800; i++) p.write(frame(7, i * 3600, i === 300));
  assert.ok(feed.recentFrames().length <= 400);
  feed.close();
});

test('recentFrames of an audio-only feed: any frame starts it', () => {
  const feed = newFeed();
  const p = feed.attachPublisher(who, 0);
  p.setTracks([audio]);
  for (let i = 0; i < 1000; i++) p.write(frame(9, i * 1920));
  const recent = feed.recentFrames();
  const span = ((recent.at(-1)?.dts90k ?? 0) - (recent[0]?.dts90k ?? 0)) / 90_000;
  assert.ok(span >= RECENT_SECONDS && span < RECENT_SECONDS + 1, `spans ${span} s`);
  feed.close();
});
