// The layer rule of STYLE.md §1, written once: each layer may import only the layers below it.
// `npm run lint` runs it (`depcruise src --ignore-known`); the imports that break it today are
// listed in .dependency-cruiser-known-violations.json (regenerate with `npm run lint:layers:baseline`
// only when one is removed) and new ones fail.

/** Bottom to top. A module may import its own layer and the layers before it, never after. */
const LAYERS = [
  { name: 'base', path: '^src/(errors|typed-emitter|version)\\.ts$|^src/observability/' },
  { name: 'process', path: '^src/process/' },
  { name: 'media', path: '^src/media/' },
  { name: 'formats', path: '^src/formats/' },
  { name: 'config', path: '^src/config/' },
  { name: 'feed', path: '^src/feed/' },
  { name: 'feedfile', path: '^src/feedfile/' },
  { name: 'record', path: '^src/record/' },
  { name: 'streams', path: '^src/streams/' },
  { name: 'transcode', path: '^src/transcode/' },
  { name: 'access', path: '^src/access/' },
  { name: 'protocols', path: '^src/protocols/' },
  { name: 'control', path: '^src/(control|demo|publish)/' },
  { name: 'wiring', path: '^src/(server|server-context|main)\\.ts$' },
];

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `no-upward-from-${layer.name}`,
  comment: `${layer.name} may import only ${LAYERS.slice(0, i + 1)
    .map((l) => l.name)
    .join(', ')} (STYLE.md §1)`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: LAYERS.slice(i + 1).map((l) => l.path) },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Import cycles make the layers meaningless (STYLE.md §1).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...upward,
    {
      name: 'formats-pure',
      comment: 'formats/ is pure byte code: it imports only formats/, media/ and errors.ts (STYLE.md §1).',
      severity: 'error',
      from: { path: '^src/formats/' },
      to: { path: '^src/', pathNot: '^src/(formats|media)/|^src/errors\\.ts$' },
    },
    {
      name: 'process-bottom',
      comment: 'process/ supervises children and knows no media: it imports only the base layer (STYLE.md §1).',
      severity: 'error',
      from: { path: '^src/process/' },
      to: { path: '^src/', pathNot: '^src/process/|^src/(errors|typed-emitter)\\.ts$|^src/observability/' },
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
