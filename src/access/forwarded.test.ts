// X-Forwarded-For behind TrustedProxy: which hop is the client, and which headers are refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Acl, parseAclRule } from '../config/acl.js';
import { MAX_FORWARDED_HOPS, forwardedClient } from './forwarded.js';

// The rules a config gives for `TrustedProxy 10.0.0.0/8`, `TrustedProxy 127.0.0.1` and `TrustedProxy 2001:db8:1::/48`.
const proxies = await Acl.fromSpecs(
  ['10.0.0.0/8', '127.0.0.1', '2001:db8:1::/48'].map((a) => parseAclRule(['allow', a], 'test.conf:1')),
);

const PROXY = '127.0.0.1';

test('the client is the nearest hop that is not a trusted proxy', () => {
  const cases: [string | undefined, string][] = [
    [undefined, PROXY],
    ['', PROXY],
    ['203.0.113.9', '203.0.113.9'],
    ['203.0.113.9, 10.1.2.3', '203.0.113.9'], // a second trusted proxy in front of ours
    ['198.51.100.1, 203.0.113.9, 10.1.2.3', '203.0.113.9'], // the leftmost hop was written by the client: not believed
    ['10.9.9.9, 10.1.2.3', '10.9.9.9'], // only trusted hops: the leftmost
    ['203.0.113.9:5678', '203.0.113.9'],
    ['[2001:db8:2::7]:443', '2001:db8:2::7'],
    ['2001:DB8:2::7', '2001:db8:2::7'],
    ['2001:db8:2::7, 2001:db8:1::1', '2001:db8:2::7'],
    ['::ffff:203.0.113.9', '::ffff:203.0.113.9'],
  ];
  for (const [header, client] of cases) {
    assert.deepEqual(forwardedClient(header, PROXY, proxies), { address: client }, String(header));
  }
});

test('a hop that is not an address, or too many hops, is an error naming it', () => {
  for (const [header, words] of [
    ['unknown', "'unknown'"],
    ['203.0.113.9, _hidden', "'_hidden'"],
    ['203.0.113.9,, 10.1.2.3', "''"],
    ['999.1.1.1', "'999.1.1.1'"],
    ['evil.example', "'evil.example'"],
    [Array.from({ length: MAX_FORWARDED_HOPS + 1 }, () => '10.0.0.1').join(', '), `${MAX_FORWARDED_HOPS + 1} addresses`],
  ] as const) {
    const answer = forwardedClient(header, PROXY, proxies);
    assert.ok('error' in answer, `${header} should be refused`);
    assert.ok(answer.error.includes(words), `${answer.error} names ${words}`);
  }
});

test('property: any header gives the peer, an address from the header, or an error; never throws', () => {
  const hop = fc.oneof(
    fc.ipV4(),
    fc.ipV6(),
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 65535 })).map(([a, port]) => `${a}:${port}`),
    fc.ipV6().map((a) => `[${a}]:443`),
    fc.string({ maxLength: 20 }),
  );
  fc.assert(
    fc.property(fc.array(hop, { maxLength: 40 }), (hops) => {
      const header = hops.join(', ');
      const answer = forwardedClient(header, PROXY, proxies);
      if ('error' in answer) return;
      if (header.trim() === '') assert.equal(answer.address, PROXY);
      else assert.ok(header.toLowerCase().includes(answer.address), `${answer.address} comes from ${header}`);
    }),
  );
});
