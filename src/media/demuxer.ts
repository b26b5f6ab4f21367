// The contract between an ingest byte stream's demuxer (MPEG-TS, FLV, ...) and whoever feeds
// its output into a Feed. A demuxer is a framer: it buffers partial input itself.

import type { Frame } from './frame.js';
import type { Track } from './track.js';

export interface DemuxerSink {
  /**
   * Called once the demuxer knows every track it will deliver (codec and, where the codec has
   * one, its config: avcC, AudioSpecificConfig...), before the first frame of those tracks, and
   * again with the whole list whenever a track's config changes (new SPS, new sample rate).
   */
  onTracks(tracks: readonly Track[]): void;
  /** One access unit. Times are the input's own, unwrapped to a continuous 90 kHz count. */
  onFrame(frame: Frame): void;
  /** A recoverable problem (a corrupt PES, an unsupported codec skipped): counted and logged. */
  onWarning?(message: string): void;
}

export interface Demuxer {
  /** Feeds more input. Throws MalformedInputError when the stream cannot be followed any more. */
  push(chunk: Buffer): void;
  /** The input ended: flush whatever complete frame is still held. */
  end(): void;
  /** The input went away: drop what is held and give back shared budgets (idempotent). */
  close?(): void;
}

/** A muxer for a byte-stream output format: made once per (stream, format), shared by readers. */
export interface StreamMuxer {
  /** MIME type of the output. */
  readonly contentType: string;
  /**
   * What a new reader must receive first, for the tracks in force now: file header, codec
   * configs (FLV: header + onMetaData + sequence headers; TS: PAT + PMT).
   */
  header(): Buffer;
  /** Tracks changed (publisher came back with new parameters): returns bytes to send in-line, if any. */
  updateTracks(tracks: readonly Track[]): Buffer | undefined;
  /** One frame, muxed. Returns an empty buffer for a frame the format cannot carry. */
  mux(frame: Frame): Buffer;
  /** Whether this muxer carries the frames of `track` (a format without a codec skips its frames). */
  carries?(track: Track): boolean;
}
