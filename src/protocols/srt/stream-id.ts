// What an SRT caller asks for, from its stream id (SRTO_STREAMID, at most 512 characters): the SRT
// access-control convention `#!::r=feed1,m=publish` (Haivision srt docs/features/access-control.md:
// comma-separated KEY=VALUE after `#!::`; r = resource, m = request (read, the default) | publish),
// or the short forms `publish:feed1` and `read:feed1`; a bare `feed1` reads. Credentials ride as in
// the other protocols: `secret`, `token`, `expires`, `jwt` as keys of the `#!::` form, or in a query
// after the name (`publish:feed1?secret=s3cr3t`). A percent-encoded stream id is decoded first. A resource with a path (`live/feed1`) names its
// last segment, as RTMP's app/name does.
//
// native/srt.c (resourceKey) finds the same name to pick the feed's SRTPassphrase during the
// handshake; srtResourceKey below is the same rule, and a unit test keeps the two in step.

import { ProtocolError } from '../../errors.js';

export type SrtMode = 'publish' | 'read';

export interface SrtStreamId {
  mode: SrtMode;
  /** The feed key or stream name (as written: case is resolved by access/). */
  name: string;
  /** Credential parameters (secret, token, expires, jwt). */
  query: URLSearchParams;
}

/** libsrt's limit on SRTO_STREAMID. */
export const SRT_STREAM_ID_MAX = 512;

const CREDENTIAL_KEYS = ['secret', 'token', 'expires', 'jwt'] as const;

/** The name and query of a resource: `live/feed1?secret=x` -> feed1, secret=x. */
function splitResource(resource: string, query: URLSearchParams): string {
  const q = resource.indexOf('?');
  const path = q >= 0 ? resource.slice(0, q) : resource;
  if (q >= 0) {
    const params = new URLSearchParams(resource.slice(q + 1));
    for (const key of CREDENTIAL_KEYS) {
      const value = params.get(key);
      if (value !== null && !query.has(key)) query.set(key, value);
    }
  }
  const slash = path.lastIndexOf('/');
  return slash >= 0 ? path.slice(slash + 1) : path;
}

/** Some callers percent-encode the stream id (OvenMediaEngine asks for it), ffmpeg sends it as written: both work. */
function percentDecoded(text: string): string {
  return text.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Throws ProtocolError (with what was wrong and the forms that work) when the stream id cannot be used. */
export function parseSrtStreamId(sent: string): SrtStreamId {
  const raw = percentDecoded(sent);
  const forms = 'use streamid=publish:FEED, read:FEED or #!::r=FEED,m=publish|request';
  if (raw.length > SRT_STREAM_ID_MAX) {
    throw new ProtocolError('srt', `stream id of ${raw.length} characters (limit ${SRT_STREAM_ID_MAX})`);
  }
  const query = new URLSearchParams();
  let mode: SrtMode = 'read';
  let resource: string;
  if (raw.startsWith('#!::')) {
    let r: string | undefined;
    for (const item of raw.slice(4).split(',')) {
      const eq = item.indexOf('=');
      if (eq <= 0) throw new ProtocolError('srt', `stream id item "${item.slice(0, 40)}" is not KEY=VALUE; ${forms}`);
      const key = item.slice(0, eq);
      const value = item.slice(eq + 1);
      if (key === 'r') r = value;
      else if (key === 'm') {
        if (value === 'publish') mode = 'publish';
        else if (value === 'request') mode = 'read';
        else throw new ProtocolError('srt', `stream id mode m=${value.slice(0, 20)} is not supported (publish or request)`);
      } else if (key === 't' && value !== 'stream') {
        throw new ProtocolError('srt', `stream id type t=${value.slice(0, 20)} is not supported (only t=stream)`);
      } else if ((CREDENTIAL_KEYS as readonly string[]).includes(key)) query.set(key, value);
      // Other keys of the convention (u, s, h) and unknown ones are ignored, as the convention allows.
    }
    if (r === undefined) throw new ProtocolError('srt', `stream id "${raw.slice(0, 60)}" names no resource (r=); ${forms}`);
    resource = r;
  } else if (raw.startsWith('publish:')) {
    mode = 'publish';
    resource = raw.slice('publish:'.length);
  } else if (raw.startsWith('read:')) {
    resource = raw.slice('read:'.length);
  } else {
    resource = raw;
  }
  const name = splitResource(resource, query);
  if (name === '') throw new ProtocolError('srt', `stream id "${raw.slice(0, 60)}" names no feed; ${forms}`);
  return { mode, name, query };
}

/**
 * The key native/srt.c looks a passphrase up by during the handshake: the resource of the stream id,
 * without query or path, lower case, without `.ffm`. Same rule as parseSrtStreamId's name.
 */
export function srtResourceKey(name: string): string {
  const key = name.toLowerCase();
  return key.endsWith('.ffm') ? key.slice(0, -'.ffm'.length) : key;
}
