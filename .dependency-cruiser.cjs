// The layer rule of STYLE.md §1, written once: each layer may import only itself and the layers
// below it (or, where `only` says so, fewer), and nothing may import in a cycle. `npm run lint` runs
// it (`depcruise src`); any violation fails lint and CI. docs/ARCHITECTURE.md draws the same list.

/** Bottom to top. A module may import its own layer and the layers before it, never after. */
const LAYERS = [
  { name: 'errors', path: '^src/errors\\.ts$' },
  { name: 'base', path: '^src/(typed-emitter|version)\\.ts$|^src/observability/' },
  // Child-process supervision knows no media.
  { name: 'process', path: '^src/process/', only: ['errors', 'base'] },
  { name: 'media', path: '^src/media/' },
  // Pure byte code: no sockets, timers, config or logs.
  { name: 'formats', path: '^src/formats/', only: ['errors', 'media'] },
  { name: 'config', path: '^src/config/' },
  { name: 'feed', path: '^src/feed/' },
  { name: 'feedfile', path: '^src/feedfile/' },
  { name: 'record', path: '^src/record/' },
  { name: 'streams', path: '^src/streams/' },
  { name: 'transcode', path: '^src/transcode/' },
  // The cluster: registry (Redis), membership, relays between nodes; loaded by server.ts only with ClusterRedis.
  { name: 'cluster', path: '^src/cluster/' },
  { name: 'access', path: '^src/access/' },
  { name: 'protocols', path: '^src/protocols/' },
  { name: 'control', path: '^src/(control|demo|publish)/' },
  { name: 'wiring', path: '^src/(server|server-context|main)\\.ts$' },
];

const byName = new Map(LAYERS.map((layer) => [layer.name, layer]));

const layerRules = LAYERS.map((layer, i) => {
  const allowed = [...(layer.only ?? LAYERS.slice(0, i).map((l) => l.name)), layer.name];
  return {
    name: `layer-${layer.name}`,
    comment: `${layer.name} may import only ${allowed.join(', ')} (STYLE.md §1, .dependency-cruiser.cjs)`,
    severity: 'error',
    from: { path: layer.path },
    to: { path: '^src/', pathNot: allowed.map((name) => byName.get(name).path) },
  };
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Import cycles make the layers meaningless (STYLE.md §1).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'layer-unknown',
      comment: 'Every module under src/ belongs to a layer: add a new folder to LAYERS in .dependency-cruiser.cjs.',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYERS.map((l) => l.path) },
      to: {},
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
