// The parsers the fuzzer drives (test/fuzz/fuzz.test.ts), each with seeds made from real captures
// (test/fixtures, /work/shared/fixtures) and a run() that feeds one input the way the server would.
// A parser may reject an input only with a FeedcastError (MalformedInputError, LimitExceededError...).

import { existsSync, readFileSync } from 'node:fs';
import { parseConfigText } from '../../src/config/config.js';
import { FeedcastError } from '../../src/errors.js';
import { parseAudioSpecificConfig } from '../../src/formats/aac/audio-specific-config.js';
import { decodeAmf0All, encodeAmf0 } from '../../src/formats/amf/amf0.js';
import { FfmDemuxer } from '../../src/formats/ffm/ffm-demuxer.js';
import { FlvDemuxer } from '../../src/formats/flv/flv-demuxer.js';
import { parseAvcc } from '../../src/formats/h264/avcc.js';
import { parseHvcc } from '../../src/formats/h265/hvcc.js';
import { TsDemuxer } from '../../src/formats/mpegts/ts-demuxer.js';
import { ChunkStreamReader } from '../../src/formats/rtmp/chunk-reader.js';
import { encodeRtmpMessages } from '../../src/formats/rtmp/chunk-writer.js';
import { parseC0C1 } from '../../src/formats/rtmp/handshake.js';
import {
  RtmpType,
  commandMessage,
  parseCommand,
  parseDataMessage,
  parseU32Control,
  parseUserControl,
  setChunkSizeMessage,
  windowAckSizeMessage,
  type RtmpMessage,
} from '../../src/formats/rtmp/messages.js';
import { AacDepacketizer } from '../../src/formats/rtp/audio-rtp.js';
import { NalDepacketizer, NalPacketizer } from '../../src/formats/rtp/nal-rtp.js';
import { parseRtcp } from '../../src/formats/rtp/rtcp.js';
import { buildRtpPacket, parseRtpPacket } from '../../src/formats/rtp/rtp-packet.js';
import { parseFmtp, parseSdp } from '../../src/formats/sdp/sdp.js';
import {
  BlockEncoder,
  BLOCK_HEADER_BYTES,
  encodeFrameRecord,
  encodeHeader,
  encodeTracksRecord,
  geometryFor,
  identify,
  parseBlock,
  parseHeader,
  RecordAssembler,
  type FileHeader,
} from '../../src/feedfile/format.js';
import type { DemuxerSink } from '../../src/media/demuxer.js';
import { sniffIngestFormat } from '../../src/protocols/http/to-feed.js';
import { parseRtspUrl, parseTransport, sessionIdOf } from '../../src/protocols/rtsp/messages.js';
import { RtspFramer } from '../../src/protocols/rtsp/request-parser.js';
import { ffmBodyOfFixture } from '../helpers/ffm-publisher.js';
import { fixtureFrames } from '../helpers/fixture-frames.js';

