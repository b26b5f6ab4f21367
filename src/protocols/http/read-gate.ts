// The gate of HTTP requests for media (docs/security.md): the authorisation policy (ACL, DynamicACL,
// secrets, read tokens, JWT, hooks, callback) answered with a precise 401/403/503 or a redirect, then for
// readers the MaxReaders slot and the cut when their read token or JWT expires. Plain HTTP reads,
// declared streams, transcoded streams and Launch/Source feeds all pass through it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { authPolicy, credentialsFrom, cutAtExpiry, redactUrl, type AuthDecision, type AuthRequest } from '../../access/auth.js';
import type { ConnectionInfo } from '../../access/connections.js';
import { acquireReaderSlot } from '../../access/limits.js';
import type { ServerContext } from '../../server-context.js';
import { sendText } from './respond.js';

export type AllowDecision = Extract<AuthDecision, { kind: 'allow' }>;

/**
 * Runs the authorisation policy for an HTTP publish or read, then `serve` with the decision when allowed;
 * otherwise answers 401/403/503 or redirects, with one log line (sendRefusal). Never throws.
 */
export function authorizeHttp(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  conn: ConnectionInfo,
  what: Pick<AuthRequest, 'action' | 'feed' | 'stream'>,
  url: URL,
  serve: (decision: AllowDecision) => void | Promise<void>,
): void {
  const request: AuthRequest = {
    ...what,
    protocol: 'http',
    address: conn.remoteAddress,
    credentials: credentialsFrom(url.searchParams, req.headers.authorization),
  };
  void authPolicy(ctx)
    .authorize(request)
    .then(async (decision) => {
      if (res.destroyed || res.headersSent) return;
      if (decision.kind === 'allow') return serve(decision);
      sendRefusal(ctx, res, request, decision);
    })
    .catch((err: unknown) => {
      ctx.log.error('request failed', { url: redactUrl(req.url), err });
      if (!res.headersSent) sendText(res, 500, 'Internal error; the server log has the details.');
      else res.destroy();
    });
}

/**
 * Lets an authorised reader in: takes its MaxReaders slot of the feed or stream (released when the
 * response closes; 503 when none is left) and closes the response when the read token or JWT that
 * admitted it expires. Returns false when the reader was refused (the answer is sent).
 */
export function admitReader(
  ctx: ServerContext,
  res: ServerResponse,
  conn: ConnectionInfo,
  resource: { feed?: string; stream?: string },
  decision: AllowDecision,
): boolean {
  const slot = acquireReaderSlot(ctx, resource);
  if (typeof slot === 'string') {
    ctx.log.warn('reader refused: MaxReaders', { ...resource, from: conn.remoteAddress });
    sendText(res, 503, slot, { 'Retry-After': '5' });
    return false;
  }
  const target = resource.stream ?? resource.feed ?? '?';
  // An HTTP body without framing ends with the connection: destroying it is the end the client sees.
  const disarm = cutAtExpiry(ctx, decision, { protocol: 'http', target, from: conn.remoteAddress }, () => res.destroy());
  res.once('close', () => {
    disarm();
    slot.release();
  });
  return true;
}

/** Answers a refused publish or read (401 with a challenge, 403, 503, or a 302 redirect) and logs it once. */
export function sendRefusal(
  ctx: ServerContext,
  res: ServerResponse,
  request: AuthRequest,
  decision: Exclude<AuthDecision, { kind: 'allow' }>,
): void {
  const target = request.stream ?? request.feed ?? '?';
  if (decision.kind === 'redirect') {
    ctx.log.info('redirected by the authorisation policy', { action: request.action, target, from: request.address });
    res.writeHead(302, { Location: decision.location, 'Content-Length': '0', 'Cache-Control': 'no-cache' });
    res.end();
    return;
  }
  ctx.log.warn(`${request.action} refused`, {
    protocol: request.protocol,
    target,
    from: request.address,
    status: decision.status,
    reason: decision.reason,
  });
  const headers: Record<string, string> =
    decision.status === 401
      ? { 'WWW-Authenticate': 'Bearer realm="feedcast"' }
      : decision.status === 503
        ? { 'Retry-After': '5' }
        : {};
  sendText(res, decision.status, decision.reason, headers);
}
