// Feed and stream names: how they compare and how a feed's URL key is made. Every lookup goes through here so
// that `<Feed Feed1.FFM>`, `Feed feed1.ffm` and a request for `/FEED1.flv` all mean the same feed (issue 18).

/** Names of feeds and streams compare case-insensitively, like the URLs they become. */
export function sameName(a: string, b: string): boolean {
  return a === b || a.toLowerCase() === b.toLowerCase();
}

/** The map key of a name (for Maps that must find a name in any case). */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** A feed's URL key: its name without `.ffm` (any case), as written otherwise: `Feed1.FFM` -> `Feed1`. */
export function feedKeyOf(name: string): string {
  return /\.ffm$/i.test(name) ? name.slice(0, -'.ffm'.length) : name;
}

/** The first item whose `name` is `name` in any case. */
export function findByName<T extends { readonly name: string }>(items: readonly T[], name: string): T | undefined {
  return items.find((item) => item.name === name) ?? items.find((item) => sameName(item.name, name));
}

/** The feed config named `nameOrKey`: its full name (`feed1.ffm`) or URL key (`feed1`), in any case. */
export function findFeedConfig<T extends { readonly name: string; readonly key: string }>(
  feeds: readonly T[],
  nameOrKey: string,
): T | undefined {
  const key = feedKeyOf(nameOrKey);
  return feeds.find((f) => sameName(f.key, key));
}

/** Separates a feed's key from a simulcast layer's rid in the layer's feed key (`cam~h`): never in a feed name. */
export const LAYER_SEPARATOR = '~';

/** The feed key of simulcast layer `rid` of feed `parentKey` (docs/webrtc.md, Simulcast). */
export function layerKeyOf(parentKey: string, rid: string): string {
  return `${parentKey}${LAYER_SEPARATOR}${rid}`;
}

/** The key of the feed whose simulcast layer `key` names (`cam` for `cam~h`), or undefined for any other name. */
export function layerParentOf(key: string): string | undefined {
  const at = key.lastIndexOf(LAYER_SEPARATOR);
  return at > 0 ? key.slice(0, at) : undefined;
}
