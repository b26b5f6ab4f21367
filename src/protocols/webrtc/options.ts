// The WebRTC settings of the config (WebRTC*, docs/webrtc.md) as the options of WebRtcRoute.

import { networkInterfaces } from 'node:os';
import type { ServerConfig } from '../../config/config.js';
import type { IceServerSpec } from '../../config/directives.js';
import type { WebRtcRouteOptions } from './route.js';

type IceServer = WebRtcRouteOptions['clientIceServers'][number];

/**
 * Host candidates: WebRTCAddress when given; else the HTTP bind address; else, when that is a
 * wildcard, every IPv4 address of the machine (loopback last, so a browser on the same host still connects).
 */
export function webRtcHostAddresses(config: ServerConfig, interfaces = networkInterfaces()): string[] {
  if (config.webrtc.addresses !== undefined) return [...config.webrtc.addresses];
  const bind = config.http.bindAddress;
  if (bind !== '0.0.0.0' && bind !== '::') return [bind];
  const external: string[] = [];
  const internal: string[] = [];
  for (const list of Object.values(interfaces)) {
    for (const i of list ?? []) {
      if (i.family !== 'IPv4') continue;
      (i.internal ? internal : external).push(i.address);
    }
  }
  const all = [...new Set([...external, ...internal])];
  return all.length > 0 ? all : ['127.0.0.1'];
}

function iceServer(spec: IceServerSpec): IceServer {
  return {
    urls: spec.urls,
    ...(spec.username !== undefined ? { username: spec.username } : {}),
    ...(spec.credential !== undefined ? { credential: spec.credential } : {}),
  };
}

export function webRtcOptions(config: ServerConfig): Partial<WebRtcRouteOptions> {
  const w = config.webrtc;
  return {
    hostAddresses: webRtcHostAddresses(config),
    portRange: w.portRange,
    serverIceServers: w.serverIceServers.map(iceServer),
    clientIceServers: w.iceServers.map(iceServer),
    peerTimeoutMs: w.peerTimeoutMs,
    udpMuxPort: w.udpPort,
    tcp: w.tcp,
    tcpPort: w.tcpPort,
    bindAddress: w.bindAddress,
    whipKeyframeIntervalMs: w.whipKeyframeIntervalMs,
    playoutDelayZero: w.playoutDelayZero,
  };
}
