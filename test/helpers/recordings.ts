// The recordings API as the recording and playback tests read it.

import assert from 'node:assert/strict';
import type { RecordingsListing } from '../../src/record/listing.js';

/** GET /api/v1/recordings/FEED of the server at `base` (http://HOST:PORT), which must answer 200. */
export async function recordingsListing(base: string, feed: string): Promise<RecordingsListing> {
  const res = await fetch(`${base}/api/v1/recordings/${feed}`);
  assert.equal(res.status, 200);
  return (await res.json()) as RecordingsListing;
}
