// Issue 20 (a Feedcast cluster): real processes only. A redis-server and Feedcast nodes, each its own child
// process on its own loopback address (127.0.0.2, 127.0.0.3), all started and stopped by PID. ffmpeg publishes
// on one node; ffprobe and ffmpeg read on another, which relays the feed from the first.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';
import { splitLengthPrefixed } from '../../src/formats/h264/nal.js';
import { NalDepacketizer } from '../../src/formats/rtp/nal-rtp.js';
import { nativeSrt } from '../../src/protocols/srt/native-srt.js';
import { withoutFallbackStun } from '../../src/protocols/webrtc/peer.js';
import { rtpPacketOf } from '../../src/protocols/webrtc/to-feed.js';
import { decodeFrames, FFPROBE, probePackets, publish, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startServerProcess, type ServerProcess } from '../helpers/netns-server.js';
import { skipWithoutRedis, startRedis, type RunningRedis } from '../helpers/redis.js';
import { skipWithoutChromium } from '../helpers/browser.js';
import { SIMULCAST_WHIP_CLIENT } from '../helpers/webrtc-browser.js';
import { sharedWebRtcBrowser } from '../helpers/webrtc-server.js';
import { freePort, freePorts, waitFor } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg() || skipWithoutRedis();

interface Node {
  readonly name: string;
  readonly url: string;
  readonly process: ServerProcess;
}

interface ClusterView {
  redis: 'up' | 'down';
  redisOutages: number;
  nodes: { name: string; url: string }[];
  feeds: { feed: string; node: string; tracks: { codec: string }[] }[];
  relays: { feed: string; node: string; from: string; bytes: number }[];
  localRelays: {
    feed: string;
    from: string;
    origin: string;
    state: string;
    readers: number;
    bytes: number;
    reconnects: number;
    delayMs?: number;
  }[];
}

/** The samples of one metric of `node`'s /metrics, by their label text. */
async function metricOf(node: Node, name: string): Promise<Map<string, number>> {
  const res = await fetch(`${node.url}/metrics`);
  const text = await res.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m !== null) samples.set(m[1] ?? '', Number(m[2]));
  }
  return samples;
}

/** A viewer that reads `url` (discarding it) until `stop()` or the end of the test. Resolves once data came. */
async function holdReader(t: TestContext, url: string): Promise<{ firstBytesMs: number; stop: () => Promise<void> }> {
  const startedAt = performance.now();
  const res = await fetch(url);
  if (res.status !== 200) assert.fail(`${url}: ${res.status} ${await res.text()}`);
  const body = res.body?.getReader();
  await body?.read();
  const firstBytesMs = Math.round(performance.now() - startedAt);
  let reading = true;
  const drained = (async () => {
    while (reading && body !== undefined && !(await body.read()).done);
  })().catch(() => undefined);
  const stop = async (): Promise<void> => {
    if (!reading) return;
    reading = false;
    await body?.cancel().catch(() => undefined);
    await drained;
  };
  t.after(stop);
  return { firstBytesMs, stop };
}

async function pageOf(node: Node, path: string): Promise<string> {
  const res = await fetch(`${node.url}${path}`);
  return res.text();
}

interface ConnectionView {
  id: number;
  role: string;
  target: string;
  remoteAddress: string;
}

/** Starts one Feedcast node on its own loopback address, in the cluster of `redis`. */
async function startNode(t: TestContext, redis: RunningRedis, name: string, address: string, extra = ''): Promise<Node> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `feedcast-node-${name}-`));
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
      // A test that gives its own NodeTTL (a slow heartbeat) replaces this one.
      /^NodeTTL /m.test(extra) ? '' : 'NodeTTL 1.5',
      'RelayIdleTimeout 1',
      'DynamicFeeds on',
      'DynamicFeedTimeout 2',
      'PublisherGracePeriod 3',
      extra,
      '',
    ].join('\n'),
  );
  // RTMP off unless the test gives the node an RTMPPort (its default port would be shared by every node).
  const env: Record<string, string> = /^RTMPPort /m.test(extra) ? {} : { FEEDCAST_RTMP_PORT: '0' };
  const process = await startServerProcess(t, ['-f', conf], { ...env, FEEDCAST_EXIT_ON_UNHANDLED: '1' });
  return { name, url, process };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = await res.text();
  assert.equal(res.status, 200, `${url}: ${body}`);
  return JSON.parse(body) as T;
}

const clusterOf = (node: Node): Promise<ClusterView> => getJson<ClusterView>(`${node.url}/api/v1/cluster`);

/**
 * Whether `node`'s own view of the nodes (read at its heartbeat, what RelayVia and the loop guard use; the
 * status page lists it) holds every one of `names`. /api/v1/cluster reads Redis at the request instead.
 */
async function knowsFeed(node: Node, feed: string): Promise<boolean> {
  // A lookup by name through the API makes no relay (tested below); it answers from the node's own mirror.
  const res = await fetch(`${node.url}/api/v1/feeds/${feed}`);
  await res.text();
  return res.status === 200;
}

