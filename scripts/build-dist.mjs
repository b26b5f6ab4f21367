// Brings dist/ up to date with src/ for a checkout's `npm start` and `node bin/feedcast.js`, so that
// they run plain JavaScript: through tsx the server carries the TypeScript loader, 35-40 MB of RSS
// (docs/performance.md, "Memory"). Each source newer than its .js is transpiled alone
// (ts.transpileModule with tsconfig.build.json's options, no type check: what tsx did before; safe file
// by file because verbatimModuleSyntax implies isolatedModules, and the output is tsc's), so a
// start after editing a file costs that file, not a full `tsc` (~12 s here). `npm run build` (what
// npm pack ships) stays the full, type-checked tsc build into the same dist/.
//
// Run in a child process by bin/feedcast.js: the typescript module never enters the server's heap.
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = join(ROOT, 'src');
const DIST = join(ROOT, 'dist');

/** Every source the server runs: src/**\/*.ts without the tests. */
function sources(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...sources(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts')) found.push(path);
  }
  return found;
}

function mtimeMs(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** Written whole, then renamed: a server starting beside this build never imports half a file. */
function writeAtomically(path, text) {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, path);
}

const config = join(ROOT, 'tsconfig.build.json');
// A changed compiler configuration makes every output stale.
const configTime = Math.max(mtimeMs(config), mtimeMs(join(ROOT, 'tsconfig.json')));
const stale = sources(SRC).filter((src) => {
  const out = join(DIST, relative(SRC, src)).replace(/\.ts$/, '.js');
  return mtimeMs(out) < Math.max(mtimeMs(src), configTime);
});

if (stale.length > 0) {
  const ts = (await import('typescript')).default;
  const parsed = ts.getParsedCommandLineOfConfigFile(config, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  if (parsed === undefined) throw new Error(`cannot read ${config}`);
  for (const src of stale) {
    const out = join(DIST, relative(SRC, src)).replace(/\.ts$/, '.js');
    const { outputText, sourceMapText } = ts.transpileModule(readFileSync(src, 'utf8'), {
      // The package is "type": "module": every file is ESM, which transpileModule cannot infer alone.
      compilerOptions: { ...parsed.options, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler },
      fileName: src,
    });
    if (sourceMapText !== undefined) writeAtomically(`${out}.map`, sourceMapText);
    writeAtomically(out, outputText);
  }
  process.stderr.write(`feedcast: transpiled ${stale.length} changed source file(s) into dist/\n`);
}
