// WebRTC viewer load generator (one process of bench/whep-load.ts's pool): N werift peers that
// each do ICE and DTLS once, against Feedcast's WHEP endpoint or Janus's streaming plugin (HTTP
// API watch flow), then only count RTP headers (bench/rtp-counter.ts): werift never decrypts them.
//
//   npx tsx bench/whep-viewers.ts feedcast|janus URL [--host ADDRESS] [--mountpoint ID] [--ramp PER_SEC]
//     [--concurrency K] [--connect-timeout S]
//
// Commands on stdin, one a line: `ADD K [PER_SEC]` starts K more viewers and prints `READY {json}` once each
// connected or failed; `WINDOW startMs endMs` (one window for the whole pool) prints at endMs
// `REPORT {json}` (per viewer figures, its own CPU and event-loop delay); `END` releases the
// viewers and exits. Host candidates on --host only (127.0.0.1; the Janus row's namespace address), no STUN.

import { createInterface } from 'node:readline';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { randomInt } from 'node:crypto';
import { RTCPeerConnection, RTCRtpCodecParameters, RtcpReceiverInfo, RtcpRrPacket } from 'werift';
import { gatheringComplete, withoutFallbackStun } from '../src/protocols/webrtc/peer.js';
import { RtpCounter, windowFigures, type SsrcCount } from './rtp-counter.js';

type ServerKind = 'feedcast' | 'janus';

const USAGE =
  'usage: whep-viewers.ts feedcast|janus URL [--host ADDRESS] [--mountpoint ID] [--ramp PER_SEC] [--concurrency K] [--connect-timeout S]';

function parseArgs(argv: readonly string[]): {
  kind: ServerKind;
  url: string;
  host: string;
  mountpoint: number;
  rampPerSec: number;
  concurrency: number;
  connectTimeoutSec: number;
} {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a.startsWith('--')) flags.set(a.slice(2), argv[++i] ?? '');
    else positional.push(a);
  }
  const [kind, url] = positional;
  if ((kind !== 'feedcast' && kind !== 'janus') || url === undefined) throw new Error(USAGE);
  const num = (name: string, v: string, min: number, max: number): number => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < min || x > max) throw new Error(`${name} must be a number in ${min}..${max}, got ${v}`);
    return x;
  };
  return {
    kind,
    url,
    host: flags.get('host') ?? '127.0.0.1',
    mountpoint: Math.round(num('--mountpoint', flags.get('mountpoint') ?? '1', 1, 2 ** 31)),
    rampPerSec: num('--ramp', flags.get('ramp') ?? '20', 1, 1000),
    concurrency: Math.round(num('--concurrency', flags.get('concurrency') ?? '8', 1, 100)),
    connectTimeoutSec: num('--connect-timeout', flags.get('connect-timeout') ?? '60', 1, 600),
  };
}

const args = parseArgs(process.argv.slice(2));
const nowMs = (): number => performance.timeOrigin + performance.now();
const say = (msg: string): void => void process.stderr.write(`[whep-viewers ${process.pid}] ${msg}\n`);

interface Viewer {
  pc: RTCPeerConnection;
  counter: RtpCounter;
  startedAt: number;
  connectedAt: number | undefined;
  error: string | undefined;
  /** Ends the viewer at the server (WHEP DELETE, Janus destroy). */
  release: () => Promise<void>;
}

function newPeer(): RTCPeerConnection {
  const pc = new RTCPeerConnection({
    codecs: {
      video: [
        new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90_000,
          parameters: 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1',
        }),
      ],
      audio: [],
    },
    iceServers: [],
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: [args.host],
    iceInterfaceAddresses: { udp4: args.host },
    bundlePolicy: 'max-bundle',
  });
  withoutFallbackStun(pc);
  return pc;
}

/**
 * From now on the peer's RTP goes to the counter instead of werift's SRTP: the ICE connection's
 * data event (what DTLS and SRTP listen to) lets everything else through (DTLS, RTCP).
 */
function countRtp(pc: RTCPeerConnection, counter: RtpCounter): void {
  for (const t of pc.iceTransports) {
    const event = t.connection.onData as unknown as { execute: (data: Buffer) => void };
    const passOn = event.execute.bind(event);
    event.execute = (data: Buffer): void => {
      if (!counter.onDatagram(data, nowMs())) passOn(data);
    };
  }
}

function connected(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.connectionState === 'connected') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unSubscribe();
      reject(new Error(`not connected within ${timeoutMs} ms (${pc.connectionState})`));
    }, timeoutMs);
    const sub = pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected') {
        clearTimeout(timer);
        sub.unSubscribe();
        resolve();
      } else if (state === 'failed' || state === 'closed') {
        clearTimeout(timer);
        sub.unSubscribe();
        reject(new Error(`connection ${state}`));
      }
    });
  });
}

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