async function seesNodes(node: Node, names: readonly string[]): Promise<boolean> {
  const page = await pageOf(node, '/stat.html');
  return names.every((name) => page.includes(`<tr><td>${name}`));
}

/** The PTS (90 kHz) of each video frame of `node`'s /FEED.ts over 10 s, by the MD5 of its bytes (ffprobe). */
async function videoPtsByHash(node: Node, feed: string): Promise<Map<string, number>> {
  const args = ['-v', 'error', '-select_streams', 'v:0', '-read_intervals', '%+10', '-show_data_hash', 'MD5'];
  const probe = await run(
    FFPROBE,
    args.concat(['-show_entries', 'packet=pts,data_hash', '-of', 'json', `${node.url}/${feed}.ts`]),
    90_000,
  );
  assert.equal(probe.code, 0, probe.stderr);
  const { packets } = JSON.parse(probe.stdout) as { packets: { pts?: number; data_hash?: string }[] };
  const byHash = new Map<string, number>();
  for (const p of packets) {
    if (p.pts !== undefined && p.data_hash !== undefined && !byHash.has(p.data_hash)) byHash.set(p.data_hash, p.pts);
  }
  return byHash;
}

/** The reader connections of `feed` on `node` (the origin's egress: one per relay, one per direct viewer). */
async function readersOn(node: Node, feed: string): Promise<ConnectionView[]> {
  const { connections } = await getJson<{ connections: ConnectionView[] }>(`${node.url}/api/v1/connections`);
  return connections.filter((c) => c.role === 'reader' && c.target.startsWith(feed));
}

