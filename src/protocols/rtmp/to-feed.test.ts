// RtmpToFeed: @setDataFrame, sequence headers and media messages become the feed's tracks and
// frames; aggregate messages are split with their relative times; a bad aggregate is refused.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MalformedInputError } from '../../errors.js';
import { Feed } from '../../feed/feed.js';
import type { Frame } from '../../media/frame.js';
import { FlvDemuxer } from '../../formats/flv/flv-demuxer.js';
import { FlvMuxer } from '../../formats/flv/flv-muxer.js';
import { ByteReader } from '../../formats/bytes/byte-reader.js';
import { FLV_HEADER_BYTES, FLV_PREVIOUS_TAG_SIZE_BYTES, parseFlvTagHeader } from '../../formats/flv/flv-tag.js';
import { RtmpType, encodeAmf0Payload, type RtmpMessage } from '../../formats/rtmp/messages.js';
import type { Track } from '../../media/track.js';
import { silentLogger } from '../../observability/logger.js';
import { RtmpToFeed } from './to-feed.js';

const FLV = readFileSync(new URL('../../../test/fixtures/h264-aac.flv', import.meta.url));

/** The fixture's tags as RTMP messages, as ffmpeg would publish them. */
function fixtureMessages(): RtmpMessage[] {
  const out: RtmpMessage[] = [];
  const r = new ByteReader(FLV, 'flv', FLV_HEADER_BYTES + FLV_PREVIOUS_TAG_SIZE_BYTES);
  while (r.remaining > 0) {
    const tag = parseFlvTagHeader(r);
    const payload = r.bytes(tag.dataSize);
    r.skip(4);
    out.push({
      csid: 4,
      typeId: tag.tagType === 18 ? RtmpType.dataAmf0 : tag.tagType,
      timestampMs: tag.timestampMs,
      streamId: 1,
      payload,
    });
  }
  return out;
}

function newFeed(): { feed: Feed; frames: Frame[]; tracks: () => readonly Track[] } {
  const feed = new Feed('x.ffm', 'x', { publisherTimeoutMs: 5000, publisherGraceMs: 1000 }, silentLogger);
  const frames: Frame[] = [];
  feed.on('frame', (f) => frames.push(f));
  return { feed, frames, tracks: () => feed.tracks };
}

describe('RtmpToFeed', () => {
  it('publishes the fixture tags as messages: same tracks and frame count as the FLV demuxer', () => {
    const reference: Frame[] = [];
    let refTracks: readonly Track[] = [];
    const d = new FlvDemuxer({ onTracks: (t) => (refTracks = t), onFrame: (f) => reference.push(f) });
    d.push(FLV);
    d.end();

    const { feed, frames, tracks } = newFeed();
    const toFeed = new RtmpToFeed(
      feed.attachPublisher({ protocol: 'rtmp', remoteAddress: '127.0.0.1', startedAt: new Date() }),
      silentLogger,
    );
    const meta: RtmpMessage = {
      csid: 4,
      typeId: RtmpType.dataAmf0,
      timestampMs: 0,
      streamId: 1,
      payload: encodeAmf0Payload(['@setDataFrame', 'onMetaData', { width: 320 }]),
    };
    toFeed.push(meta, meta.payload.length);
    for (const m of fixtureMessages()) toFeed.push(m, m.payload.length);
    toFeed.end('done');
    assert.deepEqual(
      tracks().map((t) => t.codec),
      refTracks.map((t) => t.codec),
    );
    assert.equal(frames.length, reference.length);
    assert.equal(feed.publisher, undefined, 'end() detached the publisher');
  });

  it('splits aggregate messages, keeping each tag time relative to the message time', () => {
    const { feed, frames } = newFeed();
    const toFeed = new RtmpToFeed(
      feed.attachPublisher({ protocol: 'rtmp', remoteAddress: '127.0.0.1', startedAt: new Date() }),
      silentLogger,
    );
    // An FLV body (tags with their headers and back pointers) is exactly an aggregate payload.
    const src: Frame[] = [];
    let srcTracks: readonly Track[] = [];
    const d = new FlvDemuxer({ onTracks: (t) => (srcTracks = t), onFrame: (f) => src.push(f) });
    d.push(FLV);
    d.end();
    const mux = new FlvMuxer(srcTracks);
    const head = mux.header().subarray(FLV_HEADER_BYTES + FLV_PREVIOUS_TAG_SIZE_BYTES);
    const body = Buffer.concat([head, ...src.slice(0, 30).map((f) => mux.mux(f))]);
    toFeed.push({ csid: 4, typeId: RtmpType.aggregate, timestampMs: 5000, streamId: 1, payload: body }, body.length);
    toFeed.end('done');
    assert.equal(frames.length, 30);
    assert.equal(frames.filter((f) => f.keyframe && f.trackId === 0).length >= 1, true);

    const { feed: feed2 } = newFeed();
    const bad = new RtmpToFeed(
      feed2.attachPublisher({ protocol: 'rtmp', remoteAddress: '127.0.0.1', startedAt: new Date() }),
      silentLogger,
    );
    assert.throws(
      () =>
        bad.push(
          { csid: 4, typeId: RtmpType.aggregate, timestampMs: 0, streamId: 1, payload: body.subarray(0, body.length - 3) },
          0,
        ),
      MalformedInputError,
    );
  });
});
