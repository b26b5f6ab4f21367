// RecordRetention: which recordings go, oldest first: those older than the age limit, then as many
// as needed to bring the total under the size limit. The file being written never goes. Pure.

import { current, type RecordingEntry } from './recording-index.js';

export interface RetentionLimits {
  maxAgeMs: number | undefined;
  maxBytes: number | undefined;
}

/** The entries to delete, oldest first. */
export function retentionVictims(entries: readonly RecordingEntry[], limits: RetentionLimits, nowMs: number): RecordingEntry[] {
  const sorted = entries.map((e) => ({ e, now: current(e) })).sort((a, b) => a.now.startWallMs - b.now.startWallMs);
  let total = sorted.reduce((n, x) => n + x.now.bytes, 0);
  const victims: RecordingEntry[] = [];
  for (const { e, now } of sorted) {
    if (e.live !== undefined) continue;
    const tooOld = limits.maxAgeMs !== undefined && now.endWallMs < nowMs - limits.maxAgeMs;
    const tooBig = limits.maxBytes !== undefined && total > limits.maxBytes;
    if (!tooOld && !tooBig) break;
    victims.push(e);
    total -= now.bytes;
  }
  return victims;
}
