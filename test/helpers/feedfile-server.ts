// A Feedcast server with one feed recorded to a feed file, as a child process for the crash test:
// `node --import tsx test/helpers/feedfile-server.ts FILE`. Prints one JSON line
// {port, recovery} once listening; GET /feedfile-status answers the writer's status as JSON.

import { silentLogger } from '../../src/observability/logger.js';
import { startLoopbackServer } from './test-server.js';

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: feedfile-server.ts FILE\n');
  process.exit(2);
}
const server = await startLoopbackServer(`<Feed feed1.ffm>\nFile ${file}\nFileMaxSize 20M\n</Feed>\n`, 'crash-test.conf', {
  log: silentLogger,
});
const feed = server.ctx.feeds.get('feed1');
const writer = feed !== undefined ? server.ctx.feedFiles.of(feed) : undefined;
if (writer === undefined) throw new Error('the server did not open a feed file for feed1');
server.http.addRoute({
  handle(_req, res, path) {
    if (path !== 'feedfile-status') return false;
    const body = JSON.stringify(writer.status);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
    res.end(body);
    return true;
  },
});
process.stdout.write(JSON.stringify({ port: server.httpPort, recovery: writer.status.recovery }) + '\n');
process.on('SIGTERM', () => {
  void writer
    .close()
    .then(() => server.close())
    .then(() => process.exit(0));
});
