// The error classes every part of Feedcast throws: one base class with a stable code
// (listed in docs/errors.md) and a few subclasses that carry the context a user needs.

export const ErrorCode = {
  malformedInput: 'FC_ERR_MALFORMED_INPUT',
  limitExceeded: 'FC_ERR_LIMIT_EXCEEDED',
  protocol: 'FC_ERR_PROTOCOL',
  config: 'FC_ERR_CONFIG',
  process: 'FC_ERR_PROCESS',
  clientTooSlow: 'FC_ERR_CLIENT_TOO_SLOW',
  unsupported: 'FC_ERR_UNSUPPORTED',
  feedBusy: 'FC_ERR_FEED_BUSY',
  frameTooLarge: 'FC_ERR_FRAME_TOO_LARGE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class FeedcastError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bytes that do not follow their format. `offset` is absolute within the parsed input. */
export class MalformedInputError extends FeedcastError {
  readonly format: string;
  readonly offset: number;
  constructor(format: string, offset: number, detail: string) {
    super(ErrorCode.malformedInput, `${format}: ${detail} (at offset ${offset})`);
    this.format = format;
    this.offset = offset;
  }
}

/** A size, count or rate above a configured maximum. */
export class LimitExceededError extends FeedcastError {
  readonly limit: number;
  readonly actual: number;
  constructor(what: string, actual: number, limit: number, code: ErrorCode = ErrorCode.limitExceeded) {
    super(code, `${what}: ${actual} exceeds the limit of ${limit}`);
    this.limit = limit;
    this.actual = actual;
  }
}

/** The peer broke a handshake or the protocol's state machine. */
export class ProtocolError extends FeedcastError {
  constructor(protocol: string, detail: string) {
    super(ErrorCode.protocol, `${protocol}: ${detail}`);
  }
}

/** A config file or value that cannot be used. `where` is `file:line` or a key path. */
export class ConfigError extends FeedcastError {
  readonly where: string;
  constructor(where: string, detail: string) {
    super(ErrorCode.config, `${where}: ${detail}`);
    this.where = where;
  }
}

/** A child process that failed to start or died. */
export class ProcessError extends FeedcastError {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderrTail: readonly string[];
  constructor(what: string, exitCode: number | null, signal: string | null, stderrTail: readonly string[]) {
    const how = signal !== null ? `signal ${signal}` : `exit code ${String(exitCode)}`;
    const tail = stderrTail.length > 0 ? `: ${stderrTail.join(' | ')}` : '';
    super(ErrorCode.process, `${what} ended with ${how}${tail}`);
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderrTail = stderrTail;
  }
}

/** A reader that stayed behind the live edge for too long. */
export class ClientTooSlowError extends FeedcastError {
  constructor(detail: string) {
    super(ErrorCode.clientTooSlow, detail);
  }
}

/** Input that is valid but uses something Feedcast does not handle (a codec, a format). */
export class UnsupportedError extends FeedcastError {
  constructor(detail: string) {
    super(ErrorCode.unsupported, detail);
  }
}

/**
 * A frame over a per-frame cap (NAL units in one access unit, or bytes an output format can carry):
 * the frame is dropped and counted, the feed and its readers go on.
 */
export class FrameTooLargeError extends LimitExceededError {
  constructor(what: string, actual: number, limit: number) {
    super(what, actual, limit, ErrorCode.frameTooLarge);
  }
}

/** A second publisher for a feed whose publisher is still sending. */
export class FeedBusyError extends FeedcastError {
  readonly feed: string;
  constructor(feed: string, detail: string) {
    super(ErrorCode.feedBusy, `feed ${feed} is busy: ${detail}`);
    this.feed = feed;
  }
}
