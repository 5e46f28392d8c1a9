// Builds the web UI (ui/: Preact components in TSX) into dist/ui: app.js (one ES module with
// Preact and the typed API client), app.css and index.html, which the controller serves at /.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';

const path = (p) => new URL(p, import.meta.url).pathname;
const out = path('../dist/ui/');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: path('../ui/src/main.tsx') },
  outdir: out,
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(path('../ui/src/app.css'), `${out}app.css`);
copyFileSync(path('../ui/index.html'), `${out}index.html`);
