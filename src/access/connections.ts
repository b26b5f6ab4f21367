// Every live connection, whatever its protocol: counted for MaxClients and shown on the status
// page and in the API.

export type ConnectionRole = 'reader' | 'publisher' | 'request';

export interface ConnectionInfo {
  readonly id: number;
  readonly protocol: string;
  /** The client: the peer, or for a request through a TrustedProxy the address it forwarded for. */
  remoteAddress: string;
  /** The trusted proxy the current request came through (TrustedProxy), else undefined. */
  proxyAddress: string | undefined;
  readonly openedAt: number;
  role: ConnectionRole;
  /** The path or stream name it is about, once known. */
  target: string;
  /** ffserver's state names: HTTP_WAIT_REQUEST, SEND_DATA, RECEIVE_DATA, WAIT_FEED ... */
  state: string;
  bytesIn: number;
  bytesOut: number;
  /** Extra numbers for the status page (dropped chunks ...). */
  readonly counters: Record<string, number>;
  /** Ends the connection with a reason (API kick, reload removing its feed or stream). */
  kick: ((reason: string) => void) | undefined;
  /** A WHEP viewer: its simulcast layer and bandwidth estimate (set by protocols/webrtc/from-feed.ts). */
  webrtc?: WebRtcViewerView;
  /** Bit rate the config promises for what it serves (ffserver's "target"), 0 if unknown. */
  targetKbps: number;
}

export interface WebRtcViewerView {
  /** The simulcast layer (rid) sent now; null for a feed without layers. */
  simulcastLayer: string | null;
  /** The browser's last bandwidth estimate (REMB), kbit/s; null before the first. */
  bandwidthEstimateKbps: number | null;
  /** What each layer's video measures now (kbit/s, over a few seconds), by rid. */
  layerKbps: Record<string, number>;
  layerSwitches: number;
  /** Why the viewer was last moved ("estimate: ...", "loss: ...", "stall: ..."); null before. */
  lastSwitch: string | null;
}

export class ConnectionRegistry {
  private readonly connections = new Map<number, ConnectionInfo>();
  private nextId = 1;

  get size(): number {
    return this.connections.size;
  }

  open(protocol: string, remoteAddress: string): ConnectionInfo {
    const info: ConnectionInfo = {
      id: this.nextId++,
      protocol,
      remoteAddress,
      proxyAddress: undefined,
      openedAt: Date.now(),
      role: 'request',
      target: '',
      state: 'HTTP_WAIT_REQUEST',
      bytesIn: 0,
      bytesOut: 0,
      counters: {},
      kick: undefined,
      targetKbps: 0,
    };
    this.connections.set(info.id, info);
    return info;
  }

  close(info: ConnectionInfo): void {
    this.connections.delete(info.id);
  }

  get(id: number): ConnectionInfo | undefined {
    return this.connections.get(id);
  }

  /** Newest first, as ffserver listed them. */
  list(): ConnectionInfo[] {
    return [...this.connections.values()].reverse();
  }
}
