// A live Enhanced RTMP publisher for integration tests: real encoded frames (encoded-streams.ts) as
// E-RTMP tags (flv-bytes.ts), sent in real time and looped, over a real RTMP connection (publish)
// or as an FLV body pushed over HTTP (POST /FEED.ffm). ffmpeg 5.1 cannot send E-RTMP; OBS 30+ and
// ffmpeg 7 send these forms.

import { request } from 'node:http';
import { ByteWriter } from '../../src/formats/bytes/byte-writer.js';
import { amf0EcmaArray } from '../../src/formats/amf/amf0.js';
import {
  FLV_HEADER_BYTES,
  FlvTagType,
  flvAudioTagSize,
  flvVideoTagSize,
  writeFlvAudioTag,
  writeFlvHeader,
  writeFlvTagHeader,
  writeFlvVideoTag,
} from '../../src/formats/flv/flv-tag.js';
import { RtmpCsid, RtmpType, dataMessage } from '../../src/formats/rtmp/messages.js';
import type { EncodedStream } from './encoded-streams.js';
import { enhancedAudioTags, enhancedVideoTags, type TagSpec } from './flv-bytes.js';
import { RtmpTestClient } from './rtmp-client.js';

export interface EnhancedMedia {
  video?: EncodedStream;
  /** Send the video as Multitrack OneTrack packets of this track id. */
  videoTrackId?: number;
  audio?: EncodedStream;
  /** Send every audio frame to each of these track ids, in one ManyTracks packet. */
  audioTrackIds?: number[];
}

interface TimedTag {
  ms: number;
  tagType: number;
  body: Buffer;
}

export interface PacedPublisher {
  /** Loops of the media sent so far. */
  readonly loops: () => number;
  stop(): Promise<void>;
}

function body(spec: TagSpec): TimedTag {
  const encode = <T>(tag: T, size: (t: T) => number, write: (w: ByteWriter, t: T) => void): Buffer => {
    const w = new ByteWriter(size(tag));
    write(w, tag);
    return w.done();
  };
  switch (spec.type) {
    case 'video':
      return { ms: spec.ms, tagType: FlvTagType.video, body: encode(spec.tag, flvVideoTagSize, writeFlvVideoTag) };
    case 'audio':
      return { ms: spec.ms, tagType: FlvTagType.audio, body: encode(spec.tag, flvAudioTagSize, writeFlvAudioTag) };
    case 'raw':
      return { ms: spec.ms, tagType: spec.tagType, body: spec.body };
    case 'meta':
      throw new Error('onMetaData goes as a data message');
  }
}

/** The sequence starts (sent once) and the coded frames of one loop, and the loop's length. */
function timeline(media: EnhancedMedia): { start: TimedTag[]; loop: TimedTag[]; periodMs: number } {
  const start: TimedTag[] = [];
  const loop: TimedTag[] = [];
  let periodMs = 2000;
  if (media.video !== undefined) {
    const frames = media.video.frames;
    const step = (frames[1]?.dts90k ?? 3600) - (frames[0]?.dts90k ?? 0);
    periodMs = Math.round((frames.length * step) / 90);
    const tags = enhancedVideoTags(media.video, media.videoTrackId === undefined ? {} : { trackId: media.videoTrackId });
    start.push(...tags.slice(0, 2).map(body));
    loop.push(...tags.slice(2).map(body));
  }
  if (media.audio !== undefined) {
    const first = media.audio.frames[0]?.dts90k ?? 0;
    const frames = media.audio.frames
      .map((f) => ({ ...f, dts90k: f.dts90k - first, pts90k: f.pts90k - first }))
      .filter((f) => f.dts90k < periodMs * 90);
    const tags = enhancedAudioTags({ track: media.audio.track, frames }, media.audioTrackIds).map(body);
    const hasConfig = media.audio.track.config !== undefined;
    start.push(...tags.slice(0, hasConfig ? 1 : 0));
    loop.push(...tags.slice(hasConfig ? 1 : 0));
  }
  loop.sort((a, b) => a.ms - b.ms);
  return { start, loop, periodMs };
}

