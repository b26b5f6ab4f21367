// ACL semantics (ref §2.7): one table of rule lists and client addresses, plus the rule-line parser's errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Acl, parseAclRule, resolveAclRules, systemResolver, type HostResolver } from './acl.js';
import { ConfigError } from '../errors.js';

const ADDRESSES: Record<string, string[]> = {
  localhost: ['127.0.0.1', '::1'],
  'v4only.test': ['192.0.2.10'],
  'v6only.test': ['2001:db8::10'],
};

const fakeResolver: HostResolver = (host) => {
  const found = ADDRESSES[host];
  return found !== undefined
    ? Promise.resolve(found)
    : Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
};

async function aclOf(lines: string[], resolver: HostResolver = fakeResolver): Promise<Acl> {
  const specs = lines.map((l, i) => parseAclRule(l.split(/\s+/), `test.conf:${i + 1}`));
  const { rules, errors } = await resolveAclRules(specs, resolver);
  assert.deepEqual(errors, []);
  return Acl.fromRules(rules);
}

const cases: { name: string; rules: string[]; allowed: string[]; denied: string[] }[] = [
  { name: 'no rules allow everyone', rules: [], allowed: ['1.2.3.4', '::1', 'not-an-address'], denied: [] },
  {
    name: 'single address: only that address (inverse of the last rule)',
    rules: ['allow 127.0.0.1'],
    allowed: ['127.0.0.1', '::ffff:127.0.0.1', ' 127.0.0.1 '],
    denied: ['127.0.0.2', '::1', '10.0.0.1', 'garbage'],
  },
  {
    name: 'deny a range: everyone else allowed (ffserver doc example)',
    rules: ['deny 1.0.0.0 1.255.255.255'],
    allowed: ['2.0.0.0', '0.255.255.255', '::1', 'garbage'],
    denied: ['1.0.0.0', '1.2.3.4', '1.255.255.255', '::ffff:1.2.3.4'],
  },
  {
    name: 'ranges compare in host order (ffserver byte-swapped them on x86)',
    rules: ['allow 192.168.0.0 192.168.255.255'],
    allowed: ['192.168.0.0', '192.168.7.9', '192.168.255.255'],
    // 5.6.168.192 passed ffserver's little-endian compare; it is outside the range.
    denied: ['5.6.168.192', '192.169.0.0', '192.167.255.255', '10.168.0.1'],
  },
  {
    name: 'CIDR block',
    rules: ['allow 10.0.0.0/8'],
    allowed: ['10.0.0.0', '10.255.255.255', '::ffff:10.1.2.3'],
    denied: ['11.0.0.0', '9.255.255.255'],
  },
  {
    name: 'CIDR with host bits set covers its whole block',
    rules: ['allow 10.1.2.3/16'],
    allowed: ['10.1.0.0', '10.1.255.255'],
    denied: ['10.2.0.0'],
  },
  {
    name: 'IPv6 CIDR and single address; IPv4 clients never match IPv6 rules',
    rules: ['allow 2001:db8::/32', 'allow ::1'],
    allowed: ['2001:db8::1', '2001:db8:ffff::', '::1', '0:0:0:0:0:0:0:1'],
    denied: ['2001:db9::1', '127.0.0.1', '1.2.3.4'],
  },
  {
    name: 'IPv6 range',
    rules: ['deny fd00:: fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    allowed: ['fe80::1', '1.2.3.4'],
    denied: ['fd12:3456::1'],
  },
  {
    name: 'IPv4-mapped rule is an IPv4 rule',
    rules: ['allow ::ffff:127.0.0.1', 'allow ::ffff:10.0.0.0/104'],
    allowed: ['127.0.0.1', '::ffff:127.0.0.1', '10.9.8.7'],
    denied: ['127.0.0.2', '11.0.0.1'],
  },
  {
    name: 'host name covers all its addresses, both families',
    rules: ['allow localhost'],
    allowed: ['127.0.0.1', '::1', '::ffff:127.0.0.1'],
    denied: ['10.0.0.1', '::2'],
  },
  {
    name: 'first match wins',
    rules: ['allow 10.0.0.1', 'deny 10.0.0.0/8'],
    allowed: ['10.0.0.1', '11.0.0.1'],
    denied: ['10.0.0.2'],
  },
  {
    name: 'no match: inverse of the LAST rule, not of the first',
    rules: ['deny 10.0.0.0/8', 'allow 10.1.0.0/16'],
    allowed: [],
    denied: ['10.1.2.3', '11.0.0.1', '192.168.1.1'],
  },
  {
    name: 'host names in a range pick the family both ends share',
    rules: ['allow v4only.test 192.0.2.20'],
    allowed: ['192.0.2.10', '192.0.2.15', '192.0.2.20'],
    denied: ['192.0.2.9', '192.0.2.21'],
  },
  {
    name: 'zone ids and upper case are accepted in client addresses',
    rules: ['allow fe80::/10'],
    allowed: ['fe80::1%eth0', 'FE80::ABCD'],
    denied: ['fec0::1'],
  },
];

for (const c of cases) {
  test(`ACL: ${c.name}`, async () => {
    const acl = await aclOf(c.rules);
    for (const a of c.allowed) assert.equal(acl.allows(a), true, `${a} should be allowed by [${c.rules.join('; ')}]`);
    for (const a of c.denied) assert.equal(acl.allows(a), false, `${a} should be denied by [${c.rules.join('; ')}]`);
  });
}

test('ACL: allowAll and describe()', async () => {
  assert.equal(Acl.allowAll().allows('8.8.8.8'), true);
  assert.equal(Acl.allowAll().describe(), 'allow all');
  assert.equal(Acl.allowAll().isEmpty, true);
  const acl = await aclOf(['allow localhost', 'allow 192.168.0.0 192.168.255.255', 'deny 10.0.0.1 10.0.0.5', 'deny fd00::/8']);
  assert.equal(
    acl.describe(),
    'allow 127.0.0.1 (localhost), allow ::1 (localhost), allow 192.168.0.0/16, deny 10.0.0.1-10.0.0.5, deny fd00::/8; otherwise allow',
  );
});

test('ACL: the action is case-insensitive (ffserver sample writes ACL ALLOW)', async () => {
  const acl = await aclOf(['ALLOW 127.0.0.1', 'Deny 10.0.0.0/8']);
  assert.deepEqual(
    acl.rules.map((r) => r.action),
    ['allow', 'deny'],
  );
});

test('ACL: localhost through the system resolver allows 127.0.0.1', async () => {
  const acl = await aclOf(['allow localhost'], systemResolver);
  assert.equal(acl.allows('127.0.0.1'), true);
  assert.equal(acl.allows('::ffff:127.0.0.1'), true);
  assert.equal(acl.allows('203.0.113.1'), false);
});

const parseErrors: { args: string; message: RegExp }[] = [
  { args: '', message: /needs an action and an address/ },
  { args: 'allow', message: /needs an action and an address/ },
  { args: 'permit 1.2.3.4', message: /action 'permit' must be allow or deny/ },
  { args: 'allow 1.2.3', message: /'1.2.3' is not an IP address/ },
  { args: 'allow 256.1.1.1', message: /not an IP address/ },
  { args: 'allow 1.2.3.4.5', message: /not an IP address/ },
  { args: 'allow ::g', message: /not an IP address/ },
  { args: 'allow bad_host!', message: /not an IP address, CIDR block or host name/ },
  { args: 'allow 10.0.0.5 10.0.0.1', message: /range start 10.0.0.5 is above its end 10.0.0.1; swap them/ },
  { args: 'allow 10.0.0.1 ::1', message: /mixes IPv4 and IPv6/ },
  { args: 'allow 10.0.0.0/33', message: /not a valid CIDR block/ },
  { args: 'allow 10.0/8', message: /not a valid CIDR block/ },
  { args: 'allow 10.0.0.0/8 10.0.0.1', message: /takes no last address/ },
  { args: 'allow ::ffff:10.0.0.0/64', message: /mixes IPv4-mapped/ },
  { args: 'allow 127.0.0.1 # local only', message: /own line/ },
  { args: 'allow 1.2.3.4 1.2.3.5 1.2.3.6', message: /at most two addresses/ },
];

for (const c of parseErrors) {
  test(`ACL parse error: 'ACL ${c.args}'`, () => {
    const args = c.args === '' ? [] : c.args.split(' ');
    assert.throws(
      () => parseAclRule(args, 'x.conf:7'),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.where === 'x.conf:7' &&
        c.message.test(err.message) &&
        err.message.startsWith('x.conf:7: '),
    );
  });
}

test('ACL: an unresolvable host name is a ConfigError at its line', async () => {
  const spec = parseAclRule(['allow', 'nosuch.invalid'], 'x.conf:3');
  const { rules, errors } = await resolveAclRules([spec], fakeResolver);
  assert.deepEqual(rules, []);
  assert.equal(errors.length, 1);
  assert.match(errors[0]?.message ?? '', /^x\.conf:3: ACL: cannot resolve host name 'nosuch\.invalid' \(ENOTFOUND\)/);
  await assert.rejects(Acl.fromSpecs([spec], fakeResolver), ConfigError);
});

test('ACL: host-name range with no common family is an error', async () => {
  const spec = parseAclRule(['allow', 'v4only.test', 'v6only.test'], 'x.conf:4');
  const { errors } = await resolveAclRules([spec], fakeResolver);
  assert.match(errors[0]?.message ?? '', /no address family in common/);
});
