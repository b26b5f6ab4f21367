// RtmpSession under fuzzed AMF0 commands and chunk bytes from a real socket: every connection
// either goes on or is closed by itself; the server keeps serving (publish/play still work).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Amf0Value } from '../../formats/amf/amf0.js';
import { commandMessage } from '../../formats/rtmp/messages.js';
import { RtmpTestClient, statusCode } from '../../../test/helpers/rtmp-client.js';
import { startTestServer } from '../../../test/helpers/test-server.js';
import { RtmpServer } from './server.js';

const NAMES = [
  'connect',
  'createStream',
  'publish',
  'play',
  'deleteStream',
  'closeStream',
  'releaseStream',
  'FCPublish',
  'FCUnpublish',
  'getStreamLength',
  '_checkbw',
  'pause',
  'x',
];

describe('RtmpSession fuzz', () => {
  it('random commands after connect never take the server down', async (t) => {
    const server = await startTestServer(t, '<Feed x.ffm>\n</Feed>\nDynamicFeeds on\n');
    const rtmp = new RtmpServer(server.ctx, { chunkSize: 128 });
    const port = await rtmp.listen(0, '127.0.0.1');
    t.after(() => rtmp.close());

    const leaf = fc.oneof(fc.double(), fc.boolean(), fc.string({ maxLength: 12 }), fc.constant(null), fc.constant(undefined));
    const value: fc.Arbitrary<Amf0Value> = fc.oneof(
      leaf,
      fc.dictionary(fc.string({ maxLength: 6 }), leaf, { maxKeys: 3 }),
      fc.array(leaf, { maxLength: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            name: fc.oneof(fc.constantFrom(...NAMES), fc.string({ minLength: 1, maxLength: 10 })),
            txn: fc.integer({ min: 0, max: 9 }),
            obj: value,
            args: fc.array(value, { maxLength: 3 }),
            stream: fc.integer({ min: 0, max: 2 }),
          }),
          { maxLength: 4 },
        ),
        fc.uint8Array({ maxLength: 64 }),
        async (commands, junk) => {
          const client = await RtmpTestClient.open('127.0.0.1', port);
          try {
            await client.connect('live', 'rtmp://127.0.0.1/live');
            client.send(commands.map((c) => commandMessage(c.stream, c.name, c.txn, c.obj, ...c.args)));
            client.raw(Buffer.from(junk));
            await new Promise((r) => setTimeout(r, 5));
          } finally {
            client.close();
          }
        },
      ),
      { numRuns: 60 },
    );
    // Still serving: a clean publish works.
    const ok = await RtmpTestClient.open('127.0.0.1', port);
    t.after(() => ok.close());
    await ok.connect('live', 'rtmp://127.0.0.1/live');
    await new Promise((r) => setTimeout(r, 50)); // let the fuzzed publishers' sockets close
    assert.equal(statusCode((await ok.publish('fuzzcheck')).status), 'NetStream.Publish.Start');
  });
});
