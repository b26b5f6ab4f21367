// SDP (RFC 8866) for RTSP: the session description Feedcast answers DESCRIBE with (one m= section
// per track, rtpmap/fmtp from formats/rtp, a=control per track), and a bounded parser for the
// description a publisher sends with ANNOUNCE.
//
//  v=0 | o=<user> <sess-id> <sess-version> IN IP4 <address> | s=<name> | c=IN IP4 <address>[/ttl]
//  t=0 0 | a=... | m=<media> <port> <proto> <fmt>... | a=rtpmap:<pt> <name>/<clock>[/<channels>]
//  a=fmtp:<pt> <k>=<v>; ... | a=control:<url>

import { MalformedInputError } from '../../errors.js';
import type { RtpFormat } from '../rtp/formats.js';

export const MAX_SDP_BYTES = 64 * 1024;
const MAX_LINES = 1024;
const MAX_MEDIA = 16;
const MAX_LINE_BYTES = 16 * 1024;

export interface SdpConnection {
  address: string;
  ttl: number | undefined;
}

export interface SdpMedia {
  /** `video`, `audio`, ... */
  type: string;
  port: number;
  protocol: string;
  /** Payload types, in order of preference. */
  formats: number[];
  rtpmaps: Map<number, { encoding: string; clockRate: number; channels: number | undefined }>;
  fmtps: Map<number, Map<string, string>>;
  control: string | undefined;
  connection: SdpConnection | undefined;
}

export interface SessionDescription {
  sessionName: string;
  connection: SdpConnection | undefined;
  /** Session-level a=control (aggregate URL), if any. */
  control: string | undefined;
  media: SdpMedia[];
}