describe('cluster (ClusterRedis): membership and on-demand relays between nodes', { skip, timeout: 240_000 }, () => {
  test('nodes and the feeds published on them are registered; a feed leaves with its publisher, a killed node by TTL', async (t) => {
    const redis = await startRedis(t);
    const a = await startNode(t, redis, 'node-a', '127.0.0.2');
    const b = await startNode(t, redis, 'node-b', '127.0.0.3');

    await waitFor(
      'both nodes in the registry',
      async () =>
        (await clusterOf(b)).nodes
          .map((n) => n.name)
          .sort()
          .join() === 'node-a,node-b',
      30_000,
    );
    const publisher = publish(`${a.url}/cam1`, { seconds: 60 });
    t.after(() => publisher.stop());
    await waitFor(
      'cam1 registered to node-a with its tracks',
      async () => {
        const feed = (await clusterOf(b)).feeds.find((f) => f.feed === 'cam1');
        return (
          feed?.node === 'node-a' &&
          feed.tracks
            .map((x) => x.codec)
            .sort()
            .join() === 'aac,h264'
        );
      },
      60_000,
    );
    const view = await clusterOf(b);
    assert.equal(view.redis, 'up');
    assert.deepEqual(view.nodes.find((n) => n.name === 'node-a')?.url, a.url, 'the node is registered with its NodeURL');

    await publisher.stop();
    await waitFor(
      'cam1 removed when its publisher left',
      async () => !(await clusterOf(b)).feeds.some((f) => f.feed === 'cam1'),
      30_000,
    );

    // A node that dies without leaving: its registration expires (NodeTTL 1.5 s).
    a.process.child.kill('SIGKILL');
    await waitFor('node-a dropped by TTL', async () => !(await clusterOf(b)).nodes.some((n) => n.name === 'node-a'), 30_000);
  });

  test('a reader on an edge decodes a feed published on the origin; many edge readers make one pull; it stops when idle', async (t) => {
    const redis = await startRedis(t);
    const origin = await startNode(t, redis, 'origin', '127.0.0.2');
    const edge = await startNode(t, redis, 'edge', '127.0.0.3');

    const publisher = publish(`${origin.url}/cam1`, { seconds: 120 });
    t.after(() => publisher.stop());
    await waitFor(
      'cam1 known to the edge',
      async () => (await clusterOf(edge)).feeds.some((f) => f.feed === 'cam1') && (await knowsFeed(edge, 'cam1')),
      60_000,
    );
    // Before: the edge has no such feed of its own, and nothing reads the origin.
    assert.equal((await readersOn(origin, 'cam1')).length, 0);
    // Looking the feed up by name (API, player page) starts no relay: only readers do (issue 20, part 2).
    for (const path of ['/api/v1/feeds/cam1', '/api/v1/recordings/cam1', '/watch/cam1']) await fetch(`${edge.url}${path}`);
    assert.deepEqual((await clusterOf(edge)).localRelays, [], 'no relay on the edge after API lookups');
    assert.equal((await readersOn(origin, 'cam1')).length, 0, 'and nothing reads the origin');

    // The relay stream (what an edge reads: /FEED.ts with the relay header, each PES end marked) is MPEG-TS
    // that ffprobe reads as it reads the plain one.
    const relayStream = await run(
      FFPROBE,
      ['-v', 'error', '-headers', 'X-Feedcast-Relay: probe\r\n', '-read_intervals', '%+2'].concat([
        '-show_streams',
        '-show_packets',
        '-of',
        'json',
        `${origin.url}/cam1.ts`,
      ]),
      60_000,
    );
    assert.equal(relayStream.code, 0, relayStream.stderr);
    const relayProbe = JSON.parse(relayStream.stdout) as { streams: { codec_name: string }[]; packets: { codec_type: string }[] };
    assert.deepEqual(relayProbe.streams.map((x) => x.codec_name).sort(), ['aac', 'h264'], 'ffprobe reads the relay stream');
    assert.ok(relayProbe.packets.filter((p) => p.codec_type === 'video').length >= 25, 'its video packets');

    // A reader on the edge: the edge pulls cam1 from the origin and serves it (MPEG-TS here, FLV below).
    const probe = await probePackets(`${edge.url}/cam1.ts`, 3, 60_000);
    assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], 'the edge serves both tracks');
    assert.ok(probe.packets.filter((p) => p.codec_type === 'video').length > 25, 'video packets from the edge');

    // A viewer held open while the relay is checked below (the others end on their own).
    const held = await holdReader(t, `${edge.url}/cam1.flv`);
    // Several readers at once, in two formats: the edge still pulls once. (A TS reader starts with the feed's
    // last seconds, so each reads long enough to overlap the others.)
    const readers = [
      decodeFrames(`${edge.url}/cam1.ts`, 12, 90_000),
      decodeFrames(`${edge.url}/cam1.flv`, 12, 90_000),
      decodeFrames(`${edge.url}/cam1.ts`, 12, 90_000),
    ];
    await waitFor(
      'four readers on the edge',
      async () => {
        const { connections } = await getJson<{ connections: ConnectionView[] }>(`${edge.url}/api/v1/connections`);
        return connections.filter((c) => c.role === 'reader' && c.target.startsWith('cam1')).length >= 4;
      },
      60_000,
    );
    const pulls = await readersOn(origin, 'cam1');
    assert.equal(pulls.length, 1, `one pull from the origin for all the edge's readers: ${JSON.stringify(pulls)}`);
    assert.equal(pulls[0]?.remoteAddress, '127.0.0.3', 'the pull comes from the edge');
    for (const decoded of await Promise.all(readers)) {
      assert.ok(decoded.videoFrames >= 200, `an edge reader decodes video (${decoded.videoFrames} frames; ${decoded.errors})`);
      assert.ok(decoded.audioFrames > 0, 'and audio');
    }
    const edgeView = await clusterOf(edge);
    const relay = edgeView.localRelays.find((r) => r.feed === 'cam1');
    assert.equal(relay?.from, 'origin');
    assert.ok((relay?.bytes ?? 0) > 0, 'the relay counts its bytes');
    assert.ok(relay?.delayMs !== undefined && relay.delayMs >= 0, `the relay measures its delay: ${JSON.stringify(relay)}`);
    t.diagnostic(`delay added by the relay hop (median of the last frames, loaded machine): ${relay.delayMs} ms`);
    await waitFor(
      'the relay listed in the registry (next heartbeat)',
      async () => (await clusterOf(origin)).relays.some((r) => r.feed === 'cam1' && r.node === 'edge' && r.from === 'origin'),
      30_000,
    );
    // Visibility: metrics and the status pages of both ends.
    assert.ok((await metricOf(edge, 'feedcast_relay_bytes_total')).get('{feed="cam1"}')! > 0, 'feedcast_relay_bytes_total');
    assert.equal((await metricOf(edge, 'feedcast_relay_reconnects_total')).get('{feed="cam1"}'), 0);
    assert.ok((await metricOf(edge, 'feedcast_relay_delay_seconds')).has('{feed="cam1",from="origin"}'), 'relay delay gauge');
    assert.equal((await metricOf(edge, 'feedcast_cluster_redis_up')).get(''), 1);
    assert.match(await pageOf(edge, '/stat.html'), /Origin: node origin \(http:\/\/127\.0\.0\.2:\d+\), relayed here: relaying/);
    await waitFor(
      'the origin status page to list the relay',
      async () => /Relayed by: edge/.test(await pageOf(origin, '/stat.html')),
      30_000,
    );

    // No reader left: the edge stops pulling after RelayIdleTimeout (1 s).
    await held.stop();
    await waitFor('the pull to stop', async () => (await readersOn(origin, 'cam1')).length === 0, 60_000);
    await waitFor(
      'the relay to leave the registry',
      async () => !(await clusterOf(origin)).relays.some((r) => r.feed === 'cam1'),
      30_000,
    );
    assert.equal((await clusterOf(edge)).localRelays.length, 0);
  });

  test('RTMP and RTSP viewers on an edge get a feed relayed from the origin', async (t) => {
    const redis = await startRedis(t);
    const origin = await startNode(t, redis, 'origin', '127.0.0.2');
    const [rtmpPort, rtspPort] = await freePorts(2);
    const edge = await startNode(t, redis, 'edge', '127.0.0.3', `RTMPPort ${rtmpPort}\nRTSPPort ${rtspPort}`);
    const publisher = publish(`${origin.url}/cam1`, { seconds: 120 });
    t.after(() => publisher.stop());
    await waitFor(
      'cam1 known to the edge',
      async () => (await clusterOf(edge)).feeds.some((f) => f.feed === 'cam1') && (await knowsFeed(edge, 'cam1')),
      60_000,
    );

    for (const url of [`rtmp://127.0.0.3:${rtmpPort}/live/cam1`, `rtsp://127.0.0.3:${rtspPort}/cam1`]) {
      const probe = await probePackets(url, 2, 90_000);
      assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], url);
      assert.ok(
        probe.packets.some((p) => p.codec_type === 'video'),
        `${url}: video packets`,
      );
    }
    assert.equal((await clusterOf(edge)).localRelays.find((r) => r.feed === 'cam1')?.from, 'origin');
  });

  test("an edge keeps the origin's timeline: the same frame has the same PTS on both nodes", async (t) => {
    // Issue 20 (the edge "keeps the feed's timeline"): a relayed feed's clock started near 0 on the edge, so the same
    // picture had another time on every node (HLS dates, RTSP Range clock=, ?date= lookups differed per node).
    const redis = await startRedis(t);
    const origin = await startNode(t, redis, 'origin', '127.0.0.2', 'ControlUser admin s3cret');
    const edge = await startNode(t, redis, 'edge', '127.0.0.3');
    const publisher = publish(`${origin.url}/cam1`, { seconds: 120 });
    t.after(() => publisher.stop());
    await waitFor(
      'cam1 known to the edge',
      async () => (await clusterOf(edge)).feeds.some((f) => f.feed === 'cam1') && (await knowsFeed(edge, 'cam1')),
      60_000,
    );
    // Seconds of the origin's timeline first: the edge's first frame (the origin's last keyframe) is not at 0 there.
    await probePackets(`${origin.url}/cam1.ts`, 3, 60_000);
    // A viewer that keeps the relay running through the test (so that it connects again below, not anew).
    await holdReader(t, `${edge.url}/cam1.flv`);
    /** The same frames on both nodes at once (the origin's reader starts seconds back, the edge's at a keyframe). */
    const ptsSteps = async (): Promise<number[]> => {
      const [atOrigin, atEdge] = await Promise.all([videoPtsByHash(origin, 'cam1'), videoPtsByHash(edge, 'cam1')]);
      return [...atEdge].flatMap(([hash, pts]) => {
        const there = atOrigin.get(hash);
        return there === undefined ? [] : [pts - there];
      });
    };
    const steps = await ptsSteps();
    assert.ok(steps.length >= 50, `frames seen on both nodes (by their bytes): ${steps.length}`);
    const worst = Math.max(...steps.map((d) => Math.abs(d)));
    assert.ok(worst <= 3600, `a frame's PTS on the edge minus on the origin: up to ${worst} (90 kHz; a frame is 3600)`);
    t.diagnostic(`same frames on both nodes: ${steps.length}, largest PTS difference ${worst}`);

    // The relay connects again (an operator closes it on the origin) and starts with the origin's GOP, partly
    // relayed already: the edge skips what it had, and stays on the origin's timeline.
    const pull = (await readersOn(origin, 'cam1')).find((c) => c.remoteAddress === '127.0.0.3');
    assert.ok(pull !== undefined, "the edge's pull");
    const kicked = await fetch(`${origin.url}/api/v1/connections/${pull.id}`, {
      method: 'DELETE',
      headers: { Authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` },
    });
    assert.equal(kicked.status, 200, await kicked.text());
    await waitFor(
      'the edge relaying again',
      async () =>
        (await clusterOf(edge)).localRelays.some((r) => r.feed === 'cam1' && r.reconnects >= 1 && r.state === 'relaying'),
      60_000,
    );
    const again = await ptsSteps();
    assert.ok(again.length >= 50, `frames seen on both nodes after the reconnection: ${again.length}`);
    const worstAgain = Math.max(...again.map((d) => Math.abs(d)));
    assert.ok(worstAgain <= 3600, `after the reconnection, the PTS on the edge minus on the origin: up to ${worstAgain}`);
  });

  test('RelayVia: a leaf relays through its parent, which alone pulls from the origin', async (t) => {
    const redis = await startRedis(t);
    const origin = await startNode(t, redis, 'origin', '127.0.0.2');
    const mid = await startNode(t, redis, 'mid', '127.0.0.3');
    const leaf = await startNode(t, redis, 'leaf', '127.0.0.4', 'RelayVia mid');
    const publisher = publish(`${origin.url}/cam1`, { seconds: 120 });
    t.after(() => publisher.stop());
    await waitFor(
      'the leaf to know the three nodes and cam1',
      async () => {
        const view = await clusterOf(leaf);
        const known = view.nodes.length === 3 && view.feeds.some((f) => f.feed === 'cam1');
        return known && (await seesNodes(leaf, ['mid'])) && (await knowsFeed(leaf, 'cam1')) && (await knowsFeed(mid, 'cam1'));
      },
      60_000,
    );

    // A cold leaf: the first bytes come after two relays start (printed, not asserted: a loaded machine). That
    // viewer goes on reading while the relays are checked, so that none of them idles out meanwhile.
    const viewer = await holdReader(t, `${leaf.url}/cam1.ts`);
    t.diagnostic(`first bytes from a cold leaf (origin -> mid -> leaf): ${viewer.firstBytesMs} ms`);

    const decoded = await decodeFrames(`${leaf.url}/cam1.ts`, 3, 90_000);
    assert.ok(decoded.videoFrames >= 50, `the leaf serves cam1 (${decoded.videoFrames} frames; ${decoded.errors})`);
    const fromOrigin = await readersOn(origin, 'cam1');
    assert.deepEqual(
      fromOrigin.map((c) => c.remoteAddress),
      ['127.0.0.3'],
      'the origin is read once, by the parent',
    );
    assert.deepEqual(
      (await readersOn(mid, 'cam1')).map((c) => c.remoteAddress),
      ['127.0.0.4'],
      'the parent serves the leaf',
    );
    const leafRelay = (await clusterOf(leaf)).localRelays.find((r) => r.feed === 'cam1');
    assert.equal(leafRelay?.from, 'mid', 'the leaf reads its parent');
    assert.equal(leafRelay?.origin, 'origin');
  });

  test('a node sees another join or leave at once (announced), not at its next heartbeat: a new RelayVia parent is used', async (t) => {
    // Issue 20: a node learnt of a newly started node only at its heartbeat (NodeTTL/3), so a leaf whose RelayVia
    // parent had just started read the origin itself until then. NodeTTL 300: no heartbeat within this test.
    const redis = await startRedis(t);
    const origin = await startNode(t, redis, 'origin', '127.0.0.2', 'NodeTTL 300');
    const leaf = await startNode(t, redis, 'leaf', '127.0.0.4', 'NodeTTL 300\nRelayVia mid');
    const publisher = publish(`${origin.url}/cam1`, { seconds: 120 });
    t.after(() => publisher.stop());
    await waitFor('the leaf to know cam1', () => knowsFeed(leaf, 'cam1'), 60_000);
    assert.equal(await seesNodes(leaf, ['mid']), false, 'no parent yet');

    const mid = await startNode(t, redis, 'mid', '127.0.0.3', 'NodeTTL 300');
    await waitFor('the leaf to see mid join', () => seesNodes(leaf, ['mid']), 20_000);
    const decoded = await decodeFrames(`${leaf.url}/cam1.ts`, 2, 90_000);
    assert.ok(decoded.videoFrames >= 25, `the leaf serves cam1 (${decoded.videoFrames} frames; ${decoded.errors})`);
    const leafRelay = (await clusterOf(leaf)).localRelays.find((r) => r.feed === 'cam1');
    assert.equal(leafRelay?.from, 'mid', 'the leaf reads its new parent');

    // A clean stop leaves the registry and says so: the leaf sees mid go at once too.
    mid.process.child.kill('SIGTERM');
    await waitFor('the leaf to see mid leave', async () => !(await seesNodes(leaf, ['mid'])), 20_000);
  });

  test('RelayVia loop (A via B via A): refused with 508 and logged; the node relays from the origin instead', async (t) => {
    const redis = await startRedis(t);
    const origin = await startNode(t, redis, 'origin', '127.0.0.2');
    const a = await startNode(t, redis, 'node-a', '127.0.0.3', 'RelayVia node-b');
    const b = await startNode(t, redis, 'node-b', '127.0.0.4', 'RelayVia node-a');
    const publisher = publish(`${origin.url}/cam1`, { seconds: 120 });
    t.after(() => publisher.stop());
    await waitFor(
      'both nodes to know the three nodes and cam1',
      async () => {
        const views = await Promise.all([clusterOf(a), clusterOf(b)]);
        const known = views.every((v) => v.nodes.length === 3 && v.feeds.some((f) => f.feed === 'cam1'));
        return (
          known &&
          (await seesNodes(a, ['node-b'])) &&
          (await seesNodes(b, ['node-a'])) &&
          (await knowsFeed(a, 'cam1')) &&
          (await knowsFeed(b, 'cam1'))
        );
      },
      60_000,
    );

    // node-a asked to relay cam1 for node-b: node-a would read it from node-b, which asks.
    const refused = await fetch(`${a.url}/cam1.ts`, { headers: { 'X-Feedcast-Relay': 'node-b' } });
    assert.equal(refused.status, 508);
    assert.match(await refused.text(), /RelayVia loop: node node-b relays cam1 through node-a.*node-b -> node-a -> node-b/);
    assert.ok(
      a.process
        .lines()
        .some((l) => l.msg === 'cluster: relay refused, RelayVia loop' && l['chain'] === 'node-b -> node-a -> node-b'),
      'the refusal is logged',
    );
    assert.deepEqual((await clusterOf(a)).localRelays, [], 'a refused relay starts nothing');

    // A viewer on node-a: node-a asks node-b, which refuses (node-b would go through node-a); node-a reads the origin.
    const decoded = await decodeFrames(`${a.url}/cam1.ts`, 3, 90_000);
    assert.ok(decoded.videoFrames >= 50, `the viewer decodes (${decoded.videoFrames} frames; ${decoded.errors})`);
    assert.ok(
      b.process.lines().some((l) => l.msg === 'cluster: relay refused, RelayVia loop' && l['from'] === 'node-a'),
      'node-b logs the loop it refused',
    );
    assert.ok(
      a.process
        .lines()
        .some((l) => /RelayVia loop, refused by the parent/.test(l.msg ?? '') && /RelayVia loop/.test(String(l['reason']))),
      'node-a logs the refusal with its reason',
    );
    assert.deepEqual(
      (await readersOn(origin, 'cam1')).map((c) => c.remoteAddress),
      ['127.0.0.3'],
      'node-a reads the origin itself',
    );
  });

  test('WHEP and SRT readers on an edge get a feed relayed from the origin', async (t) => {
    const srt = nativeSrt();
    const redis = await startRedis(t);
    const origin = await startNode(t, redis, 'origin', '127.0.0.2');
    const srtPort = await freePort();
    const srtConf = srt.module !== undefined ? `SRTPort ${srtPort}\nSRTBindAddress 127.0.0.3` : '';
    const edge = await startNode(t, redis, 'edge', '127.0.0.3', srtConf);
    const publisher = publish(`${origin.url}/cam1`, { seconds: 120 });
    t.after(() => publisher.stop());
    await waitFor(
      'cam1 known to the edge',
      async () => (await clusterOf(edge)).feeds.some((f) => f.feed === 'cam1') && (await knowsFeed(edge, 'cam1')),
      60_000,
    );

    // WHEP (werift, loopback, no STUN) on the cold edge: the offer waits for the relay's first frames.
    const pc = new RTCPeerConnection({
      codecs: {
        video: [
          new RTCRtpCodecParameters({
            mimeType: 'video/H264',
            clockRate: 90_000,
            parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
          }),
        ],
        audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48_000, channels: 2 })],
      },
      iceServers: [],
      iceUseIpv6: false,
      iceAdditionalHostAddresses: ['127.0.0.1'],
    });
    withoutFallbackStun(pc);
    t.after(() => pc.close());
    pc.addTransceiver('video', { direction: 'recvonly' });
    const depacketizer = new NalDepacketizer('h264');
    const units: { keyframe: boolean; data: Buffer }[] = [];
    pc.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        for (const f of depacketizer.push(rtpPacketOf(rtp))) if (units.length > 0 || f.keyframe) units.push(f);
      });
    });
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(`${edge.url}/cam1/whep`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: pc.localDescription?.sdp ?? '',
    });
    const answer = await res.text();
    assert.equal(res.status, 201, answer);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    await waitFor('50 H.264 access units over WHEP from the edge', () => units.length >= 50, 90_000);
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-edge-whep-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'received.h264');
    const start = Buffer.from([0, 0, 0, 1]);
    const received = units.slice(0, 50);
    writeFileSync(file, Buffer.concat(received.flatMap((u) => splitLengthPrefixed(u.data).flatMap((nal) => [start, nal]))));
    const whep = await decodeFrames(file, 3600);
    assert.equal(whep.errors, '', 'what WHEP delivered decodes without errors');
    assert.equal(whep.videoFrames, 50, 'every access unit received decodes');
    assert.equal((await clusterOf(edge)).localRelays.find((r) => r.feed === 'cam1')?.from, 'origin', 'relayed from the origin');

    if (srt.module === undefined) {
      t.diagnostic(`SRT part skipped: ${srt.status}`);
      return;
    }
    const viaSrt = await probePackets(`srt://127.0.0.3:${srtPort}?streamid=${encodeURIComponent('read:cam1')}`, 2, 90_000);
    assert.deepEqual(viaSrt.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], 'SRT from the edge');
    assert.ok(viaSrt.packets.filter((p) => p.codec_type === 'video').length >= 25, 'video packets over SRT');
    assert.deepEqual(
      (await readersOn(origin, 'cam1')).map((c) => c.remoteAddress),
      ['127.0.0.3'],
      'one pull from the origin for the WHEP and SRT viewers',
    );
  });

  test('an edge serves a relayed feed over HLS, and runs the declared <Stream>s (encodings) itself', async (t) => {
    const redis = await startRedis(t);
    const declared = [
      '<Feed cam1.ffm>',
      '</Feed>',
      '<Stream cam.mjpg>',
      'Feed cam1.ffm',
      'Format mpjpeg',
      'VideoSize 160x120',
      'VideoFrameRate 5',
      'NoAudio',
      '</Stream>',
    ].join('\n');
    const origin = await startNode(t, redis, 'origin', '127.0.0.2', declared);
    const edge = await startNode(t, redis, 'edge', '127.0.0.3', declared);
    const publisher = publish(`${origin.url}/cam1`, { seconds: 120 });
    t.after(() => publisher.stop());
    await waitFor('cam1 on the origin', async () => (await clusterOf(edge)).feeds.some((f) => f.feed === 'cam1'), 60_000);

    // HLS on the edge: the playlist request waits for the relay's first frames, then ffprobe reads segments.
    const hls = await probePackets(`${edge.url}/cam1/index.m3u8`, 3, 90_000);
    assert.deepEqual(hls.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], 'HLS from the edge');
    // The declared encoding runs on the edge, from the relayed feed (the origin runs no ffmpeg for it).
    const mjpeg = await decodeFrames(`${edge.url}/cam.mjpg`, 2, 90_000);
    assert.ok(mjpeg.videoFrames >= 5, `the edge's MJPEG stream decodes (${mjpeg.videoFrames} frames; ${mjpeg.errors})`);
    const running = (node: Node): Promise<number> =>
      getJson<{ transcoders: { running: boolean }[] }>(`${node.url}/api/v1/transcoders`).then(
        (v) => v.transcoders.filter((x) => x.running).length,
      );
    assert.equal(await running(origin), 0, 'no transcoder on the origin');
    assert.ok((await running(edge)) >= 1, 'the edge encoded it');
    assert.ok((await readersOn(origin, 'cam1')).length <= 1, 'the origin still sends cam1 once');
  });

  test('failover: the publisher moves from node A to node C; the edge pulls from C and its viewer keeps decoding', async (t) => {
    const redis = await startRedis(t);
    const a = await startNode(t, redis, 'node-a', '127.0.0.2');
    const b = await startNode(t, redis, 'node-b', '127.0.0.3');
    const c = await startNode(t, redis, 'node-c', '127.0.0.4');

    const first = publish(`${a.url}/cam1`, { seconds: 120 });
    t.after(() => first.stop());
    await waitFor(
      'cam1 on node-a',
      async () =>
        (await clusterOf(b)).feeds.some((f) => f.feed === 'cam1' && f.node === 'node-a') && (await knowsFeed(b, 'cam1')),
      60_000,
    );
    // A viewer on B for 24 s of media: it starts with about 6 s of backlog, so it must still be reading after the move.
    const viewer = decodeFrames(`${b.url}/cam1.ts`, 24, 120_000);
    // And one on A itself, the old origin: A relays the feed from C into the same feed for it (timeline continuing).
    const onOldOrigin = decodeFrames(`${a.url}/cam1.ts`, 24, 120_000);
    await waitFor('the viewer on node-a', async () => (await readersOn(a, 'cam1')).length >= 2, 60_000);
    await waitFor(
      'the edge relaying from node-a',
      async () => (await clusterOf(b)).localRelays.some((r) => r.from === 'node-a' && r.state === 'relaying'),
      60_000,
    );
    await first.stop();
    const second = publish(`${c.url}/cam1`, { seconds: 120 });
    t.after(() => second.stop());
    await waitFor(
      'the edge relaying from node-c',
      async () =>
        (await clusterOf(b)).localRelays.some((r) => r.feed === 'cam1' && r.from === 'node-c' && r.state === 'relaying'),
      60_000,
    );
    await waitFor(
      'node-a relaying from node-c for its own viewer',
      async () =>
        (await clusterOf(a)).localRelays.some((r) => r.feed === 'cam1' && r.from === 'node-c' && r.state === 'relaying'),
      60_000,
    );
    assert.deepEqual(
      (await readersOn(c, 'cam1')).map((r) => r.remoteAddress).sort(),
      ['127.0.0.2', '127.0.0.3'],
      'the edge and the old origin pull from the new origin, once each',
    );
    assert.ok(
      a.process.lines().some((l) => /the feed moved to another node; relaying it from there/.test(l.msg ?? '')),
      'node-a says why it relays its own feed',
    );
    const decoded = await viewer;
    assert.ok(decoded.videoFrames >= 24 * 25 * 0.9, `the viewer kept decoding across the move (${decoded.videoFrames} frames)`);
    const direct = await onOldOrigin;
    assert.ok(
      direct.videoFrames >= 24 * 25 * 0.9,
      `the viewer of the old origin kept decoding across the move (${direct.videoFrames} frames; ${direct.errors})`,
    );
    assert.ok(
      (await metricOf(b, 'feedcast_relay_reconnects_total')).get('{feed="cam1"}')! >= 1,
      'the move counts as a reconnect',
    );
  });

  test('a node started while Redis is down serves at once and joins when Redis comes', async (t) => {
    const redis = await startRedis(t);
    await redis.stop();
    const lone = await startNode(t, redis, 'lone', '127.0.0.2');
    assert.equal((await clusterOf(lone)).redis, 'down');
    await redis.restart();
    await waitFor(
      'the node to join',
      async () => {
        const view = await clusterOf(lone);
        return view.redis === 'up' && view.nodes.some((n) => n.name === 'lone');
      },
      60_000,
    );
  });

  test('Redis going away: the nodes serve their own feeds and say so; when it is back they register again', async (t) => {
    const redis = await startRedis(t);
    const a = await startNode(t, redis, 'node-a', '127.0.0.2');
    const b = await startNode(t, redis, 'node-b', '127.0.0.3');
    const publisher = publish(`${a.url}/cam1`, { seconds: 120 });
    t.after(() => publisher.stop());
    await waitFor('cam1 registered', async () => (await clusterOf(b)).feeds.some((f) => f.feed === 'cam1'), 60_000);

    await redis.stop();
    await waitFor(
      'node-a to report the outage',
      () => a.process.lines().some((l) => /Redis is unreachable/.test(l.msg ?? '')),
      30_000,
    );
    assert.equal((await clusterOf(a)).redis, 'down');
    assert.equal((await metricOf(a, 'feedcast_cluster_redis_up')).get(''), 0);
    assert.equal((await metricOf(a, 'feedcast_cluster_redis_outages_total')).get(''), 1);
    assert.match(await pageOf(a, '/stat.html'), /Registry \(Redis\): <span class="warn">unreachable/);
    const local = await decodeFrames(`${a.url}/cam1.ts`, 2, 60_000);
    assert.ok(local.videoFrames >= 25, `the origin still serves its own feed (${local.videoFrames} frames)`);

    await redis.restart(); // empty: nothing persisted
    await waitFor(
      'cam1 registered again, read from Redis',
      async () => {
        const view = await clusterOf(b);
        return view.redis === 'up' && view.feeds.some((f) => f.feed === 'cam1' && f.node === 'node-a');
      },
      60_000,
    );
    // (each node sees Redis again on its own: b may see a's feed before a's view says up)
    await waitFor('node a to see Redis again', async () => (await clusterOf(a)).redis === 'up', 30_000);
    const view = await clusterOf(a);
    assert.ok(view.redisOutages >= 1);
    assert.ok(
      a.process.lines().some((l) => /Redis is back/.test(l.msg ?? '')),
      'the return is logged',
    );
  });
});