let transactions = 0;
const tx = (): string => `t${process.pid}-${++transactions}`;

/** Feedcast: WHEP (RFC 9725-style): POST the offer, get the answer and a Location to DELETE. */
async function whepNegotiate(pc: RTCPeerConnection, counter: RtpCounter, url: string): Promise<() => Promise<void>> {
  pc.addTransceiver('video', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  countRtp(pc, counter);
  await gatheringComplete(pc, 5000);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp' },
    body: pc.localDescription?.sdp ?? '',
  });
  const answer = await res.text();
  if (res.status !== 201) throw new Error(`WHEP POST: HTTP ${res.status} ${answer.slice(0, 200)}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  const location = res.headers.get('location');
  return async () => {
    if (location !== null) await fetch(new URL(location, url), { method: 'DELETE' }).catch(() => undefined);
  };
}

/**
 * Janus: a session and a streaming-plugin handle; `watch` makes Janus send its JSEP offer (as an
 * event on the session's long poll), the answer goes back with `start`.
 */
async function janusNegotiate(
  pc: RTCPeerConnection,
  counter: RtpCounter,
  base: string,
  mountpoint: number,
): Promise<() => Promise<void>> {
  const created = await post(base, { janus: 'create', transaction: tx() });
  const session = (created['data'] as { id?: number } | undefined)?.id;
  if (session === undefined) throw new Error(`Janus create: ${JSON.stringify(created).slice(0, 200)}`);
  const sessionUrl = `${base}/${session}`;
  const attached = await post(sessionUrl, { janus: 'attach', plugin: 'janus.plugin.streaming', transaction: tx() });
  const handle = (attached['data'] as { id?: number } | undefined)?.id;
  if (handle === undefined) throw new Error(`Janus attach: ${JSON.stringify(attached).slice(0, 200)}`);
  const handleUrl = `${sessionUrl}/${handle}`;
  await post(handleUrl, { janus: 'message', transaction: tx(), body: { request: 'watch', id: mountpoint } });
  let offer: string | undefined;
  const deadline = Date.now() + 30_000;
  while (offer === undefined) {
    if (Date.now() > deadline) throw new Error('Janus sent no offer within 30 s');
    const res = await fetch(`${sessionUrl}?maxev=10&rid=${Date.now()}`);
    const body: unknown = await res.json();
    for (const ev of Array.isArray(body) ? body : [body]) {
      const e = ev as { janus?: string; jsep?: { type: string; sdp: string }; plugindata?: { data?: { error?: string } } };
      if (e.plugindata?.data?.error !== undefined) throw new Error(`Janus watch: ${e.plugindata.data.error}`);
      if (e.jsep?.type === 'offer') offer = e.jsep.sdp;
    }
  }
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  countRtp(pc, counter);
  await gatheringComplete(pc, 5000);
  await post(handleUrl, {
    janus: 'message',
    transaction: tx(),
    body: { request: 'start' },
    jsep: { type: 'answer', sdp: pc.localDescription?.sdp ?? '' },
  });
  await post(handleUrl, { janus: 'trickle', transaction: tx(), candidate: { completed: true } });
  return async () => {
    await post(sessionUrl, { janus: 'destroy', transaction: tx() }).catch(() => undefined);
  };
}

/**
 * A receiver report every second, as a browser sends (its report blocks carry the highest
 * sequence number of each SSRC): it keeps the peer alive at the server (Feedcast closes a peer
 * that sent nothing for WebRTCPeerTimeout), and costs the server one SRTCP decryption each.
 */
function sendReports(v: Viewer): void {
  const ssrc = randomInt(1, 2 ** 32 - 1);
  const timer = setInterval(() => {
    if (v.pc.connectionState !== 'connected') return;
    const reports = [...v.counter.bySsrc].map(
      ([s, c]) => new RtcpReceiverInfo({ ssrc: s, highestSequence: c.maxSeq % 2 ** 32, fractionLost: 0, packetsLost: 0 }),
    );
    for (const t of v.pc.dtlsTransports) t.sendRtcp([new RtcpRrPacket({ ssrc, reports })]).catch(() => undefined);
  }, 1000);
  timer.unref();
  v.pc.connectionStateChange.subscribe((state) => {
    if (state === 'closed' || state === 'failed') clearInterval(timer);
  });
}

async function startViewer(): Promise<Viewer> {
  const pc = newPeer();
  const counter = new RtpCounter();
  const v: Viewer = { pc, counter, startedAt: nowMs(), connectedAt: undefined, error: undefined, release: async () => {} };
  try {
    v.release =
      args.kind === 'feedcast'
        ? await whepNegotiate(pc, counter, args.url)
        : await janusNegotiate(pc, counter, args.url, args.mountpoint);
    await connected(pc, args.connectTimeoutSec * 1000);
    v.connectedAt = nowMs();
    sendReports(v);
  } catch (err) {
    v.error = err instanceof Error ? err.message : String(err);
  }
  return v;
}

/** Starts `count` more viewers (ramped, `concurrency` at a time, a failed one retried once). */
async function addViewers(viewers: Viewer[], count: number, rampPerSec: number): Promise<void> {
  const t0 = nowMs();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const wait = t0 + (i * 1000) / rampPerSec - nowMs();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      let v = await startViewer();
      if (v.error !== undefined) {
        await v.pc.close().catch(() => undefined);
        v = await startViewer();
      }
      viewers.push(v);
    }
  };
  await Promise.all(Array.from({ length: Math.min(args.concurrency, count) }, worker));
}

/** One window over every viewer so far: figures per viewer, this process's CPU and event-loop delay. */
async function measure(viewers: readonly Viewer[], startMs: number, endMs: number): Promise<unknown> {
  const atStart = await untilThenSnapshot(viewers, startMs);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const cpuStart = process.cpuUsage();
  const wallStart = nowMs();
  const atEnd = await untilThenSnapshot(viewers, endMs);
  const wallSec = (nowMs() - wallStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  loop.disable();
  const errors: Record<string, number> = {};
  for (const v of viewers) if (v.error !== undefined) errors[v.error] = (errors[v.error] ?? 0) + 1;
  return {
    viewers: viewers.length,
    connected: viewers.filter((v) => v.error === undefined).length,
    errors,
    wallSec,
    windowStartMs: wallStart,
    figures: viewers.map((v, i) =>
      v.error !== undefined
        ? null
        : (windowFigures(atStart[i] as Map<number, SsrcCount>, atEnd[i] as Map<number, SsrcCount>, wallSec, 90_000) ?? null),
    ),
    ttfpMs: viewers.map((v) => (v.counter.firstAt === undefined ? null : v.counter.firstAt - v.startedAt)),
    connectMs: viewers.map((v) => (v.connectedAt === undefined ? null : v.connectedAt - v.startedAt)),
    malformed: viewers.reduce((a, v) => a + v.counter.malformed, 0),
    cpuPct: ((cpu.user + cpu.system) / 1e6 / wallSec) * 100,
    eventLoopDelayP99Ms: loop.percentile(99) / 1e6,
  };
}

async function main(): Promise<void> {
  const viewers: Viewer[] = [];
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const add = /^ADD (\d+)(?: ([\d.]+))?$/.exec(line.trim());
    const win = /^WINDOW (\d+) (\d+)$/.exec(line.trim());
    if (add !== null) {
      const cpu0 = process.cpuUsage();
      const t0 = nowMs();
      await addViewers(viewers, Number(add[1]), add[2] !== undefined ? Number(add[2]) : args.rampPerSec);
      const cpu = process.cpuUsage(cpu0);
      const ok = viewers.filter((v) => v.error === undefined).length;
      say(`${ok}/${viewers.length} connected`);
      const ready = {
        connected: ok,
        failed: viewers.length - ok,
        setupCpuSec: (cpu.user + cpu.system) / 1e6,
        setupWallSec: (nowMs() - t0) / 1000,
      };
      process.stdout.write(`READY ${JSON.stringify(ready)}\n`);
    } else if (win !== null) {
      process.stdout.write(`REPORT ${JSON.stringify(await measure(viewers, Number(win[1]), Number(win[2])))}\n`);
    } else if (line.trim() === 'END') {
      break;
    } else {
      throw new Error(`unknown command: ${line}`);
    }
  }
  await Promise.race([Promise.all(viewers.map((v) => v.release())), new Promise((r) => setTimeout(r, 5000))]);
  await Promise.race([Promise.all(viewers.map((v) => v.pc.close())), new Promise((r) => setTimeout(r, 5000))]);
}

async function untilThenSnapshot(viewers: readonly Viewer[], atMs: number): Promise<Map<number, SsrcCount>[]> {
  const wait = atMs - nowMs();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  return viewers.map((v) => v.counter.snapshot());
}

// Bounded: whatever happens, the process ends (the parent also kills it past its own bound).
setTimeout(
  () => {
    say('still running after 10 minutes: exiting');
    process.exit(3);
  },
  10 * 60 * 1000,
).unref();
main().then(
  () => process.exit(0),
  (err: unknown) => {
    say(`Error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
