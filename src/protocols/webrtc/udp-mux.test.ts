// The UDP mux (single-port WebRTC) and its STUN pieces: USERNAME and MESSAGE-INTEGRITY of a
// Binding request captured from Chromium (test/fixtures/stun-binding-request-chromium.json),
// XOR-MAPPED-ADDRESS rewriting checked by werift's own STUN parser, and the relay over real
// loopback sockets (UDP and ICE-TCP): mapping, dropping strangers, bounds, idle and peer removal.

import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import { classes, Message, methods, parseMessage } from 'werift';
import { MalformedInputError } from '../../errors.js';
import { silentLogger } from '../../observability/logger.js';
import { bindingRequest } from '../../../test/helpers/stun.js';
import { waitFor } from '../../../test/helpers/test-server.js';
import {
  iceUsername,
  looksLikeStun,
  parseStunMessage,
  rewriteMappedAddress,
  UdpMux,
  verifyIntegrity,
  type UdpMuxOptions,
} from './udp-mux.js';

interface CapturedRequest {
  chromium: string;
  serverUfrag: string;
  serverPassword: string;
  clientUfrag: string;
  hex: string;
}

const captured = JSON.parse(
  readFileSync(new URL('../../../test/fixtures/stun-binding-request-chromium.json', import.meta.url), 'utf8'),
) as CapturedRequest;
const capturedBytes = Buffer.from(captured.hex, 'hex');

test('a Binding request captured from Chromium: USERNAME is serverUfrag:clientUfrag, MESSAGE-INTEGRITY checks', () => {
  assert.ok(looksLikeStun(capturedBytes));
  const message = parseStunMessage(capturedBytes);
  assert.equal(message.type, 0x0001, 'Binding request');
  assert.equal(message.transactionId.length, 12);
  assert.deepEqual(iceUsername(message), { serverUfrag: captured.serverUfrag, clientUfrag: captured.clientUfrag });
  assert.ok(verifyIntegrity(capturedBytes, message, captured.serverPassword));
  assert.ok(!verifyIntegrity(capturedBytes, message, captured.serverPassword + 'x'), 'another password fails');
  const tampered = Buffer.from(capturedBytes);
  tampered[24] = (tampered[24] as number) ^ 0x01; // a bit of the first attribute's value
  assert.ok(!verifyIntegrity(tampered, parseStunMessage(tampered), captured.serverPassword), 'a changed byte fails');
  // Chromium's attribute order (RFC 8445 7.1.2): USERNAME first, FINGERPRINT (0x8028) last.
  assert.equal(message.attributes[0]?.type, 0x0006);
  assert.equal(message.attributes[message.attributes.length - 1]?.type, 0x8028);
});

test('a truncated STUN message is a MalformedInputError at every cut', () => {
  for (let cut = 0; cut < capturedBytes.length; cut++) {
    assert.throws(
      () => parseStunMessage(capturedBytes.subarray(0, cut)),
      (err: unknown) => err instanceof MalformedInputError,
      `cut at ${cut}`,
    );
  }
});

test('USERNAME without a colon or with an empty part names no peer', () => {
  for (const name of ['nocolon', ':client', 'server:']) {
    const m = new Message(methods.BINDING, classes.REQUEST).setAttribute('USERNAME', name);
    assert.equal(iceUsername(parseStunMessage(m.bytes)), undefined, name);
  }
});

test('rewriteMappedAddress puts the real address in a Binding response and re-signs it (werift verifies)', () => {
  const password = 'abcdefghijklmnopqrstuvwx';
  const response = new Message(methods.BINDING, classes.RESPONSE)
    .setAttribute('XOR-MAPPED-ADDRESS', ['127.0.0.1', 5555])
    .addMessageIntegrity(Buffer.from(password));
  response.addFingerprint();
  for (const [address, port] of [
    ['192.0.2.7', 40000],
    ['2001:db8::7', 40001],
  ] as const) {
    const out = rewriteMappedAddress(response.bytes, address, port, password);
    assert.ok(out !== undefined);
    const parsed = parseMessage(out, Buffer.from(password));
    assert.ok(parsed !== undefined, 'werift accepts the integrity and fingerprint');
    assert.deepEqual(parsed.getAttributeValue('XOR-MAPPED-ADDRESS'), [address, port]);
    assert.deepEqual(parsed.transactionId, response.transactionId);
    assert.equal(parseMessage(out, Buffer.from('wrong password')), undefined);
  }
  const request = new Message(methods.BINDING, classes.REQUEST);
  assert.equal(rewriteMappedAddress(request.bytes, '192.0.2.7', 1, password), undefined, 'requests are left alone');
  assert.equal(rewriteMappedAddress(Buffer.from([0x80, 0x60, 0, 1]), '192.0.2.7', 1, password), undefined, 'RTP is left alone');
});

