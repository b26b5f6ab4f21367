// WebRTC test set-up: a test server with Feedcast's WHEP/WHIP route on loopback, a live H.264
// publisher on feed1, and one Chromium shared by the tests of a describe block.

import { after, before, type TestContext } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import type { Logger } from '../../src/observability/logger.js';
import { WebRtcRoute, type WebRtcRouteOptions } from '../../src/protocols/webrtc/route.js';
import { publish } from './media-tools.js';
import { startTestServer, waitFor, type TestServer } from './test-server.js';
import { CHROMIUM } from './browser.js';
import { launchWebRtcChromium, WEBRTC_CHROMIUM_ARGS } from './webrtc-browser.js';

export interface Served {
  server: TestServer;
  webrtc: WebRtcRoute;
}

/** A test server from `config` (and the built-in demo on `serverOptions.demoFeeds`) with the WebRTC route (host candidates on 127.0.0.1, its mux sockets open). */
export async function webrtcServer(
  t: TestContext,
  config: string,
  options: Partial<WebRtcRouteOptions> = {},
  serverOptions: { demoFeeds?: string[]; log?: Logger } = {},
): Promise<Served> {
  const server = await startTestServer(t, config, serverOptions);
  const webrtc = new WebRtcRoute(server.ctx, { hostAddresses: ['127.0.0.1'], ...options });
  await webrtc.ready();
  server.http.addRoute(webrtc);
  t.after(() => webrtc.close());
  return { server, webrtc };
}

/** ffmpeg publishing 640x360 H.264 (and AAC with 'h264-aac') to feed1 until the test ends; resolves once the feed has its tracks. */
export async function livePublisher(
  t: TestContext,
  server: TestServer,
  codecs: 'h264-aac' | 'h264-only' = 'h264-only',
): Promise<void> {
  // Until the test stops it (a fixed length ran out mid-test on a loaded machine).
  const pub = publish(server.url('/feed1.ffm'), { codecs, size: '640x360', seconds: 3600 });
  t.after(() => pub.stop());
  const want = codecs === 'h264-aac' ? 2 : 1;
  await waitFor('the feed to get tracks', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) === want);
}

/**
 * Inside a describe block: one WebRTC Chromium (with `extraArgs`) launched before its tests and
 * closed after them; the function returns it.
 */
export function sharedWebRtcBrowser(extraArgs: string[] = []): () => Browser {
  let browser: Browser | undefined;
  before(async () => {
    browser =
      extraArgs.length === 0
        ? await launchWebRtcChromium()
        : await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...WEBRTC_CHROMIUM_ARGS, ...extraArgs] });
  });
  after(async () => {
    await browser?.close();
  });
  return () => {
    if (browser === undefined)
      throw new Error('the shared Chromium is not launched (sharedWebRtcBrowser outside a describe block?)');
    return browser;
  };
}
