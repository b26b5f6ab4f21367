// `feedcast publish INPUT URL`: ffserver's division of labour (ref §3.2). It fetches the encodings
// the feed's streams need (GET FEED.ffm?config), runs one ffmpeg encoding every variant from INPUT
// into one multi-track MPEG-TS on its stdout, and pushes that as a long chunked POST. When the
// server goes away or refuses for a while (busy), ffmpeg keeps running, its output is dropped,
// and the POST is retried with capped backoff, starting again on a TS packet boundary.

import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ProcessError, ProtocolError } from '../errors.js';
import { backoffDelayMs } from '../process/ffmpeg-process.js';
import { defaultPublishMaps, publishArgs, resolveFfmpeg, type PublishVariant } from '../transcode/ffmpeg-args.js';
import { handshakeUrl, parsePublishArgs, PUBLISH_USAGE, type PublishCommand } from './args.js';

export interface PublishIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: PublishIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

const TS_PACKET = 188;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A POST that stays connected this long resets the backoff. */
const STABLE_MS = 10_000;
/** No byte accepted by the server for this long: the connection is given up. */
const STALL_MS = 20_000;
const MAX_HANDSHAKE_BYTES = 1024 * 1024;

/** One variant as the handshake document lists it (src/transcode/encodings.ts encodingsDocument). */
interface DocVariant {
  index: number;
  streams: string[];
  video?: { encoder: string; codec: string | null; width: number; height: number; bitRateKbps: number | null; options: string[] };
  audio?: { encoder: string; codec: string | null; bitRateKbps: number | null; options: string[] };
}

export interface EncodingsDoc {
  feed: string;
  version: number;
  variants: DocVariant[];
  serverSide: { stream: string; format: string; reason: string }[];
}

type Handshake = { kind: 'ok'; doc: EncodingsDoc } | { kind: 'retry'; reason: string } | { kind: 'fatal'; reason: string };

function isStringArray(x: unknown): x is string[] {
  return Array.isArray(x) && x.every((s) => typeof s === 'string');
}

/** Checks the shape of the handshake document (it comes from the network). */
export function parseEncodingsDoc(text: string): EncodingsDoc {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ProtocolError('publish handshake', `the server's answer is not JSON: ${text.slice(0, 120)}`);
  }
  const d = doc as Partial<EncodingsDoc> | null;
  if (d === null || typeof d !== 'object' || d.version !== 1 || !Array.isArray(d.variants)) {
    throw new ProtocolError('publish handshake', 'the answer is not an encodings document of version 1');
  }
  for (const v of d.variants) {
    const ok =
      typeof v === 'object' &&
      (v.video === undefined || (typeof v.video.encoder === 'string' && isStringArray(v.video.options))) &&
      (v.audio === undefined || (typeof v.audio.encoder === 'string' && isStringArray(v.audio.options)));
    if (!ok) throw new ProtocolError('publish handshake', `variant ${String(v.index)} has no encoder or options`);
  }
  return { feed: String(d.feed), version: 1, variants: d.variants, serverSide: Array.isArray(d.serverSide) ? d.serverSide : [] };
}

export function variantsOfDoc(doc: EncodingsDoc): PublishVariant[] {
  return doc.variants.map((v) => ({
    video: v.video !== undefined ? { encoder: v.video.encoder, options: v.video.options } : undefined,
    audio: v.audio !== undefined ? { encoder: v.audio.encoder, options: v.audio.options } : undefined,
  }));
}

function describeVariant(v: DocVariant): string {
  const parts: string[] = [];
  if (v.video !== undefined)
    parts.push(`${v.video.codec ?? v.video.encoder} ${v.video.width}x${v.video.height} ${v.video.bitRateKbps ?? '?'}k`);
  if (v.audio !== undefined) parts.push(`${v.audio.codec ?? v.audio.encoder} ${v.audio.bitRateKbps ?? '?'}k`);
  return `${v.streams.join(', ')}: ${parts.join(' + ')}`;
}

function requestFor(url: URL): typeof httpRequest {
  return url.protocol === 'https:' ? httpsRequest : httpRequest;
}

