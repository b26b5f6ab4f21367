// Issue 19: one admission (src/access/access.ts) for every read path. WHEP, RTSP, RTMP, HLS and HTTP
// readers are refused by MaxReaders, MaxBandwidth (passthrough readers counted at the feed's measured
// rate), ACLs and expired tokens, each with its protocol's status. Before, WHEP and HLS skipped
// MaxReaders and MaxBandwidth, and readers that joined before the feed sent counted nothing.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, test, type TestContext } from 'node:test';
import { signedQuery } from '../../src/access/auth.js';
import { RtmpServer } from '../../src/protocols/rtmp/server.js';
import { publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { RtmpTestClient, statusCode, statusDescription } from '../helpers/rtmp-client.js';
import { RawRtspClient, startRtsp } from '../helpers/rtsp-tools.js';
import { waitFor, type TestServer } from '../helpers/test-server.js';
import { webrtcServer } from '../helpers/webrtc-server.js';

const skip = skipWithoutFfmpeg();
const KEY = 'admission-key';
/** Any body: a refused WHEP viewer is answered before its offer is read. */
const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';

interface Held {
  status: number;
  body: string;
  close(): void;
}

/** A GET that stays open while it streams (a reader holding its admission); the body is read for an error. */
function hold(t: TestContext, url: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      const code = res.statusCode ?? 0;
      const close = (): void => void res.destroy();
      t.after(close);
      if (code === 200) {
        res.on('data', () => undefined);
        resolve({ status: code, body: '', close });
        return;
      }
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: code, body, close }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function get(t: TestContext, url: string): Promise<{ status: number; body: string }> {
  const r = await hold(t, url);
  r.close();
  return { status: r.status, body: r.body };
}

async function whep(server: TestServer, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(server.url(path), { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: OFFER });
  return { status: res.status, body: await res.text() };
}

async function rtmpPlay(t: TestContext, port: number, name: string): Promise<{ code: string; description: string }> {
  const client = await RtmpTestClient.open('127.0.0.1', port);
  t.after(() => client.close());
  await client.connect('live', `rtmp://127.0.0.1:${port}/live`);
  const status = await client.play(name);
  return { code: statusCode(status), description: statusDescription(status) };
}

/** RTSP SETUP of a play session (where the reader is admitted); DESCRIBE first when `describe`. */
async function rtspSetup(t: TestContext, port: number, path: string): Promise<{ status: number; body: string }> {
  const rtsp = new RawRtspClient(port);
  t.after(() => rtsp.close());
  const url = `rtsp://127.0.0.1:${port}/${path}`;
  const [base, query] = url.split('?');
  const r = await rtsp.request('SETUP', `${base ?? ''}/streamid=0${query !== undefined ? `?${query}` : ''}`, {
    Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1',
  });
  return { status: r.status, body: r.body };
}

async function listeners(t: TestContext, server: TestServer): Promise<{ rtmp: number; rtsp: number }> {
  const rtmp = new RtmpServer(server.ctx);
  const rtmpPort = await rtmp.listen(0, '127.0.0.1');
  t.after(() => rtmp.close());
  const { port } = await startRtsp(t, server);
  return { rtmp: rtmpPort, rtsp: port };
}

async function publishing(t: TestContext, server: TestServer, key: string, bitrateK = 400): Promise<void> {
  const p = publish(server.url(`/${key}.ffm`), { codecs: 'h264-only', size: '320x240', bitrateK, seconds: 90 });
  t.after(() => p.stop());
  await waitFor(`feed ${key} to get its tracks`, () => (server.ctx.feeds.get(key)?.tracks.length ?? 0) > 0, 20_000);
}

describe('access: one admission for every read path', { skip }, () => {
  test('MaxReaders: with the feed held by one HTTP reader, HTTP, HLS, RTMP, RTSP and WHEP readers are refused', async (t) => {
    const { server } = await webrtcServer(t, '<Feed cam.ffm>\nMaxReaders 1\n</Feed>\n');
    const ports = await listeners(t, server);
    await publishing(t, server, 'cam');
    const first = await hold(t, server.url('/cam.flv'));
    assert.equal(first.status, 200);
    assert.equal(server.ctx.access.readerCount({ feed: 'cam' }), 1);

    const http = await get(t, server.url('/cam.ts'));
    assert.equal(http.status, 503);
    assert.match(http.body, /MaxReaders/);
    const hls = await get(t, server.url('/cam/ts/index.m3u8'));
    assert.equal(hls.status, 503, 'HLS viewers take a reader slot');
    assert.match(hls.body, /MaxReaders/);
    const rtmp = await rtmpPlay(t, ports.rtmp, 'cam');
    assert.equal(rtmp.code, 'NetStream.Play.Failed');
    assert.match(rtmp.description, /MaxReaders/);
    const rtsp = await rtspSetup(t, ports.rtsp, 'cam');
    assert.equal(rtsp.status, 503);
    const webrtc = await whep(server, '/cam/whep');
    assert.equal(webrtc.status, 503, 'WHEP viewers take a reader slot');
    assert.match(webrtc.body, /MaxReaders/);

    // The slot comes back when the reader leaves; names are matched in any case.
    first.close();
    await waitFor('the slot to come back', () => server.ctx.access.readerCount({ feed: 'cam' }) === 0);
    const again = await hold(t, server.url('/CAM.flv'));
    assert.equal(again.status, 200, again.body);
    again.close();
  });

  test('MaxBandwidth counts passthrough readers at the feed measured rate: the next reader of every protocol is refused', async (t) => {
    const { server } = await webrtcServer(t, '<Feed cam.ffm>\n</Feed>\n');
    const ports = await listeners(t, server);
    await publishing(t, server, 'cam', 600);
    const feed = server.ctx.feeds.get('cam');
    assert.ok(feed !== undefined);
    await waitFor('a measured input rate', () => feed.inputRate.bitsPerSecond() > 200_000, 20_000);
    // Room for one reader of this feed, not two.
    const rateKbps = feed.inputRate.bitsPerSecond() / 1000;
    server.ctx.config.maxBandwidthKbps = Math.ceil(rateKbps * 1.5);
    const first = await hold(t, server.url('/cam.flv'));
    assert.equal(first.status, 200, first.body);
    assert.ok(
      server.ctx.access.bandwidthInUseKbps > 100,
      `the passthrough reader counts (${server.ctx.access.bandwidthInUseKbps})`,
    );

    const http = await get(t, server.url('/cam.ts'));
    assert.equal(http.status, 503);
    assert.match(http.body, /MaxBandwidth/);
    const hls = await get(t, server.url('/cam/ts/index.m3u8'));
    assert.equal(hls.status, 503, `HLS viewers count against MaxBandwidth: ${hls.body}`);
    const rtmp = await rtmpPlay(t, ports.rtmp, 'cam');
    assert.equal(rtmp.code, 'NetStream.Play.Failed');
    assert.match(rtmp.description, /MaxBandwidth/);
    const rtsp = await rtspSetup(t, ports.rtsp, 'cam');
    assert.equal(rtsp.status, 453, 'RTSP: 453 Not Enough Bandwidth');
    const webrtc = await whep(server, '/cam/whep');
    assert.equal(webrtc.status, 503, `WHEP viewers count against MaxBandwidth: ${webrtc.body}`);
    assert.match(webrtc.body, /MaxBandwidth/);

    first.close();
    await waitFor('the bandwidth to come back', () => server.ctx.access.bandwidthInUseKbps === 0);
  });

  test('ACLs and expired read tokens: 403 on HTTP, HLS, RTSP and WHEP, NetStream.Play.Failed on RTMP', async (t) => {
    const { server } = await webrtcServer(
      t,
      `ReadTokenKey ${KEY}\n<Feed locked.ffm>\nACL allow 10.9.9.9\n</Feed>\n<Feed tok.ffm>\nRequireReadToken\n</Feed>\n`,
    );
    const ports = await listeners(t, server);
    const expired = signedQuery(KEY, 'tok', -30);
    for (const [path, why] of [
      ['locked', /may not read/],
      [`tok?${expired}`, /expired/],
    ] as const) {
      const [name, query] = path.split('?');
      const q = query !== undefined ? `?${query}` : '';
      const http = await get(t, server.url(`/${name ?? ''}.flv${q}`));
      assert.equal(http.status, 403, `HTTP ${path}`);
      assert.match(http.body, why);
      const hls = await get(t, server.url(`/${name ?? ''}/ts/index.m3u8${q}`));
      assert.equal(hls.status, 403, `HLS ${path}`);
      const rtmp = await rtmpPlay(t, ports.rtmp, path);
      assert.equal(rtmp.code, 'NetStream.Play.Failed', `RTMP ${path}`);
      assert.match(rtmp.description, why);
      const rtsp = await rtspSetup(t, ports.rtsp, path);
      assert.equal(rtsp.status, 403, `RTSP ${path}`);
      const webrtc = await whep(server, `/${name ?? ''}/whep${q}`);
      assert.equal(webrtc.status, 403, `WHEP ${path}`);
      assert.match(webrtc.body, why);
    }
    assert.equal(server.ctx.access.readerCount({ feed: 'tok' }), 0);
  });
});
