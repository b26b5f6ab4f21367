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

function serialise(value: unknown): unknown {
  if (value instanceof Error)
    return { name: value.name, message: value.message, ...('code' in value ? { code: value.code } : {}) };
  return value;
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
    const text = typeof s === 'string' ? s : JSON.stringify(s);
    return `${k}=${text !== undefined && /\s/.test(text) ? JSON.stringify(text) : String(text)}`;
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
