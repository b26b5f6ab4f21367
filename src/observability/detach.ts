// Promises nobody awaits (a read started from a callback, a close fired by an event) are handed to
// `detach`, so a rejection is logged with what was running and never becomes an unhandled rejection
// that ends the process (issue 25 item 1). Lint (no-floating-promises, `void` not exempt) sends every
// such call here; `installRejectionGuard` catches what slips past anyway.

import type { LogFields, Logger } from './logger.js';

/** Runs `promise` without waiting for it; a rejection is logged as "`what` failed" with `fields`. */
export function detach(promise: Promise<unknown>, log: Logger, what: string, fields: LogFields = {}): void {
  promise.catch((err: unknown) => {
    log.error(`${what} failed: ${err instanceof Error ? err.message : String(err)}`, { ...fields, err });
  });
}

/**
 * The last line of defence, for the server process: an unhandled rejection is a bug, so it is
 * logged (with its stack) and counted, and the server keeps serving everyone else. With
 * FEEDCAST_EXIT_ON_UNHANDLED=1 (set by the tests that run the server as a child) it exits with
 * code 70 instead, so a test fails on it.
 */
export function installRejectionGuard(log: Logger, env: NodeJS.ProcessEnv = process.env): { count: () => number } {
  let count = 0;
  const exitOnIt = env['FEEDCAST_EXIT_ON_UNHANDLED'] === '1';
  process.on('unhandledRejection', (reason: unknown) => {
    count++;
    const fields: LogFields = {
      err: reason,
      ...(reason instanceof Error && reason.stack !== undefined ? { stack: reason.stack } : {}),
      count,
    };
    if (exitOnIt) {
      log.error('unhandled promise rejection (a bug): exiting, as FEEDCAST_EXIT_ON_UNHANDLED=1 asks', fields);
      process.exit(70);
    }
    log.error('unhandled promise rejection (a bug): the server keeps serving; please report it', fields);
  });
  return { count: () => count };
}
