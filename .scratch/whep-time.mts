import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';
import { parseConfigText } from '../src/config/config.js';
import { startServer } from '../src/server.js';
import { silentLogger } from '../src/observability/logger.js';
import { WebRtcRoute } from '../src/protocols/webrtc/route.js';
const parsed = await parseConfigText('<Feed feed1.ffm>\n</Feed>\n', 't.conf');
const server = await startServer({ ...parsed, http: { port: 0, bindAddress: '127.0.0.1' }, rtmp: { ...parsed.rtmp, port: 0 }, rtsp: { ...parsed.rtsp, port: undefined } }, { log: silentLogger });
const webrtc = new WebRtcRoute(server.ctx, { hostAddresses: ['127.0.0.1'] });
await webrtc.ready();
server.http.addRoute(webrtc);
for (let i = 0; i < 3; i++) {
  const pc = new RTCPeerConnection({ codecs: { video: [new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, parameters: 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1' })], audio: [] }, iceServers: [], iceUseIpv6: false, iceAdditionalHostAddresses: ['127.0.0.1'] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  const t0 = performance.now();
  const r = await fetch(`http://127.0.0.1:${server.httpPort}/feed1/whep`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription!.sdp });
  console.log(r.status, (performance.now() - t0).toFixed(0), 'ms', (await r.text()).slice(0, 60).replace(/\r\n/g, ' '));
  await pc.close();
}
await webrtc.close(); await server.close(); process.exit(0);
