// The access log (ffserver's CustomLog) in the Common Log Format:
// host ident authuser [date] "request" status bytes

import { createWriteStream, type WriteStream } from 'node:fs';

export interface AccessRecord {
  remoteAddress: string;
  method: string;
  url: string;
  httpVersion: string;
  status: number;
  bytes: number;
  at: Date;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function formatClfDate(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const offsetMin = -d.getTimezoneOffset();
  const sign = offsetMin >= 0 ? '+' : '-';
  const abs = Math.abs(offsetMin);
  return `${pad(d.getDate())}/${MONTHS[d.getMonth()] ?? '???'}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
}

export function formatClfLine(r: AccessRecord): string {
  // Quotes and control characters in the request line would break the format: escape them.
  const request = `${r.method} ${r.url} HTTP/${r.httpVersion}`.replace(
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    /["\\\x00-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return `${r.remoteAddress} - - [${formatClfDate(r.at)}] "${request}" ${r.status} ${r.bytes > 0 ? r.bytes : '-'}`;
}

export class AccessLog {
  private readonly out: WriteStream | NodeJS.WriteStream;

  /** `target` is a file path (appended to) or `-` for standard output. */
  constructor(target: string) {
    this.out = target === '-' ? process.stdout : createWriteStream(target, { flags: 'a' });
  }

  write(record: AccessRecord): void {
    this.out.write(formatClfLine(record) + '\n');
  }

  close(): void {
    if (this.out !== process.stdout) (this.out as WriteStream).end();
  }
}
