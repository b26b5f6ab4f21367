// hls-parser in strict mode as the oracle of playlist syntax and RFC 8216bis rules (issue 24, item 10).

import assert from 'node:assert/strict';
import * as HLS from 'hls-parser';

/** Parses `text` strictly; a failure names the form and shows the playlist. */
export function strictParse(text: string, form: string): HLS.types.Playlist {
  HLS.setOptions({ strictMode: true });
  try {
    return HLS.parse(text);
  } catch (err) {
    assert.fail(`${form}: ${err instanceof Error ? err.message : String(err)}\n${text}`);
  }
}
