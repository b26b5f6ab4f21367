// The extension point of the HTTP listener: other parts (HLS, the player page, the API) serve
// their URLs through it without the listener knowing them.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo } from '../../access/connections.js';

export interface HttpRoute {
  /**
   * Serves the request if `path` (the decoded URL path without its leading '/', query excluded)
   * is one of this route's; returns false to let the next route try. `url` is the parsed URL.
   */
  handle(req: IncomingMessage, res: ServerResponse, path: string, url: URL, conn: ConnectionInfo): boolean;
}
