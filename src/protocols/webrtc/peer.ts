// One werift RTCPeerConnection set up the way Feedcast serves WebRTC: no STUN/TURN of its own unless
// configured, host candidates only on the configured addresses (RFC 8445 5.1.1.1), the whole answer
// with its candidates at once (WHIP RFC 9725 4.2 / WHEP: no trickle needed), and a liveness watch
// that ends a peer which has sent nothing for `peerTimeoutMs` (RFC 7675 consent, shortened).

import { RTCPeerConnection, RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters, useNACK, usePLI, useFIR } from 'werift';
import { isIP } from 'node:net';
import { PLAYOUT_DELAY_URI, udpBindAddresses, type PeerCodecs, type WebRtcIceOptions } from './ice.js';

const MID_URI = 'urn:ietf:params:rtp-hdrext:sdes:mid';
const ABS_SEND_TIME_URI = 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time';

/** RFC 8852: the rid of a simulcast RTP stream, and of its repair stream. */
const RTP_STREAM_ID_URI = 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id';
const REPAIRED_RTP_STREAM_ID_URI = 'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id';

export interface PeerRole {
  /** WHEP: ask the browser to render at once (playout-delay extension). */
  sendPlayoutDelay: boolean;
  /** WHIP: take simulcast (the rid header extensions werift routes the layers by). */
  receiving: boolean;
}

export function createPeer(ice: WebRtcIceOptions, codecs: PeerCodecs, role: PeerRole): RTCPeerConnection {
  const feedback = [useNACK(), usePLI(), useFIR()];
  const video =
    codecs.video !== undefined
      ? [
          new RTCRtpCodecParameters({
            mimeType: codecs.video.mimeType,
            clockRate: codecs.video.clockRate,
            payloadType: codecs.video.payloadType,
            rtcpFeedback: feedback,
            ...(codecs.video.parameters !== undefined ? { parameters: codecs.video.parameters } : {}),
          }),
        ]
      : [];
  const audio =
    codecs.audio !== undefined
      ? [
          new RTCRtpCodecParameters({
            mimeType: codecs.audio.mimeType,
            clockRate: codecs.audio.clockRate,
            ...(codecs.audio.channels !== undefined ? { channels: codecs.audio.channels } : {}),
            payloadType: codecs.audio.payloadType,
            ...(codecs.audio.parameters !== undefined ? { parameters: codecs.audio.parameters } : {}),
          }),
        ]
      : [];
  const ipv4 = ice.hostAddresses.filter((a) => isIP(a) === 4);
  const ipv6 = ice.hostAddresses.filter((a) => isIP(a) === 6);
  const videoExtensions = [
    new RTCRtpHeaderExtensionParameters({ uri: MID_URI }),
    new RTCRtpHeaderExtensionParameters({ uri: ABS_SEND_TIME_URI }),
  ];
  if (role.sendPlayoutDelay) videoExtensions.push(new RTCRtpHeaderExtensionParameters({ uri: PLAYOUT_DELAY_URI }));
  if (role.receiving) {
    videoExtensions.push(
      new RTCRtpHeaderExtensionParameters({ uri: RTP_STREAM_ID_URI }),
      new RTCRtpHeaderExtensionParameters({ uri: REPAIRED_RTP_STREAM_ID_URI }),
    );
  }
  const iceServers = ice.udpMuxPort !== undefined ? [] : [...ice.serverIceServers];
  const pc = new RTCPeerConnection({
    codecs: { video, audio },
    headerExtensions: {
      video: videoExtensions,
      audio: [new RTCRtpHeaderExtensionParameters({ uri: MID_URI })],
    },
    // Behind the UDP mux werift's sockets are on loopback, where a STUN/TURN server is no use.
    iceServers,
    // Only the configured addresses are gathered (werift would add every interface of the machine),
    // one socket per address; the family of each socket follows its address.
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: [...ipv4, ...ipv6],
    iceInterfaceAddresses: udpBindAddresses(ice),
    ...(ice.portRange !== undefined ? { icePortRange: [ice.portRange[0], ice.portRange[1]] as [number, number] } : {}),
    bundlePolicy: 'max-bundle',
  });
  if (!iceServers.some((s) => s.urls.startsWith('stun:'))) withoutFallbackStun(pc);
  return pc;
}

/**
 * werift's ICE (0.22) asks stun.l.google.com:19302 for a server-reflexive candidate whenever no
 * STUN server is configured, `iceServers: []` included: a DNS query and binding requests to the
 * internet, and, offline, an answer held ~5 s until they time out. Feedcast opens no connection
 * the config does not name, so each ICE transport's STUN server is cleared just before werift
 * gathers (in setLocalDescription, after the transports exist).
 */
export function withoutFallbackStun(pc: RTCPeerConnection): void {
  const setLocalDescription = pc.setLocalDescription.bind(pc);
  pc.setLocalDescription = (description) => {
    for (const transport of pc.iceTransports) (transport.connection as { stunServer?: unknown }).stunServer = undefined;
    return setLocalDescription(description);
  };
}

/** Waits until werift has gathered its candidates (host candidates: a few ms), bounded by `timeoutMs`. */
export async function gatheringComplete(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    const sub = pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') done();
    });
    function done(): void {
      clearTimeout(timer);
      sub.unSubscribe();
      resolve();
    }
  });
}

/**
 * Calls `onDead` when the peer has sent nothing for `timeoutMs` after connecting (or never
 * connected within it), or when its connection fails or closes. Returns a stop function.
 */
export function watchPeer(pc: RTCPeerConnection, timeoutMs: number, onDead: (reason: string) => void): () => void {
  let lastHeard = Date.now();
  let stopped = false;
  const heard = (): void => {
    lastHeard = Date.now();
  };
  const subs: { unSubscribe: () => void }[] = [];
  const hook = (): void => {
    for (const t of pc.dtlsTransports) {
      subs.push(t.onRtcp.subscribe(heard), t.onRtp.subscribe(heard));
    }
    for (const t of pc.iceTransports) {
      subs.push(t.connection.onData.subscribe(heard));
    }
  };
  hook();
  subs.push(
    pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected') heard();
      if (state === 'failed' || state === 'closed') finish(`connection ${state}`);
    }),
  );
  const timer = setInterval(
    () => {
      const silentMs = Date.now() - lastHeard;
      if (silentMs >= timeoutMs) {
        finish(pc.connectionState === 'connected' ? `nothing received for ${silentMs} ms` : `not connected after ${silentMs} ms`);
      }
    },
    Math.max(100, Math.min(1000, timeoutMs / 4)),
  );
  timer.unref();
  function finish(reason: string): void {
    if (stopped) return;
    stop();
    onDead(reason);
  }
  function stop(): void {
    stopped = true;
    clearInterval(timer);
    for (const s of subs.splice(0)) s.unSubscribe();
  }
  return stop;
}
