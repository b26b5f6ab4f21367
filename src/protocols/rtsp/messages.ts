// RTSP 1.0 message pieces (RFC 2326): status reasons (7.1.1), responses (7.1, with CSeq and Date),
// the Transport header (12.39), the Session header (12.37) and request URLs of feeds and tracks.

import { MalformedInputError } from '../../errors.js';

export const RtspStatus = {
  ok: 200,
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  methodNotAllowed: 405,
  notAcceptable: 406,
  requestEntityTooLarge: 413,
  unsupportedMediaType: 415,
  notEnoughBandwidth: 453,
  sessionNotFound: 454,
  methodNotValidInThisState: 455,
  invalidRange: 457,
  aggregateNotAllowed: 459,
  unsupportedTransport: 461,
  internalError: 500,
  notImplemented: 501,
  serviceUnavailable: 503,
  movedTemporarily: 302,
  requestTimeout: 408,
  versionNotSupported: 505,
  optionNotSupported: 551,
} as const;

const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  302: 'Moved Temporarily',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  453: 'Not Enough Bandwidth',
  454: 'Session Not Found',
  455: 'Method Not Valid in This State',
  457: 'Invalid Range',
  459: 'Aggregate Operation Not Allowed',
  461: 'Unsupported Transport',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'RTSP Version Not Supported',
  551: 'Option not supported',
};

export function reasonOf(status: number): string {
  return REASONS[status] ?? 'Error';
}

export const PUBLIC_METHODS = 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER, ANNOUNCE, RECORD';

/** A complete response: status line, CSeq, Date, the given headers, Content-Length and body. */
export function formatResponse(
  status: number,
  cseq: string | undefined,
  headers: readonly (readonly [string, string])[] = [],
  body?: string,
  reason = reasonOf(status),
): Buffer {
  const lines = [`RTSP/1.0 ${status} ${reason}`];
  if (cseq !== undefined) lines.push(`CSeq: ${cseq}`);
  lines.push(`Date: ${new Date().toUTCString()}`, 'Server: Feedcast');
  for (const [name, value] of headers) lines.push(`${name}: ${value.replace(/[\r\n]/g, ' ')}`);
  const bodyBytes = body !== undefined ? Buffer.from(body, 'utf8') : undefined;
  if (bodyBytes !== undefined && bodyBytes.length > 0) lines.push(`Content-Length: ${bodyBytes.length}`);
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  return bodyBytes !== undefined && bodyBytes.length > 0 ? Buffer.concat([head, bodyBytes]) : head;
}

export interface TransportSpec {
  /** `RTP/AVP`, `RTP/AVP/UDP` or `RTP/AVP/TCP` (upper-cased). */
  protocol: string;
  lower: 'udp' | 'tcp';
  multicast: boolean;
  clientPort: [number, number] | undefined;
  serverPort: [number, number] | undefined;
  interleaved: [number, number] | undefined;
  destination: string | undefined;
  port: [number, number] | undefined;
  ttl: number | undefined;
  mode: 'play' | 'record';
}

