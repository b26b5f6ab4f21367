// Headless Chromium for player tests (TESTING.md): Debian's /usr/bin/chromium through
// playwright-core, with the flags that keep it off the network.

import { existsSync } from 'node:fs';

export const CHROMIUM = process.env['FEEDCAST_CHROMIUM'] ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function skipWithoutChromium(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env['CI'] !== undefined) throw new Error(`${CHROMIUM} is required in CI (apt-get install -y chromium)`);
  return `${CHROMIUM} not installed (apt-get install -y chromium)`;
}

/**
 * ffmpeg video filters that burn the wall clock at capture (RTCTIME, ms since the epoch, low
 * 24 bits) into the top-left corner as 24 white/black boxes of 20x20 px, bit 0 first, 24 px
 * apart from x=10, y=10; the PTS then restarts at 0. Read it back with `readClockBarcode`.
 */
export function clockBarcodeFilter(): string {
  const boxes = Array.from(
    { length: 24 },
    (_, i) => `drawbox=x=${10 + i * 24}:y=10:w=20:h=20:color=white:t=fill:enable='mod(floor(t*1000/${2 ** i}),2)'`,
  );
  return [
    'settb=1/1000',
    'setpts=RTCTIME/1000',
    'drawbox=x=0:y=0:w=600:h=40:color=black:t=fill',
    ...boxes,
    'setpts=PTS-STARTPTS',
  ].join(',');
}

/** Browser-side: decodes the barcode of the frame on screen; returns the capture time (ms since the epoch) or null. */
export const readClockBarcode = `(() => {
  const v = document.querySelector('video');
  if (!v || v.videoWidth === 0) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d', { willReadFrequently: true });
  g.drawImage(v, 0, 0);
  const scale = v.videoWidth / 640;
  let low = 0;
  for (let i = 0; i < 24; i++) {
    const px = g.getImageData(Math.round((20 + i * 24) * scale), Math.round(20 * scale), 1, 1).data;
    if (px[0] + px[1] + px[2] > 3 * 128) low += 2 ** i;
  }
  const now = Date.now();
  const span = 2 ** 24;
  return now - (((now - low) % span) + span) % span;
})()`;
