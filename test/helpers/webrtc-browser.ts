// Headless Chromium set up for WebRTC on loopback only (TESTING.md): host candidates as plain
// addresses (no mDNS), a 127.0.0.1 candidate, fake camera and microphone; and the in-page WHEP and
// WHIP clients the tests drive (strings: tests are typechecked without the DOM library).

import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './browser.js';

/**
 * Chromium keeps only the last --disable-features, and Playwright passes its own list first, so
 * this repeats Playwright's list (playwright-core chromiumSwitches) plus WebRtcHideLocalIpsWithMdns.
 */
const DISABLED_FEATURES = [
  'AvoidUnnecessaryBeforeUnloadCheckSync',
  'DestroyProfileOnBrowserClose',
  'HttpsUpgrades',
  'HttpsFirstBalancedModeAutoEnable',
  'LensOverlay',
  'MediaRouter',
  'PaintHolding',
  'ThirdPartyStoragePartitioning',
  'AvoidCorsURLLoaderRestartOnRedirect',
  'OptimizationHints',
  'NetworkTimeServiceQuerying',
  'AimEnabled',
  'PreconnectToSearch',
  'WebRtcHideLocalIpsWithMdns',
];

export const WEBRTC_CHROMIUM_ARGS = [
  ...CHROMIUM_ARGS,
  '--allow-loopback-in-peer-connection',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  `--disable-features=${DISABLED_FEATURES.join(',')}`,
];

export function launchWebRtcChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: WEBRTC_CHROMIUM_ARGS });
}

/**
 * In-page: `iceGathered(pc)` resolves when the peer connection has gathered all its candidates (the
 * offer is posted whole, no trickle), or after 3 s. Each client below carries it, so one alone works.
 */
const ICE_GATHERED = `
window.iceGathered = (pc) => new Promise((r) => {
  if (pc.iceGatheringState === 'complete') return r();
  pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') r(); });
  setTimeout(r, 3000);
});
`;

/**
 * In-page WHEP client: `whepPlay(url)` offers recvonly video+audio (all candidates gathered first),
 * posts the offer, applies the answer and plays into a <video>. Returns {status, location, text}.
 * `window.whep` keeps the peer connection and the video element; `whepVideoSize()` says the size of
 * the frames received now ('WxH', '' before the first).
 */
export const WHEP_CLIENT = `${ICE_GATHERED}
window.whepPlay = async (url) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  let v = document.querySelector('video');
  if (!v) { v = document.createElement('video'); document.body.appendChild(v); }
  v.muted = true; v.autoplay = true; v.playsInline = true;
  const stream = new MediaStream();
  v.srcObject = stream;
  pc.ontrack = (e) => stream.addTrack(e.track);
  await pc.setLocalDescription(await pc.createOffer());
  await window.iceGathered(pc);
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const text = await res.text();
  if (res.status !== 201) { pc.close(); return { status: res.status, location: null, text }; }
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  window.whep = { pc, video: v, location: res.headers.get('Location') };
  return { status: res.status, location: res.headers.get('Location'), text };
};
window.whepVideoSize = async () => {
  let size = '';
  if (window.whep) (await window.whep.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video' && s.frameWidth) size = s.frameWidth + 'x' + s.frameHeight;
  });
  return size;
};
window.whepStats = async () => {
  const out = { framesDecoded: 0, framesReceived: 0, framesDropped: 0, framesPerSecond: 0, packetsLost: 0, nackCount: 0, pliCount: 0, codec: '', audioPackets: 0, state: window.whep ? window.whep.pc.connectionState : 'none' };
  if (!window.whep) return out;
  const stats = await window.whep.pc.getStats();
  const codecs = new Map();
  stats.forEach((s) => { if (s.type === 'codec') codecs.set(s.id, s.mimeType); });
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.framesDecoded = s.framesDecoded || 0; out.framesReceived = s.framesReceived || 0; out.packetsLost = s.packetsLost || 0;
      out.framesDropped = s.framesDropped || 0; out.framesPerSecond = s.framesPerSecond || 0;
      out.nackCount = s.nackCount || 0; out.pliCount = s.pliCount || 0; out.codec = codecs.get(s.codecId) || '';
    }
    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioPackets = s.packetsReceived || 0;
  });
  return out;
};
`;

/**
 * In-page WHIP client: `whipPublish(url, headers?, videoCodec?)` sends the fake camera and
 * microphone; H.264 first in the codec preferences when the browser can send it, or only
 * `videoCodec` (e.g. 'video/VP8') when given. Returns {status, location, text}.
 */
export const WHIP_CLIENT = `${ICE_GATHERED}
window.whipPublish = async (url, headers, videoCodec) => {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 25 }, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    if (track.kind === 'video' && t.setCodecPreferences) {
      const caps = RTCRtpSender.getCapabilities('video').codecs;
      const want = videoCodec || 'video/H264';
      const first = caps.filter((c) => c.mimeType === want);
      if (first.length > 0) t.setCodecPreferences(videoCodec ? first : [...first, ...caps.filter((c) => c.mimeType !== want)]);
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await window.iceGathered(pc);
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp', ...(headers || {}) }, body: pc.localDescription.sdp });
  const text = await res.text();
  if (res.status !== 201) { pc.close(); media.getTracks().forEach((t) => t.stop()); return { status: res.status, location: null, text }; }
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  window.whip = { pc, media, location: res.headers.get('Location') };
  return { status: res.status, location: res.headers.get('Location'), text };
};
`;

/**
 * In-page simulcast WHIP client: `whipSimulcast(url, codec)` sends the fake camera at 1280x720 as
 * three encodings (rid h: full size, m: half, l: quarter; `sendEncodings`, RFC 8853), `codec`
 * ('video/H264' or 'video/VP8') first in the codec preferences, and the microphone.
 * `window.whipLayers()` lists what the browser sends per rid (from getStats). Returns {status, text}.
 */
export const SIMULCAST_WHIP_CLIENT = `${ICE_GATHERED}
window.whipSimulcast = async (url, codec) => {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720, frameRate: 25 }, audio: true });
  const pc = new RTCPeerConnection();
  const video = media.getVideoTracks()[0];
  const t = pc.addTransceiver(video, {
    direction: 'sendonly',
    streams: [media],
    sendEncodings: [{ rid: 'h' }, { rid: 'm', scaleResolutionDownBy: 2 }, { rid: 'l', scaleResolutionDownBy: 4 }],
  });
  const caps = RTCRtpSender.getCapabilities('video').codecs;
  const first = caps.filter((c) => c.mimeType === codec);
  if (first.length > 0) t.setCodecPreferences([...first, ...caps.filter((c) => c.mimeType !== codec)]);
  pc.addTransceiver(media.getAudioTracks()[0], { direction: 'sendonly', streams: [media] });
  await pc.setLocalDescription(await pc.createOffer());
  await window.iceGathered(pc);
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const text = await res.text();
  if (res.status !== 201) { pc.close(); media.getTracks().forEach((x) => x.stop()); return { status: res.status, text, offer: pc.localDescription.sdp }; }
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  window.whip = { pc, media };
  return { status: res.status, text, offer: pc.localDescription.sdp };
};
window.whipLayers = async () => {
  const out = {};
  (await window.whip.pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') out[s.rid] = { width: s.frameWidth || 0, height: s.frameHeight || 0, frames: s.framesEncoded || 0, bytes: s.bytesSent || 0, limited: s.qualityLimitationReason || '' };
  });
  return out;
};
`;
