// What RTSP sessions (play and record) share: the control connection they are driven from, the
// error that becomes a status line, and the session contract the server keeps in its table.

import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { ConnectionInfo } from '../../access/connections.js';
import { ProtocolError } from '../../errors.js';

/** A request that ends with an error status; `message` goes to the log and the response body. */
export class RtspError extends ProtocolError {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  constructor(status: number, detail: string, headers: readonly (readonly [string, string])[] = []) {
    super('rtsp', detail);
    this.status = status;
    this.headers = headers;
  }
}

/** The TCP connection requests arrive on; interleaved frames for a channel go to its handler. */
export interface ControlConnection {
  readonly socket: Socket;
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly closed: boolean;
  readonly info: ConnectionInfo;
  onChannel(channel: number, handler: (data: Buffer) => void): void;
  offChannel(channel: number): void;
}

export interface RtspSession {
  readonly id: string;
  readonly mode: 'play' | 'record';
  /** The name in the request URL (feed key or stream name). */
  readonly name: string;
  lastSeenMs: number;
  /** Whether the session ends after `timeoutMs` without a request or RTCP (UDP transports). */
  readonly expires: boolean;
  /** The control connection closed: a session bound to it ends. */
  connectionClosed(conn: ControlConnection): void;
  close(reason: string): void;
  readonly isClosed: boolean;
}

export function newSessionId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

/** Logs a repeated per-packet problem at most once a second, with the count of the others. */
export function throttled(
  log: (message: string, fields: Record<string, unknown>) => void,
): (message: string, fields?: Record<string, unknown>) => void {
  let last = 0;
  let suppressed = 0;
  return (message, fields = {}) => {
    const now = Date.now();
    if (now - last < 1000) {
      suppressed++;
      return;
    }
    log(message, suppressed > 0 ? { ...fields, alsoSuppressed: suppressed } : fields);
    last = now;
    suppressed = 0;
  };
}
