// RTSP 1.0 request framer (RFC 2326 6, 10.12): finds requests (request line, headers, a body of
// Content-Length bytes) and interleaved binary frames (`$`, channel, u16 length, data) in the byte
// stream of one connection. "Not enough bytes yet" returns nothing; bad input throws.
//
//  request:     Method SP Request-URI SP RTSP-Version CRLF *(header CRLF) CRLF [body]
//  interleaved: 0x24 | u8 channel | u16 length | length bytes (RTP or RTCP)

import { LimitExceededError, MalformedInputError } from '../../errors.js';

export interface RtspRequest {
  readonly kind: 'request';
  readonly method: string;
  readonly url: string;
  readonly version: string;
  /** Header names lower-cased; repeated headers joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

export interface InterleavedFrame {
  readonly kind: 'interleaved';
  readonly channel: number;
  readonly data: Buffer;
}

export type RtspMessage = RtspRequest | InterleavedFrame;

export interface RtspFramerOptions {
  /** Request line + headers. */
  maxHeadBytes?: number;
  maxBodyBytes?: number;
  maxHeaders?: number;
}

const DEFAULTS = { maxHeadBytes: 16 * 1024, maxBodyBytes: 64 * 1024, maxHeaders: 64 } as const;
const METHOD = /^[A-Za-z_][A-Za-z0-9_-]{0,31}$/;

export class RtspFramer {
  private readonly options: Required<RtspFramerOptions>;
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes consumed since the connection started, for error offsets. */
  private consumed = 0;
  private pendingHead: { head: Omit<RtspRequest, 'body'>; bodyLength: number } | undefined;

  constructor(options: RtspFramerOptions = {}) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Bytes held waiting for the rest of a message. */
  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): RtspMessage[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: RtspMessage[] = [];
    let pos = 0;
    for (;;) {
      const used = this.next(pos, out);
      if (used === 0) break;
      pos += used;
    }
    this.consumed += pos;
    // Copy the tail: a view would keep the whole chunk alive.
    this.buf = pos === 0 ? this.buf : pos >= this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(pos));
    return out;
  }

  /** Takes one message starting at `pos`; returns the bytes used (0: need more). */
  private next(pos: number, out: RtspMessage[]): number {
    const buf = this.buf;
    const available = buf.length - pos;
    if (available <= 0) return 0;
    if (this.pendingHead !== undefined) {
      const { head, bodyLength } = this.pendingHead;
      if (available < bodyLength) return 0;
      this.pendingHead = undefined;
      out.push({ ...head, body: Buffer.from(buf.subarray(pos, pos + bodyLength)) });
      return bodyLength;
    }
    if (buf[pos] === 0x24) {
      if (available < 4) return 0;
      const length = buf.readUInt16BE(pos + 2);
      if (available < 4 + length) return 0;
      out.push({
        kind: 'interleaved',
        channel: buf[pos + 1] as number,
        data: Buffer.from(buf.subarray(pos + 4, pos + 4 + length)),
      });
      return 4 + length;
    }
    // Blank lines between messages are allowed (RFC 2326 15.1 keep-alives from some clients).
    if (buf[pos] === 0x0d || buf[pos] === 0x0a) return 1;
    const limit = Math.min(buf.length, pos + this.options.maxHeadBytes + 4);
    let end = -1;
    let sepLength = 0;
    for (let i = pos; i < limit; i++) {
      if (buf[i] !== 0x0a) continue;
      if (buf[i + 1] === 0x0a) {
        end = i;
        sepLength = 2;
        break;
      }
      if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) {
        end = i;
        sepLength = 3;
        break;
      }
    }
    if (end < 0) {
      if (available > this.options.maxHeadBytes) {
        throw new LimitExceededError(`rtsp: request head at offset ${this.consumed + pos}`, available, this.options.maxHeadBytes);
      }
      return 0;
    }
    const headLength = end + sepLength - pos;
    const head = this.parseHead(buf.subarray(pos, end).toString('latin1'), this.consumed + pos);
    const lengthText = head.headers.get('content-length');
    let bodyLength = 0;
    if (lengthText !== undefined) {
      if (!/^\d{1,10}$/.test(lengthText.trim())) {
        throw new MalformedInputError('rtsp', this.consumed + pos, `bad Content-Length "${lengthText.slice(0, 20)}"`);
      }
      bodyLength = Number(lengthText.trim());
      if (bodyLength > this.options.maxBodyBytes) {
        throw new LimitExceededError(`rtsp: ${head.method} body`, bodyLength, this.options.maxBodyBytes);
      }
    }
    if (bodyLength > 0) {
      this.pendingHead = { head, bodyLength };
      return headLength;
    }
    out.push({ ...head, body: Buffer.alloc(0) });
    return headLength;
  }

  private parseHead(text: string, offset: number): Omit<RtspRequest, 'body'> {
    const lines = text.split(/\r?\n/);
    const requestLine = lines[0] ?? '';
    const parts = requestLine.split(' ');
    if (parts.length !== 3) {
      throw new MalformedInputError('rtsp', offset, `request line "${requestLine.slice(0, 80)}" is not "METHOD URL RTSP/1.0"`);
    }
    const [method, url, version] = parts as [string, string, string];
    if (!METHOD.test(method)) throw new MalformedInputError('rtsp', offset, `bad method "${method.slice(0, 40)}"`);
    if (url === '' || url.length > 4096) throw new MalformedInputError('rtsp', offset, `request URL of ${url.length} characters`);
    if (!/^[A-Z]{2,8}\/\d{1,2}\.\d{1,2}$/.test(version)) {
      throw new MalformedInputError('rtsp', offset, `bad protocol version "${version.slice(0, 20)}"`);
    }
    const headers = new Map<string, string>();
    let last: string | undefined;
    let count = 0;
    for (const line of lines.slice(1)) {
      if (line === '') continue;
      if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
        headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`);
        continue;
      }
      const colon = line.indexOf(':');
      if (colon <= 0) throw new MalformedInputError('rtsp', offset, `header line "${line.slice(0, 80)}" has no name`);
      if (++count > this.options.maxHeaders)
        throw new LimitExceededError('rtsp: headers in one request', count, this.options.maxHeaders);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const previous = headers.get(name);
      headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
      last = name;
    }
    return { kind: 'request', method, url, version, headers };
  }
}
