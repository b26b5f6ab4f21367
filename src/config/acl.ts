// IP access control lists: ffserver's `ACL allow|deny FIRST [LAST]` (ref §2.7), extended with CIDR blocks,
// IPv6 and host names resolved to every address. First match wins; no match gives the inverse of the last rule.

import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { ConfigError } from '../errors.js';

export type AclAction = 'allow' | 'deny';
export type AddressFamily = 4 | 6;

/** One resolved rule: an inclusive numeric range of one address family (compared in host order). */
export interface AclRule {
  readonly action: AclAction;
  readonly family: AddressFamily;
  readonly first: bigint;
  readonly last: bigint;
  /** The rule as written, e.g. `allow localhost`. */
  readonly source: string;
}

/** One bound of a rule as written: an address literal, or a host name still to be resolved. */
export type AclBound =
  | { readonly kind: 'address'; readonly family: AddressFamily; readonly value: bigint }
  | { readonly kind: 'host'; readonly name: string };

/** A parsed `ACL` line before host names are resolved. */
export interface AclRuleSpec {
  readonly action: AclAction;
  readonly where: string;
  readonly source: string;
  readonly range:
    | { readonly kind: 'cidr'; readonly family: AddressFamily; readonly first: bigint; readonly last: bigint }
    | { readonly kind: 'bounds'; readonly first: AclBound; readonly last: AclBound | undefined };
}

/** Resolves a host name to all its addresses (both families). */
export type HostResolver = (host: string) => Promise<string[]>;

export const systemResolver: HostResolver = async (host) => {
  const results = await lookup(host, { all: true });
  return results.map((r) => r.address);
};

const HOST_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

type Parsed = { family: AddressFamily; value: bigint };

function toBigInt(bytes: readonly number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function fromAddr(addr: ipaddr.IPv4 | ipaddr.IPv6): Parsed {
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return { family: 4, value: toBigInt(v6.toIPv4Address().toByteArray()) };
    return { family: 6, value: toBigInt(v6.toByteArray()) };
  }
  return { family: 4, value: toBigInt(addr.toByteArray()) };
}

/** Parses an IPv4 (dotted quad only) or IPv6 literal; IPv4-mapped IPv6 becomes IPv4. */
export function parseAddress(text: string): Parsed | undefined {
  try {
    if (ipaddr.IPv4.isValidFourPartDecimal(text)) return fromAddr(ipaddr.IPv4.parse(text));
    if (text.includes(':') && ipaddr.IPv6.isValid(text)) return fromAddr(ipaddr.IPv6.parse(text));
  } catch {
    return undefined;
  }
  return undefined;
}

function formatValue(family: AddressFamily, value: bigint): string {
  const count = family === 4 ? 4 : 16;
  const bytes: number[] = [];
  for (let i = count - 1; i >= 0; i--) bytes.push(Number((value >> BigInt(i * 8)) & 0xffn));
  const addr = ipaddr.fromByteArray(bytes);
  return addr.kind() === 'ipv6' ? (addr as ipaddr.IPv6).toRFC5952String() : addr.toString();
}

/** `1.2.3.4`, `10.0.0.0/8` for an aligned block, else `FIRST-LAST`. */
function formatRange(r: AclRule): string {
  if (r.first === r.last) return formatValue(r.family, r.first);
  const size = r.last - r.first + 1n;
  const hostBits = size.toString(2).length - 1;
  if (size === 1n << BigInt(hostBits) && r.first % size === 0n) {
    return `${formatValue(r.family, r.first)}/${(r.family === 4 ? 32 : 128) - hostBits}`;
  }
  return `${formatValue(r.family, r.first)}-${formatValue(r.family, r.last)}`;
}

function parseCidr(text: string, where: string): AclRuleSpec['range'] {
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    if (!ipaddr.isValidCIDR(text)) throw new Error('invalid');
    const slash = text.indexOf('/');
    const base = text.slice(0, slash);
    if (!base.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(base)) throw new Error('invalid');
    parsed = ipaddr.parseCIDR(text);
  } catch {
    throw new ConfigError(where, `ACL: '${text}' is not a valid CIDR block; write e.g. 10.0.0.0/8 or fd00::/8`);
  }
  const [addr, prefix] = parsed;
  const mapped = addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress();
  if (mapped && prefix < 96) {
    throw new ConfigError(where, `ACL: '${text}' mixes IPv4-mapped and other IPv6 addresses; use an IPv4 block`);
  }
  // fromAddr turns an IPv4-mapped address into IPv4, so its prefix loses the 96 mapped bits.
  const { family, value } = fromAddr(addr);
  const effectivePrefix = mapped ? prefix - 96 : prefix;
  const bits = family === 4 ? 32 : 128;
  const hostBits = BigInt(bits - effectivePrefix);
  const first = (value >> hostBits) << hostBits;
  const last = first | ((1n << hostBits) - 1n);
  return { kind: 'cidr', family, first, last };
}

