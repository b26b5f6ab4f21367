// What the single-port mode (WebRTCUDPPort, src/protocols/webrtc/udp-mux.ts) costs: CPU per packet
// relayed between werift's loopback sockets and the viewers, against the same packets sent straight
// from werift's socket to the viewer (the per-peer port mode). Run: npx tsx bench/udp-mux.ts
// [--peers 100] [--mbps 2] [--seconds 5]. Everything runs in this one process on 127.0.0.1, so the
// difference between the two rows is the relay's receive + send per packet.

import { once } from 'node:events';
import { createSocket, type Socket } from 'node:dgram';
import { silentLogger } from '../src/observability/logger.js';
import { UdpMux } from '../src/protocols/webrtc/udp-mux.js';
import { bindingRequest } from '../test/helpers/stun.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const PEERS = arg('peers', 100);
const MBPS = arg('mbps', 2);
const SECONDS = arg('seconds', 5);
const PACKET_BYTES = 1200;
const TICK_MS = 10;
const PACKETS_PER_TICK = (MBPS * 1e6) / 8 / PACKET_BYTES / (1000 / TICK_MS);

async function udpSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

interface Pair {
  /** Stands for werift's socket of one peer. */
  werift: Socket;
  viewer: Socket;
  /** Where werift sends to reach the viewer: the viewer itself, or the mux's relay socket. */
  to: { address: string; port: number };
  received: number;
}

/** Sends every pair's share of packets for SECONDS; returns CPU µs per packet and the delivery ratio. */
async function run(pairs: Pair[]): Promise<{ cpuUsPerPacket: number; delivered: number; packets: number }> {
  const payload = Buffer.alloc(PACKET_BYTES, 0x80);
  let sent = 0;
  let owed = 0;
  const cpu0 = process.cpuUsage();
  const timer = setInterval(() => {
    owed += PACKETS_PER_TICK;
    const n = Math.floor(owed);
    owed -= n;
    for (const p of pairs) for (let i = 0; i < n; i++) p.werift.send(payload, p.to.port, p.to.address);
    sent += n * pairs.length;
  }, TICK_MS);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  clearInterval(timer);
  await new Promise((r) => setTimeout(r, 200));
  const cpu = process.cpuUsage(cpu0);
  const received = pairs.reduce((a, p) => a + p.received, 0);
  return { cpuUsPerPacket: (cpu.user + cpu.system) / Math.max(1, sent), delivered: received / Math.max(1, sent), packets: sent };
}

async function main(): Promise<void> {
  const direct: Pair[] = [];
  for (let i = 0; i < PEERS; i++) {
    const werift = await udpSocket();
    const viewer = await udpSocket();
    const pair: Pair = { werift, viewer, to: { address: '127.0.0.1', port: viewer.address().port }, received: 0 };
    viewer.on('message', () => pair.received++);
    direct.push(pair);
  }

  const mux = await UdpMux.open({
    udpPort: 0,
    tcpPort: undefined,
    bindAddresses: ['127.0.0.1'],
    idleTimeoutMs: 60_000,
    log: silentLogger,
  });
  const relayed: Pair[] = [];
  for (let i = 0; i < PEERS; i++) {
    const werift = await udpSocket();
    const viewer = await udpSocket();
    const peer = { serverUfrag: `s${i}`, serverPassword: `server-password-${i}-0123456789`, clientUfrag: `c${i}` };
    mux.addPeer({ ...peer, target: { address: '127.0.0.1', port: werift.address().port } });
    const arrived = once(werift, 'message');
    viewer.send(bindingRequest(`${peer.serverUfrag}:${peer.clientUfrag}`, peer.serverPassword), mux.port as number, '127.0.0.1');
    const [, rinfo] = (await arrived) as [Buffer, { address: string; port: number }];
    const pair: Pair = { werift, viewer, to: { address: rinfo.address, port: rinfo.port }, received: 0 };
    viewer.on('message', () => pair.received++);
    relayed.push(pair);
  }

  console.log(`UDP mux relay cost: ${PEERS} peers × ${MBPS} Mb/s (${PACKET_BYTES}-byte packets), ${SECONDS} s each, one process`);
  console.log('mode | packets | delivered | CPU µs per packet (send + receive [+ relay])');
  for (const [name, pairs] of [
    ['per-peer port (werift → viewer)', direct],
    ['single port (werift → mux → viewer)', relayed],
  ] as const) {
    const r = await run(pairs);
    console.log(`${name} | ${r.packets} | ${(r.delivered * 100).toFixed(1)}% | ${r.cpuUsPerPacket.toFixed(2)}`);
  }
  for (const p of [...direct, ...relayed]) {
    p.werift.close();
    p.viewer.close();
  }
  mux.close();
}

await main();