/** ffserver's first connection: which encodings the feed's streams need. */
export function fetchEncodings(feedUrl: URL): Promise<Handshake> {
  const url = handshakeUrl(feedUrl);
  return new Promise((resolve) => {
    const req = requestFor(url)(url, { method: 'GET', agent: false, headers: { Accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (body.length > MAX_HANDSHAKE_BYTES) req.destroy(new Error('the answer is over 1 MiB'));
      });
      res.on('error', (err) => resolve({ kind: 'retry', reason: err.message }));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const said = body.trim().slice(0, 300);
        if (status === 200) {
          try {
            resolve({ kind: 'ok', doc: parseEncodingsDoc(body) });
          } catch (err) {
            resolve({ kind: 'fatal', reason: (err as Error).message });
          }
        } else if (status === 404 || status === 405) {
          resolve({
            kind: 'fatal',
            reason: `the server has no declared feed at ${feedUrl.pathname} (${status}: ${said}). Check the URL, or use --no-handshake for a dynamic feed.`,
          });
        } else if (status >= 400 && status < 500) {
          resolve({ kind: 'fatal', reason: `the server refused the handshake (${status}): ${said}` });
        } else {
          resolve({ kind: 'retry', reason: `the server answered ${status}: ${said}` });
        }
      });
    });
    req.setTimeout(HANDSHAKE_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${HANDSHAKE_TIMEOUT_MS / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ kind: 'retry', reason: `${url.host}: ${err.code ?? err.message}` }),
    );
    req.end();
  });
}

type PostEnd = { kind: 'finished' } | { kind: 'retry'; reason: string; connectedMs: number } | { kind: 'fatal'; reason: string };

/** Runs the publisher until the input ends (0), a fatal error (1) or a signal (0). */
export class PublishRun {
  private readonly cmd: PublishCommand;
  private readonly io: PublishIo;
  private readonly ffmpegPath: string;
  private child: ChildProcess | undefined;
  private childExit: Promise<{ code: number | null; signal: string | null }> | undefined;
  private stderrTail: string[] = [];
  /** Bytes read from ffmpeg so far: a multiple of 188 is a TS packet boundary. */
  private produced = 0;
  private post: ClientRequest | undefined;
  /** Set while a POST takes bytes; cleared when it ends. */
  private sending = false;
  private variantsKey = '';
  private stopping = false;
  private failures = 0;
  private wake: (() => void) | undefined;
  private bytesSent = 0;
  private bytesSentThisPost = 0;
  /** Whether ffmpeg ever wrote output in this run (a silent failure at the start is fatal). */
  private everProduced = false;
  /** How the last ffmpeg ended, once it has. */
  private lastExit: { code: number | null; signal: string | null } | undefined;

  constructor(cmd: PublishCommand, io: PublishIo, ffmpegPath: string) {
    this.cmd = cmd;
    this.io = io;
    this.ffmpegPath = ffmpegPath;
  }

  private say(text: string): void {
    this.io.err(`feedcast publish: ${text}\n`);
  }

