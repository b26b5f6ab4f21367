// A werift WebRTC peer for tests and benchmarks that play (WHEP) or publish (WHIP) without a browser:
// loopback host candidates only and no STUN (TESTING.md: nothing leaves the machine), the codecs
// a browser offers, the offer/answer exchange, and what a viewer receives put back into access units.

import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';
import { NalDepacketizer } from '../../src/formats/rtp/nal-rtp.js';
import { withoutFallbackStun } from '../../src/protocols/webrtc/peer.js';
import { rtpPacketOf } from '../../src/protocols/webrtc/to-feed.js';

export const H264_BASELINE = new RTCRtpCodecParameters({
  mimeType: 'video/H264',
  clockRate: 90_000,
  parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
});
export const H265 = new RTCRtpCodecParameters({ mimeType: 'video/H265', clockRate: 90_000 });
export const OPUS = new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48_000, channels: 2 });

/** A peer on loopback only, with no STUN server (werift's default would query a public one). */
export function loopbackPeer(video: RTCRtpCodecParameters[] = [H264_BASELINE], audio = [OPUS]): RTCPeerConnection {
  const pc = new RTCPeerConnection({
    codecs: { video, audio },
    // One ICE transport for every track, as the server answers (peer.ts): with werift's default a
    // second track's transport, bundled away, was never closed and kept the test process alive.
    bundlePolicy: 'max-bundle',
    iceServers: [],
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
  });
  withoutFallbackStun(pc);
  return pc;
}

export interface Negotiated {
  status: number;
  text: string;
  /** X-Feedcast-Note ('' without it). */
  note: string;
  location: string | null;
}

/** POSTs the peer's offer to a WHEP or WHIP URL and applies the answer when it is one (201). */
export async function negotiate(pc: RTCPeerConnection, url: string, headers: Record<string, string> = {}): Promise<Negotiated> {
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', ...headers },
    body: pc.localDescription?.sdp ?? '',
  });
  const text = await res.text();
  if (res.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: text });
  return { status: res.status, text, note: res.headers.get('x-feedcast-note') ?? '', location: res.headers.get('location') };
}

/**
 * The H.264 or H.265 access units the peer receives, from the first keyframe on (length-prefixed
 * NAL units, as the feed holds them). Call before negotiating.
 */
export function receivedAccessUnits(pc: RTCPeerConnection, codec: 'h264' | 'h265'): { keyframe: boolean; data: Buffer }[] {
  const depacketizer = new NalDepacketizer(codec);
  const units: { keyframe: boolean; data: Buffer }[] = [];
  pc.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe((rtp) => {
      for (const f of depacketizer.push(rtpPacketOf(rtp))) if (units.length > 0 || f.keyframe) units.push(f);
    });
  });
  return units;
}