/** Parses an SDP text. Throws MalformedInputError (byte offset of the bad line) on what is not SDP. */
export function parseSdp(text: string): SessionDescription {
  if (Buffer.byteLength(text) > MAX_SDP_BYTES) {
    throw new MalformedInputError('sdp', 0, `description of ${Buffer.byteLength(text)} bytes (limit ${MAX_SDP_BYTES})`);
  }
  const desc: SessionDescription = { sessionName: '', connection: undefined, control: undefined, media: [] };
  let media: SdpMedia | undefined;
  let offset = 0;
  let count = 0;
  let sawVersion = false;
  for (const rawLine of text.split('\n')) {
    const lineOffset = offset;
    offset += rawLine.length + 1;
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') continue;
    if (++count > MAX_LINES) throw new MalformedInputError('sdp', lineOffset, `more than ${MAX_LINES} lines`);
    if (line.length > MAX_LINE_BYTES) throw new MalformedInputError('sdp', lineOffset, `line of ${line.length} characters`);
    const fail = (detail: string): never => {
      throw new MalformedInputError('sdp', lineOffset, `${detail} in "${line.slice(0, 80)}"`);
    };
    if (!/^[a-z]=/.test(line)) fail('not a <type>=<value> line');
    const type = line[0];
    const value = line.slice(2);
    if (!sawVersion) {
      if (type !== 'v' || value.trim() !== '0') fail('the description must start with v=0');
      sawVersion = true;
      continue;
    }
    switch (type) {
      case 's':
        if (media === undefined) desc.sessionName = value.slice(0, 256);
        break;
      case 'c': {
        const conn = parseConnection(value) ?? fail('bad connection line');
        if (media !== undefined) media.connection = conn;
        else desc.connection = conn;
        break;
      }
      case 'm': {
        if (desc.media.length >= MAX_MEDIA) fail(`more than ${MAX_MEDIA} media sections`);
        const parts = value.trim().split(/\s+/);
        const [kind, portText, protocol, ...formats] = parts;
        if (kind === undefined || portText === undefined || protocol === undefined || formats.length === 0)
          fail('incomplete media line');
        const port = Number((portText ?? '').split('/')[0]);
        if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port ${portText ?? ''}`);
        const pts = formats.map((f) => Number(f));
        if (pts.some((pt) => !Number.isInteger(pt) || pt < 0 || pt > 127)) fail('payload types must be 0..127');
        media = {
          type: kind ?? '',
          port,
          protocol: protocol ?? '',
          formats: pts,
          rtpmaps: new Map(),
          fmtps: new Map(),
          control: undefined,
          connection: undefined,
        };
        desc.media.push(media);
        break;
      }
      case 'a': {
        const colon = value.indexOf(':');
        const name = colon >= 0 ? value.slice(0, colon) : value;
        const attr = colon >= 0 ? value.slice(colon + 1) : '';
        if (name === 'control') {
          if (media !== undefined) media.control = attr.trim();
          else desc.control = attr.trim();
        } else if (name === 'rtpmap' && media !== undefined) {
          const m = /^(\d{1,3})\s+([^/\s]+)\/(\d{1,6})(?:\/(\d{1,2}))?\s*$/.exec(attr) ?? fail('bad rtpmap');
          const pt = Number(m[1]);
          if (pt > 127) fail(`payload type ${pt}`);
          media.rtpmaps.set(pt, {
            encoding: m[2] ?? '',
            clockRate: Number(m[3]),
            channels: m[4] !== undefined ? Number(m[4]) : undefined,
          });
        } else if (name === 'fmtp' && media !== undefined) {
          const m = /^(\d{1,3})\s+(.*)$/.exec(attr) ?? fail('bad fmtp');
          media.fmtps.set(Number(m[1]), parseFmtp(m[2] ?? ''));
        }
        break;
      }
      default:
        break; // o=, t=, b=, i=, ... are not needed
    }
  }
  if (!sawVersion) throw new MalformedInputError('sdp', 0, 'empty description');
  return desc;
}

function parseConnection(value: string): SdpConnection | undefined {
  const m = /^IN\s+IP[46]\s+([^\s/]+)(?:\/(\d{1,3}))?(?:\/\d+)?\s*$/.exec(value);
  if (m === null) return undefined;
  return { address: m[1] ?? '', ttl: m[2] !== undefined ? Number(m[2]) : undefined };
}

/** `k=v; k=v` (keys lower-cased, a value keeps any '=' after the first). At most 64 parameters. */
export function parseFmtp(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(';')) {
    const p = part.trim();
    if (p === '') continue;
    if (out.size >= 64) break;
    const eq = p.indexOf('=');
    if (eq < 0) out.set(p.toLowerCase(), '');
    else out.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
  }
  return out;
}

/** The RTP payload format of a media section (its first payload type). */
export function rtpFormatOfMedia(media: SdpMedia): RtpFormat {
  const pt = media.formats[0] as number;
  const map = media.rtpmaps.get(pt);
  return {
    payloadType: pt,
    encoding: map?.encoding ?? '',
    clockRate: map?.clockRate ?? 90_000,
    channels: map?.channels,
    fmtp: media.fmtps.get(pt) ?? new Map<string, string>(),
  };
}

export interface SdpTrackDescription {
  kind: 'video' | 'audio';
  format: RtpFormat;
  control: string;
  /** Port for m= (0 for unicast sessions: the port comes with SETUP). */
  port: number;
}

export interface SdpSessionOptions {
  sessionName: string;
  /** The server's address for o=. */
  originAddress: string;
  /** c= address: 0.0.0.0 for unicast, the group for multicast. */
  connection: SdpConnection;
  tracks: readonly SdpTrackDescription[];
  /** Session id for o= (digits). */
  sessionId?: string;
}

/** Builds the description Feedcast sends in answer to DESCRIBE. */
export function buildSdp(options: SdpSessionOptions): string {
  const family = (address: string): string => (address.includes(':') ? 'IP6' : 'IP4');
  const conn = options.connection;
  const lines = [
    'v=0',
    `o=- ${options.sessionId ?? '0'} 0 IN ${family(options.originAddress)} ${options.originAddress}`,
    `s=${options.sessionName.replace(/[\r\n]/g, ' ') || 'No Title'}`,
    `c=IN ${family(conn.address)} ${conn.address}${conn.ttl !== undefined ? `/${conn.ttl}` : ''}`,
    't=0 0',
    'a=tool:feedcast',
    'a=range:npt=now-',
    'a=control:*',
  ];
  for (const t of options.tracks) {
    const f = t.format;
    lines.push(`m=${t.kind} ${t.port} RTP/AVP ${f.payloadType}`);
    lines.push(`a=rtpmap:${f.payloadType} ${f.encoding}/${f.clockRate}${f.channels !== undefined ? `/${f.channels}` : ''}`);
    if (f.fmtp.size > 0) {
      lines.push(`a=fmtp:${f.payloadType} ${[...f.fmtp].map(([k, v]) => `${k}=${v}`).join('; ')}`);
    }
    lines.push(`a=control:${t.control}`);
  }
  return lines.join('\r\n') + '\r\n';
}