  /** Stops ffmpeg and the POST (signals). */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.post?.destroy();
    if (this.child?.pid !== undefined && this.child.exitCode === null) {
      try {
        process.kill(-this.child.pid, 'SIGTERM');
      } catch {
        this.child.kill('SIGTERM');
      }
    }
    this.wake?.();
  }

  async run(): Promise<number> {
    while (!this.stopping) {
      let variants: PublishVariant[] = [];
      if (this.cmd.handshake) {
        const hs = await fetchEncodings(this.cmd.url);
        if (hs.kind === 'fatal') {
          this.say(hs.reason);
          await this.stopFfmpeg();
          return 1;
        }
        if (hs.kind === 'retry') {
          if (!(await this.backoff(`cannot reach the server (${hs.reason})`))) return this.gaveUp();
          continue;
        }
        variants = variantsOfDoc(hs.doc);
        const key = JSON.stringify(variants);
        if (key !== this.variantsKey) {
          if (this.child !== undefined) this.say('the server now wants other encodings: restarting ffmpeg');
          await this.stopFfmpeg();
          this.variantsKey = key;
          this.say(
            hs.doc.variants.length > 0
              ? `feed ${hs.doc.feed} wants ${hs.doc.variants.length} variant(s): ${hs.doc.variants.map(describeVariant).join('; ')}`
              : `feed ${hs.doc.feed} declares no encodings: publishing H.264 + AAC`,
          );
          for (const s of hs.doc.serverSide) this.say(`${s.stream} (${s.format}) is ${s.reason}`);
        }
      }
      if (this.child === undefined) {
        if (this.lastExit?.code === 0) {
          this.say(`the input ended; ${this.bytesSent} bytes sent`);
          return 0;
        }
        if (!this.startFfmpeg(variants)) return 1;
      }
      const end = await this.push();
      if (end.kind === 'finished') {
        this.say(`the input ended; ${this.bytesSent} bytes sent`);
        return 0;
      }
      if (end.kind === 'fatal') {
        this.say(end.reason);
        await this.stopFfmpeg();
        return 1;
      }
      if (this.stopping) break;
      if (end.connectedMs >= STABLE_MS) this.failures = 0;
      if (!(await this.backoff(end.reason))) return this.gaveUp();
    }
    await this.stopFfmpeg();
    return 0;
  }

  private async gaveUp(): Promise<number> {
    await this.stopFfmpeg();
    if (this.stopping) return 0;
    this.say(`giving up after ${this.failures} failed attempts in a row (--retries)`);
    return 1;
  }

  /** Waits the backoff delay; false when --retries is used up. */
  private async backoff(reason: string): Promise<boolean> {
    this.failures++;
    if (this.cmd.retries !== undefined && this.failures > this.cmd.retries) {
      this.say(reason);
      return false;
    }
    const delay = backoffDelayMs(this.failures, { initialMs: 500, maxMs: this.cmd.maxBackoffMs, stableMs: STABLE_MS });
    this.say(`${reason}; retrying in ${(delay / 1000).toFixed(1)} s`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, delay);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
    this.wake = undefined;
    return !this.stopping;
  }

  private startFfmpeg(variants: readonly PublishVariant[]): boolean {
    const args = ffmpegArgsOf(this.cmd, variants);
    this.stderrTail = [];
    this.produced = 0;
    let child: ChildProcess;
    try {
      // Own process group: the signals we get are ours to pass on; ffmpeg dies on EPIPE if we die.
      child = spawn(this.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      this.say(`cannot start ${this.ffmpegPath}: ${String(err)}`);
      return false;
    }
    this.child = child;
    this.childExit = new Promise((resolve) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        this.stderrTail.push(`cannot start ${this.ffmpegPath}: ${err.code ?? err.message}`);
        resolve({ code: null, signal: null });
      });
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    this.lastExit = undefined;
    // childExit never rejects: spawn errors resolve it with code null.
    this.childExit
      .then((exit) => {
        this.lastExit = exit;
        if (this.child === child) this.child = undefined;
      })
      .catch(ignoreUnexpected);
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      const lines = (partial + d).split(/\r?\n|\r/);
      partial = (lines.pop() ?? '').slice(-2000);
      for (const line of lines) {
        if (line.trim() === '') continue;
        this.stderrTail.push(line.trim().slice(0, 500));
        if (this.stderrTail.length > 20) this.stderrTail.shift();
        this.io.err(`ffmpeg: ${line}\n`);
      }
    });
    child.stdout?.on('data', (d: Buffer) => this.onOutput(d));
    this.say(`ffmpeg ${args.join(' ')}`);
    return true;
  }

  /** ffmpeg's MPEG-TS: into the POST when one is connected, else dropped. */
  private onOutput(d: Buffer): void {
    const at = this.produced;
    this.produced += d.length;
    this.everProduced = true;
    const post = this.post;
    if (post === undefined || !this.sending) return;
    let chunk = d;
    if (this.bytesSentThisPost === 0) {
      // A fresh connection starts on a packet boundary, or the server cannot recognise MPEG-TS.
      const skip = (TS_PACKET - (at % TS_PACKET)) % TS_PACKET;
      if (skip >= d.length) return;
      chunk = d.subarray(skip);
    }
    this.bytesSentThisPost += chunk.length;
    this.bytesSent += chunk.length;
    if (!post.write(chunk)) {
      this.child?.stdout?.pause();
      post.once('drain', () => this.child?.stdout?.resume());
    }
  }

  private async stopFfmpeg(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      const timer = setTimeout(() => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }, 3000);
      await this.childExit;
      clearTimeout(timer);
    }
    this.child = undefined;
  }

  /** ffserver's second connection: the POST, until it ends one way or another. */
  private push(): Promise<PostEnd> {
    const child = this.child;
    const exit = this.childExit;
    if (child === undefined || exit === undefined) return Promise.resolve({ kind: 'fatal', reason: 'ffmpeg is not running' });
    const url = this.cmd.url;
    const connectedAt = Date.now();
    return new Promise<PostEnd>((resolve) => {
      let settled = false;
      const settle = (end: PostEnd): void => {
        if (settled) return;
        settled = true;
        this.sending = false;
        this.post = undefined;
        child.stdout?.resume();
        resolve(end);
      };
      const req = requestFor(url)(url, {
        method: 'POST',
        agent: false,
        headers: { 'Content-Type': 'video/mp2t', 'Transfer-Encoding': 'chunked', 'User-Agent': 'feedcast-publish' },
      });
      this.post = req;
      this.bytesSentThisPost = 0;
      req.on('socket', (socket) => {
        const ready = (): void => {
          if (settled) return;
          this.sending = true;
          this.say(`pushing to ${url.origin}${url.pathname}`);
        };
        if (socket.connecting) socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', ready);
        else ready();
      });
      req.setTimeout(STALL_MS, () => req.destroy(new Error(`the server took nothing for ${STALL_MS / 1000} s`)));
      req.on('response', (res: IncomingMessage) => {
        // The server answers a publisher only to refuse it (or after the end): stop sending, read why.
        this.sending = false;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body = (body + d).slice(0, 2000)));
        res.on('end', () => {
          settle(this.answer(res.statusCode ?? 0, body.trim(), Date.now() - connectedAt));
          req.destroy();
        });
        res.on('error', () => settle({ kind: 'retry', reason: 'the answer was cut', connectedMs: Date.now() - connectedAt }));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const connectedMs = Date.now() - connectedAt;
        settle({ kind: 'retry', reason: `the connection to ${url.host} failed (${err.code ?? err.message})`, connectedMs });
      });
      req.on('close', () => {
        if (!settled)
          settle({ kind: 'retry', reason: `the server closed the connection`, connectedMs: Date.now() - connectedAt });
      });
      const watched = exit.then(({ code, signal }) => {
        if (settled) return;
        if (this.stopping) {
          settle({ kind: 'finished' });
          return;
        }
        if (code === 0) {
          // The input ended: finish the body and let the server answer (204).
          this.sending = false;
          req.end();
          req.once('close', () => settle({ kind: 'finished' }));
          return;
        }
        const error = new ProcessError('ffmpeg', code, signal, this.stderrTail.slice(-5));
        if (!this.everProduced) {
          settle({ kind: 'fatal', reason: `${error.message} before producing anything: check the input and its options` });
        } else {
          req.destroy();
          settle({ kind: 'retry', reason: error.message, connectedMs: Date.now() - connectedAt });
        }
      });
      watched.catch((err: unknown) => {
        req.destroy();
        settle({ kind: 'fatal', reason: `watching ffmpeg failed: ${err instanceof Error ? err.message : String(err)}` });
      });
    });
  }

  private answer(status: number, body: string, connectedMs: number): PostEnd {
    if (status >= 200 && status < 300) return { kind: 'retry', reason: `the server ended the push (${status})`, connectedMs };
    const said = body.slice(0, 300);
    if (status === 409 || status === 503 || status >= 500)
      return { kind: 'retry', reason: `the server refused the push for now (${status}: ${said})`, connectedMs };
    return { kind: 'fatal', reason: `the server refused the push (${status}): ${said}` };
  }
}

