import { parseConfigText } from '../src/config/config.js';
import { startServer } from '../src/server.js';
import { silentLogger } from '../src/observability/logger.js';
import { publish } from '../test/helpers/media-tools.js';
const parsed = await parseConfigText('<Feed feed1.ffm>\n</Feed>\n', 't.conf');
const server = await startServer({ ...parsed, http: { port: 0, bindAddress: '127.0.0.1' }, rtmp: { ...parsed.rtmp, port: 0 }, rtsp: { ...parsed.rtsp, port: undefined } }, { log: silentLogger });
const pub = publish(`http://127.0.0.1:${server.httpPort}/feed1.ffm`, { codecs: 'h264-aac', size: '640x360', seconds: 10 });
const seq: string[] = [];
let last = -1; let n = 0;
await new Promise<void>((resolve) => {
  const t = setInterval(() => {
    const feed = server.ctx.feeds.get('feed1');
    if (feed && feed.tracks.length === 2) {
      clearInterval(t);
      const vid = feed.tracks.find((x) => x.kind === 'video')!.id;
      feed.on('frame', (f) => {
        if (f.trackId !== vid) return;
        seq.push(`${f.pts90k}/${f.dts90k}${f.keyframe ? 'K' : ''}`);
        if (f.pts90k < last) console.log('REORDER at', n, seq.slice(-5).join(' '));
        last = f.pts90k; n++;
        if (n > 150) resolve();
      });
    }
  }, 50);
});
console.log(seq.slice(0, 12).join(' '));
await pub.stop(); await server.close(); process.exit(0);
