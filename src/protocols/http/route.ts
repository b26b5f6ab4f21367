// The extension points of the HTTP listener: other parts (HLS, the player page, the API) serve
// their URLs through it, and control/ renders its pages, without the listener knowing them.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo } from '../../access/connections.js';

export interface HttpRoute {
  /**
   * Serves the request if `path` (the decoded URL path without its leading '/', query excluded)
   * is one of this route's; returns false to let the next route try. `url` is the parsed URL.
   */
  handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL, conn: ConnectionInfo): boolean;
}

/** The pages the listener serves at fixed places, rendered by control/ (server.ts passes them in). */
export interface HttpPages {
  /** `/` (and `/index.html`): `host` is the Host header, `credentialQuery` the viewer's read credentials for links. */
  index(host: string | undefined, credentialQuery: string): string;
  /** `/stat.html` and streams with `Format status`. */
  status(): string;
}