/** The ffmpeg command of a publish run: every variant from the input, MPEG-TS on stdout. */
export function ffmpegArgsOf(cmd: PublishCommand, variants: readonly PublishVariant[]): string[] {
  const { video, audio } = cmd.maps;
  const inputs = cmd.inputArgs.filter((a) => a === '-i').length;
  const defaults = defaultPublishMaps(inputs);
  return publishArgs(variants, 'pipe:1', {
    inputArgs: cmd.inputArgs,
    maps: { video: video ?? defaults.video, audio: audio ?? defaults.audio },
  });
}

/** `feedcast publish ...`: returns the exit status (0 done or stopped, 1 failed, 2 usage). */
export async function runPublishCommand(argv: readonly string[], io: PublishIo = stdio): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === 'help') {
    io.out(PUBLISH_USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  const parsed = parsePublishArgs(argv);
  if (!parsed.ok) {
    io.err(`feedcast publish: ${parsed.message}\n\n${PUBLISH_USAGE}`);
    return 2;
  }
  const cmd = parsed.command;
  const ffmpeg = resolveFfmpeg(cmd.ffmpeg);
  if (cmd.dryRun) {
    const hs = cmd.handshake ? await fetchEncodings(cmd.url) : undefined;
    if (hs !== undefined && hs.kind !== 'ok') {
      io.err(`feedcast publish: ${hs.reason}\n`);
      return 1;
    }
    const variants = hs?.kind === 'ok' ? variantsOfDoc(hs.doc) : [];
    const args = ffmpegArgsOf(cmd, variants);
    io.out(`${ffmpeg.ok ? ffmpeg.path : 'ffmpeg'} ${args.join(' ')} | POST ${cmd.url.href}\n`);
    return 0;
  }
  if (!ffmpeg.ok) {
    io.err(`feedcast publish: ${ffmpeg.reason.replace('set FFmpegPath in the config', 'pass --ffmpeg PATH')}\n`);
    return 1;
  }
  const runner = new PublishRun(cmd, io, ffmpeg.path);
  const onSignal = (): void => runner.stop();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await runner.run();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** For promises that cannot reject (they resolve on every path): a rejection would be a bug, so say it. */
function ignoreUnexpected(err: unknown): void {
  process.stderr.write(`feedcast publish: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}
