// Runs inside a network namespace made by test/integration/rtsp.test.ts (`unshare -n`, loopback
// with multicast on): Feedcast with a multicast `Format rtp` stream, a real ffmpeg publisher, and
// two multicast receivers (a raw socket joined to the group, and ffmpeg playing via RTSP SETUP
// multicast). Prints one JSON line with what they got.

import { createSocket } from 'node:dgram';
import { silentLogger } from '../../src/observability/logger.js';
import { RtspServer } from '../../src/protocols/rtsp/server.js';
import { decodeRtsp, probeRtsp } from './rtsp-tools.js';
import { publish } from './media-tools.js';
import { startLoopbackServer } from './test-server.js';

const GROUP = '239.255.42.42';
const PORT = 5000;

async function main(): Promise<void> {
  const server = await startLoopbackServer(
    `<Feed feed1.ffm>\n</Feed>\n<Stream mc.sdp>\nFeed feed1.ffm\nFormat rtp\nMulticastAddress ${GROUP}\nMulticastPort ${PORT}\nMulticastTTL 1\n</Stream>\n`,
    'multicast.conf',
    { log: silentLogger },
  );
  const rtsp = new RtspServer(server.ctx, { multicastInterface: '127.0.0.1' });
  const port = await rtsp.listen(0, '127.0.0.1');
  const pub = publish(`http://127.0.0.1:${server.httpPort}/feed1.ffm`, { codecs: 'h264-aac', seconds: 30 });
  const raw = new Map<number, number>();
  const sockets = [PORT, PORT + 2].map((p) => {
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    s.on('message', () => raw.set(p, (raw.get(p) ?? 0) + 1));
    s.bind(p, GROUP, () => s.addMembership(GROUP, '127.0.0.1'));
    return s;
  });
  try {
    const feed = server.ctx.feeds.get('feed1');
    const deadline = Date.now() + 15_000;
    while ((feed?.tracks.length ?? 0) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const url = `rtsp://127.0.0.1:${port}/mc.sdp`;
    const probe = await probeRtsp(url, 'udp_multicast', 2);
    const decoded = await decodeRtsp(url, 'udp_multicast', 3);
    process.stdout.write(
      JSON.stringify({
        codecs: probe.streams.map((s) => s.codec_name).sort(),
        videoFrames: decoded.videoFrames,
        audioFrames: decoded.audioFrames,
        errors: decoded.errors,
        rawPackets: Object.fromEntries(raw),
      }) + '\n',
    );
  } finally {
    for (const s of sockets) s.close();
    await pub.stop();
    await rtsp.close();
    await server.close();
  }
}

main().catch((err: unknown) => {
  process.stdout.write(JSON.stringify({ failed: err instanceof Error ? err.message : String(err) }) + '\n');
  process.exitCode = 1;
});
