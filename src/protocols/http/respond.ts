// Plain responses with a clear message: every refusal says what was wrong and how to fix it.

import type { ServerResponse } from 'node:http';
import { escapeHtml, htmlPage } from './html.js';

export function sendText(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = message.endsWith('\n') ? message : message + '\n';
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-cache',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(html)),
    'Cache-Control': 'no-cache',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : html);
}

export function sendRedirect(res: ServerResponse, url: string): void {
  const html = htmlPage('Moved', `<p>Moved to <a href="${escapeHtml(url)}">${escapeHtml(url)}</a></p>`);
  sendHtml(res, 301, html, { Location: url });
}

/** The 503 written straight to a socket that is over MaxClients, before any request is read. */
export function tooBusyResponse(message: string): string {
  const body = `${message}\n`;
  return (
    `HTTP/1.1 503 Server too busy\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n${body}`
  );
}