/** Sends the start tags, then the loop again and again at its own pace (like ffmpeg -re), until stopped. */
function pace(media: EnhancedMedia, send: (tag: TimedTag) => void): PacedPublisher {
  const { start, loop, periodMs } = timeline(media);
  for (const t of start) send(t);
  const startedAt = Date.now();
  let index = 0;
  let loops = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    for (;;) {
      const tag = loop[index];
      if (tag === undefined) return;
      const at = loops * periodMs + tag.ms;
      const wait = startedAt + at - Date.now();
      if (wait > 0) {
        timer = setTimeout(tick, wait);
        return;
      }
      send({ ...tag, ms: at });
      index++;
      if (index === loop.length) {
        index = 0;
        loops++;
      }
    }
  };
  tick();
  return {
    loops: () => loops,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      return Promise.resolve();
    },
  };
}

/** onMetaData with the FourCC codec ids, as OBS sends it. */
function metadata(media: EnhancedMedia): Record<string, number> {
  const fourCc = (s: string): number => Buffer.from(s, 'latin1').readUInt32BE(0);
  const ids = { h265: 'hvc1', av1: 'av01', vp9: 'vp09', h264: 'avc1', aac: 'mp4a', opus: 'Opus' } as Record<string, string>;
  const meta: Record<string, number> = {};
  const v = media.video?.track;
  if (v !== undefined) {
    meta['videocodecid'] = fourCc(ids[v.codec] ?? 'avc1');
    meta['width'] = v.width ?? 0;
    meta['height'] = v.height ?? 0;
  }
  const a = media.audio?.track;
  if (a !== undefined) meta['audiocodecid'] = fourCc(ids[a.codec] ?? 'mp4a');
  return meta;
}

/** Connects (announcing the FourCCs it sends in fourCcList), publishes `name` and sends the media. */
export async function publishEnhancedRtmp(
  port: number,
  name: string,
  media: EnhancedMedia,
): Promise<PacedPublisher & { client: RtmpTestClient }> {
  const client = await RtmpTestClient.open('127.0.0.1', port);
  await client.connect('live', `rtmp://127.0.0.1:${port}/live`, 4096, { fourCcList: ['hvc1', 'av01', 'vp09', 'mp4a'] });
  const { streamId } = await client.publish(name);
  client.send([{ ...dataMessage(streamId, ['@setDataFrame', 'onMetaData', amf0EcmaArray(metadata(media))]) }]);
  const paced = pace(media, (tag) => {
    const audio = tag.tagType === FlvTagType.audio;
    client.send([
      {
        csid: audio ? RtmpCsid.audio : RtmpCsid.video,
        typeId: audio ? RtmpType.audio : RtmpType.video,
        timestampMs: tag.ms,
        streamId,
        payload: tag.body,
      },
    ]);
  });
  return {
    client,
    loops: paced.loops,
    stop: async () => {
      await paced.stop();
      client.close();
    },
  };
}

/** POSTs the media as an Enhanced RTMP FLV body (chunked) to `url` (e.g. /FEED.ffm). */
export function pushEnhancedFlv(url: string, media: EnhancedMedia): PacedPublisher {
  const req = request(url, { method: 'POST', headers: { 'Content-Type': 'video/x-flv' } });
  req.on('error', () => undefined); // the test looks at what the server did, not at the socket
  const header = new ByteWriter(FLV_HEADER_BYTES + 4);
  writeFlvHeader(header, { version: 1, hasAudio: media.audio !== undefined, hasVideo: media.video !== undefined, dataOffset: 9 });
  header.u32(0);
  req.write(header.done());
  const paced = pace(media, (tag) => {
    const w = new ByteWriter(11 + tag.body.length + 4);
    writeFlvTagHeader(w, { tagType: tag.tagType, filtered: false, dataSize: tag.body.length, timestampMs: tag.ms, streamId: 0 });
    w.bytes(tag.body).u32(11 + tag.body.length);
    req.write(w.done());
  });
  return {
    loops: paced.loops,
    stop: async () => {
      await paced.stop();
      req.destroy();
    },
  };
}
