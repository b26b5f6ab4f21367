// Structured logs: one record a line. JSON when stdout is not a terminal (or FEEDCAST_LOG_FORMAT=json),
// a compact "time level msg key=value" line when it is.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: 'json' | 'pretty';
  write?: (line: string) => void;
}

export function createLogger(options: LoggerOptions = {}, bound: LogFields = {}): Logger {
  const envLevel = process.env['FEEDCAST_LOG_LEVEL'];
  const level: LogLevel =
    options.level ??
    (envLevel === 'debug' || envLevel === 'info' || envLevel === 'warn' || envLevel === 'error' ? envLevel : 'info');
  const envFormat = process.env['FEEDCAST_LOG_FORMAT'];
  const format =
    options.format ?? (envFormat === 'json' || envFormat === 'pretty' ? envFormat : process.stdout.isTTY ? 'pretty' : 'json');
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const min = LEVEL_ORDER[level];

  const log = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVEL_ORDER[lvl] < min) return;
    const record = { ...bound, ...fields };
    write(format === 'json' ? jsonLine(lvl, msg, record) : prettyLine(lvl, msg, record));
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    child: (fields) => createLogger({ level, format, write }, { ...bound, ...fields }),
  };
}

/** How deep a chain of causes is followed (a cause may be an error with its own cause...). */
const MAX_CAUSE_DEPTH = 8;

/**
 * An error as plain data: name, message, its own fields (code, errno, syscall, path, offset...),
 * stack and cause (followed to MAX_CAUSE_DEPTH), and an AggregateError's errors. JSON keeps the
 * stack's line breaks escaped, so a record stays one line.
 */
function serialise(value: unknown, depth = 0, seen = new Set<unknown>()): unknown {
  if (!(value instanceof Error)) return value;
  if (seen.has(value)) return '[circular]';
  if (depth > MAX_CAUSE_DEPTH) return `[${value.name}: ${value.message}]`;
  seen.add(value);
  const out: Record<string, unknown> = { name: value.name, message: value.message };
  for (const [k, v] of Object.entries(value)) {
    if (k === 'cause' || k === 'errors' || k === 'stack' || k === 'message' || k === 'name') continue;
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) out[k] = v;
  }
  if (value.stack !== undefined) out['stack'] = value.stack;
  if (value.cause !== undefined) out['cause'] = serialise(value.cause, depth + 1, seen);
  if (value instanceof AggregateError) out['errors'] = (value.errors as unknown[]).map((e) => serialise(e, depth + 1, seen));
  return out;
}

function jsonLine(level: LogLevel, msg: string, fields: LogFields): string {
  const out: LogFields = { time: new Date().toISOString(), level, msg };
  for (const [k, v] of Object.entries(fields)) out[k] = serialise(v);
  return JSON.stringify(out);
}

function prettyLine(level: LogLevel, msg: string, fields: LogFields): string {
  const time = new Date().toISOString().slice(11, 23);
  const parts = Object.entries(fields).map(([k, v]) => {
    const s = serialise(v);
    // Strings with spaces are quoted; anything else is JSON already, which delimits itself.
    if (typeof s === 'string') return `${k}=${/\s/.test(s) ? JSON.stringify(s) : s}`;
    return `${k}=${String(JSON.stringify(s))}`;
  });
  return `${time} ${level.toUpperCase().padEnd(5)} ${msg}${parts.length > 0 ? ' ' + parts.join(' ') : ''}`;
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
