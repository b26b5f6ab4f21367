// Enhanced RTMP connect negotiation: the client's announcement in its forms (fourCcList, info maps,
// capsEx, '*'), and the _result properties (or none, for a legacy client).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CapsExMask, enhancedConnectResult, FourCcInfoMask, parseEnhancedConnect } from './enhanced-connect.js';

test('a legacy connect (no E-RTMP property) gets no E-RTMP properties back', () => {
  const client = parseEnhancedConnect({ app: 'live', tcUrl: 'rtmp://h/live', capabilities: 15 });
  assert.equal(client, undefined);
  assert.deepEqual(enhancedConnectResult(client), {});
});

test('fourCcList (what OBS 30+ and ffmpeg 7 send): the shared codecs, CanForward maps and capsEx', () => {
  const client = parseEnhancedConnect({ fourCcList: ['av01', 'vp09', 'hvc1', 'vvc1', 'Opus', 'fLaC'] });
  assert.deepEqual(client, { fourCcs: ['av01', 'vp09', 'hvc1', 'vvc1', 'Opus', 'fLaC'], capsEx: 0 });
  const result = enhancedConnectResult(client);
  assert.deepEqual(result['fourCcList'], ['hvc1', 'av01', 'vp09', 'Opus']);
  assert.deepEqual(result['videoFourCcInfoMap'], { avc1: 4, hvc1: 4, av01: 4, vp09: 4 });
  assert.deepEqual(result['audioFourCcInfoMap'], { mp4a: 4, Opus: 4, '.mp3': 4 });
  assert.equal(result['capsEx'], CapsExMask.multitrack | CapsExMask.modEx | CapsExMask.timestampNanoOffset);
  assert.equal(FourCcInfoMask.canForward, 4);
});

test('info maps, the "*" wildcard and capsEx are read; odd values are ignored', () => {
  const client = parseEnhancedConnect({
    videoFourCcInfoMap: { '*': FourCcInfoMask.canForward },
    audioFourCcInfoMap: { mp4a: 3 },
    capsEx: CapsExMask.multitrack,
    fourCcList: [1, null, 'avc1'],
  });
  assert.deepEqual(client, { fourCcs: ['avc1', '*', 'mp4a'], capsEx: 2 });
  assert.deepEqual(enhancedConnectResult(client)['fourCcList'], ['avc1', 'hvc1', 'av01', 'vp09', 'mp4a', 'Opus', '.mp3']);
  assert.deepEqual(parseEnhancedConnect({ capsEx: 'x' }), { fourCcs: [], capsEx: 0 });
});