/** Parses a Transport header's alternatives, in the client's order of preference (at most 8). */
export function parseTransport(value: string): TransportSpec[] {
  const specs: TransportSpec[] = [];
  for (const alternative of value.split(',').slice(0, 8)) {
    const params = alternative.trim().split(';');
    const protocol = (params[0] ?? '').trim().toUpperCase();
    if (protocol === '') continue;
    const spec: TransportSpec = {
      protocol,
      lower: protocol.endsWith('/TCP') ? 'tcp' : 'udp',
      multicast: false,
      clientPort: undefined,
      serverPort: undefined,
      interleaved: undefined,
      destination: undefined,
      port: undefined,
      ttl: undefined,
      mode: 'play',
    };
    for (const param of params.slice(1)) {
      const eq = param.indexOf('=');
      const key = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
      const val = eq < 0 ? '' : param.slice(eq + 1).trim();
      switch (key) {
        case 'multicast':
          spec.multicast = true;
          break;
        case 'unicast':
          spec.multicast = false;
          break;
        case 'client_port':
          spec.clientPort = portRange(val, key);
          break;
        case 'server_port':
          spec.serverPort = portRange(val, key);
          break;
        case 'port':
          spec.port = portRange(val, key);
          break;
        case 'interleaved':
          spec.interleaved = portRange(val, key, 255);
          break;
        case 'destination':
          spec.destination = val.slice(0, 64);
          break;
        case 'ttl':
          spec.ttl = Number(val);
          break;
        case 'mode':
          spec.mode = val.replace(/"/g, '').toLowerCase() === 'record' ? 'record' : 'play';
          break;
        default:
          break;
      }
    }
    specs.push(spec);
  }
  return specs;
}

function portRange(text: string, what: string, max = 65535): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const a = m === null ? NaN : Number(m[1]);
  const b = m === null ? NaN : m[2] !== undefined ? Number(m[2]) : a + 1;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a > max || b > max) {
    throw new MalformedInputError('rtsp transport', 0, `bad ${what} "${text.slice(0, 20)}"`);
  }
  return [a, b];
}

/** The session id of a Session header (`id;timeout=60` -> `id`). */
export function sessionIdOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const id = header.split(';')[0]?.trim();
  return id === undefined || id === '' ? undefined : id;
}

export interface RtspTarget {
  /** Feed key or stream name (the path without a track part). */
  name: string;
  /** The `streamid=N` (or `trackID=N`) part, when the URL names one track. */
  trackId: number | undefined;
  /** The last path segment as written (to match a publisher's own a=control values). */
  lastSegment: string;
  query: URLSearchParams;
  /** Basic credentials from the URL, if any. */
  password: string | undefined;
}

/** Reads `rtsp://host:port/name[/streamid=N][?query]` (or a path). Throws MalformedInputError. */
export function parseRtspUrl(url: string): RtspTarget {
  let parsed: URL;
  try {
    parsed = url.startsWith('/') ? new URL(url, 'rtsp://feedcast.invalid') : new URL(url);
  } catch {
    throw new MalformedInputError('rtsp', 0, `request URL "${url.slice(0, 100)}" is not a URL`);
  }
  if (parsed.protocol !== 'rtsp:' && parsed.protocol !== 'rtsps:' && parsed.protocol !== 'rtspu:') {
    throw new MalformedInputError('rtsp', 0, `request URL "${url.slice(0, 100)}" is not an rtsp:// URL`);
  }
  let path: string;
  try {
    path = decodeURIComponent(parsed.pathname);
  } catch {
    throw new MalformedInputError('rtsp', 0, `request URL path "${parsed.pathname.slice(0, 100)}" has bad escapes`);
  }
  let password: string | undefined;
  try {
    password = parsed.password !== '' ? decodeURIComponent(parsed.password) : undefined;
  } catch {
    // Found by the fuzzer (test/fuzz/corpus/rtsp/7846ac081e16d4e7.bin): a bad escape in the user info.
    throw new MalformedInputError('rtsp', 0, 'request URL password has bad escapes');
  }
  const segments = path.split('/').filter((s) => s !== '');
  // Players append a track's control to the Content-Base as text: `/feed1?start=-30` + `/` +
  // `streamid=0` puts the track part after the query. Take it back out.
  let search = parsed.search.slice(1);
  const slash = search.lastIndexOf('/');
  if (slash >= 0 && /^(?:(?:streamid|trackid)=\d{1,3})?$/i.test(search.slice(slash + 1))) {
    if (slash + 1 < search.length) segments.push(search.slice(slash + 1));
    search = search.slice(0, slash);
  }
  const last = segments.at(-1) ?? '';
  const m = /^(?:streamid|trackid)=(\d{1,3})$/i.exec(last);
  const trackId = m !== null ? Number(m[1]) : undefined;
  const nameSegments = trackId !== undefined ? segments.slice(0, -1) : segments;
  return {
    name: nameSegments.join('/'),
    trackId,
    lastSegment: last,
    query: new URLSearchParams(search),
    password,
  };
}
