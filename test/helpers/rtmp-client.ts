// A small RTMP client on a raw socket, built from Feedcast's own RTMP records: handshake (simple or
// digest), connect, createStream, play/publish, and every message received. Used by the RTMP
// integration tests (what ffmpeg cannot be made to send) and by bench/rtmp-readers.ts.

import { connect as netConnect, type Socket } from 'node:net';
import type { Amf0Object, Amf0Value } from '../../src/formats/amf/amf0.js';
import { ChunkStreamReader } from '../../src/formats/rtmp/chunk-reader.js';
import { encodeRtmpMessages } from '../../src/formats/rtmp/chunk-writer.js';
import { RTMP_HANDSHAKE_SIZE, checkS0S1S2, makeC0C1 } from '../../src/formats/rtmp/handshake.js';
import {
  RtmpCsid,
  RtmpType,
  commandMessage,
  parseCommand,
  setChunkSizeMessage,
  type RtmpCommand,
  type RtmpMessage,
} from '../../src/formats/rtmp/messages.js';

export interface RtmpClientOptions {
  digest?: boolean;
  /** Called for every message after the handshake (media included). */
  onMessage?: (m: RtmpMessage) => void;
  /** Chunk size this client sends with (announced with Set Chunk Size after connect). */
  chunkSize?: number;
}

export class RtmpTestClient {
  readonly socket: Socket;
  readonly commands: RtmpCommand[] = [];
  private readonly reader: ChunkStreamReader;
  private readonly waiters: { match: (c: RtmpCommand) => boolean; resolve: (c: RtmpCommand) => void }[] = [];
  private txn = 1;
  private chunkSizeOut = 128;
  bytesIn = 0;
  closed: Promise<void>;
  error: Error | undefined;

  private constructor(socket: Socket, options: RtmpClientOptions) {
    this.socket = socket;
    this.reader = new ChunkStreamReader(
      (m) => {
        if (m.typeId === RtmpType.commandAmf0) {
          const cmd = parseCommand(m.payload, m.typeId);
          this.commands.push(cmd);
          for (const w of [...this.waiters]) {
            if (w.match(cmd)) {
              this.waiters.splice(this.waiters.indexOf(w), 1);
              w.resolve(cmd);
            }
          }
        }
        options.onMessage?.(m);
      },
      { maxMessageBytes: 16 * 1024 * 1024 },
    );
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Opens the socket and does the handshake. */
  static async open(host: string, port: number, options: RtmpClientOptions = {}): Promise<RtmpTestClient> {
    const socket = netConnect({ host, port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c0c1 = makeC0C1(options.digest ?? true);
    socket.write(c0c1);
    const reply = await readExactly(socket, 1 + 2 * RTMP_HANDSHAKE_SIZE);
    socket.write(checkS0S1S2(c0c1, reply.head));
    const client = new RtmpTestClient(socket, options);
    socket.on('error', (err) => (client.error = err));
    socket.on('data', (d: Buffer) => client.onData(d));
    if (reply.rest.length > 0) client.onData(reply.rest);
    return client;
  }

  private onData(d: Buffer): void {
    this.bytesIn += d.length;
    try {
      this.reader.push(d);
    } catch (err) {
      this.error = err as Error;
      this.socket.destroy();
    }
  }

  send(messages: RtmpMessage[]): void {
    this.socket.write(encodeRtmpMessages(messages, this.chunkSizeOut));
  }

  /** Sends raw bytes (malformed input tests). */
  raw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Resolves with the first command received (from now on, or already) that matches. */
  waitCommand(match: (c: RtmpCommand) => boolean, timeoutMs = 10_000): Promise<RtmpCommand> {
    const seen = this.commands.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching command within ${timeoutMs} ms`)), timeoutMs);
      const onClose = (): void => {
        clearTimeout(timer);
        reject(new Error(`connection closed; commands seen: ${this.commands.map(describe).join(', ')}`));
      };
      this.socket.once('close', onClose);
      this.waiters.push({
        match,
        resolve: (c) => {
          clearTimeout(timer);
          this.socket.off('close', onClose);
          resolve(c);
        },
      });
    });
  }

  /** Sends a command and waits for its _result/_error. */
  async call(name: string, commandObject: Amf0Value, ...args: Amf0Value[]): Promise<RtmpCommand> {
    const txn = ++this.txn;
    const waiting = this.waitCommand((c) => (c.name === '_result' || c.name === '_error') && c.transactionId === txn);
    this.send([commandMessage(0, name, txn, commandObject, ...args)]);
    return waiting;
  }

  /** connect; `extra` adds Command Object properties (e.g. Enhanced RTMP's fourCcList, capsEx). */
  async connect(app: string, tcUrl: string, chunkSize = 128, extra: Amf0Object = {}): Promise<RtmpCommand> {
    const result = await this.call('connect', {
      app,
      tcUrl,
      flashVer: 'LNX 9,0,124,2',
      fpad: false,
      capabilities: 15,
      objectEncoding: 0,
      ...extra,
    });
    if (chunkSize !== 128) {
      this.send([setChunkSizeMessage(chunkSize)]);
      this.chunkSizeOut = chunkSize;
    }
    return result;
  }

  /** createStream, then play(name): resolves with the first onStatus on the stream. */
  async play(name: string): Promise<RtmpCommand> {
    const created = await this.call('createStream', null);
    const streamId = Number(created.args[0]);
    const status = this.waitCommand((c) => c.name === 'onStatus');
    this.send([{ ...commandMessage(streamId, 'play', 0, null, name, -2), csid: 8 }]);
    return status;
  }

  /** createStream, then publish(name, 'live'): resolves with the first onStatus. */
  async publish(name: string): Promise<{ status: RtmpCommand; streamId: number }> {
    const created = await this.call('createStream', null);
    const streamId = Number(created.args[0]);
    const status = this.waitCommand((c) => c.name === 'onStatus');
    this.send([{ ...commandMessage(streamId, 'publish', 0, null, name, 'live'), csid: RtmpCsid.data }]);
    return { status: await status, streamId };
  }

  close(): void {
    this.socket.destroy();
  }
}

export function statusCode(cmd: RtmpCommand): string {
  const info = cmd.args[0] as Amf0Object | undefined;
  const code = info?.['code'];
  return typeof code === 'string' ? code : '';
}

export function statusDescription(cmd: RtmpCommand): string {
  const info = cmd.args[0] as Amf0Object | undefined;
  const text = info?.['description'];
  return typeof text === 'string' ? text : '';
}

function describe(c: RtmpCommand): string {
  return c.name === 'onStatus' || c.name === '_error' ? `${c.name}(${statusCode(c)})` : c.name;
}

/** Reads exactly n bytes from a socket before data listeners are attached; returns the surplus too. */
function readExactly(socket: Socket, n: number): Promise<{ head: Buffer; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const onData = (d: Buffer): void => {
      parts.push(d);
      have += d.length;
      if (have < n) return;
      cleanup();
      const all = Buffer.concat(parts);
      resolve({ head: all.subarray(0, n), rest: all.subarray(n) });
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`connection closed after ${have} of ${n} handshake bytes`));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onClose);
  });
}
