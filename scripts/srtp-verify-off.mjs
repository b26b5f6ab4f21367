// Bench only (the feedcast-whep-unverified target of bench/peers.ts): preloaded into Feedcast with
// `node --import`, it replaces SrtpGuard.install with a guard that wraps nothing, so inbound
// SRTP/SRTCP goes to werift unchecked, as before srtp-guard.ts. The A/B against feedcast-whep is
// then the CPU that verifying the viewers' SRTCP costs. Never loaded by the server itself.

import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const main = process.argv[1] ?? '';
const ext = main.endsWith('.ts') ? '.ts' : '.js';
const url = pathToFileURL(join(dirname(main), 'protocols', 'webrtc', `srtp-guard${ext}`)).href;
// NODE_OPTIONS' --import runs before the command line's `--import tsx`: register tsx first for the sources.
if (ext === '.ts') (await import('tsx/esm/api')).register();
const { SrtpGuard } = await import(url);
// The guard's counters stay at 0 (the route logs "receive path has moved" at close: expected here).
SrtpGuard.install = (pc) => new SrtpGuard(pc.dtlsTransports);
process.emitWarning(`inbound SRTP/SRTCP verification is OFF (${url}): bench only`);
