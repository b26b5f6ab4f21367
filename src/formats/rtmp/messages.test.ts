// RTMP messages: control message bytes, commands as ffmpeg and the server send them (round trip
// through the AMF0 codec), AMF3-typed commands, and fuzzing of the command parser.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FeedcastError, MalformedInputError } from '../../errors.js';
import { encodeAmf0, type Amf0Value } from '../amf/amf0.js';
import {
  RtmpType,
  UserControlEvent,
  ackMessage,
  commandMessage,
  onStatusMessage,
  parseCommand,
  parseDataMessage,
  parseUserControl,
  setChunkSizeMessage,
  setPeerBandwidthMessage,
  userControlMessage,
  windowAckSizeMessage,
} from './messages.js';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

describe('RTMP messages', () => {
  it('protocol control messages: csid 2, stream 0, the spec layouts', () => {
    assert.deepEqual(setChunkSizeMessage(4096).payload, hex('00001000'));
    assert.equal(setChunkSizeMessage(4096).typeId, 1);
    assert.deepEqual(ackMessage(2 ** 32 + 5).payload, hex('00000005')); // sequence number wraps
    assert.deepEqual(windowAckSizeMessage(2_500_000).payload, hex('002625a0'));
    assert.deepEqual(setPeerBandwidthMessage(2_500_000, 2).payload, hex('002625a0 02'));
    const ping = userControlMessage(UserControlEvent.pingRequest, 77);
    assert.deepEqual(ping.payload, hex('0006 0000004d'));
    assert.deepEqual(parseUserControl(ping.payload), { event: 6, value: 77, value2: undefined });
    assert.deepEqual(parseUserControl(hex('0003 00000001 00000bb8')), { event: 3, value: 1, value2: 3000 });
    for (const m of [setChunkSizeMessage(1), ackMessage(1), windowAckSizeMessage(1), ping]) {
      assert.equal(m.csid, 2);
      assert.equal(m.streamId, 0);
    }
  });

  it('a command round-trips: name, transaction id, command object, arguments', () => {
    const m = commandMessage(1, 'publish', 5, null, 'cam1', 'live');
    assert.equal(m.typeId, RtmpType.commandAmf0);
    assert.deepEqual(m.payload, encodeAmf0(['publish', 5, null, 'cam1', 'live']));
    assert.deepEqual(parseCommand(m.payload, m.typeId), {
      name: 'publish',
      transactionId: 5,
      commandObject: null,
      args: ['cam1', 'live'],
    });
  });

  it('an AMF3 command (type 17) is a 0x00 byte then AMF0 values', () => {
    const payload = Buffer.concat([hex('00'), encodeAmf0(['createStream', 4, null])]);
    assert.deepEqual(parseCommand(payload, RtmpType.commandAmf3), {
      name: 'createStream',
      transactionId: 4,
      commandObject: null,
      args: [],
    });
  });

  it('onStatus carries level, code and description on csid 5', () => {
    const m = onStatusMessage(1, 'error', 'NetStream.Publish.BadName', 'busy');
    assert.equal(m.csid, 5);
    assert.equal(m.streamId, 1);
    const cmd = parseCommand(m.payload, m.typeId);
    assert.equal(cmd.name, 'onStatus');
    assert.deepEqual({ ...(cmd.args[0] as object) }, { level: 'error', code: 'NetStream.Publish.BadName', description: 'busy' });
  });

  it('@setDataFrame data messages parse to their handler name', () => {
    const payload = encodeAmf0(['@setDataFrame', 'onMetaData', { width: 320 }]);
    const data = parseDataMessage(payload, RtmpType.dataAmf0);
    assert.equal(data.name, '@setDataFrame');
    assert.equal(data.args[0], 'onMetaData');
  });

  it('refuses commands that do not start with a name or have a bad transaction id', () => {
    assert.throws(
      () => parseCommand(encodeAmf0([5, 'x']), RtmpType.commandAmf0),
      (e: unknown) => e instanceof MalformedInputError && /name/.test(e.message),
    );
    assert.throws(() => parseCommand(encodeAmf0(['connect', 'one']), RtmpType.commandAmf0), /transaction id/);
    assert.throws(() => parseCommand(encodeAmf0(['', 1]), RtmpType.commandAmf0), /command name of 0/);
    assert.throws(() => parseCommand(Buffer.alloc(0), RtmpType.commandAmf0), MalformedInputError);
  });

  it('fuzz: any command built from AMF0 values round-trips', () => {
    const leaf = fc.oneof(fc.double({ noNaN: true }), fc.boolean(), fc.string({ maxLength: 20 }), fc.constant(null));
    const value: fc.Arbitrary<Amf0Value> = fc.oneof(
      leaf,
      fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), leaf, { maxKeys: 4 }),
    );
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 1e6 }),
        value,
        fc.array(value, { maxLength: 4 }),
        (name, txn, obj, args) => {
          const m = commandMessage(0, name, txn, obj, ...args);
          const cmd = parseCommand(m.payload, m.typeId);
          assert.equal(cmd.name, name);
          assert.equal(cmd.transactionId, txn);
          assert.equal(cmd.args.length, args.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fuzz: random payloads parse or throw a FeedcastError, nothing else', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom(RtmpType.commandAmf0, RtmpType.commandAmf3),
        (bytes, type) => {
          for (const payload of [Buffer.from(bytes), Buffer.concat([encodeAmf0(['play', 0]), Buffer.from(bytes)])]) {
            try {
              parseCommand(payload, type);
            } catch (err) {
              assert.ok(err instanceof FeedcastError, String(err));
            }
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
