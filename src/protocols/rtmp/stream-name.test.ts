// How rtmp://host/APP/NAME?secret=... maps to a feed name and a publish secret.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseRtmpStreamName as parseFull, rtmpAppName } from './stream-name.js';

/** Name and secret only (the credential query is checked below). */
function parseRtmpStreamName(raw: string, app?: string, tcUrl?: string): { name: string; secret: string | undefined } {
  const { name, secret } = parseFull(raw, app, tcUrl);
  return { name, secret };
}

describe('parseRtmpStreamName', () => {
  it('takes the name without its query, and the secret from the name first, then the app, then the tcUrl', () => {
    assert.deepEqual(parseRtmpStreamName('feed1'), { name: 'feed1', secret: undefined });
    assert.deepEqual(parseRtmpStreamName('feed1?secret=abc&x=1'), { name: 'feed1', secret: 'abc' });
    assert.deepEqual(parseRtmpStreamName('feed1', 'live?secret=fromapp'), { name: 'feed1', secret: 'fromapp' });
    assert.deepEqual(parseRtmpStreamName('feed1', 'live', 'rtmp://h/live?secret=fromurl'), { name: 'feed1', secret: 'fromurl' });
    assert.deepEqual(parseRtmpStreamName('feed1?secret=a', 'live?secret=b'), { name: 'feed1', secret: 'a' });
    assert.deepEqual(parseRtmpStreamName('flv:feed1'), { name: 'feed1', secret: undefined });
    assert.deepEqual(parseRtmpStreamName('feed1?secret=a%20b'), { name: 'feed1', secret: 'a b' });
  });
  it('collects read and publish credentials (token, expires, jwt, secret), the name query first', () => {
    const { query } = parseFull('feed1?token=t1&expires=99', 'live?jwt=j&token=t0', 'rtmp://h/live?secret=s');
    assert.deepEqual(Object.fromEntries(query), { secret: 's', token: 't1', expires: '99', jwt: 'j' });
  });
  it('app name without its query', () => {
    assert.equal(rtmpAppName('live?secret=x'), 'live');
    assert.equal(rtmpAppName('live'), 'live');
  });
});
