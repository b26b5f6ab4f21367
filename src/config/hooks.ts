// Lifecycle hooks as the config declares them (OnPublish, OnUnpublish, OnRead, OnReadEnd, OnRecordSegment):
// what to run or where to POST when a feed's life moves on. They report; admission stays with ACLs,
// credentials and AuthCallback (docs/hooks.md).

/** The events a hook can follow, as named in the JSON body and in FEEDCAST_EVENT. */
export type HookEvent = 'publish' | 'unpublish' | 'read' | 'read-end' | 'record-segment';

/** A URL gets the event POSTed as JSON; a command is run (no shell) with the event in its environment. */
export type HookAction =
  { readonly kind: 'url'; readonly url: string } | { readonly kind: 'command'; readonly argv: readonly string[] };

export interface HookSpec {
  readonly event: HookEvent;
  readonly action: HookAction;
  /** file:line of the directive, for logs. */
  readonly where: string;
}

/** The server-wide hook settings; feed-level hooks live in each FeedConfig. */
export interface HooksConfig {
  /** Hooks written outside any section: they follow every feed. */
  readonly global: readonly HookSpec[];
  /** `HookTimeout`: a command is killed, a POST aborted, after this. */
  readonly timeoutMs: number;
  /** `HookConcurrency`: hooks running at once; the rest wait in a bounded queue. */
  readonly concurrency: number;
  /** `HookRetries`: further attempts of a POST that failed (network error, timeout, 5xx). */
  readonly retries: number;
}

export const HOOK_DEFAULTS = Object.freeze({ timeoutMs: 10_000, concurrency: 4, retries: 3 });

/** One directive's words as an action: a single http(s) URL, or a program with its arguments. */
export function parseHookAction(args: readonly string[]): HookAction {
  const [first = ''] = args;
  if (args.length === 1 && /^https?:\/\//i.test(first)) return { kind: 'url', url: first };
  return { kind: 'command', argv: [...args] };
}
