// HTTP's side of access/ (docs/security.md): readers are admitted by ctx.access.admit() (policy, MaxReaders,
// MaxBandwidth, on-demand source, the cut when their read token or JWT expires) and refusals answered with a
// precise 401/403/404/503 or a redirect; publishers are checked by the policy alone. Plain HTTP reads,
// time-shift, declared streams, transcoded streams and Launch/Source feeds all pass through it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Admission, ReadProtocol, ReadTarget, Refusal } from '../../access/access.js';
import { credentialsFrom, redactUrl, type AuthDecision, type AuthRequest } from '../../access/auth.js';
import type { ConnectionInfo } from '../../access/connections.js';
import type { ProtocolContext } from '../protocol-context.js';
import { sendText } from './respond.js';

/**
 * Runs the authorisation policy for an HTTP publish, then `serve` when allowed; otherwise answers
 * 401/403/503 or redirects, with one log line (sendRefusal). Never throws.
 */
export function authorizeHttp(
  ctx: ProtocolContext,
  req: IncomingMessage,
  res: ServerResponse,
  conn: ConnectionInfo,
  what: Pick<AuthRequest, 'action' | 'feed' | 'stream'>,
  url: URL,
  serve: () => void | Promise<void>,
): void {
  const request: AuthRequest = {
    ...what,
    protocol: 'http',
    address: conn.remoteAddress,
    credentials: credentialsFrom(url.searchParams, req.headers.authorization),
  };
  void ctx.access
    .authorize(request)
    .then(async (decision) => {
      if (res.destroyed || res.headersSent) return;
      if (decision.kind === 'allow') return serve();
      sendRefusal(ctx, res, request, decision);
    })
    .catch((err: unknown) => {
      ctx.log.error('request failed', { url: redactUrl(req.url), err });
      if (!res.headersSent) sendText(res, 500, 'Internal error; the server log has the details.');
      else res.destroy();
    });
}

/**
 * Admits an HTTP reader (access/admit: policy, MaxReaders, MaxBandwidth, on-demand source) and runs
 * `serve`; the admission is released when the response closes, and the response is cut when the read
 * token or JWT that admitted it expires. A refusal is answered (sendAdmissionRefusal). Never throws.
 */
export function admitHttp(
  ctx: ProtocolContext,
  req: IncomingMessage,
  res: ServerResponse,
  conn: ConnectionInfo,
  target: ReadTarget | string,
  url: URL,
  serve: (admission: Admission) => void | Promise<void>,
  protocol: ReadProtocol = 'http',
): void {
  void ctx.access
    .admit({
      protocol,
      target,
      address: conn.remoteAddress,
      credentials: credentialsFrom(url.searchParams, req.headers.authorization),
    })
    .then(async (admission) => {
      if (admission.kind === 'refused') {
        if (!res.destroyed && !res.headersSent) sendAdmissionRefusal(res, admission);
        return;
      }
      if (res.destroyed || res.headersSent) {
        admission.release();
        return;
      }
      res.once('close', admission.release);
      // An HTTP body without framing ends with the connection: destroying it is the end the client sees.
      admission.cutAtExpiry(() => res.destroy());
      conn.targetKbps = admission.costKbps();
      return serve(admission);
    })
    .catch((err: unknown) => {
      ctx.log.error('request failed', { url: redactUrl(req.url), err });
      if (!res.headersSent) sendText(res, 500, 'Internal error; the server log has the details.');
      else res.destroy();
    });
}

/** Answers a refused reader: 401 with a challenge, 403, 404, 503 with Retry-After, or a 302 redirect. */
export function sendAdmissionRefusal(res: ServerResponse, refusal: Refusal, headers: Record<string, string> = {}): void {
  if (refusal.cause === 'redirect') {
    res.writeHead(302, { ...headers, Location: refusal.location ?? '/', 'Content-Length': '0', 'Cache-Control': 'no-cache' });
    res.end();
    return;
  }
  const extra: Record<string, string> =
    refusal.status === 401
      ? { 'WWW-Authenticate': 'Bearer realm="feedcast"' }
      : refusal.status === 503
        ? { 'Retry-After': refusal.cause === 'bandwidth' ? '10' : '5' }
        : {};
  sendText(res, refusal.status, refusal.reason, { ...headers, ...extra });
}

/** Answers a refused publish or read (401 with a challenge, 403, 503, or a 302 redirect) and logs it once. */
export function sendRefusal(
  ctx: ProtocolContext,
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
