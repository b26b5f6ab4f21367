// Where a Feedcast CPU profile's time goes while it serves WebRTC viewers: each sample of a
// `node --cpu-prof` profile is put in the first category whose test matches a frame of its stack
// (SRTP encryption, werift's per-packet sender work, socket sends, packetisation, ...).
//
//   npx tsx bench/cpu-profile-split.ts FILE.cpuprofile [--from SECONDS] [--to SECONDS]
//
// --from/--to keep the samples between those seconds of the profile (e.g. the measuring window).

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** werift ships as one bundle (lib/index.mjs): its frames are told apart by function name. */
const SRTP_FUNCTIONS = new Set([
  'encryptRtp',
  'encrypt',
  'rtpInitializationVector',
  'generateCounter',
  'generateSrtpAuthTag',
  'getSrtpSsrcState',
  'updateRolloverCount',
]);

/** In order: a sample goes to the first category one of whose tests matches a frame of its stack. */
const CATEGORIES: { name: string; test: (fn: string, url: string) => boolean }[] = [
  { name: 'idle', test: (fn) => fn === '(idle)' },
  { name: 'garbage collection', test: (fn) => fn === '(garbage collector)' },
  {
    name: 'start-up (module loading)',
    test: (fn) =>
      /^(compileSourceTextModule|wrapSafe|compileForInternalLoader|parseSource|loadESM|importModuleDynamically)/.test(fn),
  },
  {
    name: 'ICE and DTLS set-up (handshakes, key exchange, STUN)',
    test: (fn, url) => url.includes('nacl') || /dtls|Dtls|handshake|Handshake|Certificate|stun|Stun|[cC]andidate|Flight/.test(fn),
  },
  { name: 'RTCP in and out (receiver reports, sender reports)', test: (fn) => /rtcp|Rtcp|RTCP|srtcp/.test(fn) },
  {
    name: 'SRTP encryption (AES-GCM or AES-CTR + HMAC-SHA1 per packet: native/rtp-send.c, node:crypto, werift srtp)',
    test: (fn, url) =>
      fn === 'protectDatagrams' ||
      url.includes('webrtc/srtp-protect') ||
      url.startsWith('node:internal/crypto') ||
      (url.endsWith('werift/lib/index.mjs') && SRTP_FUNCTIONS.has(fn)),
  },
  {
    name: 'socket sends (sendmmsg of native/rtp-send.c, dgram, werift ICE send)',
    test: (fn, url) => fn === 'sendDatagrams' || url.includes('webrtc/srtp-sender') || url === 'node:dgram' || fn === 'sendData',
  },
  {
    name: 'werift RTP sender per packet (header extensions, abs-send-time clock, bandwidth estimate, NACK history)',
    test: (fn, url) =>
      url.endsWith('werift/lib/index.mjs') &&
      /^(sendRtp|ntpTime|rtpPacketSent|serialize|_RtpHeader|_RtpPacket|runRtcp)$/.test(fn),
  },
  {
    name: 'per viewer in Feedcast (from-feed.ts: headers, timestamps, slow-reader policy)',
    test: (_fn, url) => url.includes('webrtc/from-feed'),
  },
  {
    name: 'packetisation, once per feed (rtp-source.ts, formats/rtp)',
    test: (_fn, url) => url.includes('webrtc/rtp-source') || url.includes('formats/rtp/'),
  },
  {
    name: 'promise and tick queues (werift sends are async)',
    test: (fn) => fn === 'runMicrotasks' || fn === 'processTicksAndRejections',
  },
  {
    name: 'ingest (RTMP, FLV, feed)',
    test: (_fn, url) => url.includes('protocols/rtmp') || url.includes('formats/flv') || url.includes('/feed/'),
  },
  { name: 'program (V8 and native, no JavaScript frame)', test: (fn) => fn === '(program)' },
];

function main(): void {
  const argv = process.argv.slice(2);
  const file = argv[0];
  if (file === undefined) throw new Error('usage: cpu-profile-split.ts FILE.cpuprofile [--from SECONDS] [--to SECONDS]');
  const flag = (name: string): number | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i > 0 ? Number(argv[i + 1]) : undefined;
  };
  const from = (flag('from') ?? 0) * 1e6;
  const to = (flag('to') ?? Infinity) * 1e6;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const categoryOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = categoryOf.get(id);
    if (known !== undefined) return known;
    const stack: ProfileNode[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at) as ProfileNode);
    const hit = CATEGORIES.find((c) => stack.some((f) => c.test(f.callFrame.functionName, f.callFrame.url)));
    const name = hit?.name ?? 'other';
    categoryOf.set(id, name);
    return name;
  };
  const micros = new Map<string, number>();
  let t = 0;
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t < from || t > to) return;
    const c = classify(id);
    micros.set(c, (micros.get(c) ?? 0) + dt);
    total += dt;
  });
  const busy = total - (micros.get('idle') ?? 0);
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy\n\n`);
  process.stdout.write('| where | CPU s | % of busy |\n|---|---:|---:|\n');
  for (const [name, us] of [...micros].sort((a, b) => b[1] - a[1])) {
    if (name === 'idle') continue;
    process.stdout.write(`| ${name} | ${(us / 1e6).toFixed(2)} | ${((us / busy) * 100).toFixed(1)} |\n`);
  }
}

main();