function parseBound(text: string, where: string): AclBound {
  const addr = parseAddress(text);
  if (addr !== undefined) return { kind: 'address', ...addr };
  if (/^[0-9.]+$/.test(text) || text.includes(':') || !HOST_NAME.test(text)) {
    const hint = text.startsWith('#') ? ' (ffserver.conf has no trailing comments: put comments on their own line)' : '';
    throw new ConfigError(where, `ACL: '${text}' is not an IP address, CIDR block or host name${hint}`);
  }
  return { kind: 'host', name: text };
}

/**
 * Parses the arguments of one `ACL` line: `allow|deny ADDR [LAST]`, where ADDR is an IPv4/IPv6 address,
 * a host name (resolved later) or a CIDR block. Throws ConfigError naming what is wrong.
 */
export function parseAclRule(args: readonly string[], where: string): AclRuleSpec {
  const [actionText, firstText, lastText, ...rest] = args;
  const usage = 'write ACL allow|deny ADDRESS [LAST_ADDRESS], e.g. ACL allow 192.168.0.0 192.168.255.255 or ACL deny 10.0.0.0/8';
  if (actionText === undefined || firstText === undefined) {
    throw new ConfigError(where, `ACL needs an action and an address; ${usage}`);
  }
  const action = actionText.toLowerCase();
  if (action !== 'allow' && action !== 'deny') {
    throw new ConfigError(where, `ACL action '${actionText}' must be allow or deny; ${usage}`);
  }
  if (rest.length > 0) {
    const hint =
      rest[0]?.startsWith('#') || lastText?.startsWith('#')
        ? ' (ffserver.conf has no trailing comments: put comments on their own line)'
        : '';
    throw new ConfigError(where, `ACL takes at most two addresses, got extra '${rest.join(' ')}'${hint}`);
  }
  const source = [action, firstText, ...(lastText !== undefined ? [lastText] : [])].join(' ');
  if (firstText.includes('/')) {
    if (lastText !== undefined) {
      throw new ConfigError(where, `ACL: a CIDR block (${firstText}) takes no last address; remove '${lastText}'`);
    }
    return { action, where, source, range: parseCidr(firstText, where) };
  }
  const first = parseBound(firstText, where);
  const last = lastText !== undefined ? parseBound(lastText, where) : undefined;
  if (first.kind === 'address' && last?.kind === 'address') checkRange(first, last, firstText, lastText ?? '', where);
  return { action, where, source, range: { kind: 'bounds', first, last } };
}

function checkRange(first: Parsed, last: Parsed, firstText: string, lastText: string, where: string): void {
  if (first.family !== last.family) {
    throw new ConfigError(where, `ACL: range ${firstText} - ${lastText} mixes IPv4 and IPv6; write one rule per family`);
  }
  if (first.value > last.value) {
    throw new ConfigError(where, `ACL: range start ${firstText} is above its end ${lastText}; swap them`);
  }
}

async function resolveBound(bound: AclBound, where: string, resolver: HostResolver): Promise<Parsed[]> {
  if (bound.kind === 'address') return [bound];
  let addresses: string[];
  try {
    addresses = await resolver(bound.name);
  } catch (err) {
    const code = err instanceof Error && 'code' in err ? ` (${String(err.code)})` : '';
    throw new ConfigError(where, `ACL: cannot resolve host name '${bound.name}'${code}; use an IP address or fix the name`);
  }
  const parsed: Parsed[] = [];
  for (const a of addresses) {
    const p = parseAddress(a);
    if (p !== undefined && !parsed.some((q) => q.family === p.family && q.value === p.value)) parsed.push(p);
  }
  if (parsed.length === 0) {
    throw new ConfigError(where, `ACL: host name '${bound.name}' has no addresses; use an IP address or fix the name`);
  }
  return parsed;
}