describe('cluster: simulcast layer feeds relayed', { skip: skip || skipWithoutChromium(), timeout: 240_000 }, () => {
  const browser = sharedWebRtcBrowser();

  test('an edge reader of FEED~RID pulls that layer from the origin', async (t) => {
    const redis = await startRedis(t);
    const origin = await startNode(t, redis, 'origin', '127.0.0.2');
    const edge = await startNode(t, redis, 'edge', '127.0.0.3');
    // Chromium publishes three layers (h 1280x720, m 640x360, l 320x180) to the origin over WHIP.
    const page = await browser().newPage();
    t.after(() => page.close());
    await page.goto(`${origin.url}/`);
    await page.evaluate(SIMULCAST_WHIP_CLIENT);
    const whip = await page.evaluate<{ status: number; text: string }>(
      `window.whipSimulcast(${JSON.stringify(`${origin.url}/cam/whip`)}, 'video/H264')`,
    );
    assert.equal(whip.status, 201, whip.text);
    await waitFor(
      'cam known to the edge',
      async () => (await clusterOf(edge)).feeds.some((f) => f.feed === 'cam') && (await knowsFeed(edge, 'cam')),
      60_000,
    );

    for (const [rid, size] of [
      ['l', '320x180'],
      ['h', '1280x720'],
    ] as const) {
      const probe = await probePackets(`${edge.url}/cam~${rid}.ts`, 2, 90_000);
      const video = probe.streams.find((s) => s.codec_type === 'video');
      assert.equal(`${video?.width ?? 0}x${video?.height ?? 0}`, size, `layer ${rid} from the edge`);
      assert.ok(probe.packets.filter((p) => p.codec_type === 'video').length >= 10, `video packets of layer ${rid}`);
    }
    const relays = (await clusterOf(edge)).localRelays.map((r) => `${r.feed}<-${r.from}`);
    assert.ok(
      relays.includes('cam~l<-origin') || relays.includes('cam~h<-origin'),
      `the edge relays the layers: ${relays.join()}`,
    );
  });
});
