#!/usr/bin/env -S node --max-semi-space-size=2
// The installed package (npm pack builds dist/ and ships no src/) runs the compiled server with plain
// node. A checkout runs its sources through tsx (a dev dependency), so a stale dist/ is never run.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const sources = new URL('../src/main.ts', import.meta.url);
const compiled = fileURLToPath(new URL('../dist/main.js', import.meta.url));
if (existsSync(fileURLToPath(sources))) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else if (existsSync(compiled)) {
  await import(compiled);
} else {
  process.stderr.write(
    `feedcast: ${compiled} is missing: this package was packed without its build (npm pack runs npm run build)\n`,
  );
  process.exit(1);
}