export interface FuzzTarget {
  readonly name: string;
  /** Real inputs the mutations start from. */
  seeds(): Buffer[];
  /** Feeds one input; resolves, or throws (a FeedcastError is a clean refusal, anything else a crash). */
  run(input: Buffer): void | Promise<void>;
}

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/${name}`, import.meta.url));
const shared = (name: string): Buffer | undefined => {
  const path = `/work/shared/fixtures/${name}`;
  return existsSync(path) ? readFileSync(path) : undefined;
};

/** Windows of a capture (aligned to `align`), so that mutations stay cheap and reach deep states. */
function windows(buf: Buffer, size: number, count: number, align = 1, keepHead = true): Buffer[] {
  const out: Buffer[] = keepHead ? [buf.subarray(0, size)] : [];
  for (let i = 1; i < count; i++) {
    const start = Math.floor(((buf.length - size) * (i / count)) / align) * align;
    out.push(buf.subarray(Math.max(0, start), Math.max(0, start) + size));
  }
  return out;
}

/** Pushes in uneven chunks (as a socket would), derived from the input so runs are reproducible. */
function chunked(input: Buffer, push: (b: Buffer) => void): void {
  let pos = 0;
  let step = 1 + (input[0] ?? 7) * 3;
  while (pos < input.length) {
    push(input.subarray(pos, pos + step));
    pos += step;
    step = 1 + ((step * 7 + 13) % 997);
  }
}

const nullSink: DemuxerSink = { onTracks: () => undefined, onFrame: () => undefined, onWarning: () => undefined };

/** A PES-free fixture corpus of RTMP messages: commands, control, and the FLV fixture's tags as media. */
function rtmpSeeds(): Buffer[] {
  const flv = fixture('h264-aac.flv');
  const media: RtmpMessage[] = [];
  let pos = 13;
  while (pos + 11 <= flv.length && media.length < 40) {
    const type = flv[pos] ?? 0;
    const size = flv.readUIntBE(pos + 1, 3);
    const ts = flv.readUIntBE(pos + 4, 3);
    media.push({
      csid: type === 9 ? 6 : 4,
      typeId: type,
      timestampMs: ts,
      streamId: 1,
      payload: flv.subarray(pos + 11, pos + 11 + size),
    });
    pos += 11 + size + 4;
  }
  const control = [
    setChunkSizeMessage(4096),
    windowAckSizeMessage(2_500_000),
    commandMessage(0, 'connect', 1, { app: 'live', tcUrl: 'rtmp://h/live', flashVer: 'FMLE/3.0', objectEncoding: 0 }),
    commandMessage(0, 'createStream', 2, null),
    commandMessage(1, 'publish', 3, null, 'feed1?secret=x', 'live'),
    { csid: 2, typeId: RtmpType.userControl, timestampMs: 0, streamId: 0, payload: Buffer.from([0, 6, 0, 0, 0, 1]) },
  ];
  return [
    encodeRtmpMessages([...control, ...media.slice(0, 10)], 128),
    encodeRtmpMessages(media.slice(0, 30), 4096),
    encodeRtmpMessages(control, 128),
  ];
}

function feedfileSeed(): Buffer[] {
  const { tracks, frames } = fixtureFrames('h264-aac.ts');
  const g = geometryFor(64 * 1024, 1024);
  const header: FileHeader = {
    version: 1,
    ...g,
    fileId: 0x01020304,
    generation: 3,
    createdAtMs: 1_700_000_000_000,
    checkpointSeq: 0,
    checkpointWallMs: 1_700_000_000_000,
    baseSeq: 0,
    tracks,
    tracksOmitted: false,
  };
  const enc = new BlockEncoder(g, 0x01020304, 0);
  const blocks: Buffer[] = [...enc.append(encodeTracksRecord(tracks, true, 0, 1000), { dts90k: 0, wallMs: 1000, join: true })];
  for (const f of frames.slice(0, 40)) {
    blocks.push(
      ...enc.append(encodeFrameRecord(f, f.dts90k), { dts90k: f.dts90k, wallMs: 1000 + f.dts90k / 90, join: f.keyframe }),
    );
  }
  const tail = enc.snapshot();
  if (tail !== undefined) blocks.push(tail);
  return [Buffer.concat([encodeHeader(header, 0), encodeHeader(header, 1), ...blocks.slice(0, 30)])];
}

function readFeedfile(input: Buffer): void {
  const kind = identify(input.subarray(0, 64));
  if (kind !== 'feedcast') return;
  const header = parseHeader(input, 0);
  try {
    parseHeader(input, header.blockSize);
  } catch {
    // the other copy may be broken: the reader uses the good one
  }
  const asm = new RecordAssembler(1 << 20);
  let first = true;
  for (let off = header.blockSize * 2; off + header.blockSize <= input.length; off += header.blockSize) {
    const h = parseBlock(input, off, header.blockSize);
    const end = off + BLOCK_HEADER_BYTES + h.payloadLength;
    if (first) asm.start(input.subarray(off + h.firstRecordOffset, end));
    else asm.append(input.subarray(off + BLOCK_HEADER_BYTES, end));
    first = false;
    for (let r = asm.next(off); r !== undefined; r = asm.next(off)) void r;
  }
}

function rtpSeeds(): Buffer[] {
  const { tracks, frames } = fixtureFrames('h264-aac.ts');
  const video = tracks.find((t) => t.kind === 'video');
  if (video === undefined) return [];
  const p = new NalPacketizer(video, 96, 600);
  const packets: Buffer[] = [];
  let seq = 1;
  for (const f of frames.filter((fr) => fr.trackId === video.id).slice(0, 6)) {
    for (const u of p.packetize(f)) {
      packets.push(
        buildRtpPacket({ marker: u.marker, payloadType: 96, sequence: seq++, timestamp: f.pts90k, ssrc: 0x1234 }, u.parts),
      );
    }
  }
  // Each input is a run of packets, each prefixed by its 16-bit length (as RTP over RTSP/TCP frames them).
  const framed = (list: Buffer[]): Buffer =>
    Buffer.concat(list.flatMap((b) => [Buffer.from([b.length >> 8, b.length & 0xff]), b]));
  return [framed(packets.slice(0, 20)), framed(packets.slice(20, 60))];
}

function eachFramed(input: Buffer, fn: (packet: Buffer) => void): void {
  let pos = 0;
  while (pos + 2 <= input.length) {
    const len = input.readUInt16BE(pos);
    fn(input.subarray(pos + 2, pos + 2 + len));
    pos += 2 + len;
  }
}

const SDP = [
  'v=0',
  'o=- 0 0 IN IP4 127.0.0.1',
  's=No Name',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'a=tool:libavformat 60.16.100',
  'm=video 0 RTP/AVP 96',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAH6zZQFAFuhAAAAMAEAAAAwMg8YMZYA==,aOvjyyLA; profile-level-id=64001F',
  'a=control:streamid=0',
  'm=audio 0 RTP/AVP 97',
  'b=AS:128',
  'a=rtpmap:97 MPEG4-GENERIC/44100/2',
  'a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=121056E500',
  'a=control:streamid=1',
  '',
].join('\r\n');

const RTSP_REQUESTS = [
  `ANNOUNCE rtsp://127.0.0.1:5454/feed1?secret=x RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`,
  'SETUP rtsp://127.0.0.1:5454/feed1/streamid=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n\r\n',
  'SETUP rtsp://127.0.0.1:5454/feed1/streamid=1 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP/UDP;unicast;client_port=5000-5001\r\nSession: 12345678;timeout=60\r\n\r\n',
  'PLAY rtsp://127.0.0.1:5454/feed1/ RTSP/1.0\r\nCSeq: 5\r\nSession: 12345678\r\nRange: npt=0.000-\r\n\r\n',
  '$\x00\x00\x0c\x80\x60\x00\x01\x00\x00\x00\x00\x00\x00\x12\x34OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n',
];

