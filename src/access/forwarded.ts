// The client behind a trusted reverse proxy (TrustedProxy): read from X-Forwarded-For, the header
// nginx ($proxy_add_x_forwarded_for), HAProxy and CDNs append the peer they saw to. Only the hops
// added by trusted proxies can be believed, so the client is the nearest hop that is not one of them.

import type { Acl } from '../config/acl.js';
import { parseAddress } from '../config/acl.js';

/** More hops than this is not a proxy chain but an attempt to make the server work. */
export const MAX_FORWARDED_HOPS = 32;

export type ForwardedClient = { address: string } | { error: string };

/**
 * The client address for a request that reached us from `peer`, a trusted proxy. `header` is
 * X-Forwarded-For as Node gives it (repeated headers are joined by ", "). Walking from the
 * right (the hop our peer added), trusted proxies are skipped; the first other address is the
 * client. A chain of trusted proxies only gives its leftmost address; no header gives the peer.
 */
export function forwardedClient(header: string | undefined, peer: string, trusted: Acl): ForwardedClient {
  if (header === undefined || header.trim() === '') return { address: peer };
  const hops = header.split(',');
  if (hops.length > MAX_FORWARDED_HOPS) {
    return { error: `X-Forwarded-For has ${hops.length} addresses (at most ${MAX_FORWARDED_HOPS} are read)` };
  }
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const written = (hops[i] ?? '').trim();
    const address = hopAddress(written);
    if (address === undefined) {
      return { error: `X-Forwarded-For hop '${written.slice(0, 64)}' is not an IP address` };
    }
    client = address;
    if (!trusted.allows(address)) break;
  }
  return { address: client };
}

/** `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:443`, as Node would print it. */
function hopAddress(written: string): string | undefined {
  let text = written;
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(text);
  if (bracketed !== null) text = bracketed[1] ?? '';
  else if (/^[\d.]+:\d{1,5}$/.test(text)) text = text.slice(0, text.lastIndexOf(':'));
  if (parseAddress(text) === undefined) return undefined;
  return text.toLowerCase();
}
