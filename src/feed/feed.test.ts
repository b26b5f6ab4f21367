import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FeedBusyError } from '../errors.js';
import type { Frame } from '../media/frame.js';
import type { Track } from '../media/track.js';
import { silentLogger } from '../observability/logger.js';
import { Feed } from './feed.js';

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
