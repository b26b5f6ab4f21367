// An FFM2 publisher as ffmpeg <= 3.4 was one (ffserver-reference.md §3.2, §5): frames encoded by
// the real ffmpeg (a test fixture) packed into FFM2 the way its ffm muxer packed them (H.264 in
// Annex B with no extradata, AAC raw with its AudioSpecificConfig as extradata, wall-clock µs), and
// the two connections: the GET of the stream layout and the long chunked POST.

import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import {
  encodeFfmHeader,
  FFM_CODEC_IDS,
  FFM_FLAG_GLOBAL_HEADER,
  FFM_PACKET_SIZE,
  type FfmStreamHeader,
} from '../../src/formats/ffm/ffm-header.js';
import { encodeFfmPackets, type FfmFrameInput } from '../../src/formats/ffm/ffm-packet.js';
import { lengthPrefixedToAnnexB } from '../../src/formats/h264/nal.js';
import { fixtureFrames } from './fixture-frames.js';

/** The FFM2 stream an ffmpeg 3.x would POST for the H.264 + AAC fixture `name` (MPEG-TS), its clock at `startUs`. */
export function ffmBodyOfFixture(
  name: string,
  startUs = Date.now() * 1000,
): { body: Buffer; frames: number; videoFrames: number } {
  const { tracks, frames } = fixtureFrames(name);
  const streams: FfmStreamHeader[] = [];
  const indexOf = new Map<number, number>();
  for (const t of tracks) {
    indexOf.set(t.id, streams.length);
    if (t.codec === 'h264') {
      const size = `${t.width ?? 0}x${t.height ?? 0}`;
      streams.push({
        codecId: FFM_CODEC_IDS.h264,
        kind: 'video',
        bitRate: 150_000,
        flags: 0,
        options: [
          ['b', '150000'],
          ['pixel_format', 'yuv420p'],
          ['video_size', size],
        ],
      });
    } else if (t.codec === 'aac') {
      streams.push({
        codecId: FFM_CODEC_IDS.aac,
        kind: 'audio',
        bitRate: 64_000,
        flags: FFM_FLAG_GLOBAL_HEADER,
        extradata: t.config,
        options: [
          ['b', '64000'],
          ['ar', String(t.sampleRate ?? 0)],
          ['ac', String(t.channels ?? 0)],
          ['frame_size', '1024'],
        ],
      });
    } else {
      throw new Error(`ffm publisher: the fixture has a ${t.codec} track; only H.264 and AAC are packed`);
    }
  }
  const start = frames[0]?.dts90k ?? 0;
  const us = (t90k: number): number => startUs + Math.round(((t90k - start) * 100) / 9);
  const video = new Set(tracks.filter((t) => t.codec === 'h264').map((t) => t.id));
  const inputs: FfmFrameInput[] = frames.map((f) => ({
    streamIndex: indexOf.get(f.trackId) ?? 0,
    keyframe: f.keyframe,
    pts: us(f.pts90k),
    dts: us(f.dts90k),
    duration: 0,
    data: video.has(f.trackId) ? lengthPrefixedToAnnexB(f.data) : f.data,
  }));
  return {
    body: Buffer.concat([encodeFfmHeader({ writeIndex: 0, streams }), encodeFfmPackets(inputs)]),
    frames: frames.length,
    videoFrames: frames.filter((f) => video.has(f.trackId)).length,
  };
}

export interface RawExchange {
  status: number;
  head: string;
  body: Buffer;
}

/** Sends `bytes` as they are on a new connection to 127.0.0.1:`port` and reads the answer until the server closes. */
export function rawExchange(port: number, bytes: Buffer): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    const got: Buffer[] = [];
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(got);
      const end = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, end < 0 ? all.length : end).toString('latin1');
      resolve({
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0),
        head,
        body: end < 0 ? Buffer.alloc(0) : all.subarray(end + 4),
      });
    });
  });
}

export interface FfmPost {
  readonly req: ClientRequest;
  /** The answer, if the server sends one (it does when it refuses the stream, or at its end). */
  readonly response: Promise<{ status: number; body: string }>;
  /** Sends the last chunk (ffmpeg's trailer at SIGTERM) and waits for the answer. */
  finish(): Promise<{ status: number; body: string }>;
}

/** `POST /feedN.ffm` chunked, one 4096-byte FFM packet per chunk (ffmpeg's chunked_post), left open. */
export function postFfmChunked(url: string, body: Buffer): FfmPost {
  const req = request(url, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked', 'User-Agent': 'Lavf/57.72.101' } });
  const response = new Promise<{ status: number; body: string }>((resolve) => {
    req.on('response', (res: IncomingMessage) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
  for (let at = 0; at < body.length; at += FFM_PACKET_SIZE) req.write(body.subarray(at, at + FFM_PACKET_SIZE));
  return {
    req,
    response,
    finish: () => {
      req.end();
      return response;
    },
  };
}
