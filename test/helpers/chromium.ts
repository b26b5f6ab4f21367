// Launches headless Chromium for browser tests, with the binary, flags and skip rule of
// test/helpers/browser.ts (one place for TESTING.md's rules).

import type { Browser } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './browser.js';

export { CHROMIUM, skipWithoutChromium } from './browser.js';

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}
