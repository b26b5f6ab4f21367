// HLS of an encoder ladder (issue 7): `/feed1/master.m3u8` lists one LL-HLS rendition per
// variant with the real CODECS; each rendition decodes at its size, reports the other one, and
// their segments start on keyframes at the same PTS, so players can switch; idle stops the ladder.
// And `/cam/index.m3u8` alone brings up an on-demand Launch feed, which stops when HLS is idle.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, skipWithoutChromium } from '../helpers/browser.js';
import { encodedStream, LAUNCH_TEST_SOURCE } from '../helpers/config-blocks.js';
import { FFPROBE, probePackets, publish, run, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/test-server.js';
import { childrenNamed } from '../helpers/processes.js';

const skip = skipWithoutFfmpeg();
const skipBrowser = skip || skipWithoutChromium();

const rendition = (name: string, size: string, kbps: number): string =>
  encodedStream(name, { size, fps: 15, kbps, extra: ['AVOptionVideo preset veryfast'] });

const CONFIG = `
HLSIdleTimeout 2
TranscodeIdleTimeout 1
<Feed feed1.ffm>
</Feed>
${rendition('lo.flv', '320x180', 300)}
${rendition('hi.flv', '640x360', 800)}
${rendition('lo.m3u8', '320x180', 300).replace('Format flv', 'Format hls')}
`;

async function get(url: string): Promise<{ status: number; text: string; bytes: Buffer; type: string | null }> {
  const res = await fetch(url);
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, text: bytes.toString('utf8'), bytes, type: res.headers.get('content-type') };
}

interface StreamInf {
  attrs: Map<string, string>;
  uri: string;
}

function streamInfs(master: string): StreamInf[] {
  const lines = master.split('\n');
  const out: StreamInf[] = [];
  lines.forEach((line, i) => {
    if (!line.startsWith('#EXT-X-STREAM-INF:')) return;
    const attrs = new Map<string, string>();
    for (const m of line.slice('#EXT-X-STREAM-INF:'.length).matchAll(/([A-Z-]+)=("[^"]*"|[^,]*)/g)) {
      attrs.set(m[1] ?? '', (m[2] ?? '').replace(/^"|"$/g, ''));
    }
    out.push({ attrs, uri: lines[i + 1] ?? '' });
  });
  return out;
}

/** MSN -> segment URI of the complete segments of a media playlist, and its init section URI. */
function segmentsOf(playlist: string): { init: string; segments: Map<number, string> } {
  const lines = playlist.split('\n');
  let msn = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)?.[1] ?? NaN);
  const segments = new Map<number, string>();
  let init = '';
  lines.forEach((line, i) => {
    const map = /^#EXT-X-MAP:URI="([^"]+)"/.exec(line);
    if (map !== null) init = map[1] ?? '';
    if (line.startsWith('#EXTINF:')) segments.set(msn++, lines[i + 1] ?? '');
  });
  return { init, segments };
}

/** ffprobe's first video packet of init + segment: its PTS and whether it is a keyframe. */
async function firstVideoPacket(
  dir: string,
  init: Buffer,
  segment: Buffer,
  name: string,
): Promise<{ pts: number; key: boolean }> {
  const file = join(dir, `${name}.mp4`);
  writeFileSync(file, Buffer.concat([init, segment]));
  const { code, stdout, stderr } = await run(
    FFPROBE,
    ['-v', 'error', '-select_streams', 'v:0', '-show_packets', '-show_entries', 'packet=pts_time,flags', '-of', 'json', file],
    20_000,
  );
  assert.equal(code, 0, stderr);
  const packets = (JSON.parse(stdout) as { packets?: { pts_time?: string; flags?: string }[] }).packets ?? [];
  const first = packets[0];
  assert.ok(first !== undefined, `${name}: no video packet`);
  return { pts: Number(first.pts_time), key: first.flags?.startsWith('K') === true };
}

