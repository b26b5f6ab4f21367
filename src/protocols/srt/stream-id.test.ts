// SRT stream ids (issue 23): the access-control convention and the short forms, credentials, and the
// refusals; and native/srt.c's passphrase lookup key agrees with the parser on every case.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from '../../errors.js';
import { nativeSrt } from './native-srt.js';
import { parseSrtStreamId, srtResourceKey } from './stream-id.js';

const cases: [raw: string, mode: 'publish' | 'read', name: string, query: Record<string, string>][] = [
  ['publish:feed1', 'publish', 'feed1', {}],
  ['read:feed1', 'read', 'feed1', {}],
  ['feed1', 'read', 'feed1', {}],
  ['publish:Feed1.ffm?secret=s3cr3t', 'publish', 'Feed1.ffm', { secret: 's3cr3t' }],
  ['read:feed1?token=abc&expires=99&other=x', 'read', 'feed1', { token: 'abc', expires: '99' }],
  ['#!::r=feed1,m=publish', 'publish', 'feed1', {}],
  ['#!::r=feed1,m=request', 'read', 'feed1', {}],
  ['#!::r=feed1', 'read', 'feed1', {}],
  ['#!::u=alice,r=live/cam,m=publish,secret=x,s=123,h=example.com,t=stream', 'publish', 'cam', { secret: 'x' }],
  ['#!::m=request,r=feed1,jwt=a.b.c', 'read', 'feed1', { jwt: 'a.b.c' }],
  ['#!::r=feed1?token=t', 'read', 'feed1', { token: 't' }],
  ['publish%3Afeed1%3Fsecret%3Dx', 'publish', 'feed1', { secret: 'x' }],
  ['%23%21%3A%3Ar%3Dfeed1%2Cm%3Dpublish', 'publish', 'feed1', {}],
];

test('stream ids: mode, name and credentials', () => {
  for (const [raw, mode, name, query] of cases) {
    const id = parseSrtStreamId(raw);
    assert.equal(id.mode, mode, raw);
    assert.equal(id.name, name, raw);
    assert.deepEqual(Object.fromEntries(id.query), query, raw);
  }
});

const refused: [raw: string, message: RegExp][] = [
  ['', /names no feed/],
  ['publish:', /names no feed/],
  ['#!::m=publish', /names no resource \(r=\)/],
  ['#!::r=feed1,m=bidirectional', /m=bidirectional is not supported \(publish or request\)/],
  ['#!::r=feed1,t=file', /t=file is not supported/],
  ['#!::r=feed1,junk', /"junk" is not KEY=VALUE/],
  ['x'.repeat(513), /stream id of 513 characters \(limit 512\)/],
];

test('stream ids that cannot be used are refused with the reason', () => {
  for (const [raw, message] of refused) {
    assert.throws(
      () => parseSrtStreamId(raw),
      (err: unknown) => err instanceof ProtocolError && message.test(err.message),
      raw.slice(0, 40),
    );
  }
});

const srt = nativeSrt().module;
test(
  'native/srt.c looks passphrases up by the name the parser finds',
  { skip: srt === undefined ? nativeSrt().status : false },
  () => {
    for (const [raw] of cases) {
      assert.equal(srt?.resourceKey(raw), srtResourceKey(parseSrtStreamId(raw).name), raw);
    }
  },
);
