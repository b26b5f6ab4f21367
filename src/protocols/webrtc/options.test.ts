import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { test } from 'node:test';
import { defaultConfig } from '../../config/config.js';
import { webRtcHostAddresses, webRtcOptions } from './options.js';

const iface = (address: string, internal: boolean, family: 'IPv4' | 'IPv6' = 'IPv4'): NetworkInterfaceInfo =>
  ({ address, internal, family, netmask: '', mac: '', cidr: null }) as NetworkInterfaceInfo;

const machine = {
  lo: [iface('127.0.0.1', true), iface('::1', true, 'IPv6')],
  eth0: [iface('192.0.2.5', false), iface('fe80::1', false, 'IPv6')],
};

test('host candidates: WebRTCAddress wins, then a specific HTTP bind address', () => {
  const explicit = defaultConfig();
  explicit.webrtc = { ...explicit.webrtc, addresses: ['203.0.113.9'] };
  assert.deepEqual(webRtcHostAddresses(explicit, machine), ['203.0.113.9']);
  const bound = defaultConfig({ http: { port: 8090, bindAddress: '127.0.0.1' } });
  assert.deepEqual(webRtcHostAddresses(bound, machine), ['127.0.0.1']);
});

test('host candidates on a wildcard bind: every IPv4 address, loopback last', () => {
  assert.deepEqual(webRtcHostAddresses(defaultConfig(), machine), ['192.0.2.5', '127.0.0.1']);
  assert.deepEqual(webRtcHostAddresses(defaultConfig(), {}), ['127.0.0.1']);
});

test('ICE servers and timeouts reach the route options', () => {
  const c = defaultConfig({ http: { port: 8090, bindAddress: '127.0.0.1' } });
  c.webrtc = {
    ...c.webrtc,
    iceServers: [{ urls: 'turn:t.example.org', username: 'u', credential: 'p' }],
    serverIceServers: [{ urls: 'stun:10.0.0.1:3478' }],
    peerTimeoutMs: 4000,
    portRange: [40000, 40010],
  };
  const o = webRtcOptions(c);
  assert.deepEqual(o.clientIceServers, [{ urls: 'turn:t.example.org', username: 'u', credential: 'p' }]);
  assert.deepEqual(o.serverIceServers, [{ urls: 'stun:10.0.0.1:3478' }]);
  assert.equal(o.peerTimeoutMs, 4000);
  assert.deepEqual(o.portRange, [40000, 40010]);
});