describe('HLS of an encoder ladder', { skip }, () => {
  test(
    'master playlist, renditions at their sizes, rendition reports, aligned keyframes, idle stop',
    { timeout: 400_000 },
    async (t) => {
      const server: TestServer = await startTestServer(t, CONFIG);
      const pub = publish(server.url('/feed1.ffm'), { seconds: 3600, size: '640x360' });
      t.after(() => pub.stop());
      await waitFor('the feed to have tracks', () => server.ctx.feeds.get('feed1')?.tracks.length === 2);

      // Master playlist: one STREAM-INF per rendition, with the real codecs of the encoder's output.
      const master = await get(server.url('/feed1/master.m3u8'));
      assert.equal(master.status, 200, master.text);
      assert.equal(master.type, 'application/vnd.apple.mpegurl');
      assert.match(master.text, /^#EXTM3U\n/);
      assert.match(master.text, /#EXT-X-INDEPENDENT-SEGMENTS/);
      t.diagnostic(master.text);
      const infs = streamInfs(master.text);
      assert.equal(infs.length, 2, master.text);
      const bySize = new Map(infs.map((s) => [s.attrs.get('RESOLUTION'), s]));
      assert.deepEqual([...bySize.keys()].sort(), ['320x180', '640x360'], master.text);
      for (const inf of infs) {
        assert.match(inf.attrs.get('CODECS') ?? '', /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/, master.text);
        assert.equal(inf.attrs.get('FRAME-RATE'), '15.000');
        assert.ok(Number(inf.attrs.get('BANDWIDTH')) >= 300_000, master.text);
        assert.ok(Number(inf.attrs.get('AVERAGE-BANDWIDTH')) > 0, master.text);
      }
      assert.ok(
        Number(bySize.get('640x360')?.attrs.get('BANDWIDTH')) > Number(bySize.get('320x180')?.attrs.get('BANDWIDTH')),
        'the larger rendition declares more bandwidth',
      );
      assert.equal(childrenNamed('ffmpeg').length, 2, 'the publisher and one ladder child for both renditions');

      // Each rendition: an LL-HLS media playlist that reports the other rendition's live edge.
      const urls = infs.map((s) => server.url(`/feed1/${s.uri}`));
      const playlists: string[] = [];
      for (const url of urls) {
        let text = '';
        await waitFor(
          `${url} with two complete segments and a rendition report`,
          async () => {
            const r = await get(url);
            text = r.text;
            return r.status === 200 && (text.match(/#EXTINF/g) ?? []).length >= 2 && text.includes('#EXT-X-RENDITION-REPORT');
          },
          120_000,
        );
        assert.match(text, /#EXT-X-PART-INF:PART-TARGET=/);
        const other = infs.find((s) => server.url(`/feed1/${s.uri}`) !== url)?.uri ?? '';
        const report = new RegExp(
          `#EXT-X-RENDITION-REPORT:URI="\\.\\./${other.split('/')[0] ?? ''}/index\\.m3u8",LAST-MSN=\\d+,LAST-PART=\\d+`,
        );
        assert.match(text, report, text);
        playlists.push(text);
        t.diagnostic(text.split('\n').slice(-4).join(' | '));
      }

      // ffprobe decodes each rendition at its declared size.
      for (const inf of infs) {
        const probe = await probePackets(server.url(`/feed1/${inf.uri}`), 3, 120_000);
        const video = probe.streams.find((s) => s.codec_type === 'video');
        assert.equal(video?.codec_name, 'h264');
        assert.equal(`${video?.width}x${video?.height}`, inf.attrs.get('RESOLUTION'));
        assert.ok(probe.streams.some((s) => s.codec_type === 'audio' && s.codec_name === 'aac'));
      }

      // A declared `Format hls` stream with the same encoding is served from the same ladder.
      const declared = await probePackets(server.url('/lo.m3u8'), 2, 120_000);
      const declaredVideo = declared.streams.find((s) => s.codec_type === 'video');
      assert.equal(`${declaredVideo?.width}x${declaredVideo?.height}`, '320x180');
      assert.equal(childrenNamed('ffmpeg').length, 2, 'still one ladder child');

      // The same MSN starts with a keyframe at the same PTS in both renditions (within a frame).
      // The bytes of both renditions' newest common segments are fetched together, right after their
      // playlists (ffprobe runs afterwards): a busy machine once took so long between the playlist and
      // a segment that the live window had dropped it (404); then the step starts again.
      const base = urls.map((u) => u.slice(0, u.lastIndexOf('/') + 1));
      let fetched: { msn: number; init: Buffer; segment: Buffer }[][] = [];
      await waitFor(
        'the bytes of two segment numbers complete in both renditions',
        async () => {
          const lists = (await Promise.all(urls.map(async (u) => (await get(u)).text))).map(segmentsOf);
          const [x, y] = lists;
          const common = [...(x?.segments.keys() ?? [])].filter((msn) => y?.segments.has(msn) === true).slice(-2);
          if (common.length < 2) return false;
          const answers = await Promise.all(
            lists.map((list, i) =>
              Promise.all(
                common.map(async (msn) => {
                  const [init, segment] = await Promise.all([
                    get(`${base[i]}${list.init}`),
                    get(`${base[i]}${list.segments.get(msn)}`),
                  ]);
                  return { msn, init, segment };
                }),
              ),
            ),
          );
          if (answers.flat().some((r) => r.init.status !== 200 || r.segment.status !== 200)) return false;
          fetched = answers.map((r) => r.map(({ msn, init, segment }) => ({ msn, init: init.bytes, segment: segment.bytes })));
          return true;
        },
        120_000,
      );
      const dir = mkdtempSync(join(tmpdir(), 'hls-ladder-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      for (const [k, { msn }] of (fetched[0] ?? []).entries()) {
        const firsts = [];
        for (const [i, rendition] of fetched.entries()) {
          const got = rendition[k];
          assert.ok(got !== undefined);
          firsts.push(await firstVideoPacket(dir, got.init, got.segment, `r${i}-${msn}`));
        }
        const [x, y] = firsts;
        t.diagnostic(`segment ${msn}: ${JSON.stringify(firsts)}`);
        assert.ok(x?.key === true && y?.key === true, `segment ${msn} starts with a keyframe in both: ${JSON.stringify(firsts)}`);
        assert.ok(Math.abs((x?.pts ?? 0) - (y?.pts ?? 1)) <= 1 / 15, `segment ${msn} first PTS: ${JSON.stringify(firsts)}`);
      }

      // Nobody asks any more: the segmenters go idle (2 s), then the ladder (1 s).
      await waitFor(
        'the ladder to stop once HLS is idle',
        () => !(server.ctx.children?.transcoders() ?? []).some((s) => s.running),
        120_000,
      );
      assert.equal(childrenNamed('ffmpeg').length, 1, 'only the publisher is left');
    },
  );

  test('/cam/index.m3u8 alone starts an on-demand Launch feed; HLS idle stops it', { timeout: 400_000 }, async (t) => {
    const server = await startTestServer(
      t,
      `HLSIdleTimeout 1
TranscodeIdleTimeout 0.5
<Feed cam.ffm>
  ${LAUNCH_TEST_SOURCE}
</Feed>`,
    );
    const source = (): { running: boolean } | undefined => server.ctx.children?.sources().find((s) => s.feed === 'cam');
    assert.equal(source()?.running, false, 'nothing runs before a reader comes');
    const playlist = await get(server.url('/cam/index.m3u8'));
    assert.equal(playlist.status, 200, playlist.text);
    assert.match(playlist.text, /#EXTINF/);
    assert.equal(source()?.running, true);
    const probe = await probePackets(server.url('/cam/index.m3u8'), 2, 120_000);
    assert.equal(probe.streams.find((s) => s.codec_type === 'video')?.width, 160);
    await waitFor('the source to stop once HLS is idle', () => source()?.running === false, 120_000);
  });

  test(
    'hls.js in Chromium plays the master playlist and switches renditions',
    { skip: skipBrowser, timeout: 400_000 },
    async (t) => {
      const server = await startTestServer(t, CONFIG);
      const pub = publish(server.url('/feed1.ffm'), { seconds: 3600, size: '640x360' });
      t.after(() => pub.stop());
      await waitFor('the feed to have tracks', () => server.ctx.feeds.get('feed1')?.tracks.length === 2);
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      t.after(() => browser.close());
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      // The player page serves hls.js from node_modules; a tiny page of our own drives it.
      await page.goto(server.url('/web/vendor/hls.min.js'));
      await page.setContent('<video muted autoplay playsinline></video>');
      await page.addScriptTag({ url: server.url('/web/vendor/hls.min.js') });
      await page.evaluate(`(() => {
      const video = document.querySelector('video');
      const hls = new Hls({ lowLatencyMode: true, startLevel: 0, capLevelToPlayerSize: false });
      window.switched = [];
      window.hlsErrors = [];
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => window.switched.push(hls.levels[d.level].height));
      hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.hlsErrors.push(d.details); });
      hls.loadSource(${JSON.stringify(server.url('/feed1/master.m3u8'))});
      hls.attachMedia(video);
      window.hls = hls;
    })()`);
      await page.waitForFunction("document.querySelector('video').currentTime > 2", undefined, { timeout: 120_000 });
      const levels = await page.evaluate<string[]>('window.hls.levels.map((l) => l.width + "x" + l.height)');
      assert.deepEqual(levels, ['320x180', '640x360']);
      // Switch to the other rendition; playback goes on past the switch, in the new size.
      const at = await page.evaluate<number>(
        "(() => { window.hls.currentLevel = 1; return document.querySelector('video').currentTime; })()",
      );
      await page.waitForFunction('window.switched.includes(360)', undefined, { timeout: 120_000 });
      await page.waitForFunction(`document.querySelector('video').currentTime > ${at + 3}`, undefined, { timeout: 120_000 });
      await page.waitForFunction("document.querySelector('video').videoHeight === 360", undefined, { timeout: 120_000 });
      const frames = await page.evaluate<number>("document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames");
      assert.ok(frames > 30, `${frames} frames decoded`);
      assert.deepEqual(await page.evaluate<string[]>('window.hlsErrors'), []);
      assert.deepEqual(errors, []);
    },
  );

  test(
    'each rendition is read as its stream: its ACL refuses the playlist and drops it from the master',
    { timeout: 400_000 },
    async (t) => {
      const denied = rendition('hi.flv', '640x360', 800).replace('</Stream>', '  ACL deny 127.0.0.1\n</Stream>');
      const server = await startTestServer(
        t,
        `HLSIdleTimeout 2\nTranscodeIdleTimeout 1\n<Feed feed1.ffm>\n</Feed>\n${rendition('lo.flv', '320x180', 300)}\n${denied}\n`,
      );
      const pub = publish(server.url('/feed1.ffm'), { seconds: 3600, size: '640x360' });
      t.after(() => pub.stop());
      await waitFor('the feed to have tracks', () => server.ctx.feeds.get('feed1')?.tracks.length === 2);
      const refused = await get(server.url('/feed1/r1/index.m3u8'));
      assert.equal(refused.status, 403, refused.text);
      assert.equal(childrenNamed('ffmpeg').length, 1, 'a refused request starts no ladder');
      const master = await get(server.url('/feed1/master.m3u8'));
      assert.equal(master.status, 200, master.text);
      assert.deepEqual(
        streamInfs(master.text).map((s) => [s.attrs.get('RESOLUTION'), s.uri]),
        [['320x180', 'r0/index.m3u8']],
      );
    },
  );
});
