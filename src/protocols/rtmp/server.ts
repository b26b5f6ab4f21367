// The RTMP listener (default port 1935): accepts TCP connections, counts them against MaxClients,
// and gives each one an RtmpSession (handshake, commands, publish or play).

import type { ServerConfig } from '../../config/config.js';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { CertificateStore } from '../tls.js';
import { DEFAULT_RTMP_CHUNK_SIZE } from '../../streams/output-registry.js';
import { RefusalLog } from '../../observability/refusal-log.js';
import type { ProtocolContext } from '../protocol-context.js';
import { plainAddress } from '../http/server.js';
import { RtmpSession, type RtmpSessionOptions } from './session.js';

export interface RtmpServerOptions {
  /** Outgoing chunk size, 128..65536 (RTMPChunkSize; default 4096). Every player gets the same. */
  chunkSize?: number;
  /** Largest incoming message (default 8 MiB). */
  maxMessageBytes?: number;
  /** Handshake and connect must be done within this (default 10 s). */
  handshakeTimeoutMs?: number;
  /** A connected client neither publishing nor playing is closed after this (default IdleTimeout). */
  idleTimeoutMs?: number;
  /** RTMPS: TLS with these certificates (reloaded without a restart). */
  tls?: CertificateStore;
}

export class RtmpServer {
  private readonly ctx: ProtocolContext;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Given to every session as it connects: a reload changes what the next sessions get. */
  private sessionOptions: RtmpSessionOptions;
  private readonly offCertificateChange: (() => void) | undefined;
  private readonly scheme: 'rtmp' | 'rtmps';
  private readonly refusals: RefusalLog;

  /** An `idleTimeoutMs` given to the constructor wins over the config's IdleTimeout. */
  private readonly idleOverrideMs: number | undefined;

  /** `RTMPChunkSize` and `IdleTimeout` apply to the sessions that connect next. */
  applyConfig(next: ServerConfig): void {
    this.sessionOptions = {
      ...this.sessionOptions,
      chunkSize: next.rtmp.chunkSize,
      idleTimeoutMs: this.idleOverrideMs ?? next.idleTimeoutMs,
    };
  }

  /** What the next session is given (tests). */
  get nextSessionOptions(): Readonly<RtmpSessionOptions> {
    return this.sessionOptions;
  }

  constructor(ctx: ProtocolContext, options: RtmpServerOptions = {}) {
    this.ctx = ctx;
    this.refusals = new RefusalLog(ctx.log);
    this.idleOverrideMs = options.idleTimeoutMs;
    const chunkSize = options.chunkSize ?? DEFAULT_RTMP_CHUNK_SIZE;
    if (!Number.isInteger(chunkSize) || chunkSize < 128 || chunkSize > 65536) {
      throw new RangeError(`RTMP chunk size ${chunkSize} is outside 128..65536`);
    }
    this.sessionOptions = {
      chunkSize,
      maxMessageBytes: options.maxMessageBytes ?? 8 * 1024 * 1024,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? ctx.config.idleTimeoutMs,
    };
    const tls = options.tls;
    if (tls !== undefined) {
      const server = createTlsServer({ ...tls.options, handshakeTimeout: this.sessionOptions.handshakeTimeoutMs }, (socket) =>
        this.onConnection(socket),
      );
      server.on('tlsClientError', (err, socket) => {
        ctx.log.debug('RTMPS handshake failed', { from: plainAddress(socket.remoteAddress), reason: err.message });
        socket.destroy();
      });
      this.offCertificateChange = tls.onChange((o) => server.setSecureContext(o));
      this.server = server;
      this.scheme = 'rtmps';
    } else {
      this.server = createServer((socket) => this.onConnection(socket));
      this.offCertificateChange = undefined;
      this.scheme = 'rtmp';
    }
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        const bound = typeof address === 'object' && address !== null ? address.port : port;
        this.ctx.log.info('listening', { [this.scheme]: `${host}:${bound}`, chunkSize: this.sessionOptions.chunkSize });
        resolve(bound);
      });
    });
  }

  close(): Promise<void> {
    this.offCertificateChange?.();
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private onConnection(socket: Socket): void {
    const { connections, config } = this.ctx;
    const remote = plainAddress(socket.remoteAddress);
    // Refused: closed at once, never counted (RTMP has no way to say why before the handshake).
    const refused =
      connections.size >= config.maxClients ? `MaxClients ${config.maxClients}` : this.ctx.access.addressLimitReason(remote);
    if (refused !== undefined) {
      this.ctx.counters.refusedConnections++;
      this.refusals.warn(remote, 'rtmp connection refused', { reason: refused });
      socket.destroy();
      return;
    }
    const conn = connections.open('RTMP', remote);
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      connections.close(conn);
    });
    new RtmpSession(this.ctx, socket, conn, this.sessionOptions);
  }
}
