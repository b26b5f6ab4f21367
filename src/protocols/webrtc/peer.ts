// One werift RTCPeerConnection set up the way Feedcast serves WebRTC: no STUN/TURN of its own unless
// configured, host candidates only on the configured addresses (RFC 8445 5.1.1.1), the whole answer
// with its candidates at once (WHIP RFC 9725 4.2 / WHEP: no trickle needed), and a liveness watch
// that ends a peer which has sent nothing for `peerTimeoutMs` (RFC 7675 consent, shortened).

import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RTCRtpHeaderExtensionParameters,
  useNACK,
  usePLI,
  useFIR,
  type RTCIceServer,
} from 'werift';
import { isIP } from 'node:net';

export interface WebRtcIceOptions {
  /** Addresses announced as host candidates (the sockets bind to the first). Default: ['127.0.0.1']. */
  hostAddresses: readonly string[];
  /** UDP ports for the peers' sockets, one port per peer (werift 0.22 has no single-port mode). */
  portRange: readonly [number, number] | undefined;
  /** STUN/TURN servers the server itself uses to gather candidates (outbound traffic!). Default none. */
  serverIceServers: readonly RTCIceServer[];
  /** ICE servers offered to clients in `Link: rel="ice-server"` headers (WHIP RFC 9725 4.6). */
  clientIceServers: readonly RTCIceServer[];
  /** A peer that sends nothing (RTP, RTCP, STUN) for this long is closed. Default 15 000 ms. */
  peerTimeoutMs: number;
}

export const DEFAULT_ICE_OPTIONS: WebRtcIceOptions = {
  hostAddresses: ['127.0.0.1'],
  portRange: undefined,
  serverIceServers: [],
  clientIceServers: [],
  peerTimeoutMs: 15_000,
};

export const PLAYOUT_DELAY_URI = 'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay';
const MID_URI = 'urn:ietf:params:rtp-hdrext:sdes:mid';
const ABS_SEND_TIME_URI = 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time';

/** The codecs a peer is allowed to negotiate: exactly those chosen from the offer. */
export interface PeerCodec {
  payloadType: number;
  mimeType: string;
  parameters: string | undefined;
  clockRate: number;
  channels: number | undefined;
}

export interface PeerCodecs {
  video: PeerCodec | undefined;
  audio: PeerCodec | undefined;
}

export function createPeer(ice: WebRtcIceOptions, codecs: PeerCodecs, sendPlayoutDelay: boolean): RTCPeerConnection {
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
  if (sendPlayoutDelay) videoExtensions.push(new RTCRtpHeaderExtensionParameters({ uri: PLAYOUT_DELAY_URI }));
  return new RTCPeerConnection({
    codecs: { video, audio },
    headerExtensions: {
      video: videoExtensions,
      audio: [new RTCRtpHeaderExtensionParameters({ uri: MID_URI })],
    },
    iceServers: [...ice.serverIceServers],
    iceUseIpv4: ipv4.length > 0,
    iceUseIpv6: ipv6.length > 0,
    iceAdditionalHostAddresses: [...ice.hostAddresses],
    iceInterfaceAddresses: {
      ...(ipv4[0] !== undefined ? { udp4: ipv4[0] } : {}),
      ...(ipv6[0] !== undefined ? { udp6: ipv6[0] } : {}),
    },
    ...(ice.portRange !== undefined ? { icePortRange: [ice.portRange[0], ice.portRange[1]] as [number, number] } : {}),
    bundlePolicy: 'max-bundle',
  });
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
 * Keeps only the `a=candidate` lines on the configured host addresses (werift also gathers the
 * machine's other interfaces, whose sockets are bound elsewhere) and drops `a=end-of-candidates`
 * duplicates; returns CRLF-terminated SDP.
 */
export function keepCandidates(sdp: string, addresses: readonly string[]): string {
  const allowed = new Set(addresses);
  const lines = sdp.split(/\r?\n/).filter((line) => {
    if (!line.startsWith('a=candidate:')) return true;
    const parts = line.split(' ');
    const address = parts[4];
    const type = parts[7];
    return type !== 'host' || (address !== undefined && allowed.has(address));
  });
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\r\n') + '\r\n';
}

/** The `Link` header values announcing ICE servers to a client (RFC 9725 4.6). */
export function iceServerLinks(servers: readonly RTCIceServer[]): string[] {
  return servers.map((s) => {
    let link = `<${s.urls}>; rel="ice-server"`;
    if (s.username !== undefined) link += `; username="${s.username.replace(/"/g, '')}"`;
    if (s.credential !== undefined) link += `; credential="${s.credential.replace(/"/g, '')}"; credential-type="password"`;
    return link;
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
