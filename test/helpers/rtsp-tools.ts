// RTSP test tools: a raw RTSP client (one request at a time on one TCP connection, for status and
// header assertions), ffmpeg/ffprobe as RTSP players, and Feedcast's RTSP server wired onto a
// running test server.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import type { Logger } from '../../src/observability/logger.js';
import { RtspServer, type RtspServerOptions } from '../../src/protocols/rtsp/server.js';
import type { TestServer } from './test-server.js';
import { FFMPEG, FFPROBE, run, type ProbeResult } from './media-tools.js';

/** Starts an RtspServer on 127.0.0.1:0 for a running test server; closed after the test. */
export async function startRtsp(
  t: TestContext,
  server: TestServer,
  options: RtspServerOptions & { log?: Logger } = {},
): Promise<{ rtsp: RtspServer; port: number; url: (path: string) => string }> {
  const ctx = options.log !== undefined ? { ...server.ctx, log: options.log } : server.ctx;
  const rtsp = new RtspServer(ctx, options);
  const port = await rtsp.listen(0, '127.0.0.1');
  t.after(() => rtsp.close());
  return { rtsp, port, url: (path) => `rtsp://127.0.0.1:${port}${path}` };
}

export interface RtspResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** A minimal RTSP client: sends a request, waits for its response (interleaved data is skipped). */
export class RawRtspClient {
  readonly socket: Socket;
  private buf = Buffer.alloc(0);
  private waiting: ((r: RtspResponse) => void) | undefined;
  private cseq = 0;
  interleavedBytes = 0;
  closed = false;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    this.socket.on('close', () => (this.closed = true));
    this.socket.on('error', () => undefined);
  }

  private parse(): void {
    for (;;) {
      if (this.buf.length >= 4 && this.buf[0] === 0x24) {
        const len = this.buf.readUInt16BE(2);
        if (this.buf.length < 4 + len) return;
        this.interleavedBytes += 4 + len;
        this.onInterleaved(this.buf[1] as number, this.buf.subarray(4, 4 + len));
        this.buf = this.buf.subarray(4 + len);
        continue;
      }
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
      }
      const length = Number(headers.get('content-length') ?? 0);
      if (this.buf.length < end + 4 + length) return;
      const body = this.buf.subarray(end + 4, end + 4 + length).toString();
      this.buf = this.buf.subarray(end + 4 + length);
      const status = Number(head[0]?.split(' ')[1]);
      const w = this.waiting;
      this.waiting = undefined;
      w?.({ status, headers, body });
    }
  }

  /** Called with each interleaved packet (`data` is only valid during the call): for clients that read the RTP. */
  protected onInterleaved(_channel: number, _data: Buffer): void {}

  /** Sends raw bytes and waits for the next response. */
  sendRaw(text: string | Buffer, timeoutMs = 15_000): Promise<RtspResponse> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no RTSP response within ${timeoutMs} ms`)), timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.socket.write(text);
    });
  }

  request(method: string, url: string, headers: Record<string, string> = {}, body = ''): Promise<RtspResponse> {
    const lines = [`${method} ${url} RTSP/1.0`, `CSeq: ${++this.cseq}`];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body !== '') lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    return this.sendRaw(lines.join('\r\n') + '\r\n\r\n' + body);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** An RTP and an RTCP UDP socket bound on 127.0.0.1 (client ports of a UDP SETUP), closed after the test. */
export async function udpClientPorts(t: TestContext): Promise<{ rtp: UdpSocket; rtcp: UdpSocket }> {
  const rtp = createSocket('udp4');
  const rtcp = createSocket('udp4');
  t.after(() => {
    rtp.close();
    rtcp.close();
  });
  await new Promise<void>((resolve) => rtp.bind(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => rtcp.bind(0, '127.0.0.1', resolve));
  return { rtp, rtcp };
}

/** ffprobe of `seconds` of an RTSP URL over the given transport. */
export async function probeRtsp(url: string, transport: 'udp' | 'tcp' | 'udp_multicast', seconds: number): Promise<ProbeResult> {
  const { code, stdout, stderr } = await run(
    FFPROBE,
    [
      '-v',
      'error',
      '-rtsp_transport',
      transport,
      '-read_intervals',
      `%+${seconds}`,
      '-show_streams',
      '-show_packets',
      '-of',
      'json',
      url,
    ],
    30_000,
  );
  if (code !== 0) throw new Error(`ffprobe ${url} (${transport}) failed (${String(code)}): ${stderr}`);
  const parsed = JSON.parse(stdout) as Partial<ProbeResult>;
  return { streams: parsed.streams ?? [], packets: parsed.packets ?? [] };
}

/** Decodes `seconds` of an RTSP URL with ffmpeg; counts frames per stream index (0 video, 1 audio as served). */
export async function decodeRtsp(
  url: string,
  transport: 'udp' | 'tcp' | 'udp_multicast',
  seconds: number,
): Promise<{ videoFrames: number; audioFrames: number; errors: string; code: number | null }> {
  const { code, stdout, stderr } = await run(
    FFMPEG,
    [
      '-hide_banner',
      '-nostdin',
      '-v',
      'error',
      '-rtsp_transport',
      transport,
      '-i',
      url,
      '-t',
      String(seconds),
      '-f',
      'framecrc',
      '-',
    ],
    30_000,
  );
  let videoFrames = 0;
  let audioFrames = 0;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const stream = line.split(',')[0]?.trim();
    if (stream === '0') videoFrames++;
    else if (stream === '1') audioFrames++;
  }
  return { videoFrames, audioFrames, errors: stderr.trim(), code };
}
