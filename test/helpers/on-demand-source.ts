// On-demand feed sources (Launch / Source children of the server) in tests: a short clip for a
// `Source` to pull, a server whose feed cam.ffm plays it on demand, and the checks that the
// source ran for its reader and that its ffmpeg is gone once it stopped.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { FeedSourceStatus } from '../../src/transcode/launch.js';
import { FFMPEG, run } from './media-tools.js';
import { alive, childrenNamed } from './processes.js';
import { startTestServer, waitFor, type TestServer } from './test-server.js';

/** The status of the source of `feed`, if it has one. */
export function feedSource(server: TestServer, feed: string): FeedSourceStatus | undefined {
  return server.ctx.children?.sources().find((s) => s.feed === feed);
}

/** A 2 s H.264 + AAC MPEG-TS clip in a temp dir (160x120, 10 fps), removed after the test. */
export async function makeClip(t: TestContext, prefix = 'feedcast-source-'): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'clip.ts');
  const made = await run(
    FFMPEG,
    [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10', '-f', 'lavfi', '-i', 'sine=sample_rate=44100'],
      ...['-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-c:a', 'aac', '-f', 'mpegts', file],
    ],
    30_000,
  );
  assert.equal(made.code, 0, made.stderr);
  return file;
}

/**
 * A test server whose feed cam.ffm pulls a looped clip on demand (TranscodeIdleTimeout 0.5),
 * asserted idle: no source running, no ffmpeg child. `reader` names who should bring it up.
 */
export async function startOnDemandClip(t: TestContext, clipPrefix: string, reader: string): Promise<TestServer> {
  const clip = await makeClip(t, clipPrefix);
  const server = await startTestServer(t, `TranscodeIdleTimeout 0.5\n<Feed cam.ffm>\n  Source ${clip}\n</Feed>\n`);
  assert.equal(feedSource(server, 'cam')?.running, false, `on demand: nothing runs before ${reader}`);
  assert.deepEqual(childrenNamed('ffmpeg'), []);
  return server;
}

/** Waits (`what`) for the source of `feed` to stop, then checks that its ffmpeg `pid` is gone. */
export async function sourceGone(
  server: TestServer,
  feed: string,
  pid: number | undefined,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  assert.ok(pid !== undefined, `the source of ${feed} ran`);
  await waitFor(what, () => feedSource(server, feed)?.running === false, timeoutMs);
  assert.ok(!alive(pid), `the source ffmpeg (pid ${pid}) is gone`);
}
