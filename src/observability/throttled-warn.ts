// Repeated per-frame problems are logged at most once a second, with the count of the ones held
// back (STYLE.md §3), so a broken publisher cannot flood the log.

import type { Logger } from './logger.js';

export function throttledWarner(log: Logger, intervalMs = 1000): (message: string) => void {
  let last = 0;
  let suppressed = 0;
  return (message) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    log.warn(message, suppressed > 0 ? { alsoSuppressed: suppressed } : undefined);
    last = now;
    suppressed = 0;
  };
}
