// How `rtmp://host/APP/NAME?query` maps to Feedcast: NAME is the feed key (or a declared stream
// name for play), APP is accepted whatever it is, `secret=` in NAME's query (or in the app's /
// tcUrl's query) is the publish secret. See docs/rtmp.md.

export interface RtmpStreamName {
  /** NAME without its query and without an `flv:` prefix. */
  name: string;
  /** `secret` from NAME's query, else from the app's or tcUrl's query. */
  secret: string | undefined;
  /** Every credential parameter (secret, token, expires, jwt): NAME's query wins over the app's and tcUrl's. */
  query: URLSearchParams;
}

const CREDENTIAL_KEYS = ['secret', 'token', 'expires', 'jwt'] as const;

function queryParam(text: string, key: string): string | undefined {
  const q = text.indexOf('?');
  if (q < 0) return undefined;
  try {
    return new URLSearchParams(text.slice(q + 1)).get(key) ?? undefined;
  } catch {
    return undefined;
  }
}

/** `raw` is publish's or play's stream name argument; `app` and `tcUrl` come from connect. */
export function parseRtmpStreamName(raw: string, app = '', tcUrl = ''): RtmpStreamName {
  const q = raw.indexOf('?');
  let name = q >= 0 ? raw.slice(0, q) : raw;
  if (name.startsWith('flv:')) name = name.slice(4);
  const secret = queryParam(raw, 'secret') ?? queryParam(app, 'secret') ?? queryParam(tcUrl, 'secret');
  const query = new URLSearchParams();
  for (const key of CREDENTIAL_KEYS) {
    const value = queryParam(raw, key) ?? queryParam(app, key) ?? queryParam(tcUrl, key);
    if (value !== undefined) query.set(key, value);
  }
  return { name, secret, query };
}

/** The app name without its query (for logs). */
export function rtmpAppName(app: string): string {
  const q = app.indexOf('?');
  return q >= 0 ? app.slice(0, q) : app;
}
