// File-backed <Stream>s over HTTP (ffserver's `File`, ref §2.5): each viewer gets the file from its start, at the
// file's own pace, its streams copied into the stream's container by an ffmpeg child of that viewer; looping
// only when the stream asks (`Loop`/MulticastAddress). The child ends with the response, and the response with it.

import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StreamConfig } from '../../config/config.js';
import type { Logger } from '../../observability/logger.js';
import { fileStreamArgs, resolveFfmpeg } from '../../transcode/ffmpeg-args.js';
import { sendText } from './respond.js';

/** Serves `stream.file` to one viewer. */
export function serveFileStream(
  req: IncomingMessage,
  res: ServerResponse,
  stream: StreamConfig,
  ffmpegPath: string | undefined,
  log: Logger,
): void {
  const file = stream.file;
  if (file === undefined) return sendText(res, 404, `/${stream.name} has no File.`);
  const ffmpeg = resolveFfmpeg(ffmpegPath);
  if (!ffmpeg.ok)
    return sendText(res, 503, `/${stream.name} is read from its file by ffmpeg, which cannot run: ${ffmpeg.reason}`);
  const contentType = stream.format.contentType;
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-cache' });
    res.end();
    return;
  }
  const args = fileStreamArgs(file, {
    muxer: stream.format.muxer === 'asf_stream' ? 'asf' : stream.format.muxer,
    loop: stream.loop,
    inputFormat: stream.inputFormat,
    noAudio: stream.noAudio,
    noVideo: stream.noVideo,
  });
  const child = spawn(ffmpeg.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  let started = false;
  const stop = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  res.on('close', stop);
  child.on('error', (err) => {
    log.warn('file stream: ffmpeg failed to start', { stream: stream.name, err });
    if (!res.headersSent) sendText(res, 503, `/${stream.name}: ffmpeg could not start (${err.message}).`);
  });
  child.stdout.on('data', (chunk: Buffer) => {
    if (!started) {
      started = true;
      res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-cache' });
    }
    if (!res.write(chunk)) {
      child.stdout.pause();
      res.once('drain', () => child.stdout.resume());
    }
  });
  child.on('close', (code) => {
    res.off('close', stop);
    if (!started) {
      const tail = stderr.trim().split('\n').slice(-2).join(' | ');
      if (!res.headersSent) sendText(res, 500, `/${stream.name}: ffmpeg could not read ${file} (exit ${String(code)}): ${tail}`);
      return;
    }
    res.end();
  });
}
