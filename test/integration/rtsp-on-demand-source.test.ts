// RTSP readers of an on-demand Source feed (issue 3): the reader's DESCRIBE starts the ffmpeg child
// and waits for its tracks to answer with an SDP; the session holds the child while it lives, and
// once the last reader is gone (TEARDOWN, connection closed, UDP session timed out) the child stops
// after TranscodeIdleTimeout.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { parseRtpPacket } from '../../src/formats/rtp/rtp-packet.js';
import { skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { feedSource, sourceGone, startOnDemandClip } from '../helpers/on-demand-source.js';
import { decodeRtsp, probeRtsp, RawRtspClient, startRtsp, udpClientPorts } from '../helpers/rtsp-tools.js';
import { waitFor, type TestServer } from '../helpers/test-server.js';

const skip = skipWithoutFfmpeg();

function startSourced(t: TestContext): Promise<TestServer> {
  return startOnDemandClip(t, 'feedcast-rtsp-source-', 'a reader');
}

test('an RTSP reader brings an on-demand Source up; it stops after the reader leaves', { skip, timeout: 90_000 }, async (t) => {
  const server = await startSourced(t);
  const { url, rtsp } = await startRtsp(t, server);

  // ffprobe's DESCRIBE waits for the child's first tracks, then SETUP/PLAY: it sees the clip.
  const probe = await probeRtsp(url('/cam'), 'tcp', 2);
  const video = probe.streams.find((s) => s.codec_type === 'video');
  assert.equal(video?.codec_name, 'h264');
  assert.equal(video?.width, 160);
  assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
  const pid = feedSource(server, 'cam')?.pid;
  assert.ok(pid !== undefined, 'the source ran for the reader');
  await waitFor('the session to end', () => rtsp.sessionCount === 0);
  await sourceGone(server, 'cam', pid, 'the source to stop once idle');
  assert.equal(feedSource(server, 'cam')?.starts, 1, 'DESCRIBE and the session shared one start');

  // Again, with ffmpeg decoding: the source comes back for the new reader.
  const decoded = await decodeRtsp(url('/cam'), 'tcp', 2);
  assert.equal(decoded.errors, '', 'decodes without errors');
  assert.ok(decoded.videoFrames >= 10 && decoded.audioFrames >= 20, `${decoded.videoFrames} video, ${decoded.audioFrames} audio`);
  assert.equal(feedSource(server, 'cam')?.starts, 2);
  await sourceGone(server, 'cam', feedSource(server, 'cam')?.pid, 'the source to stop again');
});

test(
  'a UDP session holds the source until it times out; a DESCRIBE alone holds it until its connection closes',
  { skip, timeout: 90_000 },
  async (t) => {
    const server = await startSourced(t);
    const { url, port, rtsp } = await startRtsp(t, server, { sessionTimeoutMs: 1500 });

    // DESCRIBE only, then the connection closes: the source goes down.
    const d = new RawRtspClient(port);
    t.after(() => d.close());
    const described = await d.request('DESCRIBE', url('/cam'), { Accept: 'application/sdp' });
    assert.equal(described.status, 200, described.body);
    assert.match(described.body, /a=rtpmap:\d+ H264\/90000/);
    const firstPid = feedSource(server, 'cam')?.pid;
    assert.ok(firstPid !== undefined && feedSource(server, 'cam')?.running === true);
    d.close();
    await sourceGone(server, 'cam', firstPid, 'the source to stop after the DESCRIBE connection closed');

    // A UDP session: RTP arrives on the client port; the control connection closes without TEARDOWN.
    const { rtp, rtcp } = await udpClientPorts(t);
    let packets = 0;
    rtp.on('message', (msg) => {
      if (parseRtpPacket(msg).payloadType === 96) packets++;
    });
    const c = new RawRtspClient(port);
    t.after(() => c.close());
    assert.equal((await c.request('DESCRIBE', url('/cam'))).status, 200);
    const setup = await c.request('SETUP', url('/cam/streamid=0'), {
      Transport: `RTP/AVP;unicast;client_port=${rtp.address().port}-${rtcp.address().port}`,
    });
    assert.equal(setup.status, 200, setup.body);
    const session = setup.headers.get('session')?.split(';')[0] ?? '';
    assert.equal((await c.request('PLAY', url('/cam'), { Session: session })).status, 200);
    await waitFor('RTP from the source over UDP', () => packets > 20);
    const pid = feedSource(server, 'cam')?.pid;
    assert.ok(pid !== undefined);
    c.close();
    await waitFor('the control connection to be gone', () => server.ctx.connections.size <= 1);
    assert.equal(rtsp.sessionCount, 1, 'the UDP session outlives its control connection');
    assert.equal(feedSource(server, 'cam')?.running, true, 'and keeps its source running');
    await waitFor('the session to time out', () => rtsp.sessionCount === 0, 15_000);
    await sourceGone(server, 'cam', pid, 'the source to stop after the session timed out');
  },
);
