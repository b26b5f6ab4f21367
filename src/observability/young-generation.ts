// Which young-generation cap this process runs with (issue 26, item 2), for the `ready` log line. V8 sizes
// the cap when the isolate is created: v8.setFlagsFromString('--max-semi-space-size=2') at run time leaves it
// at its default (33.6 MB of new space either way, 4.2 MB with the flag at start), so the cap is named on
// node's command line or in NODE_OPTIONS. Without it, bin/feedcast.js sets --semi-space-growth-factor=1 at
// run time (V8 reads that one whenever the new space grows), which holds the semi-spaces at their initial
// 1 MB, and says so in FEEDCAST_YOUNG_GENERATION=held.

/** The cap Feedcast ships with (bin/feedcast.js's first line, `npm start`): docs/performance.md, "Memory". */
export const SHIPPED_SEMI_SPACE_MB = 2;

const FLAG = /(?:^|\s)--max-semi-space-size(?:=|\s+)(\d+(?:\.\d+)?)(?=\s|$)/g;

/** The last --max-semi-space-size among node's arguments and NODE_OPTIONS (the arguments win), in MB. */
export function semiSpaceCapMb(execArgv: readonly string[], nodeOptions: string | undefined): number | undefined {
  let found: number | undefined;
  for (const text of [nodeOptions ?? '', execArgv.join(' ')]) {
    for (const m of text.matchAll(FLAG)) found = Number(m[1]);
  }
  return found;
}

/** For the `ready` log line: the cap in force, or how to set it and what it saves. */
export function describeYoungGeneration(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
  heldByBin: boolean,
): string {
  const cap = semiSpaceCapMb(execArgv, nodeOptions);
  if (cap !== undefined) return `semi-spaces capped at ${cap} MB (--max-semi-space-size=${cap})`;
  if (heldByBin) return `semi-spaces held at V8's initial 1 MB (bin/feedcast.js set --semi-space-growth-factor=1)`;
  return (
    `V8's default semi-spaces (up to 16 MB each): start with node --max-semi-space-size=${SHIPPED_SEMI_SPACE_MB} ` +
    `(or NODE_OPTIONS) for about 25 MB less RSS at 1000 viewers, as the feedcast command and npm start do`
  );
}
