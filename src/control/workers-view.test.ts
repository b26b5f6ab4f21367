// Workers N, one view of the whole server (issue 20 part 4, gap 2): the parts of each worker gathered with a
// timeout (a silent or unregistered worker named as missing), /metrics merged into one valid exposition with a
// worker label, feeds merged with their readers summed.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { FeedView } from './snapshot.js';
import { gatherParts, mergeFeeds, mergeMetrics, withWorkerLabel } from './workers-view.js';

const W1 = `# HELP feedcast_connections Open connections.
# TYPE feedcast_connections gauge
feedcast_connections{protocol="HTTP",role="reader"} 3
# HELP feedcast_uptime_seconds Seconds.
# TYPE feedcast_uptime_seconds gauge
feedcast_uptime_seconds 12
# HELP feedcast_http_request_seconds A histogram.
# TYPE feedcast_http_request_seconds histogram
feedcast_http_request_seconds_bucket{le="0.1"} 1
feedcast_http_request_seconds_bucket{le="+Inf"} 2
feedcast_http_request_seconds_sum 0.3
feedcast_http_request_seconds_count 2
`;
const W2 = W1.replace('} 3', '} 4').replace('seconds 12', 'seconds 7');

test('withWorkerLabel adds the label first, with or without labels', () => {
  assert.equal(withWorkerLabel('a_b{x="1"} 2', 3), 'a_b{worker="3",x="1"} 2');
  assert.equal(withWorkerLabel('a_b 2 1700000000', 3), 'a_b{worker="3"} 2 1700000000');
  assert.equal(withWorkerLabel('a_b{} 2', 3), 'a_b{worker="3"} 2');
});

test("mergeMetrics: one valid exposition, each family once with every worker's series, and who answered", () => {
  const text = mergeMetrics(
    [
      { worker: 2, text: W2 },
      { worker: 1, text: W1 },
    ],
    [{ worker: 3, reason: 'no answer within 1500 ms' }],
  );
  assert.equal(text.match(/^# TYPE feedcast_connections /gm)?.length, 1, 'one TYPE line per family');
  const families = parsePrometheusTextFormat(text);
  const values = (name: string): [string | undefined, string | undefined][] =>
    (families.find((f) => f.name === name)?.metrics ?? []).map((m) => [m.labels?.['worker'], m.value]);
  assert.deepEqual(values('feedcast_connections'), [
    ['1', '3'],
    ['2', '4'],
  ]);
  assert.deepEqual(values('feedcast_uptime_seconds'), [
    ['1', '12'],
    ['2', '7'],
  ]);
  assert.ok(
    families.some((f) => f.name === 'feedcast_http_request_seconds'),
    'the histogram parses',
  );
  for (const worker of ['1', '2']) {
    assert.match(
      text,
      new RegExp(`^feedcast_http_request_seconds_count\\{worker="${worker}"\\} 2$`, 'm'),
      'a histogram per worker',
    );
  }
  assert.deepEqual(values('feedcast_worker_up'), [
    ['1', '1'],
    ['2', '1'],
    ['3', '0'],
  ]);
});

function feed(key: string, protocol: string | null, readers: number): FeedView {
  return {
    key,
    publisher: protocol !== null ? { protocol, remoteAddress: '', startedAt: '', uptimeSeconds: 0 } : null,
    readers,
    file: protocol === 'relay' ? { sizeBytes: 1 } : null,
    recording: null,
  } as unknown as FeedView;
}

test("mergeFeeds: the origin worker's view, its readers summed over the workers, the relays between them not counted", () => {
  const merged = mergeFeeds([
    { worker: 1, feeds: [feed('cam', 'relay', 5), feed('idle', null, 0)] },
    // Worker 2 has the publisher; one of its 3 readers is worker 1's relay.
    { worker: 2, feeds: [feed('cam', 'rtmp', 3), feed('idle', null, 0)] },
  ]);
  const cam = merged.find((f) => f.key === 'cam');
  assert.equal(cam?.worker, 2);
  assert.equal(cam?.publisher?.protocol, 'rtmp');
  assert.equal(cam?.readers, 7);
  assert.deepEqual(cam?.onWorkers, {
    1: { readers: 5, publisher: 'relay', file: true, recording: false },
    2: { readers: 3, publisher: 'rtmp', file: false, recording: false },
  });
  assert.deepEqual(cam?.file, { sizeBytes: 1 }, 'the ring from worker 1, which writes it');
  assert.equal(merged.find((f) => f.key === 'idle')?.worker, null);
});

test('gatherParts: a worker that answers, one that does not within the timeout, one not registered', async (t) => {
  const answering = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, view: req.headers['x-feedcast-view'] }));
  });
  const silent = createServer(() => undefined);
  for (const s of [answering, silent]) {
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  }
  t.after(() => {
    silent.closeAllConnections();
    answering.close();
    silent.close();
  });
  const url = (s: typeof answering): string => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  const { parts, missing } = await gatherParts(
    [
      { index: 1, url: url(answering) },
      { index: 2, url: url(silent) },
      { index: 3, url: undefined },
    ],
    '/api/v1/feeds?x=1',
    { 'x-feedcast-view': 'worker' },
    300,
  );
  assert.deepEqual(
    parts.map((p) => [p.worker, JSON.parse(p.body) as unknown]),
    [[1, { path: '/api/v1/feeds?x=1', view: 'worker' }]],
  );
  assert.deepEqual(
    missing.map((m) => [m.worker, m.reason]),
    [
      [2, 'no answer within 300 ms'],
      [3, 'not registered (starting, or started again after a crash)'],
    ],
  );
});
