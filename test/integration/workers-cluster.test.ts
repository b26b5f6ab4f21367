// Issue 20 part 4, gap 4: `Workers 2` with `ClusterRedis` (docs/cluster.md, "Workers"): each worker is a node
// of the Redis cluster (NODENAME-wK at its internal port). Real processes: a redis-server, node A with two
// workers on 127.0.0.2, node B with two workers on 127.0.0.3. ffmpeg publishes on A's worker 2; ffprobe reads
// on B (any worker) and on B's worker 2 itself, which relays the feed from A's worker.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startServerProcess, type ServerProcess } from '../helpers/netns-server.js';
import { skipWithoutRedis, startRedis, type RunningRedis } from '../helpers/redis.js';
import { freePort, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutRedis();

interface ClusterView {
  nodes: { name: string; url: string }[];
  feeds: { feed: string; node: string }[];
  localRelays: { feed: string; from: string; origin: string }[];
}

interface WorkersNode {
  readonly url: string;
  readonly process: ServerProcess;
}

/** Node `name` with Workers 2 on its own loopback address, in the cluster of `redis`; resolves when both workers serve. */
async function startWorkersNode(t: TestContext, redis: RunningRedis, name: string, address: string): Promise<WorkersNode> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `feedcast-workers-node-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const url = `http://${address}:${port}`;
  const conf = join(dir, 'node.conf');
  writeFileSync(
    conf,
    [
      `HTTPPort ${port}`,
      `HTTPBindAddress ${address}`,
      `ClusterRedis ${redis.url}`,
      `NodeName ${name}`,
      `NodeURL ${url}`,
      'NodeTTL 1.5',
      'RelayIdleTimeout 1',
      'DynamicFeeds on',
      'PublisherGracePeriod 3',
      'Workers 2',
      '',
    ].join('\n'),
  );
  // RTMP off: its default port would be shared by both nodes.
  const process = await startServerProcess(t, ['-f', conf], { FEEDCAST_RTMP_PORT: '0', FEEDCAST_EXIT_ON_UNHANDLED: '1' });
  await waitFor(`node ${name}'s two workers`, () => process.lines().some((l) => l.msg === 'workers ready'), 90_000);
  return { url, process };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = await res.text();
  assert.equal(res.status, 200, `${url}: ${body}`);
  return JSON.parse(body) as T;
}

/** The internal URL of worker `nodeName` (`a-w2`), once Redis lists it. */
async function workerUrl(node: WorkersNode, nodeName: string): Promise<string> {
  let url: string | undefined;
  await waitFor(
    `${nodeName} in the registry`,
    async () => {
      url = (await getJson<ClusterView>(`${node.url}/api/v1/cluster`)).nodes.find((n) => n.name === nodeName)?.url;
      return url !== undefined;
    },
    30_000,
  );
  return url ?? '';
}

function assertDecodes(probe: Awaited<ReturnType<typeof probePackets>>, what: string): void {
  assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], what);
  assert.ok(probe.packets.filter((p) => p.codec_type === 'video').length >= 10, `${what}: video decoded`);
}

describe('Workers 2 with ClusterRedis: each worker a node of the cluster', { skip, timeout: 600_000 }, () => {
  test("a feed published on node A's worker 2 plays on node B, and on B's worker 2 itself", async (t) => {
    const redis = await startRedis(t);
    const a = await startWorkersNode(t, redis, 'a', '127.0.0.2');
    const b = await startWorkersNode(t, redis, 'b', '127.0.0.3');
    const aw2 = await workerUrl(a, 'a-w2');
    const bw2 = await workerUrl(b, 'b-w2');
    assert.match(aw2, /^http:\/\/127\.0\.0\.2:\d+$/, "A's worker 2 listens on A's address");
    assert.match(bw2, /^http:\/\/127\.0\.0\.3:\d+$/);
    const names = (await getJson<ClusterView>(`${b.url}/api/v1/cluster`)).nodes.map((n) => n.name).sort();
    assert.deepEqual(names, ['a-w1', 'a-w2', 'b-w1', 'b-w2']);

    // Published on A's worker 2 (its own port): the registry says so, as every node sees it.
    const publisher = publish(`${aw2}/cam.ffm`, { seconds: 240 });
    t.after(() => publisher.stop());
    await waitFor(
      "cam registered on a-w2, as node B's workers see it",
      async () =>
        (await getJson<ClusterView>(`${b.url}/api/v1/cluster`)).feeds.some((f) => f.feed === 'cam' && f.node === 'a-w2'),
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; publisher: ${publisher.stderr()}`);
    });

    // Node B's shared port (whichever worker takes it), then B's worker 2 at its own port.
    assertDecodes(await probePackets(`${b.url}/cam.ts`, 2, 90_000), 'cam read on node B');
    assertDecodes(await probePackets(`${b.url}/cam.flv`, 2, 90_000), 'cam read on node B over HTTP-FLV');
    let relayed: ClusterView['localRelays'] = [];
    const probe = probePackets(`${bw2}/cam.ts`, 3, 90_000);
    await waitFor(
      "b-w2's relay of cam from a-w2",
      async () => {
        relayed = (await getJson<ClusterView>(`${bw2}/api/v1/cluster`)).localRelays;
        return relayed.some((r) => r.feed === 'cam');
      },
      60_000,
    );
    assertDecodes(await probe, "cam read on B's worker 2");
    assert.deepEqual(
      relayed.map((r) => [r.feed, r.origin]),
      [['cam', 'a-w2']],
      "B's worker 2 relays cam from A's worker 2, where it is published",
    );
  });
});
