// A Logger that records what it is told, for asserting log lines (level, message, fields with the
// fields bound by child loggers).

import type { LogFields, Logger } from '../../src/observability/logger.js';

export interface LogLine {
  level: string;
  msg: string;
  fields: LogFields;
}

/** A logger that pushes every line to `lines`. */
export function recordingLogger(lines: LogLine[], bound: LogFields = {}): Logger {
  const at =
    (level: string) =>
    (msg: string, fields?: LogFields): void => {
      lines.push({ level, msg, fields: { ...bound, ...fields } });
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (f) => recordingLogger(lines, { ...bound, ...f }),
  };
}