/** Resolves one spec into rules: a host name gives one rule per address, so `localhost` covers 127.0.0.1 and ::1. */
export async function resolveAclRule(spec: AclRuleSpec, resolver: HostResolver = systemResolver): Promise<AclRule[]> {
  const { action, source, where } = spec;
  if (spec.range.kind === 'cidr') {
    const { family, first, last } = spec.range;
    return [{ action, family, first, last, source }];
  }
  const firsts = await resolveBound(spec.range.first, where, resolver);
  if (spec.range.last === undefined) {
    return firsts.map((a) => ({ action, family: a.family, first: a.value, last: a.value, source }));
  }
  const lasts = await resolveBound(spec.range.last, where, resolver);
  for (const f of firsts) {
    const l = lasts.find((x) => x.family === f.family);
    if (l === undefined) continue;
    checkRange(f, l, formatValue(f.family, f.value), formatValue(l.family, l.value), where);
    return [{ action, family: f.family, first: f.value, last: l.value, source }];
  }
  throw new ConfigError(where, `ACL: the two ends of '${source}' have no address family in common`);
}

/** Resolves many specs, collecting every error instead of stopping at the first. */
export async function resolveAclRules(
  specs: readonly AclRuleSpec[],
  resolver: HostResolver = systemResolver,
): Promise<{ rules: AclRule[]; errors: ConfigError[] }> {
  const results = await Promise.allSettled(specs.map((s) => resolveAclRule(s, resolver)));
  const rules: AclRule[] = [];
  const errors: ConfigError[] = [];
  for (const r of results) {
    if (r.status === 'fulfilled') rules.push(...r.value);
    else if (r.reason instanceof ConfigError) errors.push(r.reason);
    else throw r.reason;
  }
  return { rules, errors };
}

/** An ordered list of rules with ffserver's evaluation (ref §2.7). Immutable. */
export class Acl {
  readonly rules: readonly AclRule[];

  private constructor(rules: readonly AclRule[]) {
    this.rules = Object.freeze([...rules]);
  }

  static allowAll(): Acl {
    return new Acl([]);
  }

  /** `allow 127.0.0.0/8` and `allow ::1`: this host only (IPv4-mapped loopback included); the DynamicFeedACL default. */
  static loopbackOnly(): Acl {
    return new Acl([
      { action: 'allow', family: 4, first: 0x7f000000n, last: 0x7fffffffn, source: 'allow 127.0.0.0/8' },
      { action: 'allow', family: 6, first: 1n, last: 1n, source: 'allow ::1' },
    ]);
  }

  static fromRules(rules: readonly AclRule[]): Acl {
    return new Acl(rules);
  }

  /** Resolves and builds; throws the first ConfigError (the config loader collects them itself). */
  static async fromSpecs(specs: readonly AclRuleSpec[], resolver: HostResolver = systemResolver): Promise<Acl> {
    const { rules, errors } = await resolveAclRules(specs, resolver);
    if (errors[0] !== undefined) throw errors[0];
    return new Acl(rules);
  }

  get isEmpty(): boolean {
    return this.rules.length === 0;
  }

  /**
   * Whether a client address (as Node reports it: `1.2.3.4`, `::1`, `::ffff:1.2.3.4`) may pass.
   * First matching rule wins; no match gives the inverse of the last rule; no rules allow everyone.
   */
  allows(address: string): boolean {
    const lastRule = this.rules[this.rules.length - 1];
    if (lastRule === undefined) return true;
    const client = parseAddress(address.trim());
    if (client !== undefined) {
      for (const rule of this.rules) {
        if (rule.family === client.family && client.value >= rule.first && client.value <= rule.last) {
          return rule.action === 'allow';
        }
      }
    }
    return lastRule.action !== 'allow';
  }

  /** One line for `feedcast check` and the status page, e.g. `allow 127.0.0.1, deny 10.0.0.0-10.255.255.255; otherwise deny`. */
  describe(): string {
    const lastRule = this.rules[this.rules.length - 1];
    if (lastRule === undefined) return 'allow all';
    const parts = this.rules.map((r) => {
      const range = formatRange(r);
      const written = r.source.slice(r.action.length + 1);
      const fromHostName = !written.includes('/') && written.split(' ').some((w) => parseAddress(w) === undefined);
      return fromHostName ? `${r.action} ${range} (${written})` : `${r.action} ${range}`;
    });
    return `${parts.join(', ')}; otherwise ${lastRule.action === 'allow' ? 'deny' : 'allow'}`;
  }
}
