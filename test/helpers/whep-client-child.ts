// A WHEP viewer as a separate process, for tests that run it inside a network namespace:
// `node --import tsx test/helpers/whep-client-child.ts URL COUNT`. Sends COUNT offers (H.264 +
// Opus, werift with loopback host candidates only and no STUN), and prints one JSON line per offer:
// {status, answerMs, hostCandidates}.

import { loopbackPeer } from './werift-peer.js';

const [url, countText] = process.argv.slice(2);
if (url === undefined) {
  process.stderr.write('usage: whep-client-child.ts URL [COUNT]\n');
  process.exit(2);
}

for (let i = 0; i < Number(countText ?? 1); i++) {
  const pc = loopbackPeer();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  const started = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp' },
    body: pc.localDescription?.sdp ?? '',
  });
  const answer = await res.text();
  const answerMs = performance.now() - started;
  const hostCandidates = answer.split('\r\n').filter((l) => l.startsWith('a=candidate:') && l.includes(' typ host'));
  process.stdout.write(JSON.stringify({ status: res.status, answerMs, hostCandidates }) + '\n');
  const location = res.headers.get('location');
  if (location !== null) await fetch(new URL(location, url), { method: 'DELETE' });
  await pc.close();
}
process.exit(0);
