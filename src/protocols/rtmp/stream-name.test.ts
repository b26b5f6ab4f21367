// How rtmp://host/APP/NAME?secret=... maps to a feed name and a publish secret.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseRtmpStreamName, rtmpAppName } from './stream-name.js';

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
  it('app name without its query', () => {
    assert.equal(rtmpAppName('live?secret=x'), 'live');
    assert.equal(rtmpAppName('live'), 'live');
  });
});
