#!/usr/bin/env -S node --max-semi-space-size=2
// `feedcast`, `npm start` and `node bin/feedcast.js` all run the compiled server (dist/) with plain node:
// through tsx the server would carry the TypeScript loader, 35-40 MB of RSS (docs/performance.md, "Memory").
// The installed package ships dist/ (npm pack builds it) and no src/; in a checkout, dist/ is first
// brought up to date with src/ (scripts/build-dist.mjs), so a stale dist/ is never run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

// The young generation: the first line caps V8's semi-spaces at 2 MB (~25 MB less RSS at 1000 viewers), but
// `node bin/feedcast.js` ignores that line. V8 sizes the cap when the isolate is made, so it cannot be set now;
// the growth factor, though, is read each time the new space grows: at 1 the semi-spaces stay at their initial
// 1 MB. It must happen before the server's modules load (importing them alone grows the new space to 16 MB).
if (!/--max-semi-space-size\b/.test(`${process.execArgv.join(' ')} ${process.env['NODE_OPTIONS'] ?? ''}`)) {
  setFlagsFromString('--semi-space-growth-factor=1');
  // For the `ready` log line (src/observability/young-generation.ts); inherited by Workers' processes, which run this file too.
  process.env['FEEDCAST_YOUNG_GENERATION'] = 'held';
}

const sources = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const compiled = fileURLToPath(new URL('../dist/main.js', import.meta.url));
if (existsSync(sources)) {
  // A child process: the TypeScript compiler never enters this server's heap.
  const build = spawnSync(process.execPath, [fileURLToPath(new URL('../scripts/build-dist.mjs', import.meta.url))], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (build.status !== 0) {
    process.stderr.write(`feedcast: could not bring dist/ up to date with src/ (scripts/build-dist.mjs)\n`);
    process.exit(1);
  }
}
if (!existsSync(compiled)) {
  process.stderr.write(
    `feedcast: ${compiled} is missing: this package was packed without its build (npm pack runs npm run build)\n`,
  );
  process.exit(1);
}
await import(compiled);
