// Workers N, one publisher per feed across the workers (issue 20 part 4): the primary grants a feed's slot to the
// first worker that claims it and refuses the others in a single process's words, until the holder lets go or dies.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FeedBusyError } from '../errors.js';
import { FeedManager } from '../feed/feed-manager.js';
import { silentLogger } from '../observability/logger.js';
import { PublisherClaims, WorkerClaims } from './worker-claims.js';
import type { WorkerReport } from './worker-messages.js';

const SINCE = '2026-12-07T19:00:00.000Z';

test('the primary: first claim wins, the holder may claim again, release and death free the slot', () => {
  const claims = new PublisherClaims();
  assert.equal(claims.claim(2, 'Cam', 'rtmp', SINCE), undefined, 'worker 2 claims first');
  assert.equal(claims.claim(1, 'cam', 'http', SINCE), `already published by rtmp since ${SINCE}`);
  assert.equal(claims.claim(2, 'cam', 'http', '2026-12-07T19:00:02.000Z'), undefined, 'the holder keeps it');
  claims.attached(2, 'cam', 'rtmp', '2026-12-07T19:00:01.000Z');
  claims.attached(1, 'cam', 'http', SINCE);
  assert.equal(
    claims.claim(1, 'CAM', 'http', SINCE),
    'already published by rtmp since 2026-12-07T19:00:01.000Z',
    'the attached publisher is quoted, not a later claim',
  );
  claims.release(1, 'cam');
  assert.deepEqual([...claims.holders()], [['cam', 2]], 'only the holder releases');
  claims.release(2, 'cam');
  assert.equal(claims.claim(1, 'cam', 'http', SINCE), undefined, 'free once its publisher left');
  claims.claim(1, 'other', 'srt', SINCE);
  claims.releaseWorker(1);
  assert.deepEqual([...claims.holders()], [], 'a dead worker holds nothing');
});

/** A worker wired to a primary in this process: the reports go to `claims` as worker `index`, the answers come back. */
function workerOf(index: number, claims: PublisherClaims, sent: WorkerReport[]): { feeds: FeedManager; worker: WorkerClaims } {
  const feeds = new FeedManager({ publisherTimeoutMs: 5000, publisherGraceMs: 0, dynamicFeeds: true }, silentLogger);
  const worker = new WorkerClaims(feeds, silentLogger, (report) => {
    sent.push(report);
    if (report.fc === 'claim' && report.id === undefined) {
      claims.attached(index, report.key, report.protocol, report.startedAt);
    } else if (report.fc === 'claim') {
      const busy = claims.claim(index, report.key, report.protocol, report.startedAt);
      if (report.id !== undefined) {
        const id = report.id;
        setImmediate(() => process.emit('message', { fc: 'claimed', id, busy }, undefined));
      }
    } else if (report.fc === 'unclaim') {
      claims.release(index, report.key);
    }
  });
  return { feeds, worker };
}

test('a worker: its publisher claims first, another worker is refused with FeedBusyError, the slot is freed when it leaves', async (t) => {
  const claims = new PublisherClaims();
  const sent: WorkerReport[] = [];
  const a = workerOf(1, claims, sent);
  const b = workerOf(2, claims, sent);
  t.after(() => {
    a.worker.close();
    b.worker.close();
    a.feeds.closeAll();
    b.feeds.closeAll();
  });
  const feedA = a.feeds.forPublisher('cam');
  const feedB = b.feeds.forPublisher('cam');
  assert.ok(feedA !== undefined && feedB !== undefined);

  await a.feeds.claimPublisher(feedA, 'rtmp');
  const session = feedA.attachPublisher({ protocol: 'rtmp', remoteAddress: '127.0.0.1', startedAt: new Date(SINCE) });
  const local = (() => {
    try {
      feedA.attachPublisher({ protocol: 'http', remoteAddress: '127.0.0.1', startedAt: new Date() });
    } catch (err) {
      return err;
    }
    return undefined;
  })();
  assert.ok(local instanceof FeedBusyError, 'a second publisher on the same worker: the feed refuses it');
  const remote = await b.feeds.claimPublisher(feedB, 'http').then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.ok(remote instanceof FeedBusyError, 'on the other worker: the primary refuses it');
  assert.equal(remote.message, local.message, 'in the same words');

  session.end('connection closed');
  assert.deepEqual([...claims.holders()], [], 'the publisher left: the slot is free');
  await b.feeds.claimPublisher(feedB, 'http');
  assert.deepEqual([...claims.holders()], [['cam', 2]]);
});
