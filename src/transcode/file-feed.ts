// A file-backed <Stream> (ffserver's `File`, ref §2.5) as a private feed, for RTSP: an ffmpeg child reads the file at
// its own pace (-re), copies its streams into MPEG-TS, and Feedcast demuxes that into a derived feed that one RTSP
// connection plays. rewind() starts the file again from its first frame (at PLAY, so each viewer gets the file from
// its start); at the file's end (no loop) the feed closes, which ends its readers.

import { spawn, type ChildProcess } from 'node:child_process';
import type { StreamConfig } from '../config/config.js';
import type { Feed, PublisherSession } from '../feed/feed.js';
import { TsDemuxer } from '../formats/mpegts/ts-demuxer.js';
import type { Logger } from '../observability/logger.js';
import { withParentDeathSignal } from '../process/ffmpeg-process.js';
import { fileStreamArgs } from './ffmpeg-args.js';
import type { DerivedFeeds } from './transcoder.js';

let nextId = 1;

export class FileFeed {
  readonly feed: Feed;
  private readonly stream: StreamConfig & { file: string };
  private readonly feeds: DerivedFeeds;
  private readonly ffmpegPath: string;
  private readonly log: Logger;
  private child: ChildProcess | undefined;
  private session: PublisherSession | undefined;
  private stderrTail = '';
  private closed = false;
  /** Why the last ffmpeg run failed before its first frame, if it did. */
  failure: string | undefined;

  constructor(stream: StreamConfig & { file: string }, feeds: DerivedFeeds, ffmpegPath: string, log: Logger) {
    this.stream = stream;
    this.feeds = feeds;
    this.ffmpegPath = ffmpegPath;
    this.feed = feeds.derive(`${stream.name}~file${nextId++}`);
    this.log = log.child({ stream: stream.name, file: stream.file });
  }

  /** Starts reading the file unless a run is going on. */
  ensureStarted(): void {
    if (this.child === undefined && !this.closed) this.run();
  }

  /** Reads the file again from its start: the running child stops and the feed's GOP cache goes with its session. */
  rewind(): void {
    if (this.closed) return;
    this.stopRun('rewound');
    this.run();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopRun('closed');
    this.feeds.removeDerived(this.feed);
  }

  private stopRun(reason: string): void {
    const child = this.child;
    this.child = undefined;
    this.session?.end(reason);
    this.session = undefined;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  private run(): void {
    const s = this.stream;
    const args = fileStreamArgs(s.file, {
      muxer: 'mpegts',
      loop: s.loop,
      inputFormat: s.inputFormat,
      noAudio: s.noAudio,
      noVideo: s.noVideo,
    });
    const [command, argv] = withParentDeathSignal(this.ffmpegPath, args);
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.stderrTail = '';
    const session = this.feed.attachPublisher({ protocol: 'file', remoteAddress: s.file, startedAt: new Date() });
    this.session = session;
    let frames = 0;
    const demuxer = new TsDemuxer({
      onTracks: (tracks) => session.setTracks(tracks),
      onFrame: (frame) => {
        frames++;
        session.write(frame);
      },
      onWarning: (message) => this.log.debug('file stream', { warning: message }),
    });
    child.stdout.on('data', (chunk: Buffer) => {
      session.touch(chunk.length);
      try {
        demuxer.push(chunk);
      } catch (err) {
        this.log.warn('file stream: ffmpeg output cannot be read', { err });
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (d: Buffer) => (this.stderrTail = (this.stderrTail + d.toString()).slice(-2000)));
    child.on('error', (err) => {
      this.failure = `ffmpeg could not start (${err.message})`;
      this.log.warn('file stream: ffmpeg failed to start', { err });
    });
    child.on('close', (code) => {
      // The last PES of each track is complete only at the end of the input.
      if (this.session === session) demuxer.end();
      else demuxer.close();
      if (this.child === child) this.child = undefined;
      if (frames === 0 && !this.closed && this.session === session) {
        this.failure = `ffmpeg could not read ${s.file} (exit ${String(code)}): ${this.stderrTail.trim().split('\n').slice(-2).join(' | ')}`;
        this.log.warn('file stream failed', { reason: this.failure });
      }
      // The end of the file ends its viewers at once (a live feed would wait PublisherGracePeriod for its publisher).
      if (this.session === session) this.close();
    });
  }
}
