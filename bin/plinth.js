#!/usr/bin/env node
// The `plinth` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (which `npm ci` runs through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('plinth: not built yet; run `npm run build` (or `npm ci`) in the checkout\n');
  process.exit(1);
}
await import(entry.href);