function noResolve(host: string): Promise<string[]> {
  if (host === 'localhost') return Promise.resolve(['127.0.0.1', '::1']);
  return Promise.reject(Object.assign(new Error('no DNS in the fuzzer'), { code: 'ENOTFOUND' }));
}

const exampleConfigs = (): Buffer[] =>
  ['../../examples/feedcast.conf', '../../examples/ffserver-sample.conf'].flatMap((p) => {
    const url = new URL(p, import.meta.url);
    return existsSync(url) ? [readFileSync(url)] : [];
  });

export const TARGETS: readonly FuzzTarget[] = [
  {
    name: 'mpegts',
    seeds: () => [
      ...windows(fixture('h264-aac.ts'), 64 * 188, 4, 188),
      ...windows(fixture('h265-aac.ts'), 64 * 188, 2, 188),
      ...windows(fixture('mpeg1-mp2.ts'), 32 * 188, 2, 188),
      ...windows(fixture('opus.ts'), 32 * 188, 2, 188),
      ...windows(fixture('h264-aac-wrap.ts'), 32 * 188, 2, 188),
      fixture('mp3.ts').subarray(0, 32 * 188),
    ],
    run(input) {
      const d = new TsDemuxer(nullSink);
      chunked(input, (b) => d.push(b));
      d.end();
    },
  },
  {
    name: 'flv',
    seeds: () => [...windows(fixture('h264-aac.flv'), 24 * 1024, 1), fixture('h264-mp3.flv').subarray(0, 24 * 1024)],
    run(input) {
      const d = new FlvDemuxer(nullSink);
      chunked(input, (b) => d.push(b));
      d.end();
    },
  },
  {
    name: 'ffm',
    // ffserver's feed file (the capture's publisher packets behind ffserver's header), and FFM2 packed
    // from the H.264 + AAC fixture as ffmpeg 3.x sent it.
    seeds: () => [
      fixture('ffserver-feed1-head.ffm').subarray(0, 6 * 4096),
      ffmBodyOfFixture('h264-aac.ts', 1e15).body.subarray(0, 6 * 4096),
    ],
    run(input) {
      const d = new FfmDemuxer(nullSink);
      chunked(input, (b) => d.push(b));
      d.end();
    },
  },
  {
    name: 'http-push',
    seeds: () => [
      fixture('h264-aac.ts').subarray(0, 16 * 188),
      fixture('h264-aac.flv').subarray(0, 8192),
      ...[shared('ffm-handshake.pcap'), shared('feed1-head.ffm')].flatMap((b) => (b === undefined ? [] : [b.subarray(0, 16384)])),
    ],
    run(input) {
      const format = sniffIngestFormat(input.subarray(0, 512));
      if (format === undefined || format === 'unknown') return;
      const d =
        format === 'mpegts' ? new TsDemuxer(nullSink) : format === 'flv' ? new FlvDemuxer(nullSink) : new FfmDemuxer(nullSink);
      chunked(input, (b) => d.push(b));
      d.end();
    },
  },
  {
    name: 'rtmp-chunk',
    seeds: rtmpSeeds,
    run(input) {
      const reader = new ChunkStreamReader(
        (m) => {
          switch (m.typeId) {
            case RtmpType.commandAmf0:
            case RtmpType.commandAmf3:
              parseCommand(m.payload, m.typeId);
              break;
            case RtmpType.dataAmf0:
            case RtmpType.dataAmf3:
              parseDataMessage(m.payload, m.typeId);
              break;
            case RtmpType.userControl:
              parseUserControl(m.payload);
              break;
            case RtmpType.windowAckSize:
              parseU32Control(m.payload, 'window acknowledgement size');
              break;
            default:
          }
        },
        { maxMessageBytes: 1 << 20 },
      );
      chunked(input, (b) => reader.push(b));
    },
  },
  {
    name: 'amf0',
    seeds: () => [
      encodeAmf0(['connect', 1, { app: 'live', tcUrl: 'rtmp://h/live', nested: { a: [1, 'x', null, true] }, date: new Date(0) }]),
      encodeAmf0(['onMetaData', { duration: 0, width: 640, height: 360, videocodecid: 7, audiocodecid: 10, encoder: 'Lavf' }]),
    ],
    run(input) {
      decodeAmf0All(input);
    },
  },
  {
    name: 'rtmp-handshake',
    seeds: () => {
      const c = Buffer.alloc(1537);
      c[0] = 3;
      c.writeUInt32BE(0x80000702, 5);
      for (let i = 9; i < c.length; i++) c[i] = (i * 31) & 0xff;
      return [c];
    },
    run(input) {
      if (input.length >= 1537) parseC0C1(input.subarray(0, 1537));
    },
  },
  {
    name: 'rtsp',
    seeds: () => RTSP_REQUESTS.map((r) => Buffer.from(r, 'latin1')),
    run(input) {
      const framer = new RtspFramer();
      chunked(input, (b) => {
        for (const m of framer.push(b)) {
          if (m.kind !== 'request') continue;
          parseRtspUrl(m.url);
          const transport = m.headers.get('transport');
          if (transport !== undefined) parseTransport(transport);
          sessionIdOf(m.headers.get('session'));
        }
      });
    },
  },
  {
    name: 'sdp',
    seeds: () => [Buffer.from(SDP)],
    run(input) {
      const sdp = parseSdp(input.toString('utf8'));
      for (const line of input.toString('utf8').split(/\r?\n/)) {
        if (line.startsWith('a=fmtp:')) parseFmtp(line.slice(line.indexOf(' ') + 1));
      }
      void sdp;
    },
  },
  {
    name: 'rtp',
    seeds: rtpSeeds,
    run(input) {
      const h264 = new NalDepacketizer('h264');
      const h265 = new NalDepacketizer('h265');
      const aac = new AacDepacketizer();
      const errors: unknown[] = [];
      eachFramed(input, (b) => {
        try {
          parseRtcp(b);
        } catch (err) {
          errors.push(err);
        }
        const packet = parseRtpPacket(b);
        for (const d of [h264, h265, aac]) {
          try {
            d.push(packet);
          } catch (err) {
            errors.push(err);
          }
        }
      });
      // Depacketizers recover after a bad packet; only non-Feedcast errors are crashes.
      const crash = errors.find((e) => !(e instanceof FeedcastError));
      if (crash !== undefined) throw crash instanceof Error ? crash : new Error('a depacketizer threw a non-Error value');
    },
  },
  {
    name: 'codec-config',
    seeds: () => {
      const out: Buffer[] = [];
      for (const name of ['h264-aac.ts', 'h265-aac.ts']) {
        for (const t of fixtureFrames(name).tracks)
          if (t.config !== undefined)
            out.push(Buffer.concat([Buffer.from([t.codec === 'h265' ? 2 : t.codec === 'aac' ? 1 : 0]), t.config]));
      }
      return out;
    },
    run(input) {
      const body = input.subarray(1);
      const kind = (input[0] ?? 0) % 3;
      if (kind === 0) parseAvcc(body);
      else if (kind === 1) parseAudioSpecificConfig(body);
      else parseHvcc(body);
    },
  },
  {
    name: 'feedfile',
    seeds: feedfileSeed,
    run: readFeedfile,
  },
  {
    name: 'config',
    seeds: exampleConfigs,
    async run(input) {
      await parseConfigText(input.toString('utf8'), 'fuzz.conf', { resolveHost: noResolve });
    },
  },
];