// --- The relay over real sockets ---------------------------------------------------------------

const PEER = { serverUfrag: 'srv1', serverPassword: 'server-password-0123456789', clientUfrag: 'cli1' };

async function udpSocket(t: TestContext): Promise<Socket> {
  const s = createSocket('udp4');
  t.after(() => s.close());
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

async function openMux(t: TestContext, options: Partial<UdpMuxOptions> = {}): Promise<UdpMux> {
  const mux = await UdpMux.open({
    udpPort: 0,
    tcpPort: undefined,
    bindAddresses: ['127.0.0.1'],
    idleTimeoutMs: 60_000,
    log: silentLogger,
    ...options,
  });
  t.after(() => mux.close());
  return mux;
}

function nextMessage(s: Socket): Promise<{ data: Buffer; port: number; address: string }> {
  return once(s, 'message').then(([data, rinfo]) => ({
    data: data as Buffer,
    port: (rinfo as { port: number }).port,
    address: (rinfo as { address: string }).address,
  }));
}

test('the mux maps a client by its signed Binding request and relays both ways', { timeout: 10_000 }, async (t) => {
  const werift = await udpSocket(t);
  const mux = await openMux(t);
  const muxPort = mux.port as number;
  const remove = mux.addPeer({ ...PEER, target: { address: '127.0.0.1', port: werift.address().port } });
  const client = await udpSocket(t);

  // A stranger's media and a request with the wrong password or ufrag make no mapping.
  client.send(Buffer.from([0x80, 0x60, 0, 1, 0, 0, 0, 0]), muxPort, '127.0.0.1');
  client.send(bindingRequest('srv1:cli1', 'wrong password'), muxPort, '127.0.0.1');
  client.send(bindingRequest('srv1:other', PEER.serverPassword), muxPort, '127.0.0.1');
  await waitFor('three drops', () => mux.counters.dropped === 3, 5000);
  assert.equal(mux.mappingCount, 0);

  const request = bindingRequest('srv1:cli1', PEER.serverPassword);
  const arrived = nextMessage(werift);
  client.send(request, muxPort, '127.0.0.1');
  const atWerift = await arrived;
  assert.deepEqual(atWerift.data, request, 'werift gets the bytes unchanged');
  assert.notEqual(atWerift.port, client.address().port, 'from the relay socket, not from the client');
  assert.deepEqual(mux.remotesOf('srv1'), [`udp|127.0.0.1|${client.address().port}`]);

  // werift answers the relay address; the client gets its own address back, from the mux port.
  const response = new Message(methods.BINDING, classes.RESPONSE, parseMessage(request)?.transactionId)
    .setAttribute('XOR-MAPPED-ADDRESS', [atWerift.address, atWerift.port])
    .addMessageIntegrity(Buffer.from(PEER.serverPassword));
  response.addFingerprint();
  const back = nextMessage(client);
  werift.send(response.bytes, atWerift.port, atWerift.address);
  const atClient = await back;
  assert.equal(atClient.port, muxPort);
  assert.deepEqual(parseMessage(atClient.data, Buffer.from(PEER.serverPassword))?.getAttributeValue('XOR-MAPPED-ADDRESS'), [
    '127.0.0.1',
    client.address().port,
  ]);

  // After the mapping, anything (DTLS, SRTP) passes both ways.
  const media = Buffer.from([0x80, 0x60, 0, 2, 1, 2, 3, 4]);
  const mediaAtWerift = nextMessage(werift);
  client.send(media, muxPort, '127.0.0.1');
  assert.deepEqual((await mediaAtWerift).data, media);
  const mediaAtClient = nextMessage(client);
  werift.send(media, atWerift.port, atWerift.address);
  assert.deepEqual((await mediaAtClient).data, media);

  remove();
  assert.equal(mux.mappingCount, 0, 'the peer leaves with its mappings');
  assert.equal(mux.peerCount, 0);
});

test('the mux bounds mappings per peer and forgets a remote that went quiet', { timeout: 10_000 }, async (t) => {
  const werift = await udpSocket(t);
  const mux = await openMux(t, { maxMappingsPerPeer: 1, idleTimeoutMs: 300 });
  const muxPort = mux.port as number;
  mux.addPeer({ ...PEER, target: { address: '127.0.0.1', port: werift.address().port } });
  const a = await udpSocket(t);
  const b = await udpSocket(t);
  a.send(bindingRequest('srv1:cli1', PEER.serverPassword), muxPort, '127.0.0.1');
  await waitFor('a mapped', () => mux.mappingCount === 1, 5000);
  b.send(bindingRequest('srv1:cli1', PEER.serverPassword), muxPort, '127.0.0.1');
  await waitFor('b refused', () => mux.counters.mappingsRefused === 1, 5000);
  assert.equal(mux.mappingCount, 1);
  await waitFor('a forgotten after 300 ms of silence', () => mux.mappingCount === 0, 5000);
});

test('ICE-TCP: RFC 4571 frames are relayed to the peer as datagrams and back', { timeout: 10_000 }, async (t) => {
  const werift = await udpSocket(t);
  const mux = await openMux(t, { udpPort: undefined, tcpPort: 0 });
  assert.equal(mux.port, undefined);
  mux.addPeer({ ...PEER, target: { address: '127.0.0.1', port: werift.address().port } });
  const conn = connect(mux.tcpPort as number, '127.0.0.1');
  t.after(() => conn.destroy());
  await once(conn, 'connect');
  const frame = (b: Buffer): Buffer => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  const request = bindingRequest('srv1:cli1', PEER.serverPassword);
  const arrived = nextMessage(werift);
  // Split mid-frame: the framer waits for the whole packet.
  const framed = frame(request);
  conn.write(framed.subarray(0, 7));
  setTimeout(() => conn.write(framed.subarray(7)), 50);
  const atWerift = await arrived;
  assert.deepEqual(atWerift.data, request);
  assert.equal(mux.remotesOf('srv1')[0]?.startsWith('tcp|'), true);
  const media = Buffer.from([0x80, 0x60, 0, 2, 9, 9]);
  const got = once(conn, 'data');
  werift.send(media, atWerift.port, atWerift.address);
  const [chunk] = (await got) as [Buffer];
  assert.deepEqual(chunk, frame(media));
  conn.destroy();
  await waitFor('the closed connection to leave', () => mux.mappingCount === 0, 5000);

  // A connection whose first frame is not a signed request of a known peer is closed.
  const stranger = connect(mux.tcpPort as number, '127.0.0.1');
  t.after(() => stranger.destroy());
  await once(stranger, 'connect');
  stranger.write(frame(Buffer.from('hello')));
  await once(stranger, 'close');
  assert.equal(mux.mappingCount, 0);
});

test('two peers whose server ufrags collide are told apart by the client ufrag', { timeout: 10_000 }, async (t) => {
  const wa = await udpSocket(t);
  const wb = await udpSocket(t);
  const mux = await openMux(t);
  const muxPort = mux.port as number;
  mux.addPeer({ ...PEER, target: { address: '127.0.0.1', port: wa.address().port } });
  mux.addPeer({ ...PEER, clientUfrag: 'cli2', target: { address: '127.0.0.1', port: wb.address().port } });
  assert.throws(() => mux.addPeer({ ...PEER, target: { address: '127.0.0.1', port: 1 } }), /already registered/);
  const a = await udpSocket(t);
  const b = await udpSocket(t);
  const atA = nextMessage(wa);
  const atB = nextMessage(wb);
  a.send(bindingRequest('srv1:cli1', PEER.serverPassword), muxPort, '127.0.0.1');
  b.send(bindingRequest('srv1:cli2', PEER.serverPassword), muxPort, '127.0.0.1');
  assert.equal(iceUsername(parseStunMessage((await atA).data))?.clientUfrag, 'cli1');
  assert.equal(iceUsername(parseStunMessage((await atB).data))?.clientUfrag, 'cli2');
  assert.equal(mux.mappingCount, 2);
});
