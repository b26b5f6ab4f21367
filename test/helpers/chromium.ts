// Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by playwright-core,
// with the flags that keep it off the network (TESTING.md).

import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

export const CHROMIUM = process.env['FEEDCAST_CHROMIUM'] ?? '/usr/bin/chromium';

export function skipWithoutChromium(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env['CI'] !== undefined) throw new Error(`Chromium is required in CI at ${CHROMIUM} (apt-get install -y chromium)`);
  return `Chromium not installed at ${CHROMIUM} (apt-get install -y chromium)`;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
