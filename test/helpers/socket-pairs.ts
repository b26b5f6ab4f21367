// Real loopback TCP socket pairs, for the tests of the fan-out's write paths
// (src/streams/native-fanout.test.ts, egress-threads.test.ts).

import { once } from 'node:events';
import net from 'node:net';

export interface Pair {
  /** The server's end: what is written into. */
  sending: net.Socket;
  /** The client's end, paused until `receive()`. */
  receiving: net.Socket;
}

const servers: net.Server[] = [];

export async function connectedPairs(n: number): Promise<Pair[]> {
  const server = net.createServer();
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const accepted: net.Socket[] = [];
  server.on('connection', (s: net.Socket) => accepted.push(s));
  const pairs: Pair[] = [];
  for (let i = 0; i < n; i++) {
    const receiving = net.connect(port, '127.0.0.1');
    receiving.pause();
    await once(receiving, 'connect');
    while (accepted.length <= i) await new Promise((r) => setImmediate(r));
    pairs.push({ sending: accepted[i]!, receiving });
  }
  return pairs;
}

/** Collects what the receiving end gets from now on. */
export function receive(pair: Pair): { bytes: () => Buffer; until: (total: number) => Promise<Buffer> } {
  const parts: Buffer[] = [];
  let got = 0;
  const waiters: (() => void)[] = [];
  pair.receiving.on('data', (d: Buffer) => {
    parts.push(d);
    got += d.length;
    for (const w of waiters.splice(0)) w();
  });
  pair.receiving.resume();
  const bytes = (): Buffer => Buffer.concat(parts);
  return {
    bytes,
    until: async (total) => {
      const deadline = Date.now() + 20_000;
      while (got < total) {
        if (Date.now() > deadline) throw new Error(`received ${got} of ${total} bytes in 20 s`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 500);
        });
      }
      return bytes();
    },
  };
}

export function closeAll(pairs: Pair[]): void {
  for (const p of pairs) {
    p.sending.destroy();
    p.receiving.destroy();
  }
  for (const s of servers.splice(0)) s.close();
}

/** `n` bytes counting up from `from` (mod 251), so a reordering or a loss shows. */
export function pattern(from: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (from + i) % 251;
  return b;
}

export const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
